//! 限医疗机构级别: an item payable only at institutions of at least a tier (两库 第五批).

use super::*;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "tier", "min_tier"];
pub(crate) static SPEC: KindSpec = KindSpec::new("institution_level", Scope::Line, TableShape::Rows, VARS, compile);

fn tier_text(t: u8) -> &'static str {
    match t {
        3 => "三级",
        2 => "二级",
        1 => "一级",
        _ => "未定级",
    }
}

fn parse_tier(s: &str) -> Result<u8, String> {
    crate::claim::normalize::tier_from_name(s).ok_or_else(|| format!("not a tier: {:?} (1, 2, 3)", s.trim()))
}

struct LevelLogic {
    min: RowParams<u8>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    let min = RowParams::only(i, "min_tier", parse_tier)?;
    Ok(Compiled { logic: Box::new(LevelLogic { min }), matchers: vec![] })
}

impl Logic for LevelLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(&min), Some(line)) = (self.min.get(tag), c.lines.get(li as usize)) else { return };
        match c.encounter.tier {
            None => out.unchecked(r.index, li, Fact::InstitutionLevel),
            Some(t) if t < min => r.hit_line(
                out,
                li,
                line,
                tag,
                vec![
                    ("tier", Val::Str(tier_text(t).into())),
                    ("min_tier", Val::Str(smol_str::format_smolstr!("{}及以上", tier_text(min)))),
                ],
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    #[test]
    fn third_tier_only_drug_at_a_second_tier_hospital_is_hit() {
        let rs = ruleset(&rule(
            "institution_level",
            "【{item}】限{min_tier}医疗机构，本院为{tier}",
            "    select: { code_prefixes: [XS01LAL] }\n    params: { min_tier: 3 }\n",
        ));
        let mut c = claim();
        c.lines.push(line("F1", "XS01LALL001B001010100001", 1, 300000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits[0].message, "【XS01LALL001B001010100001】限三级及以上医疗机构，本院为二级");
        c.encounter.tier = Some(3);
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.encounter.tier = None;
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "medins_lv");
    }
}
