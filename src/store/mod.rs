//! The storage layer history and the journal both stand on: the [`Store`] trait and its two
//! engines — SQLite (embedded default, one file under the data directory, [`sqlite`]) and
//! PostgreSQL (shared by several instances or a whole 医共体, [`postgres`]) — running the same SQL,
//! plus private key files and the pseudonymisation of psn_no ([`key`]). A store only runs
//! statements and transactions; what the statements mean is its owner's business (`history::db`,
//! `journal::db`), and each owner hands the engine the schema it creates.
//!
//! Architecture Invariant: knows neither history nor the journal; both import it, never each other.

pub mod key;
pub mod postgres;
pub mod sqlite;

pub use key::{meta_key, write_private, Pseudonymizer};

use smol_str::SmolStr;
use std::fmt;

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    T(&'a str),
    I(i64),
    Null,
}

impl<'a> From<&'a str> for P<'a> {
    fn from(s: &'a str) -> Self {
        P::T(s)
    }
}
impl<'a> From<&'a String> for P<'a> {
    fn from(s: &'a String) -> Self {
        P::T(s)
    }
}
impl<'a> From<&'a SmolStr> for P<'a> {
    fn from(s: &'a SmolStr) -> Self {
        P::T(s)
    }
}
impl From<i64> for P<'_> {
    fn from(i: i64) -> Self {
        P::I(i)
    }
}
impl<'a, T: Into<P<'a>>> From<Option<T>> for P<'a> {
    fn from(o: Option<T>) -> Self {
        o.map_or(P::Null, Into::into)
    }
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V {
    T(String),
    I(i64),
    Null,
}

impl V {
    pub fn text(&self) -> Option<&str> {
        match self {
            V::T(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            V::I(i) => Some(*i),
            V::T(s) => s.parse().ok(),
            V::Null => None,
        }
    }
    /// The text as a [`SmolStr`] (`""` when absent or not text).
    pub fn smol(&self) -> SmolStr {
        SmolStr::new(self.text().unwrap_or(""))
    }
    pub fn string(&self) -> String {
        self.text().unwrap_or_default().to_owned()
    }
}

#[derive(Debug)]
pub enum StoreError {
    /// The store cannot be reached (connection refused, pool exhausted, file unreadable).
    Unavailable(String),
    /// A statement failed.
    Sql(String),
    /// A transaction lost a race (serialization failure, deadlock) and may be retried.
    Conflict(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(e) => write!(f, "history store unavailable: {e}"),
            StoreError::Sql(e) => write!(f, "history store error: {e}"),
            StoreError::Conflict(e) => write!(f, "history store conflict: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// One connection inside a transaction or a read. SQL uses `$1, $2, …` placeholders.
pub trait Conn {
    /// Runs a statement; returns the number of rows it changed.
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Vec<V>>, StoreError>;
}

pub type TxFn<'a> = dyn FnMut(&mut dyn Conn) -> Result<bool, StoreError> + 'a;
/// Creates an owner's tables when an engine opens (idempotent: `CREATE … IF NOT EXISTS`).
pub type Schema = fn(&mut dyn Conn) -> Result<(), StoreError>;
pub type ReadFn<'a> = dyn FnMut(&mut dyn Conn) -> Result<(), StoreError> + 'a;

/// Where history and the journal live.
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Other processes may write to this store too (a cached snapshot must be revalidated).
    fn shared(&self) -> bool;
    /// Runs `f` in one transaction: committed when `f` returns `Ok(true)`, rolled back on
    /// `Ok(false)` or an error. Retried (a few times) when the store reports a lost race.
    /// Durable once this returns `Ok`.
    fn tx(&self, f: &mut TxFn<'_>) -> Result<bool, StoreError>;
    /// Runs reads outside any write transaction.
    fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError>;
    /// Checks, off the request path, whether a store known to be down is back (a store that
    /// fails fast while down is re-opened only by this).
    fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Retries `attempt` while it reports a lost race.
pub(crate) fn with_retries<T>(mut attempt: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut n = 0;
    loop {
        match attempt() {
            Err(StoreError::Conflict(e)) if n < 8 => {
                n += 1;
                tracing::debug!(attempt = n, error = %e, "history transaction retried");
                std::thread::sleep(std::time::Duration::from_millis(2 << n.min(6)));
            }
            other => return other,
        }
    }
}

/// Creates nothing: for an owner that migrates its own tables (the journal).
///
/// # Errors
/// Never.
pub fn no_schema(_: &mut dyn Conn) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::{Schema, Store};
    use std::sync::Arc;

    /// A private schema on the test PostgreSQL server (`CLAIMGATE_TEST_PG`) with the owner's
    /// `tables` created, or `None` (skipped, said so) when none is configured;
    /// `CLAIMGATE_REQUIRE_PG` turns the skip into a failure.
    pub(crate) fn pg_store(test: &str, tables: Schema) -> Option<Arc<dyn Store>> {
        let Ok(url) = std::env::var("CLAIMGATE_TEST_PG") else {
            assert!(
                std::env::var("CLAIMGATE_REQUIRE_PG").is_err(),
                "CLAIMGATE_REQUIRE_PG is set but CLAIMGATE_TEST_PG is not"
            );
            eprintln!("SKIPPED {test} on PostgreSQL: CLAIMGATE_TEST_PG is not set");
            return None;
        };
        let schema = format!("j_{test}_{}", std::process::id());
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
        let u = url.clone();
        // The sync client must not run on a test's async executor.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&u, postgres::NoTls).expect("test PostgreSQL");
            c.batch_execute(&sql).expect("schema");
        })
        .join()
        .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        Some(Arc::new(super::postgres::PgStore::connect(&url, 4, tables).expect("PgStore")))
    }
}
