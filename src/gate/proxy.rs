//! The intercepted gateway route and `/v1/check`: HTTP around [`crate::pipeline::exchange`].
//!
//! Phases (docs/pipeline.md): admit → read body (bounded) → parse head → route by infno →
//! [3101/3102/3103: answered locally (`pipeline::analysis::local`) | claim: `exchange::check` on
//! history's threads under the budget → `Judge::verdict`] → block or answer: the envelope |
//! forward: the same bytes → `Pending::settle` (journal, learn) → relay the gateway's bytes.

use super::check::{invalid, validated};
use super::rescue::{self, Failure};
use super::{non_empty, read_body, with_headers, State};
use crate::pipeline::exchange::{self, infcode_of, Exchange, Pending, Verdict};
use crate::rules::Action;
use crate::telemetry::metrics::{self, infno_label};
use crate::wire::{Infno, ResponseEnvelope};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `POST /fsi/api/rsfComIfsService/callService`.
pub async fn proxy(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let t0 = Instant::now();
    // Access control on the head alone: an unknown or too-eager client costs no body read.
    if let Err(refused) = st.guard.admit(&req) {
        return *refused;
    }
    let body = match read_body(&req, payload, st.cfg.body_limit, st.cfg.client_body_timeout_ms).await {
        Ok(b) => b,
        Err(e) => {
            metrics::REQUESTS.with_label_values(&["other", "error"]).inc();
            return Failure::BadInput(&e).respond("");
        }
    };
    // One pass: a fee upload's lines are parsed with the head, and the check takes them over.
    // On `…/callService/{infno}` the path names the transaction when the body does not.
    let ex = match Exchange::begin(body, req.match_info().get("infno")) {
        Ok(ex) => Arc::new(ex),
        Err(e) => return invalid(&e, "", "other", None),
    };
    let label = infno_label(ex.head().infno.as_str());
    let resp = route(&req, &ex, &st, label).await;
    metrics::REQUEST_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
    resp
}

async fn route(req: &HttpRequest, ex: &Arc<Exchange>, st: &web::Data<State>, label: &'static str) -> HttpResponse {
    let (body, head) = (ex.body(), ex.head());
    let area = head.mdtrtarea_admvs.as_str();
    let infno = Infno::parse(head.infno.as_str());
    let active = st.rules.load_full();
    if infno.is_local_analysis() {
        let Some(active) = active else { return Failure::NotReady.respond(area) };
        return super::check::local_analysis(ex, st, &active, label).await;
    }
    if !infno.is_checked() {
        // A reversal changes what history holds: it is read in full before it is relayed.
        if let Err(e) = super::check::relayable(head, body, infno) {
            return invalid(&e, area, label, None);
        }
        metrics::REQUESTS.with_label_values(&[label, "relay"]).inc();
        if infno == Infno::OutpatientRegister {
            // A registration names its department and doctor; later messages give codes only.
            st.journal.names(exchange::staff_names(head)).await;
        }
        return forward(req, ex, st, None, label).await;
    }
    // Nothing invalid leaves for the gateway: the envelope is checked here, the body by the check,
    // or in full before any path that forwards without a judgement (below).
    if let Err(e) = exchange::check_envelope(head, body) {
        return invalid(&e, area, label, None);
    }
    let Some(active) = active else {
        // No rule set: fail-open forwards unchecked (a valid message only), fail-closed refuses.
        if st.cfg.fail_open {
            if let Err(e) = validated(body, head).await {
                return invalid(&e, area, label, None);
            }
            metrics::FALLBACKS.with_label_values(&["internal_open"]).inc();
            let pending = st.judge(head, "none", None, label, exchange::FirstLine::of(head)).unchecked("no_ruleset");
            return forward(req, ex, st, Some(pending), label).await;
        }
        metrics::FALLBACKS.with_label_values(&["internal_closed"]).inc();
        return Failure::NotReadyClosed.respond(area);
    };
    let rev = active.rs.revision();
    // The daily caps judge a settlement on the day the person's earlier settlements made: one
    // settlement of a person at a time, from this check until history has learnt its answer.
    let _turn = match super::check::settlement_turn(st, head, infno, label, &rev).await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    // A pre-settlement commits nothing at the gateway and the fund share it computes is what the
    // daily caps need: it goes first, and its answer is checked on the way back.
    let presettle = matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle);
    let mut early = None;
    if presettle && st.upstream.is_some() {
        if let Err(e) = validated(body, head).await {
            return invalid(&e, area, label, Some(&rev));
        }
        match call_upstream(req, ex, st, label).await {
            Ok(a) => early = Some(a),
            Err(resp) => {
                metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
                return with_headers(resp, "unchecked", &rev);
            }
        }
    }
    let early_env = early.as_ref().and_then(|(_, p)| p.clone());
    let budget = Duration::from_millis(st.cfg.check_budget_ms.max(1));
    // Read before the check takes the parsed lines: what the record says if the check falls back.
    let first = exchange::FirstLine::of(head);
    let checked = super::check::run_check_valid(st, ex, &active, early_env.clone(), budget).await;
    match st.judge(head, &rev, Some(&active), label, first).verdict(checked) {
        Verdict::Bad(e) => invalid(&e, area, label, Some(&rev)),
        Verdict::Refused { budget, record } => {
            st.journal.record_acknowledged(record).await;
            with_headers(Failure::CheckFailed { budget }.respond(area), "error", &rev)
        }
        Verdict::Block { decision, mut record, learnt } => {
            // A blocked pre-settlement was answered by the gateway; the HIS never sees that answer.
            record.gateway_infcode = early_env.as_ref().and_then(infcode_of);
            st.journal.record_acknowledged(record).await;
            // The fund share the gateway computed stays known for this visit (nothing is counted as
            // paid): a settlement sent despite the block is judged on it, not waved through unchecked.
            if let Some(env) = early_env.as_ref().filter(|e| e.is_success()) {
                exchange::learn(&st.history, ex, env, learnt, label).await;
            }
            let msg = format!("claimgate 医保智能审核拦截：{}", decision.summary(Some(Action::Block)));
            let warn = decision.summary(Some(Action::Remind));
            let out = serde_json::json!({"claimgate": &decision});
            with_headers(rescue::blocked(area, &msg, non_empty(&warn), out), "block", &rev)
        }
        Verdict::Answer { decision, record } => {
            // Check-only mode: claimgate answers the claim itself.
            st.journal.record_acknowledged(record).await;
            let warn = decision.summary(None);
            let r = rescue::answer(area, non_empty(&warn), serde_json::json!({"claimgate": &decision}));
            with_headers(r, decision.header_value(), &rev)
        }
        Verdict::Forward(pending) => match early {
            Some(a) => relay(ex, st, a, Some(pending), label).await,
            None => forward(req, ex, st, Some(pending), label).await,
        },
    }
}

/// The gateway's answer, and its envelope when it is a readable JSON one.
type Reply = (super::upstream::Answer, Option<ResponseEnvelope>);

/// Sends the original bytes upstream. `Err` is the envelope error to give the HIS.
async fn call_upstream(
    req: &HttpRequest,
    ex: &Exchange,
    st: &State,
    label: &'static str,
) -> Result<Reply, HttpResponse> {
    let head = ex.head();
    let area = head.mdtrtarea_admvs.as_str();
    let Some(up) = &st.upstream else { return Err(Failure::NoUpstream.respond(area)) };
    up.exchange(&super::guard::forwarded_headers(req), head.infno.as_str(), ex.body().clone(), label)
        .await
        .map_err(|e| Failure::Upstream(&e).respond(area))
}

/// Sends the original bytes upstream and relays the answer byte for byte.
async fn forward(
    req: &HttpRequest,
    ex: &Arc<Exchange>,
    st: &web::Data<State>,
    pending: Option<Pending>,
    label: &'static str,
) -> HttpResponse {
    match call_upstream(req, ex, st, label).await {
        Ok(reply) => relay(ex, st, reply, pending, label).await,
        Err(resp) => match pending {
            Some(p) => {
                let (decision, revision) = (p.decision, p.revision.clone());
                // Journaled with no gateway outcome: the claim did not go through.
                st.journal.record_acknowledged(p.settle(None).0).await;
                with_headers(resp, decision, &revision)
            }
            None => resp,
        },
    }
}

/// Journals the checked message with the gateway's outcome, learns from an accepted answer
/// (durably, before the HIS hears of it), and relays the answer byte for byte.
async fn relay(
    ex: &Arc<Exchange>,
    st: &web::Data<State>,
    (answer, parsed): Reply,
    pending: Option<Pending>,
    label: &'static str,
) -> HttpResponse {
    let (headers, reminders, learns) = match pending {
        Some(mut p) => {
            let (decision, revision, reminders) = (p.decision, p.revision.clone(), p.reminders.take());
            let (record, learns) = p.settle(parsed.as_ref());
            st.journal.record_acknowledged(record).await;
            (Some((decision, revision)), reminders, learns)
        }
        None => (None, None, parsed.as_ref().is_some_and(ResponseEnvelope::is_success).then_some(None)),
    };
    if let (Some(upload), Some(env)) = (learns, parsed.as_ref()) {
        // An accepted exchange becomes history before the HIS is told it was accepted: a claim
        // that was acknowledged is never missing from history. It learns from the check's claims.
        exchange::learn(&st.history, ex, env, upload, label).await;
    }
    let mut b = HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (k, v) in &answer.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v)) {
            b.append_header((n, v));
        }
    }
    let mut out = answer.body;
    if let (Some(w), true, Some(_)) = (reminders, st.cfg.warn_msg_reminders, &parsed) {
        if let Some(b) = crate::wire::append_warn_msg(&out, w) {
            out = Bytes::from(b);
        }
    }
    let r = b.body(out);
    match &headers {
        Some((d, rev)) => with_headers(r, d, rev),
        None => r,
    }
}
