//! One message through the engine, without HTTP: parse the head, decide by `infno`, normalise the
//! claim(s) with the facts known, evaluate, and render the national 3101/3102 answer.
//! Used by the CLI, `/v1/check`, the proxy route and the pack test runner alike.

pub mod analysis;
pub mod exchange;
pub mod overrides;
pub mod packtest;
pub mod turns;

use crate::claim::{normalize, Claim, Facts};
use crate::history::History;
use crate::rules::{evaluate, CompiledRuleSet, Decision};
use crate::wire::tx::{self, DataInput};
use crate::wire::{parse_body, Infno, ParseError, RequestHead, ResponseEnvelope};

/// What a message is, once its head and body are read.
#[derive(Debug)]
pub enum Prepared {
    /// A claim transaction (2204/2301/2206/2207/2303/2304/2401) or a 3101/3102 analysis.
    Claims { infno: Infno, claims: Vec<Claim>, task_id: Option<String> },
    /// 3103: the doctor's answers.
    Feedback(tx::Feedback),
    /// Anything else: relayed without parsing the body.
    Relay(Infno),
}

/// [`validate`] on a request's bytes, routed as `infno` (the body may name it only in the path):
/// what the proxy runs, on the blocking pool, before a claim may leave without a judgement.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn validate_request(body: &[u8], infno: &str) -> Result<(), ParseError> {
    let head = crate::wire::parse_request_for(body, Some(infno))?;
    exchange::check_envelope(&head, body)?;
    validate(&head)
}

/// Validates a claim message in full without history: the envelope fields a claim needs (a
/// `msgid` sent as a string, an `input` object) and its body read and normalised exactly as the
/// check reads it. What the proxy runs before a message leaves unjudged (a pre-settlement goes to
/// the gateway before its check; a check over budget is forwarded by the fail policy): nothing the
/// check would refuse reaches the gateway. Ciphertext (`enc_type`) passes: it cannot be read.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn validate(head: &RequestHead<'_>) -> Result<(), ParseError> {
    exchange::check_msgid(head)?;
    match prepare(head, &crate::claim::normalize::NoFacts) {
        Ok(_) | Err(ParseError::Encrypted(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A reversal (2205/2302 fee lines revoked, 2208/2305 a settlement cancelled) read in full before
/// it is relayed: an `input` object whose fields have their national types, naming what it undoes
/// — the visit (`mdtrt_id`), the person (`psn_no`) and the batch (`chrg_bchno`, 2205), the line
/// (`feedetl_sn`, 2302, `0000` for all) or the settlement (`setl_id`, 2208/2305), all 必填 in the
/// national interface. Ciphertext passes (it cannot be read). Not a reversal: `Ok`.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn validate_reversal(head: &RequestHead<'_>) -> Result<(), ParseError> {
    let infno = Infno::parse(head.infno.as_str());
    if !infno.is_reversal() {
        return Ok(());
    }
    exchange::check_msgid(head)?;
    let raw = match normalize::input(head) {
        Ok(raw) => raw,
        Err(ParseError::Encrypted(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let required =
        |fields: &[(&str, &crate::wire::Text)]| match fields.iter().find(|(_, v)| v.as_str().trim().is_empty()) {
            Some((name, _)) => Err(ParseError::Missing(format!("input.data.{name}"))),
            None => Ok(()),
        };
    match infno {
        Infno::OutpatientFeeRevoke | Infno::InpatientFeeRevoke => {
            let d = parse_body::<DataInput<tx::FeeRevoke>>(raw, "input")?.data;
            let which = if infno == Infno::OutpatientFeeRevoke {
                ("chrg_bchno", &d.chrg_bchno)
            } else {
                ("feedetl_sn", &d.feedetl_sn)
            };
            required(&[("mdtrt_id", &d.mdtrt_id), ("psn_no", &d.psn_no), which])
        }
        _ => {
            let d = parse_body::<DataInput<tx::SettleCancel>>(raw, "input")?.data;
            required(&[("setl_id", &d.setl_id), ("mdtrt_id", &d.mdtrt_id), ("psn_no", &d.psn_no)])
        }
    }
}

/// Reads a message's body as far as its `infno` calls for: its claims through
/// [`normalize::message`] (the one translator, whose claims history learns from too), a 3103's
/// answers, or nothing.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn prepare(head: &RequestHead<'_>, facts: &dyn Facts) -> Result<Prepared, ParseError> {
    let infno = Infno::parse(head.infno.as_str());
    if infno == Infno::AnalysisFeedback {
        let body: DataInput<tx::Feedback> = parse_body(normalize::input(head)?, "input")?;
        return Ok(Prepared::Feedback(body.data));
    }
    Ok(match normalize::message(head, facts)? {
        Some(normalize::Claims { claims, task_id }) => Prepared::Claims { infno, claims, task_id },
        None => Prepared::Relay(infno),
    })
}

/// [`prepare`], then what the rules need beyond the message: the fund shares of a pre-settlement
/// answer (`answer`, checked on its way back), and each claim's history when the rule set looks
/// back `lookback` days. A history that cannot be read leaves `history: None` (those rules report
/// their lines unchecked); it is counted, not fatal. May block on the store.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn prepare_with(
    head: &RequestHead<'_>,
    history: &History,
    lookback: Option<u32>,
    answer: Option<&ResponseEnvelope>,
) -> Result<Prepared, ParseError> {
    let mut p = prepare(head, history)?;
    if let Prepared::Claims { claims, .. } = &mut p {
        let fund = answer
            .filter(|a| a.is_success())
            .and_then(ResponseEnvelope::output_as::<tx::SettleOutput>)
            .map(|o| crate::history::learn::fund_of(&o.setlinfo));
        for c in claims.iter_mut() {
            if c.stage == crate::claim::Stage::PreSettle && fund.is_some() {
                c.fund = fund;
            }
            // A fee upload carries codes only: the hospital's catalogue names its items.
            if let Some(cat) = history.catalogue() {
                for l in c.lines.iter_mut().filter(|l| l.name.as_ref().is_none_or(|n| n.is_empty())) {
                    l.name = cat.name(&l.his_code, &l.code);
                }
            }
            if let Some(days) = lookback {
                if let Err(e) = history.attach(c, days) {
                    tracing::warn!(error = %e, "history unavailable; cross-claim rules unchecked");
                }
            }
        }
    }
    Ok(p)
}

/// Evaluates every claim and merges the decisions (several patients in one 3101).
pub fn decide(rs: &CompiledRuleSet, claims: &[Claim]) -> Decision {
    merge(rs, decide_each(rs, claims))
}

/// Merges per-claim decisions into one (a pass of `rs` when there are none).
pub fn merge(rs: &CompiledRuleSet, decisions: Vec<Decision>) -> Decision {
    let mut it = decisions.into_iter();
    let Some(mut d) = it.next() else { return evaluate(rs, &empty_claim()) };
    for other in it {
        d.merge(other);
    }
    d
}

fn empty_claim() -> Claim {
    Claim { infno: "other", ..Claim::default() }
}

/// Each claim's own decision, for the 3101 answer (hits must name their patient and visit).
pub fn decide_each(rs: &CompiledRuleSet, claims: &[Claim]) -> Vec<Decision> {
    claims.iter().map(|c| evaluate(rs, c)).collect()
}
