//! 超限价 / 超标准收费: a unit price above the 医保 price limit.

use super::*;
use crate::claim::Price;
use crate::rules::decision::Val;

const VARS: &[&str] = &["item", "code", "price", "max", "excess"];
pub(crate) static SPEC: KindSpec = KindSpec::new("price_cap", Scope::Line, TableShape::Rows, VARS, compile);

fn parse_price(s: &str) -> Result<Price, String> {
    let u = crate::wire::num::parse_fixed(s, 6).map_err(|e| format!("{s:?}: {e}"))?;
    if u < 0 {
        return Err("negative price".into());
    }
    Ok(Price::from_micro(u))
}

struct CapLogic {
    max: RowParams<Price>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    let max = RowParams::only(i, "max_price", parse_price)?;
    Ok(Compiled { logic: Box::new(CapLogic { max }), matchers: vec![] })
}

impl Logic for CapLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(&max), Some(line)) = (self.max.get(tag), c.lines.get(li as usize)) else { return };
        if line.price > max {
            let excess = Price::from_micro(line.price.micro() - max.micro()).times(line.qty);
            out.hit(
                r.index,
                vec![li],
                excess,
                vec![
                    ("item", Val::Str(r.item_name(line, tag))),
                    ("code", Val::Str(line.code.clone())),
                    ("price", Val::Price(line.price)),
                    ("max", Val::Price(max)),
                    ("excess", Val::Fen(excess)),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    #[test]
    fn price_above_the_cap_is_hit_with_the_excess_amount() {
        let rs = ruleset(&rule(
            "price_cap",
            "【{item}】单价{price}元超过限价{max}元，超出{excess}元",
            "    select: { codes: [\"001102000010000\"] }\n    params: { max_price: \"10.00\" }\n",
        ));
        let mut c = claim();
        c.lines.push(line("F1", "001102000010000", 2, 1250, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "001102000010000", 1, 1000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【001102000010000】单价12.50元超过限价10.00元，超出5.00元");
        assert_eq!(d.hits[0].amount.get(), 500);
    }
}
