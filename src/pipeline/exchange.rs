//! One claim exchange on the intercepted route, from the received bytes to the journal record.
//!
//! [`Exchange::begin`] parses a message once; the route, the check and history's learning share it.
//! [`check`] reads the claims once (the head hands over a fee upload's parsed lines),
//! attaches history, evaluates, lets a shadow candidate see the claims and applies the doctors'
//! 3103 overrides; it blocks on the store, so the caller runs it on history's threads
//! (`History::run`) under the time budget. [`Judge::verdict`] turns what the check came to into what happens to the message —
//! the fail policy applied there — and [`Pending::settle`] turns the gateway's answer into the
//! journal record and what history learns. `gate` only speaks HTTP around these; `claimgate
//! check` and `claimgate replay` run the same [`check`].

use super::overrides::Overrides;
use super::{decide, prepare_with, Prepared};
use crate::claim::Claim;
use crate::history::History;
use crate::journal::{Message, Record};
use crate::rules::{Action, CompiledRuleSet, Decision, Outcome, Severity};
use crate::store::Pseudonymizer;
use crate::telemetry::metrics;
use crate::wire::{parse_request_for, Infno, ParseError, RequestHead, ResponseEnvelope};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;

self_cell::self_cell!(
    struct Parsed {
        owner: Bytes,
        #[covariant]
        dependent: RequestHead,
    }
);

/// One request as it was received: its bytes (forwarded byte for byte) and the head read from them
/// once, owned together so the route, the check on history's threads and history's learning all
/// read the same parse. A fee upload's lines are parsed with the head; the check takes them.
pub struct Exchange(Parsed);

impl Exchange {
    /// Reads the envelope of `body` (and a fee upload's lines) once. `routed`: the transaction the
    /// route's path names (`…/callService/{infno}`), for a body that does not.
    ///
    /// # Errors
    /// [`ParseError`] when the envelope cannot be read.
    pub fn begin(body: Bytes, routed: Option<&str>) -> Result<Exchange, ParseError> {
        Parsed::try_new(body, |b| parse_request_for(b, routed)).map(Exchange)
    }

    /// The head read from the bytes (with a fee upload's lines until the check takes them).
    pub fn head(&self) -> &RequestHead<'_> {
        self.0.borrow_dependent()
    }

    /// The bytes as received.
    pub fn body(&self) -> &Bytes {
        self.0.borrow_owner()
    }
}

/// What a failed check does with the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailAction {
    /// Forward it unchecked (journaled `unchecked`).
    Open,
    /// Refuse it in the envelope; the cashier retries.
    Closed,
}

/// `fail_policy`: per severity of the active pack's strongest blocking rule.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailPolicy {
    pub critical: Option<FailAction>,
    pub warning: Option<FailAction>,
    pub info: Option<FailAction>,
}

impl FailPolicy {
    /// Whether a failed check forwards (`true`) or refuses, given the severity of the strongest
    /// blocking rule in the active pack (`None`: the pack cannot block, or none is active).
    pub fn opens(&self, strongest_block: Option<Severity>, fail_open: bool) -> bool {
        let set = match strongest_block {
            Some(Severity::Critical) => self.critical,
            Some(Severity::Warning) => self.warning,
            Some(Severity::Info) => self.info,
            None => None,
        };
        match set {
            Some(a) => a == FailAction::Open,
            None => fail_open,
        }
    }
}

/// What the check of a claim message came to.
pub enum Checked {
    /// Judged: the claims and their decision, overrides applied (`overridden` hits removed).
    Done { claims: Vec<Claim>, decision: Decision, overridden: usize },
    /// The input is SM4 ciphertext: nothing to check (the error names the encryption).
    Encrypted(ParseError),
    /// The HIS's message cannot be read.
    Bad(ParseError),
    /// A kind panicked (`"internal"`) or the time budget ran out (`"budget"`).
    Failed(&'static str),
}

/// What a claim message must be beyond what the check reads: UTF-8 throughout (the head's parse
/// skips the fields it does not know without looking at their bytes; JSON is UTF-8, and a gateway
/// must not receive what it cannot decode), and a `msgid` (发送方报文ID) present and a string —
/// retries are recognised by it, and a number loses digits.
///
/// # Errors
/// [`ParseError`] naming `msgid`, or the body's encoding.
pub fn check_envelope(head: &RequestHead<'_>, body: &[u8]) -> Result<(), ParseError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ParseError::Json("body is not valid UTF-8".into()));
    }
    check_msgid(head)
}

/// `msgid` present and sent as a string (see [`check_envelope`]).
///
/// # Errors
/// [`ParseError`] naming `msgid`.
pub fn check_msgid(head: &RequestHead<'_>) -> Result<(), ParseError> {
    if head.msgid.is_numeric() {
        return Err(ParseError::field("msgid", "must be a string (C30), not a number"));
    }
    if head.msgid.is_empty() {
        return Err(ParseError::Missing("msgid".into()));
    }
    Ok(())
}

/// Checks the claim message `head` against `rs`: history within the set's lookback, the fund share
/// of a pre-settlement's `answer`, `observe` (the shadow candidate) and the doctors' overrides.
/// Blocks on the store: run it off the async executor (`History::run`).
pub fn check(
    head: &RequestHead<'_>,
    rs: &CompiledRuleSet,
    history: &History,
    overrides: &Overrides,
    answer: Option<&ResponseEnvelope>,
    observe: impl FnOnce(&[Claim], &Decision),
) -> Checked {
    let claims = match prepare_with(head, history, rs.lookback_days(), answer) {
        Ok(Prepared::Claims { claims, .. }) => claims,
        Ok(_) => vec![],
        Err(e @ ParseError::Encrypted(_)) => return Checked::Encrypted(e),
        Err(e) => return Checked::Bad(e),
    };
    let mut decision = decide(rs, &claims);
    observe(&claims, &decision);
    let overridden = claims.first().map(|c| overrides.apply(c, &mut decision)).unwrap_or_default().len();
    Checked::Done { claims, decision, overridden }
}

/// What happens to a checked message.
// One verdict per request, matched once where it is made: boxing `Pending` would cost an
// allocation per forwarded claim for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Verdict {
    /// A blocking rule fired: the HIS is answered with the block, nothing goes to the gateway.
    /// `learnt`: what history learns from a pre-settlement the gateway answered before the check.
    Block { decision: Decision, record: Record, learnt: Learn },
    /// Passed or reminded, and no gateway is configured: claimgate answers (check-only mode).
    Answer { decision: Decision, record: Record },
    /// Passed or reminded (or unchecked): the same bytes go to the gateway; `Pending` settles
    /// once it answers.
    Forward(Pending),
    /// The HIS's message cannot be read.
    Bad(ParseError),
    /// The check failed and the fail policy refuses the claim (`budget`: it ran out of time); the
    /// record says why (`fallback`), with no gateway outcome.
    Refused { budget: bool, record: Record },
}

/// Where the verdict is given: the message, the rule set's revision and strongest block, the
/// fail policy, and whether a gateway is there to forward to.
pub struct Judge<'a> {
    pub head: &'a RequestHead<'a>,
    pub revision: &'a str,
    pub strongest_block: Option<Severity>,
    pub policy: &'a FailPolicy,
    pub fail_open: bool,
    pub forwards: bool,
    pub pseudo: &'a Pseudonymizer,
    /// The transaction's metric label.
    pub label: &'static str,
    /// A fee upload's first line, read before the check took the parsed lines: what an unchecked
    /// record of the upload can still say.
    pub first: FirstLine,
}

/// A fee upload's first line as an unchecked record needs it: the visit, the department and
/// doctor, the date. Taken before the check (a few inline strings and one date; no per-line work).
#[derive(Debug, Clone, Default)]
pub struct FirstLine {
    pub mdtrt_id: String,
    pub dept_code: String,
    pub dept_name: String,
    pub doctor_code: String,
    pub doctor_name: String,
    pub date: Option<chrono::NaiveDate>,
}

impl FirstLine {
    /// The first line of `head`'s parsed fee upload (empty for any other message).
    pub fn of(head: &RequestHead<'_>) -> FirstLine {
        head.with_fee(|fee| {
            let Some(l) = fee.and_then(|f| f.feedetail.first()) else { return FirstLine::default() };
            FirstLine {
                mdtrt_id: l.mdtrt_id.as_str().to_owned(),
                dept_code: l.bilg_dept_codg.as_str().to_owned(),
                dept_name: l.bilg_dept_name.as_str().to_owned(),
                doctor_code: l.bilg_dr_codg.as_str().to_owned(),
                doctor_name: l.bilg_dr_name.as_str().to_owned(),
                date: crate::claim::time::parse_datetime(l.fee_ocur_time.as_str()).map(|t| t.date()),
            }
        })
    }
}

impl Judge<'_> {
    /// The journal record of the message, before the gateway's outcome is known.
    pub fn record(&self, claims: &[Claim], d: Option<&Decision>) -> Record {
        record_of(self.head, claims, d, self.revision, self.pseudo)
    }

    /// A message forwarded without a judgement, and why (`encrypted`, `budget`, `internal`,
    /// `no_ruleset`): the journal record says so.
    pub fn unchecked(&self, why: &'static str) -> Pending {
        metrics::REQUESTS.with_label_values(&[self.label, "unchecked"]).inc();
        let mut record = self.unchecked_record();
        record.fallback = why.to_owned();
        Pending { decision: "unchecked", revision: self.revision.to_owned(), reminders: None, learnt: None, record }
    }

    /// The record of a message journaled unchecked: filed under the visit it names, with the
    /// department, doctor and date of a fee upload's first line when it was one.
    fn unchecked_record(&self) -> Record {
        let f = &self.first;
        let mut r = self.record(&[], None);
        r.mdtrt_id = if f.mdtrt_id.is_empty() { skim_visit(self.head) } else { f.mdtrt_id.clone() };
        r.dept_code.clone_from(&f.dept_code);
        r.dept_name.clone_from(&f.dept_name);
        r.doctor_code.clone_from(&f.doctor_code);
        r.doctor_name.clone_from(&f.doctor_name);
        if f.date.is_some() {
            r.service_date = f.date;
        }
        r
    }

    /// The verdict on what the check came to; counted and logged here.
    pub fn verdict(&self, checked: Checked) -> Verdict {
        let (claims, d, overridden) = match checked {
            Checked::Done { claims, decision, overridden } => (claims, decision, overridden),
            Checked::Encrypted(_) => return Verdict::Forward(self.unchecked("encrypted")),
            // Counted where it is answered (`gate::proxy`), with the messages refused before a check.
            Checked::Bad(e) => return Verdict::Bad(e),
            Checked::Failed(why) => return self.failed(why),
        };
        for _ in 0..overridden {
            metrics::OVERRIDES.with_label_values(&["applied"]).inc();
        }
        metrics::CHECK_SECONDS.with_label_values(&[self.label]).observe(d.elapsed_us as f64 / 1e6);
        count_hits(&d);
        let hv = d.header_value();
        metrics::REQUESTS.with_label_values(&[self.label, hv]).inc();
        if !d.hits.is_empty() {
            tracing::info!(infno = self.label, decision = hv, hits = d.hits.len(), rules = ?d.hits.iter().map(|h| h.rule_id.to_string()).collect::<Vec<_>>(), "claim checked");
        }
        let record = self.record(&claims, Some(&d));
        // History learns an accepted exchange from the claims the check built (no second parse).
        let infno = Infno::parse(self.head.infno.as_str());
        let learnt = infno.is_checked().then(|| for_learning(claims, infno));
        if d.decision == Outcome::Block {
            return Verdict::Block { decision: d, record, learnt };
        }
        if !self.forwards {
            return Verdict::Answer { decision: d, record };
        }
        let reminders = d.summary(Some(Action::Remind));
        let reminders = (!reminders.is_empty()).then(|| format!("claimgate 医保智能审核提醒：{reminders}"));
        Verdict::Forward(Pending { decision: hv, revision: self.revision.to_owned(), reminders, learnt, record })
    }

    /// A failed check forwards or refuses by the fail policy: the strongest block the set could
    /// have given decides.
    fn failed(&self, why: &'static str) -> Verdict {
        let budget = why == "budget";
        if self.policy.opens(self.strongest_block, self.fail_open) {
            tracing::error!(infno = self.label, why, "check failed; forwarded unchecked (fail-open)");
            metrics::FALLBACKS.with_label_values(&[if budget { "budget" } else { "internal_open" }]).inc();
            return Verdict::Forward(self.unchecked(why));
        }
        tracing::error!(infno = self.label, why, "check failed; refused (fail-closed)");
        metrics::FALLBACKS.with_label_values(&[if budget { "budget_closed" } else { "internal_closed" }]).inc();
        metrics::REQUESTS.with_label_values(&[self.label, "error"]).inc();
        let mut record = self.record(&[], None);
        record.fallback = if budget { "budget_closed" } else { "internal_closed" }.to_owned();
        Verdict::Refused { budget, record }
    }
}

/// The visit a message names (`input.data.mdtrt_id`, `input.mdtrtinfo.mdtrt_id`, a fee upload's
/// first line), read from its raw `input` when it is still there: an unchecked message is then
/// journaled under its visit, and the journal attributes it to the visit's department and doctor.
/// Empty when the input was parsed already (a fee upload), is ciphertext, or names no visit.
fn skim_visit(head: &RequestHead<'_>) -> String {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Visit {
        mdtrt_id: Option<String>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Input {
        data: Visit,
        mdtrtinfo: Visit,
        feedetail: Vec<Visit>,
    }
    let Some(raw) = head.input else { return String::new() };
    let Ok(i) = serde_json::from_str::<Input>(raw.get()) else { return String::new() };
    i.data
        .mdtrt_id
        .or(i.mdtrtinfo.mdtrt_id)
        .or_else(|| i.feedetail.into_iter().find_map(|l| l.mdtrt_id))
        .unwrap_or_default()
}

/// The staff names a registration (2201) gives: its department (`dept_code`, `dept_name`) and
/// attending doctor (`atddr_no`, `dr_name`), as `(kind, code, name)` for the journal's names.
pub fn staff_names(head: &RequestHead<'_>) -> Vec<(String, String, String)> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Data {
        dept_code: Option<String>,
        dept_name: Option<String>,
        atddr_no: Option<String>,
        dr_name: Option<String>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Input {
        data: Data,
    }
    let Some(raw) = head.input else { return Vec::new() };
    let Ok(Input { data: d }) = serde_json::from_str::<Input>(raw.get()) else { return Vec::new() };
    [("dept", d.dept_code, d.dept_name), ("doctor", d.atddr_no, d.dr_name)]
        .into_iter()
        .filter_map(|(kind, code, name)| {
            let (code, name) = (code?.trim().to_owned(), name?.trim().to_owned());
            (!code.is_empty() && !name.is_empty()).then(|| (kind.to_owned(), code, name))
        })
        .collect()
}

/// The part of the check's claims history learns from, kept while the gateway answers: an upload's
/// lines, never the snapshot the check read (a settlement's lines are the visit's, read from
/// history: nothing to learn).
fn for_learning(mut claims: Vec<Claim>, infno: Infno) -> Vec<Claim> {
    let upload = matches!(infno, Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload);
    for c in &mut claims {
        c.history = None;
        c.traces = None;
        if !upload {
            c.lines = Vec::new();
        }
    }
    claims
}

/// The journal record of a checked message, before the gateway's outcome is known.
pub fn record_of(
    head: &RequestHead<'_>,
    claims: &[Claim],
    d: Option<&Decision>,
    revision: &str,
    pseudo: &Pseudonymizer,
) -> Record {
    let m = Message {
        infno: head.infno.as_str(),
        msgid: head.msgid.as_str(),
        fixmedins_code: head.fixmedins_code.as_str(),
        fixmedins_name: head.fixmedins_name.as_str(),
        inf_time: head.inf_time.as_str(),
    };
    Record::of_claims(m, claims, d, revision, pseudo)
}

/// Counts each hit by rule and action.
pub fn count_hits(d: &Decision) {
    for h in &d.hits {
        let a = if h.action == Action::Block { "block" } else { "remind" };
        metrics::RULE_HITS.with_label_values(&[&h.rule_id, a]).inc();
    }
}

/// A forwarded message waiting for the gateway's answer.
pub struct Pending {
    /// `x-claimgate-decision` value.
    pub decision: &'static str,
    /// `x-claimgate-ruleset` value.
    pub revision: String,
    /// Reminder texts for `warn_msg` (when configured).
    pub reminders: Option<String>,
    /// The checked message's head and claims, learnt from when the gateway accepts them.
    learnt: Learn,
    record: Record,
}

/// What history learns from an accepted exchange: a checked message's head and the claims the
/// check built (history derives its events from them and the gateway's answer: the body is read
/// once), or `None`: the request itself, read by `history::learn` (a transaction nobody checks, or
/// one forwarded unchecked).
pub type Learn = Option<Vec<Claim>>;

impl Pending {
    /// The gateway answered (`None`: it could not be reached; the claim did not go through): the
    /// journal record with its outcome, and what history learns when the answer is a success.
    pub fn settle(self, answer: Option<&ResponseEnvelope>) -> (Record, Option<Learn>) {
        let mut record = self.record;
        record.gateway_infcode = answer.and_then(infcode_of);
        let learns = answer.is_some_and(ResponseEnvelope::is_success).then_some(self.learnt);
        (record, learns)
    }
}

/// The gateway's `infcode` as a number.
pub fn infcode_of(p: &ResponseEnvelope) -> Option<i64> {
    p.infcode.as_str().parse::<i64>().ok()
}

/// Learns an accepted exchange into history on history's threads; durable when this returns.
/// A store failure is logged and counted (the gateway has already committed; the answer goes on).
pub async fn learn(history: &Arc<History>, ex: &Arc<Exchange>, env: &ResponseEnvelope, learnt: Learn, label: &str) {
    let (h, env, ex) = (history.clone(), env.clone(), ex.clone());
    let learnt = history
        .run(move || {
            let (head, again);
            if learnt.is_none() && ex.head().input.is_none() {
                // A fee upload that went unchecked: its lines were parsed with the head, and a check
                // that ran out of time may have taken them — or still be about to, on another of
                // history's threads. History reads them again rather than race it (the unchecked
                // path only).
                again = parse_request_for(ex.body(), Some(ex.head().infno.as_str()))
                    .map_err(|e| format!("request: {e}"))?;
                head = &again;
            } else {
                head = ex.head();
            }
            h.learn_durably_parsed(head, ex.body(), Some(&env), learnt).map_err(|e| e.to_string())
        })
        .await;
    match learnt {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(infno = label, error = %e, "accepted exchange not learnt into history"),
        Err(_) => tracing::error!(infno = label, "learning panicked; history misses this exchange"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim(body: &str) -> String {
        let head = crate::wire::parse_request(body.as_bytes()).expect("head");
        skim_visit(&head)
    }

    #[test]
    fn an_unchecked_message_is_journaled_under_the_visit_it_names() {
        let env = |infno: &str, input: &str| {
            format!(
                r#"{{"infno":"{infno}","msgid":"M1","inf_time":"2025-11-03 10:05:00","fixmedins_code":"H1","input":{input}}}"#
            )
        };
        assert_eq!(skim(&env("2304", r#"{"data":{"mdtrt_id":"410700Z1","psn_no":"P"}}"#)), "410700Z1");
        assert_eq!(skim(&env("2402", r#"{"dscginfo":{},"mdtrtinfo":{"mdtrt_id":"410700Z2"}}"#)), "410700Z2");
        // Ciphertext and bodies naming no visit: nothing to attribute.
        assert_eq!(skim(&env("2304", r#""U0VDUkVU""#)), "");
        assert_eq!(skim(&env("2201", r#"{"data":{"psn_no":"P"}}"#)), "");
        let reg = env(
            "2201",
            r#"{"data":{"psn_no":"P","dept_code":"100301","dept_name":"心血管内科","atddr_no":"D1","dr_name":" 李建国 "}}"#,
        );
        let head = crate::wire::parse_request(reg.as_bytes()).expect("head");
        assert_eq!(
            staff_names(&head),
            [("dept", "100301", "心血管内科"), ("doctor", "D1", "李建国")].map(|(k, c, n)| (
                k.into(),
                c.into(),
                n.into()
            ))
        );
    }
}
