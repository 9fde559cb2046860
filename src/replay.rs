//! `claimgate replay`: a recorded stream of exchanges (one JSON per line, in time order) run through a
//! rule set with a fresh history, and the impact per rule — before a pack goes live.
//!
//! Each line is an exchange `{"request": envelope, "response": envelope}` or a bare request envelope
//! (taken as accepted). Checked transactions are evaluated the way the proxy would (pre-settlement on
//! its recorded answer); then the exchange is learnt as it actually happened, so the history is the
//! real one and not one rewritten by the candidate pack's blocks.

use crate::history::History;
use crate::pipeline::exchange::{self, Checked};
use crate::rules::{Action, CompiledRuleSet};
use crate::wire::{Infno, ResponseEnvelope};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::io::BufRead;
use std::time::Instant;

/// The impact of one rule over the stream.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RuleImpact {
    pub rule_id: String,
    pub rule_name: String,
    pub action: String,
    /// Claims the rule hit: one per visit and set of lines, so a pre-settlement and the settlement
    /// that follows it with the same lines count once.
    pub hits: u64,
    /// Messages the rule hit (a pre-settlement and its settlement count twice).
    pub messages: u64,
    /// Distinct visits the rule hit.
    pub visits: u64,
    /// Distinct patients (pseudonymised) it hit.
    pub patients: u64,
    /// Money at stake on its hits, 元.
    pub amount: String,
    /// Hits on patients who had no other rule's hit in the whole stream: the ordinary patients a
    /// rule falls on — the figure that would have warned 新乡 about a 50 元 daily cap.
    pub hits_sole: u64,
    /// Of `patients`, those with no other rule's hit.
    pub patients_sole: u64,
}

/// The stream's totals: `lines = bad_lines + relayed + checked` and `checked = passed + reminded +
/// blocked` (messages); the visits the checked messages belong to, and those with a block or (only)
/// a reminder. Rules count claims (`RuleImpact::hits`), messages and visits: a message can hit
/// several rules, and a visit's pre-settlement and settlement are two messages of one claim.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub ruleset: String,
    /// Non-empty lines read.
    pub lines: u64,
    /// Readable messages that are not claim transactions (1101, 2201, 2203, 2402, 2205, 2208 …):
    /// learnt from, not checked.
    pub relayed: u64,
    /// Checked claim transactions (2204/2301, 2206/2207, 2303/2304, 2401, 3101/3102).
    pub checked: u64,
    /// Checked messages without a hit.
    pub passed: u64,
    /// Checked messages with a blocking hit.
    pub blocked: u64,
    /// Checked messages with reminders only.
    pub reminded: u64,
    /// Distinct visits of the checked messages (a 2401 is its own visit until the gateway names it).
    pub visits: u64,
    /// Visits with at least one blocked message.
    pub visits_blocked: u64,
    /// Visits with a reminder and no block.
    pub visits_reminded: u64,
    pub patients: u64,
    /// Lines that could not be read (reported, not fatal), with the first few reasons.
    pub bad_lines: u64,
    /// Read and counted, but history could not learn from them (the store failed).
    pub history_errors: u64,
    pub bad_examples: Vec<String>,
    pub rules: Vec<RuleImpact>,
    pub elapsed_ms: u64,
}

#[derive(Default)]
struct Acc {
    hits: u64,
    messages: u64,
    amount: i64,
    /// patient → hits on them.
    by_patient: FxHashMap<String, u64>,
    visits: FxHashSet<String>,
}

/// Lines between two calls of the progress callback.
pub const PROGRESS_EVERY: u64 = 10_000;

/// Runs the stream.
///
/// # Errors
/// The stream cannot be read.
pub fn run(rs: &CompiledRuleSet, input: impl BufRead, tier: Option<u8>) -> std::io::Result<Report> {
    run_with_progress(rs, input, tier, &mut |_, _| {})
}

/// Runs the stream, calling `progress(lines, bytes)` every [`PROGRESS_EVERY`] lines read.
///
/// # Errors
/// The stream cannot be read.
pub fn run_with_progress(
    rs: &CompiledRuleSet,
    input: impl BufRead,
    tier: Option<u8>,
    progress: &mut dyn FnMut(u64, u64),
) -> std::io::Result<Report> {
    let t0 = Instant::now();
    let history = History::ephemeral(tier);
    // No doctor answers in a recorded stream: the same check as the proxy's, with no overrides.
    let overrides = crate::pipeline::overrides::Overrides::default();
    let mut rep = Report { ruleset: rs.revision(), ..Report::default() };
    let mut tally = Tally::default();
    let mut bytes_read = 0u64;
    let bad = |rep: &mut Report, n: u64, why: String| {
        rep.bad_lines += 1;
        if rep.bad_examples.len() < 5 {
            rep.bad_examples.push(format!("line {n}: {why}"));
        }
    };
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let n = n as u64 + 1;
        bytes_read += line.len() as u64 + 1;
        if n % PROGRESS_EVERY == 0 {
            progress(n, bytes_read);
        }
        if line.trim().is_empty() {
            continue;
        }
        rep.lines += 1;
        let v: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                bad(&mut rep, n, format!("not JSON: {e}"));
                continue;
            }
        };
        let (req, resp) = crate::wire::split_exchange(v);
        let resp: Option<ResponseEnvelope> = resp.and_then(|r| serde_json::from_value(r).ok());
        let bytes = serde_json::to_vec(&req).unwrap_or_default();
        let ex = match exchange::Exchange::begin(bytes.into(), None) {
            Ok(ex) => ex,
            Err(e) => {
                bad(&mut rep, n, e.to_string());
                continue;
            }
        };
        let head = ex.head();
        let infno = Infno::parse(head.infno.as_str());
        let (mut claims, mut d) = (Vec::new(), None);
        if infno.is_checked() || infno.is_local_analysis() {
            let answer =
                resp.as_ref().filter(|_| matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle));
            match exchange::check(head, rs, &history, &overrides, answer, |_, _| {}) {
                Checked::Done { claims: c, decision, .. } => (claims, d) = (c, Some(decision)),
                Checked::Bad(e) | Checked::Encrypted(e) => {
                    bad(&mut rep, n, e.to_string());
                    continue;
                }
                Checked::Failed(why) => {
                    bad(&mut rep, n, format!("check failed: {why}"));
                    continue;
                }
            }
        }
        if let Some(d) = d.filter(|_| !claims.is_empty()) {
            rep.checked += 1;
            let who = history.psn_key(&claims[0].patient.psn_no);
            // A 2401 has no mdtrt_id yet (the gateway gives it): the message is the visit then.
            let visit = match claims[0].encounter.mdtrt_id.as_str() {
                "" => format!("msg:{}", head.msgid.as_str()),
                id => id.to_owned(),
            };
            tally.judged(&mut rep, who, visit, &d);
        } else {
            // Not a claim transaction, or one without a claim to judge: learnt from only.
            rep.relayed += 1;
        }
        // History is what happened: learnt from the recorded exchange, whatever the pack said.
        // A checked message is learnt from the claims its check built (not read again).
        let learnt = infno.is_checked().then_some(claims);
        if let Err(e) = history.learn(head, resp.as_ref(), learnt) {
            rep.history_errors += 1;
            if rep.bad_examples.len() < 5 {
                rep.bad_examples.push(format!("line {n}: history: {e}"));
            }
        }
    }
    if rep.lines > 0 && rep.lines % PROGRESS_EVERY != 0 {
        progress(rep.lines, bytes_read);
    }
    tally.finish(rs, &mut rep);
    rep.rules.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.rule_id.cmp(&b.rule_id)));
    rep.elapsed_ms = t0.elapsed().as_millis() as u64;
    Ok(rep)
}

/// What the replay counts as it goes: per rule, per patient and per visit.
#[derive(Default)]
struct Tally {
    acc: FxHashMap<String, Acc>,
    /// patient → the rules that hit them.
    rules_of: FxHashMap<String, FxHashSet<String>>,
    patients: FxHashSet<String>,
    /// visit → 2 blocked, 1 reminded, 0 passed (the strongest outcome of its messages).
    visits: FxHashMap<String, u8>,
    /// (rule, visit, lines) already counted.
    counted: FxHashSet<(String, String, Vec<String>)>,
}

impl Tally {
    /// Counts a judged message of patient `who` (pseudonym) at `visit`.
    fn judged(&mut self, rep: &mut Report, who: String, visit: String, d: &crate::rules::Decision) {
        self.patients.insert(who.clone());
        let outcome = if d.hits.iter().any(|h| h.action == Action::Block) {
            rep.blocked += 1;
            2
        } else if !d.hits.is_empty() {
            rep.reminded += 1;
            1
        } else {
            rep.passed += 1;
            0
        };
        let v = self.visits.entry(visit.clone()).or_default();
        *v = (*v).max(outcome);
        let mut in_message: FxHashSet<&str> = FxHashSet::default();
        for h in &d.hits {
            let a = self.acc.entry(h.rule_id.to_string()).or_default();
            if in_message.insert(&h.rule_id) {
                a.messages += 1;
            }
            a.visits.insert(visit.clone());
            let mut lines: Vec<String> = h.lines.iter().map(ToString::to_string).collect();
            lines.sort_unstable();
            if !self.counted.insert((h.rule_id.to_string(), visit.clone(), lines)) {
                continue;
            }
            a.amount += h.amount.get();
            a.hits += 1;
            *a.by_patient.entry(who.clone()).or_default() += 1;
            self.rules_of.entry(who.clone()).or_default().insert(h.rule_id.to_string());
        }
    }

    /// The totals by patient and visit, and each rule's impact, into `rep`.
    fn finish(self, rs: &CompiledRuleSet, rep: &mut Report) {
        let Tally { acc, rules_of, patients, visits, .. } = self;
        rep.patients = patients.len() as u64;
        rep.visits = visits.len() as u64;
        rep.visits_blocked = visits.values().filter(|o| **o == 2).count() as u64;
        rep.visits_reminded = visits.values().filter(|o| **o == 1).count() as u64;
        for r in &rs.rules {
            let Some(a) = acc.get(&*r.id) else { continue };
            let sole = |p: &String| rules_of.get(p).is_some_and(|s| s.len() == 1);
            rep.rules.push(RuleImpact {
                rule_id: r.id.to_string(),
                rule_name: r.name.to_string(),
                action: if r.action == Action::Block { "block".into() } else { "remind".into() },
                hits: a.hits,
                messages: a.messages,
                visits: a.visits.len() as u64,
                patients: a.by_patient.len() as u64,
                amount: crate::wire::num::format_fixed(a.amount, 2, 2),
                hits_sole: a.by_patient.iter().filter(|(p, _)| sole(p)).map(|(_, n)| n).sum(),
                patients_sole: a.by_patient.keys().filter(|p| sole(p)).count() as u64,
            });
        }
    }
}

/// Whether the stream gave anything to replay (a file of unreadable lines, or an empty one, did not).
pub fn readable(r: &Report) -> bool {
    r.lines > r.bad_lines
}

/// `  {label}：{part} N 条 + … = {total} 条`: a total with the parts it is made of, so a reader sees
/// that they add up.
fn sum_line(s: &mut String, label: &str, parts: &[(&str, u64)]) {
    use std::fmt::Write;
    let text = parts.iter().map(|(name, n)| format!("{name} {n} 条")).collect::<Vec<_>>().join(" + ");
    let _ = writeln!(s, "  {label}：{text} = {} 条", parts.iter().map(|p| p.1).sum::<u64>());
}

/// The report as a table an office reads: the totals by message and by visit, how they relate, and
/// the impact per rule.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "规则集 {}：回放 {} 条报文，用时 {} ms", r.ruleset, r.lines, r.elapsed_ms);
    sum_line(&mut s, "报文", &[("无法读取", r.bad_lines), ("非结算类仅学习", r.relayed), ("审核", r.checked)]);
    sum_line(&mut s, "审核的报文", &[("通过", r.passed), ("提醒", r.reminded), ("拦截", r.blocked)]);
    let _ = writeln!(
        s,
        "  就诊：审核涉及 {} 次就诊（{} 名患者），其中有拦截的 {} 次，仅有提醒的 {} 次",
        r.visits, r.patients, r.visits_blocked, r.visits_reminded
    );
    if r.bad_lines > 0 || r.history_errors > 0 {
        let _ = writeln!(
            s,
            "无法读取 {} 条，历史学习失败 {} 条：{}",
            r.bad_lines,
            r.history_errors,
            r.bad_examples.join("；")
        );
    }
    let _ = writeln!(
        s,
        "\n{:<24} {:<6} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12} {:>12}  规则名称",
        "规则编号", "动作", "命中笔数", "报文数", "就诊数", "患者数", "涉及金额(元)", "仅此规则笔数", "仅此规则患者"
    );
    for x in &r.rules {
        let act = if x.action == "block" { "拦截" } else { "提醒" };
        let _ = writeln!(
            s,
            "{:<24} {:<6} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12} {:>12}  {}",
            x.rule_id,
            act,
            x.hits,
            x.messages,
            x.visits,
            x.patients,
            x.amount,
            x.hits_sole,
            x.patients_sole,
            x.rule_name
        );
    }
    let _ = writeln!(
        s,
        "\n口径：“拦截 {} 条”按报文计，同一就诊的预结算与结算各算一条；“命中笔数”按就诊与明细计，预结算与随后同样明细的结算只算一笔；\
         “报文数”为命中该规则的报文，一条报文可命中多条规则，故各拦截规则的报文数之和不小于拦截报文数；“就诊数”为命中该规则的就诊。",
        r.blocked
    );
    let _ =
        writeln!(s, "“仅此规则”：该患者在整个回放中没有触发其他任何规则——规则主要落在普通患者身上时，这一列会很高。");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(seed: u64, patients: usize, days: u32) -> Vec<u8> {
        let mut out = Vec::new();
        crate::gen::month(seed, patients, days, &mut |v| {
            out.extend(serde_json::to_vec(&v).unwrap_or_default());
            out.push(b'\n');
        });
        out
    }

    #[test]
    fn a_generated_week_gives_a_consistent_impact_report() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rulesets");
        let (_, rs) =
            crate::rules::load(&[root.join("national-baseline"), root.join("examples/xinxiang-2025")]).expect("packs");
        let bytes = stream(7, 300, 7);
        let r = run(&rs, &bytes[..], Some(2)).expect("replay");
        assert_eq!(r.bad_lines, 0, "{:?}", r.bad_examples);
        assert!(r.checked > 500 && r.patients > 50, "{r:?}");
        let cap =
            r.rules.iter().find(|x| x.rule_id == "DAILY-CAP-390").expect("the 50 元 cap falls on the chronic patients");
        assert!(cap.hits > 0 && cap.patients > 0 && cap.patients_sole <= cap.patients && cap.hits_sole <= cap.hits);
        for x in &r.rules {
            assert!(x.patients <= x.hits, "{x:?}");
        }
        // Deterministic: the same stream gives the same figures.
        let again = run(&rs, &bytes[..], Some(2)).expect("replay");
        let figures =
            |r: &Report| r.rules.iter().map(|x| (x.rule_id.clone(), x.hits, x.amount.clone())).collect::<Vec<_>>();
        assert_eq!(figures(&r), figures(&again));
        // A garbage line is counted, not fatal.
        let mut broken = bytes.clone();
        broken.extend_from_slice(b"{not json\n");
        assert_eq!(run(&rs, &broken[..], Some(2)).expect("replay").bad_lines, 1);
        assert!(table(&r).contains("DAILY-CAP-390"));
    }
}
