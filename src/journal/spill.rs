//! The journal's spill file (`<data>/journal-spill.sqlite`): while the shared store (PostgreSQL)
//! is down or too slow, batches of records are kept here, durably and in order, and the writer
//! drains them into the store, oldest first, once it is back. Used only with a shared store; the
//! embedded journal is itself a local file.
//!
//! Order: each batch carries the number the writer gave it when it was formed, so a batch spilled
//! late (its write failed) still drains before the batches formed after it.

use super::db::Item;
use crate::store::StoreError;
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The oldest waiting records.
pub struct Waiting {
    /// `(seq, record)`, oldest first.
    pub items: Vec<(i64, Item)>,
    /// `seq`s of entries that could not be read back.
    pub unreadable: Vec<i64>,
}

pub struct Spill {
    /// Held only for one short local statement (no I/O beyond this file while held).
    conn: Mutex<Connection>,
    /// Records waiting.
    pending: AtomicU64,
    /// The largest batch number in the file when it was opened.
    last_batch: u64,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Sql(format!("journal spill: {e}"))
}

impl Spill {
    /// Opens (creating) the spill file; what an earlier run left still waits.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> Result<Spill, StoreError> {
        let c = crate::store::sqlite::open_durable_file(
            path,
            "journal spill",
            "CREATE TABLE IF NOT EXISTS spill (seq INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, item TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS spill_order ON spill (batch, seq);",
        )?;
        let (n, last): (i64, i64) = c
            .query_row("SELECT COUNT(*), COALESCE(MAX(batch), 0) FROM spill", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        Ok(Spill { conn: Mutex::new(c), pending: AtomicU64::new(n.max(0) as u64), last_batch: last.max(0) as u64 })
    }

    /// Records waiting to be drained.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// The batch number after the largest one found at open (batches of this run come after).
    pub fn next_batch(&self) -> u64 {
        self.last_batch + 1
    }

    /// Keeps a batch durably (one transaction).
    ///
    /// # Errors
    /// The spill file cannot be written.
    pub fn push(&self, batch: u64, items: &[Item]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let t = c.transaction().map_err(err)?;
        {
            let mut st = t.prepare_cached("INSERT INTO spill (batch, item) VALUES (?1, ?2)").map_err(err)?;
            for i in items {
                let json = serde_json::to_string(i).map_err(|e| StoreError::Sql(format!("journal spill: {e}")))?;
                st.execute(params![batch as i64, json]).map_err(err)?;
            }
        }
        t.commit().map_err(err)?;
        self.pending.fetch_add(items.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// Up to `n` of the oldest waiting records, in order (entries that cannot be read back are
    /// returned apart, to be removed and logged).
    ///
    /// # Errors
    /// The spill file cannot be read.
    pub fn first(&self, n: usize) -> Result<Waiting, StoreError> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = c.prepare_cached("SELECT seq, item FROM spill ORDER BY batch, seq LIMIT ?1").map_err(err)?;
        let rows = st
            .query_map([n as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for (seq, json) in rows {
            match serde_json::from_str::<Item>(&json) {
                Ok(i) => items.push((seq, i)),
                Err(e) => {
                    tracing::error!(seq, error = %e, "unreadable journal spill entry dropped");
                    unreadable.push(seq);
                }
            }
        }
        Ok(Waiting { items, unreadable })
    }

    /// Forgets records once they are in the store.
    ///
    /// # Errors
    /// The spill file cannot be written (the records are then drained again: harmless, writes
    /// are idempotent by `uid`).
    pub fn remove(&self, seqs: &[i64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let t = c.transaction().map_err(err)?;
        let mut removed = 0u64;
        {
            let mut st = t.prepare_cached("DELETE FROM spill WHERE seq = ?1").map_err(err)?;
            for s in seqs {
                removed += st.execute([s]).map_err(err)? as u64;
            }
        }
        t.commit().map_err(err)?;
        self.pending.fetch_sub(removed.min(self.pending()), Ordering::AcqRel);
        Ok(())
    }
}
