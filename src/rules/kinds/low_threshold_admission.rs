//! 低标准入院 at admission (2401, or 3101/3102 with trig_scen 3 住院登记): a principal diagnosis on the
//! pack's low-threshold list gets a reminder. The list is local policy (domain.md: no national numbers).

use super::*;
use crate::rules::decision::{Fact, Val};

pub(crate) static SPEC: KindSpec = KindSpec {
    name: "low_threshold_admission",
    vars: &["diagnosis", "diagnosis_name"],
    scope: Scope::Claim,
    table: TableShape::OwnRows,
    multi_tag: false,
    compile,
};

struct LowLogic {
    /// `(ICD-10 prefix, name)`.
    list: Vec<(String, String)>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["diagnoses"])?;
    let mut list: Vec<(String, String)> = Vec::new();
    if let Some(v) = i.params.get("diagnoses") {
        for d in value_list(v)? {
            list.push((d.trim_end_matches(['%', '*']).to_owned(), String::new()));
        }
    }
    for (_, r) in i.rows {
        list.push((r.code.trim_end_matches(['%', '*']).to_owned(), r.name.clone()));
    }
    if list.is_empty() || list.iter().any(|(c, _)| c.is_empty()) {
        return Err("params.diagnoses (or a table) with non-empty ICD-10 codes is required".into());
    }
    // Longest prefix first, so the most specific name is shown.
    list.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
    Ok(Compiled { logic: Box::new(LowLogic { list }), matchers: vec![] })
}

impl Logic for LowLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        if !c.is_admission() {
            return;
        }
        let Some(main) = c.encounter.main_diagnosis() else {
            out.unchecked(r.index, NO_ROW, Fact::Diagnoses);
            return;
        };
        if let Some((_, listed)) = self.list.iter().find(|(p, _)| main.code.starts_with(p.as_str())) {
            let name = if main.name.is_empty() { listed.clone() } else { main.name.clone() };
            out.hit(
                r.index,
                vec![],
                crate::claim::Fen::ZERO,
                vec![("diagnosis", Val::Str(main.code.clone())), ("diagnosis_name", Val::Str(name))],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Diagnosis, Stage};
    use crate::rules::evaluate;

    #[test]
    fn admission_for_a_listed_diagnosis_is_reminded_other_stages_are_not() {
        let y = rule(
            "low_threshold_admission",
            "主要诊断{diagnosis}（{diagnosis_name}）属低标准入院病种",
            "    select: { table: tables/l.csv }\n",
        );
        let rs = try_ruleset(&y, &[("tables/l.csv", "code,name\nJ06.9,急性上呼吸道感染\nI10,原发性高血压\n")]).unwrap();
        let mut c = claim();
        c.stage = Stage::Admission;
        c.encounter.diagnoses = Some(vec![Diagnosis { code: "J06.900".into(), name: String::new(), main: true }]);
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &[]));
        assert_eq!(d.hits[0].message, "主要诊断J06.900（急性上呼吸道感染）属低标准入院病种");
        c.stage = Stage::Upload;
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.trig_scen = Some(3);
        assert_eq!(evaluate(&rs, &c).hits.len(), 1);
        c.encounter.diagnoses =
            Some(vec![Diagnosis { code: "S72.000".into(), name: "股骨颈骨折".into(), main: true }]);
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.encounter.diagnoses = None;
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "diagnoses");
    }
}
