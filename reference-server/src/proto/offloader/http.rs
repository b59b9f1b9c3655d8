//! The HTTP surface of calls-offloader (offloader.md §1, §3): routing as gorilla/mux answers it,
//! the small bodies (`/version`, `/register`, `/login`, `/unregister`), the response envelopes, and
//! how the official Go client reads responses.
//!
//! All bodies are written exactly as Go's `json.Encoder` writes them: map keys sorted, HTML-safe
//! escaping, a trailing newline.

use serde::{Deserialize, Serialize};

use super::decode::{decode_string_map, decode_string_struct};
use super::goread::DecodeError;
use super::gowrite::push_json_string;

/// `{"code":"<status>","error":"<message>"}` + newline: every non-job error response.
pub fn error_envelope(status: u16, message: &str) -> String {
    let mut out = format!("{{\"code\":\"{status}\",\"error\":");
    push_json_string(&mut out, message);
    out.push_str("}\n");
    out
}

/// 201 body of `POST /register`: `{"clientID":"<id>","code":"201"}` + newline.
pub fn register_success_body(client_id: &str) -> String {
    let mut out = String::from("{\"clientID\":");
    push_json_string(&mut out, client_id);
    out.push_str(",\"code\":\"201\"}\n");
    out
}

/// 200 body of `POST /login`: `{"bearerToken":"<token>","code":"200"}` + newline.
pub fn login_success_body(bearer_token: &str) -> String {
    let mut out = String::from("{\"bearerToken\":");
    push_json_string(&mut out, bearer_token);
    out.push_str(",\"code\":\"200\"}\n");
    out
}

/// `GET /version` body (Go `public.VersionInfo`); served with `Content-Type: application/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub build_date: String,
    pub build_version: String,
    pub build_hash: String,
    pub go_version: String,
}

impl VersionInfo {
    /// The body as the Go server writes it (fields in declaration order, newline-terminated).
    pub fn to_response_body(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in [
            ("buildDate", &self.build_date),
            ("buildVersion", &self.build_version),
            ("buildHash", &self.build_hash),
            ("goVersion", &self.go_version),
        ]
        .into_iter()
        .enumerate()
        {
            out.push_str(if i == 0 { "{\"" } else { ",\"" });
            out.push_str(k);
            out.push_str("\":");
            push_json_string(&mut out, v);
        }
        out.push_str("}\n");
        out
    }

    /// Decodes as the Go client does (case-insensitive keys, unknown keys ignored).
    pub fn decode(body: &[u8]) -> Result<VersionInfo, DecodeError> {
        let [build_date, build_version, build_hash, go_version] = decode_string_struct(
            body,
            "VersionInfo",
            "public.VersionInfo",
            ["buildDate", "buildVersion", "buildHash", "goVersion"],
        )?;
        Ok(VersionInfo {
            build_date,
            build_version,
            build_hash,
            go_version,
        })
    }
}

/// `POST /register` and `POST /login` body: `{"clientID","authKey"}`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(rename = "authKey")]
    pub auth_key: String,
}

// The key stays out of logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("auth_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(client_id: impl Into<String>, auth_key: impl Into<String>) -> Self {
        Credentials {
            client_id: client_id.into(),
            auth_key: auth_key.into(),
        }
    }

    /// Decodes as the server does: a `map[string]string`, so keys are case-sensitive, every value
    /// must be a string or null, and missing keys read as `""`.
    pub fn decode(body: &[u8]) -> Result<Credentials, DecodeError> {
        let mut map = decode_string_map(body)?;
        Ok(Credentials {
            client_id: map.remove("clientID").unwrap_or_default(),
            auth_key: map.remove("authKey").unwrap_or_default(),
        })
    }

    /// The body the Go client sends: its map encoded with sorted keys (`authKey` first).
    pub fn to_request_body(&self) -> String {
        let mut out = String::from("{\"authKey\":");
        push_json_string(&mut out, &self.auth_key);
        out.push_str(",\"clientID\":");
        push_json_string(&mut out, &self.client_id);
        out.push_str("}\n");
        out
    }
}

/// `POST /unregister` body: `{"clientID"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnregisterRequest {
    #[serde(rename = "clientID")]
    pub client_id: String,
}

impl UnregisterRequest {
    /// Decodes as the server does (see [`Credentials::decode`]).
    pub fn decode(body: &[u8]) -> Result<UnregisterRequest, DecodeError> {
        let mut map = decode_string_map(body)?;
        Ok(UnregisterRequest {
            client_id: map.remove("clientID").unwrap_or_default(),
        })
    }

    pub fn to_request_body(&self) -> String {
        let mut out = String::from("{\"clientID\":");
        push_json_string(&mut out, &self.client_id);
        out.push_str("}\n");
        out
    }
}

/// The bearer token of a 200 `POST /login` response, read as the Go client reads it
/// (`map[string]string`, key `bearerToken`; `""` when absent).
pub fn decode_login_response(body: &[u8]) -> Result<String, DecodeError> {
    Ok(decode_string_map(body)?
        .remove("bearerToken")
        .unwrap_or_default())
}

/// The `clientID` of a 201 `POST /register` response (`""` when absent).
pub fn decode_register_response(body: &[u8]) -> Result<String, DecodeError> {
    Ok(decode_string_map(body)?
        .remove("clientID")
        .unwrap_or_default())
}

/// A route of the offloader API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /version`, no auth.
    Version,
    /// `POST /register`.
    Register,
    /// `POST /unregister`.
    Unregister,
    /// `POST /login`, no auth.
    Login,
    /// `POST /jobs`.
    CreateJob,
    /// `POST /jobs/init`.
    Init,
    /// `GET /jobs/{id}`.
    GetJob(String),
    /// `DELETE /jobs/{id}`.
    DeleteJob(String),
    /// `GET /jobs/{id}/logs`.
    JobLogs(String),
}

/// What the router does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    Found(Route),
    /// 404, `Content-Type: text/plain; charset=utf-8`, body [`NOT_FOUND_BODY`]. Also what
    /// `/version`, `/register`, `/login` and `/unregister` answer to a wrong method.
    NotFound,
    /// 405, empty body: the path matches a `/jobs` route but the method does not.
    MethodNotAllowed,
    /// 301 with `Location` set to the cleaned path: Go's muxes redirect non-canonical paths.
    Redirect(String),
}

/// Body of Go's `http.NotFound`.
pub const NOT_FOUND_BODY: &str = "404 page not found\n";

/// Whether `id` matches the router's `[a-z0-9]{12,26}` job id pattern.
pub fn is_valid_job_id(id: &str) -> bool {
    (12..=26).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Routes a request the way the Go service (gorilla/mux under `net/http`) does.
pub fn route(method: &str, path: &str) -> RouteMatch {
    let clean = clean_path(path);
    if clean != path {
        return RouteMatch::Redirect(clean);
    }
    // These handlers accept the route for any method and answer 404 themselves.
    let only = |m: &str, r: Route| {
        if method == m {
            RouteMatch::Found(r)
        } else {
            RouteMatch::NotFound
        }
    };
    match path {
        "/version" => return only("GET", Route::Version),
        "/register" => return only("POST", Route::Register),
        "/unregister" => return only("POST", Route::Unregister),
        "/login" => return only("POST", Route::Login),
        "/jobs" => return by_method(method, &[("POST", Route::CreateJob)]),
        "/jobs/init" => return by_method(method, &[("POST", Route::Init)]),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/jobs/") else {
        return RouteMatch::NotFound;
    };
    if let Some(id) = rest.strip_suffix("/logs").filter(|id| is_valid_job_id(id)) {
        return by_method(method, &[("GET", Route::JobLogs(id.to_owned()))]);
    }
    if is_valid_job_id(rest) {
        return by_method(
            method,
            &[
                ("GET", Route::GetJob(rest.to_owned())),
                ("DELETE", Route::DeleteJob(rest.to_owned())),
            ],
        );
    }
    RouteMatch::NotFound
}

fn by_method(method: &str, routes: &[(&str, Route)]) -> RouteMatch {
    routes
        .iter()
        .find(|(m, _)| *m == method)
        .map_or(RouteMatch::MethodNotAllowed, |(_, r)| {
            RouteMatch::Found(r.clone())
        })
}

/// gorilla/mux `cleanPath`: Go's `path.Clean` on a rooted path, keeping a trailing slash.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_owned();
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    if p.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

/// A failed call as the official Go client reports it (`public/client.go`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Any 401, whatever the body says.
    #[error("unauthorized")]
    Unauthorized,
    /// The body's `error` field.
    #[error("request failed: {0}")]
    Request(String),
    /// No `error` field; the status line, e.g. `500 Internal Server Error`.
    #[error("request failed with status {0}")]
    Status(String),
    #[error("decoding http response failed: {0}")]
    Decode(DecodeError),
}

/// The Go client's verdict on a non-success response of `Register`, `Unregister`, `CreateJob`,
/// `GetJob` or `Init` (401 first, then the envelope's `error`, then the status line).
pub fn client_error(status: u16, body: &[u8]) -> ClientError {
    if status == 401 {
        return ClientError::Unauthorized;
    }
    match super::decode::decode_string_map_lenient(body) {
        Err(e) => ClientError::Decode(e),
        Ok(Some(msg)) if !msg.is_empty() => ClientError::Request(msg),
        Ok(_) => ClientError::Status(status_line(status)),
    }
}

/// Go's `resp.Status` for the codes the offloader uses.
pub fn status_line(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_owned()
}
