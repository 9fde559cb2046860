//! The intercepted gateway route and `/v1/check`.
//!
//! Phases (docs/pipeline.md): read body (bounded) → parse head → route by infno →
//! [3101/3102: answer locally | 3103: record | claim: normalise → evaluate → overrides → decide] →
//! block: answer in the envelope | pass/remind/relay: forward the same bytes → learn from the answer → relay.

use super::overrides::{fingerprint, FeedbackOutcome, JrRecord};
use super::rescue::{self, ApiFailure, Failure};
use super::{Active, State};
use crate::claim::Claim;
use crate::journal::{Message, Record};
use crate::pipeline::{analysis, decide, decide_each, prepare_with, Prepared};
use crate::rules::{Action, Decision, Outcome};
use crate::telemetry::metrics::{self, infno_label};
use crate::wire::{parse_head, parse_request, Infno, ParseError, RequestHead, ResponseEnvelope};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Reads the body, refusing more than `limit` bytes before buffering them.
pub(super) async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Bytes, ParseError> {
    if let Some(len) =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ParseError::TooLarge(limit));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ParseError::Json(format!("body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ParseError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn with_headers(mut r: HttpResponse, decision: &str, ruleset: &str) -> HttpResponse {
    let h = r.headers_mut();
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(decision) {
        h.insert(actix_web::http::header::HeaderName::from_static("x-claimgate-decision"), v);
    }
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(ruleset) {
        h.insert(actix_web::http::header::HeaderName::from_static("x-claimgate-ruleset"), v);
    }
    r
}

fn count_hits(d: &Decision) {
    for h in &d.hits {
        let a = if h.action == Action::Block { "block" } else { "remind" };
        metrics::RULE_HITS.with_label_values(&[&h.rule_id, a]).inc();
    }
}

/// `POST /fsi/api/rsfComIfsService/callService`.
pub async fn proxy(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let t0 = Instant::now();
    // Access control on the head alone: an unknown or too-eager client costs no body read.
    if let Err(refused) = st.guard.admit(&req) {
        return *refused;
    }
    let body = match read_body(&req, payload, st.cfg.body_limit).await {
        Ok(b) => b,
        Err(e) => {
            metrics::REQUESTS.with_label_values(&["other", "error"]).inc();
            return Failure::BadInput(&e).respond("");
        }
    };
    // One pass: a fee upload's lines are parsed with the head, and the check takes them over.
    let head = match parse_request(&body) {
        Ok(h) => h,
        Err(e) => {
            metrics::REQUESTS.with_label_values(&["other", "error"]).inc();
            return Failure::BadInput(&e).respond("");
        }
    };
    let label = infno_label(head.infno.as_str());
    let resp = route(&req, &body, &head, &st, label).await;
    metrics::REQUEST_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
    resp
}

/// What a check on the blocking pool came back with.
enum CheckOutcome {
    Done {
        claims: Vec<Claim>,
        d: Decision,
        removed: usize,
    },
    Encrypted,
    Bad(ParseError),
    /// A panic inside the check (`"internal"`) or the time budget ran out (`"budget"`).
    Failed(&'static str),
}

/// Parses (unless `parsed` is the routed head with its input already read), looks up history,
/// evaluates and applies overrides on the blocking pool (history may do I/O), under the time
/// budget `budget` (the settlement path's; `None` waits: `/v1/check` is not in the settlement
/// path). `answer`: the gateway's answer to a pre-settlement.
async fn run_check(
    st: &web::Data<State>,
    body: &Bytes,
    parsed: Option<RequestHead<'static>>,
    active: &Arc<Active>,
    answer: Option<ResponseEnvelope>,
    budget: Option<std::time::Duration>,
) -> CheckOutcome {
    let (st2, body, active) = (st.clone(), body.clone(), active.clone());
    let t_check = Instant::now();
    let job = tokio::task::spawn_blocking(move || {
        let read;
        let head = match &parsed {
            Some(h) => h,
            None => match parse_request(&body) {
                Ok(h) => {
                    read = h;
                    &read
                }
                Err(e) => return CheckOutcome::Bad(e),
            },
        };
        let prepared = prepare_with(head, &st2.history, active.rs.lookback_days(), answer.as_ref());
        let claims = match prepared {
            Ok(Prepared::Claims { claims, .. }) => claims,
            Ok(_) => vec![],
            Err(ParseError::Encrypted(_)) => return CheckOutcome::Encrypted,
            Err(e) => return CheckOutcome::Bad(e),
        };
        let mut d = decide(&active.rs, &claims);
        // A candidate pack in shadow sees the same claims (queued; never waited for).
        st2.reload.shadow().observe(&claims, &d);
        let removed = claims.first().map(|c| st2.overrides.apply(c, &mut d)).unwrap_or_default();
        CheckOutcome::Done { claims, d, removed: removed.len() }
    });
    let budget = budget.unwrap_or(std::time::Duration::from_secs(3600));
    match tokio::time::timeout(budget, job).await {
        Ok(Ok(CheckOutcome::Done { claims, mut d, removed })) => {
            d.elapsed_us = t_check.elapsed().as_micros() as u64;
            CheckOutcome::Done { claims, d, removed }
        }
        Ok(Ok(other)) => other,
        // A panic inside a kind: caught by the blocking pool, the process keeps serving.
        Ok(Err(_)) => CheckOutcome::Failed("internal"),
        Err(_) => CheckOutcome::Failed("budget"),
    }
}

async fn route(
    req: &HttpRequest,
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &web::Data<State>,
    label: &'static str,
) -> HttpResponse {
    let area = head.mdtrtarea_admvs.as_str();
    let infno = Infno::parse(head.infno.as_str());
    let active = st.rules.load_full();
    if infno.is_local_analysis() {
        let Some(active) = active else {
            return Failure::NotReady.respond(area);
        };
        return local_analysis(body, head, st, &active, label).await;
    }
    if !infno.is_checked() {
        metrics::REQUESTS.with_label_values(&[label, "relay"]).inc();
        return forward(req, body, head, st, None, label).await;
    }
    let Some(active) = active else {
        // No rule set: fail-open forwards unchecked, fail-closed refuses.
        if st.cfg.fail_open {
            metrics::FALLBACKS.with_label_values(&["internal_open"]).inc();
            metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
            return forward(req, body, head, st, Checked::unchecked(st, head, "none".into()), label).await;
        }
        metrics::FALLBACKS.with_label_values(&["internal_closed"]).inc();
        return Failure::NotReadyClosed.respond(area);
    };
    let rev = active.rs.revision();
    // A pre-settlement commits nothing at the gateway and the fund share it computes is what the
    // daily caps need: it goes first, and its answer is checked on the way back.
    let presettle = matches!(infno, Infno::OutpatientPreSettle | Infno::InpatientPreSettle);
    let mut early_answer = None;
    if presettle && st.upstream.is_some() {
        match call_upstream(req, body, head, st, label).await {
            Ok(a) => early_answer = Some(a),
            Err(resp) => {
                metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
                return with_headers(resp, "unchecked", &rev);
            }
        }
    }
    let parsed_answer = early_answer.as_ref().and_then(|(_, p)| p.clone());
    let budget = std::time::Duration::from_millis(st.cfg.check_budget_ms.max(1));
    let outcome = run_check(st, body, head.take_parsed(), &active, parsed_answer, Some(budget)).await;
    // A failed check forwards or refuses by `fail_policy`: the strongest block the pack could
    // have given decides (computed on the failure path only).
    let opens = matches!(outcome, CheckOutcome::Failed(_))
        && st.cfg.fail_policy.opens(strongest_block(&active.rs), st.cfg.fail_open);
    let (claims, d, removed) = match outcome {
        CheckOutcome::Done { claims, d, removed } => (claims, d, removed),
        CheckOutcome::Encrypted => {
            metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
            let c = Checked::unchecked(st, head, rev);
            return match early_answer {
                Some(a) => relay(body, st, a, c, label).await,
                None => forward(req, body, head, st, c, label).await,
            };
        }
        CheckOutcome::Bad(e) => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            return with_headers(Failure::BadInput(&e).respond(area), "error", &rev);
        }
        CheckOutcome::Failed(why) if opens => {
            tracing::error!(infno = label, why, "check failed; forwarded unchecked (fail-open)");
            metrics::FALLBACKS.with_label_values(&[if why == "budget" { "budget" } else { "internal_open" }]).inc();
            metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
            let c = Checked::unchecked(st, head, rev);
            return match early_answer {
                Some(a) => relay(body, st, a, c, label).await,
                None => forward(req, body, head, st, c, label).await,
            };
        }
        CheckOutcome::Failed(why) => {
            tracing::error!(infno = label, why, "check failed; refused (fail-closed)");
            metrics::FALLBACKS
                .with_label_values(&[if why == "budget" { "budget_closed" } else { "internal_closed" }])
                .inc();
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            let refused = Failure::CheckFailed { budget: why == "budget" }.respond(area);
            return with_headers(refused, "error", &rev);
        }
    };
    for _ in 0..removed {
        metrics::OVERRIDES.with_label_values(&["applied"]).inc();
    }
    metrics::CHECK_SECONDS.with_label_values(&[label]).observe(d.elapsed_us as f64 / 1e6);
    count_hits(&d);
    let hv = d.header_value();
    metrics::REQUESTS.with_label_values(&[label, hv]).inc();
    if !d.hits.is_empty() {
        tracing::info!(infno = label, decision = hv, hits = d.hits.len(), rules = ?d.hits.iter().map(|h| h.rule_id.to_string()).collect::<Vec<_>>(), "claim checked");
    }
    if d.decision == Outcome::Block {
        let mut record = record_of(st, head, &claims, Some(&d), &rev);
        // A blocked pre-settlement was answered by the gateway; the HIS never sees that answer.
        record.gateway_infcode = early_answer.as_ref().and_then(|(_, p)| p.as_ref()).and_then(infcode_of);
        st.journal.record(record).await;
        // The fund share the gateway computed stays known for this visit (nothing is counted as
        // paid): a settlement sent despite the block is judged on it, not waved through unchecked.
        if let Some(env) = early_answer.as_ref().and_then(|(_, p)| p.as_ref()).filter(|e| e.is_success()) {
            learn(st, body, env, None, label).await;
        }
        let msg = format!("claimgate 医保智能审核拦截：{}", d.summary(Some(Action::Block)));
        let warn = d.summary(Some(Action::Remind));
        let out = serde_json::json!({"claimgate": &d});
        let r = rescue::blocked(area, &msg, (!warn.is_empty()).then_some(warn.as_str()), out);
        return with_headers(r, "block", &rev);
    }
    if st.upstream.is_none() {
        // Check-only mode: answer the claim ourselves.
        st.journal.record(record_of(st, head, &claims, Some(&d), &rev)).await;
        let warn = d.summary(None);
        let r = rescue::answer(area, (!warn.is_empty()).then_some(warn.as_str()), serde_json::json!({"claimgate": &d}));
        return with_headers(r, hv, &rev);
    }
    let reminders = d.summary(Some(Action::Remind));
    let reminders = (!reminders.is_empty()).then(|| format!("claimgate 医保智能审核提醒：{reminders}"));
    let record = record_of(st, head, &claims, Some(&d), &rev);
    let learnt =
        matches!(infno, Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload).then(|| (head.detached(), claims));
    let checked = Some(Checked { decision: hv, revision: rev, reminders, learnt, record });
    match early_answer {
        Some(a) => relay(body, st, a, checked, label).await,
        None => forward(req, body, head, st, checked, label).await,
    }
}

/// The severity of the strongest blocking rule in a pack (`None`: it only reminds).
fn strongest_block(rs: &crate::rules::CompiledRuleSet) -> Option<crate::rules::Severity> {
    rs.rules.iter().filter(|r| r.action == Action::Block).map(|r| r.severity).max()
}

fn infcode_of(p: &ResponseEnvelope) -> Option<i64> {
    p.infcode.as_str().parse::<i64>().ok()
}

/// 3101/3102 answered in the national format; 3103 recorded.
async fn local_analysis(
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &web::Data<State>,
    active: &Arc<Active>,
    label: &'static str,
) -> HttpResponse {
    let area = head.mdtrtarea_admvs.as_str();
    let rev = active.rs.revision();
    let (st2, body2, active2) = (st.clone(), body.clone(), active.clone());
    // History (分解住院 at 入院登记, 重复开药 …) may do I/O: off the executor.
    let job = tokio::task::spawn_blocking(move || {
        let head = parse_head(&body2)?;
        let p = prepare_with(&head, &st2.history, active2.rs.lookback_days(), None)?;
        let decisions = match &p {
            Prepared::Claims { claims, .. } => decide_each(&active2.rs, claims),
            _ => vec![],
        };
        Ok::<_, ParseError>((p, decisions))
    });
    let Ok(prepared) = job.await else {
        metrics::FALLBACKS.with_label_values(&["internal_closed"]).inc();
        return Failure::Internal.respond(area);
    };
    match prepared {
        Ok((Prepared::Claims { claims, task_id, .. }, decisions)) => {
            let results = analysis::results(&claims, &decisions, task_id.as_deref().unwrap_or(""));
            // Remember what each jr_id stood for, for the doctor's 3103 answer.
            for r in &results {
                let claim = claims.iter().find(|c| c.encounter.mdtrt_id == r.mdtrt_id && c.patient.psn_no == r.patn_id);
                let overridable = decisions
                    .iter()
                    .flat_map(|d| d.hits.iter())
                    .find(|h| *h.rule_id == *r.rule_id)
                    .is_some_and(|h| h.overridable || h.action == Action::Remind);
                let lines = r
                    .judge_result_detail_dtos
                    .iter()
                    .filter_map(|j| claim.and_then(|c| fingerprint(c, &j.rx_id)).map(|fp| (j.rx_id.clone(), fp)))
                    .collect();
                st.overrides.remember(
                    &r.jr_id,
                    JrRecord { rule_id: r.rule_id.clone(), mdtrt_id: r.mdtrt_id.clone(), lines, overridable },
                );
            }
            let merged = crate::pipeline::merge(&active.rs, decisions);
            count_hits(&merged);
            let mut rec = record_of(st, head, &claims, Some(&merged), &rev);
            // Each jr_id handed out is journaled with its rule, so the doctor's 3103 answer links back.
            rec.jr = results
                .iter()
                .map(|r| crate::journal::JrLink { jr_id: r.jr_id.clone(), rule_id: r.rule_id.clone() })
                .collect();
            st.journal.record(rec).await;
            let hv = merged.header_value();
            metrics::REQUESTS.with_label_values(&[label, hv]).inc();
            with_headers(rescue::answer(area, None, serde_json::json!({"result": results})), hv, &rev)
        }
        Ok((Prepared::Feedback(fb), _)) => {
            let mut notes = Vec::new();
            for (i, w) in fb.warns.iter().enumerate() {
                let way = w.dspo_way.as_str();
                let outcome = st.overrides.answer(w.warn_rslt_id.as_str(), way, w.dspo_way_rea.as_str());
                // The doctor's answer and reason are kept for the 医保办 and for 记分 defence.
                st.journal
                    .feedback(crate::journal::Feedback {
                        at: chrono::Local::now().to_rfc3339(),
                        jr_id: w.warn_rslt_id.as_str().to_owned(),
                        dspo_way: way.to_owned(),
                        reason: w.dspo_way_rea.as_str().to_owned(),
                        outcome: format!("{outcome:?}"),
                    })
                    .await;
                metrics::OVERRIDES.with_label_values(&[if way == "1" { "1" } else { "2" }]).inc();
                match outcome {
                    FeedbackOutcome::MissingReason => {
                        return Failure::MissingReason(i).respond(area);
                    }
                    FeedbackOutcome::UnknownJr => notes.push(format!("{}：未找到该审核结果", w.warn_rslt_id.as_str())),
                    FeedbackOutcome::NotOverridable => {
                        notes.push(format!("{}：该规则为不可继续执行的拦截，结算时仍将拦截", w.warn_rslt_id.as_str()))
                    }
                    FeedbackOutcome::Granted | FeedbackOutcome::Modify => {}
                }
                tracing::info!(jr_id = w.warn_rslt_id.as_str(), dspo_way = way, outcome = ?outcome, "3103 feedback recorded");
            }
            metrics::REQUESTS.with_label_values(&[label, "pass"]).inc();
            let warn = notes.join("；");
            let r = rescue::answer(area, (!warn.is_empty()).then_some(warn.as_str()), serde_json::json!({}));
            with_headers(r, "pass", &rev)
        }
        Ok((Prepared::Relay(_), _)) => Failure::Unsupported.respond(area),
        Err(e) => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            Failure::BadInput(&e).respond(area)
        }
    }
}

/// The journal record of a checked message, before the gateway's outcome is known.
fn record_of(
    st: &State,
    head: &RequestHead<'_>,
    claims: &[crate::claim::Claim],
    d: Option<&Decision>,
    revision: &str,
) -> Record {
    let m = Message {
        infno: head.infno.as_str(),
        msgid: head.msgid.as_str(),
        fixmedins_code: head.fixmedins_code.as_str(),
    };
    Record::of_claims(m, claims, d, revision, &st.journal.pseudo)
}

/// What the check left for the forwarding phase.
struct Checked {
    /// `x-claimgate-decision` value.
    decision: &'static str,
    /// `x-claimgate-ruleset` value.
    revision: String,
    /// Reminder texts for `warn_msg` (when configured).
    reminders: Option<String>,
    /// The upload's head and claims, learnt from when the gateway accepts them.
    learnt: Option<(RequestHead<'static>, Vec<crate::claim::Claim>)>,
    /// Journaled once the gateway's outcome is known.
    record: Record,
}

impl Checked {
    fn unchecked(st: &State, head: &RequestHead<'_>, revision: String) -> Option<Checked> {
        let record = record_of(st, head, &[], None, &revision);
        Some(Checked { decision: "unchecked", revision, reminders: None, learnt: None, record })
    }
}

/// The gateway's answer, and its envelope when it is a readable JSON one.
type Reply = (super::upstream::Answer, Option<ResponseEnvelope>);

/// Sends the original bytes upstream. `Err` is the envelope error to give the HIS.
async fn call_upstream(
    req: &HttpRequest,
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &State,
    label: &'static str,
) -> Result<Reply, HttpResponse> {
    let area = head.mdtrtarea_admvs.as_str();
    let Some(up) = &st.upstream else {
        return Err(Failure::NoUpstream.respond(area));
    };
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        // The HIS's key is claimgate's own credential: it never goes to the gateway.
        .filter(|(k, _)| !super::upstream::is_hop_by_hop(k.as_str()) && k.as_str() != super::guard::KEY_HEADER)
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let t0 = Instant::now();
    let result = up.call(head.infno.as_str(), &headers, body.clone()).await;
    metrics::UPSTREAM_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
            tracing::warn!(infno = label, kind = e.kind(), error = %e, "gateway call failed");
            return Err(Failure::Upstream(&e).respond(area));
        }
    };
    let encoded = answer.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-encoding"));
    let parsed: Option<ResponseEnvelope> = if encoded { None } else { serde_json::from_slice(&answer.body).ok() };
    if !encoded && parsed.is_none() {
        let e = super::upstream::UpstreamError::Garbage {
            status: answer.status,
            len: answer.body.len(),
            ms: t0.elapsed().as_millis(),
        };
        metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
        return Err(Failure::Upstream(&e).respond(area));
    }
    Ok((answer, parsed))
}

/// Sends the original bytes upstream and relays the answer byte for byte.
async fn forward(
    req: &HttpRequest,
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &web::Data<State>,
    checked: Option<Checked>,
    label: &'static str,
) -> HttpResponse {
    match call_upstream(req, body, head, st, label).await {
        Ok(reply) => relay(body, st, reply, checked, label).await,
        Err(resp) => match checked {
            Some(c) => {
                // Journaled with no gateway outcome: the claim did not go through.
                st.journal.record(c.record).await;
                with_headers(resp, c.decision, &c.revision)
            }
            None => resp,
        },
    }
}

/// Learns an accepted exchange into history on the blocking pool; durable when this returns.
/// A store failure is logged and counted (the gateway has already committed; the answer goes on).
async fn learn(
    st: &web::Data<State>,
    body: &Bytes,
    env: &ResponseEnvelope,
    upload: Option<(RequestHead<'static>, Vec<Claim>)>,
    label: &str,
) {
    let (st2, env, raw) = (st.clone(), env.clone(), body.clone());
    let learnt = tokio::task::spawn_blocking(move || {
        match upload {
            Some((head, claims)) => st2.history.learn_durably_parsed(&head, &raw, Some(&env), Some(claims)),
            None => st2.history.learn_durably(&raw, Some(&env), None),
        }
        .map_err(|e| e.to_string())
    })
    .await;
    match learnt {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(infno = label, error = %e, "accepted exchange not learnt into history"),
        Err(_) => tracing::error!(infno = label, "learning panicked; history misses this exchange"),
    }
}

/// Journals the checked message with the gateway's outcome, learns from an accepted answer
/// (durably, before the HIS hears of it), and relays the answer byte for byte.
async fn relay(
    body: &Bytes,
    st: &web::Data<State>,
    (answer, parsed): Reply,
    checked: Option<Checked>,
    label: &'static str,
) -> HttpResponse {
    let (headers, reminders, learnt) = match checked {
        Some(c) => {
            let mut r = c.record;
            r.gateway_infcode = parsed.as_ref().and_then(infcode_of);
            st.journal.record(r).await;
            (Some((c.decision, c.revision)), c.reminders, c.learnt)
        }
        None => (None, None, None),
    };
    if let Some(env) = parsed.as_ref().filter(|e| e.is_success()) {
        // An accepted exchange becomes history before the HIS is told it was accepted: a claim
        // that was acknowledged is never missing from history. Uploads reuse the check's claims.
        learn(st, body, env, learnt, label).await;
    }
    let mut b = HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (k, v) in &answer.headers {
        if let (Ok(n), Ok(v)) = (
            actix_web::http::header::HeaderName::from_bytes(k.as_bytes()),
            actix_web::http::header::HeaderValue::from_bytes(v),
        ) {
            b.append_header((n, v));
        }
    }
    let mut out = answer.body;
    if let (Some(w), true, Some(_)) = (reminders, st.cfg.warn_msg_reminders, &parsed) {
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out) {
            let merged = match v.get("warn_msg").and_then(|x| x.as_str()).filter(|x| !x.is_empty()) {
                Some(prev) => format!("{prev}；{w}"),
                None => w,
            };
            v["warn_msg"] = serde_json::Value::String(merged);
            out = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        }
    }
    let r = b.body(out);
    match &headers {
        Some((d, rev)) => with_headers(r, d, rev),
        None => r,
    }
}

/// `POST /v1/check`: the decision JSON for an envelope; never forwards, never learns.
pub async fn check(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let bad = |msg: String| ApiFailure::BadRequest(msg).respond();
    if let Err(refused) = st.guard.admit(&req) {
        return *refused;
    }
    let body = match read_body(&req, payload, st.cfg.body_limit).await {
        Ok(b) => b,
        Err(e @ ParseError::TooLarge(_)) => return ApiFailure::TooLarge(e.to_string()).respond(),
        Err(e) => return bad(e.to_string()),
    };
    let Some(active) = st.rules.load_full() else {
        return ApiFailure::NotReady.respond();
    };
    let head = match parse_request(&body) {
        Ok(h) => h,
        Err(e) => return bad(e.to_string()),
    };
    if !Infno::parse(head.infno.as_str()).is_checked() && !Infno::parse(head.infno.as_str()).is_local_analysis() {
        return bad(format!("infno {}: not a checked claim transaction", head.infno.as_str()));
    }
    match run_check(&st, &body, head.take_parsed(), &active, None, None).await {
        CheckOutcome::Done { d, .. } => {
            let hv = d.header_value();
            with_headers(HttpResponse::Ok().json(&d), hv, &active.rs.revision())
        }
        CheckOutcome::Bad(e) => bad(e.to_string()),
        CheckOutcome::Encrypted => bad("input is encrypted (SM4); nothing to check".into()),
        CheckOutcome::Failed(why) => ApiFailure::Internal(format!("check failed: {why}")).respond(),
    }
}
