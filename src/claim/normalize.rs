//! From wire transactions to one [`Claim`] model: the one translator from wire to domain. The
//! rules judge its claims, and history learns from the same claims once the gateway accepts them
//! ([`message`] reads a message's body as far as its `infno` calls for). A 2301 upload and a 3101
//! 事前 request for the same orders give the same claim. Facts the message does not carry (gender,
//! birth date, insutype, med_type, diagnoses) come from [`Facts`], what claimgate learnt from
//! earlier exchanges.

use super::model::*;
use super::money::{Fen, Price, Qty};
use super::time::{parse_date, parse_datetime};
use super::{Claim, Stage, TraceSale};
use crate::wire::tx::{self, Analysis, DataInput, FeeUploadInput, Settle, VisitInfoInput};
use crate::wire::{parse_body, Infno, ParseError, RequestHead, Text};
use chrono::{NaiveDate, NaiveDateTime};
use rustc_hash::FxHashSet;
use std::sync::Arc;

/// What claimgate knows about a person from a 1101 answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    pub gender: Option<Gender>,
    pub birth: Option<NaiveDate>,
    /// Set only when the person has exactly one insurance type.
    pub insutype: Option<String>,
}

/// What claimgate knows about a visit from 2201/2203/2401/2402 and accepted uploads: the encounter
/// as it was learnt (no tier: that is the hospital's) and the insurance type it was under.
#[derive(Debug, Clone, Default)]
pub struct VisitFacts {
    pub insutype: Option<String>,
    pub encounter: Encounter,
}

/// The source of facts that do not travel in the claim.
pub trait Facts {
    fn person(&self, psn_no: &str) -> Option<Arc<PersonFacts>>;
    fn visit(&self, mdtrt_id: &str) -> Option<Arc<VisitFacts>>;
    /// The hospital's own tier (configured), used when the message does not carry `medins_lv`.
    fn institution_tier(&self) -> Option<u8>;
    /// The lines the gateway accepted for this visit and that were not revoked (for settlement).
    fn visit_lines(&self, _mdtrt_id: &str) -> Vec<Line> {
        Vec::new()
    }
    /// What the gateway's pre-settlement answer computed for this visit (for the settlement).
    fn presettled(&self, _mdtrt_id: &str) -> Option<super::history::FundAsk> {
        None
    }
}

/// No facts at all: what `claimgate check` knows from a single file.
pub struct NoFacts;

impl Facts for NoFacts {
    fn person(&self, _: &str) -> Option<Arc<PersonFacts>> {
        None
    }
    fn visit(&self, _: &str) -> Option<Arc<VisitFacts>> {
        None
    }
    fn institution_tier(&self) -> Option<u8> {
        None
    }
}

/// The largest quantity on one line that is taken as real (a 1,000,000-unit line is a typo or an attack).
const MAX_QTY: i64 = 1_000_000 * Qty::SCALE;
/// The largest amount on one line: 100 million 元.
const MAX_AMOUNT: i64 = 10_000_000_000;

fn req(t: &Text, path: impl FnOnce() -> String) -> Result<&str, ParseError> {
    t.opt().ok_or_else(|| ParseError::Missing(path()))
}

fn req_time(t: &Text, path: impl Fn() -> String) -> Result<NaiveDateTime, ParseError> {
    let s = req(t, &path)?;
    parse_datetime(s).ok_or_else(|| ParseError::field(path(), format!("not a date-time: {s:?}")))
}

fn opt_time(t: &Text, path: impl Fn() -> String) -> Result<Option<NaiveDateTime>, ParseError> {
    match t.opt() {
        None => Ok(None),
        Some(s) => {
            parse_datetime(s).map(Some).ok_or_else(|| ParseError::field(path(), format!("not a date-time: {s:?}")))
        }
    }
}

fn check_qty(q: Qty, path: impl Fn() -> String) -> Result<Qty, ParseError> {
    if q.units().abs() > MAX_QTY {
        return Err(ParseError::field(path(), "quantity out of range (more than 1,000,000 units)"));
    }
    Ok(q)
}

fn check_amount(a: Fen, path: impl Fn() -> String) -> Result<Fen, ParseError> {
    if a.get().abs() > MAX_AMOUNT {
        return Err(ParseError::field(path(), "amount out of range"));
    }
    Ok(a)
}

fn check_price(p: Price, path: impl Fn() -> String) -> Result<Price, ParseError> {
    if p.micro() < 0 {
        return Err(ParseError::field(path(), "negative unit price"));
    }
    if p.micro() > MAX_AMOUNT * 10_000 {
        return Err(ParseError::field(path(), "unit price out of range"));
    }
    Ok(p)
}

/// The trace codes a fee line carries, from whichever node the province uses.
fn trace_codes(d: &tx::FeeDetail) -> Vec<SmolStr> {
    let exp = d.exp_content.as_ref().and_then(|e| e.get("drug_trac_codg")).and_then(|v| v.as_str());
    tx::trace_codes(
        std::iter::once(d.drug_trac_codg.as_str())
            .chain(d.drugtracinfo.iter().map(|t| t.drug_trac_codg.as_str()))
            .chain(exp),
    )
}

/// The claims of one message and, for a 3101/3102, its `task_id`.
#[derive(Debug)]
pub struct Claims {
    pub claims: Vec<Claim>,
    pub task_id: Option<String>,
}

/// The body's `input`, or why there is nothing to read.
///
/// # Errors
/// No `input`, SM4 ciphertext declared by `enc_type` ([`ParseError::Encrypted`]), or an `input`
/// that is not an object.
pub fn input<'a>(head: &RequestHead<'a>) -> Result<&'a str, ParseError> {
    let raw = head.input.ok_or_else(|| ParseError::Missing("input".into()))?;
    let s = raw.get();
    match (s.as_bytes().first(), head.enc_type.opt()) {
        (Some(b'{'), _) => Ok(s),
        // 吉林-style SM4 ciphertext, declared by `enc_type`: nothing to check.
        (Some(b'"'), Some(enc)) => Err(ParseError::Encrypted(enc.to_owned())),
        // A string without `enc_type`, an array, a number, null: not a transaction input.
        _ => Err(ParseError::field("input", "not an object (and no enc_type declares it encrypted)")),
    }
}

fn static_infno(code: &str) -> &'static str {
    match code {
        "2204" => "2204",
        "2301" => "2301",
        "2206" => "2206",
        "2207" => "2207",
        "2303" => "2303",
        "2304" => "2304",
        "2401" => "2401",
        "3101" => "3101",
        "3102" => "3102",
        "3505" => "3505",
        _ => "other",
    }
}

/// The claims a message carries: a claim transaction (2204/2301/2206/2207/2303/2304/2401/3505)
/// or a 3101/3102 analysis, read once, with the message's `msgid` and day on each; `Ok(None)` for
/// any other `infno`, whose body is not read here. A fee upload's `input` parsed with the head
/// ([`RequestHead::fee`]) is taken over, not read again.
///
/// # Errors
/// [`ParseError`] naming the field; [`ParseError::Encrypted`] for SM4 ciphertext.
pub fn message(head: &RequestHead<'_>, facts: &dyn Facts) -> Result<Option<Claims>, ParseError> {
    let code = head.infno.as_str();
    let fix = head.fixmedins_code.as_str().to_owned();
    let sinfno = static_infno(code.get(..4).unwrap_or(code));
    let mut task_id = None;
    let one = |c: Claim| vec![c];
    let mut claims = match Infno::parse(code) {
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
            let parsed = head.take_fee();
            let body: FeeUploadInput = match parsed {
                Some(b) => *b,
                None => parse_body(input(head)?, "input")?,
            };
            one(fee_upload(sinfno, fix, body, facts)?)
        }
        Infno::OutpatientPreSettle | Infno::OutpatientSettle | Infno::InpatientPreSettle | Infno::InpatientSettle => {
            let body: DataInput<Settle> = parse_body(input(head)?, "input")?;
            one(settlement(sinfno, fix, body.data, facts)?)
        }
        Infno::Admission => {
            let body: VisitInfoInput = parse_body(input(head)?, "input")?;
            one(admission(fix, body, facts)?)
        }
        Infno::PreAnalysis | Infno::MidAnalysis => {
            let body: DataInput<Analysis> = parse_body(input(head)?, "input")?;
            task_id = body.data.task_id.opt().map(str::to_owned);
            analysis(sinfno, &fix, body.data, facts)?
        }
        Infno::DrugSale => {
            let body: tx::DrugSaleInput = parse_body(input(head)?, "input")?;
            one(drug_sale(fix, &body, parse_datetime(head.inf_time.as_str()))?)
        }
        _ => return Ok(None),
    };
    // The message's own day (inf_time), for claims whose lines do not say (settlement); an
    // admission's day is its admission date.
    let day = parse_date(head.inf_time.as_str());
    for c in claims.iter_mut() {
        c.msgid = head.msgid.as_str().to_owned();
        c.day = c.encounter.admitted.filter(|_| c.is_admission()).map(|t| t.date()).or(day);
    }
    Ok(Some(Claims { claims, task_id }))
}

/// The trace codes of a 3505/3506 message's sales, one entry per sale that names any (`returning`:
/// a 3506, every sale a return).
pub fn trace_sales(input: &tx::DrugSaleInput, returning: bool) -> Vec<TraceSale> {
    input
        .sales()
        .filter_map(|s| {
            let codes = s.trace_codes();
            if codes.is_empty() {
                return None;
            }
            let key = s.setl_id.opt().or(s.mdtrt_sn.opt()).unwrap_or(s.doc_id());
            Some(TraceSale {
                line: SmolStr::new(s.doc_id()),
                visit: Some(sale_visit(key)),
                psn_no: s.psn_no.opt().map(str::to_owned),
                codes,
                returned: returning || s.sel_retn_cnt.is_some_and(|q| q.0 < 0),
            })
        })
        .collect()
}

/// 3505 商品销售: one line per sale, the boxes' trace codes on it (the 回流药 check).
///
/// # Errors
/// No sale in the message, or a sale without a drug code.
pub fn drug_sale(
    fixmedins_code: String,
    input: &tx::DrugSaleInput,
    at: Option<NaiveDateTime>,
) -> Result<Claim, ParseError> {
    let mut lines = Vec::new();
    let mut psn_no = String::new();
    for (i, s) in input.sales().enumerate() {
        let p = |f: &str| {
            if input.selinfo.is_some() && i == 0 {
                format!("input.selinfo.{f}")
            } else {
                format!("input.selinfoDetail[{i}].{f}")
            }
        };
        let code = SmolStr::new(req(&s.med_list_codg, || p("med_list_codg"))?);
        if psn_no.is_empty() {
            psn_no = s.psn_no.as_str().to_owned();
        }
        let qty = Qty::from_units(s.sel_retn_cnt.map_or(Qty::SCALE, |q| q.0));
        let qty = check_qty(qty, || p("sel_retn_cnt"))?;
        let price = Price::from_micro(s.finl_trns_pric.map_or(0, |q| q.0));
        let time = opt_time(&s.sel_retn_time, || p("sel_retn_time"))?.or(at).unwrap_or_default();
        let id =
            if s.doc_id().is_empty() { SmolStr::new(itoa::Buffer::new().format(i)) } else { SmolStr::new(s.doc_id()) };
        lines.push(Line {
            id,
            his_code: SmolStr::new(s.fixmedins_hilist_id.as_str()),
            name: s.fixmedins_hilist_name.opt().map(SmolStr::new),
            category: None,
            class: ItemClass::of_code(&code),
            qty,
            price,
            amount: price.times(qty),
            time,
            dept_code: SmolStr::default(),
            dept_name: SmolStr::default(),
            doctor_code: SmolStr::default(),
            doctor_name: SmolStr::default(),
            days_supply: None,
            discharge_drug: false,
            reverses: None,
            trace_codes: s.trace_codes(),
            code,
        });
    }
    if lines.is_empty() {
        return Err(ParseError::Missing("input.selinfo".into()));
    }
    let mdtrt_id = input.sales().find_map(|s| s.setl_id.opt().or(s.mdtrt_sn.opt())).map(sale_visit).unwrap_or_default();
    Ok(Claim {
        infno: "3505",
        stage: Stage::Upload,
        fixmedins_code,
        patient: Patient { psn_no, ..Patient::default() },
        encounter: Encounter { mdtrt_id, visit: Some(Visit::Pharmacy), ..Encounter::default() },
        lines,
        sold: trace_sales(input, false),
        ..Claim::default()
    })
}

/// The visit id a 3505 sale is kept under in history (it has no mdtrt_id of its own).
pub fn sale_visit(id: &str) -> String {
    format!("3505:{id}")
}

fn flag(t: &Text) -> bool {
    t.as_str() == "1"
}

/// A tier written as a number or a name: `1`/`一级`, `2`/`二级`, `3`/`三级`.
pub fn tier_from_name(s: &str) -> Option<u8> {
    match s.trim() {
        "1" | "一级" => Some(1),
        "2" | "二级" => Some(2),
        "3" | "三级" => Some(3),
        _ => None,
    }
}

/// The configured institution level: a tier name, else a `medins_lv` code.
pub fn parse_tier(s: &str) -> Option<u8> {
    tier_from_name(s).or_else(|| tier_from_medins_lv(s))
}

/// `medins_lv` → tier. The code table is unconfirmed (domain.md): 1/01 三级, 2/02 二级, 3/03 一级.
pub fn tier_from_medins_lv(lv: &str) -> Option<u8> {
    match lv.trim().trim_start_matches('0') {
        "1" => Some(3),
        "2" => Some(2),
        "3" => Some(1),
        _ => None,
    }
}

fn merge_patient(psn_no: String, facts: &dyn Facts, visit: Option<&VisitFacts>) -> Patient {
    let p = facts.person(&psn_no);
    let insutype = visit.and_then(|v| v.insutype.clone()).or_else(|| p.as_ref().and_then(|p| p.insutype.clone()));
    Patient { gender: p.as_ref().and_then(|p| p.gender), birth: p.as_ref().and_then(|p| p.birth), insutype, psn_no }
}

fn encounter_from(mdtrt_id: String, v: Option<&VisitFacts>, default_visit: Visit, facts: &dyn Facts) -> Encounter {
    let mut e = v.map(|v| v.encounter.clone()).unwrap_or_default();
    e.mdtrt_id = mdtrt_id;
    e.visit = e.med_type.as_deref().and_then(Visit::from_med_type).or(e.visit).or(Some(default_visit));
    e.tier = facts.institution_tier();
    e
}

/// 2204 / 2301: `input.feedetail[]`.
///
/// # Errors
/// A missing or malformed required field, lines of more than one visit or person, a duplicate
/// `feedetl_sn`, an absurd quantity or amount.
pub fn fee_upload(
    infno: &'static str,
    fixmedins_code: String,
    input: FeeUploadInput,
    facts: &dyn Facts,
) -> Result<Claim, ParseError> {
    if input.feedetail.is_empty() {
        return Err(ParseError::Missing("input.feedetail".into()));
    }
    let inpatient = infno == "2301";
    let mut lines = Vec::with_capacity(input.feedetail.len());
    let mut seen: FxHashSet<SmolStr> = FxHashSet::default();
    let mut mdtrt_id: Option<String> = None;
    let mut psn_no: Option<String> = None;
    let mut line_med_type: Option<String> = None;
    let mut batch: Option<String> = None;
    for (i, d) in input.feedetail.into_iter().enumerate() {
        let p = |f: &str| format!("input.feedetail[{i}].{f}");
        let id = SmolStr::new(req(&d.feedetl_sn, || p("feedetl_sn"))?);
        let m = req(&d.mdtrt_id, || p("mdtrt_id"))?;
        match &mdtrt_id {
            None => mdtrt_id = Some(m.to_owned()),
            Some(first) if first != m => {
                return Err(ParseError::field(p("mdtrt_id"), "lines of more than one visit in one upload"))
            }
            _ => {}
        }
        let ps = req(&d.psn_no, || p("psn_no"))?;
        match &psn_no {
            None => psn_no = Some(ps.to_owned()),
            Some(first) if first != ps => {
                return Err(ParseError::field(p("psn_no"), "lines of more than one person in one upload"))
            }
            _ => {}
        }
        if line_med_type.is_none() {
            line_med_type = d.med_type.opt().map(str::to_owned);
        }
        if batch.is_none() {
            batch = d.chrg_bchno.opt().map(str::to_owned);
        }
        let time = req_time(&d.fee_ocur_time, || p("fee_ocur_time"))?;
        let code = SmolStr::new(req(&d.med_list_codg, || p("med_list_codg"))?);
        let amount = d.det_item_fee_sumamt.ok_or_else(|| ParseError::Missing(p("det_item_fee_sumamt")))?;
        let amount = check_amount(Fen::new(amount.0), || p("det_item_fee_sumamt"))?;
        let qty = d.cnt.ok_or_else(|| ParseError::Missing(p("cnt")))?;
        let qty = check_qty(Qty::from_units(qty.0), || p("cnt"))?;
        let price = d.pric.ok_or_else(|| ParseError::Missing(p("pric")))?;
        let price = check_price(Price::from_micro(price.0), || p("pric"))?;
        let days_supply = match d.prd_days {
            Some(q) if q.0 < 0 => return Err(ParseError::field(p("prd_days"), "negative days")),
            Some(q) => Some(check_qty(Qty::from_units(q.0), || p("prd_days"))?),
            None => None,
        };
        if !seen.insert(id.clone()) {
            return Err(ParseError::field(p("feedetl_sn"), format!("duplicate feedetl_sn {id} in one upload")));
        }
        let class = ItemClass::of_code(&code);
        let trace_codes = trace_codes(&d);
        lines.push(Line {
            id,
            his_code: d.medins_list_codg.take().unwrap_or_default(),
            name: None,
            category: None,
            class,
            qty,
            price,
            amount,
            time,
            dept_code: d.bilg_dept_codg.take().unwrap_or_default(),
            dept_name: d.bilg_dept_name.take().unwrap_or_default(),
            doctor_code: d.bilg_dr_codg.take().unwrap_or_default(),
            doctor_name: d.bilg_dr_name.take().unwrap_or_default(),
            days_supply,
            discharge_drug: flag(&d.dscg_tkdrug_flag),
            trace_codes,
            reverses: d.init_feedetl_sn.take(),
            code,
        });
    }
    let mdtrt_id = mdtrt_id.unwrap_or_default();
    let psn_no = psn_no.unwrap_or_default();
    let vf = facts.visit(&mdtrt_id);
    let patient = merge_patient(psn_no, facts, vf.as_deref());
    let default_visit = if inpatient { Visit::Inpatient } else { Visit::Outpatient };
    let mut encounter = encounter_from(mdtrt_id, vf.as_deref(), default_visit, facts);
    if let Some(mt) = line_med_type {
        encounter.visit = Visit::from_med_type(&mt).or(encounter.visit);
        encounter.med_type = Some(mt);
    }
    Ok(Claim { infno, stage: Stage::Upload, fixmedins_code, patient, encounter, lines, batch, ..Claim::default() })
}

/// 2206/2207/2303/2304: the claim is the visit's accepted lines, as claimgate learnt them.
///
/// # Errors
/// A missing `mdtrt_id` or `psn_no`.
pub fn settlement(
    infno: &'static str,
    fixmedins_code: String,
    data: Settle,
    facts: &dyn Facts,
) -> Result<Claim, ParseError> {
    let mdtrt_id = req(&data.mdtrt_id, || "input.data.mdtrt_id".into())?.to_owned();
    let psn_no = req(&data.psn_no, || "input.data.psn_no".into())?.to_owned();
    let vf = facts.visit(&mdtrt_id);
    let mut patient = merge_patient(psn_no, facts, vf.as_deref());
    if let Some(it) = data.insutype.opt() {
        patient.insutype = Some(it.to_owned());
    }
    let inpatient = matches!(infno, "2303" | "2304");
    let default_visit = if inpatient { Visit::Inpatient } else { Visit::Outpatient };
    let mut encounter = encounter_from(mdtrt_id, vf.as_deref(), default_visit, facts);
    if let Some(mt) = data.med_type.opt() {
        encounter.med_type = Some(mt.to_owned());
        encounter.visit = Visit::from_med_type(mt).or(encounter.visit);
    }
    let mut lines = facts.visit_lines(&encounter.mdtrt_id);
    for t in &data.drug_trac_info {
        let code = t.drug_trac_codg.as_str().trim();
        if let Some(l) = lines.iter_mut().find(|l| l.id == t.feedetl_sn.as_str()) {
            if !code.is_empty() && !l.trace_codes.iter().any(|c| c == code) {
                l.trace_codes.push(SmolStr::new(code));
            }
        }
    }
    // Every box the settlement names, whether or not history holds its line: history learns them.
    let sold = data
        .drug_trac_info
        .iter()
        .filter_map(|t| {
            let code = t.drug_trac_codg.opt()?;
            Some(TraceSale { line: t.feedetl_sn.opt()?.into(), codes: vec![code.into()], ..TraceSale::default() })
        })
        .collect();
    let settle = matches!(infno, "2207" | "2304");
    let fund = if settle { facts.presettled(&encounter.mdtrt_id) } else { None };
    // Without a pre-settlement answer, the most the fund can pay: the policy-range amount, else the
    // total less what is the patient's by definition, else the visit's accepted lines.
    let fund_bound = (settle && fund.is_none()).then(|| fund_bound(&data, &lines)).flatten();
    Ok(Claim {
        infno,
        stage: if settle { Stage::Settle } else { Stage::PreSettle },
        fund,
        fund_bound,
        trig_scen: None,
        fixmedins_code,
        patient,
        encounter,
        lines,
        sold,
        ..Claim::default()
    })
}

/// The upper bound of a settlement's fund share (see [`Claim::fund_bound`]).
fn fund_bound(data: &Settle, lines: &[Line]) -> Option<Fen> {
    let f = |a: Option<crate::wire::num::Amount>| a.map(|a| a.0).filter(|v| *v >= 0);
    if let Some(v) = f(data.inscp_scp_amt) {
        return Some(Fen::new(v));
    }
    if let Some(total) = f(data.medfee_sumamt) {
        let own: i64 =
            [data.fulamt_ownpay_amt, data.overlmt_selfpay, data.preselfpay_amt].into_iter().filter_map(f).sum();
        return Some(Fen::new((total - own).max(0)));
    }
    (!lines.is_empty()).then(|| Fen::new(lines.iter().map(|l| l.amount.get()).sum::<i64>().max(0)))
}

/// `diseinfo[]` of 2203/2401/2402 → diagnoses.
pub fn diagnoses_from(dise: &[tx::DiseInfo], main_code: Option<&str>) -> Vec<Diagnosis> {
    let mut v: Vec<Diagnosis> = dise
        .iter()
        .filter(|d| !d.diag_code.is_empty() && d.vali_flag.as_str() != "0")
        .map(|d| Diagnosis {
            code: d.diag_code.as_str().to_owned(),
            name: d.diag_name.as_str().to_owned(),
            main: d.maindiag_flag.as_str() == "1" || d.diag_srt_no.as_str() == "1",
        })
        .collect();
    if let Some(mc) = main_code.filter(|c| !c.is_empty()) {
        if !v.iter().any(|d| d.code == mc) {
            v.insert(0, Diagnosis { code: mc.to_owned(), name: String::new(), main: true });
        }
    }
    v
}

/// 2401 入院办理: an admission claim with no lines (the 低标入院 and 分解住院 checks).
///
/// # Errors
/// A missing `psn_no` or an unreadable `begntime`.
pub fn admission(fixmedins_code: String, input: VisitInfoInput, facts: &dyn Facts) -> Result<Claim, ParseError> {
    let m = &input.mdtrtinfo;
    let psn_no = req(&m.psn_no, || "input.mdtrtinfo.psn_no".into())?.to_owned();
    let admitted = opt_time(&m.begntime, || "input.mdtrtinfo.begntime".into())?;
    let main = m.dscg_maindiag_code.opt().or_else(|| m.dise_codg.opt());
    let mut patient = merge_patient(psn_no, facts, None);
    if let Some(it) = m.insutype.opt() {
        patient.insutype = Some(it.to_owned());
    }
    let med_type = m.med_type.opt().map(str::to_owned);
    Ok(Claim {
        infno: "2401",
        stage: Stage::Admission,
        trig_scen: None,
        fixmedins_code,
        patient,
        encounter: Encounter {
            mdtrt_id: m.mdtrt_id.as_str().to_owned(),
            visit: Some(Visit::Inpatient),
            med_type,
            admitted,
            discharged: None,
            diagnoses: Some(diagnoses_from(&input.diseinfo, main)),
            dept_code: m.adm_dept_codg.opt().map(str::to_owned),
            dept_name: m.adm_dept_name.opt().map(str::to_owned),
            doctor_code: m.atddr_no.opt().map(str::to_owned),
            doctor_name: m.chfpdr_name.opt().map(str::to_owned),
            caty: None,
            tier: facts.institution_tier(),
        },
        lines: Vec::new(),
        ..Claim::default()
    })
}

/// 3101/3102: one claim per patient, for the current encounter (`curr_mdtrt_id`, else the first).
///
/// # Errors
/// No patients, a patient without encounters, a malformed order.
pub fn analysis(
    infno: &'static str,
    fixmedins_code: &str,
    data: Analysis,
    facts: &dyn Facts,
) -> Result<Vec<Claim>, ParseError> {
    if data.patient_dtos.is_empty() {
        return Err(ParseError::Missing("input.data.patient_dtos".into()));
    }
    let trig_scen = data.trig_scen.opt().and_then(|t| t.parse::<u8>().ok());
    let stage = if infno == "3101" { Stage::Order } else { Stage::Analysis };
    let mut claims = Vec::with_capacity(data.patient_dtos.len());
    for (pi, p) in data.patient_dtos.into_iter().enumerate() {
        let pp = |f: &str| format!("input.data.patient_dtos[{pi}].{f}");
        let psn_no = req(&p.patn_id, || pp("patn_id"))?.to_owned();
        let known = facts.person(&psn_no);
        let gender = Gender::from_code(p.gend.as_str()).or_else(|| known.as_ref().and_then(|k| k.gender));
        let birth = match p.brdy.opt() {
            Some(s) => Some(parse_date(s).ok_or_else(|| ParseError::field(pp("brdy"), format!("not a date: {s:?}")))?),
            None => known.as_ref().and_then(|k| k.birth),
        };
        let curr = p.curr_mdtrt_id.opt().map(str::to_owned);
        let n = p.fsi_encounter_dtos.len();
        if n == 0 {
            return Err(ParseError::Missing(pp("fsi_encounter_dtos")));
        }
        let idx = curr
            .as_deref()
            .and_then(|c| p.fsi_encounter_dtos.iter().position(|e| e.mdtrt_id.as_str() == c))
            .unwrap_or(0);
        let e = p.fsi_encounter_dtos.into_iter().nth(idx).unwrap_or_default();
        let ep = |f: &str| format!("input.data.patient_dtos[{pi}].fsi_encounter_dtos[{idx}].{f}");
        let med_type = e.med_type.opt().map(str::to_owned);
        let visit = med_type.as_deref().and_then(Visit::from_med_type).or(match e.med_mdtrt_type.as_str() {
            "1" => Some(Visit::Outpatient),
            "2" => Some(Visit::Inpatient),
            "3" => Some(Visit::Pharmacy),
            _ => None,
        });
        let mut diagnoses: Vec<Diagnosis> = e
            .fsi_diagnose_dtos
            .iter()
            .filter(|d| !d.dise_codg.is_empty())
            .map(|d| Diagnosis {
                code: d.dise_codg.as_str().to_owned(),
                name: d.dise_name.as_str().to_owned(),
                main: d.maindise_flag.as_str() == "1",
            })
            .collect();
        if let Some(mc) = e.dscg_main_dise_codg.opt() {
            if !diagnoses.iter().any(|d| d.code == mc) {
                diagnoses.insert(
                    0,
                    Diagnosis { code: mc.to_owned(), name: e.dscg_main_dise_name.as_str().to_owned(), main: true },
                );
            }
        }
        let lines = order_lines(e.fsi_order_dtos, pi, idx)?;
        let insutype = e.insutype.take().map(String::from).or_else(|| known.as_ref().and_then(|k| k.insutype.clone()));
        let encounter = Encounter {
            mdtrt_id: e.mdtrt_id.as_str().to_owned(),
            visit,
            med_type,
            admitted: opt_time(&e.adm_date, || ep("adm_date"))?,
            discharged: opt_time(&e.dscg_date, || ep("dscg_date"))?,
            diagnoses: Some(diagnoses),
            dept_code: e.adm_dept_codg.opt().map(str::to_owned),
            dept_name: e.adm_dept_name.opt().map(str::to_owned),
            doctor_code: e.dr_codg.opt().map(str::to_owned),
            doctor_name: None,
            caty: None,
            tier: tier_from_medins_lv(e.medins_lv.as_str()).or_else(|| facts.institution_tier()),
        };
        claims.push(Claim {
            infno,
            stage,
            trig_scen,
            fixmedins_code: e.medins_id.opt().unwrap_or(fixmedins_code).to_owned(),
            patient: Patient { psn_no, gender, birth, insutype },
            encounter,
            lines,
            ..Claim::default()
        });
    }
    Ok(claims)
}

/// A 3101/3102 encounter's orders as lines (`pi`, `idx`: the patient's and the encounter's index,
/// for the field paths of errors).
fn order_lines(orders: Vec<crate::wire::tx::OrderDto>, pi: usize, idx: usize) -> Result<Vec<Line>, ParseError> {
    let mut lines = Vec::with_capacity(orders.len());
    let mut seen: FxHashSet<SmolStr> = FxHashSet::default();
    for (oi, o) in orders.into_iter().enumerate() {
        let op = |f: &str| format!("input.data.patient_dtos[{pi}].fsi_encounter_dtos[{idx}].fsi_order_dtos[{oi}].{f}");
        let id = SmolStr::new(req(&o.rx_id, || op("rx_id"))?);
        if !seen.insert(id.clone()) {
            return Err(ParseError::field(op("rx_id"), format!("duplicate rx_id {id}")));
        }
        let code = SmolStr::new(req(&o.hilist_code, || op("hilist_code"))?);
        let time = req_time(&o.drord_begn_date, || op("drord_begn_date"))?;
        let stop = opt_time(&o.drord_stop_date, || op("drord_stop_date"))?;
        let qty = check_qty(Qty::from_units(o.cnt.ok_or_else(|| ParseError::Missing(op("cnt")))?.0), || op("cnt"))?;
        let price =
            check_price(Price::from_micro(o.pric.ok_or_else(|| ParseError::Missing(op("pric")))?.0), || op("pric"))?;
        let amount = match o.sumamt {
            Some(a) => check_amount(Fen::new(a.0), || op("sumamt"))?,
            None => price.times(qty),
        };
        let class = ItemClass::of_code(&code);
        let days_supply = match stop {
            Some(s) if class.is_drug() && s.date() > time.date() => {
                Some(Qty::whole((s.date() - time.date()).num_days()))
            }
            _ => None,
        };
        lines.push(Line {
            id,
            his_code: o.hosplist_code.take().unwrap_or_default(),
            name: o.hilist_name.take(),
            category: o.chrg_type.take(),
            class,
            qty,
            price,
            amount,
            time,
            dept_code: o.drord_dept_codg.take().unwrap_or_default(),
            dept_name: o.drord_dept_name.take().unwrap_or_default(),
            doctor_code: o.drord_dr_codg.take().unwrap_or_default(),
            doctor_name: o.drord_dr_name.take().unwrap_or_default(),
            days_supply,
            discharge_drug: o.drord_bhvr.as_str() == "1",
            reverses: None,
            trace_codes: Vec::new(),
            code,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(json: &str) -> Result<Claim, ParseError> {
        let input: FeeUploadInput = crate::wire::parse_body(json, "input")?;
        fee_upload("2204", "H1".into(), input, &NoFacts)
    }

    const LINE: &str = r#"{"feedetl_sn":"F1","mdtrt_id":"M1","psn_no":"P1","fee_ocur_time":"2025-03-05 08:30:00",
        "med_list_codg":"XA11DAW036A001010104127","medins_list_codg":"YP1","det_item_fee_sumamt":0.60,
        "cnt":6,"pric":"0.10","prd_days":"3"}"#;

    #[test]
    fn a_fee_line_becomes_a_claim_line_with_exact_money() {
        let c = upload(&format!(r#"{{"feedetail":[{LINE}]}}"#)).unwrap();
        let l = &c.lines[0];
        assert_eq!(l.amount, Fen::new(60));
        assert_eq!(l.qty, Qty::whole(6));
        assert_eq!(l.price, Price::from_micro(100_000));
        assert_eq!(l.class, ItemClass::WesternDrug);
        assert_eq!(l.days_supply, Some(Qty::whole(3)));
        assert_eq!(c.encounter.visit, Some(Visit::Outpatient));
        assert_eq!(c.patient.gender, None);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let e = upload(r#"{"feedetail":[{"feedetl_sn":"F1"}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "input.feedetail[0].mdtrt_id: required field is missing or empty");
        let bad = LINE.replace("2025-03-05 08:30:00", "yesterday");
        let e = upload(&format!(r#"{{"feedetail":[{bad}]}}"#)).unwrap_err();
        assert!(e.to_string().starts_with("input.feedetail[0].fee_ocur_time"), "{e}");
        let huge = LINE.replace("\"cnt\":6", "\"cnt\":99999999");
        let e = upload(&format!(r#"{{"feedetail":[{huge}]}}"#)).unwrap_err();
        assert!(e.to_string().contains("cnt: quantity out of range"), "{e}");
        let e = upload(&format!(r#"{{"feedetail":[{LINE},{LINE}]}}"#)).unwrap_err();
        assert!(e.to_string().contains("duplicate feedetl_sn"), "{e}");
        let e = upload(r#"{"feedetail":[]}"#).unwrap_err();
        assert!(matches!(e, ParseError::Missing(_)));
    }

    #[test]
    fn medins_lv_tiers() {
        assert_eq!(tier_from_medins_lv("02"), Some(2));
        assert_eq!(tier_from_medins_lv("1"), Some(3));
        assert_eq!(tier_from_medins_lv("9"), None);
    }
}
