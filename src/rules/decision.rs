//! The decision: what fired, on which lines, why, and what could not be judged.
//! Its JSON is a contract (design.md): the CLI, `/v1/check` and the journal all emit this shape.

use super::source::{Action, Severity};
use crate::claim::{Fen, Price, Qty, SmolStr};
use chrono::NaiveDate;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::sync::Arc;

/// A value behind a hit: shown in the message and in `evidence`.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(SmolStr),
    Int(i64),
    Fen(Fen),
    Qty(Qty),
    Price(Price),
    Date(NaiveDate),
}

impl Val {
    pub fn write_text(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Val::Fen(f) => f.write_yuan(out),
            Val::Qty(q) => q.write_text(out),
            Val::Price(p) => p.write_yuan(out),
            // NaiveDate displays as ISO 8601 (2025-06-10) without parsing a format string.
            Val::Date(d) => {
                use std::fmt::Write;
                let _ = write!(out, "{d}");
            }
        }
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Int(i) => s.serialize_i64(*i),
            Val::Str(t) => s.serialize_str(t),
            other => {
                let mut t = String::with_capacity(24);
                other.write_text(&mut t);
                s.serialize_str(&t)
            }
        }
    }
}

/// The overall outcome: the strongest action among the hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Remind,
    Block,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Remind => "remind",
            Outcome::Block => "block",
        }
    }
}

impl From<Action> for Outcome {
    fn from(a: Action) -> Self {
        match a {
            Action::Remind => Outcome::Remind,
            Action::Block => Outcome::Block,
        }
    }
}

/// A fact a rule needed and nobody told claimgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fact {
    Gender,
    BirthDate,
    Insutype,
    MedType,
    Visit,
    Diagnoses,
    InstitutionLevel,
    Category,
    Department,
    DaysSupply,
    /// The patient's history (store unreachable, or not looked up).
    History,
    /// The fund share of this claim (the pre-settlement answer).
    FundShare,
}

impl Fact {
    /// The national field name of the fact.
    pub fn field(self) -> &'static str {
        match self {
            Fact::Gender => "gend",
            Fact::BirthDate => "brdy",
            Fact::Insutype => "insutype",
            Fact::MedType => "med_type",
            Fact::Visit => "med_mdtrt_type",
            Fact::Diagnoses => "diagnoses",
            Fact::InstitutionLevel => "medins_lv",
            Fact::Category => "med_chrgitm_type",
            Fact::Department => "bilg_dept_codg",
            Fact::DaysSupply => "prd_days",
            Fact::History => "history",
            Fact::FundShare => "hifp_pay",
        }
    }
    pub fn reason(self) -> &'static str {
        match self {
            Fact::Gender => "未知患者性别（缺少1101人员信息）",
            Fact::BirthDate => "未知患者出生日期（缺少1101人员信息）",
            Fact::Insutype => "未知险种类型（缺少2201挂号或1101参保信息）",
            Fact::MedType => "未知医疗类别（缺少2203就诊信息）",
            Fact::Visit => "未知就医方式",
            Fact::Diagnoses => "未知诊断信息（缺少2203/2401诊断）",
            Fact::InstitutionLevel => "未知医疗机构等级（未配置机构等级）",
            Fact::Category => "报文未提供收费项目类别",
            Fact::Department => "报文未提供开单科室",
            Fact::DaysSupply => "报文未提供用药周期天数",
            Fact::History => "患者历史记录不可用（历史库无法访问）",
            Fact::FundShare => "未知本次统筹基金支付额（缺少2206/2303预结算结果）",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RulesetRef {
    pub name: Arc<str>,
    pub version: Arc<str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub rule_id: Arc<str>,
    pub rule_name: Arc<str>,
    pub action: Action,
    pub severity: Severity,
    pub message: String,
    pub lines: Vec<SmolStr>,
    /// The money at stake, in 元 with two decimals.
    #[serde(serialize_with = "ser_fen")]
    pub amount: Fen,
    pub overridable: bool,
    pub basis: Arc<str>,
    #[serde(serialize_with = "ser_evidence")]
    pub evidence: Vec<(&'static str, Val)>,
    /// Per-line amounts, parallel to `lines` (3101 `judge_result_detail_dtos[].vola_amt`).
    #[serde(skip)]
    pub line_amounts: Vec<Fen>,
    /// The rule's 驾照式记分 points: what the doctor would risk if the item went through (0: the
    /// pack gives the rule none). Added to the decision JSON (an extension of the contract).
    pub points: u32,
}

/// Lines that a rule could not judge, grouped by the missing fact.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unchecked {
    pub fact: &'static str,
    pub reason: &'static str,
    pub lines: Vec<SmolStr>,
    pub rules: Vec<Arc<str>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub decision: Outcome,
    pub ruleset: RulesetRef,
    pub hits: Vec<Hit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<Unchecked>,
    pub elapsed_us: u64,
}

impl Decision {
    /// The value of the `x-claimgate-decision` header: the outcome, or `unchecked` when nothing
    /// fired but some lines could not be judged.
    pub fn header_value(&self) -> &'static str {
        if self.decision == Outcome::Pass && !self.unchecked.is_empty() {
            "unchecked"
        } else {
            self.decision.as_str()
        }
    }

    /// Merges another patient's decision (3101 with several patients) into this one.
    pub fn merge(&mut self, other: Decision) {
        self.decision = self.decision.max(other.decision);
        self.hits.extend(other.hits);
        for u in other.unchecked {
            match self.unchecked.iter_mut().find(|x| x.fact == u.fact) {
                Some(x) => {
                    x.lines.extend(u.lines);
                    for r in u.rules {
                        if !x.rules.contains(&r) {
                            x.rules.push(r);
                        }
                    }
                }
                None => self.unchecked.push(u),
            }
        }
        self.elapsed_us += other.elapsed_us;
    }

    /// The hit messages joined for a cashier (`err_msg` / `warn_msg`).
    pub fn summary(&self, only: Option<Action>) -> String {
        let mut s = String::new();
        for h in self.hits.iter().filter(|h| only.is_none_or(|a| h.action == a)) {
            if !s.is_empty() {
                s.push('；');
            }
            s.push('[');
            s.push_str(&h.rule_id);
            s.push(']');
            s.push_str(&h.message);
        }
        s
    }
}

fn ser_fen<S: Serializer>(f: &Fen, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.yuan())
}

fn ser_evidence<S: Serializer>(ev: &[(&'static str, Val)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(ev.len()))?;
    for (k, v) in ev {
        m.serialize_entry(k, v)?;
    }
    m.end()
}
