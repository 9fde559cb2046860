//! The history outbox: an exchange the gateway accepted whose history write failed (the shared
//! store unreachable, the disk full, the database locked) is kept in a small local SQLite file and
//! applied later, in order — so an acknowledged claim is never missing from history, even when the
//! store was down at the moment it was acknowledged. While anything waits here, later exchanges
//! queue behind it (history is applied in the order the gateway accepted it).

use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// `(seq, request bytes, response JSON)` of a waiting exchange.
pub type Waiting = (i64, Vec<u8>, Option<String>);

pub struct Outbox {
    conn: Mutex<Connection>,
    pending: AtomicU64,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Sql(format!("history outbox: {e}"))
}

impl Outbox {
    /// Opens (creating) the outbox file; what an earlier run left is still pending.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Outbox, StoreError> {
        let c = crate::store::sqlite::open_durable_file(
            path,
            "history outbox",
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, request BLOB NOT NULL, response TEXT)",
        )?;
        let n: i64 = c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).map_err(err)?;
        Ok(Outbox { conn: Mutex::new(c), pending: AtomicU64::new(n.max(0) as u64) })
    }

    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Keeps an exchange durably.
    ///
    /// # Errors
    /// The outbox itself cannot be written (then the exchange is lost from history, and counted).
    pub fn push(&self, request: &[u8], response: Option<&str>) -> Result<(), StoreError> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        c.execute("INSERT INTO outbox (request, response) VALUES (?1, ?2)", params![request, response]).map_err(err)?;
        self.pending.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The oldest waiting exchange.
    ///
    /// # Errors
    /// The outbox cannot be read.
    pub fn first(&self) -> Result<Option<Waiting>, StoreError> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        c.query_row("SELECT seq, request, response FROM outbox ORDER BY seq LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(err)
    }

    /// # Errors
    /// The outbox cannot be written.
    pub fn remove(&self, seq: i64) -> Result<(), StoreError> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if c.execute("DELETE FROM outbox WHERE seq = ?1", [seq]).map_err(err)? > 0 {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }
}
