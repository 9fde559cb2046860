//! Helpers for kind unit tests: a one-file pack from inline YAML, and claims built in code.

use crate::claim::*;
use crate::rules::pack::PackSource;
use crate::rules::source::{Manifest, RuleFile};
use crate::rules::{compile, CompileError, CompiledRuleSet, Decision};
use chrono::NaiveDate;
use std::collections::BTreeMap;

pub fn try_ruleset(yaml: &str, tables: &[(&str, &str)]) -> Result<CompiledRuleSet, CompileError> {
    let rf: RuleFile =
        serde_norway::from_str(yaml).map_err(|e| CompileError::one("rules/t.yaml", None, e.to_string()))?;
    let pack = PackSource {
        dir: "/nonexistent".into(),
        manifest: Manifest { name: "t".into(), version: "1".into(), description: String::new(), region: String::new() },
        rule_files: vec![("rules/t.yaml".into(), yaml.into(), rf)],
        table_texts: tables.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        test_files: vec![],
        digest: String::new(),
    };
    compile(&[pack])
}

pub fn ruleset(yaml: &str) -> CompiledRuleSet {
    match try_ruleset(yaml, &[]) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

pub fn date(s: &str) -> NaiveDate {
    time::parse_date(s).expect("date")
}

/// A 45-year-old man, 居民医保, 普通门诊, 二级医院, no diagnoses.
pub fn claim() -> Claim {
    Claim {
        infno: "2204",
        stage: Stage::Upload,
        trig_scen: None,
        fixmedins_code: "H41070100001".into(),
        patient: Patient {
            psn_no: "41000011000000000012345678".into(),
            gender: Some(Gender::Male),
            birth: Some(date("1980-01-01")),
            insutype: Some("390".into()),
        },
        encounter: Encounter {
            mdtrt_id: "410700G0000000001".into(),
            visit: Some(Visit::Outpatient),
            med_type: Some("11".into()),
            diagnoses: Some(vec![]),
            tier: Some(2),
            ..Encounter::default()
        },
        lines: vec![],
        ..Claim::default()
    }
}

/// A line: `qty` whole units at `price_fen` per unit, at `time` (`yyyy-MM-dd HH:mm:ss`).
pub fn line(id: &str, code: &str, qty: i64, price_fen: i64, time: &str) -> Line {
    let price = Price::from_micro(price_fen * 10_000);
    let q = Qty::whole(qty);
    Line {
        id: id.into(),
        code: code.into(),
        his_code: smol_str::format_smolstr!("HIS-{code}"),
        name: None,
        category: None,
        class: ItemClass::of_code(code),
        qty: q,
        price,
        amount: price.times(q),
        time: time::parse_datetime(time).expect("time"),
        dept_code: "100309".into(),
        dept_name: "内科".into(),
        doctor_code: "D001".into(),
        doctor_name: "李医生".into(),
        days_supply: None,
        discharge_drug: false,
        reverses: None,
        trace_codes: Vec::new(),
    }
}

/// `(rule_id, lines)` of every hit.
pub fn hits(d: &Decision) -> Vec<(String, Vec<String>)> {
    d.hits.iter().map(|h| (h.rule_id.to_string(), h.lines.iter().map(ToString::to_string).collect())).collect()
}

pub fn one(id: &str, lines: &[&str]) -> Vec<(String, Vec<String>)> {
    vec![(id.to_owned(), lines.iter().map(|s| (*s).to_owned()).collect())]
}

/// A rule header with the given kind and the rest of the YAML appended.
pub fn rule(kind: &str, message: &str, rest: &str) -> String {
    format!(
        "rules:\n  - id: R1\n    name: 测试规则\n    kind: {kind}\n    action: block\n    severity: critical\n    message: \"{message}\"\n    basis: 测试\n{rest}"
    )
}
