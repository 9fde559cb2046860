//! The HL7 CDS Hooks 2.0 service: doctors ordering in an EHR that does not speak the national
//! 3101/3103 interface see the bureau's rules as cards, and answer them through feedback.
//!
//! A service call is a 3101 in another dress: `wire::cds::to_analysis` writes the national envelope
//! (3101 for `order-select`/`order-sign`, 3102 for `encounter-discharge`), and [`evaluate`] runs it
//! through the life cycle of a 3101 on the intercepted route — `pipeline::prepare_with` (facts,
//! the item catalogue, history within the set's lookback), `decide_each`, `analysis::answer`
//! (each hit's `jr_id` remembered in the durable override store), and the journal record with its
//! `jr_id` links. A card's `uuid` *is* its `jr_id`, so feedback is a 3103 answer to that `jr_id`
//! ([`feedback_answers`] → `wire::cds::to_feedback` → `pipeline::analysis::local`): the later fee
//! upload or settlement of the same lines is let through, and the office counts the answer.
//!
//! Architecture Invariant: knows no HTTP (`gate::cds` carries these over the wire) and no JSON
//! field names beyond the card texts it writes (`wire::cds` owns both vocabularies).

pub mod cards;
pub mod replay;

use crate::claim::Claim;
use crate::history::History;
use crate::journal::Record;
use crate::pipeline::analysis::{self, Answered};
use crate::pipeline::overrides::Overrides;
use crate::rules::CompiledRuleSet;
use crate::store::Pseudonymizer;
use crate::wire::cds::{self as w, Discovery, FeedbackEntry, HookRequest, Mapped, Service};
use crate::wire::ParseError;

/// The suspension threshold of 驾照式记分 in a calendar year (医保发〔2024〕23号).
pub const SUSPENSION_POINTS: i64 = 9;
/// The termination threshold.
pub const TERMINATION_POINTS: i64 = 12;

/// The services claimgate offers: `(hook, id, title, description)`.
pub const SERVICES: [(&str, &str, &str, &str); 3] = [
    (
        "order-select",
        "claimgate-order-select",
        "医保智能审核（选择医嘱）",
        "选择医嘱时按医保局两库规则与本地规则检查：限性别、限年龄、限适应症、限频次、重复收费、超量开药等，提示违规风险与驾照式记分",
    ),
    (
        "order-sign",
        "claimgate-order-sign",
        "医保智能审核（签署医嘱）",
        "签署医嘱前按医保局规则检查全部待签医嘱，拦截性规则给出修改建议，可提醒规则可填写理由继续执行（等同3103反馈）",
    ),
    (
        "encounter-discharge",
        "claimgate-encounter-discharge",
        "医保智能审核（出院）",
        "出院时检查出院带药与本次住院的医保规则（出院带药天数、限适应症等）",
    ),
];

/// The hook a service id serves.
pub fn hook_of(id: &str) -> Option<&'static str> {
    SERVICES.iter().find(|s| s.1 == id).map(|s| s.0)
}

/// `GET {base}`.
pub fn discovery() -> Discovery {
    Discovery {
        services: SERVICES
            .iter()
            .map(|&(hook, id, title, description)| Service {
                hook,
                title,
                description,
                id,
                prefetch: w::prefetch_templates(),
            })
            .collect(),
    }
}

/// A service call evaluated.
pub struct Evaluated {
    pub mapped: Mapped,
    pub claims: Vec<Claim>,
    pub answered: Answered,
    /// The journal record (with its `jr_id` links), ready to write.
    pub record: Record,
}

/// Why a call could not be evaluated: the request's facts could not make a claim (no patient, a
/// date that is not one); said on a card, never a silent pass.
pub struct NotChecked {
    pub mapped: Mapped,
    pub error: ParseError,
}

/// Where a call is evaluated: the rule set, history, the override store, the journal's pseudonyms.
pub struct Env<'a> {
    pub rs: &'a CompiledRuleSet,
    pub history: &'a History,
    pub overrides: &'a Overrides,
    pub pseudo: &'a Pseudonymizer,
    pub fixmedins_code: &'a str,
    /// The time of the call, `yyyy-MM-dd HH:mm:ss` (the service time of an order that gives none).
    pub now: &'a str,
}

/// A random (version 4) UUID: a card's `uuid`, which is also its `jr_id`.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    // The OS generator only fails where nothing could run; a zero UUID would still be unique per
    // the time-based msgid next to it, but never happens in practice.
    let _ = getrandom::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The `msgid` of the envelope a call becomes: the institution's code (or `CDS`), the time and
/// a sequence, as the national layout has it.
fn msgid(fix: &str) -> String {
    analysis::next_id(if fix.is_empty() { "CDS" } else { fix })
}

/// Evaluates a hook request as the 3101 it becomes. Blocks on the store: run it on the blocking pool.
///
/// # Errors
/// [`NotChecked`]: the facts could not make a claim (the card says why).
pub fn evaluate(req: &HookRequest, hook: &str, env: &Env<'_>) -> Result<Evaluated, Box<NotChecked>> {
    let inpatient = w::inpatient(req);
    // 3101 事前 for the ordering hooks (住院执行医嘱 / 门诊收费登记), 3102 事中 for discharge (住院预结算).
    let (infno, trig_scen) = match hook {
        "encounter-discharge" => ("3102", "9"),
        _ if inpatient => ("3101", "5"),
        _ => ("3101", "2"),
    };
    let id = msgid(env.fixmedins_code);
    let head = w::EnvelopeHead { infno, msgid: &id, fixmedins_code: env.fixmedins_code, now: env.now, trig_scen };
    let mapped = w::to_analysis(req, &head);
    let not_checked = |mapped: Mapped, error| Err(Box::new(NotChecked { mapped, error }));
    let parsed = match crate::wire::parse_head(&mapped.envelope) {
        Ok(h) => {
            crate::pipeline::prepare_with(&h, env.history, env.rs.lookback_days(), None).map(|p| (p, h.detached()))
        }
        Err(e) => Err(e),
    };
    let (claims, task_id, head) = match parsed {
        Ok((crate::pipeline::Prepared::Claims { claims, task_id, .. }, head)) => (claims, task_id, head),
        Ok(_) => return not_checked(mapped, ParseError::Missing("patient_dtos".into())),
        Err(e) => return not_checked(mapped, e),
    };
    let mut claims = claims;
    fill_from_history(&mut claims, &mapped, env.history);
    let decisions = crate::pipeline::decide_each(env.rs, &claims);
    let answered =
        analysis::answer(env.rs, &claims, decisions, task_id.as_deref().unwrap_or(""), env.overrides, &mut uuid);
    let mut record =
        crate::pipeline::exchange::record_of(&head, &claims, Some(&answered.merged), &env.rs.revision(), env.pseudo);
    record.jr = answered.jr.clone();
    Ok(Evaluated { mapped, claims, answered, record })
}

/// What the request did not say and claimgate learnt from the visit's own messages (2201/2203/2401):
/// the diagnoses when no conditions were prefetched (none prefetched is not "no diagnoses"), the
/// 医疗类别 when no encounter was, the admission time when the encounter has no period. What
/// neither knows stays unknown, and its rules say so.
fn fill_from_history(claims: &mut [Claim], mapped: &Mapped, facts: &dyn crate::claim::Facts) {
    let no_conditions = mapped.missing_prefetch.contains(&"conditions");
    for c in claims.iter_mut() {
        let known = facts.visit(&c.encounter.mdtrt_id);
        let has_diagnoses = c.encounter.diagnoses.as_ref().is_some_and(|d| !d.is_empty());
        if no_conditions && !has_diagnoses {
            c.encounter.diagnoses = known.as_ref().and_then(|k| k.encounter.diagnoses.clone());
        }
        if c.encounter.visit.is_none() {
            if let Some(k) = &known {
                c.encounter.visit = k.encounter.visit;
                c.encounter.med_type = c.encounter.med_type.take().or_else(|| k.encounter.med_type.clone());
            }
        }
        if c.patient.insutype.is_none() {
            c.patient.insutype = known.as_ref().and_then(|k| k.insutype.clone());
        }
        // The stay's start (低标准入院 at discharge counts its days) when the encounter gave no period.
        if c.encounter.admitted.is_none() {
            c.encounter.admitted = known.as_ref().and_then(|k| k.encounter.admitted);
        }
    }
}

/// A feedback entry that cannot become a 3103 answer.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedbackError {
    /// `outcome` is neither `accepted` nor `overridden`.
    Outcome(usize),
    /// `overridden` without a reason or a comment: 继续执行 needs a reason.
    NoReason(usize),
}

impl FeedbackError {
    /// The message for the EHR (Chinese: the doctor may see it).
    pub fn message(&self) -> String {
        match self {
            FeedbackError::Outcome(i) => format!("feedback[{i}]：outcome 应为 accepted 或 overridden"),
            FeedbackError::NoReason(i) => {
                format!("feedback[{i}]：选择继续执行（overridden）须填写理由（overrideReason 或 userComment）")
            }
        }
    }
}

/// Each feedback entry as a 3103 answer: `accepted` → 2 返回修改医嘱 (the doctor took a suggestion or
/// changed the order), `overridden` → 1 继续执行 with the reason's display (or code) and the comment.
///
/// # Errors
/// The first entry that cannot be an answer.
pub fn feedback_answers(entries: &[FeedbackEntry]) -> Result<Vec<w::Answer<'_>>, FeedbackError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, f)| match f.outcome.as_str() {
            "accepted" => Ok(w::Answer { jr_id: &f.card, continue_with: None }),
            "overridden" => {
                let r = f.override_reason.as_ref();
                let reason = r.and_then(|r| r.reason.as_ref()).map(|c| {
                    c.display.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| cards::reason_text(&c.code))
                });
                let comment = r.and_then(|r| r.user_comment.clone()).filter(|c| !c.trim().is_empty());
                let text = match (reason, comment) {
                    (Some(r), Some(c)) => format!("{r}：{c}"),
                    (Some(t), None) | (None, Some(t)) => t,
                    (None, None) => return Err(FeedbackError::NoReason(i)),
                };
                // 3103's dspo_way_rea is at most 500 characters.
                Ok(w::Answer { jr_id: &f.card, continue_with: Some(text.chars().take(500).collect()) })
            }
            _ => Err(FeedbackError::Outcome(i)),
        })
        .collect()
}

/// The 3103 envelope for the answers.
pub fn feedback_envelope(answers: &[w::Answer<'_>], fixmedins_code: &str, now: &str) -> Vec<u8> {
    w::to_feedback(answers, &msgid(fixmedins_code), fixmedins_code, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::cds::{Coding, OverrideReason};

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn an_override_needs_a_reason_and_acceptance_is_a_modification() {
        let entry = |outcome: &str, reason: Option<OverrideReason>| FeedbackEntry {
            card: "c1".into(),
            outcome: outcome.into(),
            override_reason: reason,
            ..FeedbackEntry::default()
        };
        let coded = OverrideReason {
            reason: Some(Coding { system: None, code: "clinical-need".into(), display: None }),
            user_comment: Some("患者夜间病情变化".into()),
        };
        let entries = [entry("overridden", Some(coded)), entry("accepted", None)];
        let a = feedback_answers(&entries).unwrap();
        assert_eq!(a[0].continue_with.as_deref(), Some("病情需要，继续执行：患者夜间病情变化"));
        assert_eq!(a[1].continue_with, None);
        assert_eq!(feedback_answers(&[entry("overridden", None)]).err(), Some(FeedbackError::NoReason(0)));
        assert_eq!(feedback_answers(&[entry("ignored", None)]).err(), Some(FeedbackError::Outcome(0)));
    }
}
