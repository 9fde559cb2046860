//! The normalised claim model the rules see: patient, encounter, lines.
//!
//! Architecture Invariant: money is integer fen (`Fen`), quantities and prices fixed-point; dates are
//! the service dates in the message, never the wall clock. Nothing here knows JSON field names
//! beyond the wire types it converts from.

pub mod catalogue;
pub mod history;
pub mod model;
pub mod money;
pub mod normalize;
pub mod time;

pub use history::{FundAsk, History, PastLine, PastSettlement, PastVisit, TraceUse};
pub use model::{Diagnosis, Encounter, Gender, ItemClass, Line, Patient, SmolStr, Visit};
pub use money::{Fen, Price, Qty};
pub use normalize::{Facts, NoFacts, PersonFacts, VisitFacts};

use chrono::NaiveDate;
use std::sync::Arc;

/// Where in the flow a claim is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stage {
    /// 3101 事前分析 (doctor ordering).
    Order,
    /// 3102 事中分析.
    Analysis,
    /// 2204 / 2301 fee upload.
    #[default]
    Upload,
    /// 2206 / 2303.
    PreSettle,
    /// 2207 / 2304.
    Settle,
    /// 2401 (or 3101 trig_scen 3 住院登记).
    Admission,
}

#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub infno: &'static str,
    pub stage: Stage,
    /// 3101/3102 `trig_scen`.
    pub trig_scen: Option<u8>,
    pub fixmedins_code: String,
    pub patient: Patient,
    pub encounter: Encounter,
    pub lines: Vec<Line>,
    /// 收费批次号 (`chrg_bchno`) of a 2204 upload: 2205 revokes by it.
    pub batch: Option<String>,
    /// The message's `msgid` (a retry carries the same one).
    pub msgid: String,
    /// The day the message is about: its `inf_time` date (settlement, admission), used where a
    /// claim has no service lines of its own. Never the wall clock.
    pub day: Option<NaiveDate>,
    /// At pre-settlement and settlement: what the gateway computed the fund would pay.
    pub fund: Option<history::FundAsk>,
    /// At settlement without a pre-settlement answer: the most the fund can pay for this claim — its
    /// policy-range amount (`inscp_scp_amt`, or the total less what is the patient's by definition,
    /// or the visit's accepted lines). Never a guess at the fund's share itself.
    pub fund_bound: Option<Fen>,
    /// The patient's history; `None` when no history was reachable (cross-claim rules then report
    /// their lines as unchecked).
    pub history: Option<Arc<history::History>>,
    /// Earlier, unreturned sales of the trace codes on this claim's lines; `None` when not looked up.
    pub traces: Option<Vec<history::TraceUse>>,
    /// The drug trace codes the message records as sold or returned: what history's trace index
    /// learns once the gateway accepts it (the rules read the codes on the lines).
    pub sold: Vec<TraceSale>,
}

/// Trace codes a message records as sold (or returned) by one line: a settlement's
/// `drug_trac_info[]` (by `feedetl_sn`, whether or not history holds that line) or one 3505/3506
/// sale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSale {
    /// The line: a settlement's `feedetl_sn`, or the sale's document number.
    pub line: SmolStr,
    /// A pharmacy sale's own visit ([`normalize::sale_visit`]) and buyer: a 3505A batch sells to
    /// several settlements. `None` for a settlement's codes, which are the settlement's.
    pub visit: Option<String>,
    pub psn_no: Option<String>,
    pub codes: Vec<SmolStr>,
    /// Returned boxes (3506, or a sale with a negative count): sellable again.
    pub returned: bool,
}

impl Claim {
    /// The day the claim is about: its own `day`, else its latest service date, else (a discharge
    /// check with no orders) its discharge date.
    pub fn service_day(&self) -> Option<NaiveDate> {
        self.day
            .or_else(|| self.lines.iter().map(Line::date).max())
            .or_else(|| self.encounter.discharged.map(|t| t.date()))
    }
    pub fn is_admission(&self) -> bool {
        self.stage == Stage::Admission || self.trig_scen == Some(3)
    }
}
