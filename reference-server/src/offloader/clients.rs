//! Client authentication (offloader.md §1.4–1.8): registered clients with bcrypt-hashed keys
//! (cost 10, `$2a$` like Go's x/crypto), the admin secret, self-registration, and in-memory bearer
//! sessions (one per client, expiring, dropped on unregister).
//!
//! Verifying a Basic credential costs one bcrypt compare (tens of ms of CPU). To keep authenticated
//! requests cheap without weakening them, a verified credential is remembered for a short time
//! under HMAC-SHA256(per-process random key, clientID ‖ 0 ‖ authKey): the secret itself is never
//! stored, a wrong key can never hit the cache, and unregistering a client drops its entries. A TTL
//! of zero disables the cache (bcrypt on every request, as the Go service does).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::store::{Store, StoreError};
use crate::proto::offloader::error::{MIN_KEY_LEN, check_registration};
use crate::proto::offloader::{AuthError, LoginError, RegisterError};

/// Go's `bcrypt.DefaultCost`.
pub const BCRYPT_COST: u32 = 10;

/// Registration failure: a rejection with upstream's text, or a store failure.
#[derive(Debug, thiserror::Error)]
pub enum RegisterFailure {
    #[error(transparent)]
    Rejected(#[from] RegisterError),
    #[error("registration failed: {0}")]
    Store(StoreError),
}

/// Why a key did not verify; the HTTP layer picks upstream's text per route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("error: empty key")]
    EmptyClientId,
    #[error("error: not found")]
    UnknownClient,
    #[error("key mismatch")]
    WrongKey,
    #[error("store failure: {0}")]
    Store(String),
}

impl From<VerifyError> for LoginError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::EmptyClientId => LoginError::EmptyClientId,
            VerifyError::UnknownClient => LoginError::UnknownClient,
            VerifyError::WrongKey | VerifyError::Store(_) => LoginError::WrongKey,
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Client(String),
}

#[derive(Debug)]
struct Session {
    client_id: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Sessions {
    by_token: HashMap<String, Session>,
    by_client: HashMap<String, String>,
}

/// Settings from `api.security`.
#[derive(Clone)]
pub struct AuthSettings {
    /// `Some(secret)` when enable_admin is on.
    pub admin_secret: Option<String>,
    pub self_registration: bool,
    pub session_ttl: Duration,
    pub credential_cache_ttl: Duration,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("admin", &self.admin_secret.is_some())
            .field("self_registration", &self.self_registration)
            .finish_non_exhaustive()
    }
}

/// The authentication service.
pub struct Clients {
    store: Store,
    settings: AuthSettings,
    sessions: Mutex<Sessions>,
    /// HMAC(clientID ‖ 0 ‖ key) → (client id, verified at).
    verified: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps stay consistent across a panic elsewhere (single inserts/removes).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 32-character base64url token from 43 random bytes (Go `newRandomToken`).
pub fn new_token() -> String {
    let bytes: [u8; 43] = rand::random();
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    s.truncate(MIN_KEY_LEN);
    s
}

impl Clients {
    pub fn new(store: Store, settings: AuthSettings) -> Self {
        Clients {
            store,
            settings,
            sessions: Mutex::new(Sessions::default()),
            verified: Mutex::new(HashMap::new()),
            mac_key: rand::random(),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    fn is_admin_secret(&self, key: &str) -> bool {
        self.settings
            .admin_secret
            .as_deref()
            .is_some_and(|secret| bool::from(secret.as_bytes().ct_eq(key.as_bytes())))
    }

    fn cache_key(&self, client_id: &str, key: &str) -> [u8; 32] {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("hmac takes any key length");
        mac.update(client_id.as_bytes());
        mac.update(&[0]);
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Registers a client (upstream order: key length, empty id, lookup, bcrypt limit, id limit).
    pub async fn register(&self, client_id: &str, key: &str) -> Result<(), RegisterFailure> {
        let already = match self.store.client_hash(client_id) {
            Ok(_) => true,
            Err(StoreError::NotFound | StoreError::EmptyKey) => false,
            Err(e) => return Err(RegisterFailure::Store(e)),
        };
        check_registration(client_id, key, already)?;
        let key = key.to_owned();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash_with_result(key, BCRYPT_COST))
            .await
            .map_err(|e| RegisterFailure::Store(StoreError::Task(e.to_string())))?
            .map_err(|e| RegisterFailure::Store(StoreError::Task(e.to_string())))?
            .format_for_version(bcrypt::Version::TwoA);
        match self.store.insert_client(client_id, &hash) {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(RegisterError::AlreadyRegistered.into()),
            Err(StoreError::KeyTooLarge) => Err(RegisterError::ClientIdTooLong.into()),
            Err(e) => Err(RegisterFailure::Store(e)),
        }
    }

    /// Checks a client's key against its stored hash (Go `Authenticate`).
    pub async fn verify(&self, client_id: &str, key: &str) -> Result<(), VerifyError> {
        let ttl = self.settings.credential_cache_ttl;
        let cache_key = (!ttl.is_zero()).then(|| self.cache_key(client_id, key));
        if let Some(ck) = &cache_key
            && let Some((_, at)) = lock(&self.verified).get(ck)
            && at.elapsed() < ttl
        {
            return Ok(());
        }
        let hash = self.store.client_hash(client_id).map_err(|e| match e {
            StoreError::EmptyKey => VerifyError::EmptyClientId,
            StoreError::NotFound => VerifyError::UnknownClient,
            other => VerifyError::Store(other.to_string()),
        })?;
        let key_owned = key.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            // Go rejects keys over 72 bytes instead of truncating them.
            bcrypt::non_truncating_verify(key_owned, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !ok {
            return Err(VerifyError::WrongKey);
        }
        if let Some(ck) = cache_key {
            let mut cache = lock(&self.verified);
            // Bound the cache: expired entries go first, then everything if a flood of distinct
            // valid credentials would grow it without limit.
            if cache.len() >= 10_000 {
                cache.retain(|_, (_, at)| at.elapsed() < ttl);
                if cache.len() >= 10_000 {
                    cache.clear();
                }
            }
            cache.insert(ck, (client_id.to_owned(), Instant::now()));
        }
        Ok(())
    }

    /// The basic path of `authHandler`.
    pub async fn basic(
        &self,
        client_id: &str,
        key: &str,
        is_unregister: bool,
    ) -> Result<Caller, AuthError> {
        if self.is_admin_secret(key) {
            return Ok(Caller::Admin);
        }
        if client_id.is_empty() {
            return Err(AuthError::EmptyClientId);
        }
        if self.settings.self_registration && !is_unregister {
            match self.register(client_id, key).await {
                Ok(()) | Err(RegisterFailure::Rejected(RegisterError::AlreadyRegistered)) => {}
                Err(e) => {
                    tracing::error!(client_id, error = %e, "failed to register client in auth handler");
                    return Err(AuthError::SelfRegistrationFailed);
                }
            }
        }
        self.verify(client_id, key)
            .await
            .map_err(|_| AuthError::Failed)?;
        Ok(Caller::Client(client_id.to_owned()))
    }

    /// The bearer path of `authHandler`.
    pub fn bearer(&self, token: &str) -> Result<Caller, AuthError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .by_token
            .get(token)
            .ok_or(AuthError::TokenInvalid)?;
        if Instant::now() > session.expires {
            let client = session.client_id.clone();
            sessions.by_token.remove(token);
            if sessions.by_client.get(&client).is_some_and(|t| t == token) {
                sessions.by_client.remove(&client);
            }
            return Err(AuthError::SessionExpired);
        }
        Ok(Caller::Client(session.client_id.clone()))
    }

    /// POST /login: a new bearer token, replacing the client's previous one.
    pub async fn login(&self, client_id: &str, key: &str) -> Result<String, LoginError> {
        self.verify(client_id, key).await?;
        let token = new_token();
        let mut sessions = lock(&self.sessions);
        if let Some(old) = sessions.by_client.remove(client_id) {
            sessions.by_token.remove(&old);
        }
        let expires = Instant::now() + self.settings.session_ttl;
        sessions.by_token.insert(
            token.clone(),
            Session {
                client_id: client_id.to_owned(),
                expires,
            },
        );
        sessions
            .by_client
            .insert(client_id.to_owned(), token.clone());
        Ok(token)
    }

    /// POST /unregister: remove the client, its token and its cached credentials.
    pub fn unregister(&self, client_id: &str) -> Result<(), StoreError> {
        self.store.remove_client(client_id)?;
        let mut sessions = lock(&self.sessions);
        if let Some(token) = sessions.by_client.remove(client_id) {
            sessions.by_token.remove(&token);
        }
        drop(sessions);
        lock(&self.verified).retain(|_, (id, _)| id != client_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(self_reg: bool, cache: Duration) -> (Clients, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("callsref-clients-{}", rand::random::<u64>()));
        let store = Store::open(&dir).unwrap();
        let settings = AuthSettings {
            admin_secret: Some("admin_secret_key".into()),
            self_registration: self_reg,
            session_ttl: Duration::from_secs(60),
            credential_cache_ttl: cache,
        };
        (Clients::new(store, settings), dir)
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn register_verify_and_go_texts() {
        let (c, dir) = clients(false, Duration::from_secs(60));
        assert_eq!(
            c.register("a", "short").await.unwrap_err().to_string(),
            "registration failed: key not long enough"
        );
        assert_eq!(
            c.register("", KEY).await.unwrap_err().to_string(),
            "registration failed: error: empty key"
        );
        c.register("a", KEY).await.unwrap();
        assert_eq!(
            c.register("a", KEY).await.unwrap_err().to_string(),
            "registration failed: already registered"
        );
        let long = "k".repeat(73);
        assert_eq!(
            c.register("b", &long).await.unwrap_err().to_string(),
            "registration failed: bcrypt: password length exceeds 72 bytes"
        );
        assert_eq!(
            c.register(&"c".repeat(65), KEY)
                .await
                .unwrap_err()
                .to_string(),
            "registration failed: failed to set key: error: key too large"
        );
        assert!(c.store.client_hash("a").unwrap().starts_with("$2a$10$"));
        assert_eq!(
            c.basic("a", KEY, false).await,
            Ok(Caller::Client("a".into()))
        );
        // cached now; a wrong key must still fail
        assert_eq!(
            c.basic("a", "wrongwrongwrongwrongwrongwrongwrong", false)
                .await,
            Err(AuthError::Failed)
        );
        assert_eq!(
            c.basic("x", "admin_secret_key", false).await,
            Ok(Caller::Admin)
        );
        assert_eq!(c.basic("", KEY, false).await, Err(AuthError::EmptyClientId));
        assert_eq!(
            c.verify("nobody", KEY).await,
            Err(VerifyError::UnknownClient)
        );
        assert_eq!(c.verify("", KEY).await, Err(VerifyError::EmptyClientId));
        c.unregister("a").unwrap();
        assert_eq!(
            c.basic("a", KEY, false).await,
            Err(AuthError::Failed),
            "cache must not outlive unregister"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn sessions_are_one_per_client_and_expire() {
        let (mut c, dir) = clients(true, Duration::ZERO);
        assert_eq!(
            c.basic("s", "short", false).await,
            Err(AuthError::SelfRegistrationFailed)
        );
        assert_eq!(
            c.basic("s", KEY, false).await,
            Ok(Caller::Client("s".into()))
        );
        let t1 = c.login("s", KEY).await.unwrap();
        assert_eq!(t1.len(), 32);
        assert_eq!(c.bearer(&t1), Ok(Caller::Client("s".into())));
        let t2 = c.login("s", KEY).await.unwrap();
        assert_eq!(c.bearer(&t1), Err(AuthError::TokenInvalid));
        assert!(c.bearer(&t2).is_ok());
        c.unregister("s").unwrap();
        assert_eq!(c.bearer(&t2), Err(AuthError::TokenInvalid));
        c.settings.session_ttl = Duration::ZERO;
        c.register("e", KEY).await.unwrap();
        let t3 = c.login("e", KEY).await.unwrap();
        // expiry is strict: any later instant is past a zero TTL
        assert_eq!(c.bearer(&t3), Err(AuthError::SessionExpired));
        assert_eq!(c.bearer(&t3), Err(AuthError::TokenInvalid));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
