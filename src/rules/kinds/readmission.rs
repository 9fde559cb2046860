//! 分解住院 / 重复住院: an admission within `days` (default 15) of a discharge for the same or a
//! related principal diagnosis (`match: category` = same ICD-10 category, the first three
//! characters; `match: same` = the same code; `match: any`), at 2401 / 入院登记 and again at
//! settlement; planned staged treatment (`exclude`, default Z51 放化疗) is left out.
//! `mode: overlap` instead finds another stay of the patient that is still open (重叠住院).

use super::*;
use crate::claim::{Stage, Visit};
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["discharged", "gap", "days", "diagnosis", "prev_diagnosis", "prev_admitted"];
pub(crate) static SPEC: KindSpec = KindSpec::new("readmission", Scope::Claim, TableShape::OwnRows, VARS, compile);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Same,
    Category,
    Any,
}

struct ReadmitLogic {
    days: i64,
    how: Match,
    exclude: CodeList,
    overlap: bool,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["days", "match", "exclude", "mode"])?;
    let days = match i.params.get("days") {
        Some(v) => value_text(v)?.parse::<i64>().map_err(|_| "params.days: a whole number of days")?,
        None => 15,
    };
    if !(1..=365).contains(&days) {
        return Err("params.days: between 1 and 365".into());
    }
    let how = choice(i.params, "match", &[("category", Match::Category), ("same", Match::Same), ("any", Match::Any)])?;
    let exclude = match i.params.get("exclude") {
        Some(v) => CodeList::parse_prefixes(&value_list(v)?)?,
        None => CodeList::parse_prefixes(&["Z51".to_owned()])?,
    };
    let overlap = choice(i.params, "mode", &[("readmission", false), ("overlap", true)])?;
    Ok(Compiled { logic: Box::new(ReadmitLogic { days, how, exclude, overlap }), matchers: vec![] })
}

fn category(code: &str) -> &str {
    code.get(..3).unwrap_or(code)
}

impl Logic for ReadmitLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        let settle_inpatient = c.stage == Stage::Settle && c.encounter.visit == Some(Visit::Inpatient);
        if !c.is_admission() && !settle_inpatient {
            return;
        }
        let Some(admitted) = c.encounter.admitted.or_else(|| c.day.and_then(|d| d.and_hms_opt(0, 0, 0))) else {
            return;
        };
        let Some(h) = &c.history else {
            out.unchecked(r.index, NO_ROW, Fact::History);
            return;
        };
        let others =
            h.visits.iter().filter(|v| v.mdtrt_id != c.encounter.mdtrt_id && v.visit == Some(Visit::Inpatient));
        if self.overlap {
            if let Some(v) = others
                .filter(|v| v.discharged.is_none_or(|d| d > admitted))
                .find(|v| v.admitted.is_some_and(|a| a <= admitted))
            {
                out.hit(
                    r.index,
                    vec![],
                    crate::claim::Fen::ZERO,
                    vec![
                        ("prev_admitted", Val::Date(v.admitted.map(|a| a.date()).unwrap_or(admitted.date()))),
                        ("prev_diagnosis", Val::Str(v.main_dise.as_deref().unwrap_or_default().into())),
                    ],
                );
            }
            return;
        }
        let Some(main) = c.encounter.main_diagnosis() else {
            out.unchecked(r.index, NO_ROW, Fact::Diagnoses);
            return;
        };
        if self.exclude.matches(&main.code) {
            return;
        }
        let related = |prev: &str| match self.how {
            Match::Same => prev == main.code,
            Match::Category => category(prev) == category(&main.code),
            Match::Any => true,
        };
        let prior = others
            .filter_map(|v| Some((v, v.discharged?)))
            .filter(|(_, d)| *d <= admitted && (admitted.date() - d.date()).num_days() <= self.days)
            .filter(|(v, _)| v.main_dise.as_deref().is_some_and(|p| related(p) && !self.exclude.matches(p)))
            .max_by_key(|(_, d)| *d);
        if let Some((v, d)) = prior {
            let prev = match &v.main_dise_name {
                Some(n) => format!("{} {}", v.main_dise.as_deref().unwrap_or_default(), n),
                None => v.main_dise.clone().unwrap_or_default(),
            };
            let diag = if main.name.is_empty() { main.code.clone() } else { format!("{} {}", main.code, main.name) };
            out.hit(
                r.index,
                vec![],
                crate::claim::Fen::ZERO,
                vec![
                    ("discharged", Val::Date(d.date())),
                    ("gap", Val::Int((admitted.date() - d.date()).num_days())),
                    ("days", Val::Int(self.days)),
                    ("diagnosis", Val::Str(diag.into())),
                    ("prev_diagnosis", Val::Str(prev.into())),
                ],
            );
        }
    }
    fn lookback_days(&self) -> u32 {
        // A stay that began long ago may still be open (overlap), or have ended within `days`.
        if self.overlap {
            180
        } else {
            self.days as u32 + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{time::parse_datetime, Diagnosis, History, PastVisit, Stage, Visit};
    use crate::rules::evaluate;
    use std::sync::Arc;

    fn stay(id: &str, adm: &str, dis: Option<&str>, dise: &str) -> PastVisit {
        PastVisit {
            mdtrt_id: id.into(),
            visit: Some(Visit::Inpatient),
            fixmedins_code: "H1".into(),
            admitted: parse_datetime(adm),
            discharged: dis.and_then(parse_datetime),
            main_dise: Some(dise.into()),
            main_dise_name: Some("脑梗死".into()),
        }
    }

    fn admission(at: &str, dise: &str) -> crate::claim::Claim {
        let mut c = claim();
        c.stage = Stage::Admission;
        c.encounter.visit = Some(Visit::Inpatient);
        c.encounter.admitted = parse_datetime(at);
        c.encounter.diagnoses = Some(vec![Diagnosis { code: dise.into(), name: String::new(), main: true }]);
        c
    }

    #[test]
    fn readmission_on_day_9_is_flagged_and_on_day_16_is_not() {
        let rs = ruleset(&rule(
            "readmission",
            "患者{discharged}出院（{prev_diagnosis}），间隔{gap}天再次入院（{diagnosis}），疑似分解住院",
            "    params: { days: 15 }\n",
        ));
        let h = History {
            visits: vec![stay("P1", "2025-03-01 08:00:00", Some("2025-03-10 10:00:00"), "I63.900")],
            ..History::default()
        };
        let mut c = admission("2025-03-19 09:00:00", "I63.901");
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "history");
        c.history = Some(Arc::new(h.clone()));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &[]));
        assert_eq!(d.hits[0].message, "患者2025-03-10出院（I63.900 脑梗死），间隔9天再次入院（I63.901），疑似分解住院");
        let mut late = admission("2025-03-26 09:00:00", "I63.901");
        late.history = Some(Arc::new(h.clone()));
        assert!(evaluate(&rs, &late).hits.is_empty(), "day 16");
        let mut other = admission("2025-03-19 09:00:00", "S72.000");
        other.history = Some(Arc::new(h.clone()));
        assert!(evaluate(&rs, &other).hits.is_empty(), "unrelated diagnosis");
        let mut chemo = admission("2025-03-19 09:00:00", "Z51.100");
        chemo.history = Some(Arc::new(History {
            visits: vec![stay("P1", "2025-03-01 08:00:00", Some("2025-03-10 10:00:00"), "Z51.100")],
            ..History::default()
        }));
        assert!(evaluate(&rs, &chemo).hits.is_empty(), "放化疗周期 excluded");
    }

    #[test]
    fn an_open_stay_overlaps() {
        let rs =
            ruleset(&rule("readmission", "患者{prev_admitted}入院的住院尚未出院", "    params: { mode: overlap }\n"));
        let mut c = admission("2025-03-19 09:00:00", "I63.901");
        c.history = Some(Arc::new(History {
            visits: vec![stay("P1", "2025-03-01 08:00:00", None, "I10")],
            ..History::default()
        }));
        assert_eq!(evaluate(&rs, &c).hits[0].message, "患者2025-03-01入院的住院尚未出院");
        c.history = Some(Arc::new(History {
            visits: vec![stay("P1", "2025-03-01 08:00:00", Some("2025-03-05 08:00:00"), "I10")],
            ..History::default()
        }));
        assert!(evaluate(&rs, &c).hits.is_empty());
    }
}
