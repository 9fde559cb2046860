//! The decision journal: every checked transaction's decision, durably, for the 医保办.
//!
//! Where it lives: with the embedded setup, in SQLite at `<data>/journal.sqlite`; with the shared
//! store (`history_store: postgres://…`), in the same PostgreSQL database as history, in tables of
//! its own (`j_decision`, `j_hit`, `j_jr`, `j_feedback`, `j_meta`), written by every instance. Both
//! run the same SQL through the storage layer's [`Store`] ([`db`]).
//!
//! Writes go through a bounded queue to an intake thread that batches them, and one writer thread
//! that writes each batch in one transaction. A full queue applies back-pressure to the request
//! (counted in `claimgate_journal_backpressure_total`); nothing is dropped. With the shared store,
//! a batch the store cannot take — PostgreSQL down, or so slow that the writer has not taken the
//! previous batch within [`Options::spill_after`] — goes to the local spill file
//! (`<data>/journal-spill.sqlite`, [`spill`], counted in `claimgate_journal_spilled_total`) instead
//! of making claims wait; the writer drains it into PostgreSQL, oldest first, when it is back.
//! Every record carries a unique `uid`, so a batch written twice is stored once.
//!
//! Personal data is pseudonymised: psn_no becomes an HMAC-SHA256 under a key (`journal.key` in
//! the data directory; with the shared store, the key kept in `j_meta` so every instance hashes
//! alike, with a local copy in `journal-shared.key`). The same patient links across records;
//! nobody can reverse it without the key; names are never stored.
//!
//! Dates: each decision records the service date of its claim (`service_date`, the latest service
//! date of its lines, else the message's own day) beside the time it was checked (`at`). The
//! office's daily figures and date filters use the service date; retention
//! (`journal_retention_days`) uses the check time. The writer prunes at start, then at most once
//! an hour.
//!
//! The office's statistics and listings are plain SQL over a read connection ([`stats`]).
//!
//! Architecture Invariant: the journal knows decisions, not the wire format; callers hand it
//! [`Record`]s. It renders nothing: HTML and CSV live in [`crate::report`].

pub mod db;
pub mod dictionary;
pub mod spill;
pub mod stats;
mod writer;

use crate::rules::Decision;
use crate::store::key::{random_key, read_key};
pub use crate::store::Pseudonymizer;
use crate::store::{Conn, Store, StoreError};
use crate::telemetry::metrics;
use db::Item;
use spill::Spill;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One decision as journaled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// When the message was checked (RFC 3339, local time).
    pub at: String,
    /// The service date the claim is about (its lines' latest date, else the message's day);
    /// `None`: the local date of `at`.
    pub service_date: Option<chrono::NaiveDate>,
    pub infno: String,
    pub msgid: String,
    pub fixmedins_code: String,
    /// The hospital's name as the message gives it (`fixmedins_name`), for the report's title.
    #[serde(default)]
    pub fixmedins_name: String,
    pub mdtrt_id: String,
    /// Keyed hash of psn_no; see [`Pseudonymizer`].
    pub psn_hash: String,
    /// Empty when the message names none: the writer then attributes the record to its visit's
    /// department and doctor, as an earlier record of the same `mdtrt_id` gave them.
    pub dept_code: String,
    pub doctor_code: String,
    /// Names as the message gives them (empty: none); learnt into `j_name`, never per record.
    #[serde(default)]
    pub dept_name: String,
    #[serde(default)]
    pub doctor_name: String,
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
    /// Why an `unchecked` message went without a judgement: `budget` (the check ran over
    /// `check_budget_ms`), `internal` (a kind failed), `no_ruleset`, `encrypted`; empty otherwise.
    #[serde(default)]
    pub fallback: String,
}

/// Where a journaled message came from: its head's ids (the journal does not read the wire).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub infno: &'a str,
    pub msgid: &'a str,
    pub fixmedins_code: &'a str,
    pub fixmedins_name: &'a str,
    /// The message's own time (`inf_time`): its service date when no claim was read.
    pub inf_time: &'a str,
}

impl Record {
    /// The record of a checked message before the gateway's outcome is known: the first claim's
    /// visit, pseudonymised patient, department and doctor, the decision (`None`: unchecked) and
    /// every hit.
    pub fn of_claims(
        m: Message<'_>,
        claims: &[crate::claim::Claim],
        d: Option<&Decision>,
        revision: &str,
        pseudo: &Pseudonymizer,
    ) -> Record {
        let c = claims.first();
        let first = c.and_then(|c| c.lines.first());
        let e = c.map(|c| &c.encounter);
        let text = |s: &smol_str::SmolStr| (!s.is_empty()).then(|| s.to_string());
        // The department and doctor: the first line's, else the visit's as the message gives them.
        let (dept_code, dept_name) = match first.and_then(|l| text(&l.dept_code)) {
            Some(code) => (code, first.map(|l| l.dept_name.to_string()).unwrap_or_default()),
            None => (
                e.and_then(|e| e.dept_code.clone()).unwrap_or_default(),
                e.and_then(|e| e.dept_name.clone()).unwrap_or_default(),
            ),
        };
        let (doctor_code, doctor_name) = match first.and_then(|l| text(&l.doctor_code)) {
            Some(code) => (code, first.map(|l| l.doctor_name.to_string()).unwrap_or_default()),
            None => (
                e.and_then(|e| e.doctor_code.clone()).unwrap_or_default(),
                e.and_then(|e| e.doctor_name.clone()).unwrap_or_default(),
            ),
        };
        Record {
            at: chrono::Local::now().to_rfc3339(),
            // The latest service date of the lines (an admission or a settlement without lines:
            // the message's own day); never the wall clock.
            service_date: claims
                .iter()
                .flat_map(|c| c.lines.iter().map(|l| l.date()))
                .max()
                .or_else(|| c.and_then(|c| c.day))
                // No claim read (an unchecked message): the message's own day, never the wall clock.
                .or_else(|| crate::claim::time::parse_datetime(m.inf_time).map(|t| t.date())),
            infno: m.infno.to_owned(),
            msgid: m.msgid.to_owned(),
            fixmedins_code: m.fixmedins_code.to_owned(),
            fixmedins_name: m.fixmedins_name.to_owned(),
            mdtrt_id: c.map(|c| c.encounter.mdtrt_id.clone()).unwrap_or_default(),
            psn_hash: c.map(|c| pseudo.hash(&c.patient.psn_no)).unwrap_or_default(),
            dept_code,
            doctor_code,
            dept_name,
            doctor_name,
            decision: d.map_or("unchecked", |d| d.header_value()).to_owned(),
            ruleset: revision.to_owned(),
            elapsed_us: d.map_or(0, |d| d.elapsed_us),
            gateway_infcode: None,
            hits: d.map(HitRecord::from_decision).unwrap_or_default(),
            jr: Vec::new(),
            fallback: String::new(),
        }
    }
}

/// A `jr_id` of a 3101/3102 answer and the rule it stands for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JrLink {
    pub jr_id: String,
    pub rule_id: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
                lines: h.lines.iter().map(ToString::to_string).collect(),
                message: h.message.clone(),
                basis: h.basis.to_string(),
                points: h.points,
            })
            .collect()
    }
}

/// A doctor's 3103 answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Staff names a message gave (`(kind, code, name)`), e.g. a 2201 registration's department and
    /// attending doctor.
    Names(Vec<(String, String, String)>),
    /// Answered once every record queued before it is durable (written, or in the spill file).
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Prune now (whatever the last prune), then answer with the number of decisions removed.
    Prune(std::sync::mpsc::Sender<u64>),
}

/// How the journal runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records waiting to be written; a full queue makes callers wait (back-pressure).
    pub queue: usize,
    /// Decisions (with their hits) and 3103 answers checked more than this many days ago are
    /// deleted; `None` keeps everything.
    pub retention_days: Option<u32>,
    /// Shared store only: how long a formed batch waits for the writer (busy with a slow store)
    /// before it goes to the spill file instead.
    pub spill_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { queue: 8192, retention_days: None, spill_after: Duration::from_secs(1) }
    }
}

/// This journal's own counters (the Prometheus ones are process-wide).
#[derive(Debug, Default)]
pub struct Counters {
    /// Records that waited for room in the queue.
    pub backpressure: AtomicU64,
    /// Failed batch writes (each retried or spilled, never dropped).
    pub errors: AtomicU64,
    /// Decisions written to the store (directly or drained from the spill file).
    pub written: AtomicU64,
    /// Decisions removed by retention.
    pub pruned: AtomicU64,
    /// Records (decisions and 3103 answers) put in the spill file.
    pub spilled: AtomicU64,
    /// Records drained from the spill file into the store.
    pub drained: AtomicU64,
}

/// Where a journal lives, as `serve` configures it: the embedded file under the data directory, or
/// the shared PostgreSQL store.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// `<data>/journal.sqlite`.
    Embedded(PathBuf),
    /// The `postgres://` URL of the shared store.
    Shared(String),
}

/// Never prints the URL, which may hold a password.
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Embedded(p) => f.debug_tuple("Embedded").field(p).finish(),
            Location::Shared(_) => f.write_str("Shared(<url>)"),
        }
    }
}

impl Location {
    /// The journal of a data directory and a configured `history_store` (the same rule as
    /// [`crate::startup::open_history`]).
    ///
    /// # Errors
    /// `history_store` is not a PostgreSQL URL.
    pub fn new(data: &Path, history_store: Option<&str>) -> Result<Location, String> {
        match history_store {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Location::Shared(u.to_owned()))
            }
            Some(other) => Err(format!("history_store: expected a postgres:// URL, got {other:?}")),
            None => Ok(Location::Embedded(data.join("journal.sqlite"))),
        }
    }

    /// For messages: the file, or "PostgreSQL" (never the URL, which may hold a password).
    pub fn describe(&self) -> String {
        match self {
            Location::Embedded(p) => p.display().to_string(),
            Location::Shared(_) => "PostgreSQL（共享库）".into(),
        }
    }
}

/// Opens the journal at `loc` for reading (`claimgate report`): the file or the tables must exist;
/// an older embedded journal is brought up to the current schema in place.
///
/// # Errors
/// No journal there, or it cannot be read (the message is in Chinese, for the office).
pub fn open_reader(loc: &Location) -> Result<Arc<dyn Store>, String> {
    let store: Arc<dyn Store> = match loc {
        Location::Embedded(p) => {
            if !p.is_file() {
                return Err(format!("未找到审核日志：{}（请用 --data 指定数据目录，或用 --config / CLAIMGATE_HISTORY_STORE 指定共享库）", p.display()));
            }
            Arc::new(
                crate::store::sqlite::SqliteStore::open_empty(p, false, 1)
                    .map_err(|e| format!("无法读取审核日志 {}：{e}", p.display()))?,
            )
        }
        Location::Shared(url) => Arc::new(
            crate::store::postgres::PgStore::connect(url, 2, crate::store::no_schema)
                .map_err(|e| format!("无法连接共享库 PostgreSQL：{e}"))?,
        ),
    };
    let here = loc.describe();
    let v = off_executor(|| db::version(store.as_ref())).map_err(|e| format!("无法读取审核日志 {here}：{e}"))?;
    match (v.as_deref(), loc) {
        (Some(db::SCHEMA_VERSION), _) => {}
        (None, Location::Shared(_)) => {
            return Err(format!(
                "未找到审核日志：{here} 中没有审核日志表（j_decision），claimgate serve 尚未在该库写入"
            ))
        }
        _ => off_executor(|| db::migrate(store.as_ref())).map_err(|e| format!("无法升级审核日志 {here}：{e}"))?,
    }
    Ok(store)
}

/// Runs `f` on a thread of its own: a store's sync client must not run inside an async executor,
/// and startup may be in one.
fn off_executor<T: Send>(f: impl FnOnce() -> Result<T, StoreError> + Send) -> Result<T, StoreError> {
    std::thread::scope(|t| t.spawn(f).join().unwrap_or_else(|_| Err(StoreError::Sql("journal setup panicked".into()))))
}

/// The store and whether the journal's tables are known to be there.
struct Backend {
    store: Arc<dyn Store>,
    ready: AtomicBool,
    /// A shared store that was down at the first start: the key this run hashes with (the local
    /// `journal.key`) and where the copy of the store's key goes, to offer the key to the store
    /// (adopted when it has none yet) once it answers.
    unconfirmed_key: Option<([u8; 32], PathBuf)>,
}

impl Backend {
    /// Creates or migrates the tables the first time the store answers.
    fn ensure(&self) -> Result<(), StoreError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        db::migrate(self.store.as_ref())?;
        if let Some((key, copy)) = &self.unconfirmed_key {
            let shared = db::shared_key(self.store.as_ref(), key)?;
            if shared == *key {
                if let Err(e) = crate::store::write_private(copy, key, true) {
                    tracing::warn!(error = %e, path = %copy.display(), "journal key copy not written");
                }
            } else {
                // Not fatal: the records are kept, but this run's pseudonyms do not link with
                // other instances' until the next start (which takes the store's key).
                tracing::error!("the shared journal already has another pseudonymisation key; this run's patient pseudonyms will differ until restart");
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes items in one transaction; returns the decisions newly stored.
    fn write(&self, items: &[Item]) -> Result<u64, StoreError> {
        self.ensure()?;
        let mut n = 0;
        self.store.tx(&mut |c| {
            n = db::write(c, items)?;
            Ok(true)
        })?;
        Ok(n)
    }
}

/// The journal handle: cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    /// Owned by the writer thread, which outlives every handle (it ends when the last handle's
    /// queue sender is gone): the store is dropped there, never on an async executor (dropping a
    /// PostgreSQL pool blocks on its connections).
    backend: std::sync::Weak<Backend>,
    spill: Option<Arc<Spill>>,
    /// The embedded journal's file; `None` with the shared store.
    file: Option<PathBuf>,
    pub pseudo: Pseudonymizer,
    pub counters: Arc<Counters>,
}

impl Journal {
    /// Opens (creating) `dir/journal.sqlite` and starts the writer. `queue` bounds the records
    /// waiting to be written.
    ///
    /// # Errors
    /// The directory, key or database cannot be created.
    pub fn open(dir: &Path, queue: usize) -> anyhow::Result<Journal> {
        Journal::open_with(dir, Options { queue, ..Options::default() })
    }

    /// [`Journal::open`] with every option: the embedded journal, `dir/journal.sqlite` (a journal
    /// written by an earlier version is migrated in place).
    ///
    /// # Errors
    /// The directory, key or database cannot be created.
    pub fn open_with(dir: &Path, opts: Options) -> anyhow::Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let pseudo = Pseudonymizer::load_or_create(dir)?;
        let path = dir.join("journal.sqlite");
        let store: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::open_empty(&path, false, 2)?);
        off_executor(|| db::migrate(store.as_ref())).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Journal::start(
            Backend { store, ready: AtomicBool::new(true), unconfirmed_key: None },
            None,
            pseudo,
            Some(path),
            opts,
        )
    }

    /// The journal in a shared store (PostgreSQL, the one history uses), with its spill file and
    /// key copy under `dir`. The store may be down: the journal starts anyway (hashing with the key
    /// copy an earlier run left, else with the local `journal.key`, offered to the store once it
    /// answers), spills until the store is back, and creates its tables then.
    ///
    /// # Errors
    /// The directory, the spill file or a key file cannot be read or created.
    pub fn open_shared(dir: &Path, store: Arc<dyn Store>, opts: Options) -> anyhow::Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let spill = Spill::open(&dir.join("journal-spill.sqlite"))?;
        if spill.pending() > 0 {
            tracing::warn!(pending = spill.pending(), "journal spill holds records from an earlier run; draining them");
        }
        let copy = dir.join("journal-shared.key");
        // A hospital moving from the embedded journal offers its key, so pseudonyms stay the same.
        let offer = match read_key(&dir.join("journal.key"))? {
            Some(k) => k,
            None => random_key()?,
        };
        let from_store = off_executor(|| {
            db::migrate(store.as_ref())?;
            db::shared_key(store.as_ref(), &offer)
        });
        let ready = from_store.is_ok();
        let key = match (from_store, read_key(&copy)?) {
            (Ok(k), had) => {
                if had != Some(k) {
                    crate::store::write_private(&copy, &k, true)?;
                }
                k
            }
            (Err(e), Some(k)) => {
                tracing::error!(error = %e, "journal store unreachable at start; journaling to the spill file until it is back");
                k
            }
            (Err(e), None) => {
                // First start ever with the store down: hash with the local key, offered to the
                // store once it answers (see `Backend::ensure`). Serving beats waiting.
                tracing::error!(error = %e, "journal store unreachable at first start; journaling to the spill file with the local key");
                let local = Pseudonymizer::load_or_create(dir)?.key();
                let backend = Backend { store, ready: AtomicBool::new(false), unconfirmed_key: Some((local, copy)) };
                return Journal::start(backend, Some(Arc::new(spill)), Pseudonymizer::from_key(local), None, opts);
            }
        };
        let backend = Backend { store, ready: AtomicBool::new(ready), unconfirmed_key: None };
        Journal::start(backend, Some(Arc::new(spill)), Pseudonymizer::from_key(key), None, opts)
    }

    fn start(
        backend: Backend,
        spill: Option<Arc<Spill>>,
        pseudo: Pseudonymizer,
        file: Option<PathBuf>,
        opts: Options,
    ) -> anyhow::Result<Journal> {
        let backend = Arc::new(backend);
        let weak = Arc::downgrade(&backend);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel::<Msg>(opts.queue.max(1));
        // One batch waits for the writer while it writes the previous one.
        let (hand, handed) = crossbeam_channel::bounded::<writer::Batch>(1);
        let mut run = [0u8; 8];
        getrandom::getrandom(&mut run).map_err(|e| anyhow::anyhow!("no randomness for the journal: {e}"))?;
        let run: String = run.iter().map(|b| format!("{b:02x}")).collect();
        let (c, sp) = (counters.clone(), spill.clone());
        std::thread::Builder::new()
            .name("journal-intake".into())
            .spawn(move || writer::intake(rx, &hand, sp.as_deref(), &run, opts.spill_after, &c))?;
        let (c, sp) = (counters.clone(), spill.clone());
        let retention = opts.retention_days.filter(|d| *d > 0);
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer::writer(&handed, &backend, sp.as_deref(), retention, &c))?;
        Ok(Journal { tx, backend: weak, spill, file, pseudo, counters })
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
    /// (0 when retention is off or the store is down).
    pub async fn prune_now(&self) -> u64 {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Prune(tx)).await.is_err() {
            return 0;
        }
        tokio::task::spawn_blocking(move || rx.recv().unwrap_or(0)).await.unwrap_or(0)
    }

    /// Queues names of departments and doctors a message gave (`(kind, code, name)`, kind `dept`
    /// or `doctor`); learnt like the names on decisions, never over the dictionary's.
    pub async fn names(&self, names: Vec<(String, String, String)>) {
        if !names.is_empty() && self.tx.send(Msg::Names(names)).await.is_err() {
            metrics::JOURNAL_ERRORS.inc();
        }
    }

    pub async fn feedback(&self, f: Feedback) {
        if self.tx.send(Msg::Feedback(f)).await.is_err() {
            metrics::JOURNAL_ERRORS.inc();
        }
    }

    /// Waits until everything queued before the call is durable: in the store, or (shared store
    /// down or slow) in the spill file.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Journals a decision the HIS is about to be told, and returns once it is durable: written
    /// in the journal's store, or (with the shared store, when it is down or slower than
    /// `spill_after`) in the local spill file. A `kill -9` after the HIS heard the answer cannot
    /// lose the record. Concurrent callers share one transaction (the intake thread batches them),
    /// so the cost is one group commit, as for history's durable learn; with the shared store the
    /// wait is bounded by `spill_after`.
    pub async fn record_acknowledged(&self, r: Record) {
        self.record(r).await;
        self.flush().await;
    }

    /// Where the journal lives (for messages).
    pub fn location(&self) -> String {
        match &self.file {
            Some(p) => p.display().to_string(),
            None => "PostgreSQL（共享库）".into(),
        }
    }

    /// The embedded journal's file (`None` with the shared store).
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Records waiting in the spill file (0 with the embedded journal).
    pub fn spill_pending(&self) -> u64 {
        self.spill.as_ref().map_or(0, |s| s.pending())
    }

    /// Writes the hospital's dictionary of department and doctor names into the journal (they win
    /// over names learnt from the traffic). Blocking: call it at startup or off the executor.
    ///
    /// # Errors
    /// The journal is closed or its store failed.
    pub fn write_dictionary(&self, d: &dictionary::Dictionary) -> Result<(), StoreError> {
        let b = self.backend.upgrade().ok_or_else(|| StoreError::Sql("journal closed".into()))?;
        db::write_dictionary(b.store.as_ref(), &d.entries)
    }

    /// Runs reads against the journal's store. Blocking: call it off the async executor.
    ///
    /// # Errors
    /// The store failed, or `f` did.
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let backend = self.backend()?;
        backend.ensure()?;
        let mut f = Some(f);
        let mut out = None;
        backend.store.read(&mut |c| {
            if let Some(f) = f.take() {
                out = Some(f(c)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| StoreError::Sql("journal read did not run".into()))
    }

    /// Counts journaled decisions, all or with one outcome. Blocking.
    ///
    /// # Errors
    /// The store failed.
    pub fn count(&self, decision: Option<&str>) -> Result<i64, StoreError> {
        let backend = self.backend()?;
        backend.ensure()?;
        db::count(backend.store.as_ref(), decision)
    }

    fn backend(&self) -> Result<Arc<Backend>, StoreError> {
        self.backend.upgrade().ok_or_else(|| StoreError::Unavailable("the journal writer has stopped".into()))
    }
}

#[cfg(test)]
mod tests;
