use super::*;
use crate::pipeline::packtest;
use crate::rules::source::TestCase;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn shipped() -> Conversion {
    let version = crate::cli::pack_version(&root().join("rulesets/national-liangku")).expect("the shipped manifest");
    convert(&Sources {
        points: &read("tools/nhsa/knowledge-points.jsonl"),
        icd10: &read("tools/nhsa/icd/diagnoses.tsv"),
        version: &version,
    })
}

fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, base, out);
        } else {
            out.push(p.strip_prefix(base).unwrap_or(&p).to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn the_shipped_pack_is_the_converters_output() {
    // Arrange
    let pack = root().join("rulesets/national-liangku");
    // Act
    let conv = shipped();
    // Assert: every generated file is shipped as generated, and nothing else is in the pack.
    for (rel, text) in &conv.files {
        let on_disk = std::fs::read_to_string(pack.join(rel)).unwrap_or_default();
        assert!(
            on_disk == *text,
            "{rel} differs from the converter's output: run `cargo run --release -- rules import-nhsa`"
        );
    }
    let mut present = Vec::new();
    files_under(&pack, &pack, &mut present);
    let extra: Vec<&String> = present.iter().filter(|f| !conv.files.contains_key(*f)).collect();
    assert!(extra.is_empty(), "files the converter does not write: {extra:?}");
}

fn point(kp: &str, class: &str, codes: &[&str], constraint: &str, release: &str, supersedes: Option<&str>) -> String {
    serde_json::json!({
        "kp_id": kp, "rule_class": class, "gz_code": null, "item_name": format!("药品{kp}"), "codes": codes,
        "constraint": constraint, "detect_logic": "与限定性别不符", "batch": if release == "batch_01" { Some(1) } else { None },
        "release": release, "supersedes": supersedes, "source_file": "第一批-1.药品区分性别使用.xlsx", "source_row": 1
    })
    .to_string()
}

#[test]
fn a_malformed_or_inconsistent_point_is_reported_and_skipped_while_the_others_load() {
    // Arrange
    let lines = [
        point("KP-ok", "药品区分性别使用", &["XG03AAA001A001010100001"], "用于月经不调。", "batch_01", None),
        point("KP-nocodes", "药品区分性别使用", &[], "用于月经不调。", "batch_01", None),
        point("KP-unknown", "药品限星期几使用", &["XA01AAA001A001010100001"], "限周一。", "batch_01", None),
        point("KP-male", "药品区分性别使用", &["XG04CBA001A001010100001"], "用于前列腺增生。", "batch_01", None),
        point("KP-female", "药品区分性别使用", &["XG04CBA001A001010100001"], "用于子宫出血。", "batch_01", None),
        point("KP-vague", "药品区分性别使用", &["XA02AAA001A001010100001"], "用于胃痛。", "batch_01", None),
        "{not json".to_owned(),
    ];
    // Act
    let conv = convert(&Sources { points: &lines.join("\n"), icd10: "code\tname\n", version: "1" });
    // Assert
    let reasons: Vec<(&str, &str)> = conv.skipped.iter().map(|s| (s.kp_id.as_str(), s.reason.as_str())).collect();
    let skipped: Vec<&str> = reasons.iter().map(|r| r.0).collect();
    assert_eq!(skipped, ["line 7", "KP-nocodes", "KP-unknown", "KP-vague", "KP-male", "KP-female"], "{reasons:?}");
    assert!(reasons[4].1.contains("XG04CBA001A001010100001"), "{reasons:?}");
    let table = &conv.files["tables/GZ10000301004000.csv"];
    assert!(table.contains("XG03AAA001A001010100001,药品KP-ok,女,"), "{table}");
    assert!(!table.contains("XG04CBA001A001010100001"), "{table}");
    assert!(conv.files["review.csv"].contains("KP-vague"));
}

fn compile_files(conv: &Conversion) -> (tempfile::TempDir, crate::rules::CompiledRuleSet, crate::rules::PackSource) {
    let dir = tempfile::tempdir().expect("tempdir");
    write(conv, dir.path()).expect("write");
    let pack = crate::rules::load_pack(dir.path()).expect("load");
    let rs = crate::rules::compile(std::slice::from_ref(&pack)).expect("compile");
    (dir, rs, pack)
}

fn check(
    rs: &crate::rules::CompiledRuleSet,
    envelope: serde_json::Value,
    expect: serde_json::Value,
) -> Result<(), String> {
    let case: TestCase =
        serde_json::from_value(serde_json::json!({"name": "t", "envelope": envelope, "expect": expect}))
            .map_err(|e| e.to_string())?;
    packtest::run_case(rs, &case, None)
}

#[test]
fn a_superseded_point_applies_before_the_revision_day_and_its_replacement_from_it() {
    // Arrange: the revision adds a second code to a female-only drug.
    let lines = [
        point("KP-old", "药品区分性别使用", &["XG03AAA001A001010100001"], "用于月经不调。", "batch_01", None),
        point(
            "KP-new",
            "药品区分性别使用",
            &["XG03AAA001A001010100001", "XG03AAA001A001010100002"],
            "用于月经不调。",
            "updates_2026-01",
            Some("KP-old"),
        ),
    ];
    let conv = convert(&Sources { points: &lines.join("\n"), icd10: "code\tname\n", version: "1" });
    let (_dir, rs, _) = compile_files(&conv);
    let man = emit_cases::Facts::typical();
    let on = |date: &str, code: &str| {
        let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        emit_cases::envelope(
            &man,
            d,
            &[emit_cases::Order { id: "R1", code, name: "药品", cnt: 1.0, price: 10.0, day: 0, days: None }],
        )
    };
    let hit = |id: &str| serde_json::json!({"hits_include": [{"rule_id": id, "lines": ["R1"]}]});
    let none = serde_json::json!({"decision": "pass", "hits": []});
    // Act + Assert: December 2025 is judged by the old list, February 2026 by the new one.
    assert_eq!(check(&rs, on("2025-12-15", "XG03AAA001A001010100001"), hit("GZ10000301004000-2025")), Ok(()));
    assert_eq!(check(&rs, on("2025-12-15", "XG03AAA001A001010100002"), none.clone()), Ok(()));
    assert_eq!(check(&rs, on("2026-02-15", "XG03AAA001A001010100002"), hit("GZ10000301004000-2026")), Ok(()));
    assert_eq!(
        check(
            &rs,
            on("2026-02-15", "XG03AAA001A001010100001"),
            serde_json::json!({"hits": [{"rule_id": "GZ10000301004000-2026", "lines": ["R1"]}], "decision": "block"})
        ),
        Ok(())
    );
}

/// The measure the issue sets: a violating claim for every published point of the enforced
/// classes is flagged by its rule, and the compliant twins are flagged by none of the pack's rules.
#[test]
fn flags_nine_in_ten_published_points_and_no_compliant_twin() {
    let conv = shipped();
    let (_dir, rs, _) = compile_files(&conv);
    let points = read("tools/nhsa/knowledge-points.jsonl");
    let matcher = indication::Matcher::new(&read("tools/nhsa/icd/diagnoses.tsv"));
    let mut skipped = Vec::new();
    let all = read_points(&points, &mut skipped);
    let superseded: HashSet<&str> = all.iter().filter_map(|p| p.supersedes.as_deref()).collect();
    let (mut total, mut flagged, mut twins, mut other_class, mut false_alarms) =
        (0usize, 0usize, 0usize, 0usize, Vec::new());
    let mut placed_all = Vec::new();
    let mut missed: BTreeMap<String, usize> = BTreeMap::new();
    for p in &all {
        let Some(class) = classes::find(&p.rule_class) else { continue };
        let era = Era::of(p, &superseded);
        if let Ok(d) = (class.decide)(p, &matcher) {
            placed_all.push(Placed { point: p.clone(), era, variant: d.variant, param: d.param, note: d.note });
        }
    }
    let left_out: HashSet<&str> = conv.skipped.iter().map(|s| s.kp_id.as_str()).collect();
    for p in &all {
        if p.rule_class == "超互联网医院药品支付范围" || classes::find(&p.rule_class).is_none() {
            continue; // shipped as a table only (no national message marks an internet visit)
        }
        total += 1;
        let Some(pl) = placed_all.iter().find(|x| x.point.kp_id == p.kp_id) else {
            *missed.entry(format!("{} (left out)", p.rule_class)).or_insert(0) += 1;
            continue;
        };
        if left_out.contains(p.kp_id.as_str()) {
            *missed.entry(format!("{} (left out)", p.rule_class)).or_insert(0) += 1;
            continue;
        }
        let id = emit::rule_id(pl.variant, pl.era);
        let fam = classes::of_variant(pl.variant).family;
        let peers: Vec<&Placed> = placed_all.iter().filter(|x| emit::rule_id(x.variant, x.era) == id).collect();
        let cases = emit_cases::point_cases(pl.variant, &id, pl.era, pl, &peers, &matcher);
        let mut ok = !cases.is_empty();
        for (name, env, expect) in cases {
            let env: serde_json::Value = serde_json::from_str(&env).unwrap();
            let expect: serde_json::Value = serde_json::from_str(&expect).unwrap();
            let twin = expect.get("hits_exclude").is_some();
            if twin {
                twins += 1;
                // A compliant twin is not flagged by any rule of its class. (It may still be by
                // another class's rule: the same drug can be 限性别 and 限适应症 at once.)
                let family: Vec<String> =
                    rs.rules.iter().filter(|r| r.id.starts_with(fam)).map(|r| r.id.to_string()).collect();
                if let Err(e) = check(&rs, env.clone(), serde_json::json!({"hits_exclude": family})) {
                    false_alarms.push(format!("{name}: {e}"));
                }
                if check(&rs, env, serde_json::json!({"hits": []})).is_err() {
                    other_class += 1;
                }
            } else if check(&rs, env, expect).is_err() {
                ok = false;
            }
        }
        if ok {
            flagged += 1;
        } else {
            *missed.entry(p.rule_class.clone()).or_insert(0usize) += 1;
        }
    }
    let rate = flagged as f64 / total as f64;
    eprintln!(
        "national pack: {flagged} of {total} published points flagged ({:.1}%); {twins} compliant twins, {} flagged by their own class, {other_class} by another class's rule",
        rate * 100.0,
        false_alarms.len()
    );
    eprintln!("not flagged, by class: {missed:?}");
    assert!(rate >= 0.9, "only {flagged} of {total} points flagged");
    assert!(
        false_alarms.is_empty(),
        "{} compliant twins flagged, e.g. {:?}",
        false_alarms.len(),
        &false_alarms[..false_alarms.len().min(5)]
    );
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_readmes_pack_figures_are_the_packs() {
    // Arrange
    let conv = shipped();
    let readme = read("README.md");
    let (points, codes) = conv.by_class.values().fold((0, 0), |(p, c), k| (p + k.points, c + k.codes));
    let classes = conv.by_class.values().filter(|k| k.points > 0).count();
    let count = |dir: &str| {
        let packs = crate::config::pack_dirs(&[root().join(dir)]);
        let (srcs, rs) = crate::rules::load(&packs).expect("pack");
        (rs.rules.len(), srcs.iter().flat_map(|p| &p.test_files).map(|(_, t)| t.cases.len()).sum::<usize>())
    };
    let (national_rules, national_cases) = count("rulesets/national-liangku");
    let undecided = conv.skipped.iter().filter(|s| !s.reason.starts_with("no codes")).count();
    let (base_rules, base_cases) = count("rulesets/national-baseline");
    // Act
    let want = [
        format!(
            "{} knowledge points over {} code entries in {classes} rule classes",
            thousands(points),
            thousands(codes)
        ),
        format!("{national_rules} rules with {national_cases} generated test cases"),
        format!("{base_rules} rules with {base_cases} test cases"),
        format!(
            "{} point{} the texts do not decide",
            ["No", "One", "Two", "Three"][undecided.min(3)],
            if undecided == 1 { "" } else { "s" }
        ),
    ];
    // Assert
    for w in &want {
        assert!(readme.contains(w.as_str()), "README.md should say {w:?}");
    }
}

#[test]
fn the_figures_of_the_default_rulesets_in_readme_and_benchmarks_are_the_packs() {
    // Arrange: `./rulesets` as `serve` and `demo` load it, the two documents with line breaks as spaces.
    let packs = crate::config::pack_dirs(&[root().join("rulesets")]);
    let (srcs, rs) = crate::rules::load(&packs).expect("the default rule set");
    let cases: usize = srcs.iter().flat_map(|p| &p.test_files).map(|(_, t)| t.cases.len()).sum();
    let flat = |rel: &str| read(rel).split_whitespace().collect::<Vec<_>>().join(" ");
    let (readme, benchmarks) = (flat("README.md"), flat("BENCHMARKS.md"));
    let (rules, points) = (rs.rules.len(), thousands(rs.knowledge_points));
    // Act: the load figure README quotes is the one BENCHMARKS measured for this rule set.
    let measured = benchmarks
        .split("| load and compile `./rulesets` from disk")
        .nth(1)
        .and_then(|row| row.split("**").nth(1))
        .expect("BENCHMARKS.md measures loading ./rulesets");
    // Assert
    let readme_says = format!("Together they are {rules} rules with {points} knowledge points and {cases} test cases");
    assert!(readme.contains(&readme_says), "README.md should say {readme_says:?}");
    assert!(readme.contains(&format!("takes about {measured} (BENCHMARKS.md")), "README.md should quote {measured}");
    let bench_says = format!("under `national-liangku` ({rules} rules, {points} knowledge points");
    assert!(benchmarks.contains(&bench_says), "BENCHMARKS.md measured another rule set than {bench_says:?}");
}
