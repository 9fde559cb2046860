//! 单次就诊限量: units of one item per visit above a maximum (诊查费 once per outpatient visit;
//! the same item billed twice where once is the maximum). Shares the counting of `daily_units`,
//! with this visit's accepted lines from earlier messages (two 诊查费 uploads for one visit).

use super::*;

const VARS: &[&str] = &["item", "code", "count", "max", "excess", "earlier"];
pub(crate) static SPEC: KindSpec = KindSpec::new("claim_units", Scope::Group, TableShape::Rows, VARS, compile);

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    super::daily_units::compile_units(i, false)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    #[test]
    fn a_consultation_fee_twice_in_one_visit_is_hit() {
        let rs = ruleset(&rule(
            "claim_units",
            "【{item}】本次就诊计{count}次，限{max}次",
            "    select: { codes: [\"001102000010000\"] }\n    params: { max: 1 }\n",
        ));
        let mut c = claim();
        c.lines.push(line("A", "001102000010000", 1, 1000, "2025-06-01 09:00:00"));
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.lines.push(line("B", "001102000010000", 1, 1000, "2025-06-02 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["A", "B"]));
        assert_eq!(d.hits[0].message, "【001102000010000】本次就诊计2次，限1次");
    }
}
