//! Prometheus metrics, registered once as statics. Labels carry no personal data: `infno` is one of
//! the known transaction codes or `other`, `rule` is a rule id.

use once_cell::sync::Lazy;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub static REGISTRY: Lazy<Registry> = Lazy::new(Registry::new);

/// Registers a metric whose definition is fixed in the code (so neither step can fail at run time).
fn registered<M: Collector + Clone + 'static>(m: prometheus::Result<M>) -> M {
    let m = m.expect("metric definition");
    REGISTRY.register(Box::new(m.clone())).expect("metric registered once");
    m
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(IntCounterVec::new(Opts::new(name, help), labels))
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    registered(HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    registered(IntGauge::new(name, help))
}

fn total(name: &str, help: &str) -> IntCounter {
    registered(IntCounter::new(name, help))
}

const LAT: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Requests by transaction and decision (`pass`, `remind`, `block`, `unchecked`, `relay`, `error`).
pub static REQUESTS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_requests_total", "Requests by infno and decision", &["infno", "decision"]));
/// Claim messages refused as invalid before anything was forwarded, by infno.
pub static INVALID: Lazy<IntCounterVec> = Lazy::new(|| {
    counter("claimgate_invalid_requests_total", "Invalid claim messages answered locally, never forwarded", &["infno"])
});
/// Time spent in claimgate itself (parse + rules), by infno.
pub static CHECK_SECONDS: Lazy<HistogramVec> =
    Lazy::new(|| histogram("claimgate_check_seconds", "claimgate's own work per message", &["infno"], LAT.to_vec()));
/// Whole request latency as the HIS sees it, by infno.
pub static REQUEST_SECONDS: Lazy<HistogramVec> = Lazy::new(|| {
    histogram("claimgate_request_seconds", "End-to-end latency seen by the HIS", &["infno"], LAT.to_vec())
});
pub static RULE_HITS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_rule_hits_total", "Rule hits by rule id and action", &["rule", "action"]));
/// Upstream failures by kind (`connect`, `timeout`, `io`, `garbage`, `too_large`).
pub static UPSTREAM_ERRORS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_upstream_errors_total", "Gateway failures by kind", &["kind"]));
pub static UPSTREAM_SECONDS: Lazy<HistogramVec> =
    Lazy::new(|| histogram("claimgate_upstream_seconds", "Gateway call latency", &["infno"], LAT.to_vec()));
/// Requests refused before their body was read: `no_key`, `bad_key` (HIS client keys), `rate`
/// (the client's rate limit), `jwt` (CDS Hooks), `body_timeout`, `client_connections` (over the
/// per-client cap), `framing`, `head_too_large`, `head_timeout` (not HTTP/1.1 claimgate can
/// frame; see `gate::conn`). Never labelled with the key.
pub static REFUSED: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_refused_total", "HIS requests refused by access control", &["reason"]));
/// Fallbacks: `budget` (over the time budget, forwarded), `budget_closed` (refused),
/// `internal_open`, `internal_closed`.
pub static FALLBACKS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_fallbacks_total", "Checks that fell back", &["reason"]));
pub static OVERRIDES: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_overrides_total", "3103 doctor answers by way", &["dspo_way"]));
/// Settlement turns (one settlement of a person at a time): `taken`, `busy` (another settlement
/// of the person held it past the wait; answered 「请稍后重新结算」), `local_only` (PostgreSQL unreachable).
pub static SETTLE_TURNS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_settle_turns_total", "Settlement turns by outcome", &["outcome"]));
/// History writes: `applied`, `duplicate` (msgid seen before), `error`, `read_error`.
pub static HISTORY_WRITES: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_history_writes_total", "History writes by outcome", &["outcome"]));
/// Accepted exchanges waiting in the history outbox (the store failed when they were acknowledged).
pub static HISTORY_OUTBOX: Lazy<IntGauge> =
    Lazy::new(|| gauge("claimgate_history_outbox_pending", "Accepted exchanges waiting to be written to history"));
/// History snapshot lookups: `warm` (cache) or `cold` (store).
pub static HISTORY_LOOKUPS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_history_lookups_total", "History lookups by cache outcome", &["cache"]));
/// What a history write did to the patient's cached snapshot: extended in place, or dropped (the
/// next check reads the store).
pub static HISTORY_SNAPSHOTS: Lazy<IntCounterVec> = Lazy::new(|| {
    counter("claimgate_history_snapshot_updates_total", "Cached snapshots after a write, by outcome", &["outcome"])
});
/// Transactions per commit of the embedded store's group commit (`history`, `journal`): how much
/// concurrent learning shares each commit's WAL write.
pub static STORE_COMMIT_TRANSACTIONS: Lazy<HistogramVec> = Lazy::new(|| {
    histogram(
        "claimgate_store_commit_transactions",
        "Transactions per commit of the embedded store, by database",
        &["db"],
        vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 32.0, 64.0],
    )
});
pub static HISTORY_SECONDS: Lazy<HistogramVec> =
    Lazy::new(|| histogram("claimgate_history_seconds", "History store time by operation", &["op"], LAT.to_vec()));
/// Journal writes that had to wait for room in the queue (back-pressure, never a drop).
pub static JOURNAL_BACKPRESSURE: Lazy<IntCounter> =
    Lazy::new(|| total("claimgate_journal_backpressure_total", "Journal writes that waited for queue room"));
/// Journal failures (a batch that could not be written is retried, not dropped).
pub static JOURNAL_ERRORS: Lazy<IntCounter> =
    Lazy::new(|| total("claimgate_journal_errors_total", "Journal write failures"));
/// Journal decisions removed by retention (`journal_retention_days`).
pub static JOURNAL_PRUNED: Lazy<IntCounter> =
    Lazy::new(|| total("claimgate_journal_pruned_total", "Journal decisions removed by retention"));
/// Journal records (decisions, 3103 answers) kept in the local spill file because the shared store
/// was down or too slow; each is drained into the store later (never dropped).
pub static JOURNAL_SPILLED: Lazy<IntCounter> = Lazy::new(|| {
    total(
        "claimgate_journal_spilled_total",
        "Journal records kept in the local spill file while the shared store was down or slow",
    )
});
/// Journal records waiting in the spill file for the shared store.
pub static JOURNAL_SPILL_PENDING: Lazy<IntGauge> =
    Lazy::new(|| gauge("claimgate_journal_spill_pending", "Journal records waiting in the spill file"));
/// 1 while a rule set is active (`/readyz` answers 200), read when `/metrics` is scraped: the
/// "not ready" alert needs no Kubernetes exporter.
pub static READY: Lazy<IntGauge> =
    Lazy::new(|| gauge("claimgate_ready", "1 when a rule set is active and /readyz answers 200"));
pub static RULESET_RULES: Lazy<IntGauge> =
    Lazy::new(|| gauge("claimgate_ruleset_rules", "Rules in the active rule set"));

/// Bundles older than the running one pushed on purpose (`?force=true`).
pub static RULESET_FORCED_OLDER: Lazy<IntCounter> = Lazy::new(|| {
    total("claimgate_ruleset_forced_older_total", "Bundles created before the running one, pushed with force=true")
});
/// Rule-set activations by origin (`push`, `pull`, `last-known-good`, `local`, `rollback`).
pub static RULESET_ACTIVATIONS: Lazy<IntCounterVec> =
    Lazy::new(|| counter("claimgate_ruleset_activations_total", "Rule-set activations by origin", &["origin"]));
/// Refused updates by origin and stage (`fetch`, `verify`, `compile`, `selftest`, `persist`, `rollback`).
pub static RULESET_FAILURES: Lazy<IntCounterVec> = Lazy::new(|| {
    counter(
        "claimgate_ruleset_update_failures_total",
        "Refused rule-set updates by origin and stage",
        &["origin", "stage"],
    )
});
/// 1 while the most recent update attempt failed.
pub static RULESET_UPDATE_FAILED: Lazy<IntGauge> =
    Lazy::new(|| gauge("claimgate_ruleset_last_update_failed", "1 when the most recent rule-set update failed"));

/// Bounded label for a transaction code.
pub fn infno_label(code: &str) -> &'static str {
    match code {
        "1101" => "1101",
        "2201" => "2201",
        "2203" => "2203",
        "2204" => "2204",
        "2205" => "2205",
        "2206" => "2206",
        "2207" => "2207",
        "2208" => "2208",
        "2301" => "2301",
        "2302" => "2302",
        "2303" => "2303",
        "2304" => "2304",
        "2305" => "2305",
        "2401" => "2401",
        "2402" => "2402",
        "3101" => "3101",
        "3102" => "3102",
        "3103" => "3103",
        "3505" => "3505",
        "9001" => "9001",
        _ => "other",
    }
}

/// The label values each counter can take, created at 0 by [`touch`] so that a rate or an alert
/// over them works before the first event (an absent series is not a zero in PromQL).
pub const FALLBACK_REASONS: &[&str] = &["budget", "budget_closed", "internal_open", "internal_closed"];
pub const UPSTREAM_ERROR_KINDS: &[&str] = &["connect", "timeout", "io", "garbage", "too_large"];
pub const REFUSED_REASONS: &[&str] = &[
    "no_key",
    "bad_key",
    "rate",
    "jwt",
    "body_timeout",
    "client_connections",
    "framing",
    "head_too_large",
    "head_timeout",
];
/// `applied` (a recorded 3103 answer let a claim through), `1` (continue) and `2` (modify).
pub const OVERRIDE_WAYS: &[&str] = &["applied", "1", "2"];
pub const HISTORY_WRITE_OUTCOMES: &[&str] = &["applied", "duplicate", "error", "read_error", "spilled"];
pub const HISTORY_CACHE: &[&str] = &["warm", "cold"];
pub const SNAPSHOT_OUTCOMES: &[&str] = &["extended", "dropped"];
pub const RULESET_ORIGINS: &[&str] = &["push", "pull", "last-known-good", "local", "rollback", "shadow", "promote"];
pub const RULESET_STAGES: &[&str] = &["fetch", "verify", "compile", "selftest", "persist", "rollback", "shadow"];
pub const DECISIONS: &[&str] = &["pass", "remind", "block", "unchecked", "relay", "error"];
/// The claim transactions whose requests are counted by decision from the start.
const CLAIM_INFNOS: &[&str] = &["2204", "2206", "2207", "2301", "2303", "2304", "3101", "3102", "3103"];

/// `claimgate_build_info{version, profile}` = 1: which build answers, for dashboards and alerts.
pub static BUILD_INFO: Lazy<prometheus::IntGaugeVec> = Lazy::new(|| {
    registered(prometheus::IntGaugeVec::new(
        Opts::new("claimgate_build_info", "The running build: version and profile, always 1"),
        &["version", "profile"],
    ))
});

/// CPU, memory, open files and start time of this process (`process_*`, Linux only).
static PROCESS: Lazy<()> = Lazy::new(|| {
    #[cfg(target_os = "linux")]
    {
        let c = prometheus::process_collector::ProcessCollector::for_self();
        REGISTRY.register(Box::new(c)).expect("process collector registered once");
    }
});

/// Forces every metric into existence so `/metrics` lists them from the start, every counter's
/// known label values at 0.
pub fn touch() {
    Lazy::force(&PROCESS);
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    BUILD_INFO.with_label_values(&[env!("CARGO_PKG_VERSION"), profile]).set(1);
    let zero = |c: &IntCounterVec, values: &[&str]| {
        for v in values {
            c.with_label_values(&[v]);
        }
    };
    zero(&FALLBACKS, FALLBACK_REASONS);
    zero(&UPSTREAM_ERRORS, UPSTREAM_ERROR_KINDS);
    zero(&REFUSED, REFUSED_REASONS);
    zero(&OVERRIDES, OVERRIDE_WAYS);
    zero(&HISTORY_WRITES, HISTORY_WRITE_OUTCOMES);
    zero(&HISTORY_LOOKUPS, HISTORY_CACHE);
    zero(&HISTORY_SNAPSHOTS, SNAPSHOT_OUTCOMES);
    zero(&RULESET_ACTIVATIONS, RULESET_ORIGINS);
    for o in RULESET_ORIGINS {
        for s in RULESET_STAGES {
            RULESET_FAILURES.with_label_values(&[o, s]);
        }
    }
    for i in CLAIM_INFNOS.iter().chain(["other"].iter()) {
        INVALID.with_label_values(&[i]);
        for d in DECISIONS {
            REQUESTS.with_label_values(&[i, d]);
        }
    }
    // The latency histograms of the claim transactions, empty, so dashboards and `histogram_quantile`
    // find their series from the start.
    for i in CLAIM_INFNOS {
        CHECK_SECONDS.with_label_values(&[i]);
        REQUEST_SECONDS.with_label_values(&[i]);
        UPSTREAM_SECONDS.with_label_values(&[i]);
    }
    for op in ["read", "write"] {
        HISTORY_SECONDS.with_label_values(&[op]);
    }
    for db in ["history", "journal"] {
        STORE_COMMIT_TRANSACTIONS.with_label_values(&[db]);
    }
    Lazy::force(&HISTORY_OUTBOX);
    Lazy::force(&READY);
    Lazy::force(&REQUESTS);
    Lazy::force(&INVALID);
    Lazy::force(&RULESET_FORCED_OLDER);
    Lazy::force(&CHECK_SECONDS);
    Lazy::force(&REQUEST_SECONDS);
    Lazy::force(&RULE_HITS);
    Lazy::force(&UPSTREAM_ERRORS);
    Lazy::force(&UPSTREAM_SECONDS);
    Lazy::force(&FALLBACKS);
    Lazy::force(&REFUSED);
    Lazy::force(&OVERRIDES);
    for o in ["taken", "busy", "local_only"] {
        SETTLE_TURNS.with_label_values(&[o]);
    }
    Lazy::force(&RULESET_RULES);
    Lazy::force(&RULESET_ACTIVATIONS);
    Lazy::force(&RULESET_FAILURES);
    Lazy::force(&RULESET_UPDATE_FAILED);
    Lazy::force(&JOURNAL_BACKPRESSURE);
    Lazy::force(&JOURNAL_ERRORS);
    Lazy::force(&JOURNAL_PRUNED);
    Lazy::force(&JOURNAL_SPILLED);
    Lazy::force(&JOURNAL_SPILL_PENDING);
}

/// Creates `rule`'s hit counter at 0 (called for every rule of a rule set when it is activated).
pub fn touch_rule(rule: &str, action: &str) {
    RULE_HITS.with_label_values(&[rule, action]);
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
