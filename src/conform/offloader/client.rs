//! A raw HTTP client for the suite: sends bodies WITHOUT a Content-Type (as the Go client does)
//! and returns status, Content-Type and body text untouched, so cases can compare bytes.

use callsref::proto::offloader::http::error_envelope;

/// A response as the suite inspects it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Resp {
    /// The exact error envelope `{"code":"<status>","error":"<msg>"}\n` with application/json.
    pub fn expect_error(&self, status: u16, msg: &str) -> Result<String, String> {
        let want = error_envelope(status, msg);
        if self.status == status
            && self.body == want
            && self.content_type.as_deref() == Some("application/json")
        {
            Ok(format!("{status} {msg:?}"))
        } else {
            Err(format!(
                "want {status} {:?} (application/json), got {} {:?} ({:?})",
                want.trim_end(),
                self.status,
                self.body.trim_end(),
                self.content_type
            ))
        }
    }

    /// Status and exact body.
    pub fn expect(&self, status: u16, body: &str) -> Result<String, String> {
        if self.status == status && self.body == body {
            Ok(format!("{status}"))
        } else {
            Err(format!(
                "want {status} {body:?}, got {} {:?}",
                self.status, self.body
            ))
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// The suite's HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(150))
            .pool_max_idle_per_host(100)
            .build()
            .unwrap_or_default();
        Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// One request; `auth` is a full Authorization header value.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = resp.text().await.unwrap_or_default();
                Resp {
                    status,
                    content_type,
                    body,
                }
            }
            Err(e) => Resp {
                status: 0,
                content_type: None,
                body: format!("transport error: {e}"),
            },
        }
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> Resp {
        self.send("GET", path, auth, None).await
    }

    pub async fn post(&self, path: &str, auth: Option<&str>, body: impl Into<String>) -> Resp {
        self.send("POST", path, auth, Some(body.into())).await
    }
}
