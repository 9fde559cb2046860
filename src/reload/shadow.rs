//! Shadow runs: a candidate bundle, verified, compiled and self-tested like any other, evaluated
//! beside the active set on live traffic without affecting any answer. The request path only loads
//! an `ArcSwapOption` and, when a candidate is set, hands a copy of the claims and a summary of the
//! active decision to a worker thread through a bounded queue (full: the sample is dropped and
//! counted, the request never waits). The worker counts per rule how often the candidate would
//! remind or block, and keeps the most recent claims where the two sets disagree.

use super::bundle::BundleInfo;
use crate::claim::Claim;
use crate::rules::{Action, CompiledRuleSet, Decision};
use arc_swap::ArcSwapOption;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Claims waiting for the shadow worker.
const QUEUE: usize = 1024;
/// Differing claims kept (the most recent).
const KEEP_DIFFS: usize = 100;

/// A candidate under shadow evaluation.
pub struct Candidate {
    pub rs: CompiledRuleSet,
    pub info: BundleInfo,
    /// The bundle file, activated as is on promotion.
    pub bytes: Arc<Vec<u8>>,
    pub since: String,
    stats: Mutex<Stats>,
    observed: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleCounts {
    /// Claims on which the candidate's rule would remind / block.
    pub would_remind: u64,
    pub would_block: u64,
    /// The same rule id in the active set, on the same claims.
    pub active_remind: u64,
    pub active_block: u64,
}

/// One claim on which the candidate decides differently.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub at: String,
    pub infno: &'static str,
    /// The visit id, masked (it can lead to a person).
    pub visit: String,
    pub active: Summary,
    pub candidate: Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub decision: &'static str,
    /// `(rule_id, action, lines)`, sorted.
    pub hits: Vec<(String, &'static str, Vec<String>)>,
}

#[derive(Debug, Default)]
struct Stats {
    evaluated: u64,
    differing: u64,
    rules: BTreeMap<String, RuleCounts>,
    diffs: std::collections::VecDeque<Difference>,
}

/// What `GET /admin/v1/shadow` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub candidate: BundleInfo,
    pub revision: String,
    pub since: String,
    /// Messages sampled from live traffic / evaluated by the worker / dropped because it was busy.
    pub observed: u64,
    pub evaluated: u64,
    pub dropped: u64,
    /// Evaluated messages whose decision or hits differ between the two sets.
    pub differing: u64,
    pub rules: BTreeMap<String, RuleCounts>,
    pub differences: Vec<Difference>,
}

fn action(a: Action) -> &'static str {
    match a {
        Action::Block => "block",
        Action::Remind => "remind",
    }
}

fn summary(d: &Decision) -> Summary {
    let mut hits: Vec<(String, &'static str, Vec<String>)> = d
        .hits
        .iter()
        .map(|h| {
            let mut lines: Vec<String> = h.lines.iter().map(ToString::to_string).collect();
            lines.sort();
            (h.rule_id.to_string(), action(h.action), lines)
        })
        .collect();
    hits.sort();
    Summary { decision: d.decision.as_str(), hits }
}

struct Sample {
    candidate: Arc<Candidate>,
    claims: Vec<Claim>,
    active: Summary,
}

enum Msg {
    Sample(Box<Sample>),
    /// Acknowledged once every earlier sample is evaluated.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The shadow slot and its worker.
pub struct Shadow {
    candidate: ArcSwapOption<Candidate>,
    tx: SyncSender<Msg>,
}

impl Default for Shadow {
    fn default() -> Self {
        Self::new()
    }
}

impl Shadow {
    /// Starts the worker thread (it ends when the `Shadow` is dropped).
    pub fn new() -> Shadow {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new().name("claimgate-shadow".into()).spawn(move || worker(&rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "shadow worker could not start; shadow samples will be dropped");
        }
        Shadow { candidate: ArcSwapOption::empty(), tx }
    }

    pub fn candidate(&self) -> Option<Arc<Candidate>> {
        self.candidate.load_full()
    }

    pub fn set(&self, rs: CompiledRuleSet, info: BundleInfo, bytes: Arc<Vec<u8>>) {
        self.candidate.store(Some(Arc::new(Candidate {
            rs,
            info,
            bytes,
            since: chrono::Local::now().to_rfc3339(),
            stats: Mutex::new(Stats::default()),
            observed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })));
    }

    pub fn clear(&self) -> Option<Arc<Candidate>> {
        self.candidate.swap(None)
    }

    /// Called on the request path after the active set decided. Costs one atomic load when no
    /// candidate is set; never blocks.
    pub fn observe(&self, claims: &[Claim], active: &Decision) {
        let guard = self.candidate.load();
        let Some(c) = guard.as_ref() else { return };
        if claims.is_empty() {
            return;
        }
        c.observed.fetch_add(1, Ordering::Relaxed);
        let sample = Sample { candidate: c.clone(), claims: claims.to_vec(), active: summary(active) };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Sample(Box::new(sample)))
        {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until every sample queued so far is evaluated (for the admin API's consumers and
    /// tests that want a settled report).
    pub fn flush(&self) {
        let (ack, done) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    pub fn report(&self) -> Option<Report> {
        let c = self.candidate.load_full()?;
        let s = c.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(Report {
            candidate: c.info.clone(),
            revision: c.rs.revision(),
            since: c.since.clone(),
            observed: c.observed.load(Ordering::Relaxed),
            evaluated: s.evaluated,
            dropped: c.dropped.load(Ordering::Relaxed),
            differing: s.differing,
            rules: s.rules.clone(),
            differences: s.diffs.iter().rev().cloned().collect(),
        })
    }
}

fn worker(rx: &Receiver<Msg>) {
    while let Ok(m) = rx.recv() {
        let s = match m {
            Msg::Sample(s) => *s,
            Msg::Flush(ack) => {
                let _ = ack.send(());
                continue;
            }
        };
        let d = crate::pipeline::decide(&s.candidate.rs, &s.claims);
        let cand = summary(&d);
        // A std Mutex: held for a few map updates on this thread, while the admin API copies.
        let mut st = s.candidate.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        st.evaluated += 1;
        // Each rule counts once per sample and side, however many lines it hit.
        let mut seen = std::collections::BTreeSet::new();
        for (candidate, hits) in [(true, &cand.hits), (false, &s.active.hits)] {
            for (id, act, _) in hits {
                if seen.insert((id.clone(), *act, candidate)) {
                    let e = st.rules.entry(id.clone()).or_default();
                    *match (candidate, *act == "block") {
                        (true, true) => &mut e.would_block,
                        (true, false) => &mut e.would_remind,
                        (false, true) => &mut e.active_block,
                        (false, false) => &mut e.active_remind,
                    } += 1;
                }
            }
        }
        if cand != s.active {
            st.differing += 1;
            let first = s.claims.first();
            st.diffs.push_back(Difference {
                at: chrono::Local::now().to_rfc3339(),
                infno: first.map_or("", |c| c.infno),
                visit: first.map(|c| crate::telemetry::mask(&c.encounter.mdtrt_id)).unwrap_or_default(),
                active: s.active,
                candidate: cand,
            });
            if st.diffs.len() > KEEP_DIFFS {
                st.diffs.pop_front();
            }
        }
    }
}
