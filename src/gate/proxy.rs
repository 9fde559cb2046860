//! The intercepted gateway route and `/v1/check`.
//!
//! Phases (docs/pipeline.md): read body (bounded) → parse head → route by infno →
//! [3101/3102: answer locally | 3103: record | claim: normalise → evaluate → overrides → decide] →
//! block: answer in the envelope | pass/remind/relay: forward the same bytes → learn from the answer → relay.

use super::overrides::{fingerprint, FeedbackOutcome, JrRecord};
use super::rescue::{bad_input, envelope, error};
use super::{Active, State};
use crate::journal::{HitRecord, Record};
use crate::pipeline::{analysis, decide, decide_each, prepare, Prepared};
use crate::rules::{Action, Decision, Outcome};
use crate::telemetry::metrics::{self, infno_label};
use crate::wire::{parse_head, Infno, ParseError, RequestHead, ResponseEnvelope};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Reads the body, refusing more than `limit` bytes before buffering them.
async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<Bytes, ParseError> {
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
    let body = match read_body(&req, payload, st.cfg.body_limit).await {
        Ok(b) => b,
        Err(e) => {
            metrics::REQUESTS.with_label_values(&["other", "error"]).inc();
            return bad_input("", &e);
        }
    };
    let head = match parse_head(&body) {
        Ok(h) => h,
        Err(e) => {
            metrics::REQUESTS.with_label_values(&["other", "error"]).inc();
            return bad_input("", &e);
        }
    };
    let label = infno_label(head.infno.as_str());
    let resp = route(&req, &body, &head, &st, label).await;
    metrics::REQUEST_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
    resp
}

async fn route(
    req: &HttpRequest,
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &State,
    label: &'static str,
) -> HttpResponse {
    let area = head.mdtrtarea_admvs.as_str();
    let infno = Infno::parse(head.infno.as_str());
    let active = st.rules.load_full();
    if infno.is_local_analysis() {
        let Some(active) = active else {
            return error(StatusCode::SERVICE_UNAVAILABLE, area, "claimgate: 审核规则尚未就绪");
        };
        return local_analysis(head, st, &active, label).await;
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
        return error(StatusCode::SERVICE_UNAVAILABLE, area, "claimgate: 审核规则尚未就绪，暂停结算");
    };
    let t_check = Instant::now();
    // An internal failure (a bug in a kind) must not take the request down: it is caught, counted
    // and handled as configured — forwarded unchecked (fail-open) or refused (fail-closed).
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let prepared = prepare(head, &st.ctx)?;
        let claims = match prepared {
            Prepared::Claims { claims, .. } => claims,
            _ => vec![],
        };
        let mut d = decide(&active.rs, &claims);
        st.reload.shadow().observe(&claims, &d);
        let removed = claims.first().map(|c| st.overrides.apply(c, &mut d)).unwrap_or_default();
        Ok::<_, ParseError>((claims, d, removed))
    }));
    let (claims, mut d, removed) = match checked {
        Ok(Ok(x)) => x,
        Ok(Err(ParseError::Encrypted(_))) => {
            metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
            return forward(req, body, head, st, Checked::unchecked(st, head, active.rs.revision()), label).await;
        }
        Ok(Err(e)) => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            return with_headers(bad_input(area, &e), "error", &active.rs.revision());
        }
        Err(_) if st.cfg.fail_open => {
            tracing::error!(infno = label, "internal failure while checking; forwarded unchecked (fail-open)");
            metrics::FALLBACKS.with_label_values(&["internal_open"]).inc();
            metrics::REQUESTS.with_label_values(&[label, "unchecked"]).inc();
            return forward(req, body, head, st, Checked::unchecked(st, head, active.rs.revision()), label).await;
        }
        Err(_) => {
            tracing::error!(infno = label, "internal failure while checking; refused (fail-closed)");
            metrics::FALLBACKS.with_label_values(&["internal_closed"]).inc();
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                area,
                "claimgate: 审核内部错误，已按配置暂停该笔结算，请联系信息科",
            );
        }
    };
    d.elapsed_us = t_check.elapsed().as_micros() as u64;
    for _ in &removed {
        metrics::OVERRIDES.with_label_values(&["applied"]).inc();
    }
    let spent = t_check.elapsed();
    metrics::CHECK_SECONDS.with_label_values(&[label]).observe(spent.as_secs_f64());
    if spent.as_millis() as u64 > st.cfg.check_budget_ms {
        metrics::FALLBACKS.with_label_values(&["budget"]).inc();
        tracing::warn!(infno = label, elapsed_ms = spent.as_millis() as u64, "check exceeded its time budget");
    }
    count_hits(&d);
    let rev = active.rs.revision();
    let hv = d.header_value();
    metrics::REQUESTS.with_label_values(&[label, hv]).inc();
    if !d.hits.is_empty() {
        tracing::info!(infno = label, decision = hv, hits = d.hits.len(), rules = ?d.hits.iter().map(|h| h.rule_id.to_string()).collect::<Vec<_>>(), "claim checked");
    }
    if d.decision == Outcome::Block || st.upstream.is_none() {
        st.journal.record(record_of(st, head, &claims, Some(&d), &rev)).await;
    }
    if d.decision == Outcome::Block {
        let msg = format!("claimgate 医保智能审核拦截：{}", d.summary(Some(Action::Block)));
        let warn = d.summary(Some(Action::Remind));
        let out = serde_json::json!({"claimgate": &d});
        let r = envelope(StatusCode::OK, area, -1, Some(&msg), (!warn.is_empty()).then_some(warn.as_str()), out);
        return with_headers(r, "block", &rev);
    }
    if st.upstream.is_none() {
        // Check-only mode: answer the claim ourselves.
        let warn = d.summary(None);
        let r = envelope(
            StatusCode::OK,
            area,
            0,
            None,
            (!warn.is_empty()).then_some(warn.as_str()),
            serde_json::json!({"claimgate": &d}),
        );
        return with_headers(r, hv, &rev);
    }
    let reminders = d.summary(Some(Action::Remind));
    let reminders = (!reminders.is_empty()).then(|| format!("claimgate 医保智能审核提醒：{reminders}"));
    let record = record_of(st, head, &claims, Some(&d), &rev);
    let learnt = matches!(infno, Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload).then_some(claims);
    forward(req, body, head, st, Some(Checked { decision: hv, revision: rev, reminders, learnt, record }), label).await
}

/// 3101/3102 answered in the national format; 3103 recorded.
async fn local_analysis(head: &RequestHead<'_>, st: &State, active: &Arc<Active>, label: &'static str) -> HttpResponse {
    let area = head.mdtrtarea_admvs.as_str();
    let rev = active.rs.revision();
    match prepare(head, &st.ctx) {
        Ok(Prepared::Claims { claims, task_id, .. }) => {
            let decisions = decide_each(&active.rs, &claims);
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
            st.journal.record(record_of(st, head, &claims, Some(&merged), &rev)).await;
            let hv = merged.header_value();
            metrics::REQUESTS.with_label_values(&[label, hv]).inc();
            with_headers(
                envelope(StatusCode::OK, area, 0, None, None, serde_json::json!({"result": results})),
                hv,
                &rev,
            )
        }
        Ok(Prepared::Feedback(fb)) => {
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
                        return error(
                            StatusCode::OK,
                            area,
                            &format!("claimgate: input.data.warns[{i}].dspo_way_rea: 继续执行医嘱时必须填写理由"),
                        );
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
            let r = envelope(
                StatusCode::OK,
                area,
                0,
                None,
                (!warn.is_empty()).then_some(warn.as_str()),
                serde_json::json!({}),
            );
            with_headers(r, "pass", &rev)
        }
        Ok(Prepared::Relay(_)) => error(StatusCode::OK, area, "claimgate: 不支持的交易"),
        Err(e) => {
            metrics::REQUESTS.with_label_values(&[label, "error"]).inc();
            bad_input(area, &e)
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
    let c = claims.first();
    let first = c.and_then(|c| c.lines.first());
    Record {
        at: chrono::Local::now().to_rfc3339(),
        infno: head.infno.as_str().to_owned(),
        msgid: head.msgid.as_str().to_owned(),
        fixmedins_code: head.fixmedins_code.as_str().to_owned(),
        mdtrt_id: c.map(|c| c.encounter.mdtrt_id.clone()).unwrap_or_default(),
        psn_hash: c.map(|c| st.journal.pseudo.hash(&c.patient.psn_no)).unwrap_or_default(),
        dept_code: first
            .map(|l| l.dept_code.clone())
            .or_else(|| c.and_then(|c| c.encounter.dept_code.clone()))
            .unwrap_or_default(),
        doctor_code: first.map(|l| l.doctor_code.clone()).unwrap_or_default(),
        decision: d.map_or("unchecked", |d| d.header_value()).to_owned(),
        ruleset: revision.to_owned(),
        elapsed_us: d.map_or(0, |d| d.elapsed_us),
        gateway_infcode: None,
        hits: d.map(HitRecord::from_decision).unwrap_or_default(),
    }
}

/// What the check left for the forwarding phase.
struct Checked {
    /// `x-claimgate-decision` value.
    decision: &'static str,
    /// `x-claimgate-ruleset` value.
    revision: String,
    /// Reminder texts for `warn_msg` (when configured).
    reminders: Option<String>,
    /// The upload's claims, learnt from when the gateway accepts them.
    learnt: Option<Vec<crate::claim::Claim>>,
    /// Journaled once the gateway's outcome is known.
    record: Record,
}

impl Checked {
    fn unchecked(st: &State, head: &RequestHead<'_>, revision: String) -> Option<Checked> {
        let record = record_of(st, head, &[], None, &revision);
        Some(Checked { decision: "unchecked", revision, reminders: None, learnt: None, record })
    }
}

/// Sends the original bytes upstream and relays the answer byte for byte.
async fn forward(
    req: &HttpRequest,
    body: &Bytes,
    head: &RequestHead<'_>,
    st: &State,
    checked: Option<Checked>,
    label: &'static str,
) -> HttpResponse {
    let area = head.mdtrtarea_admvs.as_str();
    let Some(up) = &st.upstream else {
        return error(StatusCode::BAD_GATEWAY, area, "claimgate: 未配置上游医保网关（仅审核模式），该交易无法转发");
    };
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .filter(|(k, _)| !super::upstream::is_hop_by_hop(k.as_str()))
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let t0 = Instant::now();
    let result = up.call(head.infno.as_str(), &headers, body.clone()).await;
    metrics::UPSTREAM_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
    let (headers, reminders, learnt, record) = match checked {
        Some(c) => (Some((c.decision, c.revision)), c.reminders, c.learnt, Some(c.record)),
        None => (None, None, None, None),
    };
    let finish = |r: HttpResponse| match &headers {
        Some((d, rev)) => with_headers(r, d, rev),
        None => r,
    };
    // The checked message is journaled once, with the gateway's outcome (None: no answer).
    let journal = |mut r: Record, infcode: Option<i64>| async move {
        r.gateway_infcode = infcode;
        st.journal.record(r).await;
    };
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            if let Some(r) = record {
                journal(r, None).await;
            }
            metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
            tracing::warn!(infno = label, kind = e.kind(), error = %e, "gateway call failed");
            let status = if e.kind() == "timeout" { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
            return finish(error(status, area, &format!("claimgate: {e}")));
        }
    };
    let encoded = answer.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-encoding"));
    let parsed: Option<ResponseEnvelope> = if encoded { None } else { serde_json::from_slice(&answer.body).ok() };
    if let Some(r) = record {
        journal(r, parsed.as_ref().and_then(|p| p.infcode.as_str().parse::<i64>().ok())).await;
    }
    if !encoded && parsed.is_none() {
        let e = super::upstream::UpstreamError::Garbage {
            status: answer.status,
            len: answer.body.len(),
            ms: t0.elapsed().as_millis(),
        };
        metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
        return finish(error(StatusCode::BAD_GATEWAY, area, &format!("claimgate: {e}")));
    }
    match (&parsed, learnt) {
        // An accepted upload: learn its lines from the claim already built for the check.
        (Some(env), Some(claims)) if env.is_success() => claims.into_iter().for_each(|c| st.ctx.learn_upload(c)),
        (Some(env), _) => st.ctx.learn(head, Some(env)),
        (None, _) => {}
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
    finish(b.body(out))
}

/// `POST /v1/check`: the decision JSON for an envelope; never forwards, never learns.
pub async fn check(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let bad = |msg: String| HttpResponse::BadRequest().json(serde_json::json!({"error": msg}));
    let body = match read_body(&req, payload, st.cfg.body_limit).await {
        Ok(b) => b,
        Err(e @ ParseError::TooLarge(_)) => {
            return HttpResponse::PayloadTooLarge().json(serde_json::json!({"error": e.to_string()}))
        }
        Err(e) => return bad(e.to_string()),
    };
    let Some(active) = st.rules.load_full() else {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "no rule set is active"}));
    };
    let head = match parse_head(&body) {
        Ok(h) => h,
        Err(e) => return bad(e.to_string()),
    };
    match prepare(&head, &st.ctx) {
        Ok(Prepared::Claims { claims, .. }) => {
            let d = decide(&active.rs, &claims);
            st.reload.shadow().observe(&claims, &d);
            let hv = d.header_value();
            with_headers(HttpResponse::Ok().json(&d), hv, &active.rs.revision())
        }
        Ok(_) => bad(format!("infno {}: not a checked claim transaction", head.infno.as_str())),
        Err(e) => bad(e.to_string()),
    }
}
