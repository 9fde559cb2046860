//! Cross-visit repeats of one item, from history:
//! - `mode: exam` — 检查检验结果互认: the same exam or lab item within `days` (default 7) at a
//!   previous visit (of this institution with `scope: institution`, default; any with `scope: all`);
//!   a reminder naming the date of the earlier one.
//! - `mode: drug` — 重复开药: the same drug while an earlier visit's days supply still covers the
//!   service date (`tolerance_days` early refills allowed, default 0).
//! - `mode: frequency` — 高频检查: more than `max` of the item within `days`.

use super::*;
use crate::rules::decision::{Fact, Val};
use chrono::Days;

const VARS: &[&str] = &["item", "code", "prev_date", "days", "prev_days", "until", "overlap", "count", "max"];
pub(crate) static SPEC: KindSpec = KindSpec::new("repeat_item", Scope::Line, TableShape::Rows, VARS, compile);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exam,
    Drug,
    Frequency,
}

struct RepeatLogic {
    mode: Mode,
    days: u32,
    same_institution: bool,
    tolerance: i64,
    max: i64,
}

fn int(i: &KindInput<'_>, k: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, String> {
    let v = match i.params.get(k) {
        Some(v) => value_text(v)?.parse::<i64>().map_err(|_| format!("params.{k}: a whole number"))?,
        None => default,
    };
    if !range.contains(&v) {
        return Err(format!("params.{k}: between {} and {}", range.start(), range.end()));
    }
    Ok(v)
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["mode", "days", "scope", "tolerance_days", "max"])?;
    let mode = match i.params.get("mode").map(value_text).transpose()?.as_deref() {
        Some("exam") => Mode::Exam,
        Some("drug") => Mode::Drug,
        Some("frequency") => Mode::Frequency,
        o => return Err(format!("params.mode: {o:?} (exam, drug, frequency)")),
    };
    let same_institution = choice(i.params, "scope", &[("institution", true), ("all", false)])?;
    let days = int(i, "days", if mode == Mode::Drug { 90 } else { 7 }, 1..=400)? as u32;
    let tolerance = int(i, "tolerance_days", 0, 0..=30)?;
    let max = int(i, "max", 2, 1..=1000)?;
    Ok(Compiled { logic: Box::new(RepeatLogic { mode, days, same_institution, tolerance, max }), matchers: vec![] })
}

impl Logic for RepeatLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let Some(line) = c.lines.get(li as usize) else { return };
        if line.is_refund() {
            return;
        }
        let Some(h) = &c.history else {
            out.unchecked(r.index, li, Fact::History);
            return;
        };
        let day = line.date();
        let from = day.checked_sub_days(Days::new(u64::from(self.days))).unwrap_or(day);
        let institution = |m: &str| {
            !self.same_institution
                || h.visits
                    .iter()
                    .find(|v| v.mdtrt_id == m)
                    .is_none_or(|v| v.fixmedins_code == c.fixmedins_code || v.fixmedins_code.is_empty())
        };
        // Earlier visits' lines of the same item (this visit's own lines are other rules' business).
        let earlier = r.past.same_code(&line.code).filter(|p| {
            *p.mdtrt_id != *c.encounter.mdtrt_id && !p.refund && p.date() <= day && institution(&p.mdtrt_id)
        });
        let base = |extra: Vec<(&'static str, Val)>| {
            let mut v = vec![("item", Val::Str(r.item_name(line, tag))), ("code", Val::Str(line.code.clone()))];
            v.extend(extra);
            v
        };
        match self.mode {
            Mode::Exam => {
                if let Some(p) = earlier.filter(|p| p.date() >= from).max_by_key(|p| p.time) {
                    out.hit(
                        r.index,
                        vec![li],
                        line.amount,
                        base(vec![("prev_date", Val::Date(p.date())), ("days", Val::Int(i64::from(self.days)))]),
                    );
                }
            }
            Mode::Drug => {
                let covering = earlier
                    .filter_map(|p| {
                        let supply = p.days_supply?.units() / crate::claim::Qty::SCALE;
                        let until = p.date().checked_add_days(Days::new(supply.max(0) as u64))?;
                        let overlap = (until - day).num_days();
                        (overlap > self.tolerance).then_some((p, supply, until, overlap))
                    })
                    .max_by_key(|(_, _, until, _)| *until);
                if let Some((p, supply, until, overlap)) = covering {
                    out.hit(
                        r.index,
                        vec![li],
                        line.amount,
                        base(vec![
                            ("prev_date", Val::Date(p.date())),
                            ("prev_days", Val::Int(supply)),
                            ("until", Val::Date(until)),
                            ("overlap", Val::Int(overlap)),
                        ]),
                    );
                }
            }
            Mode::Frequency => {
                let count = earlier.filter(|p| p.date() > from).count() as i64 + 1;
                if count > self.max {
                    out.hit(
                        r.index,
                        vec![li],
                        line.amount,
                        base(vec![
                            ("count", Val::Int(count)),
                            ("max", Val::Int(self.max)),
                            ("days", Val::Int(i64::from(self.days))),
                        ]),
                    );
                }
            }
        }
    }
    fn lookback_days(&self) -> u32 {
        self.days
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{History, PastLine, PastVisit, Qty};
    use crate::rules::evaluate;
    use std::sync::Arc;

    const CT: &str = "002101000010000";
    const DRUG: &str = "XC09AAA001A001010101";

    fn past(mdtrt: &str, l: crate::claim::Line) -> PastLine {
        PastLine::of(mdtrt.into(), &l, true)
    }
    fn visit(id: &str, fix: &str) -> PastVisit {
        PastVisit {
            mdtrt_id: id.into(),
            visit: None,
            fixmedins_code: fix.into(),
            admitted: None,
            discharged: None,
            main_dise: None,
            main_dise_name: None,
        }
    }

    #[test]
    fn the_same_exam_within_7_days_is_reminded_with_its_date() {
        let rs = ruleset(&rule(
            "repeat_item",
            "【{item}】{days}天内已于{prev_date}检查，可结果互认",
            &format!("    select: {{ codes: [\"{CT}\"] }}\n    params: {{ mode: exam, days: 7 }}\n"),
        ));
        let mut c = claim();
        c.lines.push(line("F1", CT, 1, 20000, "2025-06-08 09:00:00"));
        let h = History {
            visits: vec![visit("OLD", &c.fixmedins_code.clone()), visit("ELSE", "H99")],
            lines: vec![past("OLD", line("E1", CT, 1, 20000, "2025-06-02 10:00:00"))],
            ..History::default()
        };
        c.history = Some(Arc::new(h.clone()));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, format!("【{CT}】7天内已于2025-06-02检查，可结果互认"));
        c.lines[0] = line("F1", CT, 1, 20000, "2025-06-10 09:00:00");
        assert!(evaluate(&rs, &c).hits.is_empty(), "8 days later");
        let other = History { lines: vec![past("ELSE", line("E1", CT, 1, 20000, "2025-06-09 10:00:00"))], ..h };
        c.history = Some(Arc::new(other));
        assert!(evaluate(&rs, &c).hits.is_empty(), "another institution, scope institution");
    }

    #[test]
    fn a_drug_still_covered_by_an_earlier_supply_is_hit() {
        let rs = ruleset(&rule(
            "repeat_item",
            "【{item}】{prev_date}已开{prev_days}天（至{until}），重叠{overlap}天",
            &format!("    select: {{ codes: [\"{DRUG}\"] }}\n    params: {{ mode: drug, tolerance_days: 3 }}\n"),
        ));
        let mut c = claim();
        c.lines.push(line("F1", DRUG, 1, 3000, "2025-06-20 09:00:00"));
        let mut prev = line("E1", DRUG, 1, 3000, "2025-06-01 10:00:00");
        prev.days_supply = Some(Qty::whole(30));
        c.history = Some(Arc::new(History { lines: vec![past("OLD", prev.clone())], ..History::default() }));
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits[0].message, format!("【{DRUG}】2025-06-01已开30天（至2025-07-01），重叠11天"));
        c.lines[0] = line("F1", DRUG, 1, 3000, "2025-06-28 09:00:00");
        assert!(evaluate(&rs, &c).hits.is_empty(), "3 days early is within tolerance");
    }
}
