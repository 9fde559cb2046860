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
    let x = Exchange {
        head,
        response,
        input: head.input.map(|r| r.get()).unwrap_or("{}"),
        fix: head.fixmedins_code.opt().map(str::to_owned),
        psn_key,
    };
    let mut ev = Vec::new();
    // `None`: the exchange teaches nothing more (a body that does not parse, an id it lacks).
    let _ = match Infno::parse(head.infno.as_str()) {
        Infno::PersonQuery => x.person(&mut ev),
        Infno::OutpatientRegister => x.register(&mut ev),
        Infno::OutpatientVisitInfo | Infno::Admission => x.visit_info(&mut ev),
        Infno::Discharge => x.discharge(&mut ev),
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => x.uploads(accepted, &mut ev),
        Infno::OutpatientFeeRevoke | Infno::InpatientFeeRevoke => x.revoke(&mut ev),
        infno @ (Infno::OutpatientPreSettle
        | Infno::InpatientPreSettle
        | Infno::OutpatientSettle
        | Infno::InpatientSettle) => x.settlement(infno, &mut ev),
        Infno::DrugSale | Infno::DrugSaleReturn => x.drug_sales(&mut ev),
        Infno::OutpatientSettleCancel | Infno::InpatientSettleCancel => x.settle_cancel(&mut ev),
        _ => None,
    };
    ev
}

/// One accepted exchange being read for what it teaches.
struct Exchange<'a> {
    head: &'a RequestHead<'a>,
    response: Option<&'a ResponseEnvelope>,
    /// The request's raw `input`.
    input: &'a str,
    fix: Option<String>,
    psn_key: &'a dyn Fn(&str) -> String,
}

impl Exchange<'_> {
    fn body<'de, T: serde::Deserialize<'de>>(&self) -> Option<T>
    where
        Self: 'de,
    {
        parse_body::<T>(self.input, "input").ok()
    }

    /// 1101: the person's gender, birth date and (when only one) insurance type.
    fn person(&self, ev: &mut Vec<Event>) -> Option<()> {
        let out = self.response.and_then(ResponseEnvelope::output_as::<PersonOutput>)?;
        let psn_no = out.baseinfo.psn_no.opt()?;
        let mut types: Vec<&str> = out.insuinfo.iter().filter_map(|i| i.insutype.opt()).collect();
        types.sort_unstable();
        types.dedup();
        ev.push(Event::Person {
            psn: (self.psn_key)(psn_no),
            gender: Gender::from_code(out.baseinfo.gend.as_str()),
            birth: parse_date(out.baseinfo.brdy.as_str()),
            insutype: (types.len() == 1).then(|| types[0].to_owned()),
        });
        Some(())
    }

    /// 2201: an outpatient visit under the id the gateway gave it.
    fn register(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: DataInput<tx::Register> = self.body()?;
        let id = self
            .response
            .and_then(ResponseEnvelope::output_as::<VisitIdOutput>)
            .and_then(|o| o.data.or(o.result))
            .and_then(|d| d.mdtrt_id.take().map(String::from))?;
        let d = req.data;
        ev.push(Event::Visit(VisitEvent {
            mdtrt_id: id,
            psn: d.psn_no.opt().map(self.psn_key),
            fixmedins: self.fix.clone(),
            visit: Some(Visit::Outpatient),
            med_type: d.med_type.opt().map(str::to_owned),
            insutype: d.insutype.opt().map(str::to_owned),
            dept: d.dept_code.opt().map(str::to_owned),
            caty: d.caty.opt().map(str::to_owned),
            admitted: parse_datetime(d.begntime.as_str()),
            diagnoses: None,
        }));
        Some(())
    }

    /// 2203 / 2401: a visit's type, department, admission and diagnoses.
    fn visit_info(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: VisitInfoInput = self.body()?;
        let m = &req.mdtrtinfo;
        let id = m.mdtrt_id.opt().map(str::to_owned).or_else(|| {
            self.response
                .and_then(ResponseEnvelope::output_as::<VisitIdOutput>)
                .and_then(|o| o.result.or(o.data))
                .and_then(|d| d.mdtrt_id.take().map(String::from))
        })?;
        let inpatient = self.head.infno.as_str() == "2401";
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
            psn: m.psn_no.opt().map(self.psn_key),
            fixmedins: self.fix.clone(),
            visit,
            med_type,
            insutype: m.insutype.opt().map(str::to_owned),
            dept: m.adm_dept_codg.opt().map(str::to_owned),
            caty: None,
            admitted: parse_datetime(m.begntime.as_str()),
            diagnoses: (!diags.is_empty()).then_some(diags),
        }));
        Some(())
    }

    /// 2402: the discharge time and diagnoses.
    fn discharge(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: tx::DischargeInput = self.body()?;
        let d = &req.dscginfo;
        ev.push(Event::Discharge {
            mdtrt_id: d.mdtrt_id.opt()?.to_owned(),
            at: parse_datetime(d.endtime.as_str()),
            diagnoses: diagnoses_from(&req.diseinfo, d.dise_codg.opt()),
        });
        Some(())
    }

    /// 2204 / 2301: the accepted lines, from the check's claims when it built them.
    fn uploads(&self, accepted: Option<Vec<Claim>>, ev: &mut Vec<Event>) -> Option<()> {
        let claims = match accepted {
            Some(c) => c,
            None => {
                let parsed = self.head.fee.borrow_mut().take();
                let req = match parsed {
                    Some(b) => *b,
                    None => self.body::<tx::FeeUploadInput>()?,
                };
                let infno = if self.head.infno.as_str() == "2301" { "2301" } else { "2204" };
                vec![crate::claim::normalize::fee_upload(infno, String::new(), req, &crate::claim::NoFacts).ok()?]
            }
        };
        let fix = &self.fix;
        for c in claims.into_iter().filter(|c| !c.encounter.mdtrt_id.is_empty()) {
            let psn = (self.psn_key)(&c.patient.psn_no);
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
        Some(())
    }

    /// 2205 / 2302: lines revoked by serial number, by batch, or all of the visit's.
    fn revoke(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: DataInput<tx::FeeRevoke> = self.body()?;
        let d = req.data;
        ev.push(Event::Revoke {
            mdtrt_id: d.mdtrt_id.opt()?.to_owned(),
            feedetl_sn: d.feedetl_sn.opt().map(str::to_owned),
            batch: d.chrg_bchno.opt().map(str::to_owned),
        });
        Some(())
    }

    /// 2206 / 2303: the fund shares the gateway computed; 2207 / 2304: the settlement and the trace
    /// codes it sold.
    fn settlement(&self, infno: Infno, ev: &mut Vec<Event>) -> Option<()> {
        let req: DataInput<tx::Settle> = self.body()?;
        let out = self.response.and_then(ResponseEnvelope::output_as::<SettleOutput>)?;
        let s = out.setlinfo;
        let mdtrt_id = s.mdtrt_id.opt().or(req.data.mdtrt_id.opt()).map(str::to_owned)?;
        let fund = fund_of(&s);
        if matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle) {
            ev.push(Event::PreSettled { mdtrt_id, fund });
            return Some(());
        }
        let setl_id = s.setl_id.opt().map(str::to_owned)?;
        let psn = (self.psn_key)(req.data.psn_no.opt().or(s.psn_no.opt()).unwrap_or_default());
        let msg_day = parse_date(self.head.inf_time.as_str());
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
                fixmedins: self.fix.clone().unwrap_or_default(),
                day,
                items,
            });
        }
        ev.push(Event::Settled(SettleEvent {
            setl_id,
            mdtrt_id,
            psn,
            msgid: self.head.msgid.as_str().to_owned(),
            insutype: s.insutype.opt().or(req.data.insutype.opt()).unwrap_or_default().to_owned(),
            visit,
            day,
            fund,
        }));
        Some(())
    }

    /// 3505 / 3506: trace codes sold (or returned) at the pharmacy counter.
    fn drug_sales(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: tx::DrugSaleInput = self.body()?;
        let day = parse_date(self.head.inf_time.as_str()).unwrap_or(NaiveDate::MIN);
        let returning = self.head.infno.as_str() == "3506";
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
                psn: s.psn_no.opt().map(self.psn_key).unwrap_or_default(),
                fixmedins: self.fix.clone().unwrap_or_default(),
                day,
                items: codes.into_iter().map(|c| (s.doc_id().to_owned(), c)).collect(),
            });
        }
        Some(())
    }

    /// 2208 / 2305: a settlement cancelled.
    fn settle_cancel(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: DataInput<tx::SettleCancel> = self.body()?;
        ev.push(Event::SettleCancelled { setl_id: req.data.setl_id.opt()?.to_owned() });
        Some(())
    }
}

/// The fund shares of a (pre-)settlement answer.
pub fn fund_of(s: &tx::SetlInfo) -> FundAsk {
    let f = |a: Option<crate::wire::num::Amount>| Fen::new(a.map_or(0, |a| a.0));
    FundAsk { hifp_pay: f(s.hifp_pay), fund_pay: f(s.fund_pay_sumamt), medfee: f(s.medfee_sumamt) }
}
