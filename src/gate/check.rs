//! What claimgate answers without the gateway: `/v1/check` (the decision JSON), 3101/3102 in the
//! national format and 3103 recorded (`pipeline::analysis::local`), and the check every claim
//! runs, on history's threads (`History::run`) under the time budget (`pipeline::exchange::check`); the answers to
//! invalid claim messages and to other methods than POST on the claim routes.

use super::rescue::{self, ApiFailure, Failure};
use super::{read_body, with_headers, Active, State};
use crate::pipeline::analysis::{self, Local};
use crate::pipeline::exchange::{self, count_hits, Checked, Exchange};
use crate::telemetry::metrics;
use crate::wire::{Infno, ParseError, RequestHead, ResponseEnvelope};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `POST /v1/check`: the decision JSON for an envelope; never forwards, never learns.
pub async fn check(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let bad = |msg: String| ApiFailure::BadRequest(msg).respond();
    if let Err(refused) = st.guard.admit(&req) {
        return *refused;
    }
    let body = match read_body(&req, payload, st.cfg.body_limit, st.cfg.client_body_timeout_ms).await {
        Ok(b) => b,
        Err(e @ ParseError::TooLarge(_)) => return ApiFailure::TooLarge(e.to_string()).respond(),
        Err(e @ ParseError::BodyTimeout(_)) => return ApiFailure::BodyTimeout(e.to_string()).respond(),
        Err(e) => return bad(e.to_string()),
    };
    let Some(active) = st.rules.load_full() else { return ApiFailure::NotReady.respond() };
    let ex = match Exchange::begin(body, None) {
        Ok(ex) => Arc::new(ex),
        Err(e) => return bad(e.to_string()),
    };
    let head = ex.head();
    let infno = Infno::parse(head.infno.as_str());
    if !infno.is_checked() && !infno.is_local_analysis() {
        return bad(format!("infno {}: not a checked claim transaction", head.infno.as_str()));
    }
    match run_check(&st, &ex, &active, None, None).await {
        Checked::Done { decision, claims, .. } => {
            let hv = decision.header_value();
            // The decision JSON, extended with each ordering/billing doctor's 驾照式记分 this year.
            let mut body = serde_json::to_value(&decision).unwrap_or_default();
            body["doctor_points"] = doctor_points(&st, &claims).await;
            with_headers(HttpResponse::Ok().json(body), hv, &active.rs.revision())
        }
        Checked::Bad(e) => bad(e.to_string()),
        Checked::Encrypted(_) => bad("input is encrypted (SM4); nothing to check".into()),
        Checked::Failed(why) => ApiFailure::Internal(format!("check failed: {why}")).respond(),
    }
}

/// The 驾照式记分 of the doctors on the claims' lines (`drord_dr_codg` / `bilg_dr_codg`), each
/// accrued in the calendar year of the claim's service date, against 9 (暂停) and 12 (终止):
/// `[{"doctor", "year", "accrued", "suspension_at", "termination_at"}]` (`accrued` null when the
/// journal cannot be read).
async fn doctor_points(st: &web::Data<State>, claims: &[crate::claim::Claim]) -> serde_json::Value {
    use chrono::Datelike;
    let mut wanted: Vec<(String, i32)> = Vec::new();
    for c in claims {
        let Some(year) = c.service_day().map(|d| d.year()) else { continue };
        for l in &c.lines {
            let d = (l.doctor_code.to_string(), year);
            if !l.doctor_code.is_empty() && !wanted.contains(&d) {
                wanted.push(d);
            }
        }
    }
    if wanted.is_empty() {
        return serde_json::json!([]);
    }
    let st = st.clone();
    let rows = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .map(|(doctor, year)| {
                let accrued = super::cds::doctor_points(&st, &doctor, year);
                serde_json::json!({"doctor": doctor, "year": year, "accrued": accrued,
                    "suspension_at": crate::cds::SUSPENSION_POINTS, "termination_at": crate::cds::TERMINATION_POINTS})
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    serde_json::Value::Array(rows)
}

/// Runs [`exchange::check`] on history's threads (history may do I/O) under `budget` (the
/// settlement path's; `None` waits: `/v1/check` is not in the settlement path). `answer`: the
/// gateway's answer to a pre-settlement.
pub(super) async fn run_check(
    st: &web::Data<State>,
    ex: &Arc<Exchange>,
    active: &Arc<Active>,
    answer: Option<ResponseEnvelope>,
    budget: Option<Duration>,
) -> Checked {
    let (st2, ex, active) = (st.clone(), ex.clone(), active.clone());
    let t_check = Instant::now();
    let job = st.history.run(move || {
        // A candidate pack in shadow sees the same claims (queued; never waited for).
        let shadow = |c: &[crate::claim::Claim], d: &crate::rules::Decision| st2.reload.shadow().observe(c, d);
        exchange::check(ex.head(), &active.rs, &st2.history, &st2.overrides, answer.as_ref(), shadow)
    });
    match tokio::time::timeout(budget.unwrap_or(Duration::from_secs(3600)), job).await {
        Ok(Ok(Checked::Done { claims, mut decision, overridden })) => {
            decision.elapsed_us = t_check.elapsed().as_micros() as u64;
            Checked::Done { claims, decision, overridden }
        }
        Ok(Ok(other)) => other,
        // A panic inside a kind: caught on history's thread, the process keeps serving.
        Ok(Err(_)) => Checked::Failed("internal"),
        Err(_) => Checked::Failed("budget"),
    }
}

/// 3101/3102 answered in the national format; 3103 recorded.
pub(super) async fn local_analysis(
    ex: &Arc<Exchange>,
    st: &web::Data<State>,
    active: &Arc<Active>,
    label: &'static str,
) -> HttpResponse {
    let head = ex.head();
    let area = head.mdtrtarea_admvs.as_str();
    let rev = active.rs.revision();
    let (st2, ex2, active2) = (st.clone(), ex.clone(), active.clone());
    // History (分解住院 at 入院登记, 重复开药 …) may do I/O: off the executor.
    let job =
        tokio::task::spawn_blocking(move || analysis::local(ex2.head(), &active2.rs, &st2.history, &st2.overrides));
    let Ok(local) = job.await else {
        metrics::FALLBACKS.with_label_values(&["internal_closed"]).inc();
        return Failure::Internal.respond(area);
    };
    match local {
        Ok(Local::Analysed(a, claims)) => {
            count_hits(&a.merged);
            let mut rec = exchange::record_of(head, &claims, Some(&a.merged), &rev, &st.journal.pseudo);
            // Each jr_id handed out is journaled with its rule, so the doctor's 3103 answer links back.
            rec.jr = a.jr;
            st.journal.record_acknowledged(rec).await;
            let hv = a.merged.header_value();
            metrics::REQUESTS.with_label_values(&[label, hv]).inc();
            with_headers(rescue::answer(area, None, serde_json::json!({"result": a.results})), hv, &rev)
        }
        Ok(Local::Feedback(recorded)) => {
            for f in recorded.feedback {
                st.journal.feedback(f).await;
            }
            // The doctor is told the answer was recorded: it is durable first.
            st.journal.flush().await;
            match recorded.outcome {
                Ok(()) => {}
                Err(analysis::Refused::MissingReason(i)) => return Failure::MissingReason(i).respond(area),
                Err(analysis::Refused::Answers(why)) => return Failure::FeedbackRefused(&why).respond(area),
            }
            metrics::REQUESTS.with_label_values(&[label, "pass"]).inc();
            with_headers(rescue::answer(area, None, serde_json::json!({})), "pass", &rev)
        }
        Ok(Local::Unsupported) => Failure::Unsupported.respond(area),
        Err(e) => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            Failure::BadInput(&e).respond(area)
        }
    }
}

/// Any method but POST on the claim routes (a browser's GET, a HEAD probe): 405 in the envelope.
pub async fn not_post() -> HttpResponse {
    Failure::NotPost.respond("")
}

/// A relayed transaction that may leave: a reversal (2205/2302/2208/2305) read in full first —
/// it changes what history holds ([`crate::pipeline::validate_reversal`]); others as they are.
pub(super) fn relayable(head: &RequestHead<'_>, body: &Bytes, infno: Infno) -> Result<(), ParseError> {
    if !infno.is_reversal() {
        return Ok(());
    }
    exchange::check_envelope(head, body)?;
    crate::pipeline::validate_reversal(head)
}

/// The person's turn for a settlement (2207/2304; see [`crate::pipeline::turns`]), or the 409
/// envelope when another settlement of the person held it past `upstream_timeout_ms`. `Ok(None)`:
/// not a settlement.
pub(super) async fn settlement_turn(
    st: &State,
    head: &RequestHead<'_>,
    infno: Infno,
    label: &'static str,
    rev: &str,
) -> Result<Option<crate::pipeline::turns::Turn>, HttpResponse> {
    let Some(person) = head.person().filter(|_| matches!(infno, Infno::OutpatientSettle | Infno::InpatientSettle))
    else {
        return Ok(None);
    };
    match st.turns.take(person.as_str(), Duration::from_millis(st.cfg.upstream_timeout_ms)).await {
        Some(turn) => Ok(Some(turn)),
        None => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            Err(with_headers(Failure::Busy.respond(head.mdtrtarea_admvs.as_str()), "error", rev))
        }
    }
}

/// [`run_check`] on the settlement path under `budget`: a check that did not finish (over budget, a
/// kind panicked) may be forwarded by the fail policy, so it is only `Failed` once the message is
/// known to be valid ([`validated`]); an invalid one is `Bad`.
pub(super) async fn run_check_valid(
    st: &web::Data<State>,
    ex: &Arc<Exchange>,
    active: &Arc<Active>,
    answer: Option<ResponseEnvelope>,
    budget: Duration,
) -> Checked {
    match run_check(st, ex, active, answer, Some(budget)).await {
        Checked::Failed(why) => match validated(ex.body(), ex.head()).await {
            Ok(()) => Checked::Failed(why),
            Err(e) => Checked::Bad(e),
        },
        done => done,
    }
}

/// The whole message validated as the check reads it ([`crate::pipeline::validate`]), on the
/// blocking pool (a fee upload may be large).
pub(super) async fn validated(body: &Bytes, head: &RequestHead<'_>) -> Result<(), ParseError> {
    let (body, infno) = (body.clone(), head.infno.as_str().to_owned());
    tokio::task::spawn_blocking(move || crate::pipeline::validate_request(&body, &infno))
        .await
        .unwrap_or_else(|_| Err(ParseError::field("input", "could not be validated")))
}

/// An invalid claim message, answered locally (`infcode -1`, the field and the reason) and counted;
/// the gateway never sees it.
pub(super) fn invalid(e: &ParseError, area: &str, label: &'static str, rev: Option<&str>) -> HttpResponse {
    metrics::INVALID.with_label_values(&[label]).inc();
    metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
    tracing::info!(infno = label, error = %e, "invalid claim message answered locally");
    let r = Failure::BadInput(e).respond(area);
    match rev {
        Some(rev) => with_headers(r, "error", rev),
        None => r,
    }
}
