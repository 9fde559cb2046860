//! 药品限工伤保险 / 药品限生育保险 (两库 第三批): an item payable only to insured persons of some
//! insurance types. `insutypes` are the allowed `insutype` codes; `med_types` are visit types that
//! qualify whatever the insutype (生育门诊 51, 生育住院 52 for 限生育). `label` names the allowed
//! insurance in messages (工伤保险). An unknown insutype is `unchecked`, never guessed.

use super::*;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "allowed", "insutype"];
pub(crate) static SPEC: KindSpec = KindSpec::new("insurance_type", Scope::Line, TableShape::Rows, VARS, compile);

struct Allowed {
    insutypes: Vec<Box<str>>,
    label: String,
}

struct InsuranceLogic {
    allowed: RowParams<Allowed>,
    med_types: Vec<Box<str>>,
}

/// The `insutype` code table's names (domain.md; 410 and 510 as the 人社 险种类型 also reads them).
pub(crate) fn insutype_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "310" => "职工基本医疗保险",
        "320" => "公务员医疗补助",
        "330" => "大额医疗费用补助",
        "340" => "离休人员医疗保障",
        "350" => "一至六级残废军人医疗补助",
        "360" => "老红军医疗保障",
        "370" => "企业补充医疗保险",
        "380" => "新型农村合作医疗",
        "390" => "城乡居民基本医疗保险",
        "391" => "城镇居民基本医疗保险",
        "392" => "城乡居民大病医疗保险",
        "399" => "其他特殊人员医疗保障",
        "410" => "工伤保险",
        "510" => "生育保险",
        _ => return None,
    })
}

fn parse_list(items: Vec<String>) -> Result<Vec<Box<str>>, String> {
    if items.is_empty() || items.iter().any(|i| i.trim().is_empty()) {
        return Err("an insutype list needs codes".into());
    }
    Ok(items.into_iter().map(|i| i.trim().into()).collect())
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["insutypes", "med_types", "label"])?;
    let label = i.params.get("label").map(value_text).transpose()?;
    let labelled = |insutypes: Vec<Box<str>>| {
        let text = label
            .clone()
            .unwrap_or_else(|| insutypes.iter().map(|c| insutype_name(c).unwrap_or(c)).collect::<Vec<_>>().join("或"));
        Allowed { insutypes, label: text }
    };
    let default = i.params.get("insutypes").map(|v| value_list(v).and_then(parse_list)).transpose()?.map(labelled);
    let allowed = RowParams::with_default(i, default, "params.insutypes", |p| {
        parse_list(p.split('|').map(str::to_owned).collect()).map(labelled)
    })?;
    let med_types = match i.params.get("med_types") {
        Some(v) => parse_list(value_list(v)?)?,
        None => Vec::new(),
    };
    Ok(Compiled { logic: Box::new(InsuranceLogic { allowed, med_types }), matchers: vec![] })
}

impl Logic for InsuranceLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(allowed), Some(line)) = (self.allowed.get(tag), c.lines.get(li as usize)) else { return };
        if let Some(mt) = c.encounter.med_type.as_deref() {
            if self.med_types.iter().any(|m| mt.starts_with(&**m)) {
                return;
            }
        }
        let Some(insutype) = c.patient.insutype.as_deref() else {
            out.unchecked(r.index, li, Fact::Insutype);
            return;
        };
        if allowed.insutypes.iter().any(|a| &**a == insutype.trim()) {
            return;
        }
        let shown = match insutype_name(insutype.trim()) {
            Some(n) => smol_str::format_smolstr!("{n}（{insutype}）"),
            None => smol_str::format_smolstr!("险种{insutype}"),
        };
        r.hit_line(
            out,
            li,
            line,
            tag,
            vec![("allowed", Val::Str(allowed.label.as_str().into())), ("insutype", Val::Str(shown))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        ruleset(&rule(
            "insurance_type",
            "【{item}】限{allowed}，本次为{insutype}",
            "    select: { codes: [XG02ADK026B002010100568] }\n    params: { insutypes: ['510'], med_types: ['51', '52'] }\n",
        ))
    }

    #[test]
    fn a_maternity_only_drug_for_a_resident_insured_is_hit() {
        let mut c = claim();
        c.lines.push(line("F1", "XG02ADK026B002010100568", 1, 9000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【XG02ADK026B002010100568】限生育保险，本次为城乡居民基本医疗保险（390）");
    }

    #[test]
    fn passes_for_the_allowed_insutype_or_a_maternity_visit() {
        let mut c = claim();
        c.lines.push(line("F1", "XG02ADK026B002010100568", 1, 9000, "2025-06-01 09:00:00"));
        c.patient.insutype = Some("510".into());
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.patient.insutype = Some("310".into());
        c.encounter.med_type = Some("52".into());
        assert!(evaluate(&rs(), &c).hits.is_empty(), "生育住院 qualifies whatever the insutype");
    }

    #[test]
    fn an_unknown_insutype_is_unchecked() {
        let mut c = claim();
        c.patient.insutype = None;
        c.lines.push(line("F1", "XG02ADK026B002010100568", 1, 9000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert!(d.hits.is_empty());
        assert_eq!(d.unchecked[0].fact, "insutype");
    }
}
