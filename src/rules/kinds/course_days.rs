//! 药品限支付疗程 / 医疗服务项目限支付疗程 (两库 第六批, 第八批): an item paid for at most `max_days`
//! days of use. The table's rows of one item (same `name`) count together — a knowledge point lists
//! every manufacturer's code of one drug — and a row's `param` is its limit in days.
//!
//! Days of use are the distinct days the item's lines cover: a line covers its service day, or its
//! days supply from that day (`prd_days`, an order's stop − start). They are counted over this
//! claim's lines and the earlier accepted lines in history, within `window`:
//! - `visit` (default): the same visit (one stay: 单次住院最多支付14天);
//! - `lookback`: every visit within `lookback_days` before the service day (一个疾病过程 90 天).
//!
//! `measure: span` counts the days from the first use to the last instead (总时间不超过90天). A line
//! of history that this claim carries again (a retried upload: same visit, same `feedetl_sn`) counts
//! once. The lines whose days fall past the limit are hit.

use super::*;
use crate::rules::decision::{Fact, Val};
use chrono::{Days, NaiveDate};

const VARS: &[&str] = &["item", "code", "days", "max", "first", "window"];
pub(crate) static SPEC: KindSpec = KindSpec::new("course_days", Scope::Group, TableShape::Rows, VARS, compile);

/// No line's days supply is taken past this (a malformed `prd_days` must not cost memory).
const MAX_SUPPLY_DAYS: i64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Visit,
    Lookback(u32),
}

struct Item {
    max: i64,
    codes: Vec<Box<str>>,
    /// The same codes, to meet a history's few distinct codes when the item lists many (a drug's
    /// point lists every manufacturer's code: 150 for 曲克芦丁).
    set: rustc_hash::FxHashSet<Box<str>>,
}

struct CourseLogic {
    window: Window,
    span: bool,
    /// Item index by tag.
    item_of: Vec<u32>,
    items: Vec<Item>,
    default_max: Option<i64>,
}

fn days_param(s: &str) -> Result<i64, String> {
    parse_days(s, 3660)
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["max_days", "window", "lookback_days", "measure"])?;
    let default_max = i.params.get("max_days").map(|v| days_param(&value_text(v)?)).transpose()?;
    let window = match i.params.get("window").map(value_text).transpose()?.as_deref() {
        None | Some("visit") => Window::Visit,
        Some("lookback") => {
            let n = i.params.get("lookback_days").ok_or("params.lookback_days: required with window lookback")?;
            Window::Lookback(days_param(&value_text(n)?)? as u32)
        }
        Some(o) => return Err(format!("params.window: {o:?} (visit, lookback)")),
    };
    let span = choice(i.params, "measure", &[("days", false), ("span", true)])?;
    let mut items: Vec<Item> = Vec::new();
    let mut by_name: rustc_hash::FxHashMap<(&str, i64), u32> = Default::default();
    let mut item_of = Vec::with_capacity(i.rows.len());
    for (line, r) in i.rows {
        let max = match r.param.trim() {
            "" => default_max.ok_or_else(|| format!("table line {line}: no param and no params.max_days default"))?,
            p => days_param(p).map_err(|e| format!("table line {line}: param: {e}"))?,
        };
        let name = if r.name.trim().is_empty() { r.code.trim() } else { r.name.trim() };
        let k = *by_name.entry((name, max)).or_insert_with(|| {
            items.push(Item { max, codes: Vec::new(), set: Default::default() });
            (items.len() - 1) as u32
        });
        items[k as usize].codes.push(r.code.trim().into());
        items[k as usize].set.insert(r.code.trim().into());
        item_of.push(k);
    }
    if i.rows.is_empty() && default_max.is_none() {
        return Err("params.max_days is required".into());
    }
    Ok(Compiled { logic: Box::new(CourseLogic { window, span, item_of, items, default_max }), matchers: vec![] })
}

fn covered(day: NaiveDate, supply: Option<crate::claim::Qty>) -> impl Iterator<Item = NaiveDate> {
    let n = supply.map_or(1, |q| q.ceil_whole().clamp(1, MAX_SUPPLY_DAYS));
    (0..n).filter_map(move |k| day.checked_add_days(Days::new(k as u64)))
}

impl CourseLogic {
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        r: &RuleCx<'_>,
        c: &Claim,
        max: i64,
        (codes, set): (&[Box<str>], Option<&rustc_hash::FxHashSet<Box<str>>>),
        lines: &[(u32, u32)],
        out: &mut Out,
    ) {
        let Some(last_day) = lines.iter().filter_map(|&(li, _)| c.lines.get(li as usize)).map(|l| l.date()).max()
        else {
            return;
        };
        let in_window = |mdtrt_id: &str, d: NaiveDate| match self.window {
            Window::Visit => mdtrt_id == c.encounter.mdtrt_id,
            Window::Lookback(n) => last_day.checked_sub_days(Days::new(u64::from(n))).is_none_or(|from| d > from),
        };
        let mut days: Vec<NaiveDate> = Vec::new();
        let mut first_own: Option<NaiveDate> = None;
        for &(li, _) in lines {
            let l = &c.lines[li as usize];
            first_own = Some(first_own.map_or(l.date(), |f: NaiveDate| f.min(l.date())));
            days.extend(covered(l.date(), l.days_supply));
        }
        if let Some(h) = &c.history {
            // Look up the fewer of the item's codes and the history's distinct codes.
            let present: Vec<&str> = if codes.len() > 8 {
                h.codes().filter(|k| set.is_some_and(|s| s.contains(*k))).collect()
            } else {
                codes.iter().map(|k| &**k).collect()
            };
            for code in present {
                for p in r.past.same_code(code) {
                    let retried = *p.mdtrt_id == *c.encounter.mdtrt_id
                        && lines.iter().any(|&(li, _)| c.lines[li as usize].id == p.id);
                    if !p.refund && !retried && p.date() <= last_day && in_window(&p.mdtrt_id, p.date()) {
                        days.extend(covered(p.date(), p.days_supply));
                    }
                }
            }
        }
        days.sort_unstable();
        days.dedup();
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else { return };
        let count = if self.span { (last - first).num_days() + 1 } else { days.len() as i64 };
        if count <= max {
            if c.history.is_none() {
                for &(li, _) in lines {
                    out.unchecked(r.index, li, Fact::History);
                }
            }
            return;
        }
        // The day on which the limit is reached; lines covering any later day are hit.
        let limit_day = if self.span {
            first.checked_add_days(Days::new((max - 1) as u64)).unwrap_or(last)
        } else {
            days[(max - 1) as usize]
        };
        let window = match self.window {
            Window::Visit => smol_str::SmolStr::new_static("本次就诊"),
            Window::Lookback(n) => smol_str::format_smolstr!("{n}日内"),
        };
        for &(li, tag) in lines {
            let l = &c.lines[li as usize];
            if !covered(l.date(), l.days_supply).any(|d| d > limit_day) {
                continue;
            }
            r.hit_line(
                out,
                li,
                l,
                tag,
                vec![
                    ("days", Val::Int(count)),
                    ("max", Val::Int(max)),
                    ("first", Val::Date(first_own.map_or(first, |f| f.min(first)))),
                    ("window", Val::Str(window.clone())),
                ],
            );
        }
    }
}

impl Logic for CourseLogic {
    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        let mut lines: Vec<(u32, u32)> = Vec::new();
        let mut done: Vec<u32> = Vec::new();
        for &(_, tag) in members {
            let item = self.item_of.get(tag as usize).copied().unwrap_or(u32::MAX);
            if done.contains(&item) {
                continue;
            }
            done.push(item);
            lines.clear();
            lines.extend(members.iter().copied().filter(|&(li, t)| {
                self.item_of.get(t as usize).copied().unwrap_or(u32::MAX) == item
                    && c.lines.get(li as usize).is_some_and(|l| !l.is_refund())
            }));
            if lines.is_empty() {
                continue;
            }
            match self.items.get(item as usize) {
                Some(it) => self.judge(r, c, it.max, (&it.codes, Some(&it.set)), &lines, out),
                None => {
                    // Codes listed in the rule itself: each code is its own item.
                    let Some(max) = self.default_max else { continue };
                    let code: Box<str> = c.lines[lines[0].0 as usize].code.as_str().into();
                    self.judge(r, c, max, (std::slice::from_ref(&code), None), &lines, out);
                }
            }
        }
    }
    fn lookback_days(&self) -> u32 {
        match self.window {
            // A stay's earlier days: the longest limit with room (a stay rarely passes a year).
            Window::Visit => {
                self.items.iter().map(|i| i.max).chain(self.default_max).max().unwrap_or(0).clamp(30, 366) as u32
            }
            Window::Lookback(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{History, PastLine, Qty};
    use crate::rules::evaluate;
    use std::sync::Arc;

    const TABLE: &str = "code,name,param,basis\nXC05CAQ094B002010100267,曲克芦丁注射液,14,第六批\nXC05CAQ094B002010100377,曲克芦丁注射液,14,第六批\n";

    fn rs(extra: &str) -> crate::rules::CompiledRuleSet {
        let y = rule(
            "course_days",
            "【{item}】{window}已用{days}天，限{max}天",
            &format!("    select: {{ table: tables/c.csv }}\n{extra}"),
        );
        try_ruleset(&y, &[("tables/c.csv", TABLE)]).unwrap()
    }

    fn inpatient() -> crate::claim::Claim {
        let mut c = claim();
        c.encounter.visit = Some(crate::claim::Visit::Inpatient);
        c.encounter.med_type = Some("21".into());
        c.history = Some(Arc::new(History::default()));
        c
    }

    #[test]
    fn the_fifteenth_day_of_a_fourteen_day_drug_in_one_stay_is_hit() {
        let mut c = inpatient();
        for d in 1..=15 {
            // Two manufacturers' codes of one drug count together.
            let code = if d % 2 == 0 { "XC05CAQ094B002010100267" } else { "XC05CAQ094B002010100377" };
            c.lines.push(line(&format!("F{d}"), code, 1, 1000, &format!("2025-06-{d:02} 09:00:00")));
        }
        let d = evaluate(&rs(""), &c);
        assert_eq!(hits(&d), one("R1", &["F15"]));
        assert_eq!(d.hits[0].message, "【曲克芦丁注射液】本次就诊已用15天，限14天");
    }

    #[test]
    fn fourteen_days_is_the_boundary_and_passes() {
        let mut c = inpatient();
        for d in 1..=14 {
            c.lines.push(line(
                &format!("F{d}"),
                "XC05CAQ094B002010100267",
                2,
                1000,
                &format!("2025-06-{d:02} 09:00:00"),
            ));
        }
        assert!(evaluate(&rs(""), &c).hits.is_empty());
    }

    #[test]
    fn earlier_uploads_of_the_stay_count_and_a_retried_line_counts_once() {
        let mut c = inpatient();
        let mut h = History::default();
        let mid: Arc<str> = c.encounter.mdtrt_id.as_str().into();
        for d in 1..=13 {
            let l = line(&format!("F{d}"), "XC05CAQ094B002010100267", 1, 1000, &format!("2025-06-{d:02} 09:00:00"));
            h.lines.push(PastLine::of(mid.clone(), &l, false));
        }
        c.history = Some(Arc::new(h));
        // Day 13 again (a retry of the same upload), then day 14: fourteen days, no hit.
        c.lines.push(line("F13", "XC05CAQ094B002010100267", 1, 1000, "2025-06-13 09:00:00"));
        c.lines.push(line("F14", "XC05CAQ094B002010100267", 1, 1000, "2025-06-14 09:00:00"));
        assert!(evaluate(&rs(""), &c).hits.is_empty());
        c.lines.push(line("F15", "XC05CAQ094B002010100267", 1, 1000, "2025-06-15 09:00:00"));
        assert_eq!(hits(&evaluate(&rs(""), &c)), one("R1", &["F15"]));
    }

    #[test]
    fn an_outpatient_supply_longer_than_the_limit_is_hit() {
        let mut c = claim();
        c.history = Some(Arc::new(History::default()));
        let mut l = line("R1", "XC05CAQ094B002010100267", 20, 1000, "2025-06-01 09:00:00");
        l.days_supply = Some(Qty::whole(20));
        c.lines.push(l);
        let d = evaluate(&rs(""), &c);
        assert_eq!(hits(&d), one("R1", &["R1"]));
        let mut days = String::new();
        if let Some((_, v)) = d.hits[0].evidence.iter().find(|(k, _)| *k == "days") {
            v.write_text(&mut days);
        }
        assert_eq!(days, "20");
    }

    #[test]
    fn span_over_a_lookback_counts_from_the_first_use() {
        let y = "    params: { window: lookback, lookback_days: 365, measure: span }\n";
        let mut c = claim();
        let mut h = History::default();
        let l = line("F0", "XC05CAQ094B002010100267", 1, 1000, "2025-05-01 09:00:00");
        h.lines.push(PastLine::of("earlier-visit".into(), &l, true));
        c.history = Some(Arc::new(h));
        c.lines.push(line("F1", "XC05CAQ094B002010100267", 1, 1000, "2025-05-14 09:00:00"));
        assert!(evaluate(&rs(y), &c).hits.is_empty(), "14 days from the first use");
        c.lines[0] = line("F1", "XC05CAQ094B002010100267", 1, 1000, "2025-05-15 09:00:00");
        assert_eq!(hits(&evaluate(&rs(y), &c)), one("R1", &["F1"]));
    }
}
