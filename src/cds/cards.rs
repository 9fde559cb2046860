//! Cards from a decision: one per hit (its `uuid` the hit's `jr_id`), and one saying what could
//! not be checked and why. Every text a doctor reads is Chinese and names items by name.

use super::{Evaluated, NotChecked, SUSPENSION_POINTS, TERMINATION_POINTS};
use crate::pipeline::analysis::JudgeResult;
use crate::rules::decision::Val;
use crate::rules::{Action as RuleAction, CompiledRuleSet, Hit, Severity};
use crate::wire::cds::{Action, Card, Coding, Order, Skipped, Source, Suggestion, CS_OVERRIDE};
use serde_json::{json, Map, Value};

/// The longest summary the spec allows.
const SUMMARY_MAX: usize = 140;

/// claimgate's override reasons: `(code, display)`.
pub const OVERRIDE_REASONS: [(&str, &str); 4] = [
    ("clinical-need", "病情需要，继续执行"),
    ("indication-documented", "符合限定支付条件，依据已记录在病历中"),
    ("self-pay", "患者知情同意，该项目按自费处理"),
    ("information-incomplete", "提醒所依据的信息不完整或有误"),
];

/// The display of a reason code (the code itself when it is not one of claimgate's).
pub fn reason_text(code: &str) -> String {
    OVERRIDE_REASONS.iter().find(|r| r.0 == code).map_or_else(|| code.to_owned(), |r| r.1.to_owned())
}

/// The doctor's 驾照式记分 standing this calendar year, shown on each card.
#[derive(Debug, Clone)]
pub struct Standing {
    pub doctor: String,
    pub year: i32,
    /// `None`: the journal could not be read (said so).
    pub accrued: Option<i64>,
}

impl Standing {
    fn text(&self) -> String {
        match self.accrued {
            Some(a) => {
                let state = if a >= TERMINATION_POINTS {
                    "已达终止医保支付资格分值"
                } else if a >= SUSPENSION_POINTS {
                    "已达暂停医保支付资格分值"
                } else {
                    "未达暂停分值"
                };
                format!(
                    "医师{}在{}年度已累计记分{}分（满{}分暂停、满{}分终止医保支付资格；{}）",
                    self.doctor, self.year, a, SUSPENSION_POINTS, TERMINATION_POINTS, state
                )
            }
            None => format!("医师{}在{}年度的累计记分暂不可查（审核日志不可读）", self.doctor, self.year),
        }
    }
}

/// At most `max` characters, an ellipsis marking a cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn indicator(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn source(rs: &CompiledRuleSet, rule: Option<(&str, &str)>) -> Source {
    Source {
        label: format!("claimgate 医保智能审核 · 规则包 {} 版本 {}", rs.name, rs.version),
        topic: rule.map(|(id, name)| Coding {
            system: Some("https://claimgate.cn/fhir/CodeSystem/rule".into()),
            code: id.to_owned(),
            display: Some(name.to_owned()),
        }),
    }
}

/// A numeric evidence value as a JSON number (a quantity limit for a suggestion).
fn number(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Qty(q) => q.text().parse().ok(),
        _ => None,
    }
}

/// The suggestions a hit has a known fix for: remove its orders; reduce a dispensed quantity to the
/// rule's limit when the rule counts units against a maximum.
fn suggestions(hit: &Hit, orders: &[&Order]) -> Vec<Suggestion> {
    let mut out = Vec::new();
    if orders.is_empty() {
        return out;
    }
    let ev = |k: &str| hit.evidence.iter().find(|e| e.0 == k).map(|e| &e.1);
    if let (Some(max), Some(_count), [o]) = (ev("max").and_then(number), ev("count"), orders) {
        if o.dispense_quantity && max > 0.0 {
            let mut r = o.resource.clone();
            r["dispenseRequest"]["quantity"]["value"] = json!(max);
            out.push(Suggestion {
                label: clip(&format!("将{}的数量减至{}", o.name, max), SUMMARY_MAX),
                uuid: super::uuid(),
                is_recommended: true,
                actions: vec![Action {
                    kind: "update",
                    description: format!("{}：数量改为规则限定的{}", o.name, max),
                    resource: Some(r),
                    resource_id: vec![],
                }],
            });
        }
    }
    let names: Vec<&str> = orders.iter().map(|o| o.name.as_str()).collect();
    out.push(Suggestion {
        label: clip(&format!("删除医嘱：{}", names.join("、")), SUMMARY_MAX),
        uuid: super::uuid(),
        is_recommended: out.is_empty() && hit.action == RuleAction::Block && !hit.overridable,
        actions: vec![Action {
            kind: "delete",
            description: format!("删除医嘱{}", names.join("、")),
            resource: None,
            resource_id: orders.iter().map(|o| o.reference.clone()).collect(),
        }],
    });
    out
}

/// The card of one hit.
fn hit_card(rs: &CompiledRuleSet, r: &JudgeResult, hit: &Hit, orders: &[&Order], standing: Option<&Standing>) -> Card {
    let (action, can_continue) = match (hit.action, hit.overridable) {
        (RuleAction::Block, false) => ("拦截（不可继续执行）", false),
        (RuleAction::Block, true) => ("拦截（可填写理由继续执行）", true),
        (RuleAction::Remind, _) => ("提醒（可填写理由继续执行）", true),
    };
    let summary = clip(&format!("【{}】{}", hit.rule_name, hit.message), SUMMARY_MAX);
    let names: Vec<&str> = orders.iter().map(|o| o.name.as_str()).filter(|n| !n.is_empty()).collect();
    let mut detail = format!("**{}**（{}）：{}\n\n", hit.rule_name, hit.rule_id, hit.message);
    if !names.is_empty() {
        detail.push_str(&format!("- 涉及医嘱：{}\n", names.join("、")));
    }
    detail.push_str(&format!("- 处理方式：{action}\n"));
    if hit.amount.get() > 0 {
        detail.push_str(&format!("- 涉及金额：{}元\n", hit.amount.yuan()));
    }
    if !hit.basis.is_empty() {
        detail.push_str(&format!("- 政策依据：{}\n", hit.basis));
    }
    if hit.points > 0 {
        detail.push_str(&format!("- 驾照式记分：本规则每次记{}分\n", hit.points));
    } else {
        detail.push_str("- 驾照式记分：规则包未给出本规则分值\n");
    }
    if let Some(s) = standing {
        detail.push_str(&format!("- {}\n", s.text()));
    }
    let mut ext = Map::new();
    ext.insert("cn.claimgate.rule".into(), json!({"rule_id": hit.rule_id.as_ref(), "jr_id": r.jr_id, "action": if hit.action == RuleAction::Block { "block" } else { "remind" }, "overridable": can_continue}));
    ext.insert(
        "cn.claimgate.points".into(),
        json!({"rule_points": hit.points, "doctor": standing.map(|s| s.doctor.clone()), "year": standing.map(|s| s.year),
               "accrued": standing.and_then(|s| s.accrued), "suspension_at": SUSPENSION_POINTS, "termination_at": TERMINATION_POINTS}),
    );
    let suggestions = suggestions(hit, orders);
    Card {
        uuid: r.jr_id.clone(),
        summary,
        detail: Some(detail),
        indicator: indicator(hit.severity),
        source: source(rs, Some((&hit.rule_id, &hit.rule_name))),
        selection_behavior: (!suggestions.is_empty()).then_some("at-most-one"),
        suggestions,
        override_reasons: if can_continue {
            OVERRIDE_REASONS
                .iter()
                .map(|(c, d)| Coding {
                    system: Some(CS_OVERRIDE.into()),
                    code: (*c).into(),
                    display: Some((*d).into()),
                })
                .collect()
        } else {
            vec![]
        },
        extension: ext,
    }
}

/// Where in the FHIR request a missing national fact comes from.
fn fhir_source(fact: &str) -> &'static str {
    match fact {
        "gend" => "Patient.gender",
        "brdy" => "Patient.birthDate（完整日期）",
        "insutype" => "参保险种（claimgate 未收到该患者的1101/2201信息）",
        "med_type" | "med_mdtrt_type" => "Encounter.class 或 Encounter.type（医疗类别）",
        "diagnoses" => "Condition（ICD-10 编码）",
        "medins_lv" => "医疗机构等级（claimgate 配置 institution_tier）",
        "prd_days" => "MedicationRequest.dispenseRequest.expectedSupplyDuration",
        "history" => "患者历史记录（历史库）",
        _ => "请求中的相应信息",
    }
}

/// The card listing what could not be checked: prefetch entries absent, draft orders that could
/// not be read, facts the rules needed (`unchecked`). `None` when everything was checked.
fn unchecked_card(
    rs: &CompiledRuleSet,
    missing_prefetch: &[&str],
    skipped: &[Skipped],
    unchecked: &[crate::rules::decision::Unchecked],
    name_of: &dyn Fn(&str) -> String,
    error: Option<&str>,
) -> Option<Card> {
    if missing_prefetch.is_empty() && skipped.is_empty() && unchecked.is_empty() && error.is_none() {
        return None;
    }
    let mut facts: Vec<String> = Vec::new();
    let mut detail = String::from("以下内容未能按医保规则检查，**不代表检查通过**：\n\n");
    if let Some(e) = error {
        facts.push("患者或就诊信息".into());
        detail.push_str(&format!("- 本次医嘱全部未检查：请求信息不足以构成医保审核所需的就诊（{e}）\n"));
    }
    for p in missing_prefetch {
        let (what, fhir) = match *p {
            "patient" => ("患者信息", "Patient"),
            "encounter" => ("就诊信息", "Encounter"),
            _ => ("诊断信息", "Condition"),
        };
        facts.push(what.into());
        detail.push_str(&format!("- 未收到预取的{what}（prefetch.{p}，{fhir}）：依赖该信息的规则按缺失处理\n"));
    }
    for s in skipped {
        let name = if s.name.is_empty() { s.reference.clone() } else { s.name.clone() };
        facts.push(format!("{name}的医保编码或数量"));
        detail.push_str(&format!("- 医嘱{name}（{}）未检查：{}\n", s.reference, s.why));
    }
    for u in unchecked {
        facts.push(u.reason.split('（').next().unwrap_or(u.reason).to_owned());
        let names: Vec<String> = u.lines.iter().map(|l| name_of(l)).collect();
        let rules: Vec<&str> = u.rules.iter().map(|r| r.as_ref()).collect();
        detail.push_str(&format!(
            "- {}：涉及医嘱{}，未检查的规则{}；请在{}中提供\n",
            u.reason,
            names.join("、"),
            rules.join("、"),
            fhir_source(u.fact)
        ));
    }
    facts.dedup();
    let missing: Vec<Value> = unchecked
        .iter()
        .map(|u| json!({"fact": u.fact, "reason": u.reason, "lines": u.lines, "rules": u.rules}))
        .collect();
    let mut ext = Map::new();
    ext.insert(
        "cn.claimgate.unchecked".into(),
        json!({"prefetch": missing_prefetch, "orders": skipped.iter().map(|s| json!({"reference": s.reference, "reason": s.why})).collect::<Vec<_>>(), "facts": missing}),
    );
    Some(Card {
        uuid: super::uuid(),
        summary: clip(&format!("部分医保规则未能检查（未检查）：缺少{}", facts.join("、")), SUMMARY_MAX),
        detail: Some(detail),
        indicator: "warning",
        source: source(rs, None),
        extension: ext,
        ..Card::default()
    })
}

/// The cards of an evaluated call: one per hit, then the card of what was not checked.
pub fn cards(rs: &CompiledRuleSet, e: &Evaluated, standing: Option<&Standing>) -> Vec<Card> {
    let orders = &e.mapped.orders;
    let mut out: Vec<Card> = e
        .answered
        .results
        .iter()
        .zip(&e.answered.merged.hits)
        .map(|(r, hit)| {
            let mine: Vec<&Order> =
                hit.lines.iter().filter_map(|l| orders.iter().find(|o| o.rx_id == l.as_str())).collect();
            hit_card(rs, r, hit, &mine, standing)
        })
        .collect();
    let name_of = |rx: &str| orders.iter().find(|o| o.rx_id == rx).map_or_else(|| rx.to_owned(), |o| o.name.clone());
    out.extend(unchecked_card(
        rs,
        &e.mapped.missing_prefetch,
        &e.mapped.skipped,
        &e.answered.merged.unchecked,
        &name_of,
        None,
    ));
    out
}

/// The card of a call that could not be evaluated at all.
pub fn not_checked(rs: &CompiledRuleSet, n: &NotChecked) -> Vec<Card> {
    let err = n.error.to_string();
    unchecked_card(rs, &n.mapped.missing_prefetch, &n.mapped.skipped, &[], &|l: &str| l.to_owned(), Some(&err))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_summary_is_cut_to_140_characters_with_an_ellipsis() {
        let long = "超".repeat(200);
        let s = clip(&long, SUMMARY_MAX);
        assert_eq!(s.chars().count(), 140);
        assert!(s.ends_with('…'));
        assert_eq!(clip("短", SUMMARY_MAX), "短");
    }

    #[test]
    fn the_standing_names_the_thresholds_reached() {
        let s = |a| Standing { doctor: "D3".into(), year: 2025, accrued: a }.text();
        assert!(s(Some(4)).contains("未达暂停分值"));
        assert!(s(Some(9)).contains("暂停"));
        assert!(s(Some(12)).contains("终止"));
        assert!(s(None).contains("暂不可查"));
    }
}
