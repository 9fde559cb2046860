//! What the rules see of a patient's past: visits, accepted fee lines and settlements within the
//! rule set's lookback, and earlier uses of the drug trace codes on this claim. Built by the
//! `history` module from its store; read by the cross-claim rule kinds.

use super::model::{Line, Visit};
use super::money::Fen;
use chrono::{NaiveDate, NaiveDateTime};
use std::sync::Arc;

/// An earlier (or the current) visit of the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastVisit {
    pub mdtrt_id: String,
    pub visit: Option<Visit>,
    pub fixmedins_code: String,
    pub admitted: Option<NaiveDateTime>,
    pub discharged: Option<NaiveDateTime>,
    /// Principal diagnosis (ICD-10) and its name, as last told.
    pub main_dise: Option<String>,
    pub main_dise_name: Option<String>,
}

/// A fee line the gateway accepted and that was not revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct PastLine {
    pub mdtrt_id: String,
    pub line: Line,
    pub settled: bool,
}

/// A settlement the gateway made and that was not cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastSettlement {
    pub setl_id: String,
    pub mdtrt_id: String,
    /// The settling message's `msgid`: a retry of the same message is not "earlier".
    pub msgid: String,
    pub insutype: String,
    pub visit: Option<Visit>,
    /// The service day the settlement counts on.
    pub day: NaiveDate,
    /// 统筹基金支出.
    pub hifp_pay: Fen,
    /// 基金支付总额.
    pub fund_pay: Fen,
    pub medfee: Fen,
}

/// An earlier sale of a drug trace code that is on this claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceUse {
    pub code: String,
    pub mdtrt_id: String,
    pub feedetl_sn: String,
    pub day: NaiveDate,
    pub fixmedins_code: String,
    /// The box was sold to this same patient (a repeat scan) rather than someone else (回流药).
    pub same_patient: bool,
}

/// The patient's history as one snapshot. Nothing in it is from a blocked or gateway-rejected
/// message, and reversals are already applied.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The first day the snapshot covers (older records were not loaded).
    pub since: Option<NaiveDate>,
    pub visits: Vec<PastVisit>,
    /// Shared, so that a snapshot extended by a new upload copies pointers, not lines.
    pub lines: Vec<Arc<PastLine>>,
    pub settlements: Vec<PastSettlement>,
}

/// What the gateway computed the fund would pay for this claim: the pre-settlement answer (2206 /
/// 2303), seen on its way back, or remembered from it at settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundAsk {
    pub hifp_pay: Fen,
    pub fund_pay: Fen,
    pub medfee: Fen,
}

impl History {
    /// Settlements on `day` for `insutype`, leaving out the one made by `msgid` (a retry). An
    /// inpatient stay's settlement does not count toward an outpatient day, nor the reverse.
    pub fn settled_on<'a>(
        &'a self,
        day: NaiveDate,
        insutype: &'a str,
        msgid: &'a str,
        visit: Option<Visit>,
    ) -> impl Iterator<Item = &'a PastSettlement> + 'a {
        let inpatient = visit == Some(Visit::Inpatient);
        self.settlements.iter().filter(move |s| {
            s.day == day
                && s.insutype == insutype
                && (msgid.is_empty() || s.msgid != msgid)
                && (s.visit == Some(Visit::Inpatient)) == inpatient
        })
    }
}
