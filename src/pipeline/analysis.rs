//! The national 3101/3102 answer, rendered from claimgate's own decisions, so an HIS integrated
//! with the national 明细审核 service can point at claimgate with no code change.

use crate::claim::Claim;
use crate::rules::{Decision, Severity};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Serialize, Clone)]
pub struct JudgeDetail {
    pub jrd_id: String,
    pub patn_id: String,
    pub mdtrt_id: String,
    pub rx_id: String,
    /// 1 违规项.
    pub vola_item_type: &'static str,
    pub vola_amt: String,
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
    pub vola_amt: String,
    /// 1 = amount determined (placeholder; the dictionary is unpublished).
    pub vola_amt_stas: &'static str,
    /// 1 明确违规 / 2 可疑 / 3 提示 (placeholder codes; the dictionary is unpublished).
    pub sev_deg: &'static str,
    pub vola_evid: String,
    /// 1 违规行为 (placeholder).
    pub vola_bhvr_type: &'static str,
    pub task_id: String,
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
    let mut out = Vec::new();
    for (c, d) in claims.iter().zip(decisions) {
        for h in &d.hits {
            let jr_id = next_id("JR");
            let details = h
                .lines
                .iter()
                .zip(&h.line_amounts)
                .enumerate()
                .map(|(i, (l, a))| JudgeDetail {
                    jrd_id: format!("{jr_id}-{:02}", i + 1),
                    patn_id: c.patient.psn_no.clone(),
                    mdtrt_id: c.encounter.mdtrt_id.clone(),
                    rx_id: l.to_string(),
                    vola_item_type: "1",
                    vola_amt: a.yuan(),
                })
                .collect();
            out.push(JudgeResult {
                rule_id: h.rule_id.to_string(),
                rule_name: h.rule_name.to_string(),
                vola_cont: h.message.clone(),
                patn_id: c.patient.psn_no.clone(),
                mdtrt_id: c.encounter.mdtrt_id.clone(),
                judge_result_detail_dtos: details,
                vola_amt: h.amount.yuan(),
                vola_amt_stas: "1",
                sev_deg: sev_deg(h.severity),
                vola_evid: h.basis.to_string(),
                vola_bhvr_type: "1",
                task_id: task_id.to_owned(),
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

/// Answers a 3101/3102 whose claims were decided one by one (`decisions`, in claim order).
pub fn answer(
    rs: &crate::rules::CompiledRuleSet,
    claims: &[Claim],
    decisions: Vec<Decision>,
    task_id: &str,
    overrides: &super::overrides::Overrides,
) -> Answered {
    use super::overrides::{fingerprint, JrRecord};
    let results = results(claims, &decisions, task_id);
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

/// The doctor's 3103 answers as recorded: one journal entry per answer read, then either notes
/// for the HIS (`warn_msg`) or the index of an answer that continues without a reason (the
/// answers after it are not read).
pub struct Recorded {
    pub feedback: Vec<crate::journal::Feedback>,
    pub outcome: Result<Vec<String>, usize>,
}

/// Records each 3103 answer in `overrides`.
pub fn record_feedback(fb: &crate::wire::tx::Feedback, overrides: &super::overrides::Overrides) -> Recorded {
    use super::overrides::FeedbackOutcome;
    let (mut feedback, mut notes) = (Vec::new(), Vec::new());
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
            FeedbackOutcome::MissingReason => return Recorded { feedback, outcome: Err(i) },
            FeedbackOutcome::UnknownJr => notes.push(format!("{jr}：未找到该审核结果")),
            FeedbackOutcome::NotOverridable => notes.push(format!("{jr}：该规则为不可继续执行的拦截，结算时仍将拦截")),
            FeedbackOutcome::Granted | FeedbackOutcome::Modify => {}
        }
        tracing::info!(jr_id = jr, dspo_way = way, outcome = ?outcome, "3103 feedback recorded");
    }
    Recorded { feedback, outcome: Ok(notes) }
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
            Local::Analysed(answer(rs, &claims, decisions, task_id.as_deref().unwrap_or(""), overrides), claims)
        }
        super::Prepared::Feedback(fb) => Local::Feedback(record_feedback(&fb, overrides)),
        super::Prepared::Relay(_) => Local::Unsupported,
    })
}
