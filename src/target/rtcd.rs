//! The plugin side of rtcd's HTTP API (rtcd.md §1, §2.4; calls-loadtest.md §3.1): credentials,
//! `/version` with the minimum-version check, `/system` for call placement, `/register`, `/login` and
//! `/calls/{id}/sessions`, and the expansion of `--rtcd` URLs into one host per IPv4 address.
//!
//! Like the plugin, the harness keeps one client (and one `/ws` connection, see [`super::ws`]) per
//! rtcd host IP, dials the IP directly, and puts every new call on the host with the lowest
//! `cpu_load`, falling back to a random host when none answers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use callsref::proto::rtcd::http::{AuthReply, Credentials, SessionConfig, SystemInfo, VersionInfo};
use callsref::proto::rtcd::ids::new_id;
use rand::Rng;
use reqwest::StatusCode;

/// The plugin's HTTP timeout towards rtcd.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The oldest rtcd the harness drives: v1.1.0 introduced the DC signalling lock our participants use
/// for every own renegotiation (the plugin itself accepts v0.17.0 but then skips locking).
pub const MIN_VERSION: (u64, u64, u64) = (1, 1, 0);

/// What went wrong talking to one rtcd host.
#[derive(Debug, thiserror::Error)]
pub enum RtcdError {
    #[error("invalid rtcd url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("resolving {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} has no IPv4 address")]
    NoAddress { host: String },
    #[error("{endpoint} on {host}: {source}")]
    Http {
        host: SocketAddr,
        endpoint: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{endpoint} on {host}: status {status}: {body}")]
    Status {
        host: SocketAddr,
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("rtcd on {host} is {found}, older than the required v{}.{}.{}", min.0, min.1, min.2)]
    TooOld {
        host: SocketAddr,
        found: String,
        min: (u64, u64, u64),
    },
    #[error("auth key must be at least 32 characters, got {0}")]
    ShortKey(usize),
}

/// A plugin's rtcd identity: client id (its group) and auth key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials(pub Credentials);

impl ClientCredentials {
    /// Given credentials; the key must be at least 32 characters as rtcd requires.
    pub fn new(client_id: String, auth_key: String) -> Result<Self, RtcdError> {
        if auth_key.len() < 32 {
            return Err(RtcdError::ShortKey(auth_key.len()));
        }
        Ok(ClientCredentials(Credentials {
            client_id,
            auth_key,
        }))
    }

    /// Fresh credentials as the plugin makes them: a Mattermost id and 32 base64url characters.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let key: [u8; 24] = rng.random();
        ClientCredentials(Credentials {
            client_id: new_id(rng),
            auth_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }

    /// The `Authorization` header value for Basic auth.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.0.client_id, self.0.auth_key);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// One rtcd host: an IP and the API port, plus the scheme of the URL it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtcdHost {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl RtcdHost {
    pub fn http_url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }
}

/// Expands `--rtcd` URLs into hosts: every IPv4 address of every URL's host name, deduplicated, in
/// order. The port defaults to rtcd's 8045.
pub async fn resolve_hosts(urls: &[String]) -> Result<Vec<RtcdHost>, RtcdError> {
    let mut hosts: Vec<RtcdHost> = Vec::new();
    for url in urls {
        let parsed = reqwest::Url::parse(url).map_err(|e| RtcdError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(RtcdError::Url {
                    url: url.clone(),
                    reason: format!("scheme {other:?} is not http or https"),
                });
            }
        };
        let host = parsed.host_str().ok_or_else(|| RtcdError::Url {
            url: url.clone(),
            reason: "no host".into(),
        })?;
        let port = parsed.port().unwrap_or(8045);
        let addrs: Vec<SocketAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| RtcdError::Resolve {
                    host: host.to_string(),
                    source,
                })?
                .filter(SocketAddr::is_ipv4)
                .collect(),
        };
        if addrs.is_empty() {
            return Err(RtcdError::NoAddress {
                host: host.to_string(),
            });
        }
        for addr in addrs {
            let h = RtcdHost { addr, tls };
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    Ok(hosts)
}

/// Parses `vX.Y.Z` (with optional `v` and suffix); `None` for builds the plugin does not check
/// (`""`, `master`, `dev*`) or unparsable strings.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    if v.is_empty() || v == "master" || v.starts_with("dev") {
        return None;
    }
    let core = v.trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or(core);
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    ))
}

/// The plugin's check: unversioned builds pass; anything older than `min` fails.
pub fn check_version(host: SocketAddr, found: &str, min: (u64, u64, u64)) -> Result<(), RtcdError> {
    match parse_version(found) {
        Some(v) if v < min => Err(RtcdError::TooOld {
            host,
            found: found.to_string(),
            min,
        }),
        _ => Ok(()),
    }
}

/// HTTP client for one rtcd host.
#[derive(Debug, Clone)]
pub struct RtcdApi {
    host: RtcdHost,
    creds: ClientCredentials,
    http: reqwest::Client,
}

impl RtcdApi {
    pub fn new(host: RtcdHost, creds: ClientCredentials) -> Self {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            // Invariant: a builder with only a timeout set has nothing that can fail to build.
            .expect("plain reqwest client");
        RtcdApi { host, creds, http }
    }

    pub fn host(&self) -> RtcdHost {
        self.host
    }

    pub fn credentials(&self) -> &ClientCredentials {
        &self.creds
    }

    fn http_err(&self, endpoint: &'static str) -> impl Fn(reqwest::Error) -> RtcdError + '_ {
        move |source| RtcdError::Http {
            host: self.host.addr,
            endpoint,
            source,
        }
    }

    async fn fail(&self, endpoint: &'static str, resp: reqwest::Response) -> RtcdError {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        RtcdError::Status {
            host: self.host.addr,
            endpoint,
            status,
            body: body.trim().to_string(),
        }
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<VersionInfo, RtcdError> {
        let resp = self
            .http
            .get(self.host.http_url("/version"))
            .send()
            .await
            .map_err(self.http_err("/version"))?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail("/version", resp).await);
        }
        resp.json().await.map_err(self.http_err("/version"))
    }

    /// `GET /system`: the host's cpu load (lower is better).
    pub async fn system(&self) -> Result<f64, RtcdError> {
        let resp = self
            .http
            .get(self.host.http_url("/system"))
            .send()
            .await
            .map_err(self.http_err("/system"))?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail("/system", resp).await);
        }
        let info: SystemInfo = resp.json().await.map_err(self.http_err("/system"))?;
        Ok(info.cpu_load)
    }

    /// `POST /register` with Basic auth carrying the client's own credentials (self-registration).
    /// 201, and 400 "already registered", both count as registered.
    pub async fn register(&self) -> Result<(), RtcdError> {
        let resp = self
            .http
            .post(self.host.http_url("/register"))
            .header(reqwest::header::AUTHORIZATION, self.creds.basic_header())
            .json(&self.creds.0)
            .send()
            .await
            .map_err(self.http_err("/register"))?;
        match resp.status() {
            StatusCode::CREATED => Ok(()),
            StatusCode::BAD_REQUEST => {
                let status = 400;
                let body = resp.text().await.unwrap_or_default();
                let reply: AuthReply = serde_json::from_str(&body).unwrap_or_default();
                if reply
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("already registered"))
                {
                    Ok(())
                } else {
                    Err(RtcdError::Status {
                        host: self.host.addr,
                        endpoint: "/register",
                        status,
                        body,
                    })
                }
            }
            _ => Err(self.fail("/register", resp).await),
        }
    }

    /// `POST /login`: a bearer token (each login invalidates the previous token of this client).
    pub async fn login(&self) -> Result<String, RtcdError> {
        let resp = self
            .http
            .post(self.host.http_url("/login"))
            .json(&self.creds.0)
            .send()
            .await
            .map_err(self.http_err("/login"))?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail("/login", resp).await);
        }
        let reply: AuthReply = resp.json().await.map_err(self.http_err("/login"))?;
        Ok(reply.bearer_token.unwrap_or_default())
    }

    /// `GET /calls/{id}/sessions`: the call's sessions, or `None` when rtcd answers 404 (the call
    /// has ended, the plugin's `hasCallEnded`).
    pub async fn sessions(&self, call_id: &str) -> Result<Option<Vec<SessionConfig>>, RtcdError> {
        let resp = self
            .http
            .get(self.host.http_url(&format!("/calls/{call_id}/sessions")))
            .header(reqwest::header::AUTHORIZATION, self.creds.basic_header())
            .send()
            .await
            .map_err(self.http_err("/calls/{id}/sessions"))?;
        match resp.status() {
            StatusCode::OK => Ok(Some(
                resp.json()
                    .await
                    .map_err(self.http_err("/calls/{id}/sessions"))?,
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.fail("/calls/{id}/sessions", resp).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn version_check_follows_the_plugin() {
        let h: SocketAddr = "127.0.0.1:8045".parse().unwrap();
        assert_eq!(parse_version("v1.2.6"), Some((1, 2, 6)));
        assert_eq!(parse_version("1.1.0-rc1"), Some((1, 1, 0)));
        for skipped in ["", "master", "dev-1234abc"] {
            assert!(check_version(h, skipped, MIN_VERSION).is_ok(), "{skipped}");
        }
        assert!(check_version(h, "v1.1.0", MIN_VERSION).is_ok());
        let err = check_version(h, "v0.17.0", MIN_VERSION).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rtcd on 127.0.0.1:8045 is v0.17.0, older than the required v1.1.0"
        );
    }

    #[test]
    fn generated_credentials_satisfy_rtcd() {
        let mut rng = StdRng::seed_from_u64(3);
        let c = ClientCredentials::generate(&mut rng);
        assert_eq!(c.client_id().len(), 26);
        assert_eq!(c.0.auth_key.len(), 32);
        assert!(ClientCredentials::new("x".into(), "short".into()).is_err());
        let header = c.basic_header();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(header.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            format!("{}:{}", c.0.client_id, c.0.auth_key)
        );
    }

    #[tokio::test]
    async fn urls_expand_to_ipv4_hosts() {
        let hosts = resolve_hosts(&[
            "http://127.0.0.1:9000".into(),
            "http://localhost:9000".into(),
            "https://127.0.0.2".into(),
        ])
        .await
        .unwrap();
        assert_eq!(hosts[0].ws_url(), "ws://127.0.0.1:9000/ws");
        // localhost resolves to 127.0.0.1 again (deduplicated); IPv6 records are dropped.
        assert_eq!(hosts.len(), 2, "{hosts:?}");
        assert_eq!(
            hosts[1].http_url("/system"),
            "https://127.0.0.2:8045/system"
        );
        assert!(resolve_hosts(&["ftp://x".into()]).await.is_err());
    }
}
