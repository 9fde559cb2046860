//! The decision journal: every checked transaction's decision, durably, for the 医保办.
//!
//! Writes go through a bounded queue to one writer thread that batches them into SQLite (WAL)
//! transactions. A full queue applies back-pressure to the request (counted in
//! `claimgate_journal_backpressure_total`); nothing is dropped. Personal data is pseudonymised:
//! psn_no becomes an HMAC-SHA256 under a key kept in the data directory (the same patient links
//! across records; nobody can reverse it without the key); names are never stored.
//!
//! Records older than the configured retention (`journal_retention_days`) are pruned by the writer
//! thread itself: at start, then at most once an hour after a batch.
//!
//! The office's statistics and listings are plain SQL over a read connection ([`stats`]).
//!
//! Architecture Invariant: the journal knows decisions, not the wire format; callers hand it
//! [`Record`]s. It renders nothing: HTML and CSV live in [`crate::report`].

pub mod stats;

use crate::rules::Decision;
use crate::telemetry::metrics;
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One decision as journaled.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: String,
    pub infno: String,
    pub msgid: String,
    pub fixmedins_code: String,
    pub mdtrt_id: String,
    /// Keyed hash of psn_no; see [`Pseudonymizer`].
    pub psn_hash: String,
    pub dept_code: String,
    pub doctor_code: String,
    /// `pass`, `remind`, `block`, `unchecked`.
    pub decision: String,
    pub ruleset: String,
    pub elapsed_us: u64,
    /// The gateway's `infcode` when the transaction was forwarded and answered.
    pub gateway_infcode: Option<i64>,
    pub hits: Vec<HitRecord>,
    /// The `jr_id`s a local 3101/3102 answer handed out, so a later 3103 answer links to its
    /// rule, department and doctor.
    pub jr: Vec<JrLink>,
}

/// A `jr_id` of a 3101/3102 answer and the rule it stands for.
#[derive(Debug, Clone)]
pub struct JrLink {
    pub jr_id: String,
    pub rule_id: String,
}

#[derive(Debug, Clone)]
pub struct HitRecord {
    pub rule_id: String,
    /// Chinese rule name, so the office reads names and not only codes.
    pub rule_name: String,
    pub action: String,
    pub severity: String,
    pub amount_fen: i64,
    pub lines: Vec<String>,
    pub message: String,
    /// Policy basis (文件依据) of the rule.
    pub basis: String,
    /// 驾照式记分 points of the rule (0: the pack gives none).
    pub points: u32,
}

impl HitRecord {
    pub fn from_decision(d: &Decision) -> Vec<HitRecord> {
        d.hits
            .iter()
            .map(|h| HitRecord {
                rule_id: h.rule_id.to_string(),
                rule_name: h.rule_name.to_string(),
                action: format!("{:?}", h.action).to_lowercase(),
                severity: format!("{:?}", h.severity).to_lowercase(),
                amount_fen: h.amount.get(),
                lines: h.lines.clone(),
                message: h.message.clone(),
                basis: h.basis.to_string(),
                points: h.points,
            })
            .collect()
    }
}

/// A doctor's 3103 answer.
#[derive(Debug, Clone)]
pub struct Feedback {
    pub at: String,
    pub jr_id: String,
    pub dspo_way: String,
    pub reason: String,
    pub outcome: String,
}

enum Msg {
    Decision(Box<Record>),
    Feedback(Feedback),
    Flush(std::sync::mpsc::Sender<()>),
    /// Prune now (whatever the last prune), then answer with the number of decisions removed.
    Prune(std::sync::mpsc::Sender<u64>),
}

/// How the journal runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records waiting to be written; a full queue makes callers wait (back-pressure).
    pub queue: usize,
    /// Decisions (with their hits) and 3103 answers older than this many days are deleted;
    /// `None` keeps everything.
    pub retention_days: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { queue: 8192, retention_days: None }
    }
}

/// This journal's own counters (the Prometheus ones are process-wide).
#[derive(Debug, Default)]
pub struct Counters {
    /// Records that waited for room in the queue.
    pub backpressure: AtomicU64,
    /// Failed batch writes (each retried).
    pub errors: AtomicU64,
    /// Decisions written.
    pub written: AtomicU64,
    /// Decisions removed by retention.
    pub pruned: AtomicU64,
}

/// Keyed pseudonyms for identifiers.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

impl Pseudonymizer {
    pub fn from_key(key: [u8; 32]) -> Pseudonymizer {
        Pseudonymizer { key }
    }

    /// Loads `journal.key` from `dir`, creating it (32 random bytes, mode 0600) on first use.
    ///
    /// # Errors
    /// The key cannot be read or created.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Pseudonymizer> {
        let p = dir.join("journal.key");
        let key = match std::fs::read(&p) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => anyhow::bail!("{}: not a 32-byte key", p.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = vec![0u8; 32];
                getrandom::getrandom(&mut k).map_err(|e| anyhow::anyhow!("no randomness for the journal key: {e}"))?;
                write_private(&p, &k)?;
                k
            }
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", p.display())),
        };
        let mut a = [0u8; 32];
        a.copy_from_slice(&key);
        Ok(Pseudonymizer { key: a })
    }

    pub fn hash(&self, id: &str) -> String {
        if id.is_empty() {
            return String::new();
        }
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else { return String::new() };
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

fn write_private(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The journal handle: cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    pub path: PathBuf,
    pub pseudo: Pseudonymizer,
    pub counters: Arc<Counters>,
}

const SCHEMA: &str = "
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS decisions(
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, infno TEXT NOT NULL, msgid TEXT NOT NULL, fixmedins_code TEXT NOT NULL,
  mdtrt_id TEXT NOT NULL, psn_hash TEXT NOT NULL, dept_code TEXT NOT NULL, doctor_code TEXT NOT NULL,
  decision TEXT NOT NULL, ruleset TEXT NOT NULL, elapsed_us INTEGER NOT NULL, gateway_infcode INTEGER);
CREATE TABLE IF NOT EXISTS hits(
  decision_id INTEGER NOT NULL REFERENCES decisions(id), rule_id TEXT NOT NULL, action TEXT NOT NULL,
  severity TEXT NOT NULL, amount_fen INTEGER NOT NULL, lines TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback(
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, jr_id TEXT NOT NULL, dspo_way TEXT NOT NULL, reason TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jr(
  jr_id TEXT NOT NULL, decision_id INTEGER NOT NULL REFERENCES decisions(id), rule_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at);
CREATE INDEX IF NOT EXISTS hits_rule ON hits(rule_id);
CREATE INDEX IF NOT EXISTS hits_decision ON hits(decision_id);
CREATE INDEX IF NOT EXISTS feedback_jr ON feedback(jr_id);
CREATE INDEX IF NOT EXISTS jr_id ON jr(jr_id);
CREATE INDEX IF NOT EXISTS jr_decision ON jr(decision_id);
";

/// Columns added to `hits` after the first release, added in place to an older journal.
const HIT_COLUMNS: &[(&str, &str)] = &[
    ("rule_name", "TEXT NOT NULL DEFAULT ''"),
    ("basis", "TEXT NOT NULL DEFAULT ''"),
    ("points", "INTEGER NOT NULL DEFAULT 0"),
];

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('hits')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, ty) in HIT_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE hits ADD COLUMN {name} {ty}"))?;
        }
    }
    Ok(())
}

/// How often the writer prunes when retention is on.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes decisions (with their hits and `jr_id` links) and 3103 answers dated before
/// `cutoff` (`yyyy-MM-dd`, local date of `at`). Returns the number of decisions removed.
///
/// # Errors
/// The database cannot be written.
pub fn prune_before(conn: &mut Connection, cutoff: &str) -> rusqlite::Result<u64> {
    let t = conn.transaction()?;
    let old = "SELECT id FROM decisions WHERE substr(at, 1, 10) < ?1";
    t.execute(&format!("DELETE FROM hits WHERE decision_id IN ({old})"), [cutoff])?;
    t.execute(&format!("DELETE FROM jr WHERE decision_id IN ({old})"), [cutoff])?;
    let n = t.execute("DELETE FROM decisions WHERE substr(at, 1, 10) < ?1", [cutoff])?;
    t.execute("DELETE FROM feedback WHERE substr(at, 1, 10) < ?1", [cutoff])?;
    t.commit()?;
    Ok(n as u64)
}

/// The first local date kept under a retention of `days`.
fn retention_cutoff(days: u32) -> String {
    (chrono::Local::now().date_naive() - chrono::Days::new(u64::from(days))).format("%Y-%m-%d").to_string()
}

fn prune(conn: &mut Connection, days: u32, counters: &Counters) -> u64 {
    match prune_before(conn, &retention_cutoff(days)) {
        Ok(n) => {
            counters.pruned.fetch_add(n, Ordering::Relaxed);
            metrics::JOURNAL_PRUNED.inc_by(n);
            if n > 0 {
                tracing::info!(removed = n, retention_days = days, "journal pruned");
            }
            n
        }
        Err(e) => {
            metrics::JOURNAL_ERRORS.inc();
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "journal prune failed; retried at the next round");
            0
        }
    }
}

impl Journal {
    /// Opens (creating) `dir/journal.sqlite` and starts the writer thread. `queue` bounds the
    /// records waiting to be written.
    ///
    /// # Errors
    /// The directory, key or database cannot be created.
    pub fn open(dir: &Path, queue: usize) -> anyhow::Result<Journal> {
        Journal::open_with(dir, Options { queue, ..Options::default() })
    }

    /// [`Journal::open`] with every option.
    ///
    /// # Errors
    /// The directory, key or database cannot be created.
    pub fn open_with(dir: &Path, opts: Options) -> anyhow::Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let pseudo = Pseudonymizer::load_or_create(dir)?;
        let path = dir.join("journal.sqlite");
        let mut conn = Connection::open(&path)?;
        migrate(&conn)?;
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let (tx, mut rx) = mpsc::channel::<Msg>(opts.queue.max(1));
        let retention = opts.retention_days.filter(|d| *d > 0);
        std::thread::Builder::new().name("claimgate-journal".into()).spawn(move || {
            let mut last_prune: Option<Instant> = None;
            let mut batch: Vec<Msg> = Vec::with_capacity(1024);
            loop {
                if let Some(days) = retention {
                    if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                        prune(&mut conn, days, &c);
                        last_prune = Some(Instant::now());
                    }
                }
                let Some(m) = rx.blocking_recv() else { break };
                batch.push(m);
                while batch.len() < 1024 {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                // A batch that fails stays in memory and is retried until it is written; the
                // queue behind it fills and callers wait (back-pressure), so nothing is lost.
                while !batch.is_empty() {
                    match write_batch(&mut conn, &mut batch, &c) {
                        Ok(prunes) => {
                            for p in prunes {
                                let removed = match retention {
                                    Some(days) => {
                                        last_prune = Some(Instant::now());
                                        prune(&mut conn, days, &c)
                                    }
                                    None => 0,
                                };
                                let _ = p.send(removed);
                            }
                        }
                        Err(e) => {
                            metrics::JOURNAL_ERRORS.inc();
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(error = %e, pending = batch.len(), "journal write failed; retrying");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            }
        })?;
        Ok(Journal { tx, path, pseudo, counters })
    }

    /// Queues a decision; waits (back-pressure) when the queue is full, never drops.
    pub async fn record(&self, r: Record) {
        let msg = Msg::Decision(Box::new(r));
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                metrics::JOURNAL_BACKPRESSURE.inc();
                self.counters.backpressure.fetch_add(1, Ordering::Relaxed);
                if self.tx.send(msg).await.is_err() {
                    metrics::JOURNAL_ERRORS.inc();
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::JOURNAL_ERRORS.inc();
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Prunes what the retention no longer keeps, now; returns the number of decisions removed
    /// (0 when retention is off).
    pub async fn prune_now(&self) -> u64 {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Prune(tx)).await.is_err() {
            return 0;
        }
        tokio::task::spawn_blocking(move || rx.recv().unwrap_or(0)).await.unwrap_or(0)
    }

    pub async fn feedback(&self, f: Feedback) {
        if self.tx.send(Msg::Feedback(f)).await.is_err() {
            metrics::JOURNAL_ERRORS.inc();
        }
    }

    /// Waits until everything queued before the call is durable.
    pub async fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
        }
    }
}

type PruneReply = std::sync::mpsc::Sender<u64>;

/// Writes a batch in one transaction, counts it and empties it; returns the
/// prune requests (run by the caller once the batch is durable).
fn write_batch(conn: &mut Connection, batch: &mut Vec<Msg>, c: &Counters) -> rusqlite::Result<Vec<PruneReply>> {
    let t = conn.transaction()?;
    let mut flushes = Vec::new();
    let mut prunes = Vec::new();
    let mut written = 0u64;
    {
        let mut d = t.prepare_cached(
            "INSERT INTO decisions(at, infno, msgid, fixmedins_code, mdtrt_id, psn_hash, dept_code, doctor_code, decision, ruleset, elapsed_us, gateway_infcode) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        )?;
        let mut h = t.prepare_cached(
            "INSERT INTO hits(decision_id, rule_id, action, severity, amount_fen, lines, message, rule_name, basis, points) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
        )?;
        let mut j = t.prepare_cached("INSERT INTO jr(jr_id, decision_id, rule_id) VALUES (?1,?2,?3)")?;
        let mut f =
            t.prepare_cached("INSERT INTO feedback(at, jr_id, dspo_way, reason, outcome) VALUES (?1,?2,?3,?4,?5)")?;
        for m in batch.iter() {
            match m {
                Msg::Decision(r) => {
                    d.execute(params![
                        r.at,
                        r.infno,
                        r.msgid,
                        r.fixmedins_code,
                        r.mdtrt_id,
                        r.psn_hash,
                        r.dept_code,
                        r.doctor_code,
                        r.decision,
                        r.ruleset,
                        r.elapsed_us as i64,
                        r.gateway_infcode
                    ])?;
                    let id = t.last_insert_rowid();
                    for x in &r.hits {
                        h.execute(params![
                            id,
                            x.rule_id,
                            x.action,
                            x.severity,
                            x.amount_fen,
                            x.lines.join(","),
                            x.message,
                            x.rule_name,
                            x.basis,
                            x.points
                        ])?;
                    }
                    for x in &r.jr {
                        j.execute(params![x.jr_id, id, x.rule_id])?;
                    }
                    written += 1;
                }
                Msg::Feedback(x) => {
                    f.execute(params![x.at, x.jr_id, x.dspo_way, x.reason, x.outcome])?;
                }
                Msg::Flush(_) | Msg::Prune(_) => {}
            }
        }
    }
    t.commit()?;
    for m in batch.drain(..) {
        match m {
            Msg::Flush(s) => flushes.push(s),
            Msg::Prune(s) => prunes.push(s),
            Msg::Decision(_) | Msg::Feedback(_) => {}
        }
    }
    // Counted before a flush is answered, so a flushed journal's counters are exact.
    c.written.fetch_add(written, Ordering::Relaxed);
    for s in flushes {
        let _ = s.send(());
    }
    Ok(prunes)
}

/// Counts journaled decisions (a read connection; WAL lets it run beside the writer).
///
/// # Errors
/// The database cannot be read.
pub fn count(path: &Path, decision: Option<&str>) -> rusqlite::Result<i64> {
    let c = Connection::open(path)?;
    match decision {
        Some(d) => c.query_row("SELECT count(*) FROM decisions WHERE decision = ?1", [d], |r| r.get(0)),
        None => c.query_row("SELECT count(*) FROM decisions", [], |r| r.get(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize) -> Record {
        Record {
            at: "2025-06-10T09:00:00+08:00".into(),
            infno: "2204".into(),
            msgid: format!("M{i}"),
            fixmedins_code: "H1".into(),
            mdtrt_id: "V".into(),
            psn_hash: "h".into(),
            dept_code: "100301".into(),
            doctor_code: "D1".into(),
            decision: if i % 10 == 0 { "remind".into() } else { "pass".into() },
            ruleset: "t@1".into(),
            elapsed_us: 5,
            gateway_infcode: Some(0),
            hits: vec![],
            jr: vec![],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_thousand_concurrent_decisions_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        // A small queue forces back-pressure; nothing may be lost.
        let j = Journal::open(dir.path(), 64).unwrap();
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
        assert_eq!(count(&j.path, None).unwrap(), 100_000);
        assert_eq!(count(&j.path, Some("remind")).unwrap(), 10_000);
        assert!(metrics::JOURNAL_BACKPRESSURE.get() > 0, "a 64-record queue under 8 writers must have pushed back");
    }

    #[tokio::test]
    async fn retention_prunes_old_decisions_with_their_hits_and_answers() {
        // Arrange: a record from 2000 and one from today, under a 30-day retention.
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_with(dir.path(), Options { queue: 16, retention_days: Some(30) }).unwrap();
        let today = chrono::Local::now().to_rfc3339();
        let mut old = rec(1);
        old.at = "2000-01-01T09:00:00+08:00".into();
        old.hits = vec![HitRecord {
            rule_id: "R".into(),
            rule_name: "规则".into(),
            action: "block".into(),
            severity: "critical".into(),
            amount_fen: 100,
            lines: vec!["L".into()],
            message: "m".into(),
            basis: "b".into(),
            points: 1,
        }];
        old.jr = vec![JrLink { jr_id: "JR-OLD".into(), rule_id: "R".into() }];
        let mut new = rec(2);
        new.at = today.clone();
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
        let c = Connection::open(&j.path).unwrap();
        let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(n("SELECT count(*) FROM decisions"), 1);
        assert_eq!(n("SELECT count(*) FROM hits"), 1);
        assert_eq!(n("SELECT count(*) FROM jr"), 0);
        assert_eq!(n("SELECT count(*) FROM feedback"), 0);
        assert_eq!(j.counters.pruned.load(Ordering::Relaxed), 1);
        // Without retention nothing is ever pruned.
        let keep = Journal::open(tempfile::tempdir().unwrap().path(), 4).unwrap();
        assert_eq!(keep.prune_now().await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_journal_pushes_back_and_loses_nothing() {
        // Arrange: another connection holds the database's write lock, so the writer stalls.
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path(), 8).unwrap();
        let blocker = Connection::open(&j.path).unwrap();
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
        let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
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
        assert_eq!(count(&j.path, None).unwrap(), 2000);
        assert_eq!(j.counters.written.load(Ordering::Relaxed), 2000);
        let distinct: i64 = Connection::open(&j.path)
            .unwrap()
            .query_row("SELECT count(DISTINCT msgid) FROM decisions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(distinct, 2000);
        assert!(j.counters.backpressure.load(Ordering::Relaxed) > 0);
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
}
