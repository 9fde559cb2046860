//! What the rules see of a patient's past: visits, accepted fee lines and settlements within the
//! rule set's lookback, and earlier uses of the drug trace codes on this claim. Built by the
//! `history` module from its store; read by the cross-claim rule kinds.

use super::model::{Line, Visit};
use super::money::Fen;
use super::money::Qty;
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

/// A fee line the gateway accepted and that was not revoked: what the cross-claim rules read of
/// it, and nothing else — a snapshot holds thousands, a process millions (88 bytes each).
/// Clones share their strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastLine {
    pub mdtrt_id: Arc<str>,
    /// `feedetl_sn` (inline up to 23 bytes: no allocation for the usual serial numbers).
    pub id: smol_str::SmolStr,
    /// National item code (interned: a few thousand codes serve millions of lines).
    pub code: Arc<str>,
    pub time: NaiveDateTime,
    pub days_supply: Option<Qty>,
    /// Units billed (`cnt`): the per-day and per-visit limits add them across messages.
    pub qty: Qty,
    /// `det_item_fee_sumamt`: what a stay cost so far is the sum over its lines (低标准入院 at the
    /// 事中 check of a discharge).
    pub amount: crate::claim::Fen,
    /// 退费: a negative quantity, or a line reversing another.
    pub refund: bool,
    pub settled: bool,
}

impl PastLine {
    pub fn of(mdtrt_id: Arc<str>, l: &Line, settled: bool) -> PastLine {
        PastLine {
            mdtrt_id,
            id: smol_str::SmolStr::new(&l.id),
            code: intern_code(&l.code),
            time: l.time,
            days_supply: l.days_supply,
            qty: l.qty,
            amount: l.amount,
            refund: l.is_refund(),
            settled,
        }
    }
    pub fn date(&self) -> NaiveDate {
        self.time.date()
    }
}

/// Codes interned so far; past this many, new codes are kept per line instead (whatever a HIS
/// sends, the table stays bounded).
const INTERNED_CODES: usize = 200_000;

/// The shared copy of an item code.
pub fn intern_code(code: &str) -> Arc<str> {
    static CODES: std::sync::LazyLock<std::sync::Mutex<rustc_hash::FxHashSet<Arc<str>>>> =
        std::sync::LazyLock::new(Default::default);
    let mut set = CODES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = set.get(code) {
        return c.clone();
    }
    let c: Arc<str> = code.into();
    if set.len() < INTERNED_CODES {
        set.insert(c.clone());
    }
    c
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
#[derive(Debug, Default)]
pub struct History {
    /// The first day the snapshot covers (older records were not loaded).
    pub since: Option<NaiveDate>,
    pub visits: Vec<PastVisit>,
    /// Cheap to clone, so that a snapshot extended by a new upload copies pointers, not strings.
    pub lines: Vec<PastLine>,
    pub settlements: Vec<PastSettlement>,
    /// `lines` by item code, built on first use and kept with the (cached, shared) snapshot, so the
    /// claims of one patient do not each index the same history again.
    pub by_code: std::sync::OnceLock<CodeRuns>,
}

/// Positions of [`History::lines`] sorted by item code (then by position), and the run of each code.
#[derive(Debug, Default)]
pub struct CodeRuns {
    order: Vec<u32>,
    /// `(code, start, end)` into `order`, sorted by code.
    runs: Vec<(Arc<str>, u32, u32)>,
}

impl Clone for History {
    /// A copy is a new snapshot (an extended one adds lines): its index is built again.
    fn clone(&self) -> History {
        History {
            since: self.since,
            visits: self.visits.clone(),
            lines: self.lines.clone(),
            settlements: self.settlements.clone(),
            by_code: std::sync::OnceLock::new(),
        }
    }
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
    fn runs(&self) -> &CodeRuns {
        self.by_code.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.lines.len() as u32).collect();
            order.sort_by(|&a, &b| self.lines[a as usize].code.cmp(&self.lines[b as usize].code).then(a.cmp(&b)));
            let mut runs: Vec<(Arc<str>, u32, u32)> = Vec::new();
            for (k, &i) in order.iter().enumerate() {
                let code = &self.lines[i as usize].code;
                match runs.last_mut() {
                    Some(r) if Arc::ptr_eq(&r.0, code) || r.0 == *code => r.2 = k as u32 + 1,
                    _ => runs.push((code.clone(), k as u32, k as u32 + 1)),
                }
            }
            CodeRuns { order, runs }
        })
    }

    /// The earlier lines of item `code`, in the history's order (see [`History::by_code`]).
    pub fn same_code<'a: 'k, 'k>(&'a self, code: &'k str) -> impl Iterator<Item = &'a PastLine> + 'k {
        let r = self.runs();
        let span = r.runs.binary_search_by(|x| (*x.0).cmp(code)).ok().map_or(0..0, |k| {
            let (_, s, e) = &r.runs[k];
            *s as usize..*e as usize
        });
        r.order[span].iter().map(|&i| &self.lines[i as usize])
    }

    /// The distinct item codes of the history.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.runs().runs.iter().map(|r| &*r.0)
    }

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
