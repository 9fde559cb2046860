//! Replays the fuzz targets' seed corpora (`fuzz/seeds/<target>`) and every crash or hang the
//! fuzzers ever found (`fuzz/regressions/<target>`, one file per finding) through the same entry
//! points (`claimgate::fuzz`), so a fixed crash stays fixed under plain `cargo test`.

use crate::helpers::root;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("envelope", claimgate::fuzz::envelope),
    ("request", claimgate::fuzz::request),
    ("analysis", claimgate::fuzz::transaction),
    ("rule_yaml", claimgate::fuzz::rule_yaml),
    ("bundle", claimgate::fuzz::bundle),
];

#[test]
fn every_seed_and_every_past_fuzz_finding_runs_without_a_panic() {
    let mut ran = 0;
    for (name, target) in TARGETS {
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root().join("fuzz").join(dir).join(name)) else { continue };
            for e in entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
                let bytes = std::fs::read(e.path()).unwrap();
                target(&bytes);
                ran += 1;
            }
        }
    }
    assert!(ran >= 40, "the corpora went missing: {ran} inputs");
}
