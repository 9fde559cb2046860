//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the test that replays their
//! corpora and every crash ever found (`tests/api/fuzzed.rs`), so a crash stays fixed under plain
//! `cargo test`. Each takes untrusted bytes and must return without panicking; refusing is fine.
//!
//! Architecture Invariant: no I/O beyond reading the shipped national pack once per process.

use crate::rules::{Action, CompiledRuleSet, PackSource};
use once_cell::sync::Lazy;

static PACK: Lazy<Option<PackSource>> = Lazy::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rulesets/national-baseline");
    crate::rules::load_pack(&dir).ok()
});

static RULES: Lazy<Option<CompiledRuleSet>> =
    Lazy::new(|| PACK.as_ref().and_then(|p| crate::rules::compile(std::slice::from_ref(p)).ok()));

/// A request body as the proxy route sees it: `wire::parse_request` (checked against the two-step
/// `wire::parse_head`), `pipeline::prepare`, evaluation
/// against the national pack, and every rendering of the result (decision JSON, the cashier's
/// summaries, the national 3101 answer); then the same bytes read as a gateway answer.
pub fn envelope(body: &[u8]) {
    check_and_render(body);
    let _ = serde_json::from_slice::<crate::wire::ResponseEnvelope>(body);
}

fn check_and_render(body: &[u8]) {
    // The one-pass parse (the check path's) and the two-step parse (routing, learning) must agree
    // on whether a message reads as claims, and on the claims it reads as. (Where they refuse, they
    // may refuse for different reasons: the one pass meets the body's errors before the head's.)
    let read = |h: &crate::wire::RequestHead<'_>| {
        crate::pipeline::prepare(h, &crate::claim::NoFacts).ok().map(|p| format!("{p:?}"))
    };
    let two_step = crate::wire::parse_head(body).ok().and_then(|h| read(&h));
    let Ok(head) = crate::wire::parse_request(body) else {
        assert!(two_step.is_none(), "parse_request refused what parse_head reads");
        return;
    };
    let _ = crate::telemetry::metrics::infno_label(head.infno.as_str());
    let prepared = crate::pipeline::prepare(&head, &crate::claim::NoFacts);
    assert_eq!(two_step, prepared.as_ref().ok().map(|p| format!("{p:?}")), "the one-pass and two-step parses disagree");
    let Ok(p) = prepared else { return };
    let (Some(rs), crate::pipeline::Prepared::Claims { claims, task_id, .. }) = (RULES.as_ref(), p) else { return };
    let each = crate::pipeline::decide_each(rs, &claims);
    let results = crate::pipeline::analysis::results(&claims, &each, task_id.as_deref().unwrap_or(""));
    let d = crate::pipeline::decide(rs, &claims);
    let json = serde_json::to_vec(&d).unwrap_or_default();
    // The decision JSON always reads back: a renderer that writes invalid JSON is a crash.
    assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok(), "decision JSON does not parse");
    let _ = (d.header_value(), d.summary(None), d.summary(Some(Action::Block)), d.summary(Some(Action::Remind)));
    let _ = serde_json::to_vec(&serde_json::json!({ "result": results }));
}

/// The infnos [`transaction`] puts in front of its input.
const INFNOS: [&str; 10] = ["3101", "3102", "3103", "2204", "2301", "2206", "2207", "2303", "2304", "2401"];

/// A transaction body behind a valid envelope head: the first byte picks the infno (3101/3102/3103,
/// uploads, settlements, admission), the rest is spliced in as `input`, so a fuzzer spends its
/// time in the transaction parsers and normalisation rather than in the envelope.
pub fn transaction(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else { return };
    let infno = INFNOS[usize::from(pick) % INFNOS.len()];
    let mut body = format!(
        r#"{{"infno":"{infno}","msgid":"H41070100001202506100900000001","mdtrtarea_admvs":"410700","insuplc_admdvs":"410700","recer_sys_code":"HIS","infver":"V1.0","opter_type":"1","opter":"1","opter_name":"x","inf_time":"2025-06-10 09:00:00","fixmedins_code":"H41070100001","fixmedins_name":"x","sign_no":"1","input":"#
    )
    .into_bytes();
    body.extend_from_slice(input);
    body.push(b'}');
    check_and_render(&body);
}

/// The pack loader on one rule file's YAML text (and the same text as a manifest), compiled beside
/// the national pack's knowledge tables.
pub fn rule_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = serde_norway::from_str::<crate::rules::source::Manifest>(text);
    let Ok(parsed) = serde_norway::from_str::<crate::rules::source::RuleFile>(text) else { return };
    let Some(base) = PACK.as_ref() else { return };
    let mut pack = base.clone();
    pack.rule_files = vec![("rules/fuzz.yaml".to_owned(), text.to_owned(), parsed)];
    pack.test_files.clear();
    if let Ok(rs) = crate::rules::compile(std::slice::from_ref(&pack)) {
        let _ = rs.revision();
    }
}

/// The bundle verifier on untrusted bytes (a push or a pulled file): gunzip, tar, limits,
/// manifest, signature (no key is trusted, so nothing gets past the signature check).
pub fn bundle(data: &[u8]) {
    let limits = crate::reload::Limits {
        max_bundle_bytes: 1 << 20,
        max_unpacked_bytes: 4 << 20,
        max_file_bytes: 1 << 20,
        max_entries: 64,
    };
    let Some(today) = chrono::NaiveDate::from_ymd_opt(2026, 1, 1) else { return };
    let _ = crate::reload::verify(data, &[], &limits, today);
}
