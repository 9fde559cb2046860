use crate::helpers::root;

#[test]
fn every_shipped_pack_passes_its_own_test_cases() {
    for dirs in [
        vec![root().join("rulesets/national-baseline")],
        vec![root().join("rulesets/national-baseline"), root().join("rulesets/examples/xinxiang-2025")],
    ] {
        match claimgate::cli::rules_test(&dirs, None) {
            Ok(summary) => assert!(summary.contains(" passed, 0 failed"), "{summary}"),
            Err(report) => panic!("{report}"),
        }
    }
}

#[test]
fn the_shipped_json_schema_is_current() {
    let shipped = std::fs::read_to_string(root().join("rulesets/rule-file.schema.json")).unwrap_or_default();
    assert_eq!(
        shipped,
        claimgate::rules::source::rule_file_schema(),
        "regenerate with: claimgate rules schema > rulesets/rule-file.schema.json"
    );
}

#[test]
fn a_bad_pack_is_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("rules")).unwrap();
    std::fs::write(p.join("manifest.yaml"), "name: bad\nversion: '1'\n").unwrap();
    std::fs::write(
        p.join("rules/a.yaml"),
        "rules:\n  - id: A\n    name: x\n    kind: gender\n    action: block\n    severity: critical\n    message: '{item}'\n    basis: b\n    select: { code_patterns: ['(unclosed'] }\n    params: { gender: 2 }\n  - id: A\n    name: y\n    kind: gender\n    action: block\n    severity: critical\n    message: '{item}'\n    basis: b\n    params: { gender: 2 }\n",
    )
    .unwrap();
    std::fs::write(p.join("rules/b.yaml"), "rules:\n  - id: B\n    nmae: typo\n").unwrap();
    let err = claimgate::cli::rules_test(&[p.to_path_buf()], None).unwrap_err();
    assert!(err.contains("rules/b.yaml:3") && err.contains("unknown field `nmae`"), "{err}");
    std::fs::write(p.join("rules/b.yaml"), "rules: []\n").unwrap();
    let err = claimgate::cli::rules_test(&[p.to_path_buf()], None).unwrap_err();
    assert!(err.contains("bad/rules/a.yaml:2") && err.contains("invalid regex"), "{err}");
    assert!(
        err.contains("bad/rules/a.yaml:11") && err.contains("duplicate id (first defined at bad/rules/a.yaml:2)"),
        "{err}"
    );
}
