//! The decision journal: every checked transaction's decision, durably, for the 医保办.
//!
//! Writes go through a bounded queue to one writer thread that batches them into SQLite (WAL)
//! transactions. A full queue applies back-pressure to the request (counted in
//! `claimgate_journal_backpressure_total`); nothing is dropped. Personal data is pseudonymised:
//! psn_no becomes an HMAC-SHA256 under a key kept in the data directory (the same patient links
//! across records; nobody can reverse it without the key); names are never stored.
//!
//! Architecture Invariant: the journal knows decisions, not the wire format; callers hand it
//! [`Record`]s.

use crate::rules::Decision;
use crate::telemetry::metrics;
use hmac::{Hmac, Mac};
use rusqlite::{params, Connection};
use sha2::Sha256;
use std::path::{Path, PathBuf};
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
}

#[derive(Debug, Clone)]
pub struct HitRecord {
    pub rule_id: String,
    pub action: String,
    pub severity: String,
    pub amount_fen: i64,
    pub lines: Vec<String>,
    pub message: String,
}

impl HitRecord {
    pub fn from_decision(d: &Decision) -> Vec<HitRecord> {
        d.hits
            .iter()
            .map(|h| HitRecord {
                rule_id: h.rule_id.to_string(),
                action: format!("{:?}", h.action).to_lowercase(),
                severity: format!("{:?}", h.severity).to_lowercase(),
                amount_fen: h.amount.get(),
                lines: h.lines.clone(),
                message: h.message.clone(),
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
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at);
CREATE INDEX IF NOT EXISTS hits_rule ON hits(rule_id);
";

impl Journal {
    /// Opens (creating) `dir/journal.sqlite` and starts the writer thread. `queue` bounds the
    /// records waiting to be written.
    ///
    /// # Errors
    /// The directory, key or database cannot be created.
    pub fn open(dir: &Path, queue: usize) -> anyhow::Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let pseudo = Pseudonymizer::load_or_create(dir)?;
        let path = dir.join("journal.sqlite");
        let mut conn = Connection::open(&path)?;
        conn.execute_batch(SCHEMA)?;
        let (tx, mut rx) = mpsc::channel::<Msg>(queue.max(1));
        std::thread::Builder::new().name("claimgate-journal".into()).spawn(move || {
            let mut batch: Vec<Msg> = Vec::with_capacity(1024);
            while let Some(m) = rx.blocking_recv() {
                batch.push(m);
                while batch.len() < 1024 {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
                if let Err(e) = write_batch(&mut conn, &mut batch) {
                    // The batch stays in memory and is retried; the failure is loud.
                    metrics::JOURNAL_ERRORS.inc();
                    tracing::error!(error = %e, pending = batch.len(), "journal write failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        })?;
        Ok(Journal { tx, path, pseudo })
    }

    /// Queues a decision; waits (back-pressure) when the queue is full, never drops.
    pub async fn record(&self, r: Record) {
        let msg = Msg::Decision(Box::new(r));
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                metrics::JOURNAL_BACKPRESSURE.inc();
                if self.tx.send(msg).await.is_err() {
                    metrics::JOURNAL_ERRORS.inc();
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => metrics::JOURNAL_ERRORS.inc(),
        }
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

fn write_batch(conn: &mut Connection, batch: &mut Vec<Msg>) -> rusqlite::Result<()> {
    let t = conn.transaction()?;
    let mut flushes = Vec::new();
    {
        let mut d = t.prepare_cached(
            "INSERT INTO decisions(at, infno, msgid, fixmedins_code, mdtrt_id, psn_hash, dept_code, doctor_code, decision, ruleset, elapsed_us, gateway_infcode) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        )?;
        let mut h = t.prepare_cached(
            "INSERT INTO hits(decision_id, rule_id, action, severity, amount_fen, lines, message) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        )?;
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
                            x.message
                        ])?;
                    }
                }
                Msg::Feedback(x) => {
                    f.execute(params![x.at, x.jr_id, x.dspo_way, x.reason, x.outcome])?;
                }
                Msg::Flush(_) => {}
            }
        }
    }
    t.commit()?;
    for m in batch.drain(..) {
        if let Msg::Flush(s) = m {
            flushes.push(s);
        }
    }
    for s in flushes {
        let _ = s.send(());
    }
    Ok(())
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
