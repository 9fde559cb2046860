//! 限就医方式: an item payable only for some visit types (两库 第四批: 35 drugs 限住院;
//! 安宫牛黄丸 限急诊或住院 = visits [inpatient] + med_types ["13"]).

use super::*;
use crate::claim::Visit;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "visit", "allowed"];
pub(crate) static SPEC: KindSpec = KindSpec::new("visit_type", Scope::Line, TableShape::Rows, VARS, compile);

struct VisitLogic {
    visits: Vec<Visit>,
    med_types: Vec<String>,
    allowed_text: String,
}

fn parse_visit(s: &str) -> Result<Visit, String> {
    match s {
        "outpatient" | "门诊" => Ok(Visit::Outpatient),
        "inpatient" | "住院" => Ok(Visit::Inpatient),
        "pharmacy" | "药店" => Ok(Visit::Pharmacy),
        o => Err(format!("unknown visit {o:?} (outpatient, inpatient, pharmacy)")),
    }
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["visits", "med_types"])?;
    let visits = match i.params.get("visits") {
        Some(v) => value_list(v)?.iter().map(|s| parse_visit(s)).collect::<Result<Vec<_>, _>>()?,
        None => vec![],
    };
    let med_types = match i.params.get("med_types") {
        Some(v) => value_list(v)?,
        None => vec![],
    };
    if visits.is_empty() && med_types.is_empty() {
        return Err("params.visits or params.med_types is required".into());
    }
    let mut parts: Vec<String> = visits.iter().map(|v| v.text().to_owned()).collect();
    parts.extend(med_types.iter().map(|m| format!("医疗类别{m}")));
    Ok(Compiled {
        logic: Box::new(VisitLogic { visits, med_types, allowed_text: parts.join("或") }), matchers: vec![]
    })
}

impl Logic for VisitLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let Some(line) = c.lines.get(li as usize) else { return };
        let e = &c.encounter;
        if e.visit.is_some_and(|v| self.visits.contains(&v)) {
            return;
        }
        if !self.med_types.is_empty() {
            match e.med_type.as_deref() {
                Some(mt) if self.med_types.iter().any(|m| m == mt) => return,
                None => {
                    out.unchecked(r.index, li, Fact::MedType);
                    return;
                }
                Some(_) => {}
            }
        } else if e.visit.is_none() {
            out.unchecked(r.index, li, Fact::Visit);
            return;
        }
        let visit = match (e.visit, e.med_type.as_deref()) {
            (Some(v), Some(mt)) => format!("{}（医疗类别{mt}）", v.text()),
            (Some(v), None) => v.text().to_owned(),
            (None, Some(mt)) => format!("医疗类别{mt}"),
            (None, None) => "未知".to_owned(),
        };
        r.hit_line(
            out,
            li,
            line,
            tag,
            vec![("visit", Val::Str(visit.into())), ("allowed", Val::Str(self.allowed_text.as_str().into()))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::Visit;
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        ruleset(&rule(
            "visit_type",
            "【{item}】限{allowed}，本次为{visit}",
            "    select: { codes: [ZA01AAA0001010100001A00] }\n    params: { visits: [inpatient], med_types: [\"13\"] }\n",
        ))
    }

    #[test]
    fn inpatient_only_drug_in_ordinary_outpatient_is_hit() {
        let mut c = claim();
        c.lines.push(line("F1", "ZA01AAA0001010100001A00", 1, 5000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【ZA01AAA0001010100001A00】限住院或医疗类别13，本次为门诊（医疗类别11）");
    }

    #[test]
    fn emergency_and_inpatient_pass_unknown_med_type_is_unchecked() {
        let mut c = claim();
        c.lines.push(line("F1", "ZA01AAA0001010100001A00", 1, 5000, "2025-06-01 09:00:00"));
        c.encounter.med_type = Some("13".into());
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.encounter.med_type = Some("21".into());
        c.encounter.visit = Some(Visit::Inpatient);
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.encounter.visit = Some(Visit::Outpatient);
        c.encounter.med_type = None;
        let d = evaluate(&rs(), &c);
        assert!(d.hits.is_empty());
        assert_eq!(d.unchecked[0].fact, "med_type");
    }
}
