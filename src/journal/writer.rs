//! The journal's two threads: intake (queue → batches, each record given its uid) and writer
//! (batch → one transaction in the store; with a shared store, the spill file when the store
//! refuses or is too slow, drained when it is back; retention).

use super::db::{self, Item, What};
use super::spill::{self, Spill};
use super::{Backend, Counters, Msg};
use crate::telemetry::metrics;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
pub(super) struct Batch {
    /// Formation order (kept by the spill file, so a batch spilled late still drains in order).
    no: u64,
    items: Vec<Item>,
    flushes: Vec<tokio::sync::oneshot::Sender<()>>,
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

/// The intake thread: takes records off the queue, forms batches (giving each record its uid),
/// and hands them to the writer; with a spill file, a batch the writer cannot take in time (or
/// while older records still wait in the file) goes to the file instead.
pub(super) fn intake(
    mut rx: mpsc::Receiver<Msg>,
    hand: &crossbeam_channel::Sender<Batch>,
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
                Msg::Names(n) => b.items.push(Item { uid: uid(), what: What::Names(n) }),
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
fn hand_over(hand: &crossbeam_channel::Sender<Batch>, b: Batch, wait: Duration) -> Result<Option<Batch>, ()> {
    match hand.send_timeout(b, wait) {
        Ok(()) => Ok(None),
        Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
            tracing::warn!(waited_ms = wait.as_millis() as u64, "journal store slow; batch spilled");
            Ok(Some(back))
        }
        Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => Err(()),
    }
}

/// The writer thread: writes each batch in one transaction; with a spill file, spills what the
/// store refuses and drains the file when idle; without one, retries until the batch is written.
pub(super) fn writer(
    handed: &crossbeam_channel::Receiver<Batch>,
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
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if let Some(sp) = spill {
                    drain(backend, sp, c);
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
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
