//! Patient history: what claimgate learnt from the exchanges it relayed, durable in a [`Store`]
//! (SQLite embedded, or PostgreSQL shared), with moka caches of hot patients and visits in front.
//!
//! Flow: an accepted exchange (a checked one as the claims its check built, `claim::normalize`
//! being the one translator from wire to domain) → [`learn::events`] → [`db::apply`] (one
//! transaction, idempotent by msgid) → caches of the touched patients and visits dropped. A claim being checked →
//! [`History::attach`] puts the patient's snapshot (visits, lines, settlements within the rule
//! set's lookback) and the earlier sales of its trace codes on the claim.
//!
//! Architecture Invariant: history never sees rule internals; rules see history only through the
//! claim (`Claim::history`, `Claim::traces`) and [`crate::claim::Facts`]. Every method here may
//! block on I/O: call it from [`History::run`] (the claim path) or the blocking pool, never from the async
//! executor.

pub mod db;
pub mod learn;
pub mod outbox;
pub mod pool;

pub use crate::store::{Store, StoreError};

use crate::claim::{self, Claim, Facts, PersonFacts, VisitFacts};
use crate::store::Pseudonymizer;
use crate::telemetry::metrics;
use crate::wire::{RequestHead, ResponseEnvelope};
use chrono::{Days, NaiveDate};
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The snapshot cache's default memory budget.
pub const DEFAULT_SNAPSHOT_BYTES: u64 = 128 << 20;

fn snapshot_cache(bytes: u64) -> Cache<String, Arc<Snapshot>> {
    Cache::builder()
        .weigher(|k: &String, s: &Arc<Snapshot>| u32::try_from(k.len() + s.weight()).unwrap_or(u32::MAX))
        .max_capacity(bytes)
        .time_to_idle(Duration::from_secs(3600))
        .build()
}

struct Snapshot {
    since: NaiveDate,
    /// This process's generation for the patient when the snapshot was read.
    local: u64,
    /// The store's version (shared stores only).
    version: i64,
    history: Arc<claim::History>,
}

/// The history service: a store, its pseudonymisation key and the caches.
pub struct History {
    store: Arc<dyn Store>,
    key: Pseudonymizer,
    tier: Option<u8>,
    snapshots: Cache<String, Arc<Snapshot>>,
    /// Per patient, bumped after every applied write in this process: a snapshot read before the
    /// write is never served after it.
    generation: Cache<String, u64>,
    next_gen: AtomicU64,
    /// Facts per patient and per visit; `None` caches "the store has none" (a HIS that never sends
    /// 1101 through claimgate would otherwise cost a store query per claim).
    persons: Cache<String, Option<Arc<PersonFacts>>>,
    visits: Cache<String, Option<Arc<VisitFacts>>>,
    /// Bumped before a learnt write drops cached facts: a lookup that read the store before that
    /// write does not cache what it read after the drop.
    facts_epoch: AtomicU64,
    /// Accepted exchanges whose write failed, applied later in order (`None`: in-memory histories).
    outbox: Option<outbox::Outbox>,
    /// Orders draining the outbox before the writes that must queue behind it: live writes share
    /// it (so concurrent ones can share a group commit), the drain holds it alone.
    drain: std::sync::RwLock<()>,
    /// The hospital's item names (its 医保目录对照 export), for lines a message sends without one.
    catalogue: Option<Arc<claim::catalogue::Catalogue>>,
}

/// Threads for [`History::run`]: 16. At saturation on two cores 8 and 16 cost the same CPU a
/// claim (8 % less than tokio's blocking pool), 16 lets more learns share a commit (3.0 against
/// 2.0) and leaves room for a store that is slow for a moment; a shared store's connection pool
/// (`startup`) is 16 connections too.
const POOL_THREADS: usize = 16;

/// One pool for the process (a server has one history), started by the first check or learn: the
/// ephemeral histories of pack test cases and CLI runs start no threads.
static POOL: std::sync::LazyLock<pool::Pool> =
    std::sync::LazyLock::new(|| pool::Pool::new(POOL_THREADS, "claimgate-history"));

impl Snapshot {
    /// Approximate memory the snapshot holds (calibrated against the resident size:
    /// `PATIENTS=20000 SNAPSHOT_MB=1024 cargo bench --bench memory`).
    fn weight(&self) -> usize {
        use std::mem::size_of;
        let h = &self.history;
        let s = |x: &str| x.len();
        // Codes are interned, a visit's lines share its id and serial numbers are mostly inline.
        let lines: usize = h.lines.capacity() * size_of::<claim::PastLine>()
            + h.lines.iter().filter(|p| p.id.is_heap_allocated()).map(|p| 16 + p.id.len()).sum::<usize>();
        let visits: usize =
            h.visits.iter().map(|v| size_of::<claim::PastVisit>() + s(&v.mdtrt_id) + s(&v.fixmedins_code) + 32).sum();
        let setls: usize = h
            .settlements
            .iter()
            .map(|x| size_of::<claim::PastSettlement>() + s(&x.setl_id) + s(&x.mdtrt_id) + s(&x.msgid) + 8)
            .sum();
        // The lines' vector is exact (capacity); the small structures and strings are doubled for
        // the allocator's rounding; ENTRY is the cache's own bookkeeping and the key.
        const ENTRY: usize = 192;
        ENTRY + lines + 2 * (size_of::<Snapshot>() + size_of::<claim::History>() + visits + setls)
    }
}

impl History {
    /// # Errors
    /// The store's key cannot be read or created.
    pub fn new(store: Arc<dyn Store>, tier: Option<u8>, capacity: u64) -> Result<History, StoreError> {
        Self::open(store, tier, capacity, None)
    }

    /// Like [`History::new`], keeping a copy of the store's pseudonymisation key at `key_copy`, so
    /// that a restart while a shared store is down still comes up (reads then report `unchecked`,
    /// writes wait in the outbox) instead of refusing to serve.
    ///
    /// # Errors
    /// The key can be read neither from the store nor from the copy.
    pub fn open(
        store: Arc<dyn Store>,
        tier: Option<u8>,
        capacity: u64,
        key_copy: Option<&std::path::Path>,
    ) -> Result<History, StoreError> {
        // Startup may run inside an async executor; a store's sync client must not.
        let from_store = std::thread::scope(|t| {
            t.spawn(|| db::key(store.as_ref()))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Sql("reading the key panicked".into())))
        });
        let key = match (from_store, key_copy) {
            (Ok(k), Some(p)) => {
                if std::fs::read(p).ok().as_deref() != Some(&k[..]) {
                    if let Err(e) = crate::store::write_private(p, &k, true) {
                        tracing::warn!(error = %e, path = %p.display(), "history key copy not written");
                    }
                }
                k
            }
            (Ok(k), None) => k,
            (Err(e), Some(p)) => match std::fs::read(p) {
                Ok(k) => {
                    tracing::error!(error = %e, "history store unreachable at start; serving with history unavailable until it is back");
                    k.try_into().map_err(|_| StoreError::Sql("h_meta.psn_key is not 32 bytes".into()))?
                }
                Err(_) => return Err(e),
            },
            (Err(e), None) => return Err(e),
        };
        // Another instance may change what a shared store holds: keep visit facts briefly there.
        let ttl = if store.shared() { Duration::from_secs(2) } else { Duration::from_secs(24 * 3600) };
        Ok(History {
            key: Pseudonymizer::from_key(key),
            tier,
            snapshots: snapshot_cache(DEFAULT_SNAPSHOT_BYTES),
            generation: Cache::builder().max_capacity(capacity * 2).time_to_idle(Duration::from_secs(7200)).build(),
            next_gen: AtomicU64::new(1),
            persons: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            visits: Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            facts_epoch: AtomicU64::new(0),
            store,
            outbox: None,
            drain: std::sync::RwLock::new(()),
            catalogue: None,
        })
    }

    /// Runs the claim path's work with history (a check, a learn) on history's threads: one pool
    /// for the process (`POOL`), whichever `History` asks.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, pool::Lost>> + Send + 'static {
        POOL.run(f)
    }

    /// Names items from the hospital's catalogue where a message carries none.
    pub fn with_catalogue(mut self, c: claim::catalogue::Catalogue) -> History {
        self.catalogue = Some(Arc::new(c));
        self
    }

    pub fn catalogue(&self) -> Option<&claim::catalogue::Catalogue> {
        self.catalogue.as_deref()
    }

    /// Bounds the cached patient snapshots to about `bytes` of memory (least recently used go first).
    pub fn with_snapshot_budget(mut self, bytes: u64) -> History {
        self.snapshots = snapshot_cache(bytes);
        self
    }

    /// Patients whose snapshot is cached, and the cache's estimated weight in bytes.
    pub fn cached(&self) -> (u64, u64) {
        self.snapshots.run_pending_tasks();
        (self.snapshots.entry_count(), self.snapshots.weighted_size())
    }

    /// Keeps accepted exchanges whose history write fails in `outbox` (see [`outbox`]).
    pub fn with_outbox(mut self, outbox: outbox::Outbox) -> History {
        self.outbox = Some(outbox);
        self
    }

    /// Whether a store that was down is back (run off the request path; see [`Store::probe`]).
    ///
    /// # Errors
    /// Still down.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.store.probe()
    }

    /// Exchanges waiting in the outbox.
    pub fn pending(&self) -> u64 {
        self.outbox.as_ref().map_or(0, outbox::Outbox::pending)
    }

    /// Learns an exchange the gateway accepted, from the request's own bytes (the tests' shorthand
    /// for [`History::learn_durably_parsed`]).
    ///
    /// # Errors
    /// Neither the store nor the outbox could take it.
    ///
    /// # Panics
    /// The request's head cannot be read (a test's own request; a parse error is no store error).
    #[cfg(test)]
    pub fn learn_durably(
        &self,
        request: &[u8],
        response: Option<&ResponseEnvelope>,
        accepted: Option<Vec<Claim>>,
    ) -> Result<bool, StoreError> {
        let head = crate::wire::parse_head(request).expect("a test request's head");
        self.learn_durably_parsed(&head, request, response, accepted)
    }

    /// Learns an exchange the gateway accepted, its request's head already read (an upload whose
    /// `accepted` claims the check built needs no `input`, see [`RequestHead::detached`]); when the
    /// store fails (or earlier exchanges still wait) it goes to the outbox instead, with the
    /// request's bytes, so it is never lost.
    ///
    /// # Errors
    /// Neither the store nor the outbox could take it.
    pub fn learn_durably_parsed(
        &self,
        head: &RequestHead<'_>,
        request: &[u8],
        response: Option<&ResponseEnvelope>,
        accepted: Option<Vec<Claim>>,
    ) -> Result<bool, StoreError> {
        let Some(ob) = &self.outbox else { return self.learn(head, response, accepted) };
        let spill = || -> Result<bool, StoreError> {
            let resp = response.map(|r| serde_json::to_string(r).unwrap_or_default());
            ob.push(request, resp.as_deref())?;
            metrics::HISTORY_WRITES.with_label_values(&["spilled"]).inc();
            Ok(true)
        };
        let _order = self.drain.read().unwrap_or_else(|p| p.into_inner());
        if ob.pending() > 0 {
            return spill();
        }
        match self.learn(head, response, accepted) {
            Err(e) => {
                tracing::warn!(error = %e, "history write failed; kept in the outbox");
                spill()
            }
            ok => ok,
        }
    }

    /// Applies what waits in the outbox, oldest first, until it is empty or the store fails again.
    /// Returns how many were applied.
    ///
    /// # Errors
    /// The store (or the outbox) failed; what was not applied still waits.
    pub fn drain_outbox(&self) -> Result<u64, StoreError> {
        let Some(ob) = &self.outbox else { return Ok(0) };
        let _order = self.drain.write().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        while let Some((seq, request, response)) = ob.first()? {
            let resp: Option<ResponseEnvelope> = response.and_then(|r| serde_json::from_str(&r).ok());
            match crate::wire::parse_head(&request) {
                Ok(head) => {
                    self.learn(&head, resp.as_ref(), None)?;
                }
                Err(e) => tracing::error!(error = %e, seq, "unreadable outbox entry dropped"),
            }
            ob.remove(seq)?;
            n += 1;
        }
        if n > 0 {
            tracing::info!(applied = n, "history outbox drained");
        }
        Ok(n)
    }

    /// A private in-memory history: one CLI run, one pack test case, one replay.
    ///
    /// # Panics
    /// Only if SQLite cannot open an in-memory database.
    pub fn ephemeral(tier: Option<u8>) -> History {
        let store = crate::store::sqlite::SqliteStore::memory(db::create_schema).expect("in-memory SQLite");
        History::new(Arc::new(store), tier, 10_000).expect("in-memory history")
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The keyed hash a patient is stored under.
    pub fn psn_key(&self, psn_no: &str) -> String {
        self.key.hash(psn_no)
    }

    /// Learns from one exchange the gateway accepted (see [`learn::events`]); durable when this
    /// returns. `Ok(false)`: the same msgid was learnt before, and nothing changed.
    ///
    /// # Errors
    /// The store failed; nothing was learnt.
    pub fn learn(
        &self,
        head: &RequestHead<'_>,
        response: Option<&ResponseEnvelope>,
        accepted: Option<Vec<Claim>>,
    ) -> Result<bool, StoreError> {
        let events = learn::events(head, response, accepted, &|p| self.psn_key(p));
        if events.is_empty() {
            return Ok(true);
        }
        let day =
            crate::claim::time::parse_date(head.inf_time.as_str()).unwrap_or_else(|| chrono::Local::now().date_naive());
        let t0 = std::time::Instant::now();
        let r = db::apply(self.store.as_ref(), head.msgid.as_str(), head.infno.as_str(), day, &events);
        metrics::HISTORY_SECONDS.with_label_values(&["write"]).observe(t0.elapsed().as_secs_f64());
        // Dropped after the commit, so no reader keeps a snapshot from before it. A visit an
        // upload restated unchanged stays (when the outcome is unknown, everything goes).
        let unchanged = |i: usize| match &r {
            Ok(Some(a)) => a.written.get(i).and_then(|w| w.first()) == Some(&false),
            Ok(None) => true,
            Err(_) => false,
        };
        for (i, e) in events.iter().enumerate() {
            match e {
                db::Event::Person { psn, .. } => {
                    self.facts_epoch.fetch_add(1, Ordering::SeqCst);
                    self.persons.invalidate(psn);
                }
                db::Event::Visit(db::VisitEvent { mdtrt_id, .. }) if !unchanged(i) => {
                    self.facts_epoch.fetch_add(1, Ordering::SeqCst);
                    self.visits.invalidate(mdtrt_id);
                }
                db::Event::Discharge { mdtrt_id, .. } | db::Event::PreSettled { mdtrt_id, .. } => {
                    self.facts_epoch.fetch_add(1, Ordering::SeqCst);
                    self.visits.invalidate(mdtrt_id);
                }
                _ => {}
            }
        }
        match r {
            Ok(Some(applied)) => {
                metrics::HISTORY_WRITES.with_label_values(&["applied"]).inc();
                for (p, ver) in &applied.patients {
                    self.advance(p, *ver, &events, &applied);
                }
                Ok(true)
            }
            Ok(None) => {
                metrics::HISTORY_WRITES.with_label_values(&["duplicate"]).inc();
                Ok(false)
            }
            Err(e) => {
                metrics::HISTORY_WRITES.with_label_values(&["error"]).inc();
                Err(e)
            }
        }
    }

    /// Drops every cached snapshot and fact (benches measure the cold path with it).
    pub fn forget_all(&self) {
        self.snapshots.invalidate_all();
        self.persons.invalidate_all();
        self.visits.invalidate_all();
    }

    /// After a write about `psn` committed at the patient's version `ver`: no snapshot read before
    /// it is served after it. The cached snapshot is extended with what was written when it holds
    /// exactly the state before this write (version `ver - 1`) and the write is one [`db::extend`]
    /// can derive (a fee upload); otherwise it is dropped and the next check reads the store.
    fn advance(&self, psn: &str, ver: i64, events: &[db::Event], applied: &db::Applied) {
        use moka::ops::compute::Op;
        let g = self.next_gen.fetch_add(1, Ordering::Relaxed);
        self.generation.insert(psn.to_owned(), g);
        let outcome = self.snapshots.entry(psn.to_owned()).and_compute_with(|cur| {
            let Some(cur) = cur.map(moka::Entry::into_value) else { return Op::Nop };
            if cur.version >= ver {
                // Read after this write committed: it already holds it.
                return Op::Nop;
            }
            let extended = (cur.version == ver - 1)
                .then(|| db::extend(&cur.history, cur.since, psn, events, applied))
                .flatten()
                .map(|h| Arc::new(Snapshot { since: cur.since, local: g, version: ver, history: Arc::new(h) }));
            extended.map_or(Op::Remove, Op::Put)
        });
        match outcome {
            moka::ops::compute::CompResult::ReplacedWith(_) => {
                metrics::HISTORY_SNAPSHOTS.with_label_values(&["extended"]).inc();
            }
            moka::ops::compute::CompResult::Removed(_) => {
                metrics::HISTORY_SNAPSHOTS.with_label_values(&["dropped"]).inc();
            }
            _ => {}
        }
    }

    /// Puts the patient's history (`lookback_days` back from the claim's day) and the earlier
    /// sales of its trace codes on `claim`. On a store failure the claim keeps `history: None`
    /// (the cross-claim rules report it unchecked) and the error is returned for counting.
    ///
    /// # Errors
    /// The store failed.
    pub fn attach(&self, claim: &mut Claim, lookback_days: u32) -> Result<(), StoreError> {
        let codes: Vec<&str> =
            claim.lines.iter().flat_map(|l| l.trace_codes.iter().map(claim::SmolStr::as_str)).collect();
        let key = if claim.patient.psn_no.is_empty() { String::new() } else { self.psn_key(&claim.patient.psn_no) };
        // A sale to someone without insurance still sells its boxes: trace codes are checked anyway.
        claim.traces =
            if codes.is_empty() { Some(Vec::new()) } else { Some(db::traces(self.store.as_ref(), &codes, &key)?) };
        if claim.patient.psn_no.is_empty() {
            return Ok(());
        }
        let day = claim.service_day().unwrap_or_else(|| chrono::Local::now().date_naive());
        let since = day.checked_sub_days(Days::new(u64::from(lookback_days))).unwrap_or(NaiveDate::MIN);
        let t0 = std::time::Instant::now();
        let local = self.generation.get(&key).unwrap_or(0);
        let cached = self.snapshots.get(&key).filter(|s| s.since <= since && s.local == local);
        let fresh = match cached {
            Some(s) if !self.store.shared() => Some(s),
            Some(s) => (db::version(self.store.as_ref(), &key)? == s.version).then_some(s),
            None => None,
        };
        let snap = match fresh {
            Some(s) => {
                metrics::HISTORY_LOOKUPS.with_label_values(&["warm"]).inc();
                s
            }
            None => {
                metrics::HISTORY_LOOKUPS.with_label_values(&["cold"]).inc();
                let (h, version) = db::load(self.store.as_ref(), &key, since)?;
                let s = Arc::new(Snapshot { since, local, version, history: Arc::new(h) });
                self.snapshots.insert(key.clone(), s.clone());
                s
            }
        };
        claim.history = Some(snap.history.clone());
        metrics::HISTORY_SECONDS.with_label_values(&["read"]).observe(t0.elapsed().as_secs_f64());
        Ok(())
    }

    /// Prunes history older than `days` before `today`.
    ///
    /// # Errors
    /// The store failed.
    pub fn prune(&self, today: NaiveDate, days: u32) -> Result<u64, StoreError> {
        let before = today.checked_sub_days(Days::new(u64::from(days))).unwrap_or(NaiveDate::MIN);
        let n = db::prune(self.store.as_ref(), before)?;
        self.snapshots.invalidate_all();
        Ok(n)
    }
}

fn logged<T>(what: &str, r: Result<T, StoreError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            metrics::HISTORY_WRITES.with_label_values(&["read_error"]).inc();
            tracing::warn!(error = %e, what, "history lookup failed");
            None
        }
    }
}

impl Facts for History {
    fn person(&self, psn_no: &str) -> Option<Arc<PersonFacts>> {
        let key = self.psn_key(psn_no);
        if let Some(p) = self.persons.get(&key) {
            return p;
        }
        let epoch = self.facts_epoch.load(Ordering::SeqCst);
        // A store failure is not cached: the next claim asks again.
        let p = logged("person", db::person(self.store.as_ref(), &key))?
            .map(|(gender, birth, insutype)| Arc::new(PersonFacts { gender, birth, insutype }));
        if self.facts_epoch.load(Ordering::SeqCst) == epoch {
            self.persons.insert(key, p.clone());
        }
        p
    }
    fn visit(&self, mdtrt_id: &str) -> Option<Arc<VisitFacts>> {
        if mdtrt_id.is_empty() {
            return None;
        }
        if let Some(v) = self.visits.get(mdtrt_id) {
            return v;
        }
        let epoch = self.facts_epoch.load(Ordering::SeqCst);
        let v = logged("visit", db::visit(self.store.as_ref(), mdtrt_id))?.map(|(v, _)| Arc::new(v));
        if self.facts_epoch.load(Ordering::SeqCst) == epoch {
            self.visits.insert(mdtrt_id.to_owned(), v.clone());
        }
        v
    }
    fn institution_tier(&self) -> Option<u8> {
        self.tier
    }
    fn visit_lines(&self, mdtrt_id: &str) -> Vec<claim::Line> {
        logged("visit lines", db::visit_lines(self.store.as_ref(), mdtrt_id)).unwrap_or_default()
    }
    fn presettled(&self, mdtrt_id: &str) -> Option<claim::FundAsk> {
        logged("pre-settlement", db::visit(self.store.as_ref(), mdtrt_id))??.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn env(infno: &str, msgid: &str, at: &str, input: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"infno": infno, "msgid": msgid, "inf_time": at, "fixmedins_code": "H41070100001", "input": input}),
        )
        .unwrap_or_default()
    }

    fn learn(h: &History, req: &[u8], resp: Option<Value>) -> bool {
        let head = crate::wire::parse_head(req).expect("head");
        let resp: Option<ResponseEnvelope> = resp.map(|r| serde_json::from_value(r).expect("answer"));
        h.learn(&head, resp.as_ref(), None).expect("learn")
    }

    #[test]
    fn an_unknown_person_stays_unknown_from_the_cache_until_a_1101_answer_teaches_it() {
        let h = History::ephemeral(None);
        let psn = "41000011000000000087654321";
        assert!(h.person(psn).is_none());
        // The "none" answer is cached: a later lookup does not ask the store.
        assert_eq!(h.persons.get(&h.psn_key(psn)), Some(None));
        let req = env(
            "1101",
            "410700202509150900120000000001",
            "2025-09-15 09:00:12",
            json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "41070219700315001X", "psn_cert_type": "01", "certno": "41070219700315001X"}}),
        );
        let resp = json!({"infcode": 0, "output": {"baseinfo": {"psn_no": psn, "gend": "1", "brdy": "1970-03-15"},
            "insuinfo": [{"insutype": "390"}]}});
        assert!(learn(&h, &req, Some(resp)));
        let p = h.person(psn).expect("learnt person");
        assert_eq!(p.gender, Some(claim::Gender::Male));
        assert_eq!(p.insutype.as_deref(), Some("390"));
        // A visit the store does not know is remembered the same way, and dropped by its 2201.
        assert!(h.visit("410700MDT001").is_none());
        assert!(matches!(h.visits.get("410700MDT001"), Some(None)));
    }

    fn count(h: &History, sql: &str) -> i64 {
        let mut n = -1;
        h.store()
            .read(&mut |c| {
                n = c.query(sql, &[])?[0][0].int().unwrap_or(-1);
                Ok(())
            })
            .expect("read");
        n
    }

    /// One outpatient visit on `day`: 2201, a one-line 2204, and (if `settle`) a 2207.
    fn visit(h: &History, id: &str, day: &str, settle: bool) {
        let at = format!("{day} 09:00:00");
        let ok = |out: Value| json!({"infcode": 0, "err_msg": "", "output": out});
        learn(
            h,
            &env("2201", &format!("{id}-1"), &at, json!({"data": {"psn_no": "P1", "insutype": "390", "begntime": at}})),
            Some(ok(json!({"data": {"mdtrt_id": id}}))),
        );
        let line = json!({"feedetl_sn": format!("{id}-L"), "mdtrt_id": id, "psn_no": "P1", "fee_ocur_time": at, "med_list_codg": "003101000010000", "det_item_fee_sumamt": "10.00", "cnt": 1, "pric": "10.00"});
        learn(h, &env("2204", &format!("{id}-2"), &at, json!({"feedetail": [line]})), None);
        if settle {
            let out = json!({"setlinfo": {"mdtrt_id": id, "setl_id": format!("{id}-S"), "insutype": "390", "hifp_pay": "5.00", "fund_pay_sumamt": "5.00", "medfee_sumamt": "10.00"}});
            learn(
                h,
                &env(
                    "2207",
                    &format!("{id}-3"),
                    &at,
                    json!({"data": {"psn_no": "P1", "mdtrt_id": id, "insutype": "390"}}),
                ),
                Some(ok(out)),
            );
        }
    }

    #[test]
    fn retention_prunes_what_is_older_than_the_window_but_keeps_open_visits() {
        let h = History::ephemeral(None);
        visit(&h, "OLD", "2025-01-05", true);
        visit(&h, "OPEN", "2025-01-06", false);
        visit(&h, "NEW", "2025-06-01", true);
        assert_eq!((count(&h, "SELECT COUNT(*) FROM h_line"), count(&h, "SELECT COUNT(*) FROM h_setl")), (3, 2));
        // Retries of learnt messages change nothing.
        visit(&h, "NEW", "2025-06-01", true);
        assert_eq!((count(&h, "SELECT COUNT(*) FROM h_line"), count(&h, "SELECT COUNT(*) FROM h_setl")), (3, 2));
        let n = h.prune(chrono::NaiveDate::from_ymd_opt(2025, 6, 2).expect("date"), 30).expect("prune");
        assert!(n > 0);
        assert_eq!(count(&h, "SELECT COUNT(*) FROM h_setl"), 1, "the old settlement is gone");
        assert_eq!(count(&h, "SELECT COUNT(*) FROM h_line WHERE mdtrt_id = 'OLD'"), 0);
        assert_eq!(count(&h, "SELECT COUNT(*) FROM h_line WHERE mdtrt_id = 'OPEN'"), 1, "an unsettled line stays");
        assert_eq!(count(&h, "SELECT COUNT(*) FROM h_line WHERE mdtrt_id = 'NEW'"), 1);
        // The pruned message ids are forgotten too (the window is the idempotency horizon).
        assert_eq!(count(&h, "SELECT COUNT(*) FROM h_msg WHERE msgid LIKE 'OLD%'"), 0);
    }
}

#[cfg(test)]
mod outbox_tests {
    use super::*;
    use crate::store::{ReadFn, TxFn};
    use serde_json::json;
    use std::sync::atomic::AtomicBool;

    /// An embedded store that refuses writes while `down` is set (the shared store unreachable).
    struct Flaky {
        inner: crate::store::sqlite::SqliteStore,
        down: AtomicBool,
    }

    impl Store for Flaky {
        fn kind(&self) -> &'static str {
            "flaky"
        }
        fn shared(&self) -> bool {
            false
        }
        fn tx(&self, f: &mut TxFn<'_>) -> Result<bool, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("connection refused".into()));
            }
            self.inner.tx(f)
        }
        fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError> {
            self.inner.read(f)
        }
    }

    fn upload(sn: &str) -> Vec<u8> {
        let line = json!({"feedetl_sn": sn, "mdtrt_id": "V1", "psn_no": "P1", "fee_ocur_time": "2025-06-10 09:00:00", "med_list_codg": "003101000010000", "det_item_fee_sumamt": "10.00", "cnt": 1, "pric": "10.00"});
        serde_json::to_vec(&json!({"infno": "2204", "msgid": format!("M-{sn}"), "inf_time": "2025-06-10 09:00:00", "input": {"feedetail": [line]}})).unwrap_or_default()
    }

    #[test]
    fn accepted_exchanges_survive_a_store_outage_in_the_outbox_and_apply_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Flaky {
            inner: crate::store::sqlite::SqliteStore::memory(db::create_schema).expect("sqlite"),
            down: AtomicBool::new(false),
        });
        let h = History::new(store.clone(), None, 100)
            .expect("history")
            .with_outbox(outbox::Outbox::open(&dir.path().join("outbox.sqlite")).expect("outbox"));
        let lines = |h: &History| {
            let mut n = -1;
            h.store()
                .read(&mut |c| {
                    n = c.query("SELECT COUNT(*) FROM h_line", &[])?[0][0].int().unwrap_or(-1);
                    Ok(())
                })
                .expect("read");
            n
        };
        assert!(h.learn_durably(&upload("A"), None, None).expect("learn"));
        store.down.store(true, Ordering::SeqCst);
        for sn in ["B", "C"] {
            assert!(h.learn_durably(&upload(sn), None, None).expect("spilled, not lost"));
        }
        assert_eq!((lines(&h), h.pending()), (1, 2));
        assert!(h.drain_outbox().is_err(), "still down: nothing applied, nothing dropped");
        assert_eq!(h.pending(), 2);
        // Back up: a new exchange queues behind the waiting ones until the drain.
        store.down.store(false, Ordering::SeqCst);
        assert!(h.learn_durably(&upload("D"), None, None).expect("queued"));
        assert_eq!((lines(&h), h.pending()), (1, 3));
        assert_eq!(h.drain_outbox().expect("drain"), 3);
        assert_eq!((lines(&h), h.pending()), (4, 0));
        // The outbox survives a restart: reopened, it is empty now.
        assert_eq!(outbox::Outbox::open(&dir.path().join("outbox.sqlite")).expect("reopen").pending(), 0);
        // A retry after the drain counts once.
        assert!(!h.learn_durably(&upload("B"), None, None).expect("retry"));
        assert_eq!(lines(&h), 4);
    }

    /// Live learns share the outbox's order lock, so concurrent ones can share a group commit (an
    /// exclusive lock here serialised every learn and the group commit never grouped); a drain
    /// waits for the live learns in progress.
    #[test]
    fn live_learns_do_not_exclude_each_other_and_a_drain_waits_for_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = Arc::new(
            History::new(
                Arc::new(crate::store::sqlite::SqliteStore::memory(db::create_schema).expect("sqlite")),
                None,
                100,
            )
            .expect("history")
            .with_outbox(outbox::Outbox::open(&dir.path().join("outbox.sqlite")).expect("outbox")),
        );
        let in_progress = h.drain.read().expect("a live learn's share");
        let (tx, rx) = std::sync::mpsc::channel();
        let other = h.clone();
        std::thread::spawn(move || {
            let _ = tx.send(other.learn_durably(&upload("E"), None, None).expect("learn"));
        });
        let learnt = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(learnt, Ok(true), "a second live learn waited for the first");
        let (tx, rx) = std::sync::mpsc::channel();
        let drainer = h.clone();
        std::thread::spawn(move || {
            let _ = tx.send(drainer.drain_outbox().expect("drain"));
        });
        let early = rx.recv_timeout(std::time::Duration::from_millis(200));
        assert!(early.is_err(), "the drain ran beside a live learn");
        drop(in_progress);
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(10)), Ok(0));
    }
}

#[cfg(test)]
mod snapshot_tests;
