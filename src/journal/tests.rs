use super::*;
use crate::store::{ReadFn, TxFn};
use std::time::Instant;

fn rec(i: usize) -> Record {
    Record {
        at: "2025-06-10T09:00:00+08:00".into(),
        service_date: None,
        infno: "2204".into(),
        msgid: format!("M{i}"),
        fixmedins_code: "H1".into(),
        fixmedins_name: String::new(),
        mdtrt_id: "V".into(),
        psn_hash: "h".into(),
        dept_code: "100301".into(),
        doctor_code: "D1".into(),
        dept_name: String::new(),
        doctor_name: String::new(),
        decision: if i % 10 == 0 { "remind".into() } else { "pass".into() },
        ruleset: "t@1".into(),
        elapsed_us: 5,
        gateway_infcode: Some(0),
        hits: vec![],
        jr: vec![],
        fallback: String::new(),
    }
}

/// One integer from the journal's store (off the async executor).
async fn scalar(j: &Journal, sql: &'static str) -> i64 {
    let j = j.clone();
    tokio::task::spawn_blocking(move || j.read(|c| Ok(c.query(sql, &[])?[0][0].int().unwrap_or(-1))).unwrap())
        .await
        .unwrap()
}

/// 8 tasks × 12,500 decisions behind a 64-record queue; returns the time to write them.
async fn hundred_thousand(j: &Journal) -> Duration {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..12_500 {
                j.record(rec(t * 12_500 + i)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    j.flush().await;
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_concurrent_decisions_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // A small queue forces back-pressure; nothing may be lost.
    let j = Journal::open(dir.path(), 64).unwrap();
    let took = hundred_thousand(&j).await;
    eprintln!("100,000 decisions into SQLite: {took:?}");
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 100_000);
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision WHERE decision = 'remind'").await, 10_000);
    assert_eq!(scalar(&j, "SELECT COUNT(DISTINCT msgid) FROM j_decision").await, 100_000);
    assert_eq!(j.counters.written.load(Ordering::Relaxed), 100_000);
    assert!(metrics::JOURNAL_BACKPRESSURE.get() > 0, "a 64-record queue under 8 writers must have pushed back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_concurrent_decisions_read_back_exactly_from_postgres() {
    let Some(store) = db::tests::pg_store("hundred") else { return };
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open_shared(dir.path(), store, Options { queue: 64, ..Options::default() }).unwrap();
    let took = hundred_thousand(&j).await;
    // A slow batch may have gone to the spill file: wait for the drain, then count.
    let t0 = Instant::now();
    while j.spill_pending() > 0 && t0.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "100,000 decisions into PostgreSQL: {took:?} (spilled {}, drained {})",
        j.counters.spilled.load(Ordering::Relaxed),
        j.counters.drained.load(Ordering::Relaxed)
    );
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 100_000);
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision WHERE decision = 'remind'").await, 10_000);
    assert_eq!(scalar(&j, "SELECT COUNT(DISTINCT msgid) FROM j_decision").await, 100_000);
    assert_eq!(j.counters.written.load(Ordering::Relaxed), 100_000);
}

fn hit() -> HitRecord {
    HitRecord {
        rule_id: "R".into(),
        rule_name: "规则".into(),
        action: "block".into(),
        severity: "critical".into(),
        amount_fen: 100,
        lines: vec!["L".into()],
        message: "m".into(),
        basis: "b".into(),
        points: 1,
    }
}

async fn retention(j: &Journal) {
    let today = chrono::Local::now().to_rfc3339();
    // Checked in 2000 about a service in 2000; checked today about a service in 2000 too:
    // retention goes by the check, so only the first goes.
    let mut old = rec(1);
    old.at = "2000-01-01T09:00:00+08:00".into();
    old.hits = vec![hit()];
    old.jr = vec![JrLink { jr_id: "JR-OLD".into(), rule_id: "R".into() }];
    let mut new = rec(2);
    new.at = today.clone();
    new.service_date = chrono::NaiveDate::from_ymd_opt(2000, 1, 1);
    new.hits = old.hits.clone();
    j.record(old).await;
    j.record(new).await;
    j.feedback(Feedback {
        at: "2000-01-01T10:00:00+08:00".into(),
        jr_id: "JR-OLD".into(),
        dspo_way: "2".into(),
        reason: String::new(),
        outcome: "Modify".into(),
    })
    .await;
    // Act
    let removed = j.prune_now().await;
    // Assert: only the old decision went, with everything hanging off it.
    assert_eq!(removed, 1);
    assert_eq!(scalar(j, "SELECT COUNT(*) FROM j_decision").await, 1);
    assert_eq!(scalar(j, "SELECT COUNT(*) FROM j_hit").await, 1);
    assert_eq!(scalar(j, "SELECT COUNT(*) FROM j_jr").await, 0);
    assert_eq!(scalar(j, "SELECT COUNT(*) FROM j_feedback").await, 0);
    assert_eq!(j.counters.pruned.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn retention_prunes_old_decisions_with_their_hits_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { queue: 16, retention_days: Some(30), ..Options::default() };
    retention(&Journal::open_with(dir.path(), opts.clone()).unwrap()).await;
    if let Some(store) = db::tests::pg_store("retention") {
        let dir = tempfile::tempdir().unwrap();
        retention(&Journal::open_shared(dir.path(), store, opts).unwrap()).await;
    }
    // Without retention nothing is ever pruned.
    let keep = Journal::open(tempfile::tempdir().unwrap().path(), 4).unwrap();
    assert_eq!(keep.prune_now().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_journal_pushes_back_and_loses_nothing() {
    // Arrange: another connection holds the database's write lock, so the writer stalls.
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 8).unwrap();
    let blocker = rusqlite::Connection::open(j.sqlite_path().unwrap()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Act: four tasks write 500 records each behind an 8-record queue.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                j.record(rec(t * 500 + i)).await;
            }
        }));
    }
    // The writers must end up waiting for room (bounded wait, not a timing assertion).
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while j.counters.backpressure.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "a stalled journal must apply back-pressure");
    assert!(tasks.iter().any(|t| !t.is_finished()), "callers wait while the journal is stalled");
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    for t in tasks {
        t.await.unwrap();
    }
    j.flush().await;
    // Assert: every record is there, exactly once.
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 2000);
    assert_eq!(j.counters.written.load(Ordering::Relaxed), 2000);
    assert_eq!(scalar(&j, "SELECT COUNT(DISTINCT msgid) FROM j_decision").await, 2000);
    assert!(j.counters.backpressure.load(Ordering::Relaxed) > 0);
}

/// A shared store stand-in (SQLite in memory) that refuses everything while `down` is set and,
/// while `lose_answer` is set, commits a write but reports it failed (a commit whose answer the
/// network lost).
struct Flaky {
    inner: crate::store::sqlite::SqliteStore,
    down: AtomicBool,
    lose_answer: AtomicBool,
    /// While set, every transaction waits (a store that answers nothing) until it is cleared.
    held: AtomicBool,
}

impl Flaky {
    fn new() -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: crate::store::sqlite::SqliteStore::memory_empty().unwrap(),
            down: AtomicBool::new(false),
            lose_answer: AtomicBool::new(false),
            held: AtomicBool::new(false),
        })
    }
}

impl Store for Flaky {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn shared(&self) -> bool {
        true
    }
    fn tx(&self, f: &mut TxFn<'_>) -> Result<bool, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        while self.held.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = self.inner.tx(f);
        if self.lose_answer.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection reset after commit".into()));
        }
        r
    }
    fn read(&self, f: &mut ReadFn<'_>) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        self.inner.read(f)
    }
    fn probe(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("still down".into()));
        }
        Ok(())
    }
}

async fn wait_drained(j: &Journal) {
    let t0 = Instant::now();
    while j.spill_pending() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the spill was not drained: {}", j.spill_pending());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_shared_store_down_records_are_spilled_and_drained_in_order_exactly_once() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let store = Flaky::new();
    let j = Journal::open_shared(dir.path(), store.clone(), Options { queue: 16, ..Options::default() }).unwrap();
    for i in 0..10 {
        j.record(rec(i)).await;
    }
    j.flush().await;
    // Act: the store goes down; records keep coming, and answers too.
    store.down.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    for i in 10..510 {
        j.record(rec(i)).await;
    }
    j.feedback(Feedback {
        at: "2025-06-10T10:00:00+08:00".into(),
        jr_id: "JR1".into(),
        dspo_way: "1".into(),
        reason: "理由".into(),
        outcome: "Granted".into(),
    })
    .await;
    j.flush().await;
    // Assert: nothing waited on the store (a caller waiting on it would wait for good: the bound
    // is loose so that a loaded machine's fsyncs into the spill file cannot trip it), everything
    // is in the spill file.
    assert!(t0.elapsed() < Duration::from_secs(60), "records waited on a dead store: {:?}", t0.elapsed());
    assert_eq!(j.spill_pending(), 501);
    assert!(j.counters.spilled.load(Ordering::Relaxed) >= 501);
    // A restart while down keeps the spill file (what an earlier run left still waits).
    assert_eq!(Spill::open(&dir.path().join("journal-spill.sqlite")).unwrap().pending(), 501);
    // The store comes back: drained in order, each record once.
    store.down.store(false, Ordering::SeqCst);
    wait_drained(&j).await;
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 510);
    assert_eq!(scalar(&j, "SELECT COUNT(DISTINCT msgid) FROM j_decision").await, 510);
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_feedback").await, 1);
    let order = {
        let j = j.clone();
        tokio::task::spawn_blocking(move || {
            j.read(|c| c.query("SELECT msgid FROM j_decision ORDER BY id", &[]))
                .unwrap()
                .into_iter()
                .map(|r| r[0].string().trim_start_matches('M').parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };
    assert_eq!(order, (0..510).collect::<Vec<_>>(), "drained in the order they were recorded");
    // Later records go straight to the store again.
    let spilled = j.counters.spilled.load(Ordering::Relaxed);
    j.record(rec(510)).await;
    j.flush().await;
    assert_eq!(j.counters.spilled.load(Ordering::Relaxed), spilled);
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 511);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_earlier_run_left_in_the_spill_file_is_drained_after_a_restart() {
    // Arrange: a run journals while the store is down, then stops (its handles dropped).
    let dir = tempfile::tempdir().unwrap();
    let store = Flaky::new();
    store.down.store(true, Ordering::SeqCst);
    let first = Journal::open_shared(dir.path(), store.clone(), Options::default()).unwrap();
    for i in 0..5 {
        first.record(rec(i)).await;
    }
    first.flush().await;
    assert_eq!(first.spill_pending(), 5);
    drop(first);
    // Its writer tries one last drain on the way out (the store is still down), then ends.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Act: the next run starts with the store back.
    store.down.store(false, Ordering::SeqCst);
    let next = Journal::open_shared(dir.path(), store.clone(), Options::default()).unwrap();
    assert_eq!(next.spill_pending(), 5, "what the earlier run left still waits");
    // Assert
    wait_drained(&next).await;
    assert_eq!(scalar(&next, "SELECT COUNT(*) FROM j_decision").await, 5);
    assert_eq!(next.counters.drained.load(Ordering::Relaxed), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_but_reported_failed_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Flaky::new();
    let j = Journal::open_shared(dir.path(), store.clone(), Options { queue: 16, ..Options::default() }).unwrap();
    // The write commits, the answer is lost: the batch is spilled, then drained again.
    store.lose_answer.store(true, Ordering::SeqCst);
    for i in 0..20 {
        j.record(rec(i)).await;
    }
    j.flush().await;
    assert!(j.spill_pending() > 0);
    store.lose_answer.store(false, Ordering::SeqCst);
    wait_drained(&j).await;
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 20, "stored once, by uid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shared_store_never_makes_callers_wait_past_the_spill_delay() {
    // Arrange: the store answers nothing until the test releases it; batches wait at most 100 ms
    // for the writer. (Held, not slowed by a fixed time: callers finishing while the store is
    // still held is the proof, whatever the machine's fsyncs cost.)
    let dir = tempfile::tempdir().unwrap();
    let store = Flaky::new();
    let opts = Options { queue: 8, spill_after: Duration::from_millis(100), ..Options::default() };
    let j = Journal::open_shared(dir.path(), store.clone(), opts).unwrap();
    store.held.store(true, Ordering::SeqCst);
    // Act: 200 records through an 8-record queue, and a flush, all while the store is held.
    let sent = tokio::time::timeout(Duration::from_secs(120), async {
        for i in 0..200 {
            j.record(rec(i)).await;
        }
        j.flush().await;
    })
    .await;
    // Assert: nobody waited on the store; what the writer could not take went to the spill file.
    assert!(sent.is_ok(), "callers waited on the held store");
    assert!(j.counters.spilled.load(Ordering::Relaxed) > 0);
    store.held.store(false, Ordering::SeqCst);
    wait_drained(&j).await;
    assert_eq!(scalar(&j, "SELECT COUNT(*) FROM j_decision").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_store_down_at_start_still_journals_and_keeps_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Flaky::new();
    store.down.store(true, Ordering::SeqCst);
    // First start ever with the store down: it serves, hashing with the local key.
    let first = Journal::open_shared(dir.path(), store.clone(), Options::default()).unwrap();
    let hash = first.pseudo.hash("41000011000000000012345678");
    first.record(rec(1)).await;
    first.flush().await;
    assert_eq!(first.spill_pending(), 1);
    // The store is back: the record is drained and the store adopts the key.
    store.down.store(false, Ordering::SeqCst);
    wait_drained(&first).await;
    let local = read_key(&dir.path().join("journal.key")).unwrap().unwrap();
    let in_store = tokio::task::spawn_blocking({
        let s = store.clone();
        move || db::shared_key(s.as_ref(), &[9u8; 32]).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(in_store, local, "the store took the first key offered");
    assert_eq!(read_key(&dir.path().join("journal-shared.key")).unwrap(), Some(local), "the copy is kept");
    // A restart while the store is down again hashes the same way (from the copy).
    store.down.store(true, Ordering::SeqCst);
    let again = Journal::open_shared(dir.path(), store.clone(), Options::default()).unwrap();
    assert_eq!(again.pseudo.hash("41000011000000000012345678"), hash, "the same pseudonyms while down");
    again.record(rec(2)).await;
    again.flush().await;
    assert_eq!(again.spill_pending(), 1);
}

#[test]
fn pseudonyms_link_the_same_patient_and_hide_the_number() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pseudonymizer::load_or_create(dir.path()).unwrap();
    let again = Pseudonymizer::load_or_create(dir.path()).unwrap();
    let a = p.hash("41000011000000000012345678");
    assert_eq!(a, again.hash("41000011000000000012345678"));
    assert_ne!(a, p.hash("41000011000000000012345679"));
    assert!(!a.contains("12345678"));
    assert_eq!(a.len(), 32);
}

#[test]
fn the_journal_is_where_serve_puts_it() {
    let data = Path::new("/var/lib/claimgate");
    assert_eq!(Location::new(data, None), Ok(Location::Embedded(data.join("journal.sqlite"))));
    let url = "postgres://claimgate:secret@db/claimgate";
    let shared = Location::new(data, Some(url)).unwrap();
    assert_eq!(shared, Location::Shared(url.into()));
    assert!(!shared.describe().contains("secret"), "no password in messages");
    assert!(!format!("{shared:?}").contains("secret"), "nor in debug output");
    assert!(Location::new(data, Some("mysql://x")).is_err());
    let e = open_reader(&Location::Embedded(data.join("nowhere/journal.sqlite"))).err().unwrap();
    assert!(e.contains("未找到审核日志"), "{e}");
}
