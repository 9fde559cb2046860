//! The admin API (bearer token): the active rule set, pushing a bundle, rolling back, shadow runs.
//! The work itself is `reload`'s, run on a blocking thread; this file only speaks HTTP. Every
//! handler is one `task`: authorise → read the bundle (when there is one) → run on the blocking
//! pool; failures answer through [`ApiFailure`].

use super::rescue::ApiFailure;
use super::{authorized, Scope, State};
use crate::reload::{ActivateError, Origin, Outcome, Reloader};
use actix_web::{web, HttpRequest, HttpResponse};

/// `GET /admin/v1/ruleset`: what runs, where it came from, and the last failure.
pub async fn ruleset(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Read) {
        return *r;
    }
    HttpResponse::Ok().json(describe(&st))
}

fn describe(st: &State) -> serde_json::Value {
    let status = st.reload.status();
    let a = st.rules.load_full();
    serde_json::json!({
        "name": a.as_ref().map(|a| a.rs.name.to_string()),
        "version": a.as_ref().map(|a| a.rs.version.to_string()),
        "revision": a.as_ref().map(|a| a.rs.revision()),
        "digest": a.as_ref().map(|a| a.rs.digest.to_string()),
        "source": a.as_ref().map(|a| a.source.clone()),
        "activated_at": a.as_ref().map(|a| a.activated_at.clone()),
        "rules": a.as_ref().map(|a| a.rs.rules.len()),
        "knowledge_points": a.as_ref().map(|a| a.rs.knowledge_points),
        // The 88 rule types of the 2025 catalogue against the active set (`claimgate rules
        // coverage` also lists the knowledge points each pack left out for review).
        "coverage": a.as_ref().map(|a| {
            let c = crate::nhsa::coverage(&a.rs, Vec::new());
            serde_json::json!({"enforced": c.enforced, "types": c.types})
        }),
        "bundle": a.as_ref().and_then(|a| a.bundle.clone()),
        "previous_bundle": status.previous,
        "last_update_failed": status.last_update_failed,
        "last_error": status.last_error,
    })
}

fn answer(st: &State, r: Result<Outcome, ActivateError>) -> HttpResponse {
    match r {
        Ok(Outcome::Activated(_)) => {
            let mut v = describe(st);
            v["activated"] = true.into();
            HttpResponse::Ok().json(v)
        }
        Ok(Outcome::Unchanged) => {
            let mut v = describe(st);
            v["activated"] = false.into();
            v["note"] = "this bundle is already active".into();
            HttpResponse::Ok().json(v)
        }
        Err(e) => ApiFailure::Refused(&e).respond(),
    }
}

/// Authorises `need`, reads the bundle in `payload` (if any; empty otherwise) and runs `work` with
/// the reloader and the bundle on the blocking pool. `Err` is the answer to give instead.
async fn task<T: Send + 'static>(
    req: &HttpRequest,
    st: &State,
    need: Scope,
    payload: Option<web::Payload>,
    what: &'static str,
    work: impl FnOnce(&Reloader, Vec<u8>) -> T + Send + 'static,
) -> Result<T, HttpResponse> {
    authorized(req, st, need).map_err(|r| *r)?;
    let body = match payload {
        Some(p) => read_bundle(req, p, st).await.map_err(|f| f.respond())?,
        None => Vec::new(),
    };
    let reload = st.reload.clone();
    web::block(move || work(&reload, body))
        .await
        .map_err(|e| ApiFailure::Internal(format!("{what} task: {e}")).respond())
}

/// `PUT /admin/v1/ruleset[?force=true]`: the body is a bundle file. Verified, compiled and
/// self-tested before it replaces the running set; refused with the reason otherwise (the running
/// set stays). A bundle created before the running one needs `force=true` (logged and counted).
pub async fn push(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    let force = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("force").map(|v| v == "true" || v == "1"))
        .unwrap_or(false);
    let work = move |r: &Reloader, body| r.activate_bundle_forced(body, Origin::Push, force);
    match task(&req, &st, Scope::Write, Some(payload), "activation", work).await {
        Ok(r) => answer(&st, r),
        Err(resp) => resp,
    }
}

/// `POST /admin/v1/ruleset/rollback`: back to the previous bundle.
pub async fn rollback(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    match task(&req, &st, Scope::Write, None, "rollback", |r, _| r.rollback()).await {
        Ok(r) => answer(&st, r),
        Err(resp) => resp,
    }
}

/// Reads a bundle body within `bundles.max_bundle_bytes` (the proxy's bounded reader).
async fn read_bundle(req: &HttpRequest, payload: web::Payload, st: &State) -> Result<Vec<u8>, ApiFailure<'static>> {
    let limit = st.cfg.bundles.max_bundle_bytes;
    match super::read_body(req, payload, usize::try_from(limit).unwrap_or(usize::MAX), st.cfg.client_body_timeout_ms)
        .await
    {
        Ok(b) => Ok(b.to_vec()),
        Err(crate::wire::ParseError::TooLarge(_)) => Err(ApiFailure::BundleTooLarge(limit)),
        Err(e @ crate::wire::ParseError::BodyTimeout(_)) => Err(ApiFailure::BodyTimeout(e.to_string())),
        Err(e) => Err(ApiFailure::BadRequest(format!("reading the body: {e}"))),
    }
}

/// `PUT /admin/v1/shadow`: the body is a bundle to evaluate beside the active set on live traffic
/// (verified, compiled and self-tested first; nothing is activated).
pub async fn shadow_set(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    match task(&req, &st, Scope::Write, Some(payload), "shadow", |r, body| r.set_shadow(body)).await {
        Ok(Ok(info)) => HttpResponse::Ok().json(serde_json::json!({"shadow": info})),
        Ok(Err(e)) => ApiFailure::Refused(&e).respond(),
        Err(resp) => resp,
    }
}

/// `GET /admin/v1/shadow`: per rule, how often the candidate would remind or block (beside the
/// active set's counts on the same messages), and the latest messages where the two differ.
pub async fn shadow_report(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    // Settle the queue first, so the counts cover every message answered before this call.
    let work = |r: &Reloader, _| {
        r.shadow().flush();
        r.shadow().report()
    };
    match task(&req, &st, Scope::Read, None, "shadow", work).await {
        Ok(Some(r)) => HttpResponse::Ok().json(r),
        Ok(None) => ApiFailure::NotFound("no candidate is under shadow evaluation".into()).respond(),
        Err(resp) => resp,
    }
}

/// `DELETE /admin/v1/shadow`: ends the shadow run without activating anything.
pub async fn shadow_clear(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Write) {
        return *r;
    }
    let was = st.reload.shadow().clear();
    HttpResponse::Ok().json(serde_json::json!({"cleared": was.map(|c| c.rs.revision())}))
}

/// `POST /admin/v1/shadow/promote`: activates the candidate (the whole activation path again).
pub async fn shadow_promote(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    match task(&req, &st, Scope::Write, None, "promote", |r, _| r.promote()).await {
        Ok(r) => answer(&st, r),
        Err(resp) => resp,
    }
}
