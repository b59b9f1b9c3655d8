//! Every error the offloader API answers, with its HTTP status and its exact text (offloader.md
//! §1.4–1.7, §2.2–2.7), plus the credential shape rules of `/register`.
//!
//! A server turns any of these into a response with [`StatusError::envelope`]; a client compares
//! the `error` field of a response with `to_string()` of the expected variant.

use super::goread::DecodeError;
use super::http::error_envelope;
use super::validate::{ConfigError, ServiceConfigError};

/// An error with the HTTP status upstream answers it with.
pub trait StatusError: std::fmt::Display {
    fn status(&self) -> u16;

    /// The response body: `{"code":"<status>","error":"<text>"}` and a newline.
    fn envelope(&self) -> String {
        error_envelope(self.status(), &self.to_string())
    }
}

/// `bcrypt` keys shorter than this are refused (`MinKeyLen`).
pub const MIN_KEY_LEN: usize = 32;
/// bcrypt refuses longer passwords (`ErrPasswordTooLong`).
pub const MAX_KEY_BYTES: usize = 72;
/// bitcask's default maximum key size; a longer client id cannot be stored.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Failures of the authentication step every protected route runs first. All are 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable `Authorization` header (missing, bad base64, no `:`, unknown scheme).
    #[error("authentication failed: invalid auth header")]
    InvalidHeader,
    /// Basic auth with an empty user name and a password that is not the admin secret.
    #[error("authentication failed: unauthorized")]
    EmptyClientId,
    /// Self-registration during auth failed for a reason other than "already registered".
    #[error("unauthorized")]
    SelfRegistrationFailed,
    /// Unknown client or wrong key.
    #[error("authentication failed")]
    Failed,
    #[error("authentication failed: token is invalid")]
    TokenInvalid,
    #[error("authentication failed: session is expired")]
    SessionExpired,
}

impl StatusError for AuthError {
    fn status(&self) -> u16 {
        401
    }
}

/// `POST /register` failures, all 400 (auth failures before it are [`AuthError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The body did not decode; the text is Go's bare decode error (e.g. `EOF`).
    #[error("{0}")]
    Decode(DecodeError),
    #[error("registration failed: key not long enough")]
    KeyTooShort,
    #[error("registration failed: error: empty key")]
    EmptyClientId,
    #[error("registration failed: already registered")]
    AlreadyRegistered,
    #[error("registration failed: bcrypt: password length exceeds 72 bytes")]
    KeyTooLong,
    #[error("registration failed: failed to set key: error: key too large")]
    ClientIdTooLong,
}

impl StatusError for RegisterError {
    fn status(&self) -> u16 {
        400
    }
}

/// Upstream's registration checks in upstream's order: key length, empty client id, already
/// registered (the caller's store lookup), bcrypt's 72-byte limit, the store's 64-byte key limit.
/// Lengths are in bytes, as Go's `len`.
pub fn check_registration(
    client_id: &str,
    auth_key: &str,
    already_registered: bool,
) -> Result<(), RegisterError> {
    if auth_key.len() < MIN_KEY_LEN {
        return Err(RegisterError::KeyTooShort);
    }
    if client_id.is_empty() {
        return Err(RegisterError::EmptyClientId);
    }
    if already_registered {
        return Err(RegisterError::AlreadyRegistered);
    }
    if auth_key.len() > MAX_KEY_BYTES {
        return Err(RegisterError::KeyTooLong);
    }
    if client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(RegisterError::ClientIdTooLong);
    }
    Ok(())
}

/// `POST /unregister` failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnregisterError {
    /// Both `enable_admin` and `allow_self_registration` are off (checked before auth). 403.
    #[error("unregister not enabled")]
    NotEnabled,
    #[error(transparent)]
    Auth(AuthError),
    /// Bare Go decode error. 400.
    #[error("{0}")]
    Decode(DecodeError),
    /// 400.
    #[error("client id should not be empty")]
    EmptyClientId,
    /// A non-admin caller names another client. 403.
    #[error("client id not valid")]
    ClientIdMismatch,
    /// 400.
    #[error("unregister failed: error: not found")]
    NotFound,
}

impl StatusError for UnregisterError {
    fn status(&self) -> u16 {
        match self {
            UnregisterError::NotEnabled | UnregisterError::ClientIdMismatch => 403,
            UnregisterError::Auth(_) => 401,
            UnregisterError::Decode(_)
            | UnregisterError::EmptyClientId
            | UnregisterError::NotFound => 400,
        }
    }
}

/// `POST /login` failures, all 400 (never 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    Decode(DecodeError),
    /// Wrong (or empty) key for a known client.
    #[error("login failed: authentication failed")]
    WrongKey,
    #[error("login failed: authentication failed: error: not found")]
    UnknownClient,
    #[error("login failed: authentication failed: error: empty key")]
    EmptyClientId,
}

impl StatusError for LoginError {
    fn status(&self) -> u16 {
        400
    }
}

/// Failures of the `/jobs` routes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(AuthError),
    /// 400, `POST /jobs` and `POST /jobs/init`.
    #[error("failed to decode request body: {0}")]
    Decode(DecodeError),
    /// 400, `POST /jobs`.
    #[error(transparent)]
    InvalidConfig(ConfigError),
    /// 400, `POST /jobs/init`.
    #[error("invalid job service config: {0}")]
    InvalidServiceConfig(ServiceConfigError),
    /// 500. "recording" is in the text for transcriber jobs too.
    #[error("failed to create recording job: max concurrent jobs reached")]
    MaxConcurrentJobs,
    /// 500, any other backend failure while creating.
    #[error("failed to create recording job: {0}")]
    Create(String),
    /// 500, the job started but its record could not be stored.
    #[error("failed to save job: {0}")]
    Save(String),
    /// 404 from GET or DELETE of an unknown id (missing colon and doubled phrase as upstream).
    #[error("failed to get job failed to get job: error: not found")]
    NotFound,
    /// 400, DELETE of a job without `stop_at`.
    #[error("job is running")]
    Running,
    /// 500, DELETE backend failure.
    #[error("failed to delete recording job: {0}")]
    Delete(String),
    /// 403 (sic), logs backend failure.
    #[error("failed to get recording job logs: {0}")]
    Logs(String),
    /// 500, image pull failure in init.
    #[error("failed to update job runner: {0}")]
    Init(String),
    /// 400; unreachable through the router's id pattern.
    #[error("missing job ID")]
    MissingJobId,
}

impl StatusError for ApiError {
    fn status(&self) -> u16 {
        match self {
            ApiError::Auth(_) => 401,
            ApiError::Decode(_)
            | ApiError::InvalidConfig(_)
            | ApiError::InvalidServiceConfig(_)
            | ApiError::Running
            | ApiError::MissingJobId => 400,
            ApiError::NotFound => 404,
            ApiError::Logs(_) => 403,
            ApiError::MaxConcurrentJobs
            | ApiError::Create(_)
            | ApiError::Save(_)
            | ApiError::Delete(_)
            | ApiError::Init(_) => 500,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        ApiError::InvalidConfig(e)
    }
}

impl From<ServiceConfigError> for ApiError {
    fn from(e: ServiceConfigError) -> Self {
        ApiError::InvalidServiceConfig(e)
    }
}
