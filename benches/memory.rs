//! Resident size (design.md budget: ≤ 256 MB) with the national-baseline pack compiled and 100,000
//! patients' history snapshots cached, as `claimgate serve` holds them: an embedded SQLite store on
//! disk and `History` with the server's default snapshot budget (`history_cache_mb`, 128 MB: the least
//! recently used patients' snapshots are evicted past it and read from the store again). Each patient has one
//! learnt 20-line outpatient visit (`claimgate::gen`) and one `attach` (the lookup a claim makes),
//! which leaves the patient's snapshot in the cache. Reads `VmRSS`/`VmHWM` from `/proc/self/status`.
//!
//! Run: `cargo bench --bench memory` (100,000 patients). Under `cargo test` it runs 1,000 patients as
//! a smoke check of the measurement itself.

use claimgate::claim::{Claim, NoFacts};
use claimgate::history::History;
use claimgate::pipeline::{prepare, Prepared};
use std::path::PathBuf;
use std::sync::Arc;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a kB field")
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // PATIENTS and SNAPSHOT_MB (the cache budget) override the defaults for calibration runs.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let patients: u64 = env("PATIENTS").unwrap_or(if full { 100_000 } else { 1_000 });
    let budget_mb = env("SNAPSHOT_MB").unwrap_or(claimgate::history::DEFAULT_SNAPSHOT_BYTES >> 20);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let start = status_kb("VmRSS:");
    let (_, rs) = claimgate::rules::load(&[root.join("rulesets/national-baseline")]).expect("baseline pack");
    let with_pack = status_kb("VmRSS:");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = claimgate::store::sqlite::SqliteStore::open(
        &dir.path().join("history.sqlite"),
        false,
        4,
        claimgate::history::db::create_schema,
    )
    .expect("sqlite");
    let h = History::new(Arc::new(store), Some(2), 200_000).expect("history").with_snapshot_budget(budget_mb << 20);
    let lookback = rs.lookback_days().unwrap_or(90);
    let t0 = std::time::Instant::now();
    let mut lines = 0usize;
    for seed in 0..patients {
        let bytes = serde_json::to_vec(&claimgate::gen::fee_upload(1_000_000 + seed, 20, false)).expect("json");
        let head = claimgate::wire::parse_head(&bytes).expect("head");
        h.learn(&head, None, None).expect("learn");
        let mut claim: Claim = match prepare(&head, &NoFacts).expect("claim") {
            Prepared::Claims { mut claims, .. } => claims.remove(0),
            _ => unreachable!("fee uploads are claims"),
        };
        h.attach(&mut claim, lookback).expect("attach");
        lines += claim.history.as_ref().map_or(0, |x| x.lines.len());
    }
    let filled = status_kb("VmRSS:");
    let (cached, weight) = h.cached();
    let hwm = status_kb("VmHWM:");
    assert_eq!(lines as u64, patients * 20, "every patient's snapshot holds its 20 learnt lines");
    // A second lookup of a sample: the recently used from the cache, the others from the store.
    let t1 = std::time::Instant::now();
    for seed in (0..patients).step_by(97) {
        let bytes = serde_json::to_vec(&claimgate::gen::fee_upload(1_000_000 + seed, 20, false)).expect("json");
        let head = claimgate::wire::parse_head(&bytes).expect("head");
        let mut claim: Claim = match prepare(&head, &NoFacts).expect("claim") {
            Prepared::Claims { mut claims, .. } => claims.remove(0),
            _ => unreachable!("fee uploads are claims"),
        };
        h.attach(&mut claim, lookback).expect("attach");
    }
    println!(
        "memory: {patients} patients × 20 learnt lines (lookback {lookback} days), filled in {:.1} s; re-read sample in {:.0} ms",
        t0.elapsed().as_secs_f64(),
        t1.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "memory: VmRSS at start {:.1} MB, with the baseline pack {:.1} MB, with {patients} patients cached {:.1} MB (peak VmHWM {:.1} MB); history cache ≈ {:.2} KB per patient",
        mb(start),
        mb(with_pack),
        mb(filled),
        mb(hwm),
        (filled - with_pack) as f64 / patients as f64
    );
    println!(
        "memory: {cached} of {patients} patients' snapshots cached, estimated {:.1} MB of the {budget_mb} MB budget ({:.2} KB a patient)",
        weight as f64 / 1048576.0,
        weight as f64 / 1024.0 / cached.max(1) as f64
    );
    println!(
        "memory: SQLite file {:.1} MB on disk",
        std::fs::metadata(dir.path().join("history.sqlite")).map_or(0, |m| m.len()) as f64 / 1e6
    );
}
