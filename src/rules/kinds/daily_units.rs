//! 限定频次 (两库 第八批-1): units of one item per service day above a maximum — bed fee 1/日,
//! 级别护理 1/日, 心电监测 24 小时/日. Counts every line of the claim for that day together with the
//! same item's lines of that day the gateway accepted from earlier messages (history: a reversed
//! line is gone from it, a retried message's own lines count once); refund lines (negative `cnt`)
//! count negative. Only this claim's lines are hit, the earlier ones named in `{earlier}`; the excess
//! units, priced at this claim's lines, are the hit's amount.

use super::*;
use crate::claim::{Fen, Qty};
use crate::rules::decision::Val;
use chrono::NaiveDate;

const VARS: &[&str] = &["item", "code", "date", "count", "max", "excess", "earlier"];
pub(crate) static SPEC: KindSpec = KindSpec::new("daily_units", Scope::Group, TableShape::Rows, VARS, compile);

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    compile_units(i, true)
}

pub(crate) fn compile_units(i: &KindInput<'_>, per_day: bool) -> Result<Compiled, String> {
    let max = RowParams::only(i, "max", parse_qty)?;
    Ok(Compiled { logic: Box::new(UnitsLogic { max, per_day }), matchers: vec![] })
}

pub(crate) struct UnitsLogic {
    max: RowParams<Qty>,
    per_day: bool,
}

impl Logic for UnitsLogic {
    /// The day's (a visit's) earlier uploads are read from history.
    fn lookback_days(&self) -> u32 {
        if self.per_day {
            1
        } else {
            30
        }
    }

    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        // Key: the knowledge point (table row), or the code itself when matched by a list.
        let mut keyed: Vec<(u32, &str, Option<NaiveDate>, u32)> = members
            .iter()
            .filter_map(|&(li, tag)| {
                let l = c.lines.get(li as usize)?;
                let code = if tag == NO_ROW { l.code.as_str() } else { "" };
                Some((tag, code, self.per_day.then(|| l.date()), li))
            })
            .collect();
        keyed.sort_unstable();
        let mut i = 0;
        while i < keyed.len() {
            let (tag, code, date, _) = keyed[i];
            let mut j = i;
            let mut total = Qty::ZERO;
            while j < keyed.len() && (keyed[j].0, keyed[j].1, keyed[j].2) == (tag, code, date) {
                total += c.lines[keyed[j].3 as usize].qty;
                j += 1;
            }
            // The same item's accepted lines of that day (per visit: of this visit) from earlier messages.
            let own_units = total;
            let mut prior: Vec<&crate::claim::PastLine> = Vec::new();
            let mut codes: Vec<&str> = keyed[i..j].iter().map(|k| c.lines[k.3 as usize].code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            for code in codes {
                for p in r.past.earlier(code) {
                    let same = match date {
                        Some(d) => p.date() == d,
                        None => *p.mdtrt_id == *c.encounter.mdtrt_id,
                    };
                    if same {
                        total += p.qty;
                        prior.push(p);
                    }
                }
            }
            if let Some(&max) = self.max.get(tag) {
                if total > max && own_units > Qty::ZERO {
                    let group = &keyed[i..j];
                    let lines: Vec<u32> =
                        group.iter().map(|g| g.3).filter(|&li| c.lines[li as usize].qty > Qty::ZERO).collect();
                    let excess = total - max;
                    let last = &c.lines[group[j - i - 1].3 as usize];
                    // The excess units are the last ones billed, each at its own line's price (one
                    // item may be billed at different prices in one claim).
                    let mut left = excess;
                    let mut amount = Fen::ZERO;
                    for g in group.iter().rev() {
                        let l = &c.lines[g.3 as usize];
                        if left <= Qty::ZERO {
                            break;
                        }
                        if l.qty <= Qty::ZERO {
                            continue;
                        }
                        let take = if l.qty < left { l.qty } else { left };
                        amount += l.price.times(take);
                        left = left - take;
                    }
                    let mut ev = vec![
                        ("item", Val::Str(r.item_name(last, tag))),
                        ("code", Val::Str(last.code.clone())),
                        ("count", Val::Qty(total)),
                        ("max", Val::Qty(max)),
                        ("excess", Val::Qty(excess)),
                        ("earlier", Val::Str(earlier_note(&prior))),
                    ];
                    if let Some(d) = date {
                        ev.push(("date", Val::Date(d)));
                    }
                    out.hit(r.index, lines, amount, ev);
                }
            }
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule("daily_units", "{date}【{item}】计{count}，限{max}/日", "    select: { table: tables/f.csv }\n");
        let t = "code,name,param\n001109000010000,普通病房床位费,1\n003107010220000,心电监测,24\n";
        try_ruleset(&y, &[("tables/f.csv", t)]).unwrap()
    }

    #[test]
    fn two_bed_days_on_one_date_are_hit_one_per_date_is_not() {
        let mut c = claim();
        c.lines.push(line("B1", "001109000010000", 1, 3000, "2025-06-01 00:00:01"));
        c.lines.push(line("B2", "001109000010000", 1, 3000, "2025-06-01 23:00:00"));
        c.lines.push(line("B3", "001109000010000", 1, 3000, "2025-06-02 00:00:01"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["B1", "B2"]));
        assert_eq!(d.hits[0].message, "2025-06-01【普通病房床位费】计2，限1/日");
        assert_eq!(d.hits[0].amount.get(), 3000);
    }

    #[test]
    fn monitoring_24_hours_is_the_boundary_and_refunds_net_out() {
        let mut c = claim();
        c.lines.push(line("M1", "003107010220000", 20, 300, "2025-06-01 08:00:00"));
        c.lines.push(line("M2", "003107010220000", 4, 300, "2025-06-01 20:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.lines.push(line("M3", "003107010220000", 2, 300, "2025-06-01 22:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["M1", "M2", "M3"]));
        assert_eq!(d.hits[0].amount.get(), 600);
        c.lines.push(line("M4", "003107010220000", -2, 300, "2025-06-01 23:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn a_bed_day_uploaded_earlier_counts_and_a_retry_or_a_reversed_line_does_not() {
        use crate::claim::{History, PastLine};
        use std::sync::Arc;
        let mut c = claim();
        let mid: Arc<str> = c.encounter.mdtrt_id.as_str().into();
        let earlier = line("B0", "001109000010000", 1, 3000, "2025-06-01 08:00:00");
        let mut h = History::default();
        h.lines.push(PastLine::of(mid.clone(), &earlier, false));
        c.history = Some(Arc::new(h.clone()));
        c.lines.push(line("B1", "001109000010000", 1, 3000, "2025-06-01 20:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["B1"]), "only this upload's line is hit");
        assert_eq!(d.hits[0].amount.get(), 3000);
        let mut note = String::new();
        if let Some((_, v)) = d.hits[0].evidence.iter().find(|(k, _)| *k == "earlier") {
            v.write_text(&mut note);
        }
        assert_eq!(note, "（含此前已上传的明细B0 2025-06-01 08:00:00）");
        // The same upload sent again: its line is in history already and counts once.
        c.lines[0] = line("B0", "001109000010000", 1, 3000, "2025-06-01 08:00:00");
        assert!(evaluate(&rs(), &c).hits.is_empty());
        // The earlier line reversed (gone from history): the new one passes.
        c.lines[0] = line("B1", "001109000010000", 1, 3000, "2025-06-01 20:00:00");
        c.history = Some(Arc::new(History::default()));
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn the_excess_is_priced_at_the_prices_of_the_units_over_the_limit() {
        // One bed day billed three times at three prices: the two over the limit are the last two.
        let mut c = claim();
        c.lines.push(line("A", "001109000010000", 1, 0, "2025-06-10 08:00:00"));
        c.lines.push(line("B", "001109000010000", 1, 0, "2025-06-10 12:00:00"));
        c.lines.push(line("C", "001109000010000", 1, 1, "2025-06-10 20:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(d.hits[0].amount.to_string(), "0.01", "never more than the lines are worth");
        c.lines[0] = line("A", "001109000010000", 1, 5000, "2025-06-10 08:00:00");
        assert_eq!(evaluate(&rs(), &c).hits[0].amount.to_string(), "0.01", "the first, allowed unit is not charged");
    }
}
