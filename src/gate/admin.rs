//! The admin API (bearer token): the active rule set, pushing a bundle, rolling back.
//! The work itself is `reload`'s, run on a blocking thread; this file only speaks HTTP.

use super::{authorized, State};
use crate::reload::{ActivateError, Origin, Outcome};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

/// `GET /admin/v1/ruleset`: what runs, where it came from, and the last failure.
pub async fn ruleset(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st) {
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
        ActivateError::Rollback(_) => HttpResponse::Conflict().json(body),
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
pub async fn push(req: HttpRequest, mut payload: web::Payload, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st) {
        return *r;
    }
    let limit = st.cfg.bundles.max_bundle_bytes;
    let too_large =
        || HttpResponse::PayloadTooLarge().json(serde_json::json!({"error": format!("bundle larger than {limit} bytes"), "stage": "verify"}));
    let declared = req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large();
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return HttpResponse::BadRequest().json(serde_json::json!({"error": format!("reading the body: {e}")})),
        };
        if (body.len() + chunk.len()) as u64 > limit {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }
    let reload = st.reload.clone();
    match web::block(move || reload.activate_bundle(body, Origin::Push)).await {
        Ok(r) => answer(&st, r),
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("activation task: {e}")})),
    }
}

/// `POST /admin/v1/ruleset/rollback`: back to the previous bundle.
pub async fn rollback(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st) {
        return *r;
    }
    let reload = st.reload.clone();
    match web::block(move || reload.rollback()).await {
        Ok(r) => answer(&st, r),
        Err(e) => HttpResponse::InternalServerError().json(serde_json::json!({"error": format!("rollback task: {e}")})),
    }
}
