//! One message through the engine, without HTTP: parse the head, decide by `infno`, normalise the
//! claim(s) with the facts known, evaluate, and render the national 3101/3102 answer.
//! Used by the CLI, `/v1/check`, the proxy route and the pack test runner alike.

pub mod analysis;
pub mod exchange;
pub mod overrides;
pub mod packtest;

use crate::claim::{normalize, Claim, Facts};
use crate::history::History;
use crate::rules::{evaluate, CompiledRuleSet, Decision};
use crate::wire::tx::{self, Analysis, DataInput, FeeUploadInput, Settle, VisitInfoInput};
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

fn input<'a>(head: &RequestHead<'a>) -> Result<&'a str, ParseError> {
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

/// Reads a message's body as far as its `infno` calls for.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn prepare(head: &RequestHead<'_>, facts: &dyn Facts) -> Result<Prepared, ParseError> {
    let mut p = prepare_body(head, facts)?;
    if let Prepared::Claims { claims, .. } = &mut p {
        // The message's own day (inf_time), for claims whose lines do not say (settlement); an
        // admission's day is its admission date.
        let day = crate::claim::time::parse_date(head.inf_time.as_str());
        for c in claims.iter_mut() {
            c.msgid = head.msgid.as_str().to_owned();
            c.day = c.encounter.admitted.filter(|_| c.is_admission()).map(|t| t.date()).or(day);
        }
    }
    Ok(p)
}

fn prepare_body(head: &RequestHead<'_>, facts: &dyn Facts) -> Result<Prepared, ParseError> {
    let code = head.infno.as_str();
    let infno = Infno::parse(code);
    let fix = head.fixmedins_code.as_str().to_owned();
    let sinfno = static_infno(code.get(..4).unwrap_or(code));
    let one = |c: Claim| Prepared::Claims { infno, claims: vec![c], task_id: None };
    Ok(match infno {
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
            let parsed = head.fee.borrow_mut().take();
            let body: FeeUploadInput = match parsed {
                Some(b) => *b,
                None => parse_body(input(head)?, "input")?,
            };
            one(normalize::fee_upload(sinfno, fix, body, facts)?)
        }
        Infno::OutpatientPreSettle | Infno::OutpatientSettle | Infno::InpatientPreSettle | Infno::InpatientSettle => {
            let body: DataInput<Settle> = parse_body(input(head)?, "input")?;
            one(normalize::settlement(sinfno, fix, body.data, facts)?)
        }
        Infno::Admission => {
            let body: VisitInfoInput = parse_body(input(head)?, "input")?;
            one(normalize::admission(fix, body, facts)?)
        }
        Infno::PreAnalysis | Infno::MidAnalysis => {
            let body: DataInput<Analysis> = parse_body(input(head)?, "input")?;
            let task_id = body.data.task_id.opt().map(str::to_owned);
            let claims = normalize::analysis(sinfno, &fix, body.data, facts)?;
            Prepared::Claims { infno, claims, task_id }
        }
        Infno::DrugSale => {
            let body: tx::DrugSaleInput = parse_body(input(head)?, "input")?;
            one(normalize::drug_sale(fix, &body, crate::claim::time::parse_datetime(head.inf_time.as_str()))?)
        }
        Infno::AnalysisFeedback => {
            let body: DataInput<tx::Feedback> = parse_body(input(head)?, "input")?;
            Prepared::Feedback(body.data)
        }
        other => Prepared::Relay(other),
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
