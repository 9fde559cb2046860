//! 限定支付范围 / 限适应症: an item payable only with certain diagnoses on the claim.

use super::*;
use crate::rules::decision::{Fact, Val};
use regex::Regex;

const VARS: &[&str] = &["item", "code", "required", "diagnoses"];
pub(crate) static SPEC: KindSpec = KindSpec::new("diagnosis_required", Scope::Line, TableShape::Rows, VARS, compile);

struct Required {
    prefixes: CodeList,
    patterns: Vec<Regex>,
    /// Disease names: a diagnosis whose name contains one qualifies (a row's non-code entries).
    terms: Vec<Box<str>>,
    text: String,
}

impl Required {
    fn matches(&self, d: &crate::claim::Diagnosis) -> bool {
        self.prefixes.matches(&d.code)
            || self.patterns.iter().any(|r| r.is_match(&d.code))
            || self.terms.iter().any(|t| d.name.contains(&**t))
    }
}

struct DiagLogic {
    req: RowParams<Required>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["diagnoses", "diagnosis_patterns", "description"])?;
    let patterns = match i.params.get("diagnosis_patterns") {
        Some(v) => value_list(v)?
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("params.diagnosis_patterns: invalid regex {p:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![],
    };
    let description = i.params.get("description").map(value_text).transpose()?;
    let default = match i.params.get("diagnoses") {
        Some(v) => {
            let list = value_list(v)?;
            let prefixes = CodeList::parse_prefixes(&list)?;
            let text = description.clone().unwrap_or_else(|| prefixes.text());
            Some(Required { prefixes, patterns, terms: vec![], text })
        }
        None if !patterns.is_empty() => Some(Required {
            prefixes: CodeList::default(),
            patterns,
            terms: vec![],
            text: description.clone().unwrap_or_default(),
        }),
        None => None,
    };
    let mut req = RowParams::with_default(i, default, "params.diagnoses or params.diagnosis_patterns", |param| {
        // ICD-10 codes are ASCII; any other entry is a disease name (肝硬化).
        let (codes, terms): (Vec<String>, Vec<String>) =
            param.split('|').map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).partition(|e| e.is_ascii());
        let prefixes = CodeList::parse_prefixes(&codes)?;
        let text = terms.first().map_or_else(|| prefixes.text(), |_| terms.join("、"));
        Ok(Required { prefixes, patterns: vec![], terms: terms.into_iter().map(Into::into).collect(), text })
    })?;
    // A row's published text (the 限定支付范围) is what people read, rather than its code list.
    for (slot, (_, row)) in req.rows.iter_mut().zip(i.rows) {
        if let (Some(r), note) = (slot.as_mut(), row.note.trim()) {
            if !note.is_empty() {
                note.clone_into(&mut r.text);
            }
        }
    }
    Ok(Compiled { logic: Box::new(DiagLogic { req }), matchers: vec![] })
}

impl Logic for DiagLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(req), Some(line)) = (self.req.get(tag), c.lines.get(li as usize)) else { return };
        let Some(diags) = c.encounter.diagnoses.as_ref() else {
            out.unchecked(r.index, li, Fact::Diagnoses);
            return;
        };
        if diags.iter().any(|d| req.matches(d)) {
            return;
        }
        let shown = if diags.is_empty() {
            "无".to_owned()
        } else {
            // Named as people know them, with the code beside.
            diags
                .iter()
                .map(|d| {
                    if d.name.trim().is_empty() {
                        d.code.clone()
                    } else {
                        format!("{}（{}）", d.name.trim(), d.code)
                    }
                })
                .collect::<Vec<_>>()
                .join("、")
        };
        r.hit_line(
            out,
            li,
            line,
            tag,
            vec![("required", Val::Str(req.text.as_str().into())), ("diagnoses", Val::Str(shown.into()))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::Diagnosis;
    use crate::rules::evaluate;

    #[test]
    fn albumin_without_a_qualifying_diagnosis_is_hit() {
        let rs = ruleset(&rule(
            "diagnosis_required",
            "【{item}】限{required}，本次诊断{diagnoses}",
            "    select: { code_prefixes: [XB05AAR] }\n    params: { diagnoses: [R57, K74, \"K70.3\"], description: 休克或肝硬化 }\n",
        ));
        let mut c = claim();
        c.lines.push(line("F1", "XB05AAR001B002010100001", 1, 40000, "2025-06-01 09:00:00"));
        c.encounter.diagnoses = Some(vec![Diagnosis { code: "I10.x00".into(), name: "高血压".into(), main: true }]);
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits[0].message, "【XB05AAR001B002010100001】限休克或肝硬化，本次诊断高血压（I10.x00）");
        c.encounter.diagnoses.as_mut().unwrap().push(Diagnosis {
            code: "K74.600".into(),
            name: "肝硬化".into(),
            main: false,
        });
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.encounter.diagnoses = None;
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "diagnoses");
    }
}
