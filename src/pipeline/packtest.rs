//! The pack test runner: every case in `rulesets/<pack>/tests/*.yaml` is run through the same
//! path as a real message (context exchanges learnt, then [`super::exchange::check`]: envelope
//! parsed, claim normalised with history, evaluated).
//! `claimgate rules test` and `cargo test` both use it.

use super::exchange::{check, Checked};
use super::overrides::Overrides;
use crate::history::History;
use crate::rules::source::TestCase;
use crate::rules::{CompiledRuleSet, PackSource};
use crate::wire::{parse_head, ResponseEnvelope};

/// One failed case.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: String,
    pub case: String,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: case {:?}: {}", self.file, self.case, self.reason)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<Failure>,
    /// Rule ids of the set that no passing case expects to fire.
    pub untested: Vec<String>,
}

/// Runs one case; `Err` is why it failed.
///
/// # Errors
/// The mismatch between expected and actual outcome.
pub fn run_case(rs: &CompiledRuleSet, case: &TestCase, tier: Option<u8>) -> Result<(), String> {
    let ctx = History::ephemeral(tier);
    for (i, ex) in case.context.iter().enumerate() {
        let req = serde_json::to_vec(&ex.request).map_err(|e| e.to_string())?;
        let head = parse_head(&req).map_err(|e| format!("context[{i}].request: {e}"))?;
        let resp: Option<ResponseEnvelope> = match &ex.response {
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| format!("context[{i}].response: {e}"))?),
            None => None,
        };
        ctx.learn(&head, resp.as_ref(), None).map_err(|e| format!("context[{i}]: {e}"))?;
    }
    let body = serde_json::to_vec(&case.envelope).map_err(|e| e.to_string())?;
    let head = parse_head(&body).map_err(|e| format!("envelope: {e}"))?;
    let answer: Option<ResponseEnvelope> = match &case.answer {
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| format!("answer: {e}"))?),
        None => None,
    };
    // The same check as the proxy's (no doctor has answered anything in a test case).
    let d = match check(&head, rs, &ctx, &Overrides::default(), answer.as_ref(), |_, _| {}) {
        Checked::Done { claims, decision, .. } if !claims.is_empty() => decision,
        Checked::Done { .. } => {
            return Err(format!("envelope: infno {} is not a checked transaction", head.infno.as_str()))
        }
        Checked::Encrypted(e) | Checked::Bad(e) => return Err(format!("envelope: {e}")),
        Checked::Failed(why) => return Err(format!("envelope: the check failed ({why})")),
    };
    let want = &case.expect;
    let mut problems = Vec::new();
    if let Some(decision) = want.decision.as_deref().filter(|w| *w != d.decision.as_str()) {
        problems.push(format!("decision {} (want {decision})", d.decision.as_str()));
    }
    for w in &want.hits_include {
        let lines = sorted(&w.lines);
        if !d.hits.iter().any(|h| *h.rule_id == *w.rule_id && (lines.is_empty() || sorted(&h.lines) == lines)) {
            problems.push(format!("no hit of {} on {:?}", w.rule_id, w.lines));
        }
    }
    for id in &want.hits_exclude {
        if let Some(h) = d.hits.iter().find(|h| *h.rule_id == **id) {
            problems.push(format!("{id} hit {:?} (it must not)", h.lines));
        }
    }
    if let Some(hits) = &want.hits {
        let mut got: Vec<(String, Vec<String>)> =
            d.hits.iter().map(|h| (h.rule_id.to_string(), sorted(&h.lines))).collect();
        let mut exp: Vec<(String, Vec<String>)> = hits.iter().map(|h| (h.rule_id.clone(), sorted(&h.lines))).collect();
        got.sort();
        exp.sort();
        if got != exp {
            problems.push(format!("hits {got:?} (want {exp:?})"));
        }
    }
    for f in &want.unchecked {
        if !d.unchecked.iter().any(|u| u.fact == f) {
            problems.push(format!(
                "fact {f} not reported unchecked (unchecked: {:?})",
                d.unchecked.iter().map(|u| u.fact).collect::<Vec<_>>()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; ")
            + &format!("\n    messages: {:?}", d.hits.iter().map(|h| &h.message).collect::<Vec<_>>()))
    }
}

fn sorted<S: AsRef<str>>(v: &[S]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.as_ref().to_owned()).collect();
    v.sort();
    v
}

/// Runs every case of `packs` against `rs` (the packs compiled together).
pub fn run(rs: &CompiledRuleSet, packs: &[PackSource], tier: Option<u8>) -> Report {
    let mut r = Report::default();
    let mut fired = std::collections::BTreeSet::new();
    for p in packs {
        for (file, tf) in &p.test_files {
            for case in &tf.cases {
                match run_case(rs, case, tier) {
                    Ok(()) => {
                        r.passed += 1;
                        for h in case.expect.hits.iter().flatten().chain(&case.expect.hits_include) {
                            fired.insert(h.rule_id.clone());
                        }
                    }
                    Err(reason) => r.failures.push(Failure {
                        file: format!("{}/{file}", p.manifest.name),
                        case: case.name.clone(),
                        reason,
                    }),
                }
            }
        }
    }
    r.untested = rs.rules.iter().map(|x| x.id.to_string()).filter(|id| !fired.contains(id)).collect();
    r
}
