//! What history means, as SQL run by any [`Store`]: the schema, the events learnt from the traffic
//! and how each is applied, and the snapshot the rules read.
//!
//! Invariants:
//! - Only what the gateway accepted is here (the caller applies events after a successful answer).
//! - Idempotent: a message is applied once per `msgid` (`h_msg`); a line once per
//!   `(mdtrt_id, feedetl_sn)`; a settlement once per `setl_id`. Totals are summed on read, never
//!   kept as counters, so concurrent writers cannot lose or double an update.
//! - Reversals undo exactly what they reverse: 2205/2302 mark lines revoked (their trace codes
//!   return), 2208/2305 cancel the settlement and put its lines back to unsettled.

use crate::claim::time::{parse_date, parse_datetime};
use crate::claim::{
    Diagnosis, Encounter, Fen, FundAsk, History, ItemClass, Line, PastLine, PastSettlement, PastVisit, Price, Qty,
    SmolStr, TraceUse, Visit, VisitFacts,
};
use crate::store::{Conn, Store, StoreError, P, V};
use chrono::{NaiveDate, NaiveDateTime};
use std::sync::Arc;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS h_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS h_msg (msgid TEXT PRIMARY KEY, infno TEXT NOT NULL, day TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS h_person (psn TEXT PRIMARY KEY, gend TEXT, brdy TEXT, insutype TEXT, ver BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS h_visit (mdtrt_id TEXT PRIMARY KEY, psn TEXT, fixmedins TEXT, visit TEXT, med_type TEXT, \
     insutype TEXT, dept TEXT, caty TEXT, admitted TEXT, discharged TEXT, diags TEXT, main_dise TEXT, main_dise_name TEXT, \
     pre_hifp BIGINT, pre_fund BIGINT, pre_medfee BIGINT)",
    "CREATE INDEX IF NOT EXISTS h_visit_psn ON h_visit (psn)",
    "CREATE TABLE IF NOT EXISTS h_line (mdtrt_id TEXT NOT NULL, feedetl_sn TEXT NOT NULL, psn TEXT NOT NULL, bchno TEXT, \
     code TEXT NOT NULL, his_code TEXT, name TEXT, category TEXT, qty BIGINT NOT NULL, price BIGINT NOT NULL, \
     amount BIGINT NOT NULL, at TEXT NOT NULL, day TEXT NOT NULL, dept TEXT, dept_name TEXT, dr TEXT, dr_name TEXT, \
     days_supply BIGINT, dscg BIGINT NOT NULL DEFAULT 0, reverses TEXT, state BIGINT NOT NULL, setl_id TEXT, \
     PRIMARY KEY (mdtrt_id, feedetl_sn))",
    "CREATE INDEX IF NOT EXISTS h_line_psn ON h_line (psn, day)",
    // Lines get a setl_id only when settled: a partial index costs an upload nothing.
    "DROP INDEX IF EXISTS h_line_setl",
    "CREATE INDEX IF NOT EXISTS h_line_setl_p ON h_line (setl_id) WHERE setl_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS h_trace (code TEXT NOT NULL, mdtrt_id TEXT NOT NULL, feedetl_sn TEXT NOT NULL, \
     psn TEXT NOT NULL, fixmedins TEXT, day TEXT NOT NULL, returned BIGINT NOT NULL DEFAULT 0, \
     PRIMARY KEY (code, mdtrt_id, feedetl_sn))",
    "CREATE INDEX IF NOT EXISTS h_trace_line ON h_trace (mdtrt_id, feedetl_sn)",
    "CREATE TABLE IF NOT EXISTS h_setl (setl_id TEXT PRIMARY KEY, mdtrt_id TEXT NOT NULL, psn TEXT NOT NULL, msgid TEXT, \
     insutype TEXT, visit TEXT, day TEXT NOT NULL, hifp BIGINT NOT NULL, fund BIGINT NOT NULL, medfee BIGINT NOT NULL, \
     cancelled BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS h_setl_psn ON h_setl (psn, day)",
];

/// # Errors
/// A statement failed.
pub fn create_schema(c: &mut dyn Conn) -> Result<(), StoreError> {
    for s in SCHEMA {
        c.exec(s, &[])?;
    }
    Ok(())
}

/// A visit as a message describes it (2201 / 2203 / 2401, or an accepted upload); absent fields
/// leave what is known.
#[derive(Debug, Clone, Default)]
pub struct VisitEvent {
    pub mdtrt_id: String,
    pub psn: Option<String>,
    pub fixmedins: Option<String>,
    pub visit: Option<Visit>,
    pub med_type: Option<String>,
    pub insutype: Option<String>,
    pub dept: Option<String>,
    pub caty: Option<String>,
    pub admitted: Option<NaiveDateTime>,
    pub diagnoses: Option<Vec<Diagnosis>>,
}

#[derive(Debug, Clone)]
pub struct SettleEvent {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn: String,
    pub msgid: String,
    pub insutype: String,
    pub visit: Option<Visit>,
    pub day: NaiveDate,
    pub fund: FundAsk,
}

/// One fact learnt from an accepted exchange. `psn` is always the keyed hash, never the number.
#[derive(Debug, Clone)]
pub enum Event {
    Person {
        psn: String,
        gender: Option<crate::claim::Gender>,
        birth: Option<NaiveDate>,
        insutype: Option<String>,
    },
    Visit(VisitEvent),
    Discharge {
        mdtrt_id: String,
        at: Option<NaiveDateTime>,
        diagnoses: Vec<Diagnosis>,
    },
    Lines {
        mdtrt_id: String,
        psn: String,
        fixmedins: String,
        batch: Option<String>,
        lines: Vec<Line>,
    },
    /// 2205 by batch, 2302 by line; neither (or "0000") = every unsettled line of the visit.
    Revoke {
        mdtrt_id: String,
        feedetl_sn: Option<String>,
        batch: Option<String>,
    },
    PreSettled {
        mdtrt_id: String,
        fund: FundAsk,
    },
    Settled(SettleEvent),
    SettleCancelled {
        setl_id: String,
    },
    /// Boxes that came back (3506 退货, or a 3505 line with a negative count): sellable again.
    TraceReturn {
        codes: Vec<SmolStr>,
    },
    /// Trace codes named at settlement (2207 `drug_trac_info[]`) or sold by 3505: `(feedetl_sn, code)`.
    Traces {
        mdtrt_id: String,
        psn: String,
        fixmedins: String,
        day: NaiveDate,
        items: Vec<(String, SmolStr)>,
    },
}

impl Event {
    /// The patient the event is about, asking the store when the message does not say.
    fn psn(&self, c: &mut dyn Conn) -> Result<Option<String>, StoreError> {
        let by = |c: &mut dyn Conn, sql: &str, id: &str| -> Result<Option<String>, StoreError> {
            Ok(c.query(sql, &[id.into()])?.first().and_then(|r| r[0].text().map(str::to_owned)))
        };
        Ok(match self {
            Event::Person { psn, .. } | Event::Lines { psn, .. } | Event::Traces { psn, .. } => Some(psn.clone()),
            Event::Settled(s) => Some(s.psn.clone()),
            Event::Visit(VisitEvent { psn: Some(p), .. }) => Some(p.clone()),
            Event::Visit(VisitEvent { mdtrt_id, .. })
            | Event::Discharge { mdtrt_id, .. }
            | Event::Revoke { mdtrt_id, .. }
            | Event::PreSettled { mdtrt_id, .. } => by(c, "SELECT psn FROM h_visit WHERE mdtrt_id = $1", mdtrt_id)?,
            Event::SettleCancelled { setl_id } => by(c, "SELECT psn FROM h_setl WHERE setl_id = $1", setl_id)?,
            Event::TraceReturn { .. } => None,
        })
    }
}

fn visit_code(v: Option<Visit>) -> Option<&'static str> {
    v.map(|v| match v {
        Visit::Outpatient => "1",
        Visit::Inpatient => "2",
        Visit::Pharmacy => "3",
    })
}

fn visit_of(s: &V) -> Option<Visit> {
    match s.text()? {
        "1" => Some(Visit::Outpatient),
        "2" => Some(Visit::Inpatient),
        "3" => Some(Visit::Pharmacy),
        _ => None,
    }
}

fn dt(t: NaiveDateTime) -> String {
    crate::claim::time::datetime_text(t)
}

fn d(t: NaiveDate) -> String {
    crate::claim::time::date_text(t)
}

fn diags_text(v: &[Diagnosis]) -> String {
    serde_json::to_string(&v.iter().map(|d| (&d.code, &d.name, d.main)).collect::<Vec<_>>()).unwrap_or_default()
}

fn diags_of(s: &str) -> Vec<Diagnosis> {
    serde_json::from_str::<Vec<(String, String, bool)>>(s)
        .unwrap_or_default()
        .into_iter()
        .map(|(code, name, main)| Diagnosis { code, name, main })
        .collect()
}

/// What one applied message changed, for the caches in front of the store.
#[derive(Debug, Default)]
pub struct Applied {
    /// The patients it touched, each with its version after the write.
    pub patients: Vec<(String, i64)>,
    /// Per event, the patient it was about (`None`: nobody known).
    pub psn: Vec<Option<String>>,
    /// Per event, for [`Event::Lines`]: which of its lines were written (a line already settled,
    /// or filed under another patient, is kept as it was); for [`Event::Visit`]: whether the
    /// visit changed.
    pub written: Vec<Vec<bool>>,
}

/// Applies the events of one accepted message in one transaction. Returns what it changed, or
/// `None` when the message (`msgid`) was applied before and nothing changed.
///
/// # Errors
/// The store failed; nothing was applied.
pub fn apply(
    store: &dyn Store,
    msgid: &str,
    infno: &str,
    day: NaiveDate,
    events: &[Event],
) -> Result<Option<Applied>, StoreError> {
    let day_s = d(day);
    let mut out = Applied::default();
    let applied = store.tx(&mut |c| {
        // A group commit may run this again after a failed neighbour: start clean.
        out = Applied::default();
        if !msgid.is_empty()
            && c.exec(
                "INSERT INTO h_msg (msgid, infno, day) VALUES ($1, $2, $3) ON CONFLICT (msgid) DO NOTHING",
                &[msgid.into(), infno.into(), P::T(&day_s)],
            )? == 0
        {
            return Ok(false);
        }
        for e in events {
            let p = e.psn(c)?.filter(|p| !p.is_empty());
            if let Some(p) = &p {
                if !out.patients.iter().any(|(q, _)| q == p) {
                    out.patients.push((p.clone(), 0));
                }
            }
            out.psn.push(p);
            out.written.push(apply_one(c, e)?);
        }
        // Readers revalidate their cached snapshots by this version (and extend them by it).
        for (p, ver) in &mut out.patients {
            *ver = c
                .query(
                    "INSERT INTO h_person (psn, ver) VALUES ($1, 1) ON CONFLICT (psn) DO UPDATE SET ver = h_person.ver + 1 \
                     RETURNING ver",
                    &[(&*p).into()],
                )?
                .first()
                .and_then(|r| r[0].int())
                .ok_or_else(|| StoreError::Sql("h_person version not returned".into()))?;
        }
        Ok(true)
    })?;
    Ok(applied.then_some(out))
}

/// Applies one event; returns what it wrote (see [`Applied::written`]).
fn apply_one(c: &mut dyn Conn, e: &Event) -> Result<Vec<bool>, StoreError> {
    let mut written = Vec::new();
    match e {
        Event::Person { psn, gender, birth, insutype } => {
            let g = gender.map(|g| if g == crate::claim::Gender::Male { "1" } else { "2" });
            let b = birth.map(d);
            c.exec(
                "INSERT INTO h_person (psn, gend, brdy, insutype, ver) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (psn) DO UPDATE SET \
                 gend = COALESCE(excluded.gend, h_person.gend), brdy = COALESCE(excluded.brdy, h_person.brdy), \
                 insutype = excluded.insutype",
                &[psn.into(), g.into(), b.as_ref().into(), insutype.as_ref().into()],
            )?;
        }
        Event::Visit(v) => {
            written.push(apply_visit(c, v)?);
        }
        Event::Discharge { mdtrt_id, at, diagnoses } => {
            let main = diagnoses.iter().find(|d| d.main).or_else(|| diagnoses.first());
            let diags = (!diagnoses.is_empty()).then(|| diags_text(diagnoses));
            let at = at.map(dt);
            c.exec(
                "INSERT INTO h_visit (mdtrt_id, visit, discharged, diags, main_dise, main_dise_name) VALUES ($1, '2', $2, $3, $4, $5) \
                 ON CONFLICT (mdtrt_id) DO UPDATE SET discharged = excluded.discharged, \
                 diags = COALESCE(excluded.diags, h_visit.diags), main_dise = COALESCE(excluded.main_dise, h_visit.main_dise), \
                 main_dise_name = COALESCE(excluded.main_dise_name, h_visit.main_dise_name)",
                &[
                    mdtrt_id.into(),
                    at.as_ref().into(),
                    diags.as_ref().into(),
                    main.map(|m| m.code.as_str()).into(),
                    main.map(|m| m.name.as_str()).filter(|n| !n.is_empty()).into(),
                ],
            )?;
        }
        Event::Lines { mdtrt_id, psn, fixmedins, batch, lines } => {
            apply_lines(c, mdtrt_id, psn, fixmedins, batch.as_ref(), lines, &mut written)?;
        }
        Event::Revoke { mdtrt_id, feedetl_sn, batch } => {
            let all = |o: &Option<String>| o.as_deref().is_none_or(|s| s.is_empty() || s == "0000");
            if let (false, Some(sn)) = (all(feedetl_sn), feedetl_sn) {
                c.exec(
                    "UPDATE h_line SET state = 2 WHERE mdtrt_id = $1 AND state = 0 AND feedetl_sn = $2",
                    &[mdtrt_id.into(), sn.into()],
                )?;
            } else if let (false, Some(b)) = (all(batch), batch) {
                c.exec(
                    "UPDATE h_line SET state = 2 WHERE mdtrt_id = $1 AND state = 0 AND bchno = $2",
                    &[mdtrt_id.into(), b.into()],
                )?;
            } else {
                c.exec("UPDATE h_line SET state = 2 WHERE mdtrt_id = $1 AND state = 0", &[mdtrt_id.into()])?;
            }
            c.exec(
                "UPDATE h_trace SET returned = 1 WHERE mdtrt_id = $1 AND returned = 0 AND EXISTS (SELECT 1 FROM h_line l \
                 WHERE l.mdtrt_id = h_trace.mdtrt_id AND l.feedetl_sn = h_trace.feedetl_sn AND l.state = 2)",
                &[mdtrt_id.into()],
            )?;
        }
        Event::PreSettled { mdtrt_id, fund } => {
            c.exec(
                "INSERT INTO h_visit (mdtrt_id, pre_hifp, pre_fund, pre_medfee) VALUES ($1, $2, $3, $4) ON CONFLICT (mdtrt_id) \
                 DO UPDATE SET pre_hifp = excluded.pre_hifp, pre_fund = excluded.pre_fund, pre_medfee = excluded.pre_medfee",
                &[mdtrt_id.into(), fund.hifp_pay.get().into(), fund.fund_pay.get().into(), fund.medfee.get().into()],
            )?;
        }
        Event::Settled(s) => {
            apply_settled(c, s)?;
        }
        Event::SettleCancelled { setl_id } => {
            c.exec("UPDATE h_setl SET cancelled = 1 WHERE setl_id = $1", &[setl_id.into()])?;
            c.exec("UPDATE h_line SET state = 0, setl_id = NULL WHERE setl_id = $1 AND state = 1", &[setl_id.into()])?;
        }
        Event::TraceReturn { codes } => {
            for code in codes {
                c.exec("UPDATE h_trace SET returned = 1 WHERE code = $1", &[code.into()])?;
            }
        }
        Event::Traces { mdtrt_id, psn, fixmedins, day, items } => {
            let day = d(*day);
            for (sn, code) in items {
                insert_trace(c, code, mdtrt_id, sn, psn, fixmedins, &day)?;
            }
        }
    }
    Ok(written)
}

/// Writes a visit as a message describes it; whether anything changed.
fn apply_visit(c: &mut dyn Conn, v: &VisitEvent) -> Result<bool, StoreError> {
    let diags = v.diagnoses.as_ref().map(|x| diags_text(x));
    let main = v.diagnoses.as_ref().and_then(|x| x.iter().find(|d| d.main).or_else(|| x.first()));
    let adm = v.admitted.map(dt);
    // Every upload restates its visit; most change nothing, and then nothing is written.
    let n = c.exec(
        "INSERT INTO h_visit (mdtrt_id, psn, fixmedins, visit, med_type, insutype, dept, caty, admitted, diags, main_dise, main_dise_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (mdtrt_id) DO UPDATE SET \
         psn = COALESCE(excluded.psn, h_visit.psn), fixmedins = COALESCE(excluded.fixmedins, h_visit.fixmedins), \
         visit = COALESCE(excluded.visit, h_visit.visit), med_type = COALESCE(excluded.med_type, h_visit.med_type), \
         insutype = COALESCE(excluded.insutype, h_visit.insutype), dept = COALESCE(excluded.dept, h_visit.dept), \
         caty = COALESCE(excluded.caty, h_visit.caty), admitted = COALESCE(excluded.admitted, h_visit.admitted), \
         diags = COALESCE(excluded.diags, h_visit.diags), main_dise = COALESCE(excluded.main_dise, h_visit.main_dise), \
         main_dise_name = COALESCE(excluded.main_dise_name, h_visit.main_dise_name) \
         WHERE (h_visit.psn, h_visit.fixmedins, h_visit.visit, h_visit.med_type, h_visit.insutype, h_visit.dept, \
         h_visit.caty, h_visit.admitted, h_visit.diags, h_visit.main_dise, h_visit.main_dise_name) IS DISTINCT FROM \
         (COALESCE(excluded.psn, h_visit.psn), COALESCE(excluded.fixmedins, h_visit.fixmedins), \
         COALESCE(excluded.visit, h_visit.visit), COALESCE(excluded.med_type, h_visit.med_type), \
         COALESCE(excluded.insutype, h_visit.insutype), COALESCE(excluded.dept, h_visit.dept), \
         COALESCE(excluded.caty, h_visit.caty), COALESCE(excluded.admitted, h_visit.admitted), \
         COALESCE(excluded.diags, h_visit.diags), COALESCE(excluded.main_dise, h_visit.main_dise), \
         COALESCE(excluded.main_dise_name, h_visit.main_dise_name))",
        &[
            (&v.mdtrt_id).into(),
            v.psn.as_ref().into(),
            v.fixmedins.as_ref().into(),
            visit_code(v.visit).into(),
            v.med_type.as_ref().into(),
            v.insutype.as_ref().into(),
            v.dept.as_ref().into(),
            v.caty.as_ref().into(),
            adm.as_ref().into(),
            diags.as_ref().into(),
            main.map(|m| m.code.as_str()).into(),
            main.map(|m| m.name.as_str()).filter(|n| !n.is_empty()).into(),
        ],
    )?;
    Ok(n > 0)
}

/// Writes accepted fee lines (and their trace codes; a refund returns its boxes), pushing for each
/// line whether it changed anything.
fn apply_lines(
    c: &mut dyn Conn,
    mdtrt_id: &str,
    psn: &str,
    fixmedins: &str,
    batch: Option<&String>,
    lines: &[crate::claim::Line],
    written: &mut Vec<bool>,
) -> Result<(), StoreError> {
    written.reserve(lines.len());
    for l in lines {
        let at = dt(l.time);
        let day = d(l.date());
        let n = c.exec(
            "INSERT INTO h_line (mdtrt_id, feedetl_sn, psn, bchno, code, his_code, name, category, qty, price, amount, at, day, \
             dept, dept_name, dr, dr_name, days_supply, dscg, reverses, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 0) \
             ON CONFLICT (mdtrt_id, feedetl_sn) DO UPDATE SET bchno = excluded.bchno, code = excluded.code, \
             his_code = excluded.his_code, name = excluded.name, category = excluded.category, qty = excluded.qty, \
             price = excluded.price, amount = excluded.amount, at = excluded.at, day = excluded.day, dept = excluded.dept, \
             dept_name = excluded.dept_name, dr = excluded.dr, dr_name = excluded.dr_name, \
             days_supply = excluded.days_supply, dscg = excluded.dscg, reverses = excluded.reverses, state = 0 \
             WHERE h_line.state <> 1 AND h_line.psn = excluded.psn",
            &[
                mdtrt_id.into(),
                (&l.id).into(),
                psn.into(),
                batch.into(),
                (&l.code).into(),
                (&l.his_code).into(),
                l.name.as_ref().into(),
                l.category.as_ref().into(),
                l.qty.units().into(),
                l.price.micro().into(),
                l.amount.get().into(),
                P::T(&at),
                P::T(&day),
                (&l.dept_code).into(),
                (&l.dept_name).into(),
                (&l.doctor_code).into(),
                (&l.doctor_name).into(),
                l.days_supply.map(|q| q.units()).into(),
                i64::from(l.discharge_drug).into(),
                l.reverses.as_ref().into(),
            ],
        )?;
        written.push(n > 0);
        if l.is_refund() {
            // 退费: the boxes of the reversed line come back and may be sold again.
            if let Some(orig) = &l.reverses {
                c.exec(
                    "UPDATE h_trace SET returned = 1 WHERE mdtrt_id = $1 AND feedetl_sn = $2",
                    &[mdtrt_id.into(), orig.into()],
                )?;
            }
            for code in &l.trace_codes {
                c.exec(
                    "UPDATE h_trace SET returned = 1 WHERE code = $1 AND mdtrt_id = $2",
                    &[code.into(), mdtrt_id.into()],
                )?;
            }
        } else {
            for code in &l.trace_codes {
                insert_trace(c, code, mdtrt_id, &l.id, psn, fixmedins, &day)?;
            }
        }
    }
    Ok(())
}

/// Writes a settlement; the first time, its lines become settled and the visit's pre-settlement
/// shares are dropped.
fn apply_settled(c: &mut dyn Conn, s: &SettleEvent) -> Result<(), StoreError> {
    let day = d(s.day);
    let n = c.exec(
        "INSERT INTO h_setl (setl_id, mdtrt_id, psn, msgid, insutype, visit, day, hifp, fund, medfee) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (setl_id) DO NOTHING",
        &[
            (&s.setl_id).into(),
            (&s.mdtrt_id).into(),
            (&s.psn).into(),
            (&s.msgid).into(),
            (&s.insutype).into(),
            visit_code(s.visit).into(),
            P::T(&day),
            s.fund.hifp_pay.get().into(),
            s.fund.fund_pay.get().into(),
            s.fund.medfee.get().into(),
        ],
    )?;
    if n > 0 {
        c.exec(
            "UPDATE h_line SET state = 1, setl_id = $2 WHERE mdtrt_id = $1 AND state = 0",
            &[(&s.mdtrt_id).into(), (&s.setl_id).into()],
        )?;
        c.exec(
            "UPDATE h_visit SET pre_hifp = NULL, pre_fund = NULL, pre_medfee = NULL WHERE mdtrt_id = $1",
            &[(&s.mdtrt_id).into()],
        )?;
    }
    Ok(())
}

fn insert_trace(
    c: &mut dyn Conn,
    code: &str,
    mdtrt_id: &str,
    sn: &str,
    psn: &str,
    fixmedins: &str,
    day: &str,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO h_trace (code, mdtrt_id, feedetl_sn, psn, fixmedins, day, returned) VALUES ($1, $2, $3, $4, $5, $6, 0) \
         ON CONFLICT (code, mdtrt_id, feedetl_sn) DO UPDATE SET returned = 0",
        &[code.into(), mdtrt_id.into(), sn.into(), psn.into(), fixmedins.into(), day.into()],
    )?;
    Ok(())
}

const LINE_COLS: &str = "mdtrt_id, feedetl_sn, code, his_code, name, category, qty, price, amount, at, dept, \
                         dept_name, dr, dr_name, days_supply, dscg, reverses, state";

fn line_of(r: &[V]) -> Option<Line> {
    let code = r[2].smol();
    Some(Line {
        id: r[1].smol(),
        class: ItemClass::of_code(&code),
        code,
        his_code: r[3].smol(),
        name: r[4].text().map(SmolStr::new),
        category: r[5].text().map(SmolStr::new),
        qty: Qty::from_units(r[6].int()?),
        price: Price::from_micro(r[7].int()?),
        amount: Fen::new(r[8].int()?),
        time: parse_datetime(r[9].text()?)?,
        dept_code: r[10].smol(),
        dept_name: r[11].smol(),
        doctor_code: r[12].smol(),
        doctor_name: r[13].smol(),
        days_supply: r[14].int().map(Qty::from_units),
        discharge_drug: r[15].int() == Some(1),
        reverses: r[16].text().map(SmolStr::new),
        trace_codes: Vec::new(),
    })
}

/// What a snapshot keeps of a line (see [`PastLine`]).
const PAST_COLS: &str = "mdtrt_id, feedetl_sn, code, at, days_supply, qty, reverses, state, amount";

/// `visit`: the previous line's visit, shared when this line is of the same one.
fn past_line_of(r: &[V], visit: &mut Option<Arc<str>>) -> Option<PastLine> {
    let m = r[0].text().unwrap_or_default();
    let mdtrt_id = match visit {
        Some(v) if **v == *m => v.clone(),
        _ => visit.insert(m.into()).clone(),
    };
    Some(PastLine {
        mdtrt_id,
        id: r[1].smol(),
        code: crate::claim::history::intern_code(r[2].text().unwrap_or_default()),
        time: parse_datetime(r[3].text()?)?,
        days_supply: r[4].int().map(Qty::from_units),
        qty: Qty::from_units(r[5].int()?),
        refund: r[5].int()? < 0 || r[6].text().is_some(),
        settled: r[7].int() == Some(1),
        amount: crate::claim::Fen::new(r[8].int()?),
    })
}

/// A line as [`load`] reads it back after `apply` wrote it (unsettled): the time is kept to the
/// second. `None`: a line `load` would not read.
fn stored_line(mdtrt_id: &Arc<str>, l: &Line) -> Option<PastLine> {
    let mut p = PastLine::of(mdtrt_id.clone(), l, false);
    p.time = parse_datetime(&dt(l.time))?;
    Some(p)
}

/// Patient `psn`'s snapshot `h` (read from `since` on) after the message whose `events` were just
/// applied, derived without reading the store: exactly what [`load`] would read now. A fee upload
/// to a visit the snapshot holds — the daily upload of an inpatient stay — is derived; `None` for
/// whatever only the store can tell (a settlement, a reversal, a discharge, a new visit, an event
/// about someone else), and the caller reads the store again.
pub fn extend(h: &History, since: NaiveDate, psn: &str, events: &[Event], applied: &Applied) -> Option<History> {
    let since_s = d(since);
    let mut visits: Option<Vec<PastVisit>> = None;
    let mut fresh: Vec<(&str, &str, Option<PastLine>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if applied.psn.get(i)?.as_deref() != Some(psn) {
            return None;
        }
        match e {
            Event::Person { .. } | Event::Traces { .. } | Event::PreSettled { .. } => {}
            Event::Visit(_) if applied.written.get(i)?.first() == Some(&false) => {}
            Event::Visit(v) => {
                if v.admitted.is_some() || v.diagnoses.is_some() {
                    return None;
                }
                let vs = visits.get_or_insert_with(|| h.visits.clone());
                let pv = vs.iter_mut().find(|x| x.mdtrt_id == v.mdtrt_id)?;
                // As the upsert's COALESCE: what the message says, else what was known.
                if v.visit.is_some() {
                    pv.visit = v.visit;
                }
                if let Some(f) = &v.fixmedins {
                    pv.fixmedins_code.clone_from(f);
                }
            }
            Event::Lines { mdtrt_id, lines, .. } => {
                let written = applied.written.get(i)?;
                let m: Arc<str> = h
                    .lines
                    .iter()
                    .rev()
                    .find(|p| *p.mdtrt_id == **mdtrt_id)
                    .map_or_else(|| mdtrt_id.as_str().into(), |p| p.mdtrt_id.clone());
                for (l, _) in lines.iter().zip(written).filter(|(_, w)| **w) {
                    let kept = (d(l.date()) >= since_s).then(|| stored_line(&m, l)).flatten();
                    fresh.push((mdtrt_id, &l.id, kept));
                }
            }
            _ => return None,
        }
    }
    // Room for the new lines up front: the cache holds this vector, spare capacity and all.
    let mut lines = Vec::with_capacity(h.lines.len() + fresh.iter().filter(|(_, _, l)| l.is_some()).count());
    lines.extend(h.lines.iter().cloned());
    if !fresh.is_empty() {
        let keys: rustc_hash::FxHashMap<(&str, &str), usize> =
            fresh.iter().enumerate().map(|(i, (m, sn, _))| ((*m, *sn), i)).collect();
        lines.retain(|p| !keys.contains_key(&(&*p.mdtrt_id, &*p.id)));
        // A line written twice in one message is stored as last written.
        for (i, (m, sn, l)) in fresh.into_iter().enumerate() {
            if let (Some(l), true) = (l, keys.get(&(m, sn)) == Some(&i)) {
                lines.push(l);
            }
        }
        // `ORDER BY at, feedetl_sn`; new lines are mostly the latest, so this is nearly a merge.
        lines.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    }
    Some(History {
        since: h.since,
        visits: visits.unwrap_or_else(|| h.visits.clone()),
        lines,
        settlements: h.settlements.clone(),
        by_code: Default::default(),
    })
}

/// The patient's snapshot from `since` on, and its version.
///
/// # Errors
/// The store failed.
pub fn load(store: &dyn Store, psn: &str, since: NaiveDate) -> Result<(History, i64), StoreError> {
    let since_s = d(since);
    let mut h = History { since: Some(since), ..History::default() };
    let mut ver = 0;
    store.read(&mut |c| {
        ver = version_in(c, psn)?;
        h.visits = c
            .query(
                "SELECT mdtrt_id, visit, fixmedins, admitted, discharged, main_dise, main_dise_name FROM h_visit \
                 WHERE psn = $1 AND (discharged IS NULL OR discharged >= $2 OR admitted >= $2)",
                &[psn.into(), P::T(&since_s)],
            )?
            .iter()
            .map(|r| PastVisit {
                mdtrt_id: r[0].string(),
                visit: visit_of(&r[1]),
                fixmedins_code: r[2].string(),
                admitted: r[3].text().and_then(parse_datetime),
                discharged: r[4].text().and_then(parse_datetime),
                main_dise: r[5].text().map(str::to_owned),
                main_dise_name: r[6].text().map(str::to_owned),
            })
            .collect();
        let mut visit = None;
        h.lines = c
            .query(
                &format!("SELECT {PAST_COLS} FROM h_line WHERE psn = $1 AND day >= $2 AND state <> 2 ORDER BY at, feedetl_sn"),
                &[psn.into(), P::T(&since_s)],
            )?
            .iter()
            .filter_map(|r| past_line_of(r, &mut visit))
            .collect();
        // Held in the cache for a long time: no spare capacity.
        h.lines.shrink_to_fit();
        h.settlements = c
            .query(
                "SELECT setl_id, mdtrt_id, msgid, insutype, visit, day, hifp, fund, medfee FROM h_setl \
                 WHERE psn = $1 AND day >= $2 AND cancelled = 0 ORDER BY day, setl_id",
                &[psn.into(), P::T(&since_s)],
            )?
            .iter()
            .filter_map(|r| {
                Some(PastSettlement {
                    setl_id: r[0].string(),
                    mdtrt_id: r[1].string(),
                    msgid: r[2].string(),
                    insutype: r[3].string(),
                    visit: visit_of(&r[4]),
                    day: parse_date(r[5].text()?)?,
                    hifp_pay: Fen::new(r[6].int()?),
                    fund_pay: Fen::new(r[7].int()?),
                    medfee: Fen::new(r[8].int()?),
                })
            })
            .collect();
        Ok(())
    })?;
    Ok((h, ver))
}

fn version_in(c: &mut dyn Conn, psn: &str) -> Result<i64, StoreError> {
    Ok(c.query("SELECT ver FROM h_person WHERE psn = $1", &[psn.into()])?.first().and_then(|r| r[0].int()).unwrap_or(0))
}

/// The patient's version: changes whenever any instance applies an event about them.
///
/// # Errors
/// The store failed.
pub fn version(store: &dyn Store, psn: &str) -> Result<i64, StoreError> {
    let mut v = 0;
    store.read(&mut |c| {
        v = version_in(c, psn)?;
        Ok(())
    })?;
    Ok(v)
}

/// Earlier sales of `codes` that were not returned, except by `(mdtrt_id, feedetl_sn)` itself.
///
/// # Errors
/// The store failed.
pub fn traces(store: &dyn Store, codes: &[&str], psn: &str) -> Result<Vec<TraceUse>, StoreError> {
    let mut out = Vec::new();
    for chunk in codes.chunks(200) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT code, mdtrt_id, feedetl_sn, psn, fixmedins, day FROM h_trace WHERE returned = 0 AND code IN ({})",
            marks.join(", ")
        );
        let params: Vec<P<'_>> = chunk.iter().map(|c| P::T(c)).collect();
        store.read(&mut |c| {
            for r in c.query(&sql, &params)? {
                if let Some(day) = r[5].text().and_then(parse_date) {
                    out.push(TraceUse {
                        code: r[0].string(),
                        mdtrt_id: r[1].string(),
                        feedetl_sn: r[2].string(),
                        same_patient: r[3].text() == Some(psn),
                        fixmedins_code: r[4].string(),
                        day,
                    });
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// What the store knows of a visit (after a restart, or written by another instance), and the fund
/// share of its last pre-settlement.
///
/// # Errors
/// The store failed.
pub fn visit(store: &dyn Store, mdtrt_id: &str) -> Result<Option<(VisitFacts, Option<FundAsk>)>, StoreError> {
    let mut out = None;
    store.read(&mut |c| {
        out = c
            .query(
                "SELECT visit, med_type, insutype, dept, caty, admitted, discharged, diags, pre_hifp, pre_fund, pre_medfee \
                 FROM h_visit WHERE mdtrt_id = $1",
                &[mdtrt_id.into()],
            )?
            .first()
            .map(|r| {
                // The person is stored as a keyed hash only; the message itself names them.
                let facts = VisitFacts {
                    insutype: r[2].text().map(str::to_owned),
                    encounter: Encounter {
                        mdtrt_id: mdtrt_id.to_owned(),
                        visit: visit_of(&r[0]),
                        med_type: r[1].text().map(str::to_owned),
                        dept_code: r[3].text().map(str::to_owned),
                        caty: r[4].text().map(str::to_owned),
                        admitted: r[5].text().and_then(parse_datetime),
                        discharged: r[6].text().and_then(parse_datetime),
                        diagnoses: r[7].text().map(diags_of),
                        tier: None,
                        ..Encounter::default()
                    },
                };
                let presettled = match (r[8].int(), r[9].int(), r[10].int()) {
                    (Some(h), Some(f), m) => {
                        Some(FundAsk { hifp_pay: Fen::new(h), fund_pay: Fen::new(f), medfee: Fen::new(m.unwrap_or(0)) })
                    }
                    _ => None,
                };
                (facts, presettled)
            });
        Ok(())
    })?;
    Ok(out)
}

/// The visit's accepted, unrevoked, unsettled lines (what a settlement settles).
///
/// # Errors
/// The store failed.
pub fn visit_lines(store: &dyn Store, mdtrt_id: &str) -> Result<Vec<Line>, StoreError> {
    let mut out = Vec::new();
    store.read(&mut |c| {
        out = c
            .query(
                &format!("SELECT {LINE_COLS} FROM h_line WHERE mdtrt_id = $1 AND state = 0 ORDER BY at, feedetl_sn"),
                &[mdtrt_id.into()],
            )?
            .iter()
            .filter_map(|r| line_of(r))
            .collect();
        Ok(())
    })?;
    Ok(out)
}

/// `(gender, birth, insutype)` learnt from 1101.
pub type StoredPerson = (Option<crate::claim::Gender>, Option<NaiveDate>, Option<String>);

/// # Errors
/// The store failed.
pub fn person(store: &dyn Store, psn: &str) -> Result<Option<StoredPerson>, StoreError> {
    let mut out = None;
    store.read(&mut |c| {
        out =
            c.query("SELECT gend, brdy, insutype FROM h_person WHERE psn = $1", &[psn.into()])?.first().and_then(|r| {
                let g = r[0].text().and_then(crate::claim::Gender::from_code);
                let b = r[1].text().and_then(parse_date);
                (g.is_some() || b.is_some()).then(|| (g, b, r[2].text().map(str::to_owned)))
            });
        Ok(())
    })?;
    Ok(out)
}

/// Deletes what is older than `before` (retention). Unsettled lines are kept: a visit still open.
///
/// # Errors
/// The store failed.
pub fn prune(store: &dyn Store, before: NaiveDate) -> Result<u64, StoreError> {
    let b = d(before);
    let mut n = 0;
    store.tx(&mut |c| {
        n = 0;
        n += c.exec("DELETE FROM h_line WHERE day < $1 AND state <> 0", &[P::T(&b)])?;
        n += c.exec("DELETE FROM h_setl WHERE day < $1", &[P::T(&b)])?;
        n += c.exec("DELETE FROM h_trace WHERE day < $1", &[P::T(&b)])?;
        n += c.exec("DELETE FROM h_visit WHERE COALESCE(discharged, admitted, '9999') < $1", &[P::T(&b)])?;
        n += c.exec("DELETE FROM h_msg WHERE day < $1", &[P::T(&b)])?;
        Ok(true)
    })?;
    Ok(n)
}

/// The store's own pseudonymisation key (shared by every instance on a shared store), created on
/// first use.
///
/// # Errors
/// The store failed, or holds a key that is not 32 hex-encoded bytes.
pub fn key(store: &dyn Store) -> Result<[u8; 32], StoreError> {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
    crate::store::meta_key(store, "h_meta", &k)
}
