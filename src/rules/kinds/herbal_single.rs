//! 中药饮片单方使用不予支付 (两库 第十一批): listed pieces are not paid when used alone, nor in a
//! prescription made only of listed pieces. The claim's herbal lines (中药饮片, `T…`) stand for the
//! prescription: when every one of them is listed, they are hit together; one unlisted piece makes
//! it a compound prescription the fund pays. Refund lines take no part.

use super::*;
use crate::claim::ItemClass;
use crate::rules::decision::Val;

const VARS: &[&str] = &["items", "count"];
pub(crate) static SPEC: KindSpec = KindSpec::new("herbal_single", Scope::Group, TableShape::Rows, VARS, compile);

struct HerbalSingleLogic;

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &[])?;
    Ok(Compiled { logic: Box::new(HerbalSingleLogic), matchers: vec![] })
}

impl Logic for HerbalSingleLogic {
    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        let listed: Vec<(u32, u32)> = members
            .iter()
            .copied()
            .filter(|&(li, _)| c.lines.get(li as usize).is_some_and(|l| !l.is_refund()))
            .collect();
        if listed.is_empty() {
            return;
        }
        let unlisted = c.lines.iter().enumerate().any(|(i, l)| {
            l.class == ItemClass::Herbal && !l.is_refund() && !listed.iter().any(|&(li, _)| li as usize == i)
        });
        if unlisted {
            return;
        }
        let mut names: Vec<SmolStr> = Vec::with_capacity(listed.len());
        let mut amount = Fen::ZERO;
        for &(li, tag) in &listed {
            let line = &c.lines[li as usize];
            amount += line.amount;
            let n = r.item_name(line, tag);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        out.hit(
            r.index,
            listed.iter().map(|&(li, _)| li).collect(),
            amount,
            vec![("items", Val::Str(names.join("、").into())), ("count", Val::Int(names.len() as i64))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    const TABLE: &str = "code,name,param,basis\nT001700353,红参,,第十一批\nT001700316,龟甲胶,,第十一批\n";

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule("herbal_single", "{items}单独使用不予支付", "    select: { table: tables/h.csv }\n");
        try_ruleset(&y, &[("tables/h.csv", TABLE)]).unwrap()
    }

    #[test]
    fn a_prescription_of_listed_pieces_only_is_hit() {
        let mut c = claim();
        c.lines.push(line("F1", "T001700353", 10, 300, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "T001700316", 10, 500, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F1", "F2"]));
        assert_eq!(d.hits[0].message, "红参、龟甲胶单独使用不予支付");
        assert_eq!(d.hits[0].amount.get(), 8000);
    }

    #[test]
    fn one_unlisted_piece_makes_a_compound_prescription_that_passes() {
        let mut c = claim();
        c.lines.push(line("F1", "T001700353", 10, 300, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "T000600001", 10, 20, "2025-06-01 09:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn drugs_and_services_beside_a_single_piece_do_not_save_it() {
        let mut c = claim();
        c.lines.push(line("F1", "T001700353", 10, 300, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "001102000010000", 1, 1000, "2025-06-01 09:00:00"));
        assert_eq!(hits(&evaluate(&rs(), &c)), one("R1", &["F1"]));
    }
}
