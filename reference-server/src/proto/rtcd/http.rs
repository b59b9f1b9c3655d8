//! rtcd's HTTP API bodies (rtcd.md §1.3–1.4): what `/version`, `/system`, `/register`, `/unregister`,
//! `/login` and `/calls/{callID}/sessions[/{sessionID}]` send and receive, plus the exact error texts.
//!
//! Go's `json.Encoder` ends every body with a newline and writes struct fields in declaration order and
//! map keys sorted; the field order of each type here follows that, so `serde_json` output is byte-equal
//! to rtcd's (up to Go's HTML escaping of `<`, `>`, `&`, which no JSON client can tell apart).
//! Use [`to_go_body`] to add the trailing newline.
//!
//! rtcd decodes request bodies into a `map[string]string` with `json.Decoder`: only the first JSON value
//! is read (trailing bytes are ignored), unknown keys are ignored, missing keys read as `""`, `null`
//! leaves the map empty and a non-string value is an error. [`parse_go_request`] reproduces that.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `Content-Type` of every JSON body rtcd writes.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `Content-Type` of the plain-text errors (Go's `http.Error`, which also sets
/// `X-Content-Type-Options: nosniff` and appends a newline to the text).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// The smallest `authKey` rtcd registers (`MinKeyLen`).
pub const MIN_KEY_LEN: usize = 32;

/// Error strings rtcd puts in the `"error"` field of the auth-family JSON envelope ([`AuthReply`]).
pub mod errors {
    /// 400 from `/register`: the key is shorter than [`super::MIN_KEY_LEN`].
    pub const REGISTER_KEY_TOO_SHORT: &str = "registration failed: key not long enough";
    /// 400 from `/register`: the client id is taken.
    pub const REGISTER_ALREADY_REGISTERED: &str = "registration failed: already registered";
    /// 400 from `/register`: empty client id (with a long enough key).
    pub const REGISTER_EMPTY_ID: &str = "registration failed: error: empty key";
    /// 403 from `/unregister` when neither `enable_admin` nor `allow_self_registration` is set.
    pub const UNREGISTER_NOT_ENABLED: &str = "unregister not enabled";
    /// 400 from `/unregister`: no `clientID` in the body.
    pub const UNREGISTER_EMPTY_ID: &str = "client id should not be empty";
    /// 403 from `/unregister`: a client tried to unregister another client.
    pub const UNREGISTER_OTHER_CLIENT: &str = "client id not valid";
    /// 400 from `/unregister`: unknown client.
    pub const UNREGISTER_NOT_FOUND: &str = "unregister failed: error: not found";
    /// 400 from `/login`: unknown client.
    pub const LOGIN_UNKNOWN_CLIENT: &str = "login failed: authentication failed: error: not found";
    /// 400 from `/login`: wrong key.
    pub const LOGIN_BAD_KEY: &str = "login failed: authentication failed";
    /// 400 from `/login`: empty client id.
    pub const LOGIN_EMPTY_ID: &str = "login failed: authentication failed: error: empty key";
    /// 401: the `Authorization` header is neither usable Basic nor Bearer.
    pub const AUTH_INVALID_HEADER: &str = "authentication failed: invalid auth header";
    /// 401: Basic with an empty client id (and not the admin secret), or a token without a client.
    pub const AUTH_UNAUTHORIZED: &str = "authentication failed: unauthorized";
    /// 401: Basic credentials of a known client with the wrong key (also an unknown client).
    pub const AUTH_FAILED: &str = "authentication failed";
    /// 401: unknown bearer token.
    pub const AUTH_TOKEN_INVALID: &str = "authentication failed: token is invalid";
    /// 401: expired bearer token.
    pub const AUTH_SESSION_EXPIRED: &str = "authentication failed: session is expired";
    /// 400: empty request body (Go's `json.Decoder` reports `io.EOF`).
    pub const EMPTY_BODY: &str = "EOF";
}

/// Plain-text bodies (without the newline Go appends) of the non-JSON errors.
pub mod text {
    /// Go's `http.NotFound`, returned for a wrong method on every route.
    pub const NOT_FOUND: &str = "404 page not found";
    /// 401 from the sessions routes (also for admin credentials).
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 400 from the sessions routes.
    pub const CALL_ID_REQUIRED: &str = "callID is required";
    /// 400 from the single-session route.
    pub const SESSION_ID_REQUIRED: &str = "sessionID is required";
    /// Reason for a 404 from either sessions route.
    pub const GROUP_NOT_FOUND: &str = "group not found";
    /// Reason for a 404 from either sessions route.
    pub const CALL_NOT_FOUND: &str = "call not found";
    /// Reason for a 404 from `GET /calls/{callID}/sessions`.
    pub const NO_SESSIONS_FOUND: &str = "no sessions found";
    /// Reason for a 404 from `GET /calls/{callID}/sessions/{sessionID}`.
    pub const SESSION_NOT_FOUND: &str = "session not found";

    /// 404 body of `GET /calls/{callID}/sessions`, e.g. `failed to get session configs: call not found`.
    pub fn session_configs_not_found(reason: &str) -> String {
        format!("failed to get session configs: {reason}")
    }

    /// 404 body of `GET /calls/{callID}/sessions/{sessionID}` (singular "config").
    pub fn session_config_not_found(reason: &str) -> String {
        format!("failed to get session config: {reason}")
    }
}

/// A JSON body as Go's `json.Encoder` writes it: the compact JSON followed by `\n`.
pub fn to_go_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: every type in this module serialises to JSON without error (string keys, finite
    // numbers are written, non-finite ones become `null`).
    let mut body = serde_json::to_vec(value).expect("rtcd bodies always serialise");
    body.push(b'\n');
    body
}

/// Parses a request body the way rtcd's handlers do (see the module docs): first JSON value only,
/// `null` gives the default.
pub fn parse_go_request<T: DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Option<T>>();
    match values.next() {
        Some(value) => Ok(value?.unwrap_or_default()),
        // No value at all: serde reports EOF the way Go does.
        None => serde_json::from_slice::<T>(body),
    }
}

/// `GET /version`: build information with camelCase keys (the Mattermost docs' snake_case is wrong).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionInfo {
    #[serde(rename = "buildDate")]
    pub build_date: String,
    /// A git tag such as `v1.2.6`, `master`, or `dev-<sha>`. The plugin compares it with its
    /// `min_rtcd_version` (skipping `""`, `master`, `dev*`): report ≥ v1.1.0 to get DC locking.
    #[serde(rename = "buildVersion")]
    pub build_version: String,
    #[serde(rename = "buildHash")]
    pub build_hash: String,
    #[serde(rename = "goVersion")]
    pub go_version: String,
    #[serde(rename = "goOS")]
    pub go_os: String,
    #[serde(rename = "goArch")]
    pub go_arch: String,
}

/// `GET /system`: `{"cpu_load": f64}`, the reciprocal of the number of idle CPUs; lower means more
/// headroom. rtcd cannot encode `+Inf` (zero idle time) and then writes no body; `serde_json` writes
/// `null` instead.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    pub cpu_load: f64,
}

/// `POST /register` and `POST /login` body: `{"clientID": "...", "authKey": "..."}`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(rename = "clientID", default)]
    pub client_id: String,
    #[serde(rename = "authKey", default)]
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

/// `POST /register` request body.
pub type RegisterRequest = Credentials;
/// `POST /login` request body.
pub type LoginRequest = Credentials;

/// `POST /unregister` body: `{"clientID": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnregisterRequest {
    #[serde(rename = "clientID", default)]
    pub client_id: String,
}

/// The flat string-to-string JSON object every auth-family handler answers with. `code` is the HTTP
/// status as a string and is always present; `error` is present on failure; `clientID` on a 201 from
/// `/register`; `bearerToken` on a 200 from `/login`. Fields are declared in Go's sorted-key order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthReply {
    #[serde(
        rename = "bearerToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bearer_token: Option<String>,
    #[serde(rename = "clientID", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuthReply {
    /// `{"code":"<status>","error":"<message>"}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        AuthReply {
            code: status.to_string(),
            error: Some(message.into()),
            ..Default::default()
        }
    }

    /// 201 from `/register`: `{"clientID":"...","code":"201"}`.
    pub fn registered(client_id: impl Into<String>) -> Self {
        AuthReply {
            client_id: Some(client_id.into()),
            code: "201".into(),
            ..Default::default()
        }
    }

    /// 200 from `/login`: `{"bearerToken":"...","code":"200"}`.
    pub fn logged_in(bearer_token: impl Into<String>) -> Self {
        AuthReply {
            bearer_token: Some(bearer_token.into()),
            code: "200".into(),
            ..Default::default()
        }
    }

    /// 200 from `/unregister`: `{"code":"200"}`.
    pub fn unregistered() -> Self {
        AuthReply {
            code: "200".into(),
            ..Default::default()
        }
    }

    /// The status carried in `code`, if it is a number.
    pub fn status(&self) -> Option<u16> {
        self.code.parse().ok()
    }
}

/// A session as `GET /calls/{callID}/sessions[/{sessionID}]` lists it: Go's default PascalCase keys.
/// `GroupID` is the owning client id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionConfig {
    #[serde(rename = "GroupID")]
    pub group_id: String,
    #[serde(rename = "CallID")]
    pub call_id: String,
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "SessionID")]
    pub session_id: String,
    #[serde(rename = "Props")]
    pub props: SessionProps,
}

/// A session's props, copied from the `join` message. rtcd keeps them as a Go map, so the keys come out
/// sorted and a prop the join did not carry is `null` (never omitted). rtcd would echo a wrongly-typed
/// value as is; this type only holds the documented types (a join decoder drops wrong types, see
/// [`super::ws::JoinData`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionProps {
    #[serde(rename = "av1Support", default)]
    pub av1_support: Option<bool>,
    #[serde(rename = "channelID", default)]
    pub channel_id: Option<String>,
    #[serde(rename = "dcSignaling", default)]
    pub dc_signaling: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_are_camel_case_in_go_field_order() {
        let v = VersionInfo {
            build_date: "d".into(),
            build_version: "v1.2.6".into(),
            build_hash: "h".into(),
            go_version: "go1.24.13".into(),
            go_os: "linux".into(),
            go_arch: "amd64".into(),
        };
        assert_eq!(
            String::from_utf8(to_go_body(&v)).unwrap(),
            "{\"buildDate\":\"d\",\"buildVersion\":\"v1.2.6\",\"buildHash\":\"h\",\
             \"goVersion\":\"go1.24.13\",\"goOS\":\"linux\",\"goArch\":\"amd64\"}\n"
        );
    }

    #[test]
    fn request_parsing_follows_go_decoder() {
        let c: Credentials =
            parse_go_request(br#"{"clientID":"a","authKey":"k","x":1} trailing"#).unwrap();
        assert_eq!((c.client_id.as_str(), c.auth_key.as_str()), ("a", "k"));
        let c: Credentials = parse_go_request(b"null").unwrap();
        assert_eq!(c, Credentials::default());
        let c: Credentials = parse_go_request(b"{}").unwrap();
        assert_eq!(c, Credentials::default());
        assert!(parse_go_request::<Credentials>(b"").unwrap_err().is_eof());
        assert!(parse_go_request::<Credentials>(br#"{"clientID":5}"#).is_err());
        assert!(parse_go_request::<Credentials>(b"[1]").is_err());
    }

    #[test]
    fn credentials_debug_hides_key() {
        let shown = format!(
            "{:?}",
            Credentials {
                client_id: "c".into(),
                auth_key: "s3cret".into()
            }
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
