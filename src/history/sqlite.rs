//! The embedded store: one SQLite file (WAL) under the data directory, which an auditor can open
//! with the `sqlite3` tool. One writer connection (SQLite allows one writer at a time anyway) and a
//! few reader connections, so lookups never wait behind a write.

use super::store::{Conn, ReadFn, Store, StoreError, TxFn, P, V};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

fn err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Sql(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating) `path`. `full_sync`: fsync every commit (survives power loss, not only a
    /// killed process).
    ///
    /// # Errors
    /// The file cannot be opened or the schema created.
    pub fn open(path: &Path, full_sync: bool, readers: usize) -> Result<SqliteStore, StoreError> {
        let open = |write: bool| -> Result<Connection, StoreError> {
            let c = Connection::open(path).map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
            c.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
            if write {
                c.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
                c.pragma_update(None, "synchronous", if full_sync { "FULL" } else { "NORMAL" }).map_err(err)?;
            }
            Ok(c)
        };
        let writer = open(true)?;
        super::db::create_schema(&mut SqliteConn(&writer))?;
        let readers = (0..readers.max(1)).map(|_| open(false).map(Mutex::new)).collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore { writer: Mutex::new(writer), readers, next: AtomicUsize::new(0) })
    }

    /// A private in-memory store: one CLI run, one pack test case, one replay.
    ///
    /// # Errors
    /// Only if SQLite itself fails.
    pub fn memory() -> Result<SqliteStore, StoreError> {
        let c = Connection::open_in_memory().map_err(err)?;
        super::db::create_schema(&mut SqliteConn(&c))?;
        Ok(SqliteStore { writer: Mutex::new(c), readers: Vec::new(), next: AtomicUsize::new(0) })
    }
}

struct SqliteConn<'a>(&'a Connection);

fn to_sql<'a>(p: &P<'a>) -> ToSqlOutput<'a> {
    match p {
        P::T(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        P::I(i) => ToSqlOutput::Owned(Value::Integer(*i)),
        P::Null => ToSqlOutput::Owned(Value::Null),
    }
}

/// `$1` → `?1`: the same SQL text serves both stores.
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Conn for SqliteConn<'_> {
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, StoreError> {
        let mut st = self.0.prepare_cached(&dialect(sql)).map_err(err)?;
        let ps: Vec<ToSqlOutput<'_>> = params.iter().map(to_sql).collect();
        let n = st.execute(rusqlite::params_from_iter(ps.iter())).map_err(err)?;
        Ok(n as u64)
    }
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Vec<V>>, StoreError> {
        let mut st = self.0.prepare_cached(&dialect(sql)).map_err(err)?;
        let cols = st.column_count();
        let ps: Vec<ToSqlOutput<'_>> = params.iter().map(to_sql).collect();
        let mut rows = st.query(rusqlite::params_from_iter(ps.iter())).map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut row = Vec::with_capacity(cols);
            for i in 0..cols {
                row.push(match r.get_ref(i).map_err(err)? {
                    ValueRef::Integer(i) => V::I(i),
                    ValueRef::Text(t) => V::T(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(f) => V::I(f as i64),
                    ValueRef::Null | ValueRef::Blob(_) => V::Null,
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn shared(&self) -> bool {
        false
    }
    fn tx(&self, f: &mut TxFn<'_>) -> Result<bool, StoreError> {
        super::store::with_retries(|| {
            let c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            c.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            match f(&mut SqliteConn(&c)) {
                Ok(true) => match c.execute_batch("COMMIT") {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        let _ = c.execute_batch("ROLLBACK");
                        Err(err(e))
                    }
                },
                Ok(false) => {
                    c.execute_batch("ROLLBACK").map_err(err)?;
                    Ok(false)
                }
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
    }
    fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError> {
        if self.readers.is_empty() {
            let c = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            return f(&mut SqliteConn(&c));
        }
        let n = self.readers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // Take the first free reader; wait on one only when all are busy.
        for i in 0..n {
            if let Ok(c) = self.readers[(start + i) % n].try_lock() {
                return f(&mut SqliteConn(&c));
            }
        }
        let c = self.readers[start % n].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut SqliteConn(&c))
    }
}
