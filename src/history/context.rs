//! The in-memory visit context.

use crate::claim::normalize::{self, diagnoses_from};
use crate::claim::time::{parse_date, parse_datetime};
use crate::claim::{Facts, Gender, Line, PersonFacts, Visit, VisitFacts};
use crate::wire::tx::{self, DataInput, FeeUploadInput, PersonOutput, VisitIdOutput, VisitInfoInput};
use crate::wire::{parse_body, Infno, RequestHead, ResponseEnvelope};
use moka::sync::Cache;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;

/// A visit's accepted lines, indexed by `feedetl_sn` so a retry replaces and never doubles.
#[derive(Default)]
struct LineSet {
    lines: Vec<Line>,
    by_id: FxHashMap<String, usize>,
}

impl LineSet {
    fn upsert(&mut self, l: Line) {
        match self.by_id.get(&l.id) {
            Some(&i) => self.lines[i] = l,
            None => {
                self.by_id.insert(l.id.clone(), self.lines.len());
                self.lines.push(l);
            }
        }
    }
    fn retain(&mut self, keep: impl Fn(&Line) -> bool) {
        self.lines.retain(keep);
        self.by_id = self.lines.iter().enumerate().map(|(i, l)| (l.id.clone(), i)).collect();
    }
}

/// Facts learnt from relayed exchanges, bounded in size and age.
pub struct ContextStore {
    persons: Cache<String, Arc<PersonFacts>>,
    visits: Cache<String, Arc<VisitFacts>>,
    /// Per visit, mutated in place. A std Mutex: held only for an in-memory update, never across
    /// an await, and per visit, so two windows of one hospital rarely meet on it.
    lines: Cache<String, Arc<std::sync::Mutex<LineSet>>>,
    tier: Option<u8>,
}

impl ContextStore {
    /// `capacity` entries each for persons and visits, forgotten after `ttl` without access.
    pub fn new(capacity: u64, ttl: Duration, tier: Option<u8>) -> Self {
        ContextStore {
            persons: Cache::builder().max_capacity(capacity).time_to_idle(ttl).build(),
            visits: Cache::builder().max_capacity(capacity).time_to_idle(ttl).build(),
            lines: Cache::builder().max_capacity(capacity).time_to_idle(ttl).build(),
            tier,
        }
    }

    /// A small store for one CLI run or one test case.
    pub fn ephemeral(tier: Option<u8>) -> Self {
        Self::new(100_000, Duration::from_secs(7 * 24 * 3600), tier)
    }

    fn update_visit(&self, mdtrt_id: &str, f: impl FnOnce(&mut VisitFacts)) {
        if mdtrt_id.is_empty() {
            return;
        }
        let mut v = self.visits.get(mdtrt_id).map(|a| (*a).clone()).unwrap_or_default();
        f(&mut v);
        self.visits.insert(mdtrt_id.to_owned(), Arc::new(v));
    }

    /// Learns the lines of a fee upload the gateway accepted (the claim the check already built,
    /// so the body is not parsed twice).
    pub fn learn_upload(&self, claim: crate::claim::Claim) {
        let id = claim.encounter.mdtrt_id.clone();
        if id.is_empty() {
            return;
        }
        if self.visits.get(&id).is_none_or(|v| v.psn_no.is_empty() || v.visit.is_none()) {
            let psn = claim.patient.psn_no.clone();
            let visit = claim.encounter.visit;
            self.update_visit(&id, |v| {
                if v.psn_no.is_empty() {
                    v.psn_no = psn;
                }
                if v.visit.is_none() {
                    v.visit = visit;
                }
            });
        }
        let set = self.lines.get_with(id, || Arc::new(std::sync::Mutex::new(LineSet::default())));
        let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
        for l in claim.lines {
            set.upsert(l);
        }
    }

    /// Learns from one exchange. `response` is the gateway's answer; `None` means the request is
    /// taken as accepted (a CLI context file without an answer). A rejected exchange teaches nothing.
    /// Malformed bodies are ignored: learning never fails the exchange.
    pub fn learn(&self, head: &RequestHead<'_>, response: Option<&ResponseEnvelope>) {
        if response.is_some_and(|r| !r.is_success()) {
            return;
        }
        let input = head.input.map(|r| r.get()).unwrap_or("{}");
        let output = response.and_then(|r| r.output.as_ref());
        match Infno::parse(head.infno.as_str()) {
            Infno::PersonQuery => {
                let Some(out) = output.and_then(|o| serde_json::from_value::<PersonOutput>(o.clone()).ok()) else {
                    return;
                };
                let Some(psn_no) = out.baseinfo.psn_no.opt() else { return };
                let mut types: Vec<&str> = out.insuinfo.iter().filter_map(|i| i.insutype.opt()).collect();
                types.sort_unstable();
                types.dedup();
                let facts = PersonFacts {
                    gender: Gender::from_code(out.baseinfo.gend.as_str()),
                    birth: parse_date(out.baseinfo.brdy.as_str()),
                    insutype: (types.len() == 1).then(|| types[0].to_owned()),
                };
                self.persons.insert(psn_no.to_owned(), Arc::new(facts));
            }
            Infno::OutpatientRegister => {
                let Ok(req) = parse_body::<DataInput<tx::Register>>(input, "input") else { return };
                let id = output
                    .and_then(|o| serde_json::from_value::<VisitIdOutput>(o.clone()).ok())
                    .and_then(|o| o.data.or(o.result))
                    .and_then(|d| d.mdtrt_id.take());
                let Some(id) = id else { return };
                let d = req.data;
                self.update_visit(&id, |v| {
                    v.psn_no = d.psn_no.as_str().to_owned();
                    v.visit = Some(Visit::Outpatient);
                    v.insutype = d.insutype.opt().map(str::to_owned).or(v.insutype.take());
                    v.med_type = d.med_type.opt().map(str::to_owned).or(v.med_type.take());
                    v.admitted = parse_datetime(d.begntime.as_str()).or(v.admitted);
                    v.dept_code = d.dept_code.opt().map(str::to_owned).or(v.dept_code.take());
                    v.caty = d.caty.opt().map(str::to_owned).or(v.caty.take());
                });
            }
            Infno::OutpatientVisitInfo | Infno::Admission => {
                let Ok(req) = parse_body::<VisitInfoInput>(input, "input") else { return };
                let m = &req.mdtrtinfo;
                let id = m.mdtrt_id.opt().map(str::to_owned).or_else(|| {
                    output
                        .and_then(|o| serde_json::from_value::<VisitIdOutput>(o.clone()).ok())
                        .and_then(|o| o.result.or(o.data))
                        .and_then(|d| d.mdtrt_id.take())
                });
                let Some(id) = id else { return };
                let inpatient = head.infno.as_str() == "2401";
                let main = m.dscg_maindiag_code.opt().or_else(|| m.dise_codg.opt());
                let diags = diagnoses_from(&req.diseinfo, main);
                self.update_visit(&id, |v| {
                    if !m.psn_no.is_empty() {
                        v.psn_no = m.psn_no.as_str().to_owned();
                    }
                    v.visit = Some(if inpatient { Visit::Inpatient } else { Visit::Outpatient });
                    v.insutype = m.insutype.opt().map(str::to_owned).or(v.insutype.take());
                    if let Some(mt) = m.med_type.opt() {
                        v.med_type = Some(mt.to_owned());
                        v.visit = Visit::from_med_type(mt).or(v.visit);
                    }
                    v.admitted = parse_datetime(m.begntime.as_str()).or(v.admitted);
                    v.dept_code = m.adm_dept_codg.opt().map(str::to_owned).or(v.dept_code.take());
                    if !diags.is_empty() || v.diagnoses.is_none() {
                        v.diagnoses = Some(diags);
                    }
                });
            }
            Infno::Discharge => {
                let Ok(req) = parse_body::<tx::DischargeInput>(input, "input") else { return };
                let d = &req.dscginfo;
                let diags = diagnoses_from(&req.diseinfo, d.dise_codg.opt());
                self.update_visit(d.mdtrt_id.as_str(), |v| {
                    v.discharged = parse_datetime(d.endtime.as_str());
                    if !diags.is_empty() {
                        v.diagnoses = Some(diags);
                    }
                });
            }
            Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
                let Ok(req) = parse_body::<FeeUploadInput>(input, "input") else { return };
                let infno = if head.infno.as_str() == "2301" { "2301" } else { "2204" };
                let Ok(claim) = normalize::fee_upload(infno, String::new(), req, self) else { return };
                self.learn_upload(claim);
            }
            Infno::OutpatientFeeRevoke | Infno::InpatientFeeRevoke => {
                let Ok(req) = parse_body::<DataInput<tx::FeeRevoke>>(input, "input") else { return };
                let d = req.data;
                let sn = d.feedetl_sn.as_str().to_owned();
                let Some(set) = self.lines.get(d.mdtrt_id.as_str()) else { return };
                let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
                // 2205 revokes by batch; claimgate does not keep batch numbers yet, so any 2205
                // and a 2302 with "0000" revoke every unsettled line.
                if head.infno.as_str() == "2205" || sn == "0000" || sn.is_empty() {
                    *set = LineSet::default();
                } else {
                    set.retain(|l| l.id != sn);
                }
            }
            _ => {}
        }
    }
}

impl Facts for ContextStore {
    fn person(&self, psn_no: &str) -> Option<Arc<PersonFacts>> {
        self.persons.get(psn_no)
    }
    fn visit(&self, mdtrt_id: &str) -> Option<Arc<VisitFacts>> {
        self.visits.get(mdtrt_id)
    }
    fn institution_tier(&self) -> Option<u8> {
        self.tier
    }
    fn visit_lines(&self, mdtrt_id: &str) -> Vec<Line> {
        match self.lines.get(mdtrt_id) {
            Some(set) => set.lock().unwrap_or_else(|p| p.into_inner()).lines.clone(),
            None => Vec::new(),
        }
    }
}
