//! 手术项目未按规定折价收费 (两库 第二批): two or more different operations through one incision —
//! operations of one 手术组 on one day of one visit — are charged in full for the main one (the
//! highest unit price) and at `rate` (default 0.5, 50%) for the second and later ones. A later
//! operation whose amount is above `rate × unit price` was not discounted; the excess is the hit's
//! amount. The table's `param` is the row's 手术组; rows without one form one group.

use super::*;
use crate::claim::{Price, Qty};
use crate::rules::decision::Val;

const VARS: &[&str] = &["item", "code", "main", "group", "rate", "date", "excess"];
pub(crate) static SPEC: KindSpec = KindSpec::new("incision_discount", Scope::Group, TableShape::Rows, VARS, compile);

struct DiscountLogic {
    rate: Qty,
    rate_text: SmolStr,
    /// The 手术组 of each row (tag).
    groups: Vec<SmolStr>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["rate"])?;
    let rate = match i.params.get("rate") {
        Some(v) => parse_qty(&value_text(v)?).map_err(|e| format!("params.rate: {e}"))?,
        None => Qty::from_units(Qty::SCALE / 2),
    };
    if rate.units() > Qty::SCALE {
        return Err("params.rate: at most 1".into());
    }
    let pct = rate.units() * 100 / Qty::SCALE;
    let groups = i.rows.iter().map(|(_, r)| SmolStr::new(r.param.trim())).collect();
    Ok(Compiled {
        logic: Box::new(DiscountLogic { rate, rate_text: smol_str::format_smolstr!("{pct}%"), groups }),
        matchers: vec![],
    })
}

impl DiscountLogic {
    fn group_of(&self, tag: u32) -> SmolStr {
        self.groups.get(tag as usize).cloned().unwrap_or_default()
    }
}

impl Logic for DiscountLogic {
    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        // (day, 手术组, unit price, line, tag): a bucket is one day and one group.
        let mut ops: Vec<(chrono::NaiveDate, SmolStr, Price, u32, u32)> = members
            .iter()
            .filter_map(|&(li, tag)| {
                let l = c.lines.get(li as usize).filter(|l| !l.is_refund())?;
                Some((l.date(), self.group_of(tag), l.price, li, tag))
            })
            .collect();
        ops.sort_by(|a, b| (a.0, &a.1, std::cmp::Reverse(a.2), a.3).cmp(&(b.0, &b.1, std::cmp::Reverse(b.2), b.3)));
        let mut i = 0;
        while i < ops.len() {
            let mut j = i + 1;
            while j < ops.len() && ops[j].0 == ops[i].0 && ops[j].1 == ops[i].1 {
                j += 1;
            }
            let (day, group, _, main_li, main_tag) = &ops[i];
            let main = &c.lines[*main_li as usize];
            for &(_, _, price, li, tag) in &ops[i + 1..j] {
                let line = &c.lines[li as usize];
                if line.code == main.code {
                    continue; // the same operation twice is a quantity question, not a second one
                }
                let allowed = price.times(self.rate);
                if line.amount.get() <= allowed.get() {
                    continue;
                }
                out.hit(
                    r.index,
                    vec![li],
                    line.amount - allowed,
                    vec![
                        ("item", Val::Str(r.item_name(line, tag))),
                        ("code", Val::Str(line.code.clone())),
                        ("main", Val::Str(r.item_name(main, *main_tag))),
                        ("group", Val::Str(group.clone())),
                        ("rate", Val::Str(self.rate_text.clone())),
                        ("date", Val::Date(*day)),
                        ("excess", Val::Fen(line.amount - allowed)),
                    ],
                );
            }
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Price, Qty};
    use crate::rules::evaluate;

    const TABLE: &str = "code,name,param,basis\n003310030080000,肠粘连松解术,经腹直肠手术组,第二批\n003310030170100,结肠造瘘术,经腹直肠手术组,第二批\n003311040090000,尿道憩室切除术,膀胱尿道手术组,第二批\n";

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule(
            "incision_discount",
            "同一切口【{main}】后的【{item}】应按{rate}收费，多收{excess}元",
            "    select: { table: tables/s.csv }\n",
        );
        try_ruleset(&y, &[("tables/s.csv", TABLE)]).unwrap()
    }

    #[test]
    fn a_second_operation_of_the_group_charged_in_full_is_hit() {
        let mut c = claim();
        c.lines.push(line("F1", "003310030080000", 1, 120000, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "003310030170100", 1, 80000, "2025-06-01 10:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F2"]));
        assert_eq!(d.hits[0].message, "同一切口【肠粘连松解术】后的【结肠造瘘术】应按50%收费，多收400.00元");
        assert_eq!(d.hits[0].amount.get(), 40000);
    }

    #[test]
    fn a_discounted_second_operation_passes_and_so_does_the_boundary() {
        let mut c = claim();
        c.lines.push(line("F1", "003310030080000", 1, 120000, "2025-06-01 09:00:00"));
        let mut half = line("F2", "003310030170100", 1, 80000, "2025-06-01 10:00:00");
        half.qty = Qty::from_units(Qty::SCALE / 2);
        half.amount = Price::from_micro(80000 * 10_000).times(half.qty);
        c.lines.push(half);
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn operations_of_other_groups_or_days_are_not_compared() {
        let mut c = claim();
        c.lines.push(line("F1", "003310030080000", 1, 120000, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "003311040090000", 1, 80000, "2025-06-01 10:00:00"));
        c.lines.push(line("F3", "003310030170100", 1, 80000, "2025-06-02 10:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }
}
