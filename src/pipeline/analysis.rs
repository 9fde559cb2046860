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
