//! The shared store: PostgreSQL, so several claimgate instances behind a load balancer, or all the
//! hospitals of a 医共体, see one history. Same SQL as the embedded store ([`super::db`]).

use super::store::{Conn, ReadFn, Store, StoreError, TxFn, P, V};
use postgres::types::{IsNull, ToSql, Type};
use postgres::{GenericClient, NoTls};
use r2d2_postgres::PostgresConnectionManager;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PgStore {
    pool: Pool,
}

fn err(e: postgres::Error) -> StoreError {
    match e.code().map(|c| c.code()) {
        Some("40001" | "40P01") => StoreError::Conflict(e.to_string()),
        Some(_) => StoreError::Sql(e.to_string()),
        None => StoreError::Unavailable(e.to_string()),
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) with a pool of `size` connections and
    /// creates the schema if needed.
    ///
    /// # Errors
    /// The server cannot be reached or the schema cannot be created.
    pub fn connect(url: &str, size: u32) -> Result<PgStore, StoreError> {
        let cfg: postgres::Config = url.parse().map_err(|e| StoreError::Unavailable(format!("bad URL: {e}")))?;
        let mgr = PostgresConnectionManager::new(cfg, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(size.max(1))
            .connection_timeout(std::time::Duration::from_secs(5))
            .build(mgr)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let s = PgStore { pool };
        // Two instances starting together must not both fail on CREATE TABLE. On a thread of its
        // own: the sync client must not run inside an async executor, and startup may be in one.
        std::thread::scope(|t| {
            t.spawn(|| {
                s.tx(&mut |c| {
                    c.exec("SELECT pg_advisory_xact_lock(7230517)", &[])?;
                    super::db::create_schema(c)?;
                    Ok(true)
                })
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Sql("schema creation panicked".into())))
        })?;
        Ok(s)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        self.pool.get().map_err(|e| StoreError::Unavailable(e.to_string()))
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
        super::store::with_retries(|| {
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
    fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        f(&mut PgConn(&mut *c))
    }
}
