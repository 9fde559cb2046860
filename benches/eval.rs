//! Parse and evaluate benches (design.md performance budget). Run: `cargo bench --bench eval`.

use claimgate::claim::{Claim, Facts, NoFacts};
use claimgate::pipeline::{prepare, Prepared};
use claimgate::rules::{self, CompiledRuleSet};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::path::PathBuf;

fn baseline() -> CompiledRuleSet {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    rules::load(&[root.join("rulesets/national-baseline")]).expect("baseline pack").1
}

fn parse(bytes: &[u8], facts: &dyn Facts) -> Claim {
    let head = claimgate::wire::parse_head(bytes).expect("head");
    match prepare(&head, facts).expect("claim") {
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

    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("synthetic_200r_20kp", |b| {
        b.iter_batched(|| synth_src.clone(), |s| rules::compile(&[s]).unwrap(), BatchSize::LargeInput)
    });
    g.finish();

    let ctx = claimgate::history::ContextStore::ephemeral(Some(2));
    let mut g = c.benchmark_group("end_to_end");
    g.bench_function("2301_1000_lines_parse_context_evaluate_baseline", |b| {
        b.iter(|| {
            let claim = parse(black_box(&large), &ctx);
            rules::evaluate(&base, &claim)
        })
    });
    g.bench_function("2301_1000_lines_parse_context_evaluate_synthetic", |b| {
        b.iter(|| {
            let claim = parse(black_box(&large), &ctx);
            rules::evaluate(&synth, &claim)
        })
    });
    g.finish();
}

criterion_group!(eval, benches);
criterion_main!(eval);
