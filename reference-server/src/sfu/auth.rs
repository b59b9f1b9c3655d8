//! Plugin credentials and bearer tokens (rtcd §1.3): bcrypt hashes persisted in redb, one
//! in-memory token per client with expiry, and a rate limit on every bcrypt operation.
//!
//! Error messages reproduce rtcd's, since the plugin and tests see them in response bodies.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use redb::{Database, TableDefinition};

use crate::proto::rtcd::http::MIN_KEY_LEN;

const CLIENTS: TableDefinition<&str, &str> = TableDefinition::new("clients");
/// bcrypt DefaultCost, as rtcd.
const BCRYPT_COST: u32 = 10;
/// Wait at most this long for a bcrypt slot.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// bcrypt operations per second per CPU (MM-53483).
const OPS_PER_CPU: f64 = 12.0;

/// A credential operation that failed; `Display` is rtcd's message.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Message(String),
    #[error("opening store {path}: {source}")]
    Open {
        path: String,
        source: Box<redb::Error>,
    },
}

fn msg(s: impl Into<String>) -> AuthError {
    AuthError::Message(s.into())
}

/// Token bucket with burst 1: each operation reserves the next free slot.
#[derive(Debug)]
struct Limiter {
    next: Mutex<Instant>,
    interval: Duration,
}

impl Limiter {
    async fn wait(&self) -> Result<(), String> {
        let slot = {
            let now = Instant::now();
            // Invariant: the lock is never held across an await or a panic point.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(now);
            if slot > now + AUTH_TIMEOUT {
                return Err("rate: Wait(n=1) would exceed context deadline".into());
            }
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Tokens {
    by_token: HashMap<String, (String, Instant)>,
    by_client: HashMap<String, String>,
}

/// Credentials store and token cache.
#[derive(Debug, Clone)]
pub struct Auth {
    db: Arc<Database>,
    tokens: Arc<Mutex<Tokens>>,
    limiter: Arc<Limiter>,
    expiry: Duration,
}

/// Store errors spelled as rtcd's bitcask store spells them.
const NOT_FOUND: &str = "error: not found";
const EMPTY_KEY: &str = "error: empty key";

impl Auth {
    /// Opens (or creates) the store at `path` (a directory, as rtcd's `data_source`).
    pub fn open(path: &Path, token_expiry: Duration) -> Result<Auth, AuthError> {
        let open_err = |e: redb::Error| AuthError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        };
        std::fs::create_dir_all(path).map_err(|e| open_err(e.into()))?;
        let db = Database::create(path.join("callsref.redb")).map_err(|e| open_err(e.into()))?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Ok(Auth {
            db: Arc::new(db),
            tokens: Arc::new(Mutex::new(Tokens::default())),
            limiter: Arc::new(Limiter {
                next: Mutex::new(Instant::now()),
                interval: Duration::from_secs_f64(1.0 / (OPS_PER_CPU * cpus)),
            }),
            expiry: token_expiry,
        })
    }

    fn get(&self, id: &str) -> Result<String, String> {
        if id.is_empty() {
            return Err(EMPTY_KEY.into());
        }
        let tx = self.db.begin_read().map_err(|e| e.to_string())?;
        let table = match tx.open_table(CLIENTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(NOT_FOUND.into()),
            Err(e) => return Err(e.to_string()),
        };
        match table.get(id).map_err(|e| e.to_string())? {
            Some(v) => Ok(v.value().to_string()),
            None => Err(NOT_FOUND.into()),
        }
    }

    fn put(&self, id: &str, hash: &str) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = tx.open_table(CLIENTS).map_err(|e| e.to_string())?;
            t.insert(id, hash).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }

    fn delete(&self, id: &str) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = tx.open_table(CLIENTS).map_err(|e| e.to_string())?;
            t.remove(id).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Checks `clientID:authKey`. Errors read "authentication failed: ...".
    pub async fn authenticate(&self, id: &str, key: &str) -> Result<(), AuthError> {
        let hash = self
            .get(id)
            .map_err(|e| msg(format!("authentication failed: {e}")))?;
        self.limiter
            .wait()
            .await
            .map_err(|e| msg(format!("authentication failed: {e}")))?;
        let key = key.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(key, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(msg("authentication failed"))
        }
    }

    /// Registers a client.
    pub async fn register(&self, id: &str, key: &str) -> Result<(), AuthError> {
        if key.len() < MIN_KEY_LEN {
            return Err(msg("registration failed: key not long enough"));
        }
        match self.get(id) {
            Ok(_) => return Err(msg("registration failed: already registered")),
            Err(e) if e == NOT_FOUND => {}
            Err(e) => return Err(msg(format!("registration failed: {e}"))),
        }
        self.limiter
            .wait()
            .await
            .map_err(|e| msg(format!("registration failed: {e}")))?;
        let key = key.to_string();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(key, BCRYPT_COST))
            .await
            .map_err(|e| msg(format!("registration failed: {e}")))?
            .map_err(|e| msg(format!("registration failed: {e}")))?;
        if self.get(id).is_ok() {
            return Err(msg("registration failed: already registered"));
        }
        self.put(id, &hash)
            .map_err(|e| msg(format!("registration failed: {e}")))
    }

    /// Removes a client and its token.
    pub fn unregister(&self, id: &str) -> Result<(), AuthError> {
        self.get(id)
            .map_err(|e| msg(format!("unregister failed: {e}")))?;
        self.delete(id)
            .map_err(|e| msg(format!("unregister failed: {e}")))?;
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tok) = t.by_client.remove(id) {
            t.by_token.remove(&tok);
        }
        Ok(())
    }

    /// Issues a fresh token, invalidating the client's previous one.
    pub async fn login(&self, id: &str, key: &str) -> Result<String, AuthError> {
        self.authenticate(id, key)
            .await
            .map_err(|e| msg(format!("login failed: {e}")))?;
        let token = new_token();
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = t.by_client.insert(id.to_string(), token.clone()) {
            t.by_token.remove(&old);
        }
        t.by_token.insert(
            token.clone(),
            (id.to_string(), Instant::now() + self.expiry),
        );
        Ok(token)
    }

    /// The client a bearer token belongs to. Errors read as rtcd's session cache.
    pub fn token_client(&self, token: &str) -> Result<String, AuthError> {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match t.by_token.get(token) {
            None => Err(msg("token is invalid")),
            Some((_, exp)) if Instant::now() >= *exp => {
                if let Some((client, _)) = t.by_token.remove(token) {
                    t.by_client.remove(&client);
                }
                Err(msg("session is expired"))
            }
            Some((client, _)) => Ok(client.clone()),
        }
    }
}

/// 32 base64url characters of OS randomness, as the plugin and rtcd make keys and tokens.
fn new_token() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn register_login_token_and_persistence() {
        let dir = std::env::temp_dir().join(format!("callsref-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = "k".repeat(32);
        {
            let a = Auth::open(&dir, Duration::from_secs(60)).unwrap();
            let e = a.register("c1", "short").await.unwrap_err().to_string();
            assert_eq!(e, "registration failed: key not long enough");
            a.register("c1", &key).await.unwrap();
            let e = a.register("c1", &key).await.unwrap_err().to_string();
            assert_eq!(e, "registration failed: already registered");
            let e = a.register("", &key).await.unwrap_err().to_string();
            assert_eq!(e, "registration failed: error: empty key");
            let t1 = a.login("c1", &key).await.unwrap();
            assert_eq!(t1.len(), 32);
            assert_eq!(a.token_client(&t1).unwrap(), "c1");
            let t2 = a.login("c1", &key).await.unwrap();
            assert_eq!(
                a.token_client(&t1).unwrap_err().to_string(),
                "token is invalid"
            );
            assert_eq!(a.token_client(&t2).unwrap(), "c1");
            let e = a.login("c2", &key).await.unwrap_err().to_string();
            assert_eq!(e, "login failed: authentication failed: error: not found");
            let e = a
                .login("c1", &"x".repeat(32))
                .await
                .unwrap_err()
                .to_string();
            assert_eq!(e, "login failed: authentication failed");
        }
        // Credentials survive a restart; tokens do not.
        let a = Auth::open(&dir, Duration::from_secs(60)).unwrap();
        a.authenticate("c1", &key).await.unwrap();
        a.unregister("c1").unwrap();
        let e = a.unregister("c1").unwrap_err().to_string();
        assert_eq!(e, "unregister failed: error: not found");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
