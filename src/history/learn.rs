//! From one accepted exchange (request + the gateway's answer) to the history events it implies.
//! Pure: no store, no clock (the day comes from the message).
//!
//! A checked transaction (fee upload, (pre-)settlement, 2401 admission, 3505 sale) is learnt from
//! its claims — the ones the check built, or, where there was no check (an outbox replay after a
//! restart, a context file, an unchecked forward), the ones [`normalize::message`] builds from the
//! request here — plus the gateway's answer for what the request lacks (a 2401's mdtrt_id, a
//! settlement's setl_id and fund shares). `claim::normalize` stays the one translator from wire to
//! domain for them; the transactions nobody checks (1101, 2201, 2203, 2205, 2208, 2302, 2305,
//! 2402, 3506) are read here, once.

use super::db::{Event, SettleEvent, VisitEvent};
use crate::claim::normalize::{self, diagnoses_from};
use crate::claim::time::{parse_date, parse_datetime};
use crate::claim::{Claim, Fen, FundAsk, Gender, NoFacts, TraceSale, Visit};
use crate::wire::tx::{self, DataInput, PersonOutput, SettleOutput, VisitIdOutput, VisitInfoInput};
use crate::wire::{parse_body, Infno, RequestHead, ResponseEnvelope};
use chrono::NaiveDate;

/// Learns from one exchange. `response` is the gateway's answer; `None` means the request is taken
/// as accepted (a context file without an answer). A rejected exchange teaches nothing. `accepted`
/// are the claims the check built for a checked transaction (an upload's lines are moved into the
/// events), so its body is not read again; `None` reads them from the request.
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
    let infno = Infno::parse(head.infno.as_str());
    if infno.is_checked() {
        let claims = match accepted {
            Some(c) => c,
            // No check read this request: the same translator reads it now, without facts (what
            // is learnt comes from the message and the answer, never from earlier history).
            None => match normalize::message(head, &NoFacts) {
                Ok(Some(c)) => c.claims,
                _ => return ev,
            },
        };
        let _ = x.claims(infno, claims, &mut ev);
        return ev;
    }
    // `None`: the exchange teaches nothing more (a body that does not parse, an id it lacks).
    let _ = match infno {
        Infno::PersonQuery => x.person(&mut ev),
        Infno::OutpatientRegister => x.register(&mut ev),
        Infno::OutpatientVisitInfo => x.visit_info(&mut ev),
        Infno::Discharge => x.discharge(&mut ev),
        Infno::OutpatientFeeRevoke | Infno::InpatientFeeRevoke => x.revoke(&mut ev),
        Infno::DrugSaleReturn => x.drug_returns(&mut ev),
        Infno::OutpatientSettleCancel | Infno::InpatientSettleCancel => x.settle_cancel(&mut ev),
        _ => None,
    };
    ev
}

/// One accepted exchange being read for what it teaches.
struct Exchange<'a> {
    head: &'a RequestHead<'a>,
    response: Option<&'a ResponseEnvelope>,
    /// The request's raw `input` (read only for the transactions nobody checks).
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

    /// A checked transaction, from its claims.
    fn claims(&self, infno: Infno, claims: Vec<Claim>, ev: &mut Vec<Event>) -> Option<()> {
        match infno {
            Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => self.uploads(claims, ev),
            Infno::OutpatientPreSettle
            | Infno::InpatientPreSettle
            | Infno::OutpatientSettle
            | Infno::InpatientSettle => self.settlement(infno, claims.into_iter().next()?, ev),
            Infno::Admission => self.admission(claims.into_iter().next()?, ev),
            Infno::DrugSale => {
                for c in claims {
                    self.sold(c.sold, ev);
                }
                Some(())
            }
            _ => None,
        }
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

    /// 2203: a visit's type, department and diagnoses.
    fn visit_info(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: VisitInfoInput = self.body()?;
        let m = &req.mdtrtinfo;
        let id = m.mdtrt_id.opt().map(str::to_owned).or_else(|| self.answered_visit_id())?;
        let main = m.dscg_maindiag_code.opt().or_else(|| m.dise_codg.opt());
        let diags = diagnoses_from(&req.diseinfo, main);
        let med_type = m.med_type.opt().map(str::to_owned);
        let visit = med_type.as_deref().and_then(Visit::from_med_type).or(Some(Visit::Outpatient));
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

    /// The visit id the gateway gave (a 2401 is sent without one).
    fn answered_visit_id(&self) -> Option<String> {
        self.response
            .and_then(ResponseEnvelope::output_as::<VisitIdOutput>)
            .and_then(|o| o.result.or(o.data))
            .and_then(|d| d.mdtrt_id.take().map(String::from))
    }

    /// 2401: the admission claim — the visit's type, department, admission and diagnoses — under
    /// the id the gateway gave it.
    fn admission(&self, c: Claim, ev: &mut Vec<Event>) -> Option<()> {
        let e = c.encounter;
        let id = Some(e.mdtrt_id.trim()).filter(|i| !i.is_empty()).map(str::to_owned);
        let id = id.or_else(|| self.answered_visit_id())?;
        let psn = Some(c.patient.psn_no.as_str()).filter(|p| !p.is_empty()).map(self.psn_key);
        ev.push(Event::Visit(VisitEvent {
            mdtrt_id: id,
            psn,
            fixmedins: self.fix.clone(),
            visit: e.med_type.as_deref().and_then(Visit::from_med_type).or(e.visit),
            med_type: e.med_type,
            insutype: c.patient.insutype,
            dept: e.dept_code,
            caty: None,
            admitted: e.admitted,
            diagnoses: e.diagnoses.filter(|d| !d.is_empty()),
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

    /// 2204 / 2301: the accepted lines, from the upload's claim.
    fn uploads(&self, claims: Vec<Claim>, ev: &mut Vec<Event>) -> Option<()> {
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
    /// codes it sold. From the settlement's claim and the gateway's `setlinfo`.
    fn settlement(&self, infno: Infno, c: Claim, ev: &mut Vec<Event>) -> Option<()> {
        let out = self.response.and_then(ResponseEnvelope::output_as::<SettleOutput>)?;
        let s = out.setlinfo;
        let own = |t: &str| Some(t.trim()).filter(|t| !t.is_empty()).map(str::to_owned);
        let mdtrt_id = s.mdtrt_id.opt().map(str::to_owned).or_else(|| own(&c.encounter.mdtrt_id))?;
        let fund = fund_of(&s);
        if matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle) {
            ev.push(Event::PreSettled { mdtrt_id, fund });
            return Some(());
        }
        let setl_id = s.setl_id.opt().map(str::to_owned)?;
        let psn = (self.psn_key)(own(&c.patient.psn_no).as_deref().or(s.psn_no.opt()).unwrap_or_default());
        let msg_day = parse_date(self.head.inf_time.as_str());
        let day = msg_day.or_else(|| parse_date(s.setl_time.as_str())).unwrap_or(NaiveDate::MIN);
        let visit = s
            .med_type
            .opt()
            .or(c.encounter.med_type.as_deref())
            .and_then(Visit::from_med_type)
            .or(Some(if infno == Infno::InpatientSettle { Visit::Inpatient } else { Visit::Outpatient }));
        let items: Vec<(String, crate::claim::SmolStr)> = c
            .sold
            .into_iter()
            .flat_map(|t| {
                let line = t.line.to_string();
                t.codes.into_iter().map(move |code| (line.clone(), code))
            })
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
            insutype: s.insutype.opt().or(c.patient.insutype.as_deref()).unwrap_or_default().to_owned(),
            visit,
            day,
            fund,
        }));
        Some(())
    }

    /// 3506: the boxes that came back.
    fn drug_returns(&self, ev: &mut Vec<Event>) -> Option<()> {
        let req: tx::DrugSaleInput = self.body()?;
        self.sold(normalize::trace_sales(&req, true), ev);
        Some(())
    }

    /// Trace codes sold (or returned) at the pharmacy counter, each sale under its own visit.
    fn sold(&self, sold: Vec<TraceSale>, ev: &mut Vec<Event>) {
        let day = parse_date(self.head.inf_time.as_str()).unwrap_or(NaiveDate::MIN);
        for s in sold {
            if s.returned {
                ev.push(Event::TraceReturn { codes: s.codes });
                continue;
            }
            let line = s.line.to_string();
            ev.push(Event::Traces {
                mdtrt_id: s.visit.unwrap_or_default(),
                psn: s.psn_no.as_deref().map(self.psn_key).unwrap_or_default(),
                fixmedins: self.fix.clone().unwrap_or_default(),
                day,
                items: s.codes.into_iter().map(|c| (line.clone(), c)).collect(),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use serde_json::{json, Value};

    const AT: &str = "2025-06-10 10:00:00";

    fn env(infno: &str, msgid: &str, input: Value) -> Vec<u8> {
        let e =
            json!({"infno": infno, "msgid": msgid, "inf_time": AT, "fixmedins_code": "H41070100001", "input": input});
        serde_json::to_vec(&e).unwrap_or_default()
    }

    fn answer(output: Value) -> ResponseEnvelope {
        serde_json::from_value(json!({"infcode": 0, "err_msg": "", "output": output})).expect("answer")
    }

    fn key(p: &str) -> String {
        format!("k:{p}")
    }

    /// What an exchange teaches when history reads the request itself (an outbox replay).
    fn from_bytes(req: &[u8], resp: &ResponseEnvelope) -> String {
        let head = crate::wire::parse_head(req).expect("head");
        format!("{:?}", events(&head, Some(resp), None, &key))
    }

    /// What it teaches from the claims a check built with `facts`, its body read once.
    fn from_check(req: &[u8], resp: &ResponseEnvelope, facts: &dyn crate::claim::Facts) -> String {
        let head = crate::wire::parse_request(req).expect("head");
        let claims = normalize::message(&head, facts).expect("claims").expect("a claim transaction").claims;
        format!("{:?}", events(&head.detached(), Some(resp), Some(claims), &key))
    }

    #[test]
    fn a_settlement_learns_from_the_checks_claim_what_its_bytes_teach() {
        // Arrange: history knows the visit and one of its lines; the settlement names boxes of that
        // line and of one history does not hold.
        let h = History::ephemeral(None);
        let line = json!({"feedetl_sn": "L1", "mdtrt_id": "V1", "psn_no": "P1", "fee_ocur_time": AT,
            "med_list_codg": "XA11DAW036A001010104127", "det_item_fee_sumamt": "10.00", "cnt": 1, "pric": "10.00"});
        h.learn(&crate::wire::parse_head(&env("2204", "M1", json!({"feedetail": [line]}))).expect("head"), None, None)
            .expect("learn");
        let req = env(
            "2207",
            "M2",
            json!({"data": {"psn_no": "P1", "mdtrt_id": "V1", "insutype": "390", "med_type": "11",
                "drug_trac_info": [{"feedetl_sn": "L1", "drug_trac_codg": "81000000000000000001"},
                                   {"feedetl_sn": "L9", "drug_trac_codg": " 81000000000000000002 "}]}}),
        );
        let resp = answer(json!({"setlinfo": {"mdtrt_id": "V1", "setl_id": "S1", "insutype": "390", "med_type": "11",
            "hifp_pay": "5.00", "fund_pay_sumamt": "5.00", "medfee_sumamt": "10.00"}}));

        // Act
        let checked = from_check(&req, &resp, &h);
        let replayed = from_bytes(&req, &resp);

        // Assert: the same events either way, with the gateway's ids and every box named.
        assert_eq!(checked, replayed);
        assert!(checked.contains(r#"setl_id: "S1""#), "{checked}");
        assert!(checked.contains(r#"("L1", "81000000000000000001"), ("L9", "81000000000000000002")"#), "{checked}");
        assert!(checked.contains("hifp_pay: Fen(500)"), "{checked}");
    }

    #[test]
    fn an_admission_is_learnt_under_the_visit_id_the_gateway_gave() {
        // Arrange: a 2401 carries no mdtrt_id; the gateway's answer does.
        let req = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inpatient/2401-admission.json"))
            .expect("fixture");
        let resp = answer(json!({"result": {"mdtrt_id": "410700ZY0001"}}));

        // Act
        let checked = from_check(&req, &resp, &crate::claim::NoFacts);

        // Assert
        assert_eq!(checked, from_bytes(&req, &resp));
        assert!(checked.contains(r#"mdtrt_id: "410700ZY0001""#), "{checked}");
        assert!(checked.contains("visit: Some(Inpatient)"), "{checked}");
        assert!(checked.contains(r#"code: "J06.900""#), "{checked}");
        assert!(checked.contains("admitted: Some(2025-10-08T10:30:00)"), "{checked}");
    }

    #[test]
    fn each_sale_of_a_3505a_batch_is_learnt_under_its_own_settlement_and_a_return_frees_its_boxes() {
        // Arrange: two buyers' sales and one return in one batch.
        let sale = |doc: &str, setl: &str, psn: &str, cnt: &str, code: &str| {
            json!({"med_list_codg": "XA11DAW036A001010104127", "rtal_docno": doc, "setl_id": setl, "psn_no": psn,
                "sel_retn_cnt": cnt, "finl_trns_pric": "12.50", "sel_retn_time": AT,
                "drugtracinfo": [{"drug_trac_codg": code}]})
        };
        let req = env(
            "3505",
            "M3",
            json!({"selinfoDetail": [sale("D1", "S1", "P1", "1", "81000000000000000011"),
                                     sale("D2", "S2", "P2", "1", "81000000000000000012"),
                                     sale("D3", "S1", "P1", "-1", "81000000000000000013")]}),
        );
        let resp = answer(json!({}));

        // Act
        let checked = from_check(&req, &resp, &crate::claim::NoFacts);

        // Assert
        assert_eq!(checked, from_bytes(&req, &resp));
        assert!(checked.contains(r#"mdtrt_id: "3505:S1", psn: "k:P1""#), "{checked}");
        assert!(checked.contains(r#"mdtrt_id: "3505:S2", psn: "k:P2""#), "{checked}");
        assert!(checked.contains(r#"TraceReturn { codes: ["81000000000000000013"] }"#), "{checked}");
    }

    #[test]
    fn an_unreadable_checked_request_teaches_nothing_and_is_no_store_error() {
        // Arrange: a settlement forwarded unchecked whose data is not an object.
        let h = History::ephemeral(None);
        let req = env("2207", "M4", json!({"data": "not an object"}));
        let resp = answer(json!({"setlinfo": {"mdtrt_id": "V1", "setl_id": "S1"}}));
        let head = crate::wire::parse_head(&req).expect("head");

        // Act
        let learnt = h.learn_durably_parsed(&head, &req, Some(&resp), None);

        // Assert
        assert_eq!(from_bytes(&req, &resp), "[]");
        assert!(matches!(learnt, Ok(true)), "{learnt:?}");
    }
}
