//! 高频就诊 / 高频刷卡: more than `max` settlements of one kind of visit in `days` (this one
//! included) — a reminder for the 医保办, with the count.

use super::*;
use crate::claim::{Stage, Visit};
use crate::rules::decision::{Fact, Val};
use chrono::Days;

const VARS: &[&str] = &["count", "max", "days", "visit"];
pub(crate) static SPEC: KindSpec = KindSpec::new("visit_frequency", Scope::Claim, TableShape::OwnRows, VARS, compile);

struct FreqLogic {
    max: usize,
    days: u32,
    visit: Visit,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["max", "days", "visit"])?;
    let num = |k: &str| -> Result<Option<u32>, String> {
        i.params
            .get(k)
            .map(|v| value_text(v)?.parse::<u32>().map_err(|_| format!("params.{k}: a whole number")))
            .transpose()
    };
    let max = num("max")?.ok_or("params.max is required")? as usize;
    let days = num("days")?.ok_or("params.days is required")?;
    if max == 0 || !(1..=400).contains(&days) {
        return Err("params.max ≥ 1 and params.days between 1 and 400".into());
    }
    let visit = choice(
        i.params,
        "visit",
        &[("outpatient", Visit::Outpatient), ("inpatient", Visit::Inpatient), ("pharmacy", Visit::Pharmacy)],
    )?;
    Ok(Compiled { logic: Box::new(FreqLogic { max, days, visit }), matchers: vec![] })
}

impl Logic for FreqLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        if c.stage != Stage::Settle || c.encounter.visit.unwrap_or(Visit::Outpatient) != self.visit {
            return;
        }
        let Some(h) = &c.history else {
            out.unchecked(r.index, NO_ROW, Fact::History);
            return;
        };
        let Some(day) = c.service_day() else { return };
        let from = day.checked_sub_days(Days::new(u64::from(self.days))).unwrap_or(day);
        let earlier = h
            .settlements
            .iter()
            .filter(|s| s.day > from && s.day <= day && s.mdtrt_id != c.encounter.mdtrt_id && s.msgid != c.msgid)
            .filter(|s| s.visit.unwrap_or(Visit::Outpatient) == self.visit)
            .count();
        let count = earlier + 1;
        if count > self.max {
            out.hit(
                r.index,
                vec![],
                crate::claim::Fen::ZERO,
                vec![
                    ("count", Val::Int(count as i64)),
                    ("max", Val::Int(self.max as i64)),
                    ("days", Val::Int(i64::from(self.days))),
                    ("visit", Val::Str(self.visit.text().into())),
                ],
            );
        }
    }
    fn lookback_days(&self) -> u32 {
        self.days
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Fen, History, PastSettlement, Stage};
    use crate::rules::evaluate;
    use std::sync::Arc;

    #[test]
    fn the_fifth_outpatient_settlement_in_seven_days_is_reminded() {
        let rs = ruleset(&rule(
            "visit_frequency",
            "{days}天内{visit}结算{count}次，超过{max}次",
            "    params: { max: 4, days: 7 }\n",
        ));
        let s = |i: u32, day: &str| PastSettlement {
            setl_id: format!("S{i}"),
            mdtrt_id: format!("M{i}"),
            msgid: format!("G{i}"),
            insutype: "390".into(),
            visit: Some(crate::claim::Visit::Outpatient),
            day: date(day),
            hifp_pay: Fen::new(100),
            fund_pay: Fen::new(100),
            medfee: Fen::new(200),
        };
        let mut c = claim();
        c.stage = Stage::Settle;
        c.day = Some(date("2025-06-08"));
        let mut h = History {
            settlements: vec![s(1, "2025-06-02"), s(2, "2025-06-03"), s(3, "2025-06-05"), s(4, "2025-06-07")],
            ..History::default()
        };
        c.history = Some(Arc::new(h.clone()));
        assert_eq!(evaluate(&rs, &c).hits[0].message, "7天内门诊结算5次，超过4次");
        h.settlements.remove(0);
        c.history = Some(Arc::new(h));
        assert!(evaluate(&rs, &c).hits.is_empty());
    }
}
