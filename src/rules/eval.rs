//! Evaluation: claim + compiled rule set → decision. No I/O, no failure, no panic on bad data,
//! no allocation on a clean claim beyond the decision itself (scratch space is per thread and reused).

use super::compile::{class_bit, CompiledRule, CompiledRuleSet, Entry, Matcher, WhenC};
use super::decision::{Decision, Fact, Hit, Outcome, RulesetRef, Unchecked};
use super::kinds::{Out, PastIndex, RuleCx, Scope, NO_ROW};
use crate::claim::{Claim, Line};
use std::cell::RefCell;
use std::time::Instant;

#[derive(Default)]
struct Scratch {
    cands: Vec<Entry>,
    /// `(rule, line, tag)` for group-scope rules.
    members: Vec<(u32, u32, u32)>,
    group: Vec<(u32, u32)>,
    out: Out,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Indexed,
    /// Every rule against every line through its own matcher list: the reference the index is
    /// tested against.
    Naive,
}

/// Evaluates `claim` against `rs`.
pub fn evaluate(rs: &CompiledRuleSet, claim: &Claim) -> Decision {
    run(rs, claim, Mode::Indexed)
}

/// The unindexed reference evaluator (for differential tests and benches).
#[doc(hidden)]
pub fn evaluate_naive(rs: &CompiledRuleSet, claim: &Claim) -> Decision {
    run(rs, claim, Mode::Naive)
}

fn run(rs: &CompiledRuleSet, claim: &Claim, mode: Mode) -> Decision {
    let start = Instant::now();
    SCRATCH.with(|cell| {
        // A panic inside a kind would leave the RefCell borrowed only for its own unwinding; a
        // fresh scratch is taken if it is somehow still borrowed.
        match cell.try_borrow_mut() {
            Ok(mut s) => {
                collect(rs, claim, mode, &mut s);
                render(rs, claim, &mut s.out, start)
            }
            Err(_) => {
                let mut s = Scratch::default();
                collect(rs, claim, mode, &mut s);
                render(rs, claim, &mut s.out, start)
            }
        }
    })
}

fn matches_naive(rs: &CompiledRuleSet, m: &Matcher, line: &Line) -> bool {
    match m {
        Matcher::Exact(c) => line.code == **c,
        Matcher::His(c) => !line.his_code.is_empty() && line.his_code == **c,
        Matcher::Prefix(p) => line.code.starts_with(&**p),
        Matcher::CodeRe(i) => rs.code_res[*i].is_match(&line.code),
        Matcher::NameRe(i) => line.name.as_deref().is_some_and(|n| rs.name_res[*i].is_match(n)),
    }
}

fn candidates(rs: &CompiledRuleSet, line: &Line, mode: Mode, cands: &mut Vec<Entry>) {
    cands.clear();
    match mode {
        Mode::Naive => {
            for (ri, r) in rs.rules.iter().enumerate() {
                if r.scope == Scope::Claim {
                    continue;
                }
                if r.selects_all {
                    cands.push(Entry { rule: ri as u32, tag: NO_ROW, prio: 0 });
                }
                for (m, tag, prio) in &r.matchers {
                    if matches_naive(rs, m, line) {
                        cands.push(Entry { rule: ri as u32, tag: *tag, prio: *prio });
                    }
                }
            }
        }
        Mode::Indexed => {
            let ix = &rs.index;
            let code = line.code.as_str();
            if let Some(v) = ix.exact.get(code) {
                cands.extend_from_slice(v);
            }
            if !line.his_code.is_empty() {
                if let Some(v) = ix.his.get(line.his_code.as_str()) {
                    cands.extend_from_slice(v);
                }
            }
            for &len in &ix.prefix_lens {
                if let Some(p) = code.get(..len) {
                    if let Some(v) = ix.prefix.get(p) {
                        cands.extend_from_slice(v);
                    }
                }
            }
            if let Some(set) = &ix.code_set {
                if set.is_match(code) {
                    for i in set.matches(code).iter() {
                        cands.extend_from_slice(&ix.code_entries[i]);
                    }
                }
            }
            if let (Some(set), Some(name)) = (&ix.name_set, line.name.as_deref()) {
                if set.is_match(name) {
                    for i in set.matches(name).iter() {
                        cands.extend_from_slice(&ix.name_entries[i]);
                    }
                }
            }
            for &r in &ix.all_lines {
                cands.push(Entry { rule: r, tag: NO_ROW, prio: 0 });
            }
        }
    }
    cands.sort_unstable_by_key(|e| (e.rule, e.prio, e.tag));
}

/// Claim-level `when`: `Ok(true)` in scope, `Ok(false)` out of scope, `Err(fact)` unknown.
fn when_claim(w: &WhenC, claim: &Claim) -> Result<bool, Fact> {
    if let Some(v) = w.visit {
        match claim.encounter.visit {
            None => return Err(Fact::Visit),
            Some(cv) if cv != v => return Ok(false),
            _ => {}
        }
    }
    if !w.med_types.is_empty() {
        match claim.encounter.med_type.as_deref() {
            None => return Err(Fact::MedType),
            Some(mt) if !w.med_types.iter().any(|m| &**m == mt) => return Ok(false),
            _ => {}
        }
    }
    if !w.insutypes.is_empty() {
        match claim.patient.insutype.as_deref() {
            None => return Err(Fact::Insutype),
            Some(it) if !w.insutypes.iter().any(|m| &**m == it) => return Ok(false),
            _ => {}
        }
    }
    Ok(true)
}

/// Whether the rule applies to this line at all (dates, classes, categories, scope).
fn applies(r: &CompiledRule, ri: u32, claim: &Claim, li: u32, line: &Line, out: &mut Out) -> bool {
    // A refund (退费) line is never a violation by itself; group kinds still count it.
    if r.scope == Scope::Line && line.is_refund() {
        return false;
    }
    if !r.in_effect(line.date()) {
        return false;
    }
    if r.classes != 0 && r.classes & class_bit(line.class) == 0 {
        return false;
    }
    if !r.categories.is_empty() {
        match line.category.as_deref() {
            None => {
                out.unchecked(ri, li, Fact::Category);
                return false;
            }
            Some(c) if !r.categories.iter().any(|x| &**x == c) => return false,
            _ => {}
        }
    }
    if !r.when.is_claim_trivial() {
        match when_claim(&r.when, claim) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(f) => {
                out.unchecked(ri, li, f);
                return false;
            }
        }
    }
    if !r.when.depts.is_empty() {
        if line.dept_code.is_empty() {
            out.unchecked(ri, li, Fact::Department);
            return false;
        }
        if !r.when.depts.matches(&line.dept_code) {
            return false;
        }
    }
    if !r.when.not_depts.is_empty() && r.when.not_depts.matches(&line.dept_code) {
        return false;
    }
    true
}

fn collect(rs: &CompiledRuleSet, claim: &Claim, mode: Mode, s: &mut Scratch) {
    s.out.clear();
    s.members.clear();
    let past = PastIndex::new(claim);
    for (li, line) in claim.lines.iter().enumerate() {
        let li = li as u32;
        candidates(rs, line, mode, &mut s.cands);
        let mut i = 0;
        while i < s.cands.len() {
            let e = s.cands[i];
            let r = &rs.rules[e.rule as usize];
            // The run of candidates of this rule.
            let mut j = i + 1;
            while j < s.cands.len() && s.cands[j].rule == e.rule {
                j += 1;
            }
            if applies(r, e.rule, claim, li, line, &mut s.out) {
                let cx = RuleCx { index: e.rule, row_names: &r.row_names, past: &past, names: &rs.names };
                let mut last_tag = None;
                for k in i..j {
                    let tag = s.cands[k].tag;
                    if last_tag == Some(tag) {
                        continue;
                    }
                    last_tag = Some(tag);
                    match r.scope {
                        Scope::Line => {
                            let before = s.out.hits.len();
                            r.logic.line(&cx, claim, li, tag, &mut s.out);
                            for h in &mut s.out.hits[before..] {
                                h.row = tag;
                            }
                        }
                        Scope::Group => s.members.push((e.rule, li, tag)),
                        Scope::Claim => {}
                    }
                    if !r.multi_tag {
                        break;
                    }
                }
            }
            i = j;
        }
    }
    s.members.sort_unstable();
    s.members.dedup();
    let mut i = 0;
    while i < s.members.len() {
        let rule = s.members[i].0;
        s.group.clear();
        while i < s.members.len() && s.members[i].0 == rule {
            s.group.push((s.members[i].1, s.members[i].2));
            i += 1;
        }
        let r = &rs.rules[rule as usize];
        let cx = RuleCx { index: rule, row_names: &r.row_names, past: &past, names: &rs.names };
        let before = s.out.hits.len();
        r.logic.group(&cx, claim, &s.group, &mut s.out);
        // A group hit names its row by the tag of its first line.
        for h in &mut s.out.hits[before..] {
            if let Some(&(_, tag)) = h.lines.first().and_then(|l| s.group.iter().find(|(li, _)| li == l)) {
                h.row = tag;
            }
        }
    }
    let claim_date = claim.encounter.admitted.map(|t| t.date()).or_else(|| claim.lines.first().map(Line::date));
    for &ri in &rs.index.claim_rules {
        let r = &rs.rules[ri as usize];
        if claim_date.is_some_and(|d| !r.in_effect(d)) {
            continue;
        }
        match when_claim(&r.when, claim) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(f) => {
                s.out.unchecked(ri, NO_ROW, f);
                continue;
            }
        }
        let cx = RuleCx { index: ri, row_names: &r.row_names, past: &past, names: &rs.names };
        r.logic.claim(&cx, claim, &mut s.out);
    }
}

fn render(rs: &CompiledRuleSet, claim: &Claim, out: &mut Out, start: Instant) -> Decision {
    // Stable, so hits of one rule on one first line keep the order the kind found them in.
    out.hits.sort_by_key(|h| (h.rule, h.lines.first().copied().unwrap_or(u32::MAX)));
    let mut decision = Outcome::Pass;
    let mut hits = Vec::with_capacity(out.hits.len());
    // The raw hits are moved out (the scratch is cleared before the next claim anyway), so the
    // evidence is not copied.
    for h in out.hits.drain(..) {
        let r = &rs.rules[h.rule as usize];
        decision = decision.max(r.action.into());
        let mut lines = Vec::with_capacity(h.lines.len());
        let mut line_amounts = Vec::with_capacity(h.lines.len());
        for l in h.lines.iter().filter_map(|&l| claim.lines.get(l as usize)) {
            lines.push(l.id.clone());
            line_amounts.push(l.amount);
        }
        hits.push(Hit {
            rule_id: r.id.clone(),
            rule_name: r.name.clone(),
            action: r.action,
            severity: r.severity,
            message: r.message.render(&r.name, &h.ev),
            lines,
            line_amounts,
            amount: h.amount,
            overridable: r.overridable,
            points: r.points,
            basis: r.row_basis(h.row),
            evidence: h.ev,
        });
    }
    let unchecked = if out.unchecked.is_empty() { Vec::new() } else { render_unchecked(rs, claim, &mut out.unchecked) };
    Decision {
        decision,
        ruleset: RulesetRef { name: rs.name.clone(), version: rs.version.clone() },
        hits,
        unchecked,
        elapsed_us: start.elapsed().as_micros() as u64,
    }
}

/// Groups `(rule, line, fact)` by fact: each group lists its lines (by id, each once, in line order)
/// and its rules (each once, in order of first appearance by line). Linear in the entries: a large
/// claim without facts has thousands (a line × every rule that needed the fact).
fn render_unchecked(rs: &CompiledRuleSet, claim: &Claim, u: &mut [(u32, u32, Fact)]) -> Vec<Unchecked> {
    u.sort_unstable_by_key(|&(rule, line, fact)| (fact, line, rule));
    let mut groups: Vec<Unchecked> = Vec::new();
    let mut seen_ids: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    // By id, as the contract lists them (two packs may both carry a rule id).
    let mut seen_rules: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    let mut i = 0;
    while i < u.len() {
        let fact = u[i].2;
        let mut g = Unchecked { fact: fact.field(), reason: fact.reason(), lines: vec![], rules: vec![] };
        seen_ids.clear();
        seen_rules.clear();
        let mut last_line = None;
        while i < u.len() && u[i].2 == fact {
            let (rule, line, _) = u[i];
            i += 1;
            if last_line != Some(line) {
                last_line = Some(line);
                if let Some(l) = claim.lines.get(line as usize) {
                    if seen_ids.insert(l.id.as_str()) {
                        g.lines.push(l.id.clone());
                    }
                }
            }
            if let Some(r) = rs.rules.get(rule as usize) {
                if seen_rules.insert(&r.id) {
                    g.rules.push(r.id.clone());
                }
            }
        }
        groups.push(g);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::{Facts, Gender, NoFacts, Qty, Visit};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn baseline() -> &'static CompiledRuleSet {
        static RS: OnceLock<CompiledRuleSet> = OnceLock::new();
        RS.get_or_init(|| {
            let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let dirs = [root.join("rulesets/national-baseline"), root.join("rulesets/examples/xinxiang-2025")];
            match crate::rules::load(&dirs) {
                Ok((_, rs)) => rs,
                Err(e) => panic!("{e}"),
            }
        })
    }

    /// Every code the packs know, plus neighbours that share a prefix but are not listed.
    fn codes() -> Vec<String> {
        let mut v: Vec<String> = crate::gen::ITEMS.iter().map(|i| i.0.to_owned()).collect();
        for r in &baseline().rules {
            for (m, _, _) in &r.matchers {
                match m {
                    Matcher::Exact(c) => v.push(c.to_string()),
                    Matcher::Prefix(p) => {
                        v.push(format!("{p}{}", "0".repeat(23usize.saturating_sub(p.len()))));
                        v.push(p.to_string());
                    }
                    _ => {}
                }
            }
        }
        v.push("001201000030001".into());
        v.sort();
        v.dedup();
        v
    }

    fn claim_from(seed: u64, n: usize, tweak: u8) -> Claim {
        let env = if tweak % 3 == 0 {
            crate::gen::analysis_3101(seed, n)
        } else {
            crate::gen::fee_upload(seed, n, tweak % 3 == 2)
        };
        let body = serde_json::to_vec(&env).unwrap_or_default();
        let head = crate::wire::parse_head(&body).expect("generated envelope");
        let facts: &dyn Facts = &NoFacts;
        match crate::pipeline::prepare(&head, facts).expect("generated claim") {
            crate::pipeline::Prepared::Claims { mut claims, .. } => claims.remove(0),
            _ => unreachable!("generated claims are claim transactions"),
        }
    }

    fn summary(d: &Decision) -> String {
        serde_json::to_string(&(&d.decision, &d.hits, &d.unchecked)).unwrap_or_default()
    }

    #[test]
    fn generated_claims_exercise_many_rules_so_the_comparison_is_not_vacuous() {
        let rs = baseline();
        let mut fired = std::collections::BTreeSet::new();
        for seed in 0..300u64 {
            let d = evaluate(rs, &claim_from(seed, 30, seed as u8));
            fired.extend(d.hits.iter().map(|h| h.rule_id.to_string()));
        }
        // The baseline's frequency, duplicate and gender examples share the national pack's rule ids
        // (one rule each since the national pack ships them): 9 distinct ids fire, of 44 rules.
        assert!(fired.len() >= 8, "only {} rules fired: {fired:?}", fired.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The indexed evaluator agrees with the naive one (every rule × every line through its own
        /// matcher list) on random claims built from the packs' own codes and their neighbours.
        #[test]
        fn indexed_evaluation_agrees_with_the_naive_reference(
            seed in any::<u64>(), n in 1usize..40, tweak in any::<u8>(),
            picks in proptest::collection::vec((any::<prop::sample::Index>(), 1i64..5, 0u32..3), 0..12),
            gender in 0u8..3, age in 0u32..90, med in 0usize..5, tier in 0u8..4,
        ) {
            let all = codes();
            let mut c = claim_from(seed, n, tweak);
            for (i, (ix, q, day)) in picks.into_iter().enumerate() {
                let mut l = c.lines[i % c.lines.len()].clone();
                l.id = smol_str::format_smolstr!("P{i}");
                l.code = ix.get(&all).into();
                l.class = crate::claim::ItemClass::of_code(&l.code);
                l.qty = Qty::whole(q);
                l.amount = l.price.times(l.qty);
                l.time += chrono::Duration::days(i64::from(day));
                l.days_supply = if l.class.is_drug() { Some(Qty::whole(q * 3)) } else { None };
                c.lines.push(l);
            }
            c.patient.gender = [None, Some(Gender::Male), Some(Gender::Female)][gender as usize];
            c.patient.birth = chrono::NaiveDate::from_ymd_opt(2025 - age as i32, 3, 1);
            c.encounter.med_type = [None, Some("11"), Some("13"), Some("14"), Some("21")][med].map(str::to_owned);
            if med == 4 { c.encounter.visit = Some(Visit::Inpatient); }
            c.encounter.tier = [None, Some(1), Some(2), Some(3)][tier as usize];
            let rs = baseline();
            prop_assert_eq!(summary(&evaluate(rs, &c)), summary(&evaluate_naive(rs, &c)));
        }

        /// Evaluating twice gives the same decision, and every hit's amount is within the claim's total.
        #[test]
        fn evaluation_is_deterministic_and_money_stays_in_bounds(seed in any::<u64>(), n in 1usize..60, tweak in any::<u8>()) {
            let c = claim_from(seed, n, tweak);
            let rs = baseline();
            let a = evaluate(rs, &c);
            prop_assert_eq!(summary(&a), summary(&evaluate(rs, &c)));
            let total: i64 = c.lines.iter().map(|l| l.amount.get().abs()).sum();
            for h in &a.hits {
                prop_assert!(h.amount.get() >= 0 && h.amount.get() <= total, "hit {} amount {} of total {}", h.rule_id, h.amount.get(), total);
                for (l, amt) in h.lines.iter().zip(&h.line_amounts) {
                    let line = c.lines.iter().find(|x| &x.id == l).expect("hit names a claim line");
                    prop_assert_eq!(line.amount, *amt);
                }
            }
        }
    }
}
