//! One settlement of a person at a time.
//!
//! The daily caps judge a settlement against what the fund has paid the person today. Two
//! settlements of one person checked at the same moment would both see the same day and both
//! pass: eight concurrent 2207s of one 居民 against a 50 元 cap settled 80 元. So a settlement
//! takes its person's turn before it is checked and keeps it until what history learns from the
//! gateway's answer is durable; the next settlement of that person is checked after, against the
//! day the first one made.
//!
//! Within an instance the turn is a keyed async mutex. Across instances sharing PostgreSQL it is
//! also a session advisory lock, taken on one connection of the instance's own with
//! `pg_try_advisory_lock` and polled: the one session holds the turns of all the instance's people
//! (the in-process mutex lets only one request per person reach it), and a crashed instance's turns
//! end with its session. Different people never wait for each other (a collision of the 32-bit key
//! makes two people share turns, which only costs a wait).

use crate::telemetry::metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Advisory-lock class of the turns (the schema lock uses the single-key form).
const PG_CLASS: i32 = 723_052;

/// The turns of every person this instance settles for.
pub struct Turns {
    local: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    shared: Option<Arc<PgTurns>>,
}

/// A person's turn: held while it lives.
pub struct Turn {
    key: u64,
    turns: Arc<Turns>,
    local: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The advisory lock is held on the shared connection.
    shared: bool,
}

impl Turns {
    /// Turns within this instance only (the embedded store: one instance owns the history).
    pub fn local() -> Arc<Turns> {
        Arc::new(Turns { local: Mutex::default(), shared: None })
    }

    /// Turns shared by every instance that connects to the PostgreSQL server at `url`.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn shared(url: &str) -> Result<Arc<Turns>, String> {
        let mut cfg: postgres::Config = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        cfg.connect_timeout(Duration::from_secs(1));
        let pg = PgTurns { cfg, client: Mutex::new(None), retry_at: Mutex::new(None) };
        Ok(Arc::new(Turns { local: Mutex::default(), shared: Some(Arc::new(pg)) }))
    }

    /// Waits up to `wait` for `person`'s turn; `None` when another settlement of the person held
    /// it all that time. A shared store that cannot be reached leaves the turn local to this
    /// instance (said in the log and counted): history is unreachable then too, and the cap is
    /// judged on what can be known.
    pub async fn take(self: &Arc<Self>, person: &str, wait: Duration) -> Option<Turn> {
        let key = fnv1a(person.as_bytes());
        let deadline = Instant::now() + wait;
        let slot = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_default().clone();
        let waited = tokio::time::timeout(wait, slot.lock_owned()).await;
        let Ok(guard) = waited else {
            self.tidy(key);
            metrics::SETTLE_TURNS.with_label_values(&["busy"]).inc();
            return None;
        };
        let mut turn = Turn { key, turns: self.clone(), local: Some(guard), shared: false };
        if let Some(pg) = &self.shared {
            let pg = pg.clone();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::task::spawn_blocking(move || pg.lock(key, left)).await {
                Ok(Ok(true)) => turn.shared = true,
                Ok(Ok(false)) => {
                    metrics::SETTLE_TURNS.with_label_values(&["busy"]).inc();
                    return None;
                }
                Ok(Err(Unreachable::Recently)) => metrics::SETTLE_TURNS.with_label_values(&["local_only"]).inc(),
                Ok(Err(e)) => {
                    metrics::SETTLE_TURNS.with_label_values(&["local_only"]).inc();
                    tracing::warn!(error = %e, "settlement turn not shared with other instances (PostgreSQL unreachable)");
                }
                Err(_) => tracing::error!("taking a shared settlement turn panicked; the turn is local only"),
            }
        }
        metrics::SETTLE_TURNS.with_label_values(&["taken"]).inc();
        Some(turn)
    }

    /// Forgets `key`'s mutex when nobody holds or waits for it.
    fn tidy(&self, key: u64) {
        let mut map = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.get(&key).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&key);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.local.lock().unwrap().len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.shared {
            let (pg, key) = (self.turns.shared.clone(), self.key);
            if let Some(pg) = pg {
                // Released off the async worker (the client is synchronous). Another request of the
                // same person on this instance may lock again first: advisory locks count per
                // session, so the order of the two does not matter.
                let release = move || pg.unlock(key);
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => drop(h.spawn_blocking(release)),
                    Err(_) => release(),
                }
            }
        }
        drop(self.local.take());
        self.turns.tidy(self.key);
    }
}

/// The instance's own connection for advisory locks (not one of the store's pool: a turn is
/// held across the gateway's answer, and the pool serves lookups meanwhile).
struct PgTurns {
    cfg: postgres::Config,
    client: Mutex<Option<postgres::Client>>,
    /// After a failed connection the turns stay local until then (a store outage must not cost
    /// every settlement a connection timeout).
    retry_at: Mutex<Option<Instant>>,
}

/// An unreachable server is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl PgTurns {
    /// Polls `pg_try_advisory_lock` until it is granted (`true`) or `wait` runs out (`false`).
    fn lock(&self, key: u64, wait: Duration) -> Result<bool, Unreachable> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if self.query_bool("SELECT pg_try_advisory_lock($1, $2)", key)? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    fn unlock(&self, key: u64) {
        match self.query_bool("SELECT pg_advisory_unlock($1, $2)", key) {
            Ok(true) => {}
            // The session was lost in between (its locks went with it): nothing is held.
            Ok(false) => tracing::warn!("a settlement turn was no longer held when released"),
            Err(e) => tracing::warn!(error = %e, "releasing a settlement turn failed; its session is closed"),
        }
    }

    /// Runs a boolean advisory-lock function on the connection, connecting first if needed; a
    /// failed connection is dropped (its locks end with it) and made again next time.
    fn query_bool(&self, sql: &str, key: u64) -> Result<bool, Unreachable> {
        let mut slot = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_none_or(postgres::Client::is_closed) {
            let mut retry_at = self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(at) = *retry_at {
                if Instant::now() < at {
                    return Err(Unreachable::Recently);
                }
            }
            match self.cfg.connect(postgres::NoTls) {
                Ok(c) => {
                    *retry_at = None;
                    *slot = Some(c);
                }
                Err(e) => {
                    *retry_at = Some(Instant::now() + RETRY_AFTER);
                    return Err(Unreachable::Now(e));
                }
            }
        }
        let Some(c) = slot.as_mut() else { unreachable!("connected above") };
        let object = i32::from_ne_bytes(((key ^ (key >> 32)) as u32).to_ne_bytes());
        match c.query_one(sql, &[&PG_CLASS, &object]) {
            Ok(row) => Ok(row.get(0)),
            Err(e) => {
                *slot = None;
                Err(Unreachable::Now(e))
            }
        }
    }
}

impl Drop for PgTurns {
    /// The synchronous client must not be closed on an async worker (it blocks on a runtime of its
    /// own): it is closed on a thread of its own.
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(c) = client {
            let _ = std::thread::Builder::new().name("turns-close".into()).spawn(move || drop(c));
        }
    }
}

/// Why the shared turns could not be asked.
#[derive(Debug)]
enum Unreachable {
    /// The connection failed now.
    Now(postgres::Error),
    /// It failed less than [`RETRY_AFTER`] ago.
    Recently,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::Now(e) => write!(f, "{e}"),
            Unreachable::Recently => write!(f, "unreachable less than {} s ago", RETRY_AFTER.as_secs()),
        }
    }
}

/// FNV-1a: a hash every instance computes alike, whatever its build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_person_waits_for_the_turn_and_another_does_not() {
        let t = Turns::local();
        let first = t.take("P1", Duration::from_secs(1)).await.expect("free");
        assert!(t.take("P1", Duration::from_millis(30)).await.is_none(), "held by the first");
        assert!(t.take("P2", Duration::from_millis(30)).await.is_some(), "someone else is not held up");
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.take("P1", Duration::from_secs(5)).await.is_some() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiter.await.unwrap(), "the next one gets the turn once it is released");
        assert_eq!(t.tracked(), 0, "no mutex is kept for people nobody is settling");
    }

    #[tokio::test]
    async fn turns_are_shared_over_postgresql() {
        let Ok(url) = std::env::var("CLAIMGATE_TEST_PG") else {
            assert!(
                std::env::var("CLAIMGATE_REQUIRE_PG").is_err(),
                "CLAIMGATE_REQUIRE_PG set without CLAIMGATE_TEST_PG"
            );
            eprintln!("SKIPPED turns_are_shared_over_postgresql: CLAIMGATE_TEST_PG is not set");
            return;
        };
        // Two instances: two Turns, two sessions.
        let (a, b) = (Turns::shared(&url).unwrap(), Turns::shared(&url).unwrap());
        let person = format!("P-{}", std::process::id());
        let held = a.take(&person, Duration::from_secs(2)).await.expect("free");
        assert!(held.shared, "the advisory lock is taken");
        assert!(b.take(&person, Duration::from_millis(60)).await.is_none(), "the other instance waits");
        drop(held);
        let next = b.take(&person, Duration::from_secs(2)).await.expect("released to the other instance");
        assert!(next.shared);
    }

    #[tokio::test]
    async fn an_unreachable_server_leaves_the_turn_local_and_is_not_asked_again_at_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = Turns::shared(&format!("postgres://claimgate@127.0.0.1:{port}/claimgate")).unwrap();
        let first = t.take("P1", Duration::from_secs(1)).await.expect("a local turn");
        assert!(!first.shared);
        drop(first);
        let again = t.take("P1", Duration::from_secs(1)).await.expect("a local turn");
        assert!(!again.shared);
        let retry_at = t.shared.as_ref().unwrap().retry_at.lock().unwrap().expect("the failure is remembered");
        assert!(retry_at > Instant::now(), "not asked again before {RETRY_AFTER:?}");
    }

    #[test]
    fn the_key_is_the_same_in_every_build() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
