//! From one accepted exchange (request + the gateway's answer) to the history events it implies.
//! Pure: no store, no clock (the day comes from the message).

use super::db::{Event, SettleEvent, VisitEvent};
use crate::claim::normalize::diagnoses_from;
use crate::claim::time::{parse_date, parse_datetime};
use crate::claim::{Claim, Fen, FundAsk, Gender, Visit};
use crate::wire::tx::{self, DataInput, PersonOutput, SettleOutput, VisitIdOutput, VisitInfoInput};
use crate::wire::{parse_body, Infno, RequestHead, ResponseEnvelope};
use chrono::NaiveDate;

/// Learns from one exchange. `response` is the gateway's answer; `None` means the request is taken
/// as accepted (a context file without an answer). A rejected exchange teaches nothing. `accepted`
/// are the claims the check already built for an upload (their lines are moved into the events), so
/// its body is not parsed twice.
/// Malformed bodies teach nothing: learning never fails the exchange.
pub fn events(
    head: &RequestHead<'_>,
    response: Option<&ResponseEnvelope>,
    accepted: Option<Vec<Claim>>,
    psn_key: &dyn Fn(&str) -> String,
) -> Vec<Event> {
    if response.is_some_and(|r| !r.is_success()) {
        return Vec::new();
    }
    let input = head.input.map(|r| r.get()).unwrap_or("{}");
    let fix = head.fixmedins_code.opt().map(str::to_owned);
    let msg_day = parse_date(head.inf_time.as_str());
    let mut ev = Vec::new();
    match Infno::parse(head.infno.as_str()) {
        Infno::PersonQuery => {
            let Some(out) = response.and_then(ResponseEnvelope::output_as::<PersonOutput>) else {
                return ev;
            };
            let Some(psn_no) = out.baseinfo.psn_no.opt() else { return ev };
            let mut types: Vec<&str> = out.insuinfo.iter().filter_map(|i| i.insutype.opt()).collect();
            types.sort_unstable();
            types.dedup();
            ev.push(Event::Person {
                psn: psn_key(psn_no),
                gender: Gender::from_code(out.baseinfo.gend.as_str()),
                birth: parse_date(out.baseinfo.brdy.as_str()),
                insutype: (types.len() == 1).then(|| types[0].to_owned()),
            });
        }
        Infno::OutpatientRegister => {
            let Ok(req) = parse_body::<DataInput<tx::Register>>(input, "input") else { return ev };
            let id = response
                .and_then(ResponseEnvelope::output_as::<VisitIdOutput>)
                .and_then(|o| o.data.or(o.result))
                .and_then(|d| d.mdtrt_id.take().map(String::from));
            let Some(id) = id else { return ev };
            let d = req.data;
            ev.push(Event::Visit(VisitEvent {
                mdtrt_id: id,
                psn: d.psn_no.opt().map(psn_key),
                fixmedins: fix,
                visit: Some(Visit::Outpatient),
                med_type: d.med_type.opt().map(str::to_owned),
                insutype: d.insutype.opt().map(str::to_owned),
                dept: d.dept_code.opt().map(str::to_owned),
                caty: d.caty.opt().map(str::to_owned),
                admitted: parse_datetime(d.begntime.as_str()),
                diagnoses: None,
            }));
        }
        Infno::OutpatientVisitInfo | Infno::Admission => {
            let Ok(req) = parse_body::<VisitInfoInput>(input, "input") else { return ev };
            let m = &req.mdtrtinfo;
            let id = m.mdtrt_id.opt().map(str::to_owned).or_else(|| {
                response
                    .and_then(ResponseEnvelope::output_as::<VisitIdOutput>)
                    .and_then(|o| o.result.or(o.data))
                    .and_then(|d| d.mdtrt_id.take().map(String::from))
            });
            let Some(id) = id else { return ev };
            let inpatient = head.infno.as_str() == "2401";
            let main = m.dscg_maindiag_code.opt().or_else(|| m.dise_codg.opt());
            let diags = diagnoses_from(&req.diseinfo, main);
            let med_type = m.med_type.opt().map(str::to_owned);
            let visit = med_type.as_deref().and_then(Visit::from_med_type).or(Some(if inpatient {
                Visit::Inpatient
            } else {
                Visit::Outpatient
            }));
            ev.push(Event::Visit(VisitEvent {
                mdtrt_id: id,
                psn: m.psn_no.opt().map(psn_key),
                fixmedins: fix,
                visit,
                med_type,
                insutype: m.insutype.opt().map(str::to_owned),
                dept: m.adm_dept_codg.opt().map(str::to_owned),
                caty: None,
                admitted: parse_datetime(m.begntime.as_str()),
                diagnoses: (!diags.is_empty()).then_some(diags),
            }));
        }
        Infno::Discharge => {
            let Ok(req) = parse_body::<tx::DischargeInput>(input, "input") else { return ev };
            let d = &req.dscginfo;
            let Some(id) = d.mdtrt_id.opt() else { return ev };
            ev.push(Event::Discharge {
                mdtrt_id: id.to_owned(),
                at: parse_datetime(d.endtime.as_str()),
                diagnoses: diagnoses_from(&req.diseinfo, d.dise_codg.opt()),
            });
        }
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
            let claims = match accepted {
                Some(c) => c,
                None => {
                    let parsed = head.fee.borrow_mut().take();
                    let req = match parsed {
                        Some(b) => *b,
                        None => {
                            let Ok(req) = parse_body::<tx::FeeUploadInput>(input, "input") else { return ev };
                            req
                        }
                    };
                    let infno = if head.infno.as_str() == "2301" { "2301" } else { "2204" };
                    let Ok(c) = crate::claim::normalize::fee_upload(infno, String::new(), req, &crate::claim::NoFacts)
                    else {
                        return ev;
                    };
                    vec![c]
                }
            };
            for c in claims.into_iter().filter(|c| !c.encounter.mdtrt_id.is_empty()) {
                let psn = psn_key(&c.patient.psn_no);
                ev.push(Event::Visit(VisitEvent {
                    mdtrt_id: c.encounter.mdtrt_id.clone(),
                    psn: Some(psn.clone()),
                    fixmedins: fix.clone(),
                    visit: c.encounter.visit,
                    med_type: c.encounter.med_type,
                    ..VisitEvent::default()
                }));
                ev.push(Event::Lines {
                    mdtrt_id: c.encounter.mdtrt_id,
                    psn,
                    fixmedins: fix.clone().unwrap_or_default(),
                    batch: c.batch,
                    lines: c.lines,
                });
            }
        }
        Infno::OutpatientFeeRevoke | Infno::InpatientFeeRevoke => {
            let Ok(req) = parse_body::<DataInput<tx::FeeRevoke>>(input, "input") else { return ev };
            let d = req.data;
            let Some(id) = d.mdtrt_id.opt() else { return ev };
            ev.push(Event::Revoke {
                mdtrt_id: id.to_owned(),
                feedetl_sn: d.feedetl_sn.opt().map(str::to_owned),
                batch: d.chrg_bchno.opt().map(str::to_owned),
            });
        }
        infno @ (Infno::OutpatientPreSettle
        | Infno::InpatientPreSettle
        | Infno::OutpatientSettle
        | Infno::InpatientSettle) => {
            let Ok(req) = parse_body::<DataInput<tx::Settle>>(input, "input") else { return ev };
            let Some(out) = response.and_then(ResponseEnvelope::output_as::<SettleOutput>) else {
                return ev;
            };
            let s = out.setlinfo;
            let Some(mdtrt_id) = s.mdtrt_id.opt().or(req.data.mdtrt_id.opt()).map(str::to_owned) else { return ev };
            let fund = fund_of(&s);
            if matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle) {
                ev.push(Event::PreSettled { mdtrt_id, fund });
                return ev;
            }
            let Some(setl_id) = s.setl_id.opt().map(str::to_owned) else { return ev };
            let psn = psn_key(req.data.psn_no.opt().or(s.psn_no.opt()).unwrap_or_default());
            let day = msg_day.or_else(|| parse_date(s.setl_time.as_str())).unwrap_or(NaiveDate::MIN);
            let visit = s
                .med_type
                .opt()
                .or(req.data.med_type.opt())
                .and_then(Visit::from_med_type)
                .or(Some(if infno == Infno::InpatientSettle { Visit::Inpatient } else { Visit::Outpatient }));
            let items: Vec<(String, crate::claim::SmolStr)> = req
                .data
                .drug_trac_info
                .iter()
                .filter_map(|t| Some((t.feedetl_sn.opt()?.to_owned(), t.drug_trac_codg.opt()?.trim().into())))
                .collect();
            if !items.is_empty() {
                ev.push(Event::Traces {
                    mdtrt_id: mdtrt_id.clone(),
                    psn: psn.clone(),
                    fixmedins: fix.clone().unwrap_or_default(),
                    day,
                    items,
                });
            }
            ev.push(Event::Settled(SettleEvent {
                setl_id,
                mdtrt_id,
                psn,
                msgid: head.msgid.as_str().to_owned(),
                insutype: s.insutype.opt().or(req.data.insutype.opt()).unwrap_or_default().to_owned(),
                visit,
                day,
                fund,
            }));
        }
        Infno::DrugSale | Infno::DrugSaleReturn => {
            let Ok(req) = parse_body::<tx::DrugSaleInput>(input, "input") else { return ev };
            let day = msg_day.unwrap_or(NaiveDate::MIN);
            let returning = head.infno.as_str() == "3506";
            for s in req.sales() {
                let codes = s.trace_codes();
                if codes.is_empty() {
                    continue;
                }
                if returning || s.sel_retn_cnt.is_some_and(|q| q.0 < 0) {
                    ev.push(Event::TraceReturn { codes });
                    continue;
                }
                let key = s.setl_id.opt().or(s.mdtrt_sn.opt()).unwrap_or(s.doc_id());
                ev.push(Event::Traces {
                    mdtrt_id: crate::claim::normalize::sale_visit(key),
                    psn: s.psn_no.opt().map(psn_key).unwrap_or_default(),
                    fixmedins: fix.clone().unwrap_or_default(),
                    day,
                    items: codes.into_iter().map(|c| (s.doc_id().to_owned(), c)).collect(),
                });
            }
        }
        Infno::OutpatientSettleCancel | Infno::InpatientSettleCancel => {
            let Ok(req) = parse_body::<DataInput<tx::SettleCancel>>(input, "input") else { return ev };
            if let Some(id) = req.data.setl_id.opt() {
                ev.push(Event::SettleCancelled { setl_id: id.to_owned() });
            }
        }
        _ => {}
    }
    ev
}

/// The fund shares of a (pre-)settlement answer.
pub fn fund_of(s: &tx::SetlInfo) -> FundAsk {
    let f = |a: Option<crate::wire::num::Amount>| Fen::new(a.map_or(0, |a| a.0));
    FundAsk { hifp_pay: f(s.hifp_pay), fund_pay: f(s.fund_pay_sumamt), medfee: f(s.medfee_sumamt) }
}
