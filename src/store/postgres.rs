//! The shared store: PostgreSQL, so several claimgate instances behind a load balancer, or all the
//! hospitals of a 医共体, see one history. Same SQL as the embedded store
//! ([`super::sqlite`]), written once by each owner (`history::db`, `journal::db`).

use super::{Conn, ReadFn, Schema, Store, StoreError, TxFn, P, V};
use postgres::types::{IsNull, ToSql, Type};
use postgres::{GenericClient, NoTls};
use r2d2_postgres::PostgresConnectionManager;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PgStore {
    pool: Pool,
    /// The owner's tables (history's; none for the journal, which migrates its own).
    create: Schema,
    /// The schema exists (created at start or on first use after an outage).
    schema: std::sync::atomic::AtomicBool,
    /// After a failed connection every call fails at once (a circuit breaker) until a probe off the
    /// request path finds the server back: an outage costs a claim nothing, not a connection
    /// timeout per lookup, and its stateless rules still judge it.
    down: std::sync::atomic::AtomicBool,
}

fn err(e: postgres::Error) -> StoreError {
    match e.code().map(|c| c.code()) {
        Some("40001" | "40P01") => StoreError::Conflict(e.to_string()),
        Some(_) => StoreError::Sql(e.to_string()),
        None => StoreError::Unavailable(e.to_string()),
    }
}

impl PgStore {
    /// A pool of `size` connections to `url` (`postgres://user@host:port/db`); `schema` is created
    /// now if the server is reachable, else on first use after it comes back.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn connect(url: &str, size: u32, schema: Schema) -> Result<PgStore, StoreError> {
        let cfg: postgres::Config = url.parse().map_err(|e| StoreError::Unavailable(format!("bad URL: {e}")))?;
        let mgr = PostgresConnectionManager::new(cfg, NoTls);
        // Unchecked: a server that is down at start is connected to when it comes back.
        let pool = r2d2::Pool::builder()
            .max_size(size.max(1))
            .min_idle(Some(0))
            .connection_timeout(std::time::Duration::from_secs(1))
            .build_unchecked(mgr);
        let s = PgStore {
            pool,
            create: schema,
            schema: std::sync::atomic::AtomicBool::new(false),
            down: std::sync::atomic::AtomicBool::new(false),
        };
        // On a thread of its own: the sync client must not run inside an async executor, and
        // startup may be in one.
        let first = std::thread::scope(|t| {
            t.spawn(|| s.ensure_schema())
                .join()
                .unwrap_or_else(|_| Err(StoreError::Sql("schema creation panicked".into())))
        });
        if let Err(e) = first {
            tracing::warn!(error = %e, "PostgreSQL history store not reachable yet");
        }
        Ok(s)
    }

    /// Creates the schema once the server is reachable (at start, or on first use after an outage).
    fn ensure_schema(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.schema.load(Ordering::Acquire) {
            return Ok(());
        }
        // Two instances starting together must not both fail on CREATE TABLE.
        super::with_retries(|| {
            let mut c = self.conn()?;
            let mut t = c.transaction().map_err(err)?;
            let mut conn = PgConn(&mut t);
            conn.exec("SELECT pg_advisory_xact_lock(7230517)", &[])?;
            (self.create)(&mut conn)?;
            t.commit().map_err(err)
        })?;
        self.schema.store(true, Ordering::Release);
        Ok(())
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        use std::sync::atomic::Ordering;
        if self.down.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("PostgreSQL unreachable (probed in the background)".into()));
        }
        self.pool.get().map_err(|e| {
            self.down.store(true, Ordering::Release);
            tracing::warn!(error = %e, "PostgreSQL history store unreachable; failing fast until it is back");
            StoreError::Unavailable(e.to_string())
        })
    }
}

/// NULL of whatever type the server expects.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

struct PgConn<'a, C: GenericClient>(&'a mut C);

fn params<'a>(ps: &'a [P<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    static NULL: Null = Null;
    ps.iter()
        .map(|p| match p {
            P::T(s) => s as &(dyn ToSql + Sync),
            P::I(i) => i as &(dyn ToSql + Sync),
            P::Null => &NULL as &(dyn ToSql + Sync),
        })
        .collect()
}

impl<C: GenericClient> Conn for PgConn<'_, C> {
    fn exec(&mut self, sql: &str, ps: &[P<'_>]) -> Result<u64, StoreError> {
        let st = self.0.prepare(sql).map_err(err)?;
        self.0.execute(&st, &params(ps)).map_err(err)
    }
    fn query(&mut self, sql: &str, ps: &[P<'_>]) -> Result<Vec<Vec<V>>, StoreError> {
        let st = self.0.prepare(sql).map_err(err)?;
        let rows = self.0.query(&st, &params(ps)).map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, c) in r.columns().iter().enumerate() {
                let v = match *c.type_() {
                    Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(err)?.map_or(V::Null, V::I),
                    Type::INT4 => r.try_get::<_, Option<i32>>(i).map_err(err)?.map_or(V::Null, |x| V::I(x.into())),
                    _ => r.try_get::<_, Option<String>>(i).map_err(err)?.map_or(V::Null, V::T),
                };
                row.push(v);
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    fn shared(&self) -> bool {
        true
    }
    fn tx(&self, f: &mut TxFn<'_>) -> Result<bool, StoreError> {
        self.ensure_schema()?;
        super::with_retries(|| {
            let mut c = self.conn()?;
            let mut t = c.transaction().map_err(err)?;
            let keep = f(&mut PgConn(&mut t))?;
            if keep {
                t.commit().map_err(err)?;
            } else {
                t.rollback().map_err(err)?;
            }
            Ok(keep)
        })
    }
    fn probe(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut c = self.pool.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        c.simple_query("SELECT 1").map_err(err)?;
        drop(c);
        self.down.store(false, Ordering::Release);
        tracing::info!("PostgreSQL history store is back");
        self.ensure_schema()
    }
    fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError> {
        self.ensure_schema()?;
        let mut c = self.conn()?;
        f(&mut PgConn(&mut *c))
    }
}
