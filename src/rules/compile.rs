//! Compile once per activation: every regex built, every code indexed, every template checked.
//! The result is immutable and shared (`Arc`) by every request that evaluates against it.

use super::error::{CompileError, Problem};
use super::kinds::{self, KindInput, Logic, Scope, TableShape, NO_ROW};
use super::pack::{PackSource, Table};
use super::source::{Action, RuleSource, Severity};
use super::template::Template;
use crate::claim::{ItemClass, Visit};
use chrono::NaiveDate;
use regex::{Regex, RegexSet};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// How a line was matched; lower priority wins for single-tag kinds (exact beats prefix beats regex).
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Exact(Box<str>),
    His(Box<str>),
    Prefix(Box<str>),
    CodeRe(usize),
    NameRe(usize),
}

impl Matcher {
    fn priority(&self, order: u32) -> u32 {
        match self {
            Matcher::Exact(_) => 0,
            Matcher::His(_) => 1,
            Matcher::Prefix(p) => 100 + (99 - (p.len() as u32).min(99)),
            Matcher::CodeRe(_) => 1_000 + order,
            Matcher::NameRe(_) => 100_000 + order,
        }
    }
}

/// Claim-level scope, compiled.
#[derive(Debug, Default)]
pub(crate) struct WhenC {
    pub visit: Option<Visit>,
    pub med_types: Vec<Box<str>>,
    pub insutypes: Vec<Box<str>>,
    pub depts: kinds::CodeList,
    pub not_depts: kinds::CodeList,
}

impl WhenC {
    pub fn is_claim_trivial(&self) -> bool {
        self.visit.is_none() && self.med_types.is_empty() && self.insutypes.is_empty()
    }
}

pub(crate) const CLASS_WESTERN: u8 = 1;
pub(crate) const CLASS_PATENT: u8 = 2;
pub(crate) const CLASS_HERBAL: u8 = 4;
pub(crate) const CLASS_SERVICE: u8 = 8;
pub(crate) const CLASS_MATERIAL: u8 = 16;
pub(crate) const CLASS_OTHER: u8 = 32;

pub(crate) fn class_bit(c: ItemClass) -> u8 {
    match c {
        ItemClass::WesternDrug => CLASS_WESTERN,
        ItemClass::PatentDrug => CLASS_PATENT,
        ItemClass::Herbal => CLASS_HERBAL,
        ItemClass::Service => CLASS_SERVICE,
        ItemClass::Material => CLASS_MATERIAL,
        ItemClass::Other => CLASS_OTHER,
    }
}

/// One compiled rule.
pub struct CompiledRule {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub kind: &'static str,
    pub action: Action,
    pub overridable: bool,
    /// 驾照式记分 points from the pack (0 when the pack gives none).
    pub points: u32,
    pub severity: Severity,
    pub basis: Arc<str>,
    pub pack: Arc<str>,
    pub(crate) message: Template,
    pub(crate) from: Option<NaiveDate>,
    pub(crate) until: Option<NaiveDate>,
    /// Bitmask of item classes; 0 = any.
    pub(crate) classes: u8,
    pub(crate) categories: Vec<Box<str>>,
    pub(crate) when: WhenC,
    pub(crate) row_names: Vec<crate::claim::SmolStr>,
    /// The rule's basis followed by a table row's own basis, by tag (empty when no row has one).
    pub(crate) row_bases: Vec<Arc<str>>,
    /// `(matcher, tag, priority)`; empty with `selects_all` = every line.
    pub(crate) matchers: Vec<(Matcher, u32, u32)>,
    pub(crate) selects_all: bool,
    pub(crate) scope: Scope,
    pub(crate) multi_tag: bool,
    pub(crate) logic: Box<dyn Logic>,
}

impl CompiledRule {
    /// The basis shown for a hit on table row `row` (the rule's own basis when the row has none).
    pub(crate) fn row_basis(&self, row: u32) -> Arc<str> {
        self.row_bases.get(row as usize).unwrap_or(&self.basis).clone()
    }
    /// The table rows (a pair table: two codes a row) and listed codes the rule loads.
    pub fn table_rows(&self) -> usize {
        self.matchers.len()
    }
    /// Distinct knowledge points behind the rule's rows: rows of one point share their basis.
    pub fn sources(&self) -> usize {
        let mut ptrs: Vec<*const u8> = self.row_bases.iter().map(|b| Arc::as_ptr(b).cast::<u8>()).collect();
        ptrs.sort_unstable();
        ptrs.dedup();
        ptrs.len()
    }
    pub(crate) fn in_effect(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.until.is_none_or(|u| d <= u)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub rule: u32,
    pub tag: u32,
    pub prio: u32,
}

/// Code → rules index. A line meets only the rules that can apply to it.
#[derive(Default)]
pub(crate) struct LineIndex {
    pub exact: FxHashMap<Box<str>, Vec<Entry>>,
    pub his: FxHashMap<Box<str>, Vec<Entry>>,
    /// Distinct prefix lengths, longest first.
    pub prefix_lens: Vec<usize>,
    pub prefix: FxHashMap<Box<str>, Vec<Entry>>,
    pub code_set: Option<RegexSet>,
    pub code_entries: Vec<Vec<Entry>>,
    pub name_set: Option<RegexSet>,
    pub name_entries: Vec<Vec<Entry>>,
    /// Rules with no item identity: candidates for every line.
    pub all_lines: Vec<u32>,
    pub claim_rules: Vec<u32>,
}

/// A compiled, immutable rule set: one or more packs.
pub struct CompiledRuleSet {
    pub name: Arc<str>,
    pub version: Arc<str>,
    /// SHA-256 of the packs' files (joined with `+` for several packs).
    pub digest: Arc<str>,
    pub rules: Vec<CompiledRule>,
    pub(crate) index: LineIndex,
    pub(crate) code_res: Vec<Regex>,
    pub(crate) name_res: Vec<Regex>,
    /// Knowledge points: table rows + listed codes + pairs.
    pub knowledge_points: usize,
    /// How many days of patient history the rules look back (0: none needs history).
    pub lookback: u32,
    /// Item names by national code, from every table row of every pack: a hit names its item even
    /// where the message and the rule's own table carry no name (a 2204 line is codes only).
    pub(crate) names: FxHashMap<Box<str>, crate::claim::SmolStr>,
    /// The severity of the strongest blocking rule (`None`: the set only reminds): what a failed
    /// check could have cost, for the fail policy.
    pub strongest_block: Option<super::Severity>,
}

impl CompiledRuleSet {
    pub fn revision(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
    pub fn rule(&self, id: &str) -> Option<&CompiledRule> {
        self.rules.iter().find(|r| &*r.id == id)
    }
    /// The history the rules need, in days back from the claim's day; `None` when no rule looks
    /// at history (the lookup is skipped).
    pub fn lookback_days(&self) -> Option<u32> {
        (self.lookback > 0).then_some(self.lookback)
    }
}

/// Finds the line of the `nth` (0-based) `- id: X` in a YAML text (for locating rule-level problems).
fn line_of_id(text: &str, id: &str, nth: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start().trim_start_matches('-').trim_start();
            t.strip_prefix("id:").map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == id).unwrap_or(false)
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
}

fn parse_date(field: &str, s: &Option<String>) -> Result<Option<NaiveDate>, String> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{field}: not a yyyy-MM-dd date: {t:?}")),
    }
}

fn parse_classes(v: &[String]) -> Result<u8, String> {
    let mut m = 0u8;
    for c in v {
        m |= match c.as_str() {
            "western_drug" => CLASS_WESTERN,
            "patent_drug" => CLASS_PATENT,
            "drug" => CLASS_WESTERN | CLASS_PATENT | CLASS_HERBAL,
            "herbal" => CLASS_HERBAL,
            "service" => CLASS_SERVICE,
            "material" => CLASS_MATERIAL,
            "other" => CLASS_OTHER,
            o => return Err(format!("select.item_classes: unknown class {o:?}")),
        };
    }
    Ok(m)
}

fn parse_when(w: &super::source::When) -> Result<WhenC, String> {
    let visit = match w.visit.as_deref() {
        None | Some("") => None,
        Some("outpatient") => Some(Visit::Outpatient),
        Some("inpatient") => Some(Visit::Inpatient),
        Some("pharmacy") => Some(Visit::Pharmacy),
        Some(o) => return Err(format!("when.visit: unknown visit {o:?} (outpatient, inpatient, pharmacy)")),
    };
    Ok(WhenC {
        visit,
        med_types: w.med_types.iter().map(|s| s.trim().into()).collect(),
        insutypes: w.insutypes.iter().map(|s| s.trim().into()).collect(),
        depts: kinds::CodeList::parse(&w.depts).map_err(|e| format!("when.depts: {e}"))?,
        not_depts: kinds::CodeList::parse(&w.not_depts).map_err(|e| format!("when.not_depts: {e}"))?,
    })
}

fn code_matcher(code: &str) -> Option<Matcher> {
    let c = code.trim();
    match c.strip_suffix('%').or_else(|| c.strip_suffix('*')) {
        Some("") => None,
        Some(p) => Some(Matcher::Prefix(p.into())),
        None if c.is_empty() => None,
        None => Some(Matcher::Exact(c.into())),
    }
}

struct Builder {
    code_pats: Vec<String>,
    name_pats: Vec<String>,
    code_res: Vec<Regex>,
    name_res: Vec<Regex>,
}

impl Builder {
    fn regex(&mut self, pat: &str, name: bool) -> Result<Matcher, String> {
        let re = regex::RegexBuilder::new(pat)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regex {pat:?}: {e}"))?;
        if name {
            self.name_pats.push(pat.to_owned());
            self.name_res.push(re);
            Ok(Matcher::NameRe(self.name_res.len() - 1))
        } else {
            self.code_pats.push(pat.to_owned());
            self.code_res.push(re);
            Ok(Matcher::CodeRe(self.code_res.len() - 1))
        }
    }
}

/// The rule's `effective_from` and `effective_until`, in order.
fn effective(src: &RuleSource) -> Result<(Option<NaiveDate>, Option<NaiveDate>), String> {
    let from = parse_date("effective_from", &src.effective_from)?;
    let until = parse_date("effective_until", &src.effective_until)?;
    if let (Some(f), Some(u)) = (from, until) {
        if u < f {
            return Err("effective_until is before effective_from".into());
        }
    }
    Ok((from, until))
}

/// Compiles one rule; `Err` is the reason (the caller adds file and line).
fn compile_rule(
    b: &mut Builder,
    pack: &PackSource,
    pack_name: &Arc<str>,
    src: &RuleSource,
) -> Result<(CompiledRule, usize), String> {
    let spec = kinds::find(&src.kind).ok_or_else(|| {
        format!("rule {}: unknown kind {:?}; known kinds: {}", src.id, src.kind, kinds::names().join(", "))
    })?;
    let ctx = |e: String| format!("rule {}: {e}", src.id);
    if src.id.trim().is_empty() {
        return Err("rule with an empty id".into());
    }
    let message = Template::compile(&src.message, spec.vars).map_err(ctx)?;
    let (from, until) = effective(src).map_err(ctx)?;
    let classes = parse_classes(&src.select.item_classes).map_err(ctx)?;
    let when = parse_when(&src.when).map_err(ctx)?;
    let table = match (&src.select.table, spec.table) {
        (None, _) => None,
        (Some(t), shape) => Some(pack.table(t, shape == TableShape::Pairs).map_err(|p| {
            ctx(format!("{}: {}", p.file, p.reason) + &p.line.map(|l| format!(" (line {l})")).unwrap_or_default())
        })?),
    };
    let (rows, pairs) = match &table {
        Some(Table::Rows(r)) => (r.as_slice(), &[][..]),
        Some(Table::Pairs(p)) => (&[][..], p.as_slice()),
        None => (&[][..], &[][..]),
    };
    let compiled = (spec.compile)(&KindInput { params: &src.params, rows, pairs }).map_err(ctx)?;
    let mut matchers: Vec<(Matcher, u32, u32)> = Vec::new();
    let mut push = |m: Matcher, tag: u32, order: u32| {
        let p = m.priority(order);
        matchers.push((m, tag, p));
    };
    let mut row_names = Vec::new();
    let mut kp = 0usize;
    match spec.scope {
        Scope::Claim => {
            if src.select.has_identity() && src.select.table.is_none() {
                return Err(ctx("this kind concerns the whole claim; select lists are not allowed".into()));
            }
            kp += rows.len() + compiled.matchers.len();
        }
        _ if !compiled.matchers.is_empty() || spec.table == TableShape::Pairs => {
            if src.select.has_identity() && src.select.table.is_none() {
                return Err(
                    ctx("this kind selects its own codes (pairs/package); select lists are not allowed".into()),
                );
            }
            for (code, tag) in &compiled.matchers {
                let m = code_matcher(code).ok_or_else(|| ctx(format!("empty code in pair/package {tag}")))?;
                push(m, *tag, 0);
            }
            kp += compiled.matchers.len();
        }
        _ => {
            let s = &src.select;
            for (i, (_, r)) in rows.iter().enumerate() {
                let m = code_matcher(&r.code).ok_or_else(|| ctx("empty table code".into()))?;
                push(m, i as u32, 0);
                row_names.push(r.name.as_str().into());
            }
            for c in &s.codes {
                push(Matcher::Exact(c.trim().into()), NO_ROW, 0);
            }
            for c in &s.code_prefixes {
                if c.trim().is_empty() {
                    return Err(ctx("empty code prefix".into()));
                }
                push(Matcher::Prefix(c.trim().into()), NO_ROW, 0);
            }
            for c in &s.his_codes {
                push(Matcher::His(c.trim().into()), NO_ROW, 0);
            }
            for (i, p) in s.code_patterns.iter().enumerate() {
                let m = b.regex(p, false).map_err(|e| ctx(format!("select.code_patterns: {e}")))?;
                push(m, NO_ROW, i as u32);
            }
            for (i, p) in s.name_patterns.iter().enumerate() {
                let m = b.regex(p, true).map_err(|e| ctx(format!("select.name_patterns: {e}")))?;
                push(m, NO_ROW, i as u32);
            }
            kp += rows.len() + s.codes.len() + s.code_prefixes.len() + s.his_codes.len();
        }
    }
    let selects_all = spec.scope != Scope::Claim && matchers.is_empty();
    let row_bases = row_bases(&src.basis, rows, pairs);
    Ok((
        CompiledRule {
            id: src.id.trim().into(),
            name: src.name.as_str().into(),
            kind: spec.name,
            action: src.action,
            overridable: src.overridable,
            points: src.points.unwrap_or(0),
            severity: src.severity,
            basis: src.basis.as_str().into(),
            pack: pack_name.clone(),
            message,
            from,
            until,
            classes,
            categories: src.select.categories.iter().map(|c| c.trim().into()).collect(),
            when,
            row_names,
            row_bases,
            matchers,
            selects_all,
            scope: spec.scope,
            multi_tag: spec.multi_tag,
            logic: compiled.logic,
        },
        kp,
    ))
}

/// Each row's basis after the rule's, by tag (a pair table's rows have two tags each: main, sub).
/// Rows of one knowledge point usually share their basis, so equal texts share one allocation.
fn row_bases(
    basis: &str,
    rows: &[(usize, super::source::TableRow)],
    pairs: &[(usize, super::source::PairRow)],
) -> Vec<Arc<str>> {
    let texts: Vec<&str> = if pairs.is_empty() {
        rows.iter().map(|(_, r)| r.basis.trim()).collect()
    } else {
        pairs.iter().flat_map(|(_, p)| [p.basis.trim(), p.basis.trim()]).collect()
    };
    if texts.iter().all(|t| t.is_empty()) {
        return Vec::new();
    }
    let own: Arc<str> = basis.into();
    let mut seen: FxHashMap<&str, Arc<str>> = FxHashMap::default();
    texts
        .into_iter()
        .map(|t| {
            if t.is_empty() {
                return own.clone();
            }
            seen.entry(t).or_insert_with(|| format!("{basis}；{t}").into()).clone()
        })
        .collect()
}

/// Compiles one or more packs into one rule set. Within a pack ids are unique; across packs a later
/// pack's rule replaces an earlier one with the same id (national → provincial → hospital).
///
/// # Errors
/// Every problem of every pack, located.
pub fn compile(packs: &[PackSource]) -> Result<CompiledRuleSet, CompileError> {
    let mut problems = Vec::new();
    let mut b = Builder { code_pats: vec![], name_pats: vec![], code_res: vec![], name_res: vec![] };
    let mut rules: Vec<CompiledRule> = Vec::new();
    let mut knowledge_points = 0;
    if packs.is_empty() {
        return Err(CompileError::one("(none)", None, "no rule pack given"));
    }
    for pack in packs {
        let pack_name: Arc<str> = pack.manifest.name.as_str().into();
        let mut ids: FxHashMap<String, (String, Option<usize>)> = FxHashMap::default();
        for (file, text, rf) in &pack.rule_files {
            let mut seen_in_file: FxHashMap<&str, usize> = FxHashMap::default();
            let file = &format!("{}/{file}", pack.manifest.name);
            for src in &rf.rules {
                let nth = seen_in_file.entry(src.id.trim()).or_insert(0);
                let line = line_of_id(text, src.id.trim(), *nth);
                *nth += 1;
                if let Some((f0, l0)) = ids.get(src.id.trim()) {
                    problems.push(Problem {
                        file: file.clone(),
                        line,
                        reason: format!(
                            "rule {}: duplicate id (first defined at {f0}:{})",
                            src.id,
                            l0.map(|l| l.to_string()).unwrap_or_default()
                        ),
                    });
                    continue;
                }
                ids.insert(src.id.trim().to_owned(), (file.clone(), line));
                match compile_rule(&mut b, pack, &pack_name, src) {
                    Ok((r, kp)) => {
                        knowledge_points += kp;
                        if let Some(pos) = rules.iter().position(|x| x.id == r.id) {
                            rules[pos] = r; // a later pack overrides
                        } else {
                            rules.push(r);
                        }
                    }
                    Err(reason) => problems.push(Problem { file: file.clone(), line, reason }),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(CompileError { problems });
    }
    let index = build_index(&rules, &b).map_err(|e| CompileError::one("(index)", None, e))?;
    let join = |f: &dyn Fn(&PackSource) -> &str| packs.iter().map(f).collect::<Vec<_>>().join("+");
    Ok(CompiledRuleSet {
        name: join(&|p| p.manifest.name.as_str()).into(),
        version: join(&|p| p.manifest.version.as_str()).into(),
        digest: join(&|p| p.digest.as_str()).into(),
        index,
        code_res: b.code_res,
        name_res: b.name_res,
        knowledge_points,
        lookback: rules.iter().map(|r| r.logic.lookback_days()).max().unwrap_or(0),
        names: item_names(&rules),
        strongest_block: rules.iter().filter(|r| r.action == super::Action::Block).map(|r| r.severity).max(),
        rules,
    })
}

/// Every exactly matched code's row name, the first rule that names it winning.
fn item_names(rules: &[CompiledRule]) -> FxHashMap<Box<str>, crate::claim::SmolStr> {
    let mut names = FxHashMap::default();
    for r in rules {
        for (m, tag, _) in &r.matchers {
            if let (Matcher::Exact(code), Some(n)) = (m, r.row_names.get(*tag as usize)) {
                if !n.is_empty() {
                    names.entry(code.clone()).or_insert_with(|| n.clone());
                }
            }
        }
    }
    names
}

fn build_index(rules: &[CompiledRule], b: &Builder) -> Result<LineIndex, String> {
    let mut ix = LineIndex {
        code_entries: vec![Vec::new(); b.code_res.len()],
        name_entries: vec![Vec::new(); b.name_res.len()],
        ..LineIndex::default()
    };
    let mut lens = Vec::new();
    for (ri, r) in rules.iter().enumerate() {
        let rule = ri as u32;
        if r.scope == Scope::Claim {
            ix.claim_rules.push(rule);
            continue;
        }
        if r.selects_all {
            ix.all_lines.push(rule);
            continue;
        }
        for (m, tag, prio) in &r.matchers {
            let e = Entry { rule, tag: *tag, prio: *prio };
            match m {
                Matcher::Exact(c) => ix.exact.entry(c.clone()).or_default().push(e),
                Matcher::His(c) => ix.his.entry(c.clone()).or_default().push(e),
                Matcher::Prefix(p) => {
                    lens.push(p.len());
                    ix.prefix.entry(p.clone()).or_default().push(e);
                }
                Matcher::CodeRe(i) => ix.code_entries[*i].push(e),
                Matcher::NameRe(i) => ix.name_entries[*i].push(e),
            }
        }
    }
    lens.sort_unstable_by(|a, b| b.cmp(a));
    lens.dedup();
    ix.prefix_lens = lens;
    if !b.code_pats.is_empty() {
        ix.code_set = Some(RegexSet::new(&b.code_pats).map_err(|e| e.to_string())?);
    }
    if !b.name_pats.is_empty() {
        ix.name_set = Some(RegexSet::new(&b.name_pats).map_err(|e| e.to_string())?);
    }
    Ok(ix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_a_rule_id() {
        let t = "rules:\n  - id: A\n    name: x\n  - id: \"B\"\n";
        assert_eq!(line_of_id(t, "A", 0), Some(2));
        assert_eq!(line_of_id(t, "B", 0), Some(4));
        assert_eq!(line_of_id(t, "C", 0), None);
        assert_eq!(line_of_id(t, "A", 1), None);
    }
}
