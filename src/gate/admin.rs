//! The admin API (bearer token): the active rule set, pushing a bundle, rolling back.
//! The work itself is `reload`'s, run on a blocking thread; this file only speaks HTTP.

use super::{authorized, Scope, State};
use crate::reload::{ActivateError, Origin, Outcome};
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

fn refused(e: &ActivateError) -> HttpResponse {
    let body = serde_json::json!({"error": e.to_string(), "stage": e.stage().as_str()});
    match e {
        ActivateError::Disabled => HttpResponse::Forbidden().json(body),
        ActivateError::Rollback(_) | ActivateError::NoCandidate => HttpResponse::Conflict().json(body),
        ActivateError::Persist(_) => HttpResponse::InternalServerError().json(body),
        _ => HttpResponse::UnprocessableEntity().json(body),
    }
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
        Err(e) => refused(&e),
    }
}

/// `PUT /admin/v1/ruleset`: the body is a bundle file. Verified, compiled and self-tested before it
/// replaces the running set; refused with the reason otherwise (the running set stays).
pub async fn push(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Write) {
        return *r;
    }
    let body = match read_bundle(&req, payload, &st).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reload = st.reload.clone();
    match web::block(move || reload.activate_bundle(body, Origin::Push)).await {
        Ok(r) => answer(&st, r),
        Err(e) => {
            HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("activation task: {e}")}))
        }
    }
}

/// `POST /admin/v1/ruleset/rollback`: back to the previous bundle.
pub async fn rollback(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Write) {
        return *r;
    }
    let reload = st.reload.clone();
    match web::block(move || reload.rollback()).await {
        Ok(r) => answer(&st, r),
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("rollback task: {e}")})),
    }
}

/// Reads a bundle body within `bundles.max_bundle_bytes` (the proxy's bounded reader).
async fn read_bundle(req: &HttpRequest, payload: web::Payload, st: &State) -> Result<Vec<u8>, HttpResponse> {
    let limit = st.cfg.bundles.max_bundle_bytes;
    match super::proxy::read_body(req, payload, usize::try_from(limit).unwrap_or(usize::MAX)).await {
        Ok(b) => Ok(b.to_vec()),
        Err(crate::wire::ParseError::TooLarge(_)) => Err(HttpResponse::PayloadTooLarge()
            .json(serde_json::json!({"error": format!("bundle larger than {limit} bytes"), "stage": "verify"}))),
        Err(e) => Err(HttpResponse::BadRequest().json(serde_json::json!({"error": format!("reading the body: {e}")}))),
    }
}

/// `PUT /admin/v1/shadow`: the body is a bundle to evaluate beside the active set on live traffic
/// (verified, compiled and self-tested first; nothing is activated).
pub async fn shadow_set(req: HttpRequest, payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Write) {
        return *r;
    }
    let body = match read_bundle(&req, payload, &st).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reload = st.reload.clone();
    match web::block(move || reload.set_shadow(body)).await {
        Ok(Ok(info)) => HttpResponse::Ok().json(serde_json::json!({"shadow": info})),
        Ok(Err(e)) => refused(&e),
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("shadow task: {e}")})),
    }
}

/// `GET /admin/v1/shadow`: per rule, how often the candidate would remind or block (beside the
/// active set's counts on the same messages), and the latest messages where the two differ.
pub async fn shadow_report(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st, Scope::Read) {
        return *r;
    }
    // Settle the queue first, so the counts cover every message answered before this call.
    let reload = st.reload.clone();
    match web::block(move || {
        reload.shadow().flush();
        reload.shadow().report()
    })
    .await
    {
        Ok(Some(r)) => HttpResponse::Ok().json(r),
        Ok(None) => {
            HttpResponse::NotFound().json(serde_json::json!({"error": "no candidate is under shadow evaluation"}))
        }
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("shadow task: {e}")})),
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
    if let Err(r) = authorized(&req, &st, Scope::Write) {
        return *r;
    }
    let reload = st.reload.clone();
    match web::block(move || reload.promote()).await {
        Ok(r) => answer(&st, r),
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("promote task: {e}")})),
    }
}
