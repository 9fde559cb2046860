//! One message through the engine, without HTTP: parse the head, decide by `infno`, normalise the
//! claim(s) with the facts known, evaluate, and render the national 3101/3102 answer.
//! Used by the CLI, `/v1/check`, the proxy route and the pack test runner alike.

pub mod analysis;
pub mod packtest;

use crate::claim::{normalize, Claim, Facts};
use crate::rules::{evaluate, CompiledRuleSet, Decision};
use crate::wire::tx::{self, Analysis, DataInput, FeeUploadInput, Settle, VisitInfoInput};
use crate::wire::{parse_body, Infno, ParseError, RequestHead};

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
    if s.starts_with('"') {
        // 吉林-style SM4 ciphertext: nothing to check.
        return Err(ParseError::Encrypted(head.enc_type.opt().unwrap_or("ciphertext").to_owned()));
    }
    Ok(s)
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
        _ => "other",
    }
}

/// Reads a message's body as far as its `infno` calls for.
///
/// # Errors
/// [`ParseError`] naming the field.
pub fn prepare(head: &RequestHead<'_>, facts: &dyn Facts) -> Result<Prepared, ParseError> {
    let code = head.infno.as_str();
    let infno = Infno::parse(code);
    let fix = head.fixmedins_code.as_str().to_owned();
    let sinfno = static_infno(code.get(..4).unwrap_or(code));
    let one = |c: Claim| Prepared::Claims { infno, claims: vec![c], task_id: None };
    Ok(match infno {
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
            let body: FeeUploadInput = parse_body(input(head)?, "input")?;
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
        Infno::AnalysisFeedback => {
            let body: DataInput<tx::Feedback> = parse_body(input(head)?, "input")?;
            Prepared::Feedback(body.data)
        }
        other => Prepared::Relay(other),
    })
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
    Claim {
        infno: "other",
        stage: crate::claim::Stage::Upload,
        trig_scen: None,
        fixmedins_code: String::new(),
        patient: Default::default(),
        encounter: Default::default(),
        lines: vec![],
    }
}

/// Each claim's own decision, for the 3101 answer (hits must name their patient and visit).
pub fn decide_each(rs: &CompiledRuleSet, claims: &[Claim]) -> Vec<Decision> {
    claims.iter().map(|c| evaluate(rs, c)).collect()
}
