//! The peer (design.md performance budget): the same stateless rules in zen-engine, in the same run.
//!
//! The per-line rules of a pack (kinds `gender`, `age`, `price_cap`) are translated by this bench, from
//! the pack's own YAML and CSV, into one JDM decision table (hit policy `collect`, execution mode `loop`
//! over the claim's lines); claimgate evaluates a pack holding exactly the translated rules. Before any
//! timing the bench checks, on a few hundred generated claims, that both engines flag the same
//! `(rule, line)` pairs and that every translated kind fires, so the ratio compares the same work.
//! How the translation goes, and what it leaves out: BENCHMARKS.md ("The peer").
//!
//! Run: `cargo bench --bench peer`.

use claimgate::claim::time::Age;
use claimgate::claim::{Claim, Gender, NoFacts};
use claimgate::pipeline::{prepare, Prepared};
use claimgate::rules::source::RuleSource;
use claimgate::rules::{self, CompiledRuleSet, PackSource};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use zen_engine::model::DecisionContent;
use zen_engine::{DecisionEngine, Variable};

/// The kinds a decision table expresses row by row: one line, the patient, constants.
const KINDS: &[&str] = &["gender", "age", "price_cap"];

/// A pack translated for zen-engine, and the same rules as a claimgate pack.
struct Peer {
    graph: Value,
    rows: usize,
    claimgate: CompiledRuleSet,
    /// Rules of the pack left out, with the reason.
    skipped: Vec<(String, &'static str)>,
}

fn ymd(s: &str) -> i64 {
    s.trim().replace('-', "").parse().expect("a yyyy-MM-dd date")
}

/// A string literal in zen's expression language.
fn lit(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn classes(list: &[String]) -> Vec<&'static str> {
    let mut v = Vec::new();
    for c in list {
        match c.trim() {
            "western_drug" => v.push("western_drug"),
            "patent_drug" => v.push("patent_drug"),
            "herbal" => v.push("herbal"),
            "drug" => v.extend(["western_drug", "patent_drug", "herbal"]),
            "service" => v.push("service"),
            "material" => v.push("material"),
            o => panic!("unknown item class {o}"),
        }
    }
    v
}

fn class_name(c: claimgate::claim::ItemClass) -> &'static str {
    use claimgate::claim::ItemClass as C;
    match c {
        C::WesternDrug => "western_drug",
        C::PatentDrug => "patent_drug",
        C::Herbal => "herbal",
        C::Service => "service",
        C::Material => "material",
        C::Other => "other",
    }
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `gender`: the line is flagged when the patient's known gender is not the allowed one.
fn gender_cond(p: &str) -> String {
    let g = match p.trim() {
        "1" | "男" | "男性" | "M" | "male" => 1,
        "2" | "女" | "女性" | "F" | "female" => 2,
        o => panic!("not a gender: {o}"),
    };
    format!("gender != null and gender != {g}")
}

/// An age bound `28d`, `6m`, `18y` (bare number: years) as `(input field, number)`.
fn bound(s: &str) -> (&'static str, i64) {
    let s = s.trim();
    let (n, f) = if let Some(n) = s.strip_suffix('d').or_else(|| s.strip_suffix("天")) {
        (n, "age_days")
    } else if let Some(n) = s.strip_suffix('m').or_else(|| s.strip_suffix("月")) {
        (n, "age_months")
    } else if let Some(n) = s.strip_suffix('y').or_else(|| s.strip_suffix("岁")) {
        (n, "age_years")
    } else {
        (s, "age_years")
    };
    (f, n.trim().parse().expect("an age bound"))
}

/// `age`: allowed is `min ≤ age < max`; the line is flagged outside it (age known).
fn age_cond(min: Option<&str>, max: Option<&str>) -> String {
    let mut out = Vec::new();
    if let Some(m) = min.filter(|m| !m.trim().is_empty()) {
        let (f, n) = bound(m);
        out.push(format!("{f} < {n}"));
    }
    if let Some(m) = max.filter(|m| !m.trim().is_empty()) {
        let (f, n) = bound(m);
        out.push(format!("{f} >= {n}"));
    }
    assert!(!out.is_empty(), "an age range needs min or max");
    format!("age_days != null and ({})", out.join(" or "))
}

/// `price_cap`: the line's unit price (in millionths of a yuan, exact) above the cap.
fn price_cond(p: &str) -> String {
    let micro = claimgate::wire::num::parse_fixed(p.trim(), 6).expect("a price");
    format!("price_micro > {micro}")
}

/// The kind's condition for a table row's `param` (empty: the rule's `params`).
fn condition(r: &RuleSource, row_param: &str) -> String {
    let get = |k: &str| r.params.get(k).map(param_text);
    match r.kind.as_str() {
        "gender" => gender_cond(
            if row_param.is_empty() { get("gender").expect("params.gender") } else { row_param.into() }.as_str(),
        ),
        "age" => {
            if row_param.is_empty() {
                age_cond(get("min").as_deref(), get("max").as_deref())
            } else {
                let (a, b) = row_param.split_once('-').expect("an age range a-b");
                age_cond(Some(a), Some(b))
            }
        }
        "price_cap" => price_cond(
            if row_param.is_empty() { get("max_price").expect("params.max_price") } else { row_param.into() }.as_str(),
        ),
        k => unreachable!("kind {k} is not translated"),
    }
}

fn code_cell(code: &str) -> String {
    let c = code.trim();
    match c.strip_suffix('%').or_else(|| c.strip_suffix('*')) {
        Some(p) => format!("startsWith($, {})", lit(p)),
        None => lit(c),
    }
}

fn translate(pack: &PackSource) -> Peer {
    let mut rows: Vec<Value> = Vec::new();
    let mut kept = BTreeSet::new();
    let mut skipped = Vec::new();
    for (_, _, rf) in &pack.rule_files {
        for r in &rf.rules {
            let s = &r.select;
            let why = if !KINDS.contains(&r.kind.as_str()) {
                Some("kind not translated: reads several lines, encounter facts or history")
            } else if !s.name_patterns.is_empty() || !s.code_patterns.is_empty() || !s.his_codes.is_empty() {
                Some("matches item names / regexes / HIS codes (not translated)")
            } else if !s.categories.is_empty()
                || serde_json::to_value(&r.when).ok()
                    != serde_json::to_value(claimgate::rules::source::When::default()).ok()
            {
                Some("claim-level `when` or categories (not translated)")
            } else {
                None
            };
            if let Some(why) = why {
                skipped.push((r.id.clone(), why));
                continue;
            }
            kept.insert(r.id.clone());
            let class = {
                let c = classes(&s.item_classes);
                if c.is_empty() {
                    String::new()
                } else {
                    format!("[{}]", c.iter().map(|c| lit(c)).collect::<Vec<_>>().join(", "))
                }
            };
            let from = r.effective_from.as_deref().map(|d| format!(">= {}", ymd(d))).unwrap_or_default();
            let until = r.effective_until.as_deref().map(|d| format!("<= {}", ymd(d))).unwrap_or_default();
            let date = match (from.is_empty(), until.is_empty()) {
                (true, true) => String::new(),
                (false, true) => from,
                (true, false) => until,
                (false, false) => format!("{from} and {until}"),
            };
            let mut push = |code: &str, param: &str| {
                rows.push(json!({
                    "_id": format!("r{}", rows.len()),
                    "code": code_cell(code),
                    "class": if class.is_empty() { String::new() } else { format!("$ in {class}") },
                    "date": date,
                    "refund": "false",
                    "cond": condition(r, param),
                    "rule": lit(&r.id),
                    "line": "id",
                }));
            };
            for c in &s.codes {
                push(c, "");
            }
            for p in &s.code_prefixes {
                push(&format!("{}%", p.trim()), "");
            }
            if let Some(t) = &s.table {
                let text = pack.table_texts.get(t).expect("the rule's table is in the pack");
                let mut rdr =
                    csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
                for rec in rdr.deserialize::<claimgate::rules::source::TableRow>() {
                    let row = rec.expect("a table row");
                    push(&row.code, row.param.trim());
                }
            }
        }
    }
    let n = rows.len();
    let table = json!({
        "id": "dt", "name": "per-line rules", "type": "decisionTableNode",
        "content": {
            "hitPolicy": "collect",
            "inputField": "lines",
            "outputPath": "hits",
            "executionMode": "loop",
            "passThrough": false,
            "inputs": [
                {"id": "code", "name": "code", "field": "code"},
                {"id": "class", "name": "class", "field": "class"},
                {"id": "date", "name": "service date", "field": "date"},
                {"id": "refund", "name": "refund", "field": "refund"},
                {"id": "cond", "name": "condition"}
            ],
            "outputs": [
                {"id": "rule", "name": "rule", "field": "rule"},
                {"id": "line", "name": "line", "field": "line"}
            ],
            "rules": rows
        }
    });
    let graph = json!({
        "nodes": [
            {"id": "in", "name": "claim", "type": "inputNode", "content": {}},
            table,
            {"id": "out", "name": "hits", "type": "outputNode", "content": {}}
        ],
        "edges": [
            {"id": "e1", "sourceId": "in", "targetId": "dt"},
            {"id": "e2", "sourceId": "dt", "targetId": "out"}
        ]
    });
    let mut same = pack.clone();
    same.test_files.clear();
    for (_, _, rf) in &mut same.rule_files {
        rf.rules.retain(|r| kept.contains(&r.id));
    }
    same.rule_files.retain(|(_, _, rf)| !rf.rules.is_empty());
    let claimgate = rules::compile(&[same]).expect("the translated rules compile in claimgate");
    Peer { graph, rows: n, claimgate, skipped }
}

/// The claim as zen-engine's input: one object per line with the patient's facts beside it (a loop
/// item sees only itself). Built outside the timed loop.
fn zen_input(c: &Claim) -> Variable {
    let lines: Vec<Value> = c
        .lines
        .iter()
        .map(|l| {
            let age = c.patient.birth.and_then(|b| Age::between(b, l.date()));
            json!({
                "id": l.id,
                "code": l.code,
                "class": class_name(l.class),
                "date": l.date().format("%Y%m%d").to_string().parse::<i64>().expect("date"),
                "refund": l.is_refund(),
                "price_micro": l.price.micro(),
                "gender": c.patient.gender.map(|g| match g { Gender::Male => 1, Gender::Female => 2 }),
                "age_days": age.map(|a| a.days),
                "age_months": age.map(|a| a.months),
                "age_years": age.map(|a| a.years),
            })
        })
        .collect();
    Variable::from(json!({ "lines": lines }))
}

fn zen_hits(v: &Variable) -> BTreeSet<(String, String)> {
    let v: Value = v.to_value();
    let mut out = BTreeSet::new();
    for per_line in v["hits"].as_array().expect("hits per line") {
        for h in per_line.as_array().expect("collected rows") {
            out.insert((h["rule"].as_str().expect("rule").to_owned(), h["line"].as_str().expect("line").to_owned()));
        }
    }
    out
}

fn claimgate_hits(rs: &CompiledRuleSet, c: &Claim) -> BTreeSet<(String, String)> {
    let d = rules::evaluate(rs, c);
    assert!(d.unchecked.is_empty(), "every fact is known to both engines");
    d.hits.iter().flat_map(|h| h.lines.iter().map(move |l| (h.rule_id.to_string(), l.to_string()))).collect()
}

/// A generated claim with the patient's facts set, and every third line's unit price tripled so
/// that price caps fire (both engines see the same claim).
fn claim(seed: u64, n: usize, inpatient: bool, gender: Gender, birth: (i32, u32, u32)) -> Claim {
    let bytes = serde_json::to_vec(&claimgate::gen::fee_upload(seed, n, inpatient)).expect("json");
    let head = claimgate::wire::parse_head(&bytes).expect("head");
    let mut c = match prepare(&head, &NoFacts).expect("claim") {
        Prepared::Claims { mut claims, .. } => claims.remove(0),
        _ => unreachable!("fee uploads are claims"),
    };
    c.patient.gender = Some(gender);
    c.patient.birth = chrono::NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2);
    for (i, l) in c.lines.iter_mut().enumerate() {
        if i % 3 == 0 {
            l.price = claimgate::claim::Price::from_micro(l.price.micro() * 3);
            l.amount = l.price.times(l.qty);
        }
    }
    c
}

fn engine(graph: &Value) -> zen_engine::Decision {
    let content: DecisionContent = serde_json::from_value(graph.clone()).expect("JDM graph");
    let mut d = DecisionEngine::default().create_decision(Arc::new(content)).expect("a graph");
    d.compile();
    d
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let full = std::env::args().any(|a| a == "--bench");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (mut packs, _) = rules::load(&[root.join("rulesets/national-baseline")]).expect("baseline pack");
    let baseline = packs.remove(0);
    let synthetic = claimgate::gen::synthetic_pack(200, 20_000);

    // Patients: a man of 40, a boy of 10, a woman of 30, a newborn girl (5 days old on 2025-06-10).
    let patients = [
        (Gender::Male, (1985, 3, 1)),
        (Gender::Male, (2015, 1, 20)),
        (Gender::Female, (1995, 7, 9)),
        (Gender::Female, (2025, 6, 5)),
    ];
    for (name, pack) in [("baseline", &baseline), ("synthetic", &synthetic)] {
        let peer = translate(pack);
        let zen = engine(&peer.graph);
        // Check: the same (rule, line) pairs on 200 varied claims and one 1,000-line stay.
        let mut fired = BTreeSet::new();
        let mut pairs = 0usize;
        // zen-engine scans the synthetic pack's ~5,000 prefix rows one by one for every line (a
        // `startsWith` cell cannot use its table index): tens of milliseconds a line, so that pack is
        // checked on fewer, smaller claims, and under `cargo test` (debug, one pass) on three.
        let big = name == "baseline";
        let n = if big {
            200
        } else if full {
            20
        } else {
            3
        };
        let mut checked: Vec<Claim> = (0..n)
            .map(|s| {
                let lines = if big { 1 + (s as usize % 40) } else { 1 + (s as usize % 20) };
                claim(s, lines, s % 2 == 0, patients[s as usize % 4].0, patients[s as usize % 4].1)
            })
            .collect();
        if big {
            checked.push(claim(8, 1000, true, Gender::Male, (2015, 1, 20)));
        }
        for cl in &checked {
            let ours = claimgate_hits(&peer.claimgate, cl);
            let theirs = zen_hits(&rt.block_on(zen.evaluate(zen_input(cl))).expect("zen evaluates").result);
            assert_eq!(ours, theirs, "{name}: claimgate and zen-engine flag different lines");
            pairs += ours.len();
            fired.extend(ours.into_iter().map(|(r, _)| r));
        }
        let kinds_fired: BTreeSet<&str> =
            peer.claimgate.rules.iter().filter(|r| fired.contains(&*r.id)).map(|r| r.kind).collect();
        assert_eq!(
            kinds_fired.len(),
            KINDS.len(),
            "{name}: every translated kind fires in the check ({kinds_fired:?})"
        );
        eprintln!(
            "peer {name}: {} rules translated into {} table rows, {} skipped; check: {} claims, {pairs} (rule, line) hits identical, {} rules fired",
            peer.claimgate.rules.len(),
            peer.rows,
            peer.skipped.len(),
            checked.len(),
            fired.len()
        );
        let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
        for (id, why) in &peer.skipped {
            reasons.entry(why).or_default().push(id);
        }
        for (why, ids) in reasons {
            eprintln!("  skipped {} ({why}): {}", ids.len(), ids.join(" "));
        }

        let small = claim(7, 20, false, Gender::Male, (2015, 1, 20));
        let large = claim(8, 1000, true, Gender::Male, (2015, 1, 20));
        let (zs, zl) = (zen_input(&small), zen_input(&large));
        eprintln!(
            "peer {name}: hits 20-line {}, 1000-line {}",
            claimgate_hits(&peer.claimgate, &small).len(),
            claimgate_hits(&peer.claimgate, &large).len()
        );
        let mut g = c.benchmark_group(format!("peer_{name}"));
        g.bench_function("claimgate_20_lines", |b| b.iter(|| rules::evaluate(&peer.claimgate, black_box(&small))));
        if !big {
            g.sample_size(10);
        }
        g.bench_function("zen_20_lines", |b| b.iter(|| rt.block_on(zen.evaluate(black_box(zs.clone()))).expect("zen")));
        g.bench_function("claimgate_1000_lines", |b| b.iter(|| rules::evaluate(&peer.claimgate, black_box(&large))));
        g.sample_size(10);
        // About 30 s an evaluation for the synthetic pack (see above): only the baseline's.
        if big {
            g.bench_function("zen_1000_lines", |b| {
                b.iter(|| rt.block_on(zen.evaluate(black_box(zl.clone()))).expect("zen"))
            });
        }
        g.finish();
    }
}

criterion_group!(peer, benches);
criterion_main!(peer);
