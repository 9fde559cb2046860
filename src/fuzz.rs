//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the test that replays their
//! corpora and every crash ever found (`tests/api/fuzzed.rs`), so a crash stays fixed under plain
//! `cargo test`. Each takes untrusted bytes and must return without panicking; refusing is fine.
//!
//! Architecture Invariant: no I/O beyond reading the shipped national pack once per process.

use crate::rules::{Action, CompiledRuleSet, PackSource};
use once_cell::sync::Lazy;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

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

/// An empty in-memory history and no overrides, for [`request`]'s check.
static HISTORY: Lazy<crate::history::History> = Lazy::new(|| crate::history::History::ephemeral(Some(2)));
static OVERRIDES: Lazy<crate::pipeline::overrides::Overrides> =
    Lazy::new(crate::pipeline::overrides::Overrides::default);

/// The whole request path of the intercepted route, head and body to what may leave for the
/// gateway: the first byte picks the route (`…/callService`, or `…/callService/{infno}` for one
/// of the claim infnos), the rest is the body. The route reads it (`wire::parse_request_for`),
/// checks the envelope (`exchange::check_envelope`), and either judges it (`exchange::check`;
/// a judged claim leaves on `Checked::Done`) or, on the paths that forward without a judgement
/// (a pre-settlement before its check, a check over budget, no rule set), validates it
/// (`pipeline::validate_request`). The property: whatever may leave passes [`leaves_valid`], an
/// oracle written apart from the wire types, over the raw JSON text of the national fields.
pub fn request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let path_infno = match usize::from(pick) % (INFNOS.len() + 2) {
        i if i < INFNOS.len() => Some(INFNOS[i]),
        _ => None,
    };
    let Ok(head) = crate::wire::parse_request_for(body, path_infno) else { return };
    let infno = head.infno.as_str().to_owned();
    if !crate::wire::Infno::parse(&infno).is_checked()
        || crate::pipeline::exchange::check_envelope(&head, body).is_err()
    {
        // Relayed untouched (not a claim), or answered locally (an envelope the claim lacks).
        return;
    }
    if crate::pipeline::validate_request(body, &infno).is_ok() {
        assert!(leaves_valid(body, &infno), "validated for an unjudged forward, but invalid: {}", show(body));
    }
    let Some(rs) = RULES.as_ref() else { return };
    let checked = crate::pipeline::exchange::check(&head, rs, &HISTORY, &OVERRIDES, None, |_, _| {});
    if matches!(checked, crate::pipeline::exchange::Checked::Done { .. }) {
        assert!(leaves_valid(body, &infno), "judged and forwardable, but invalid: {}", show(body));
    }
}

fn show(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned()
}

type Fields = BTreeMap<String, Box<RawValue>>;

/// The oracle: a claim body the gateway may receive has `msgid` as a non-empty string, `input` as
/// an object (or a string declared by `enc_type`), and every amount, quantity and price the
/// national interface defines for the transaction as plain decimal text of its `N16,S` type.
fn leaves_valid(body: &[u8], infno: &str) -> bool {
    let Ok(top) = serde_json::from_slice::<Fields>(body) else { return false };
    let text = |v: &RawValue| serde_json::from_str::<String>(v.get()).ok();
    if top.get("msgid").and_then(|m| text(m)).is_none_or(|m| m.trim().is_empty()) {
        return false;
    }
    let Some(input) = top.get("input") else { return false };
    if input.get().starts_with('"') {
        return top.get("enc_type").and_then(|e| text(e)).is_some_and(|e| !e.trim().is_empty());
    }
    let Ok(input) = serde_json::from_str::<Fields>(input.get()) else { return false };
    match infno.get(..4).unwrap_or(infno) {
        "2204" | "2301" => {
            let Some(lines) = input.get("feedetail") else { return true };
            let Ok(lines) = serde_json::from_str::<Option<Vec<Fields>>>(lines.get()) else { return false };
            lines.unwrap_or_default().iter().all(|l| {
                decimal_ok(l.get("det_item_fee_sumamt").map(|b| &**b), 2, true)
                    && decimal_ok(l.get("cnt").map(|b| &**b), 4, true)
                    && decimal_ok(l.get("pric").map(|b| &**b), 6, false)
                    && decimal_ok(l.get("prd_days").map(|b| &**b), 4, false)
            })
        }
        "2206" | "2207" | "2303" | "2304" => {
            let Some(data) = input.get("data") else { return true };
            let Ok(data) = serde_json::from_str::<Fields>(data.get()) else { return false };
            ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]
                .iter()
                .all(|f| decimal_ok(data.get(*f).map(|b| &**b), 2, false))
        }
        _ => true,
    }
}

/// A national `N16,scale` value: absent, null or "", else a JSON number or string of digits with an
/// optional `-` (when `signed`), at most `16 - scale` significant integer digits and no non-zero
/// digit past `scale` decimals; no exponent, no `+`, nothing else.
fn decimal_ok(v: Option<&RawValue>, scale: usize, signed: bool) -> bool {
    let Some(v) = v else { return true };
    let raw = v.get();
    let t = if raw.starts_with('"') {
        match serde_json::from_str::<String>(raw) {
            Ok(s) => s,
            Err(_) => return false,
        }
    } else if raw == "null" {
        return true;
    } else {
        raw.to_owned()
    };
    let t = t.trim();
    if t.is_empty() {
        return raw.starts_with('"');
    }
    let unsigned = match t.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return false,
        None => t,
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (unsigned.contains('.') && frac.is_empty()) {
        return false;
    }
    int.trim_start_matches('0').len() <= 16 - scale && frac.chars().skip(scale).all(|c| c == '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_reads_the_national_types() {
        let v = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(decimal_ok(Some(&v("12.50")), 2, false));
        assert!(decimal_ok(Some(&v("\"12.500\"")), 2, false));
        assert!(decimal_ok(Some(&v("null")), 2, false));
        for bad in ["1e2", "\"abc\"", "true", "[]", "-1", "20.001", "\"1.\"", "100000000000000"] {
            assert!(!decimal_ok(Some(&v(bad)), 2, false), "{bad}");
        }
        assert!(decimal_ok(Some(&v("-3")), 4, true));
    }

    #[test]
    fn the_request_target_holds_on_valid_and_invalid_settlements() {
        let env = |amount: &str| {
            format!(
                r#"{{"infno":"2206","msgid":"M1","inf_time":"2025-06-10 09:00:00","input":{{"data":{{"psn_no":"P1","mdtrt_id":"V1","medfee_sumamt":{amount}}}}}}}"#
            )
        };
        for amount in ["20.00", "\"20.00\"", "1e2", "-5", "true", "20.001"] {
            let mut data = vec![200u8];
            data.extend_from_slice(env(amount).as_bytes());
            request(&data);
            let valid = crate::pipeline::validate_request(&data[1..], "2206").is_ok();
            assert_eq!(valid, leaves_valid(&data[1..], "2206"), "{amount}");
        }
    }
}
