//! 医疗服务项目周期超频次 (两库 第八批): an item paid at most once in `min_days` — 评定间隔时间不短于
//! 14天, 每周最多支付一次 (7), 糖化血红蛋白 once in about two months. A line is hit when the same item
//! was used fewer than `min_days` days before it (the same day included), at any visit in history
//! or earlier on this claim. A line of history that this claim carries again (a retried upload)
//! does not count against itself. The table row's `param` overrides `min_days`.

use super::*;
use crate::rules::decision::{Fact, Val};
use chrono::NaiveDate;

const VARS: &[&str] = &["item", "code", "prev_date", "gap", "min_days"];
pub(crate) static SPEC: KindSpec = KindSpec::new("interval", Scope::Group, TableShape::Rows, VARS, compile);

struct IntervalLogic {
    min: RowParams<i64>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    let min = RowParams::only(i, "min_days", |s| parse_days(s, 731))?;
    Ok(Compiled { logic: Box::new(IntervalLogic { min }), matchers: vec![] })
}

impl Logic for IntervalLogic {
    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        let mut own: Vec<(NaiveDate, u32, u32)> = members
            .iter()
            .filter_map(|&(li, tag)| c.lines.get(li as usize).filter(|l| !l.is_refund()).map(|l| (l.date(), li, tag)))
            .collect();
        own.sort_unstable();
        for (k, &(day, li, tag)) in own.iter().enumerate() {
            let Some(&min) = self.min.get(tag) else { continue };
            let line = &c.lines[li as usize];
            let close = |d: NaiveDate| d <= day && (day - d).num_days() < min;
            let earlier_own = own[..k]
                .iter()
                .filter(|(d, l, _)| c.lines[*l as usize].code == line.code && close(*d))
                .map(|(d, _, _)| *d)
                .max();
            let earlier_past = r
                .past
                .same_code(&line.code)
                .filter(|p| {
                    let retried = *p.mdtrt_id == *c.encounter.mdtrt_id
                        && own.iter().any(|&(_, l, _)| c.lines[l as usize].id == p.id);
                    !p.refund && !retried && close(p.date())
                })
                .map(|p| p.date())
                .max();
            match earlier_own.max(earlier_past) {
                Some(prev) => r.hit_line(
                    out,
                    li,
                    line,
                    tag,
                    vec![
                        ("prev_date", Val::Date(prev)),
                        ("gap", Val::Int((day - prev).num_days())),
                        ("min_days", Val::Int(min)),
                    ],
                ),
                None if c.history.is_none() => out.unchecked(r.index, li, Fact::History),
                None => {}
            }
        }
    }
    fn lookback_days(&self) -> u32 {
        self.min.rows.iter().flatten().chain(self.min.default.iter()).copied().max().unwrap_or(0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{History, PastLine};
    use crate::rules::evaluate;
    use std::sync::Arc;

    const TABLE: &str = "code,name,param,basis\n003402000050000,手功能评定,14,第八批\n";

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule(
            "interval",
            "【{item}】上次{prev_date}，间隔{gap}天，不足{min_days}天",
            "    select: { table: tables/i.csv }\n",
        );
        try_ruleset(&y, &[("tables/i.csv", TABLE)]).unwrap()
    }

    fn with_past(day: &str) -> crate::claim::Claim {
        let mut c = claim();
        let mut h = History::default();
        h.lines.push(PastLine::of("earlier".into(), &line("P1", "003402000050000", 1, 3000, day), true));
        c.history = Some(Arc::new(h));
        c
    }

    #[test]
    fn a_second_assessment_within_fourteen_days_of_an_earlier_visit_is_hit() {
        let mut c = with_past("2025-06-01 09:00:00");
        c.lines.push(line("F1", "003402000050000", 1, 3000, "2025-06-14 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【手功能评定】上次2025-06-01，间隔13天，不足14天");
    }

    #[test]
    fn fourteen_days_apart_passes() {
        let mut c = with_past("2025-06-01 09:00:00");
        c.lines.push(line("F1", "003402000050000", 1, 3000, "2025-06-15 09:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn two_on_one_claim_hit_the_later_one_and_unknown_history_is_unchecked() {
        let mut c = claim();
        c.lines.push(line("F1", "003402000050000", 1, 3000, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "003402000050000", 1, 3000, "2025-06-05 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F2"]));
        assert_eq!(d.unchecked[0].fact, "history");
        assert_eq!(d.unchecked[0].lines, vec!["F1".to_string()]);
    }
}
