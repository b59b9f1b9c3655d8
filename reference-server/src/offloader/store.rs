//! The durable store: registered clients (id → bcrypt hash) and job records (id → job JSON), in one
//! redb file under `store.data_source`.
//!
//! The Go service keeps both in one bitcask key space ("job_<id>" keys beside client ids); here they
//! are separate tables, so a client named "job_x" cannot collide with a job. Error texts that reach
//! clients mirror bitcask's (`error: not found`, `error: empty key`, `error: key too large`,
//! `error: value too large`) because they appear inside documented HTTP error bodies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

const CLIENTS: TableDefinition<&str, &str> = TableDefinition::new("clients");
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");

/// bitcask's default maximum key size, which bounds client ids (offloader.md §1.4).
pub const MAX_KEY_LEN: usize = 64;
/// bitcask's default maximum value size, which bounds job records (offloader.md §2.3).
pub const MAX_VALUE_LEN: usize = 65_536;
/// The database file inside the data-source directory.
const DB_FILE: &str = "offloader.redb";

/// Store failures. `Display` gives the bitcask-compatible text clients see.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("error: not found")]
    NotFound,
    #[error("error: empty key")]
    EmptyKey,
    #[error("failed to set key: error: key too large")]
    KeyTooLarge,
    #[error("failed to set key: error: value too large")]
    ValueTooLarge,
    #[error("error: key exists")]
    Conflict,
    #[error("failed to open store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: Box<redb::Error>,
    },
    #[error("store task failed: {0}")]
    Task(String),
    #[error("store i/o failed: {0}")]
    Db(Box<redb::Error>),
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

/// A handle to the store; cheap to clone. redb serialises writers and fsyncs each commit, so every
/// acknowledged write survives a crash, as bitcask's sync-after-put does.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (or creates) the store in directory `dir`, mode 0700 like the Go service.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_err = |e: redb::Error| StoreError::Open {
            path: dir.to_owned(),
            source: Box::new(e),
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let db = Database::create(dir.join(DB_FILE)).map_err(|e| open_err(e.into()))?;
        let txn = db.begin_write().map_err(|e| open_err(e.into()))?;
        txn.open_table(CLIENTS).map_err(|e| open_err(e.into()))?;
        txn.open_table(JOBS).map_err(|e| open_err(e.into()))?;
        txn.commit().map_err(|e| open_err(e.into()))?;
        Ok(Store { db: Arc::new(db) })
    }

    /// The bcrypt hash of a client.
    pub fn client_hash(&self, id: &str) -> Result<String, StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(CLIENTS).map_err(db)?;
        let value = table.get(id).map_err(db)?;
        value
            .map(|v| v.value().to_owned())
            .ok_or(StoreError::NotFound)
    }

    /// Stores a client's hash unless the id is taken ([`StoreError::Conflict`]).
    pub fn insert_client(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if id.len() > MAX_KEY_LEN {
            return Err(StoreError::KeyTooLarge);
        }
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(CLIENTS).map_err(db)?;
            if table.get(id).map_err(db)?.is_some() {
                return Err(StoreError::Conflict);
            }
            table.insert(id, hash).map_err(db)?;
        }
        txn.commit().map_err(db)
    }

    /// Removes a client; [`StoreError::NotFound`] if it does not exist.
    pub fn remove_client(&self, id: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let txn = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut table = txn.open_table(CLIENTS).map_err(db)?;
            table.remove(id).map_err(db)?.is_some()
        };
        txn.commit().map_err(db)?;
        if removed {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// A job record's JSON.
    pub fn job(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(JOBS).map_err(db)?;
        let value = table.get(id).map_err(db)?;
        value
            .map(|v| v.value().to_vec())
            .ok_or(StoreError::NotFound)
    }

    /// Writes (or overwrites) a job record.
    pub fn put_job(&self, id: &str, json: &[u8]) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if json.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge);
        }
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(JOBS).map_err(db)?;
            table.insert(id, json).map_err(db)?;
        }
        txn.commit().map_err(db)
    }

    /// Deletes a job record; deleting a missing record is not an error (bitcask's Delete isn't).
    pub fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(JOBS).map_err(db)?;
            table.remove(id).map_err(db)?;
        }
        txn.commit().map_err(db)
    }

    /// Every job record, for reconciliation at startup.
    pub fn jobs(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(JOBS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "callsref-store-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn clients_and_jobs_round_trip_and_survive_reopen() {
        let dir = tmp();
        {
            let s = Store::open(&dir).unwrap();
            s.insert_client("c1", "hash").unwrap();
            assert!(matches!(
                s.insert_client("c1", "other"),
                Err(StoreError::Conflict)
            ));
            assert_eq!(
                s.insert_client(&"x".repeat(65), "h")
                    .unwrap_err()
                    .to_string(),
                "failed to set key: error: key too large"
            );
            assert_eq!(
                s.client_hash("").unwrap_err().to_string(),
                "error: empty key"
            );
            assert_eq!(
                s.client_hash("nope").unwrap_err().to_string(),
                "error: not found"
            );
            s.put_job("abc", b"{}").unwrap();
            assert!(matches!(
                s.put_job("big", &vec![b'x'; MAX_VALUE_LEN + 1]),
                Err(StoreError::ValueTooLarge)
            ));
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.client_hash("c1").unwrap(), "hash");
        assert_eq!(s.job("abc").unwrap(), b"{}");
        assert_eq!(s.jobs().unwrap().len(), 1);
        s.delete_job("abc").unwrap();
        assert!(matches!(s.job("abc"), Err(StoreError::NotFound)));
        s.remove_client("c1").unwrap();
        assert!(matches!(s.remove_client("c1"), Err(StoreError::NotFound)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
