//! 3103 doctor answers. A 3101/3102 hit gets a `jr_id`; when the doctor answers "1 继续执行" with a
//! reason, the same lines (same item, quantity and amount) pass that rule at 事中 time for that
//! visit. A change to a line voids it. Non-overridable blocks are recorded but stay blocked.

use crate::claim::Claim;
use crate::rules::{Action, Decision, Outcome};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// What a `jr_id` stood for.
#[derive(Debug, Clone)]
pub struct JrRecord {
    pub rule_id: String,
    pub mdtrt_id: String,
    /// `(line id, fingerprint)`.
    pub lines: Vec<(String, u64)>,
    pub overridable: bool,
}

pub struct Overrides {
    jrs: Cache<String, Arc<JrRecord>>,
    /// `mdtrt_id \x1f rule_id` → granted lines.
    granted: Cache<String, Arc<Vec<(String, u64)>>>,
}

/// A line's identity for override purposes: item, quantity, amount.
pub fn fingerprint(claim: &Claim, line_id: &str) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let l = claim.lines.iter().find(|l| l.id == line_id)?;
    let mut h = rustc_hash::FxHasher::default();
    l.code.hash(&mut h);
    l.qty.hash(&mut h);
    l.amount.hash(&mut h);
    Some(h.finish())
}

fn key(mdtrt_id: &str, rule_id: &str) -> String {
    format!("{mdtrt_id}\x1f{rule_id}")
}

/// The answer to one `warns[]` entry.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedbackOutcome {
    Granted,
    Modify,
    NotOverridable,
    UnknownJr,
    MissingReason,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            jrs: Cache::builder().max_capacity(1_000_000).time_to_live(Duration::from_secs(7 * 24 * 3600)).build(),
            granted: Cache::builder().max_capacity(1_000_000).time_to_live(Duration::from_secs(7 * 24 * 3600)).build(),
        }
    }
}

impl Overrides {
    pub fn remember(&self, jr_id: &str, rec: JrRecord) {
        self.jrs.insert(jr_id.to_owned(), Arc::new(rec));
    }

    /// Records a doctor's answer (`dspo_way` 1 continue, 2 modify).
    pub fn answer(&self, jr_id: &str, dspo_way: &str, reason: &str) -> FeedbackOutcome {
        let Some(rec) = self.jrs.get(jr_id) else { return FeedbackOutcome::UnknownJr };
        match dspo_way {
            "1" if reason.trim().is_empty() => FeedbackOutcome::MissingReason,
            "1" if !rec.overridable => FeedbackOutcome::NotOverridable,
            "1" => {
                let k = key(&rec.mdtrt_id, &rec.rule_id);
                let mut lines = self.granted.get(&k).map(|a| (*a).clone()).unwrap_or_default();
                for l in &rec.lines {
                    if !lines.contains(l) {
                        lines.push(l.clone());
                    }
                }
                self.granted.insert(k, Arc::new(lines));
                FeedbackOutcome::Granted
            }
            _ => FeedbackOutcome::Modify,
        }
    }

    /// Removes the hits the doctor answered for, when every line of the hit is unchanged.
    /// Returns the rule ids that were overridden.
    pub fn apply(&self, claim: &Claim, d: &mut Decision) -> Vec<String> {
        let mut removed = Vec::new();
        d.hits.retain(|h| {
            if !(h.overridable || h.action == Action::Remind) || h.lines.is_empty() {
                return true;
            }
            let Some(granted) = self.granted.get(&key(&claim.encounter.mdtrt_id, &h.rule_id)) else { return true };
            let all = h
                .lines
                .iter()
                .all(|l| fingerprint(claim, l).is_some_and(|fp| granted.iter().any(|(gl, gfp)| gl == l && *gfp == fp)));
            if all {
                removed.push(h.rule_id.to_string());
            }
            !all
        });
        if !removed.is_empty() {
            d.decision = d.hits.iter().map(|h| Outcome::from(h.action)).max().unwrap_or(Outcome::Pass);
        }
        removed
    }
}
