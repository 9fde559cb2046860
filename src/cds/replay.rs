//! CDS Hooks JWT replay protection that holds across instances and restarts: each accepted
//! `(iss, jti)` is kept in the history store (table `c_jti`, SQLite or PostgreSQL) until its token
//! has expired, so the same token sent again — to this instance after a restart, or to another
//! instance sharing PostgreSQL — is refused. Rows older than every token that could still be
//! presented are dropped in the same transaction that adds one.

use crate::store::{Conn, Store, StoreError, P};

/// The table, created in the history store beside history's and the overrides'.
///
/// # Errors
/// The store failed.
pub fn create_schema(c: &mut dyn Conn) -> Result<(), StoreError> {
    c.exec(
        "CREATE TABLE IF NOT EXISTS c_jti (iss TEXT NOT NULL, jti TEXT NOT NULL, exp BIGINT NOT NULL, \
         PRIMARY KEY (iss, jti))",
        &[],
    )?;
    c.exec("CREATE INDEX IF NOT EXISTS c_jti_exp ON c_jti (exp)", &[])?;
    Ok(())
}

/// Records the first use of `jti` from `iss` (a token valid until `exp`, Unix seconds); `false`
/// when it was used before. `now` (Unix seconds) and `leeway` (seconds a token is still taken
/// after `exp`) decide which rows can go.
///
/// # Errors
/// The store failed: the caller cannot tell a replay from a first use.
pub fn first_use(store: &dyn Store, iss: &str, jti: &str, exp: i64, now: i64, leeway: i64) -> Result<bool, StoreError> {
    let mut fresh = false;
    store.tx(&mut |c| {
        // A group commit may run this again after a failed neighbour: start clean.
        fresh = false;
        c.exec("DELETE FROM c_jti WHERE exp < $1", &[P::I(now - leeway)])?;
        fresh = c.exec(
            "INSERT INTO c_jti (iss, jti, exp) VALUES ($1, $2, $3) ON CONFLICT (iss, jti) DO NOTHING",
            &[P::T(iss), P::T(jti), P::I(exp)],
        )? > 0;
        Ok(true)
    })?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_taken_once_per_issuer_and_forgotten_once_no_token_can_carry_it() {
        let store = crate::store::sqlite::SqliteStore::memory(create_schema).unwrap();
        assert!(first_use(&store, "https://ehr.a", "j-1", 1_000, 900, 60).unwrap());
        assert!(!first_use(&store, "https://ehr.a", "j-1", 1_000, 950, 60).unwrap(), "a replay");
        assert!(first_use(&store, "https://ehr.b", "j-1", 1_000, 950, 60).unwrap(), "another issuer's jti");
        // Long after the token expired (and its leeway), the row is gone; a token carrying that jti
        // would be refused as expired before this is asked.
        assert!(first_use(&store, "https://ehr.a", "j-1", 2_000, 1_100, 60).unwrap());
    }
}
