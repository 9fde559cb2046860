//! The decision journal: every checked transaction's decision, durably, for the 医保办.
//!
//! Where it lives: with the embedded setup, in SQLite at `<data>/journal.sqlite`; with the shared
//! store (`history_store: postgres://…`), in the same PostgreSQL database as history, in tables of
//! its own (`j_decision`, `j_hit`, `j_jr`, `j_feedback`, `j_meta`), written by every instance. Both
//! run the same SQL through the history module's [`Store`] ([`db`]).
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
pub mod spill;
pub mod stats;

use crate::history::store::{Conn, Store, StoreError};
use crate::rules::Decision;
use crate::telemetry::metrics;
use db::{Item, What};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use spill::Spill;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
                lines: h.lines.clone(),
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
    Flush(std::sync::mpsc::Sender<()>),
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

/// Keyed pseudonyms for identifiers.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

/// A 32-byte key file, if there is one.
fn read_key(p: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read(p) {
        Ok(k) => Ok(Some(k.try_into().map_err(|_| anyhow::anyhow!("{}: not a 32-byte key", p.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", p.display())),
    }
}

fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).map_err(|e| anyhow::anyhow!("no randomness for the journal key: {e}"))?;
    Ok(k)
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
        let key = match read_key(&p)? {
            Some(k) => k,
            None => {
                let k = random_key()?;
                write_private(&p, &k, false)?;
                k
            }
        };
        Ok(Pseudonymizer { key })
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

/// Writes a key file readable by its owner only; `replace` overwrites an existing one.
fn write_private(p: &Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if replace {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
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

/// Where a journal lives, as `serve` configures it: the embedded file under the data directory, or
/// the shared PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `<data>/journal.sqlite`.
    Embedded(PathBuf),
    /// The `postgres://` URL of the shared store.
    Shared(String),
}

impl Location {
    /// The journal of a data directory and a configured `history_store` (the same rule as
    /// [`crate::gate::open_history`]).
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
                crate::history::sqlite::SqliteStore::open_empty(p, false, 1)
                    .map_err(|e| format!("无法读取审核日志 {}：{e}", p.display()))?,
            )
        }
        Location::Shared(url) => Arc::new(
            crate::history::postgres::PgStore::connect(url, 2)
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
                if let Err(e) = write_private(copy, key, true) {
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

/// How often the writer prunes when retention is on.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often an idle writer tries to drain the spill file.
const DRAIN_EVERY: Duration = Duration::from_secs(1);
/// Most records in one batch (one transaction).
const BATCH: usize = 1024;

/// The first local date kept under a retention of `days`.
fn retention_cutoff(days: u32) -> String {
    (chrono::Local::now().date_naive() - chrono::Days::new(u64::from(days))).format("%Y-%m-%d").to_string()
}

fn prune(backend: &Backend, days: u32, counters: &Counters) -> u64 {
    match backend.ensure().and_then(|()| db::prune_before(backend.store.as_ref(), &retention_cutoff(days))) {
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

/// A batch on its way from the intake thread to the writer.
struct Batch {
    /// Formation order (kept by the spill file, so a batch spilled late still drains in order).
    no: u64,
    items: Vec<Item>,
    flushes: Vec<std::sync::mpsc::Sender<()>>,
    prunes: Vec<std::sync::mpsc::Sender<u64>>,
}

impl Batch {
    fn durable(&mut self) {
        for f in self.flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

fn decisions_in(items: &[Item]) -> u64 {
    items.iter().filter(|i| matches!(i.what, What::Decision(_))).count() as u64
}

/// Keeps `items` in the spill file; `false` when the file itself failed (counted and logged).
fn to_spill(spill: &Spill, no: u64, items: &[Item], c: &Counters) -> bool {
    match spill.push(no, items) {
        Ok(()) => {
            let n = items.len() as u64;
            c.spilled.fetch_add(n, Ordering::Relaxed);
            metrics::JOURNAL_SPILLED.inc_by(n);
            metrics::JOURNAL_SPILL_PENDING.set(spill.pending() as i64);
            true
        }
        Err(e) => {
            metrics::JOURNAL_ERRORS.inc();
            c.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, records = items.len(), "journal spill file not writable; the batch stays in memory");
            false
        }
    }
}

/// Drains the spill file into the store, oldest first, while the store takes it.
fn drain(backend: &Backend, spill: &Spill, c: &Counters) {
    if spill.pending() == 0 || backend.store.probe().is_err() {
        return;
    }
    let mut moved = 0u64;
    loop {
        let spill::Waiting { items: rows, unreadable } = match spill.first(BATCH) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "journal spill file not readable");
                break;
            }
        };
        if let Err(e) = spill.remove(&unreadable) {
            tracing::error!(error = %e, "journal spill file not writable");
            break;
        }
        if rows.is_empty() {
            break;
        }
        let seqs: Vec<i64> = rows.iter().map(|(s, _)| *s).collect();
        let items: Vec<Item> = rows.into_iter().map(|(_, i)| i).collect();
        match backend.write(&items) {
            Ok(n) => {
                c.written.fetch_add(n, Ordering::Relaxed);
                c.drained.fetch_add(items.len() as u64, Ordering::Relaxed);
                moved += items.len() as u64;
                // Removed only once the store has them; drained twice after a crash here, they
                // are stored once (by uid).
                if let Err(e) = spill.remove(&seqs) {
                    tracing::error!(error = %e, "journal spill file not writable");
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, pending = spill.pending(), "journal store still unavailable; spill kept");
                break;
            }
        }
    }
    metrics::JOURNAL_SPILL_PENDING.set(spill.pending() as i64);
    if moved > 0 {
        tracing::info!(records = moved, pending = spill.pending(), "journal spill drained into the store");
    }
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
        let store: Arc<dyn Store> = Arc::new(crate::history::sqlite::SqliteStore::open_empty(&path, false, 2)?);
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
    /// key copy under `dir`. The store may be down: the journal starts anyway when an earlier run
    /// left the key copy, spills until the store is back, and creates its tables then.
    ///
    /// # Errors
    /// The directory or spill file cannot be created; the store is down and no key copy exists.
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
                    write_private(&copy, &k, true)?;
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
                let local = Pseudonymizer::load_or_create(dir)?.key;
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
        let (hand, handed) = std::sync::mpsc::sync_channel::<Batch>(1);
        let mut run = [0u8; 8];
        getrandom::getrandom(&mut run).map_err(|e| anyhow::anyhow!("no randomness for the journal: {e}"))?;
        let run: String = run.iter().map(|b| format!("{b:02x}")).collect();
        let (c, sp) = (counters.clone(), spill.clone());
        std::thread::Builder::new()
            .name("journal-intake".into())
            .spawn(move || intake(rx, &hand, sp.as_deref(), &run, opts.spill_after, &c))?;
        let (c, sp) = (counters.clone(), spill.clone());
        let retention = opts.retention_days.filter(|d| *d > 0);
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer(&handed, &backend, sp.as_deref(), retention, &c))?;
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

    pub async fn feedback(&self, f: Feedback) {
        if self.tx.send(Msg::Feedback(f)).await.is_err() {
            metrics::JOURNAL_ERRORS.inc();
        }
    }

    /// Waits until everything queued before the call is durable: in the store, or (shared store
    /// down or slow) in the spill file.
    pub async fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
        }
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

/// The intake thread: takes records off the queue, forms batches (giving each record its uid),
/// and hands them to the writer; with a spill file, a batch the writer cannot take in time (or
/// while older records still wait in the file) goes to the file instead.
fn intake(
    mut rx: mpsc::Receiver<Msg>,
    hand: &std::sync::mpsc::SyncSender<Batch>,
    spill: Option<&Spill>,
    run: &str,
    spill_after: Duration,
    c: &Counters,
) {
    let mut next_no = spill.map_or(1, Spill::next_batch);
    let mut n = 0u64;
    let mut msgs = Vec::with_capacity(BATCH);
    loop {
        let Some(m) = rx.blocking_recv() else { break };
        msgs.push(m);
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut b =
            Batch { no: next_no, items: Vec::with_capacity(msgs.len()), flushes: Vec::new(), prunes: Vec::new() };
        next_no += 1;
        for m in msgs.drain(..) {
            let mut uid = || {
                n += 1;
                format!("{run}-{n}")
            };
            match m {
                Msg::Decision(r) => b.items.push(Item { uid: uid(), what: What::Decision(r) }),
                Msg::Feedback(f) => b.items.push(Item { uid: uid(), what: What::Feedback(f) }),
                Msg::Flush(s) => b.flushes.push(s),
                Msg::Prune(s) => b.prunes.push(s),
            }
        }
        let Some(sp) = spill else {
            // Embedded: the writer retries a failed batch until it is written; meanwhile this
            // waits, the queue fills, and callers wait (back-pressure).
            if hand.send(b).is_err() {
                break;
            }
            continue;
        };
        let b = if sp.pending() > 0 {
            // Older records wait in the file: this batch goes behind them.
            Some(b)
        } else {
            match hand_over(hand, b, spill_after) {
                Ok(left) => left,
                Err(()) => break,
            }
        };
        let Some(mut b) = b else { continue };
        if to_spill(sp, b.no, &b.items, c) {
            b.items.clear();
            b.durable();
            if b.prunes.is_empty() {
                continue;
            }
        }
        // A prune request (needs the store), or a batch the spill file could not take: the writer.
        if hand.send(b).is_err() {
            break;
        }
    }
}

/// Hands a batch to the writer, waiting up to `wait` while it is busy; returns the batch when the
/// writer did not take it in time (`Err`: the writer is gone).
fn hand_over(hand: &std::sync::mpsc::SyncSender<Batch>, b: Batch, wait: Duration) -> Result<Option<Batch>, ()> {
    let deadline = Instant::now() + wait;
    let mut b = b;
    loop {
        match hand.try_send(b) {
            Ok(()) => return Ok(None),
            Err(std::sync::mpsc::TrySendError::Full(back)) if Instant::now() < deadline => {
                b = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                tracing::warn!(waited_ms = wait.as_millis() as u64, "journal store slow; batch spilled");
                return Ok(Some(back));
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(()),
        }
    }
}

/// The writer thread: writes each batch in one transaction; with a spill file, spills what the
/// store refuses and drains the file when idle; without one, retries until the batch is written.
fn writer(
    handed: &std::sync::mpsc::Receiver<Batch>,
    backend: &Backend,
    spill: Option<&Spill>,
    retention: Option<u32>,
    c: &Counters,
) {
    let mut last_prune: Option<Instant> = None;
    loop {
        if let Some(days) = retention {
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                prune(backend, days, c);
                last_prune = Some(Instant::now());
            }
        }
        let mut b = match handed.recv_timeout(DRAIN_EVERY) {
            Ok(b) => b,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(sp) = spill {
                    drain(backend, sp, c);
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(sp) = spill {
                    drain(backend, sp, c);
                }
                break;
            }
        };
        while !b.items.is_empty() {
            if let Some(sp) = spill.filter(|s| s.pending() > 0) {
                // Older records wait in the file: keep the order.
                if to_spill(sp, b.no, &b.items, c) {
                    b.items.clear();
                    drain(backend, sp, c);
                    break;
                }
            }
            match backend.write(&b.items) {
                Ok(n) => {
                    c.written.fetch_add(n, Ordering::Relaxed);
                    b.items.clear();
                }
                Err(e) => {
                    metrics::JOURNAL_ERRORS.inc();
                    c.errors.fetch_add(1, Ordering::Relaxed);
                    match spill {
                        Some(sp) if to_spill(sp, b.no, &b.items, c) => {
                            tracing::warn!(error = %e, records = b.items.len(), "journal store unavailable; batch spilled");
                            b.items.clear();
                        }
                        _ => {
                            // A batch that fails stays in memory and is retried until it is written;
                            // the queue behind it fills and callers wait, so nothing is lost.
                            tracing::error!(error = %e, pending = b.items.len(), decisions = decisions_in(&b.items), "journal write failed; retrying");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            }
        }
        // Counted before a flush is answered, so a flushed journal's counters are exact.
        b.durable();
        for p in b.prunes.drain(..) {
            let removed = match retention {
                Some(days) => {
                    last_prune = Some(Instant::now());
                    prune(backend, days, c)
                }
                None => 0,
            };
            let _ = p.send(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::{ReadFn, TxFn};

    fn rec(i: usize) -> Record {
        Record {
            at: "2025-06-10T09:00:00+08:00".into(),
            service_date: None,
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
        inner: crate::history::sqlite::SqliteStore,
        down: AtomicBool,
        lose_answer: AtomicBool,
        slow: std::sync::Mutex<Option<Duration>>,
    }

    impl Flaky {
        fn new() -> Arc<Flaky> {
            Arc::new(Flaky {
                inner: crate::history::sqlite::SqliteStore::memory_empty().unwrap(),
                down: AtomicBool::new(false),
                lose_answer: AtomicBool::new(false),
                slow: std::sync::Mutex::new(None),
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
            let slow = *self.slow.lock().unwrap();
            if let Some(d) = slow {
                std::thread::sleep(d);
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
        // Assert: nothing waited on the store, everything is in the spill file.
        assert!(t0.elapsed() < Duration::from_secs(5), "records waited on a dead store: {:?}", t0.elapsed());
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
        // Arrange: every transaction takes 3 s; batches wait at most 100 ms for the writer.
        let dir = tempfile::tempdir().unwrap();
        let store = Flaky::new();
        let opts = Options { queue: 8, spill_after: Duration::from_millis(100), ..Options::default() };
        let j = Journal::open_shared(dir.path(), store.clone(), opts).unwrap();
        *store.slow.lock().unwrap() = Some(Duration::from_secs(3));
        // Act: 200 records through an 8-record queue.
        let t0 = Instant::now();
        for i in 0..200 {
            j.record(rec(i)).await;
        }
        let took = t0.elapsed();
        j.flush().await;
        // Assert: the writer was stuck on the slow store, the rest went to the spill file.
        assert!(took < Duration::from_secs(3), "callers waited on the slow store: {took:?}");
        assert!(j.counters.spilled.load(Ordering::Relaxed) > 0);
        *store.slow.lock().unwrap() = None;
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
        assert!(Location::new(data, Some("mysql://x")).is_err());
        let e = open_reader(&Location::Embedded(data.join("nowhere/journal.sqlite"))).err().unwrap();
        assert!(e.contains("未找到审核日志"), "{e}");
    }
}
