//! 低标准入院 at admission (2401, or 3101/3102 with trig_scen 3 住院登记): a principal diagnosis on the
//! pack's low-threshold list gets a reminder. The list is local policy (domain.md: no national numbers).
//! With `at: settlement` it looks at the finished stay instead (2303/2304, and the 事中 3102 of a
//! discharge — trig_scen 8/9, the CDS `encounter-discharge` hook — whose stay is its orders plus
//! the visit's lines history holds): a listed diagnosis whose
//! profile is outpatient-like — length of stay ≤ `max_los_days`, total ≤ `max_total` 元, and no line
//! from `treatment_codes` (surgery, transfusion … whose presence shows a real inpatient need).

use super::*;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["diagnosis", "diagnosis_name", "los", "total"];
pub(crate) static SPEC: KindSpec =
    KindSpec::new("low_threshold_admission", Scope::Claim, TableShape::OwnRows, VARS, compile);

struct LowLogic {
    /// `(ICD-10 prefix, name)`.
    list: Vec<(String, String)>,
    /// `Some` for `at: settlement`.
    stay: Option<StayProfile>,
}

struct StayProfile {
    max_los_days: i64,
    max_total: crate::claim::Fen,
    treatment: CodeList,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["diagnoses", "at", "max_los_days", "max_total", "treatment_codes"])?;
    let stay = match i.params.get("at").map(value_text).transpose()?.as_deref() {
        None | Some("admission") => None,
        Some("settlement") => {
            let los = i.params.get("max_los_days").map(value_text).transpose()?.unwrap_or_else(|| "3".into());
            let total = i
                .params
                .get("max_total")
                .map(value_text)
                .transpose()?
                .ok_or("params.max_total (元) is required with at: settlement")?;
            let treatment = match i.params.get("treatment_codes") {
                Some(v) => CodeList::parse(&value_list(v)?)?,
                None => CodeList::default(),
            };
            Some(StayProfile {
                max_los_days: los.parse().map_err(|_| "params.max_los_days: a whole number")?,
                max_total: crate::claim::Fen::new(
                    crate::wire::num::parse_fixed(&total, 2).map_err(|e| format!("params.max_total: {e}"))?,
                ),
                treatment,
            })
        }
        Some(o) => return Err(format!("params.at: {o:?} (admission, settlement)")),
    };
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
    Ok(Compiled { logic: Box::new(LowLogic { list, stay }), matchers: vec![] })
}

impl Logic for LowLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        let mut extra = Vec::new();
        match &self.stay {
            None if !c.is_admission() => return,
            None => {}
            Some(p) => {
                use crate::claim::Stage;
                let inpatient = c.encounter.visit == Some(crate::claim::Visit::Inpatient);
                // A 3102 at 事中-住院结算/预结算 (trig_scen 8/9: an HIS's, or a CDS
                // encounter-discharge) is the stay's check before it is settled: its orders and
                // the lines history holds for the visit.
                let analysed = c.stage == Stage::Analysis && matches!(c.trig_scen, Some(8 | 9));
                if !(matches!(c.stage, Stage::Settle | Stage::PreSettle) || analysed) || !inpatient {
                    return;
                }
                let end = c.encounter.discharged.map(|t| t.date()).or_else(|| c.service_day());
                let (Some(adm), Some(end)) = (c.encounter.admitted.map(|t| t.date()), end) else {
                    return;
                };
                let los = (end - adm).num_days().max(1);
                let mut total = c.lines.iter().fold(crate::claim::Fen::ZERO, |a, l| a + l.amount);
                let mut treated = c.lines.iter().any(|l| p.treatment.matches(&l.code));
                if analysed {
                    let Some(h) = &c.history else {
                        out.unchecked(r.index, NO_ROW, Fact::History);
                        return;
                    };
                    let stay = c.encounter.mdtrt_id.as_str();
                    for past in
                        h.lines.iter().filter(|pl| &*pl.mdtrt_id == stay && !c.lines.iter().any(|l| l.id == pl.id))
                    {
                        total += past.amount;
                        treated |= p.treatment.matches(&past.code);
                    }
                }
                if los > p.max_los_days || total > p.max_total || treated {
                    return;
                }
                extra = vec![("los", Val::Int(los)), ("total", Val::Fen(total))];
            }
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
                [
                    vec![("diagnosis", Val::Str(main.code.as_str().into())), ("diagnosis_name", Val::Str(name.into()))],
                    extra,
                ]
                .concat(),
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

#[cfg(test)]
mod settlement_tests {
    use super::super::test_util::*;
    use crate::claim::{time::parse_datetime, Diagnosis, Stage, Visit};
    use crate::rules::evaluate;

    #[test]
    fn a_short_cheap_stay_for_a_listed_diagnosis_is_reminded_at_settlement() {
        let rs = ruleset(&rule(
            "low_threshold_admission",
            "{diagnosis_name}住院{los}天、总费用{total}元，无手术等住院必需治疗，疑似低标准入院",
            "    params: { at: settlement, max_los_days: 3, max_total: 1500, treatment_codes: [\"0033%\"], diagnoses: [J06] }\n",
        ));
        let mut c = claim();
        c.stage = Stage::Settle;
        c.encounter.visit = Some(Visit::Inpatient);
        c.encounter.admitted = parse_datetime("2025-10-08 10:30:00");
        c.encounter.discharged = parse_datetime("2025-10-10 09:00:00");
        c.encounter.diagnoses =
            Some(vec![Diagnosis { code: "J06.900".into(), name: "急性上呼吸道感染".into(), main: true }]);
        c.lines.push(line("Z1", "001109000010000", 2, 5000, "2025-10-09 00:00:01"));
        c.lines.push(line("Z2", "002503020010000", 1, 600, "2025-10-09 08:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits[0].message, "急性上呼吸道感染住院2天、总费用106.00元，无手术等住院必需治疗，疑似低标准入院");
        // At admission this rule says nothing; a surgery line or a long stay clears it.
        c.stage = Stage::Admission;
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.stage = Stage::Settle;
        c.lines.push(line("Z3", "003300000010000", 1, 80000, "2025-10-09 10:00:00"));
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.lines.pop();
        c.encounter.discharged = parse_datetime("2025-10-15 09:00:00");
        assert!(evaluate(&rs, &c).hits.is_empty());
    }

    /// The 事中 3102 of a discharge (trig_scen 9, e.g. a CDS encounter-discharge call): the stay is
    /// its discharge orders plus the visit's lines history holds.
    #[test]
    fn the_discharge_check_judges_the_stay_from_history_and_its_orders() {
        use crate::claim::{History, PastLine};
        use std::sync::Arc;
        let rs = ruleset(&rule(
            "low_threshold_admission",
            "{diagnosis_name}住院{los}天、总费用{total}元，疑似低标准入院",
            "    params: { at: settlement, max_los_days: 3, max_total: 1500, treatment_codes: [\"0033%\"], diagnoses: [J06] }\n",
        ));
        let mut c = claim();
        (c.stage, c.trig_scen) = (Stage::Analysis, Some(9));
        c.encounter.visit = Some(Visit::Inpatient);
        c.encounter.admitted = parse_datetime("2025-10-08 10:30:00");
        c.encounter.diagnoses =
            Some(vec![Diagnosis { code: "J06.900".into(), name: "急性上呼吸道感染".into(), main: true }]);
        // 出院带药 on the day of discharge; two bed days uploaded (and accepted) before.
        c.lines.push(line("D1", "XJ01CRA001A001010100001", 1, 2000, "2025-10-10 09:00:00"));
        let mid: Arc<str> = c.encounter.mdtrt_id.as_str().into();
        let mut h = History::default();
        for (id, day) in [("B1", "2025-10-08 20:00:00"), ("B2", "2025-10-09 20:00:00")] {
            h.lines.push(PastLine::of(mid.clone(), &line(id, "001109000010000", 1, 5000, day), false));
        }
        // Without history the stay cannot be judged: unchecked, not passed.
        let d = evaluate(&rs, &c);
        assert!(d.hits.is_empty());
        assert_eq!(d.unchecked[0].fact, "history");
        c.history = Some(Arc::new(h.clone()));
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits[0].message, "急性上呼吸道感染住院2天、总费用120.00元，疑似低标准入院");
        // A 3102 at another scene (住院执行医嘱) says nothing; a surgery uploaded earlier clears it.
        c.trig_scen = Some(5);
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.trig_scen = Some(9);
        h.lines.push(PastLine::of(mid, &line("S1", "003300000010000", 1, 80000, "2025-10-09 10:00:00"), false));
        c.history = Some(Arc::new(h));
        assert!(evaluate(&rs, &c).hits.is_empty());
    }
}
