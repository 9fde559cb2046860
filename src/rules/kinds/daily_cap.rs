//! 单日统筹报销限额 (新乡 2025: 城乡居民 50 元/日, 职工 150 元/日): at pre-settlement and settlement,
//! what the fund already paid the patient that day (from history, cancelled settlements excluded)
//! plus what this claim asks (the gateway's pre-settlement answer) against the cap of the insurance
//! type. The message carries the arithmetic; `amount` is the excess.
//!
//! A settlement sent without a pre-settlement (2207 with no 2206 before it) cannot bypass the cap:
//! its fund share is unknown, but it cannot exceed the claim's policy-range amount
//! (`Claim::fund_bound`). Where that bound fits in the day's remaining room the claim passes; where
//! it does not, the rule's action applies, `{estimate}` saying the share was bounded, not known, and
//! `{advice}` asking for the pre-settlement that would tell.

use super::*;
use crate::claim::{Fen, Stage};
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] =
    &["insutype", "insutype_name", "cap", "used", "ask", "total", "excess", "remain", "date", "estimate", "advice"];
pub(crate) static SPEC: KindSpec = KindSpec::new("daily_cap", Scope::Claim, TableShape::OwnRows, VARS, compile);

/// Which fund share a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FundField {
    /// 统筹基金支出.
    Hifp,
    /// 基金支付总额.
    FundTotal,
}

impl FundField {
    pub fn of(&self, f: &crate::claim::FundAsk) -> Fen {
        match self {
            FundField::Hifp => f.hifp_pay,
            FundField::FundTotal => f.fund_pay,
        }
    }
    pub fn of_settlement(&self, s: &crate::claim::PastSettlement) -> Fen {
        match self {
            FundField::Hifp => s.hifp_pay,
            FundField::FundTotal => s.fund_pay,
        }
    }
}

/// Caps per insurance type: `params.caps: {"390": 50, "310": 150}` or a table `insutype,name,cap`.
pub(crate) struct Caps {
    pub caps: Vec<(String, String, Fen)>,
    pub field: FundField,
}

pub(crate) fn insutype_name(code: &str) -> &'static str {
    match code {
        "310" => "职工基本医疗保险",
        "390" => "城乡居民基本医疗保险",
        "320" => "公务员医疗补助",
        "330" => "职工大额医疗费用补助",
        "392" => "城乡居民大病医疗保险",
        _ => "医疗保险",
    }
}

fn yuan(s: &str) -> Result<Fen, String> {
    let f = crate::wire::num::parse_fixed(s, 2).map_err(|e| format!("{s:?}: {e}"))?;
    if f <= 0 {
        return Err(format!("{s:?}: a cap must be positive"));
    }
    Ok(Fen::new(f))
}

impl Caps {
    pub fn parse(i: &KindInput<'_>) -> Result<Caps, String> {
        let mut caps = Vec::new();
        if let Some(v) = i.params.get("caps") {
            let m = v.as_object().ok_or("params.caps: expected a map of insutype → yuan")?;
            for (k, v) in m {
                caps.push((
                    k.clone(),
                    insutype_name(k).to_owned(),
                    yuan(&value_text(v)?).map_err(|e| format!("params.caps.{k}: {e}"))?,
                ));
            }
        }
        for (line, r) in i.rows {
            let name = if r.name.is_empty() { insutype_name(&r.code).to_owned() } else { r.name.clone() };
            caps.push((
                r.code.trim().to_owned(),
                name,
                yuan(r.param.trim()).map_err(|e| format!("table line {line}: {e}"))?,
            ));
        }
        if caps.is_empty() {
            return Err("params.caps (or a table insutype,name,cap) is required".into());
        }
        let field =
            choice(i.params, "fund", &[("hifp_pay", FundField::Hifp), ("fund_pay_sumamt", FundField::FundTotal)])?;
        Ok(Caps { caps, field })
    }
    pub fn get(&self, insutype: &str) -> Option<(&str, Fen)> {
        self.caps.iter().find(|(c, _, _)| c == insutype).map(|(_, n, f)| (n.as_str(), *f))
    }
}

struct CapLogic {
    caps: Caps,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["caps", "fund"])?;
    Ok(Compiled { logic: Box::new(CapLogic { caps: Caps::parse(i)? }), matchers: vec![] })
}

impl Logic for CapLogic {
    fn claim(&self, r: &RuleCx<'_>, c: &Claim, out: &mut Out) {
        if !matches!(c.stage, Stage::PreSettle | Stage::Settle) {
            return;
        }
        let Some(insutype) = c.patient.insutype.as_deref() else {
            out.unchecked(r.index, NO_ROW, Fact::Insutype);
            return;
        };
        let Some((name, cap)) = self.caps.get(insutype) else { return };
        // The fund's share: the gateway's pre-settlement answer, else (a settlement sent without
        // one) the most the fund could pay.
        let (ask, bounded) = match (&c.fund, c.fund_bound) {
            (Some(fund), _) => (self.caps.field.of(fund), false),
            (None, Some(bound)) if c.stage == Stage::Settle => (bound, true),
            (None, _) => {
                out.unchecked(r.index, NO_ROW, Fact::FundShare);
                return;
            }
        };
        let Some(h) = &c.history else {
            out.unchecked(r.index, NO_ROW, Fact::History);
            return;
        };
        let Some(day) = c.service_day() else { return };
        let used = h
            .settled_on(day, insutype, &c.msgid, c.encounter.visit)
            .fold(Fen::ZERO, |a, s| a + self.caps.field.of_settlement(s));
        let total = used + ask;
        if total > cap && ask > Fen::ZERO {
            let excess = Fen::new((total.get() - cap.get()).min(ask.get()));
            let remain = Fen::new((cap.get() - used.get()).max(0));
            out.hit(
                r.index,
                (0..c.lines.len() as u32).collect(),
                excess,
                vec![
                    ("insutype", Val::Str(insutype.into())),
                    ("insutype_name", Val::Str(name.into())),
                    ("cap", Val::Fen(cap)),
                    ("used", Val::Fen(used)),
                    ("ask", Val::Fen(ask)),
                    ("total", Val::Fen(total)),
                    ("excess", Val::Fen(excess)),
                    ("remain", Val::Fen(remain)),
                    ("date", Val::Date(day)),
                    (
                        "estimate",
                        Val::Str(if bounded {
                            smol_str::format_smolstr!("（未经预结算，按本次政策范围内金额{}元估计上限）", ask)
                        } else {
                            SmolStr::default()
                        }),
                    ),
                    (
                        "advice",
                        Val::Str(if bounded {
                            SmolStr::new_static("，请先预结算（2206）核定本次统筹支付后再结算")
                        } else {
                            SmolStr::default()
                        }),
                    ),
                ],
            );
        }
    }
    fn lookback_days(&self) -> u32 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::{Fen, FundAsk, History, PastSettlement, Stage};
    use crate::rules::evaluate;
    use std::sync::Arc;

    fn settled(id: &str, day: &str, hifp: i64, insutype: &str) -> PastSettlement {
        PastSettlement {
            setl_id: id.into(),
            mdtrt_id: format!("M{id}"),
            msgid: format!("MSG{id}"),
            insutype: insutype.into(),
            visit: None,
            day: date(day),
            hifp_pay: Fen::new(hifp),
            fund_pay: Fen::new(hifp),
            medfee: Fen::new(hifp * 2),
        }
    }

    #[test]
    fn the_claim_that_crosses_the_cap_is_hit_with_the_arithmetic() {
        let rs = ruleset(&rule(
            "daily_cap",
            "{insutype_name}单日统筹报销限额{cap}元，今日已报销{used}元，本次申请{ask}元",
            "    params: { caps: { \"390\": 50, \"310\": 150 } }\n",
        ));
        let mut c = claim();
        c.stage = Stage::PreSettle;
        c.day = Some(date("2025-11-03"));
        c.msgid = "MSG3".into();
        let ask = |f| Some(FundAsk { hifp_pay: Fen::new(f), fund_pay: Fen::new(f), medfee: Fen::new(f * 2) });
        c.fund = ask(2000);
        // Nothing known: unchecked, not passed silently.
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "history");
        let h = History {
            settlements: vec![
                settled("1", "2025-11-03", 2000, "390"),
                settled("2", "2025-11-03", 1800, "390"),
                settled("0", "2025-11-02", 5000, "390"),
                settled("9", "2025-11-03", 9000, "310"),
                // A stay settled the same day is not an outpatient day's reimbursement.
                PastSettlement {
                    visit: Some(crate::claim::Visit::Inpatient),
                    ..settled("8", "2025-11-03", 30000, "390")
                },
            ],
            ..History::default()
        };
        c.history = Some(Arc::new(h.clone()));
        let d = evaluate(&rs, &c);
        assert_eq!(d.hits.len(), 1);
        assert_eq!(
            d.hits[0].message,
            "城乡居民基本医疗保险单日统筹报销限额50.00元，今日已报销38.00元，本次申请20.00元"
        );
        assert_eq!(d.hits[0].amount.to_string(), "8.00");
        // Exactly at the cap passes; the settlement's own retry (same msgid) is not "earlier".
        c.fund = ask(1200);
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.fund = ask(2000);
        c.msgid = "MSG2".into();
        assert!(evaluate(&rs, &c).hits.is_empty(), "20 + 20 ≤ 50 once settlement 2 is this message");
        // 职工: 150.
        c.patient.insutype = Some("310".into());
        assert!(evaluate(&rs, &c).hits.is_empty());
        // Uploads are not settlements.
        c.stage = Stage::Upload;
        assert!(evaluate(&rs, &c).hits.is_empty() && evaluate(&rs, &c).unchecked.is_empty());
    }
}
