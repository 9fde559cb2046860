//! The national 3101/3102 answer, rendered from claimgate's own decisions, so an HIS integrated
//! with the national 明细审核 service can point at claimgate with no code change.

use crate::claim::Claim;
use crate::claim::Fen;
use crate::rules::{Decision, Severity};
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU64, Ordering};

/// An amount as the national field (N16,2) has it: a JSON number with two decimals (`20.00`).
fn money(f: Fen) -> Box<RawValue> {
    RawValue::from_string(f.yuan()).unwrap_or_else(|_| RawValue::from_string("0.00".into()).expect("a number"))
}

static SEQ: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Serialize, Clone)]
pub struct JudgeDetail {
    pub jrd_id: String,
    pub patn_id: String,
    pub mdtrt_id: String,
    pub rx_id: String,
    /// 1 违规项.
    pub vola_item_type: &'static str,
    pub vola_amt: Box<RawValue>,
}

#[derive(Debug, Serialize, Clone)]
pub struct JudgeResult {
    pub jr_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub vola_cont: String,
    pub patn_id: String,
    pub mdtrt_id: String,
    pub judge_result_detail_dtos: Vec<JudgeDetail>,
    /// The sum of the details' amounts.
    pub vola_amt: Box<RawValue>,
    /// 1 = amount determined (placeholder; the dictionary is unpublished).
    pub vola_amt_stas: &'static str,
    /// 1 明确违规 / 2 可疑 / 3 提示 (placeholder codes; the dictionary is unpublished).
    pub sev_deg: &'static str,
    pub vola_evid: String,
    /// 1 违规行为 (placeholder).
    pub vola_bhvr_type: &'static str,
    pub task_id: String,
    /// claimgate's extension: the rule's 驾照式记分 points, what the doctor would risk if the item
    /// went through (0: the pack gives the rule none). An HIS reading the national fields ignores it.
    pub points: u32,
}

/// `jr_id` values unique within this process and across restarts (time + sequence).
pub fn next_id(prefix: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n:06}", chrono::Local::now().format("%Y%m%d%H%M%S"))
}

fn sev_deg(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1",
        Severity::Warning => "2",
        Severity::Info => "3",
    }
}

/// `output.result[]` for the claims and their decisions (same order).
pub fn results(claims: &[Claim], decisions: &[Decision], task_id: &str) -> Vec<JudgeResult> {
    results_with(claims, decisions, task_id, &mut || next_id("JR"))
}

/// [`results`] with the `jr_id`s drawn from `ids` (the CDS service hands out UUIDs: a card's `uuid`
/// is its `jr_id`).
pub fn results_with(
    claims: &[Claim],
    decisions: &[Decision],
    task_id: &str,
    ids: &mut dyn FnMut() -> String,
) -> Vec<JudgeResult> {
    let mut out = Vec::new();
    for (c, d) in claims.iter().zip(decisions) {
        for h in &d.hits {
            let jr_id = ids();
            // The hit's amount (the excess, the duplicate) falls on its lines from the last one back,
            // each at most its own amount, so the details add up to the record.
            let mut left = h.amount.get().max(0);
            let mut shares = vec![0i64; h.lines.len()];
            for (share, a) in shares.iter_mut().zip(&h.line_amounts).rev() {
                *share = left.min(a.get().max(0));
                left -= *share;
            }
            let total = Fen::new(shares.iter().sum());
            let details = h
                .lines
                .iter()
                .zip(shares)
                .enumerate()
                .map(|(i, (l, a))| JudgeDetail {
                    jrd_id: format!("{jr_id}-{:02}", i + 1),
                    patn_id: c.patient.psn_no.clone(),
                    mdtrt_id: c.encounter.mdtrt_id.clone(),
                    rx_id: l.to_string(),
                    vola_item_type: "1",
                    vola_amt: money(Fen::new(a)),
                })
                .collect();
            out.push(JudgeResult {
                rule_id: h.rule_id.to_string(),
                rule_name: h.rule_name.to_string(),
                vola_cont: h.message.clone(),
                patn_id: c.patient.psn_no.clone(),
                mdtrt_id: c.encounter.mdtrt_id.clone(),
                judge_result_detail_dtos: details,
                vola_amt: money(total),
                vola_amt_stas: "1",
                sev_deg: sev_deg(h.severity),
                vola_evid: h.basis.to_string(),
                vola_bhvr_type: "1",
                task_id: task_id.to_owned(),
                points: h.points,
                jr_id,
            });
        }
    }
    out
}

/// A 3101/3102 answered: the national results, the merged decision (header, journal) and the
/// `jr_id`s handed out, each remembered in `overrides` for the doctor's 3103 answer.
pub struct Answered {
    pub results: Vec<JudgeResult>,
    pub merged: Decision,
    pub jr: Vec<crate::journal::JrLink>,
}

/// Answers a 3101/3102 whose claims were decided one by one (`decisions`, in claim order), the
/// `jr_id`s drawn from `ids`.
pub fn answer(
    rs: &crate::rules::CompiledRuleSet,
    claims: &[Claim],
    decisions: Vec<Decision>,
    task_id: &str,
    overrides: &super::overrides::Overrides,
    ids: &mut dyn FnMut() -> String,
) -> Answered {
    use super::overrides::{fingerprint, JrRecord};
    let results = results_with(claims, &decisions, task_id, ids);
    for r in &results {
        let claim = claims.iter().find(|c| c.encounter.mdtrt_id == r.mdtrt_id && c.patient.psn_no == r.patn_id);
        let overridable = decisions
            .iter()
            .flat_map(|d| d.hits.iter())
            .find(|h| *h.rule_id == *r.rule_id)
            .is_some_and(|h| h.overridable || h.action == crate::rules::Action::Remind);
        let lines = r
            .judge_result_detail_dtos
            .iter()
            .filter_map(|j| claim.and_then(|c| fingerprint(c, &j.rx_id)).map(|fp| (j.rx_id.clone(), fp)))
            .collect();
        overrides.remember(
            &r.jr_id,
            JrRecord { rule_id: r.rule_id.clone(), mdtrt_id: r.mdtrt_id.clone(), lines, overridable },
        );
    }
    let merged = super::merge(rs, decisions);
    let jr =
        results.iter().map(|r| crate::journal::JrLink { jr_id: r.jr_id.clone(), rule_id: r.rule_id.clone() }).collect();
    Answered { results, merged, jr }
}

/// The doctor's 3103 answers as recorded: one journal entry per answer read, then either success or
/// why an answer could not take effect, in words the HIS shows the doctor (answered with infcode -1:
/// an HIS shows infcode 0 as success, whatever `warn_msg` says).
pub struct Recorded {
    pub feedback: Vec<crate::journal::Feedback>,
    pub outcome: Result<(), Refused>,
}

/// Why a 3103 did not (wholly) take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `warns[i]` continues without a reason (the answers after it are not read).
    MissingReason(usize),
    /// Answers that cannot take effect, each with its `jr_id` and what to do (the others were recorded).
    Answers(String),
}

/// Records each 3103 answer in `overrides`.
pub fn record_feedback(fb: &crate::wire::tx::Feedback, overrides: &super::overrides::Overrides) -> Recorded {
    use super::overrides::FeedbackOutcome;
    let (mut feedback, mut problems) = (Vec::new(), Vec::new());
    for (i, w) in fb.warns.iter().enumerate() {
        let (jr, way) = (w.warn_rslt_id.as_str(), w.dspo_way.as_str());
        let outcome = overrides.answer(jr, way, w.dspo_way_rea.as_str());
        // The doctor's answer and reason are kept for the 医保办 and for 记分 defence.
        feedback.push(crate::journal::Feedback {
            at: chrono::Local::now().to_rfc3339(),
            jr_id: jr.to_owned(),
            dspo_way: way.to_owned(),
            reason: w.dspo_way_rea.as_str().to_owned(),
            outcome: format!("{outcome:?}"),
        });
        crate::telemetry::metrics::OVERRIDES.with_label_values(&[if way == "1" { "1" } else { "2" }]).inc();
        match outcome {
            FeedbackOutcome::MissingReason => return Recorded { feedback, outcome: Err(Refused::MissingReason(i)) },
            FeedbackOutcome::UnknownJr => problems.push(format!(
                "审核结果{jr}不存在或已过期（可能来自其他系统），请重新进行事前分析（3101）后按新的审核结果反馈"
            )),
            FeedbackOutcome::NotOverridable => problems
                .push(format!("审核结果{jr}为不可继续执行的拦截，填写理由不能放行，请修改医嘱或按自费处理后重新分析")),
            FeedbackOutcome::Granted | FeedbackOutcome::Modify => {}
        }
        tracing::info!(jr_id = jr, dspo_way = way, outcome = ?outcome, "3103 feedback recorded");
    }
    let outcome = if problems.is_empty() { Ok(()) } else { Err(Refused::Answers(problems.join("；"))) };
    Recorded { feedback, outcome }
}

/// What claimgate answers itself on the intercepted route.
pub enum Local {
    /// 3101/3102: the answer and the claims it judged.
    Analysed(Answered, Vec<Claim>),
    /// 3103: the doctor's answers, recorded.
    Feedback(Recorded),
    /// Anything else that reached the local route.
    Unsupported,
}

/// Reads a 3101/3102/3103 and answers it: history within the set's lookback (分解住院 at 入院登记,
/// 重复开药 …), each claim decided on its own (hits must name their patient and visit). Blocks on
/// the store: run it on the blocking pool.
///
/// # Errors
/// [`crate::wire::ParseError`] naming the field.
pub fn local(
    head: &crate::wire::RequestHead<'_>,
    rs: &crate::rules::CompiledRuleSet,
    history: &crate::history::History,
    overrides: &super::overrides::Overrides,
) -> Result<Local, crate::wire::ParseError> {
    Ok(match super::prepare_with(head, history, rs.lookback_days(), None)? {
        super::Prepared::Claims { claims, task_id, .. } => {
            let decisions = super::decide_each(rs, &claims);
            Local::Analysed(
                answer(rs, &claims, decisions, task_id.as_deref().unwrap_or(""), overrides, &mut || next_id("JR")),
                claims,
            )
        }
        super::Prepared::Feedback(fb) => Local::Feedback(record_feedback(&fb, overrides)),
        super::Prepared::Relay(_) => Local::Unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::decision::RulesetRef;
    use crate::rules::{Action, Hit, Outcome};

    #[test]
    fn a_records_amount_is_the_sum_of_its_details_and_both_are_numbers_with_two_decimals() {
        // Arrange: 互斥 nursing levels, both lines named, the duplicate (20.00) the hit's amount.
        let mut c = Claim::default();
        c.patient.psn_no = "P1".into();
        c.encounter.mdtrt_id = "M1".into();
        let hit = Hit {
            rule_id: "CG-MUTEX-001".into(),
            rule_name: "互斥".into(),
            action: Action::Block,
            severity: Severity::Critical,
            message: "互斥".into(),
            lines: vec!["N1".into(), "N2".into()],
            line_amounts: vec![Fen::new(2800), Fen::new(2000)],
            amount: Fen::new(2000),
            overridable: true,
            points: 0,
            basis: "".into(),
            evidence: vec![],
        };
        let d = Decision {
            decision: Outcome::Block,
            ruleset: RulesetRef { name: "t".into(), version: "1".into() },
            hits: vec![hit],
            unchecked: vec![],
            elapsed_us: 0,
        };
        // Act
        let json = serde_json::to_string(&results(&[c], &[d], "T1")).unwrap();
        // Assert
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let details: Vec<f64> = v[0]["judge_result_detail_dtos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["vola_amt"].as_f64().unwrap())
            .collect();
        assert_eq!(details, vec![0.0, 20.0]);
        assert!(json.contains("\"vola_amt\":20.00,"), "{json}");
        assert!(json.contains("\"vola_amt\":0.00}"), "{json}");
    }
}
