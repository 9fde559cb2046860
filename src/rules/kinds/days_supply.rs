//! 超量开药 (处方限量, 《处方管理办法》第十九条): days of medicine on one line above the limit of the
//! visit type — 普通门诊 7 days, 急诊 3 days, 门诊慢特病 up to 12 weeks; 出院带药 optionally limited.
//! When `med_type` is unknown the line is judged only if every possible limit gives the same answer.

use super::*;
use crate::claim::Visit;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "days", "max", "med_type"];
pub(crate) static SPEC: KindSpec = KindSpec::new("days_supply", Scope::Line, TableShape::Rows, VARS, compile);

struct DaysLogic {
    default_days: i64,
    by_med_type: Vec<(String, i64)>,
    discharge_days: Option<i64>,
    /// The smallest and largest limit any outpatient med_type can have.
    min_limit: i64,
    max_limit: i64,
}

fn days(v: &serde_json::Value) -> Result<i64, String> {
    let t = value_text(v)?;
    let n: i64 = t.parse().map_err(|_| format!("not a whole number of days: {t:?}"))?;
    if !(1..=366).contains(&n) {
        return Err(format!("days out of range: {n}"));
    }
    Ok(n)
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["default_days", "by_med_type", "discharge_days"])?;
    let default_days = days(i.params.get("default_days").ok_or("params.default_days is required")?)
        .map_err(|e| format!("params.default_days: {e}"))?;
    let mut by_med_type = Vec::new();
    if let Some(m) = i.params.get("by_med_type") {
        let obj = m.as_object().ok_or("params.by_med_type: expected a map of med_type to days")?;
        for (k, v) in obj {
            by_med_type.push((k.clone(), days(v).map_err(|e| format!("params.by_med_type.{k}: {e}"))?));
        }
    }
    let discharge_days = i.params.get("discharge_days").map(days).transpose()?;
    let all = by_med_type.iter().map(|(_, d)| *d).chain(std::iter::once(default_days));
    let min_limit = all.clone().min().unwrap_or(default_days);
    let max_limit = all.max().unwrap_or(default_days);
    Ok(Compiled {
        logic: Box::new(DaysLogic { default_days, by_med_type, discharge_days, min_limit, max_limit }),
        matchers: vec![],
    })
}

impl DaysLogic {
    fn limit(&self, med_type: &str) -> i64 {
        // Province sub-codes (140104) fall under their national two-digit class (14).
        self.by_med_type
            .iter()
            .find(|(m, _)| m == med_type)
            .or_else(|| self.by_med_type.iter().find(|(m, _)| med_type.len() > 2 && med_type.starts_with(m.as_str())))
            .map_or(self.default_days, |(_, d)| *d)
    }
}

impl Logic for DaysLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let Some(line) = c.lines.get(li as usize) else { return };
        // A pharmacy sale (3505) carries no days supply: 处方限量 is the prescriber's, judged where the
        // prescription was written.
        if !line.class.is_drug() || c.infno == "3505" {
            return;
        }
        let inpatient = c.encounter.visit == Some(Visit::Inpatient);
        if inpatient && !(line.discharge_drug && self.discharge_days.is_some()) {
            return;
        }
        let Some(supply) = line.days_supply else {
            out.unchecked(r.index, li, Fact::DaysSupply);
            return;
        };
        let d = supply.ceil_whole();
        let (max, mt_text) = if inpatient {
            (self.discharge_days.unwrap_or(self.max_limit), "出院带药".to_owned())
        } else {
            match c.encounter.med_type.as_deref() {
                Some(mt) => (self.limit(mt), mt.to_owned()),
                None if d <= self.min_limit => return,
                None if d > self.max_limit => (self.max_limit, "未知".to_owned()),
                None => {
                    out.unchecked(r.index, li, Fact::MedType);
                    return;
                }
            }
        };
        if d > max {
            r.hit_line(
                out,
                li,
                line,
                tag,
                vec![("days", Val::Int(d)), ("max", Val::Int(max)), ("med_type", Val::Str(mt_text.into()))],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Qty, Visit};
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        ruleset(&rule(
            "days_supply",
            "【{item}】开药{days}天，医疗类别{med_type}限{max}天",
            "    select: { item_classes: [drug] }\n    params: { default_days: 7, by_med_type: { \"13\": 3, \"14\": 84 }, discharge_days: 7 }\n",
        ))
    }

    fn drug(days: i64) -> crate::claim::Line {
        let mut l = line("D", "XA10BAD001A001010100001", 30, 50, "2025-06-01 09:00:00");
        l.days_supply = Some(Qty::whole(days));
        l
    }

    #[test]
    fn ten_days_in_ordinary_outpatient_is_hit_seven_is_not() {
        let mut c = claim();
        c.lines.push(drug(10));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["D"]));
        assert_eq!(d.hits[0].message, "【XA10BAD001A001010100001】开药10天，医疗类别11限7天");
        c.lines[0] = drug(7);
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn emergency_chronic_and_province_subcodes() {
        let mut c = claim();
        c.lines.push(drug(4));
        c.encounter.med_type = Some("13".into());
        assert_eq!(evaluate(&rs(), &c).hits.len(), 1);
        c.lines[0] = drug(60);
        c.encounter.med_type = Some("140104".into());
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn unknown_med_type_is_unchecked_unless_every_limit_agrees() {
        let mut c = claim();
        c.encounter.med_type = None;
        c.lines.push(drug(2));
        assert!(evaluate(&rs(), &c).unchecked.is_empty());
        c.lines[0] = drug(10);
        let d = evaluate(&rs(), &c);
        assert!(d.hits.is_empty());
        assert_eq!(d.unchecked[0].fact, "med_type");
        c.lines[0] = drug(90);
        assert_eq!(evaluate(&rs(), &c).hits.len(), 1);
    }

    #[test]
    fn inpatient_lines_only_as_discharge_drugs_and_missing_days_are_unchecked() {
        let mut c = claim();
        c.encounter.visit = Some(Visit::Inpatient);
        c.encounter.med_type = Some("21".into());
        c.lines.push(drug(10));
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.lines[0].discharge_drug = true;
        assert_eq!(evaluate(&rs(), &c).hits.len(), 1);
        c.lines[0].days_supply = None;
        assert_eq!(evaluate(&rs(), &c).unchecked[0].fact, "prd_days");
    }
}
