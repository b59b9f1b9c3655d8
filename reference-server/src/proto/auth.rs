//! The `Authorization` header as rtcd and calls-offloader read it.
//!
//! Both services use the same rule (rtcd.md §1.3, offloader.md §1.4): a header that starts with exactly
//! `Bearer ` (case-sensitive) carries a bearer token; anything else goes down Go's `Request.BasicAuth`
//! path, where the `Basic ` prefix is case-insensitive, the payload is standard base64 with padding and
//! the credentials split at the first `:`. A lower-case `bearer x` header is therefore a malformed
//! Basic header, not a token.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const BEARER_PREFIX: &str = "Bearer ";
const BASIC_PREFIX: &str = "Basic ";

/// Credentials carried by an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic base64(clientID:authKey)`. The admin form has the admin secret as `auth_key` and,
    /// conventionally, an empty `client_id`.
    Basic { client_id: String, auth_key: String },
    /// `Bearer <token>`, a token from `POST /login`. May be empty (`"Bearer "`), which no server accepts.
    Bearer(String),
}

// Secrets stay out of logs: Debug shows the client id and the scheme only.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Basic { client_id, .. } => f
                .debug_struct("Basic")
                .field("client_id", client_id)
                .field("auth_key", &"<redacted>")
                .finish(),
            Authorization::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Why an `Authorization` header is not usable. Servers answer all of these the same way
/// (offloader: 401 "authentication failed: invalid auth header"); the variants exist for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthHeaderError {
    #[error("authorization header is missing")]
    Missing,
    #[error("authorization scheme is neither basic nor bearer")]
    UnknownScheme,
    #[error("basic credentials are not valid base64")]
    BadBase64,
    #[error("basic credentials are not valid utf-8")]
    NotUtf8,
    #[error("basic credentials have no ':' separator")]
    NoSeparator,
}

impl Authorization {
    /// Basic credentials for a client.
    pub fn basic(client_id: impl Into<String>, auth_key: impl Into<String>) -> Self {
        Authorization::Basic {
            client_id: client_id.into(),
            auth_key: auth_key.into(),
        }
    }

    /// Basic credentials carrying the admin secret, with the conventional empty user name.
    pub fn admin(secret: impl Into<String>) -> Self {
        Authorization::basic("", secret)
    }

    /// Parses the value of an `Authorization` header (`None` when the header is absent).
    pub fn parse(value: Option<&str>) -> Result<Self, AuthHeaderError> {
        let value = value.ok_or(AuthHeaderError::Missing)?;
        if let Some(token) = value.strip_prefix(BEARER_PREFIX) {
            return Ok(Authorization::Bearer(token.to_owned()));
        }
        // Go compares the prefix with EqualFold; `get` guards against a cut inside a UTF-8 sequence.
        let prefix = value
            .get(..BASIC_PREFIX.len())
            .ok_or(AuthHeaderError::UnknownScheme)?;
        if !prefix.eq_ignore_ascii_case(BASIC_PREFIX) {
            return Err(AuthHeaderError::UnknownScheme);
        }
        let decoded = STANDARD
            .decode(&value[BASIC_PREFIX.len()..])
            .map_err(|_| AuthHeaderError::BadBase64)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthHeaderError::NotUtf8)?;
        let (client_id, auth_key) = text.split_once(':').ok_or(AuthHeaderError::NoSeparator)?;
        Ok(Authorization::basic(client_id, auth_key))
    }

    /// The header value to send, e.g. `Basic Y2xpZW50OmtleQ==` or `Bearer abc`.
    pub fn to_header_value(&self) -> String {
        match self {
            Authorization::Basic {
                client_id,
                auth_key,
            } => {
                format!(
                    "{BASIC_PREFIX}{}",
                    STANDARD.encode(format!("{client_id}:{auth_key}"))
                )
            }
            Authorization::Bearer(token) => format!("{BEARER_PREFIX}{token}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_matches_rfc7617_example() {
        // RFC 7617 §2: user "Aladdin", password "open sesame".
        let auth = Authorization::basic("Aladdin", "open sesame");
        assert_eq!(auth.to_header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(
            Authorization::parse(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
            Ok(auth)
        );
    }

    #[test]
    fn basic_prefix_is_case_insensitive_bearer_is_not() {
        assert_eq!(
            Authorization::parse(Some("bAsIc QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
            Ok(Authorization::basic("Aladdin", "open sesame"))
        );
        assert_eq!(
            Authorization::parse(Some("bearer xyz")),
            Err(AuthHeaderError::UnknownScheme)
        );
        assert_eq!(
            Authorization::parse(Some("Bearer xyz")),
            Ok(Authorization::Bearer("xyz".into()))
        );
        assert_eq!(
            Authorization::parse(Some("Bearer ")),
            Ok(Authorization::Bearer(String::new()))
        );
    }

    #[test]
    fn admin_has_empty_user_and_splits_at_first_colon() {
        // base64(":se:cret")
        let parsed = Authorization::parse(Some("Basic OnNlOmNyZXQ=")).unwrap();
        assert_eq!(parsed, Authorization::admin("se:cret"));
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        assert_eq!(Authorization::parse(None), Err(AuthHeaderError::Missing));
        assert_eq!(
            Authorization::parse(Some("")),
            Err(AuthHeaderError::UnknownScheme)
        );
        assert_eq!(
            Authorization::parse(Some("Basic !!!")),
            Err(AuthHeaderError::BadBase64)
        );
        // base64("nocolon")
        assert_eq!(
            Authorization::parse(Some("Basic bm9jb2xvbg==")),
            Err(AuthHeaderError::NoSeparator)
        );
        // base64 of the bytes ff fe ':'
        assert_eq!(
            Authorization::parse(Some("Basic //46")),
            Err(AuthHeaderError::NotUtf8)
        );
        // a multi-byte character straddling the prefix length must not panic
        assert_eq!(
            Authorization::parse(Some("Basié")),
            Err(AuthHeaderError::UnknownScheme)
        );
    }

    #[test]
    fn debug_does_not_leak_secrets() {
        let shown = format!(
            "{:?} {:?}",
            Authorization::basic("id", "s3cret"),
            Authorization::Bearer("t0k".into())
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0k"),
            "{shown}"
        );
    }
}
