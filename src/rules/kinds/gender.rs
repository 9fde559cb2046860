//! 限性别 (区分性别使用): an item for one sex billed for the other (两库 第一批).

use super::*;
use crate::claim::Gender;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "allowed", "gender"];
pub(crate) static SPEC: KindSpec = KindSpec::new("gender", Scope::Line, TableShape::Rows, VARS, compile);

fn parse_gender(s: &str) -> Result<Gender, String> {
    match s.trim() {
        "1" | "男" | "男性" | "M" | "male" => Ok(Gender::Male),
        "2" | "女" | "女性" | "F" | "female" => Ok(Gender::Female),
        o => Err(format!("not a gender: {o:?} (1/男, 2/女)")),
    }
}

struct GenderLogic {
    allowed: RowParams<Gender>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    let allowed = RowParams::only(i, "gender", parse_gender)?;
    Ok(Compiled { logic: Box::new(GenderLogic { allowed }), matchers: vec![] })
}

impl Logic for GenderLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(&allowed), Some(line)) = (self.allowed.get(tag), c.lines.get(li as usize)) else { return };
        match c.patient.gender {
            None => out.unchecked(r.index, li, Fact::Gender),
            Some(g) if g != allowed => r.hit_line(
                out,
                li,
                line,
                tag,
                vec![
                    ("allowed", Val::Str(smol_str::format_smolstr!("{}性", allowed.text()))),
                    ("gender", Val::Str(smol_str::format_smolstr!("{}性", g.text()))),
                ],
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::Gender;
    use crate::rules::evaluate;

    const TABLE: &str = "code,name,param,basis\n002202020010000,经阴道B超,女,第一批\nXL02BBA%,阿帕他胺,男,第一批\n";

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule("gender", "【{item}】限{allowed}，患者为{gender}", "    select: { table: tables/g.csv }\n");
        try_ruleset(&y, &[("tables/g.csv", TABLE)]).unwrap()
    }

    #[test]
    fn blocks_a_female_only_item_for_a_man() {
        let mut c = claim();
        c.lines.push(line("F1", "002202020010000", 1, 12000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【经阴道B超】限女性，患者为男性");
        assert_eq!(d.hits[0].amount.get(), 12000);
    }

    #[test]
    fn passes_the_item_for_a_woman_and_matches_prefix_rows() {
        let mut c = claim();
        c.patient.gender = Some(Gender::Female);
        c.lines.push(line("F1", "002202020010000", 1, 12000, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "XL02BBA123A001010100001", 1, 100, "2025-06-01 09:00:00"));
        assert_eq!(hits(&evaluate(&rs(), &c)), one("R1", &["F2"]));
    }

    #[test]
    fn unknown_gender_is_unchecked_not_guessed() {
        let mut c = claim();
        c.patient.gender = None;
        c.lines.push(line("F1", "002202020010000", 1, 12000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert!(d.hits.is_empty());
        assert_eq!(d.unchecked[0].fact, "gend");
        assert_eq!(d.unchecked[0].lines, vec!["F1".to_string()]);
        assert_eq!(d.header_value(), "unchecked");
    }

    #[test]
    fn a_row_without_param_needs_a_default() {
        let y = rule("gender", "{item}", "    select: { table: tables/g.csv }\n");
        let e = try_ruleset(&y, &[("tables/g.csv", "code,name,param\nX1,a,\n")]).err().unwrap();
        assert!(e.to_string().contains("table line 2: no param"), "{e}");
    }
}
