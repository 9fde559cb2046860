//! The HTTP server: the intercepted gateway route, the check API, health, metrics, admin.
//!
//! Architecture Invariant: this is the only module that knows HTTP requests and responses (`startup`
//! binds the server over [`routes`]). Each request takes one rule-set
//! snapshot at its start (`ArcSwap`) and keeps it to the end; it never sees half a pack.
//! Phases of the proxy route are charted in `docs/pipeline.md`. What the server is built from, and
//! when, is `crate::startup`'s.

pub mod admin;
pub mod cds;
pub mod check;
pub mod conn;
pub mod guard;
pub mod office;
pub mod proxy;
pub mod rescue;
pub mod tls;
pub mod upstream;

use crate::config::Config;
use crate::history::History;
use crate::reload::Reloader;
use crate::telemetry::metrics;
use crate::wire::ParseError;
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rescue::ApiFailure;
use std::sync::Arc;

pub use crate::reload::Active;

pub struct State {
    pub cfg: Config,
    /// The active rule set; `reload` stores into it, requests load one snapshot each.
    pub rules: Arc<ArcSwapOption<Active>>,
    /// Patient history (durable store + caches).
    pub history: Arc<History>,
    pub upstream: Option<upstream::Upstream>,
    pub overrides: std::sync::Arc<crate::pipeline::overrides::Overrides>,
    /// One settlement of a person at a time, from its check to what history learns.
    pub turns: Arc<crate::pipeline::turns::Turns>,
    /// The decision journal (`data/journal.sqlite`, or the shared store's `j_*` tables).
    pub journal: crate::journal::Journal,
    /// Bundles, local packs, activation, rollback.
    pub reload: Arc<Reloader>,
    /// HIS client keys and per-client rate limits.
    pub guard: guard::Guard,
    /// The EHRs whose CDS Hooks JWTs are verified (none: no JWT asked for).
    pub cds_jwt: cds::JwtKeys,
    /// Doctors' 驾照式记分 this year, `(doctor, year)` → points, read from the journal and kept for
    /// 30 s: the sum grows with the journal, and a doctor's standing moves with blocked settlements,
    /// not with each order checked.
    pub doctor_points: moka::sync::Cache<(String, i32), i64>,
}

impl State {
    /// Reloads, compiles and self-tests the configured local packs (with the running bundle, if
    /// any); activates them only if all pass. The running set stays on failure.
    ///
    /// # Errors
    /// Why the packs were refused (also kept as the last error).
    pub fn activate_from_config(&self) -> Result<(), String> {
        self.reload.reload_local().map(|_| ()).map_err(|e| e.to_string())
    }

    /// Where the verdict on `head` is given: this server's fail policy, journal pseudonyms and
    /// gateway, with the active set's revision and strongest block.
    pub(super) fn judge<'a>(
        &'a self,
        head: &'a crate::wire::RequestHead<'a>,
        revision: &'a str,
        active: Option<&Active>,
        label: &'static str,
        first: crate::pipeline::exchange::FirstLine,
    ) -> crate::pipeline::exchange::Judge<'a> {
        crate::pipeline::exchange::Judge {
            first,
            head,
            revision,
            strongest_block: active.and_then(|a| a.rs.strongest_block),
            policy: &self.cfg.fail_policy,
            fail_open: self.cfg.fail_open,
            forwards: self.upstream.is_some(),
            pseudo: &self.journal.pseudo,
            label,
        }
    }

    /// The last failed update's message, if any.
    pub fn last_error(&self) -> Option<String> {
        self.reload.status().last_error.map(|e| e.error)
    }
}

/// Reads the body, refusing more than `body_limit` bytes before buffering them; a body that has not
/// arrived by the deadline [`body_deadline`] set is [`ParseError::BodyTimeout`].
/// (`timeout_ms` names the deadline in the answer).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout_ms: u64,
) -> Result<Bytes, ParseError> {
    if let Some(len) =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ParseError::TooLarge(limit));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ParseError::BodyTimeout(timeout_ms),
            e => ParseError::Body(e.to_string()),
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(ParseError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Bounds the time a request's body may take to arrive (`client_body_timeout_ms`, from the moment
/// its head was read): past it, the payload stream ends with a `TimedOut` error, which
/// [`read_body`] answers 408 in the envelope, and any other reader sees as a failed body. actix's
/// own `client_request_timeout` covers the head only; a body stalled half-way (or a chunked one
/// that never sends its last chunk) would otherwise hold its connection for ever. A request without
/// a body is left as it is (no allocation).
pub fn body_deadline(req: &mut actix_web::dev::ServiceRequest, limit: std::time::Duration) {
    let h = req.headers();
    if !h.contains_key(actix_web::http::header::CONTENT_LENGTH)
        && !h.contains_key(actix_web::http::header::TRANSFER_ENCODING)
    {
        return;
    }
    let deadline = tokio::time::Instant::now() + limit;
    let conn = req.conn_data::<Arc<guard::ConnSlot>>().cloned();
    let inner = actix_web::HttpMessage::take_payload(req);
    let stream = futures_util::stream::unfold(Some(inner), move |state| {
        let conn = conn.clone();
        async move {
            let mut p = state?;
            match tokio::time::timeout_at(deadline, p.next()).await {
                Ok(Some(item)) => Some((item, Some(p))),
                Ok(None) => None,
                Err(_) => {
                    metrics::REFUSED.with_label_values(&["body_timeout"]).inc();
                    if let Some(c) = &conn {
                        c.stop_reading();
                    }
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body deadline passed");
                    Some((Err(PayloadError::Io(e)), None))
                }
            }
        }
    });
    let boxed: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    req.set_payload(actix_web::dev::Payload::from(boxed));
}

pub(crate) fn with_headers(mut r: HttpResponse, decision: &str, ruleset: &str) -> HttpResponse {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(decision) {
        h.insert(HeaderName::from_static("x-claimgate-decision"), v);
    }
    if let Ok(v) = HeaderValue::from_str(ruleset) {
        h.insert(HeaderName::from_static("x-claimgate-ruleset"), v);
    }
    r
}

pub(crate) fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The operators' warning when no 医保目录对照 is configured (`/readyz`, the log at start).
pub const CATALOGUE_UNSET: &str = "item_catalogue is not set: items that no rule pack names appear by their codes in \
     messages (set item_catalogue to the HIS's 医保目录对照 export)";

async fn readyz(st: web::Data<State>) -> HttpResponse {
    let status = st.reload.status();
    let last_error =
        status.last_error.as_ref().map(|e| serde_json::json!({"at": e.at, "stage": e.stage, "error": e.error}));
    // Ready, but said where an operator looks: an unset tier leaves 限医疗机构级别 unchecked on every
    // 2204/2301 that carries no medins_lv; without the hospital's catalogue, an item no pack names
    // is shown by its code (a fee upload carries codes only).
    let mut warnings: Vec<&str> = Vec::new();
    if st.cfg.tier().is_none() {
        warnings.push("institution_tier is not set: 限医疗机构级别 is unchecked on fee uploads (set institution_tier)");
    }
    if st.cfg.item_catalogue.is_none() {
        warnings.push(CATALOGUE_UNSET);
    }
    match st.rules.load_full() {
        Some(a) => HttpResponse::Ok().json(serde_json::json!({
            "ready": true, "ruleset": a.rs.revision(), "last_update_failed": status.last_update_failed, "last_error": last_error,
            "warnings": warnings
        })),
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ready": false, "reason": "no rule set is active", "last_update_failed": status.last_update_failed, "last_error": last_error
        })),
    }
}

async fn metrics_route(st: web::Data<State>) -> HttpResponse {
    metrics::READY.set(i64::from(st.rules.load().is_some()));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics::render())
}

/// What an admin route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reading state: `GET /admin/v1/ruleset`, stats, journal, the shadow report, the office.
    Read,
    /// Changing it: push, rollback, shadow set/clear/promote.
    Write,
}

/// The routes: the intercepted gateway route at `proxy_path` (and per transaction), the check API,
/// the CDS Hooks service (under `cds.base_path`, with its own CORS), health, metrics, admin and the
/// office.
pub fn routes(app: &mut web::ServiceConfig, proxy_path: &str, cds_cfg: &crate::config::CdsConfig) {
    cds::routes(app, cds_cfg);
    app
        // The proxy route reads its own body (size-limited, answered in the envelope).
        .route(proxy_path, web::post().to(proxy::proxy))
        .route("/fsi/api/rsfComIfsService/callService/{infno}", web::post().to(proxy::proxy))
        // Any other method on the claim routes: an envelope the HIS can show, not an empty 404.
        .route(proxy_path, web::route().to(check::not_post))
        .route("/fsi/api/rsfComIfsService/callService/{infno}", web::route().to(check::not_post))
        .route("/v1/check", web::post().to(check::check))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_route))
        .route("/admin/v1/ruleset", web::get().to(admin::ruleset))
        // The push route reads its own body (bounded by bundles.max_bundle_bytes).
        .route("/admin/v1/ruleset", web::put().to(admin::push))
        .route("/admin/v1/ruleset/rollback", web::post().to(admin::rollback))
        .route("/admin/v1/shadow", web::put().to(admin::shadow_set))
        .route("/admin/v1/shadow", web::get().to(admin::shadow_report))
        .route("/admin/v1/shadow", web::delete().to(admin::shadow_clear))
        .route("/admin/v1/shadow/promote", web::post().to(admin::shadow_promote))
        // The office: /admin/v1/stats, /admin/v1/journal and the /office pages.
        .configure(office::routes);
}

/// Constant-time comparison; empty never matches.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0 && !a.is_empty()
}

/// The scope a presented token grants (`None`: neither token). Both tokens are always compared.
pub(crate) fn token_scope(given: &[u8], cfg: &Config) -> Option<Scope> {
    let write = cfg.admin_token.as_deref().is_some_and(|t| ct_eq(given, t.as_bytes()));
    let read = cfg.admin_read_token.as_deref().is_some_and(|t| ct_eq(given, t.as_bytes()));
    if write {
        Some(Scope::Write)
    } else if read {
        Some(Scope::Read)
    } else {
        None
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110
/// §11.1), so `bearer` and `BEARER` are read too.
pub(super) fn bearer(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks the bearer token for `need`; admin is refused outright when no token is set for it
/// (the write token also reads). The token is never logged.
pub(crate) fn authorized(req: &HttpRequest, st: &State, need: Scope) -> Result<(), Box<HttpResponse>> {
    let configured = match need {
        Scope::Read => st.cfg.admin_token.is_some() || st.cfg.admin_read_token.is_some(),
        Scope::Write => st.cfg.admin_token.is_some(),
    };
    if !configured {
        return Err(Box::new(ApiFailure::AdminDisabled.respond()));
    }
    let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(bearer).unwrap_or("");
    match token_scope(given.as_bytes(), &st.cfg) {
        Some(Scope::Write) => Ok(()),
        Some(Scope::Read) if need == Scope::Read => Ok(()),
        Some(Scope::Read) => Err(Box::new(ApiFailure::ReadOnly.respond())),
        None => Err(Box::new(ApiFailure::WrongToken.respond())),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }
}
