//! Parse and evaluate benches (design.md performance budget). Run: `cargo bench --bench eval`.

use claimgate::claim::{Claim, Facts, NoFacts};
use claimgate::history::History;
use claimgate::journal::{Journal, Message, Record};
use claimgate::pipeline::{prepare, prepare_with, Prepared};
use claimgate::rules::{self, CompiledRuleSet};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::path::PathBuf;

fn baseline() -> CompiledRuleSet {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    rules::load(&[root.join("rulesets/national-baseline")]).expect("baseline pack").1
}

fn parse(bytes: &[u8], facts: &dyn Facts) -> Claim {
    let head = claimgate::wire::parse_request(bytes).expect("head");
    match prepare(&head, facts).expect("claim") {
        Prepared::Claims { mut claims, .. } => claims.remove(0),
        _ => unreachable!("fee uploads are claims"),
    }
}

/// Parse, normalise with the history's facts, and attach the patient's history snapshot.
fn parse_with_history(bytes: &[u8], h: &History, lookback: Option<u32>) -> Claim {
    let head = claimgate::wire::parse_request(bytes).expect("head");
    match prepare_with(&head, h, lookback, None).expect("claim") {
        Prepared::Claims { mut claims, .. } => claims.remove(0),
        _ => unreachable!("fee uploads are claims"),
    }
}

fn benches(c: &mut Criterion) {
    let small = serde_json::to_vec(&claimgate::gen::fee_upload(7, 20, false)).unwrap();
    let large = serde_json::to_vec(&claimgate::gen::fee_upload(8, 1000, true)).unwrap();
    let base = baseline();
    let synth_src = claimgate::gen::synthetic_pack(200, 20_000);
    let synth = rules::compile(std::slice::from_ref(&synth_src)).expect("synthetic pack");
    eprintln!(
        "packs: baseline {} rules / {} kp; synthetic {} rules / {} kp; 2204×20 = {} bytes, 2301×1000 = {} bytes",
        base.rules.len(),
        base.knowledge_points,
        synth.rules.len(),
        synth.knowledge_points,
        small.len(),
        large.len()
    );
    let c20 = parse(&small, &NoFacts);
    let c1000 = parse(&large, &NoFacts);
    eprintln!(
        "hits: baseline 20-line {}, 1000-line {}; synthetic 20-line {}, 1000-line {}",
        rules::evaluate(&base, &c20).hits.len(),
        rules::evaluate(&base, &c1000).hits.len(),
        rules::evaluate(&synth, &c20).hits.len(),
        rules::evaluate(&synth, &c1000).hits.len()
    );

    let mut g = c.benchmark_group("parse");
    g.bench_function("2204_20_lines_bytes_to_claim", |b| b.iter(|| parse(black_box(&small), &NoFacts)));
    g.bench_function("2301_1000_lines_bytes_to_claim", |b| b.iter(|| parse(black_box(&large), &NoFacts)));
    g.bench_function("2301_1000_lines_bare_typed_serde", |b| {
        b.iter(|| {
            #[derive(serde::Deserialize)]
            struct Env {
                #[allow(dead_code)]
                input: claimgate::wire::tx::FeeUploadInput,
            }
            serde_json::from_slice::<Env>(black_box(&large)).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("evaluate");
    g.bench_function("baseline_20_lines", |b| b.iter(|| rules::evaluate(&base, black_box(&c20))));
    g.bench_function("baseline_1000_lines", |b| b.iter(|| rules::evaluate(&base, black_box(&c1000))));
    g.bench_function("synthetic_200r_20kp_20_lines", |b| b.iter(|| rules::evaluate(&synth, black_box(&c20))));
    g.bench_function("synthetic_200r_20kp_1000_lines", |b| b.iter(|| rules::evaluate(&synth, black_box(&c1000))));
    g.bench_function("synthetic_200r_20kp_1000_lines_naive", |b| {
        b.iter(|| rules::evaluate_naive(&synth, black_box(&c1000)))
    });
    g.finish();

    national(c, &small, &large);

    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("synthetic_200r_20kp", |b| {
        b.iter_batched(|| synth_src.clone(), |s| rules::compile(&[s]).unwrap(), BatchSize::LargeInput)
    });
    g.finish();

    // The history the 1,000-line stay's patient has: the claim itself, learnt as accepted.
    let ctx = History::ephemeral(Some(2));
    let head = claimgate::wire::parse_head(&large).expect("head");
    ctx.learn(&head, None, None).expect("learn");
    let lookback = base.lookback_days();
    let mut g = c.benchmark_group("end_to_end");
    g.bench_function("2301_1000_lines_parse_history_evaluate_baseline", |b| {
        b.iter(|| {
            let claim = parse_with_history(black_box(&large), &ctx, lookback);
            rules::evaluate(&base, &claim)
        })
    });
    g.bench_function("2301_1000_lines_parse_history_evaluate_synthetic", |b| {
        b.iter(|| {
            let claim = parse_with_history(black_box(&large), &ctx, lookback);
            rules::evaluate(&synth, &claim)
        })
    });
    // design.md's end to end: the same, plus the journal record handed to the journal's writer
    // (pseudonymised patient, every hit), as the proxy does before it forwards. The writer thread
    // batches the records into journal.sqlite beside the bench, as in production.
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = Journal::open(dir.path(), 4096).expect("journal");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let end_to_end = |rs: &CompiledRuleSet| {
        let claim = parse_with_history(black_box(&large), &ctx, lookback);
        let d = rules::evaluate(rs, &claim);
        let m = Message {
            infno: "2301",
            msgid: "H41070100001202506100900000001",
            fixmedins_code: "H41070100001",
            fixmedins_name: "新乡市某县人民医院",
            inf_time: "2025-06-10 09:00:00",
        };
        let r = Record::of_claims(m, std::slice::from_ref(&claim), Some(&d), "national-baseline", &journal.pseudo);
        rt.block_on(journal.record(r));
    };
    for (name, rs) in [("baseline", &base), ("synthetic", &synth)] {
        g.bench_function(format!("2301_1000_lines_parse_history_evaluate_journal_{name}"), |b| {
            b.iter(|| end_to_end(rs))
        });
    }
    g.finish();
    // design.md states the end-to-end budget as a p99; criterion reports means of batches, so the
    // tail is measured here one claim at a time.
    tail("end_to_end 2301×1000 parse→history→evaluate→journal, baseline", 2000, || end_to_end(&base));
    rt.block_on(journal.flush());
    eprintln!(
        "journal: {} decisions written by the end-to-end benches",
        journal.counters.written.load(std::sync::atomic::Ordering::Relaxed)
    );
    history_lookups(c, &small);
    learning(c);
}

/// The shipped default composition (`./rulesets`: the baseline examples under the national 两库
/// pack, ~30,000 codes): load + compile from disk, and evaluation of claims one line in three of
/// which carries a code of the national tables (the rest miss, as most lines do).
fn national(c: &mut Criterion, small: &[u8], large: &[u8]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rulesets");
    let dirs = claimgate::config::pack_dirs(std::slice::from_ref(&root));
    let (_, rs) = rules::load(&dirs).expect("shipped packs");
    let mut codes: Vec<String> = Vec::new();
    let tables = root.join("national-liangku/tables");
    for e in std::fs::read_dir(&tables).expect("tables").flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        codes.extend(text.lines().skip(1).step_by(97).filter_map(|l| l.split(',').next()).map(str::to_owned));
    }
    codes.sort();
    let with_national = |bytes: &[u8]| {
        let mut claim = parse(bytes, &NoFacts);
        for (i, l) in claim.lines.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
            l.code = codes[i % codes.len()].as_str().into();
            l.class = claimgate::claim::ItemClass::of_code(&l.code);
        }
        claim
    };
    let (c20, c1000) = (with_national(small), with_national(large));
    eprintln!(
        "national: {} rules / {} kp; hits 20-line {}, 1000-line {}",
        rs.rules.len(),
        rs.knowledge_points,
        rules::evaluate(&rs, &c20).hits.len(),
        rules::evaluate(&rs, &c1000).hits.len()
    );
    // The same 20 lines for a patient with 30 days of history: a visit a day, each day's upload
    // carrying the same items (600 earlier lines the per-day, per-visit and pair rules read).
    let mut with_history = c20.clone();
    let mut h = claimgate::claim::History::default();
    for day in 1..=30u64 {
        let mid: std::sync::Arc<str> = format!("V{day}").into();
        for l in &c20.lines {
            let mut past = l.clone();
            past.id = format!("{}-{day}", l.id).into();
            past.time = l.time - chrono::Days::new(day);
            h.lines.push(claimgate::claim::PastLine::of(mid.clone(), &past, true));
        }
    }
    with_history.history = Some(std::sync::Arc::new(h));
    eprintln!("national: 20 lines with 30 days of history: {} hits", rules::evaluate(&rs, &with_history).hits.len());
    let mut g = c.benchmark_group("national");
    g.bench_function("evaluate_20_lines", |b| b.iter(|| rules::evaluate(&rs, black_box(&c20))));
    g.bench_function("evaluate_20_lines_30_days_history", |b| {
        b.iter(|| rules::evaluate(&rs, black_box(&with_history)))
    });
    g.bench_function("evaluate_1000_lines", |b| b.iter(|| rules::evaluate(&rs, black_box(&c1000))));
    g.sample_size(10);
    g.bench_function("load_and_compile", |b| b.iter(|| rules::load(&dirs).expect("packs")));
    g.finish();
}

/// Runs `f` `n` times after `n / 10` warm-up runs and prints the p50, p99 and p99.9 of single runs.
/// Only under `cargo bench` (criterion's `--bench`): `cargo test --benches` runs each bench once.
fn tail(what: &str, n: usize, mut f: impl FnMut()) {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for _ in 0..n / 10 {
        f();
    }
    let mut t: Vec<std::time::Duration> = (0..n)
        .map(|_| {
            let s = std::time::Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort_unstable();
    let q = |p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)];
    eprintln!(
        "tail: {what}: {n} runs, p50 {:.2?}, p99 {:.2?}, p99.9 {:.2?}, max {:.2?}",
        q(0.5),
        q(0.99),
        q(0.999),
        t[n - 1]
    );
}

/// The per-claim cost of the history lookup, warm (cache) and cold (store), for SQLite and — when
/// `CLAIMGATE_TEST_PG` names a server — PostgreSQL. The patient has 30 earlier 20-line visits.
fn history_lookups(c: &mut Criterion, small: &[u8]) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stores: Vec<(&str, Arc<dyn claimgate::history::Store>)> = vec![(
        "sqlite",
        Arc::new(
            claimgate::store::sqlite::SqliteStore::open(
                &dir.path().join("h.sqlite"),
                false,
                4,
                claimgate::history::db::create_schema,
            )
            .expect("sqlite"),
        ),
    )];
    if let Ok(url) = std::env::var("CLAIMGATE_TEST_PG") {
        stores.push((
            "postgres",
            Arc::new(
                claimgate::store::postgres::PgStore::connect(&url, 4, claimgate::history::db::create_schema)
                    .expect("postgres"),
            ),
        ));
    }
    let mut g = c.benchmark_group("history_lookup");
    for (name, store) in stores {
        let h = History::new(store, Some(2), 10_000).expect("history");
        // 30 earlier visits of the same patient, each a 20-line upload.
        for i in 0..30u64 {
            let mut env = claimgate::gen::fee_upload(7, 20, false);
            let visit = format!("BENCHVISIT{i:04}");
            for l in env["input"]["feedetail"].as_array_mut().expect("lines") {
                l["mdtrt_id"] = visit.clone().into();
            }
            env["msgid"] = format!("BENCHMSG{i:04}{name}").into();
            let bytes = serde_json::to_vec(&env).expect("json");
            let head = claimgate::wire::parse_head(&bytes).expect("head");
            h.learn(&head, None, None).expect("learn");
        }
        let base = parse(small, &NoFacts);
        g.bench_function(format!("{name}_warm"), |b| {
            b.iter(|| {
                let mut c = base.clone();
                h.attach(&mut c, 90).expect("attach");
                c.history.map(|x| x.lines.len())
            })
        });
        g.bench_function(format!("{name}_cold"), |b| {
            b.iter(|| {
                let mut c = base.clone();
                h.forget_all();
                h.attach(&mut c, 90).expect("attach");
                c.history.map(|x| x.lines.len())
            })
        });
    }
    g.finish();
}

/// What history learns from an accepted 2304 naming 200 boxes: read from the request's bytes (as
/// an outbox replay does, and as the proxy did for every settlement before issue 18), and from the
/// claim the check built (the proxy now; the body is read once).
fn learning(c: &mut Criterion) {
    use claimgate::history::learn::events;
    use serde_json::json;
    let boxes: Vec<_> = (0..200)
        .map(|i| json!({"feedetl_sn": format!("L{i:04}"), "drug_trac_codg": format!("8100000000{i:010}")}))
        .collect();
    let data = json!({"psn_no": "41000011000000000012345678", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": "41070219570602002X", "medfee_sumamt": "5230.00", "psn_setlway": "01",
        "mdtrt_id": "410700ZY0001", "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0",
        "invono": "", "fulamt_ownpay_amt": "120.00", "overlmt_selfpay": "0.00", "preselfpay_amt": "310.00",
        "inscp_scp_amt": "4800.00", "drug_trac_info": boxes});
    let env = json!({"infno": "2304", "msgid": "H41070100001202506100900000002", "inf_time": "2025-06-10 09:00:00",
        "fixmedins_code": "H41070100001", "input": {"data": data}});
    let bytes = serde_json::to_vec(&env).expect("json");
    let resp: claimgate::wire::ResponseEnvelope = serde_json::from_value(json!({"infcode": 0, "output": {"setlinfo": {
        "mdtrt_id": "410700ZY0001", "setl_id": "410700S0001", "insutype": "310", "med_type": "21",
        "medfee_sumamt": "5230.00", "hifp_pay": "3600.00", "fund_pay_sumamt": "3800.00",
        "setl_time": "2025-06-10 09:00:01"}}}))
    .expect("answer");
    let key = |p: &str| p.to_owned();
    let head = claimgate::wire::parse_request(&bytes).expect("head");
    let claims = match prepare(&head, &NoFacts).expect("claim") {
        Prepared::Claims { claims, .. } => claims,
        _ => unreachable!("a settlement is a claim"),
    };
    let detached = head.detached();
    // Both read the same: the boxes and the settlement.
    let (a, b) = (events(&head, Some(&resp), None, &key), events(&detached, Some(&resp), Some(claims.clone()), &key));
    assert_eq!((a.len(), format!("{a:?}")), (2, format!("{b:?}")));
    let mut g = c.benchmark_group("learn");
    g.bench_function("2304_200_boxes_events_from_bytes", |b| {
        b.iter(|| {
            let h = claimgate::wire::parse_head(black_box(&bytes)).expect("head");
            events(&h, Some(&resp), None, &key).len()
        })
    });
    g.bench_function("2304_200_boxes_events_from_check_claims", |b| {
        b.iter_batched(
            || claims.clone(),
            |cl| events(&detached, Some(&resp), Some(cl), &key).len(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(eval, benches);
criterion_main!(eval);
