//! 大病小看 (splitting one purchase over several days to stay under a daily cap): the same drug
//! bought on `days` consecutive days (this claim the last), each day's fund payment between `near`
//! percent of the cap and the cap. A reminder with the pattern spelled out, for the 医保办 — the
//! pattern is also what ordinary chronic patients do under a low cap, so it is never a block here.

use super::daily_cap::Caps;
use super::*;
use crate::claim::{Fen, Stage};
use crate::rules::decision::{Fact, Val};
use chrono::Days;

const VARS: &[&str] = &["item", "code", "days", "cap", "pattern"];
pub(crate) static SPEC: KindSpec = KindSpec::new("split_purchase", Scope::Claim, TableShape::OwnRows, VARS, compile);

struct SplitLogic {
    caps: Caps,
    days: u32,
    near: i64,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["caps", "fund", "days", "near_percent"])?;
    let num = |k: &str, d: i64| -> Result<i64, String> {
        i.params
            .get(k)
            .map_or(Ok(d), |v| value_text(v)?.parse::<i64>().map_err(|_| format!("params.{k}: a whole number")))
    };
    let days = num("days", 3)?;
    let near = num("near_percent", 80)?;
    if !(2..=14).contains(&days) || !(1..=100).contains(&near) {
        return Err("params.days between 2 and 14, params.near_percent between 1 and 100".into());
    }
    Ok(Compiled { logic: Box::new(SplitLogic { caps: Caps::parse(i)?, days: days as u32, near }), matchers: vec![] })
}

impl Logic for SplitLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        if !matches!(c.stage, Stage::PreSettle | Stage::Settle) {
            return;
        }
        let Some(insutype) = c.patient.insutype.as_deref() else { return };
        let Some((_, cap)) = self.caps.get(insutype) else { return };
        let near = |f: Fen| f.get() * 100 >= cap.get() * self.near && f <= cap;
        // A settlement without a pre-settlement: its share is unknown, but one whose most the fund
        // could pay (`fund_bound`) is below the threshold is no near-the-cap purchase.
        if let (None, Some(bound)) = (&c.fund, c.fund_bound) {
            if bound.get() * 100 < cap.get() * self.near {
                return;
            }
        }
        let (Some(fund), Some(h), Some(day)) = (&c.fund, &c.history, c.service_day()) else {
            if c.history.is_none() {
                out.unchecked(r.index, NO_ROW, Fact::History);
            } else if c.fund.is_none() {
                out.unchecked(r.index, NO_ROW, Fact::FundShare);
            }
            return;
        };
        let ask = self.caps.field.of(fund);
        if !near(ask) {
            return;
        }
        // Each drug of this claim: bought on each of the previous days, each day near the cap.
        for (li, line) in c.lines.iter().enumerate().filter(|(_, l)| l.class.is_drug() && !l.is_refund()) {
            let mut pattern = Vec::new();
            let mut ok = true;
            for k in (1..self.days).rev() {
                let Some(d) = day.checked_sub_days(Days::new(u64::from(k))) else { return };
                let paid = h
                    .settled_on(d, insutype, &c.msgid, c.encounter.visit)
                    .fold(Fen::ZERO, |a, s| a + self.caps.field.of_settlement(s));
                let bought = r.past.same_code(&line.code).any(|p| p.settled && p.date() == d);
                if !(bought && near(paid)) {
                    ok = false;
                    break;
                }
                pattern.push(format!("{} 统筹{}元", d.format("%m-%d"), paid));
            }
            if ok {
                pattern.push(format!("{} 统筹{}元（本次）", day.format("%m-%d"), ask));
                out.hit(
                    r.index,
                    vec![li as u32],
                    Fen::ZERO,
                    vec![
                        ("item", Val::Str(line.name.clone().unwrap_or_else(|| line.code.clone()))),
                        ("code", Val::Str(line.code.clone())),
                        ("days", Val::Int(i64::from(self.days))),
                        ("cap", Val::Fen(cap)),
                        ("pattern", Val::Str(pattern.join("、").into())),
                    ],
                );
                return;
            }
        }
    }
    fn lookback_days(&self) -> u32 {
        self.days
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Fen, FundAsk, History, PastLine, PastSettlement, Stage};
    use crate::rules::evaluate;
    use std::sync::Arc;

    const AML: &str = "XC08CAA079A001010104321";

    #[test]
    fn the_same_drug_three_days_running_each_just_under_the_cap_is_reminded() {
        let rs = ruleset(&rule(
            "split_purchase",
            "【{item}】连续{days}日分次购买（{pattern}），每日统筹支付均接近{cap}元限额，疑似大病小看",
            "    params: { caps: { \"390\": 50 }, days: 3, near_percent: 80 }\n",
        ));
        let day = |d: u32, hifp: i64| PastSettlement {
            setl_id: format!("S{d}"),
            mdtrt_id: format!("M{d}"),
            msgid: format!("G{d}"),
            insutype: "390".into(),
            visit: None,
            day: date(&format!("2025-11-{d:02}")),
            hifp_pay: Fen::new(hifp),
            fund_pay: Fen::new(hifp),
            medfee: Fen::new(hifp * 2),
        };
        let bought = |d: u32| {
            PastLine::of(
                format!("M{d}").into(),
                &line(&format!("L{d}"), AML, 9, 1050, &format!("2025-11-{d:02} 09:00:00")),
                true,
            )
        };
        let mut c = claim();
        c.stage = Stage::PreSettle;
        c.day = Some(date("2025-11-03"));
        c.lines.push(line("F1", AML, 9, 1050, "2025-11-03 09:00:00"));
        c.fund = Some(FundAsk { hifp_pay: Fen::new(4725), fund_pay: Fen::new(4725), medfee: Fen::new(9450) });
        let h = History {
            settlements: vec![day(1, 4800), day(2, 4950)],
            lines: vec![bought(1), bought(2)],
            ..History::default()
        };
        c.history = Some(Arc::new(h.clone()));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(
            d.hits[0].message,
            format!("【{AML}】连续3日分次购买（11-01 统筹48.00元、11-02 统筹49.50元、11-03 统筹47.25元（本次）），每日统筹支付均接近50.00元限额，疑似大病小看")
        );
        // A gap day, or a day far under the cap, breaks the pattern.
        let gap = History { settlements: vec![day(1, 4800)], lines: vec![bought(1)], ..History::default() };
        c.history = Some(Arc::new(gap));
        assert!(evaluate(&rs, &c).hits.is_empty());
        let low = History { settlements: vec![day(1, 4800), day(2, 1000)], lines: vec![bought(1), bought(2)], ..h };
        c.history = Some(Arc::new(low));
        assert!(evaluate(&rs, &c).hits.is_empty());
    }
}
