//! Rule kinds, one per file. Adding a kind = one file + one line in [`KINDS`].
//!
//! A kind compiles its parameters once ([`KindSpec::compile`]) into a [`Logic`] that the evaluator
//! calls per matching line ([`Scope::Line`]), once per rule with all matching lines
//! ([`Scope::Group`]), or once per claim ([`Scope::Claim`]). Logic never fails and never panics:
//! a fact it lacks is reported with [`Out::unchecked`].

use super::decision::{Fact, Val};
use super::source::{PairRow, TableRow};
use crate::claim::{Claim, Fen, Line, PastLine, SmolStr};
use serde_json::{Map, Value};

mod age;
mod claim_units;
mod course_days;
mod daily_cap;
mod daily_units;
mod days_supply;
mod department;
mod diagnosis_required;
mod gender;
mod herbal_single;
mod incision_discount;
mod institution_level;
mod insurance_type;
mod interval;
mod listed;
mod low_threshold_admission;
mod pair;
mod price_cap;
mod readmission;
mod repeat_item;
mod split_purchase;
mod trace_code;
mod unbundling;
mod visit_frequency;
mod visit_type;

/// Tag of a match that came from the rule's own lists rather than a table row.
pub const NO_ROW: u32 = u32::MAX;

/// The registry.
pub(crate) static KINDS: &[&KindSpec] = &[
    &gender::SPEC,
    &age::SPEC,
    &visit_type::SPEC,
    &department::SPEC,
    &institution_level::SPEC,
    &diagnosis_required::SPEC,
    &daily_units::SPEC,
    &claim_units::SPEC,
    &days_supply::SPEC,
    &pair::SPEC,
    &unbundling::SPEC,
    &price_cap::SPEC,
    &low_threshold_admission::SPEC,
    &daily_cap::SPEC,
    &readmission::SPEC,
    &trace_code::SPEC,
    &repeat_item::SPEC,
    &visit_frequency::SPEC,
    &split_purchase::SPEC,
    &insurance_type::SPEC,
    &listed::SPEC,
    &herbal_single::SPEC,
    &incision_discount::SPEC,
    &course_days::SPEC,
    &interval::SPEC,
];

pub(crate) fn find(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().copied().find(|k| k.name == name)
}

pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Line,
    Group,
    Claim,
}

/// What table shape a kind reads from `select.table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableShape {
    /// `code,name,param,basis`: rows are matched against line codes; row index = tag.
    Rows,
    /// `main,main_name,sub,sub_name,window,basis`: the kind makes its own matchers.
    Pairs,
    /// `code,name,param,basis` read by the kind itself (claim-scope kinds; not matched to lines).
    OwnRows,
}

pub(crate) struct KindSpec {
    pub name: &'static str,
    /// Message variables the kind fills.
    pub vars: &'static [&'static str],
    pub scope: Scope,
    pub table: TableShape,
    /// Several tags of one rule may match one line (pairs: a code is main of one pair, sub of another).
    pub multi_tag: bool,
    pub compile: CompileFn,
}

type CompileFn = fn(&KindInput<'_>) -> Result<Compiled, String>;

impl KindSpec {
    /// A kind whose table gives each line at most one tag of a rule.
    pub(crate) const fn new(
        name: &'static str,
        scope: Scope,
        table: TableShape,
        vars: &'static [&'static str],
        compile: CompileFn,
    ) -> Self {
        KindSpec { name, vars, scope, table, multi_tag: false, compile }
    }

    /// The same kind, where several tags of one rule may match a line (see [`KindSpec::multi_tag`]).
    pub(crate) const fn many_tags(self) -> Self {
        KindSpec { multi_tag: true, ..self }
    }
}

pub(crate) struct KindInput<'a> {
    pub params: &'a Map<String, Value>,
    pub rows: &'a [(usize, TableRow)],
    pub pairs: &'a [(usize, PairRow)],
}

pub(crate) struct Compiled {
    pub logic: Box<dyn Logic>,
    /// Matchers the kind makes itself: `(code, tag)`, a code ending in `%`/`*` is a prefix.
    pub matchers: Vec<(String, u32)>,
}

/// Static facts about the rule being evaluated that a kind may need.
pub(crate) struct RuleCx<'a> {
    pub index: u32,
    /// Names of table rows (by tag), for messages when the message carries no item name.
    pub row_names: &'a [SmolStr],
    /// The patient's earlier lines by item code, shared by every rule of one evaluation.
    pub past: &'a PastIndex<'a>,
    /// Item names by code from every pack's tables.
    pub names: &'a rustc_hash::FxHashMap<Box<str>, SmolStr>,
}

/// The claim's history lines by item code (the snapshot's own index, built once per snapshot and
/// shared by every claim that reads it): a rule comparing each line with the earlier lines of the
/// same item reads a handful of entries instead of scanning the whole history per line (a 1,000-line
/// stay against its own 1,000 earlier lines was a million comparisons per rule).
pub(crate) struct PastIndex<'c> {
    claim: &'c Claim,
    /// This claim's own line ids (a retried upload resends lines history already holds).
    own: std::cell::OnceCell<rustc_hash::FxHashSet<&'c str>>,
}

impl<'c> PastIndex<'c> {
    pub fn new(claim: &'c Claim) -> PastIndex<'c> {
        PastIndex { claim, own: Default::default() }
    }

    /// The earlier lines of item `code`, in the history's order (the snapshot's own index, built
    /// once per snapshot rather than once per claim).
    pub fn same_code<'s>(&'s self, code: &'s str) -> impl Iterator<Item = &'c PastLine> + 's {
        let h: Option<&'c crate::claim::History> = self.claim.history.as_deref();
        h.into_iter().flat_map(move |h| h.same_code(code))
    }

    /// The accepted lines of item `code` from other messages: a line this claim carries again (a
    /// retry: the same visit and `feedetl_sn`) is this claim's, and never counts against it.
    pub fn earlier<'s>(&'s self, code: &'s str) -> impl Iterator<Item = &'c PastLine> + 's {
        let c = self.claim;
        let own = self.own.get_or_init(|| c.lines.iter().map(|l| l.id.as_str()).collect());
        self.same_code(code).filter(move |p| !(*p.mdtrt_id == *c.encounter.mdtrt_id && own.contains(p.id.as_str())))
    }
}

/// `（含此前已上传的明细F0001 2025-06-10 08:00:00）`, naming up to three earlier lines; empty for none.
pub(crate) fn earlier_note(prior: &[&PastLine]) -> SmolStr {
    use std::fmt::Write as _;
    if prior.is_empty() {
        return SmolStr::default();
    }
    let mut s = String::from("（含此前已上传的明细");
    for (i, p) in prior.iter().take(3).enumerate() {
        if i > 0 {
            s.push('、');
        }
        s.push_str(&p.id);
        s.push(' ');
        let _ = write!(s, "{}", p.time);
    }
    if prior.len() > 3 {
        let _ = write!(s, "等{}条", prior.len());
    }
    s.push('）');
    s.into()
}

impl RuleCx<'_> {
    /// One line's hit: its item (by name) and code first, then the kind's own evidence; the line's
    /// amount is the hit's amount. Every line kind builds its hit here.
    pub fn hit_line(&self, out: &mut Out, li: u32, line: &Line, tag: u32, more: Vec<(&'static str, Val)>) {
        let mut ev = Vec::with_capacity(more.len() + 2);
        ev.push(("item", Val::Str(self.item_name(line, tag))));
        ev.push(("code", Val::Str(line.code.clone())));
        ev.extend(more);
        out.hit(self.index, vec![li], line.amount, ev);
    }

    /// The item's display name: the message's own name, else the table row's, else any pack's
    /// name for the code, else the code.
    pub fn item_name(&self, line: &Line, tag: u32) -> SmolStr {
        if let Some(n) = line.name.as_ref().filter(|n| !n.is_empty()) {
            return n.clone();
        }
        if let Some(n) = self.row_names.get(tag as usize).filter(|n| !n.is_empty()) {
            return n.clone();
        }
        if let Some(n) = self.names.get(line.code.as_str()) {
            return n.clone();
        }
        line.code.clone()
    }
}

pub(crate) trait Logic: Send + Sync {
    fn line(&self, _r: &RuleCx<'_>, _c: &Claim, _li: u32, _tag: u32, _out: &mut Out) {}
    /// `members` are `(line index, tag)`, sorted.
    fn group(&self, _r: &RuleCx<'_>, _c: &Claim, _members: &[(u32, u32)], _out: &mut Out) {}
    fn claim(&self, _r: &RuleCx<'_>, _c: &Claim, _out: &mut Out) {}
    /// Days of patient history the rule reads (0: it reads none).
    fn lookback_days(&self) -> u32 {
        0
    }
}

/// A hit before rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawHit {
    pub rule: u32,
    /// The table row (tag) behind the hit, set by the evaluator; [`NO_ROW`] when none.
    pub row: u32,
    pub lines: Vec<u32>,
    pub amount: Fen,
    pub ev: Vec<(&'static str, Val)>,
}

/// Where kinds put what they found. Reused across claims by the evaluator.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub hits: Vec<RawHit>,
    /// `(rule, line or NO_ROW for the whole claim, fact)`.
    pub unchecked: Vec<(u32, u32, Fact)>,
}

impl Out {
    pub fn hit(&mut self, rule: u32, lines: Vec<u32>, amount: Fen, ev: Vec<(&'static str, Val)>) {
        self.hits.push(RawHit { rule, row: NO_ROW, lines, amount, ev });
    }
    pub fn unchecked(&mut self, rule: u32, line: u32, fact: Fact) {
        self.unchecked.push((rule, line, fact));
    }
    pub fn clear(&mut self) {
        self.hits.clear();
        self.unchecked.clear();
    }
}

// === helpers for kinds ===

/// Per-row parameters with a rule-level default.
pub(crate) struct RowParams<P> {
    pub default: Option<P>,
    pub rows: Vec<Option<P>>,
}

impl<P> RowParams<P> {
    /// Parses `params.<key>` (via `from_value`) and each row's `param` (via `from_row`). Every row
    /// must end up with a parameter.
    pub fn build(
        input: &KindInput<'_>,
        key: &str,
        from_value: impl Fn(&Value) -> Result<P, String>,
        from_row: impl Fn(&str) -> Result<P, String>,
    ) -> Result<Self, String> {
        let default = input.params.get(key).map(&from_value).transpose().map_err(|e| format!("params.{key}: {e}"))?;
        Self::with_default(input, default, &format!("params.{key}"), from_row)
    }

    /// Like [`RowParams::build`] for kinds whose default comes from several keys (`what` names them).
    pub fn with_default(
        input: &KindInput<'_>,
        default: Option<P>,
        what: &str,
        from_row: impl Fn(&str) -> Result<P, String>,
    ) -> Result<Self, String> {
        let mut rows = Vec::with_capacity(input.rows.len());
        for (line, r) in input.rows {
            if r.param.trim().is_empty() {
                if default.is_none() {
                    return Err(format!("table line {line}: no param and no {what} default"));
                }
                rows.push(None);
            } else {
                rows.push(Some(
                    from_row(r.param.trim()).map_err(|e| format!("table line {line}: param {:?}: {e}", r.param))?,
                ));
            }
        }
        if default.is_none() && input.rows.is_empty() {
            return Err(format!("{what} is required"));
        }
        Ok(RowParams { default, rows })
    }

    /// The kind's one parameter `key`: no other is taken, and the rule-level value and each row's
    /// are read by `parse` from their text.
    pub fn only(input: &KindInput<'_>, key: &str, parse: impl Fn(&str) -> Result<P, String>) -> Result<Self, String> {
        only_params(input.params, &[key])?;
        Self::build(input, key, |v| parse(&value_text(v)?), &parse)
    }

    pub fn get(&self, tag: u32) -> Option<&P> {
        self.rows.get(tag as usize).and_then(Option::as_ref).or(self.default.as_ref())
    }
}

/// A parameter naming one of a few `choices`; absent, the first.
pub(crate) fn choice<T: Copy>(p: &Map<String, Value>, key: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let Some(v) = p.get(key) else { return Ok(choices[0].1) };
    let v = value_text(v)?;
    choices.iter().find(|(name, _)| *name == v).map(|&(_, t)| t).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        format!("params.{key}: {v:?} ({})", names.join(", "))
    })
}

/// A number of days (`7`, `"7d"`, `"7天"`) from 1 to `max`.
pub(crate) fn parse_days(s: &str, max: i64) -> Result<i64, String> {
    let n: i64 = s.trim().trim_end_matches(['d', '天']).parse().map_err(|_| format!("not a number of days: {s:?}"))?;
    if !(1..=max).contains(&n) {
        return Err(format!("days out of range: {n}"));
    }
    Ok(n)
}

/// Refuses parameters the kind does not know (a typo must not silently disable a rule).
pub(crate) fn only_params(p: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    for k in p.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown parameter params.{k}; this kind takes: {}", allowed.join(", ")));
        }
    }
    Ok(())
}

pub(crate) fn value_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err("expected a string or a number".into()),
    }
}

pub(crate) fn value_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(a) => a.iter().map(value_text).collect(),
        other => Ok(vec![value_text(other)?]),
    }
}

/// A quantity parameter (`1`, `24`, `"0.5"`).
pub(crate) fn parse_qty(s: &str) -> Result<crate::claim::Qty, String> {
    let u = crate::wire::num::parse_fixed(s, 4).map_err(|e| e.to_string())?;
    if u <= 0 {
        return Err("must be positive".into());
    }
    Ok(crate::claim::Qty::from_units(u))
}

/// Codes or code prefixes (`A10%`) matched against a field.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeList {
    exact: Vec<Box<str>>,
    prefixes: Vec<Box<str>>,
}

impl CodeList {
    pub fn parse(items: &[String]) -> Result<CodeList, String> {
        let mut l = CodeList::default();
        for i in items {
            let i = i.trim();
            if i.is_empty() {
                return Err("empty code".into());
            }
            match i.strip_suffix('%').or_else(|| i.strip_suffix('*')) {
                Some(p) => l.prefixes.push(p.into()),
                None => l.exact.push(i.into()),
            }
        }
        Ok(l)
    }
    /// ICD-10 lists treat every entry as a prefix (`I10` covers `I10.x00`).
    pub fn parse_prefixes(items: &[String]) -> Result<CodeList, String> {
        let mut l = CodeList::default();
        for i in items {
            let i = i.trim().trim_end_matches(['%', '*']);
            if i.is_empty() {
                return Err("empty code".into());
            }
            l.prefixes.push(i.into());
        }
        Ok(l)
    }
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
    pub fn matches(&self, s: &str) -> bool {
        self.exact.iter().any(|e| &**e == s) || self.prefixes.iter().any(|p| s.starts_with(&**p))
    }
    pub fn text(&self) -> String {
        self.exact
            .iter()
            .map(|e| e.to_string())
            .chain(self.prefixes.iter().map(|p| format!("{p}*")))
            .collect::<Vec<_>>()
            .join("、")
    }
}

#[cfg(test)]
pub(crate) mod test_util;
