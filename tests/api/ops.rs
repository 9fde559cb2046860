//! What an operator's tooling reads: the metrics a fresh process exports, its log lines, and the
//! deploy/ files (Prometheus rules, Grafana dashboard, Kubernetes manifests) checked against them.

use crate::helpers::root;
use claimgate::telemetry::metrics;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A real `claimgate serve` with stderr piped (not a terminal), the national baseline pack, no
/// upstream (check-only). Returns the child, its address and the log lines up to "listening".
fn serve(data: &std::path::Path) -> (Child, String, Vec<String>, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(root().join("rulesets/national-baseline"))
        .arg("--data")
        .arg(data)
        .env_remove("CLAIMGATE_LOG_JSON")
        .env_remove("CLAIMGATE_UPSTREAM")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut logs = Vec::new();
    let addr = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "claimgate exited before listening:\n{}", logs.join(""));
        logs.push(line.clone());
        if line.contains("claimgate listening") {
            let addr = line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap();
            break addr.to_owned();
        }
    };
    (child, addr, logs, err)
}

fn stop(mut child: Child, mut err: BufReader<std::process::ChildStderr>, logs: &mut Vec<String>) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "claimgate stops cleanly on SIGTERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    logs.extend(rest.lines().map(|l| format!("{l}\n")));
}

/// The sample's value in the Prometheus text `m`, by its full name with labels as printed.
fn sample(m: &str, series: &str) -> Option<f64> {
    m.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

#[actix_web::test]
async fn a_fresh_server_lists_every_counter_at_zero_with_process_and_build_metrics_and_plain_logs() {
    // Arrange: a new process, so nothing has been counted yet.
    let data = tempfile::tempdir().unwrap();
    let (child, addr, mut logs, err) = serve(data.path());
    // Act
    let m = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    stop(child, err, &mut logs);
    // Assert: every labelled counter's known values present before any request; those only a
    // request can move are at 0 (the activation's self-test reads and writes a scratch history).
    let families: [(&str, &str, &[&str]); 7] = [
        ("claimgate_fallbacks_total", "reason", metrics::FALLBACK_REASONS),
        ("claimgate_upstream_errors_total", "kind", metrics::UPSTREAM_ERROR_KINDS),
        ("claimgate_refused_total", "reason", metrics::REFUSED_REASONS),
        ("claimgate_overrides_total", "dspo_way", metrics::OVERRIDE_WAYS),
        ("claimgate_history_writes_total", "outcome", metrics::HISTORY_WRITE_OUTCOMES),
        ("claimgate_history_lookups_total", "cache", metrics::HISTORY_CACHE),
        ("claimgate_history_snapshot_updates_total", "outcome", metrics::SNAPSHOT_OUTCOMES),
    ];
    for (name, label, values) in families {
        for v in values {
            let series = format!("{name}{{{label}=\"{v}\"}}");
            let value = sample(&m, &series);
            assert!(value.is_some(), "{series} listed from the start:\n{m}");
            if !name.starts_with("claimgate_history") {
                assert_eq!(value, Some(0.0), "{series} at 0 before any request");
            }
        }
    }
    for series in [
        "claimgate_requests_total{decision=\"block\",infno=\"2207\"}",
        "claimgate_ruleset_update_failures_total{origin=\"pull\",stage=\"verify\"}",
        "claimgate_journal_errors_total",
        "claimgate_journal_spill_pending",
        "claimgate_history_outbox_pending",
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series} at 0 from the start");
    }
    // Every rule of the active set has its hit counter, e.g. the daily cap of the baseline pack.
    let rules = m.lines().filter(|l| l.starts_with("claimgate_rule_hits_total{")).count() as f64;
    assert!(rules > 0.0 && Some(rules) == sample(&m, "claimgate_ruleset_rules"), "one hit series per rule");
    assert_eq!(sample(&m, "claimgate_ruleset_activations_total{origin=\"local\"}"), Some(1.0));
    let build = format!("claimgate_build_info{{profile=\"debug\",version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&m, &build), Some(1.0), "{m}");
    assert!(sample(&m, "process_cpu_seconds_total").is_some(), "process CPU exported");
    for process in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
        assert!(sample(&m, process).is_some_and(|v| v > 0.0), "{process} exported");
    }
    // Logs written to a pipe carry no colour codes (journald and files get plain text).
    let logs = logs.concat();
    assert!(logs.contains("INFO") && logs.contains("claimgate listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escapes in piped logs:\n{logs:?}");
}
