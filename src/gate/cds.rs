//! The CDS Hooks 2.0 endpoints over HTTP: discovery (`GET {base}`), a service call
//! (`POST {base}/{id}`) and feedback (`POST {base}/{id}/feedback`), under CORS for browser EHR
//! apps. What a call means is `crate::cds`'s; this file carries it.
//!
//! Who may call: the same client keys (`x-claimgate-key`) and rate limits as the claim route, and
//! the listener's mTLS when configured; when EHR public keys are configured (`cds.jwt_issuers`),
//! every service call and feedback must also carry the CDS Hooks JWT bearer (`iss` one of them,
//! signed with its key, `aud` this endpoint, not expired and expiring within five minutes, with a
//! `jti` not taken before from that issuer — the history store's `c_jti` keeps them, so a token
//! replayed to any instance sharing the store is refused). Refusals answer JSON.

use super::rescue::ApiFailure;
use super::{read_body, with_headers, State};
use crate::cds::{self, cards, replay::first_use, Env};
use crate::config::CdsConfig;
use crate::telemetry::metrics;
use crate::wire::cds::{CdsResponse, FeedbackRequest, HookRequest};
use crate::wire::ParseError;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Datelike;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// The EHRs whose JWTs are trusted: `(iss, key, algorithms the key can verify)`.
#[derive(Default)]
pub struct JwtKeys {
    issuers: Vec<(String, DecodingKey, Vec<Algorithm>)>,
}

/// CDS Hooks 2.0: a JWT's `exp` "SHALL be no more than five minutes in the future".
const MAX_LIFETIME_S: i64 = 300;
/// The clock skew `jsonwebtoken` allows on `exp` (its default `leeway`).
const LEEWAY_S: i64 = 60;

impl JwtKeys {
    /// Reads each configured issuer's PEM public key (RSA or EC).
    ///
    /// # Errors
    /// A key file that cannot be read or is neither an RSA nor an EC public key.
    pub fn load(cfg: &CdsConfig) -> anyhow::Result<JwtKeys> {
        let mut issuers = Vec::new();
        for i in &cfg.jwt_issuers {
            let pem = std::fs::read(&i.public_key)
                .map_err(|e| anyhow::anyhow!("cds.jwt_issuers {}: {}: {e}", i.iss, i.public_key.display()))?;
            let (key, algs) = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                (k, vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512])
            } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                (k, vec![Algorithm::ES256, Algorithm::ES384])
            } else {
                anyhow::bail!(
                    "cds.jwt_issuers {}: {}: not an RSA or EC public key (PEM)",
                    i.iss,
                    i.public_key.display()
                );
            };
            issuers.push((i.iss.clone(), key, algs));
        }
        Ok(JwtKeys { issuers })
    }

    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Verifies the bearer JWT for `audience`; the token's `(iss, jti, exp)` on success, for the
    /// store's check that its `jti` is taken once ([`first_use`]).
    ///
    /// # Errors
    /// Why the token is refused (for the 401 answer; the token itself is never logged).
    pub fn verify(&self, req: &HttpRequest, audience: &str) -> Result<(String, String, i64), &'static str> {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(super::bearer)
            .ok_or("缺少 CDS Hooks JWT（Authorization: Bearer）")?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| "JWT 格式错误")?;
        for (iss, key, algs) in &self.issuers {
            if !algs.contains(&header.alg) {
                continue;
            }
            let mut v = Validation::new(header.alg);
            v.set_issuer(&[iss]);
            v.set_audience(&[audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            if let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(token, key, &v) {
                let Some(jti) = data.claims.get("jti").and_then(|j| j.as_str()).filter(|j| !j.is_empty()) else {
                    return Err("JWT 缺少 jti");
                };
                let exp = data.claims.get("exp").and_then(serde_json::Value::as_i64).unwrap_or(i64::MAX);
                if exp > chrono::Utc::now().timestamp() + MAX_LIFETIME_S + LEEWAY_S {
                    return Err("JWT 有效期过长（exp 不得晚于签发后 5 分钟）");
                }
                return Ok((iss.clone(), jti.to_owned(), exp));
            }
        }
        Err("JWT 验证失败（签发方未登记、签名不符、aud 不是本服务地址或已过期）")
    }
}

/// The endpoint's URL as the client called it (the JWT's expected `aud` unless configured).
fn called_url(req: &HttpRequest) -> String {
    let c = req.connection_info();
    format!("{}://{}{}", c.scheme(), c.host(), req.path())
}

/// Keys, rate and (when configured) the JWT; a JSON refusal otherwise.
async fn admit(req: &HttpRequest, st: &State, jwt: bool) -> Result<(), Box<HttpResponse>> {
    use super::guard::Refusal;
    if let Err(r) = st.guard.check(req) {
        return Err(Box::new(
            match r {
                Refusal::NoKey => ApiFailure::Unauthorized("客户端未认证（请求缺少 x-claimgate-key）".into()),
                Refusal::BadKey => ApiFailure::Forbidden("客户端密钥无效（x-claimgate-key 未登记）".into()),
                Refusal::RateLimited { per_second } => {
                    ApiFailure::TooMany(format!("请求过于频繁（每秒最多{per_second}次），请稍后重试"))
                }
            }
            .respond(),
        ));
    }
    if jwt && st.cds_jwt.enabled() {
        let aud = st.cfg.cds.jwt_audience.clone().unwrap_or_else(|| called_url(req));
        let refused = |why: &str| {
            metrics::REFUSED.with_label_values(&["jwt"]).inc();
            tracing::warn!(peer = ?req.peer_addr(), "CDS call with a JWT that does not verify refused");
            Box::new(ApiFailure::Unauthorized(why.into()).respond())
        };
        let (iss, jti, exp) = st.cds_jwt.verify(req, &aud).map_err(refused)?;
        // Other instances sharing the store, and this one before a restart, may have taken it.
        let history = st.history.clone();
        let now = chrono::Utc::now().timestamp();
        let seen = tokio::task::spawn_blocking(move || {
            first_use(history.store(), &iss, &jti, exp, now, LEEWAY_S).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err("panicked".into()));
        match seen {
            Ok(true) => {}
            Ok(false) => return Err(refused(REPLAYED)),
            // Whether the token was used cannot be told: refused, as a check that could not run.
            Err(e) => {
                tracing::error!(error = %e, "CDS JWT replay check failed; call refused");
                return Err(Box::new(
                    ApiFailure::Internal("无法确认 JWT 是否已被使用（存储不可用），请稍后重试".into()).respond(),
                ));
            }
        }
    }
    Ok(())
}

/// A `jti` taken before (the store remembers it until its token has expired).
const REPLAYED: &str = "JWT 已被使用过（jti 重复），请为每次调用签发新的 JWT";

/// `GET {base}`: the services and their prefetch templates.
pub async fn discovery(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = admit(&req, &st, false).await {
        return *r;
    }
    HttpResponse::Ok().json(cds::discovery())
}

async fn body_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout_ms: u64,
) -> Result<T, HttpResponse> {
    let body = match read_body(req, payload, limit, timeout_ms).await {
        Ok(b) => b,
        Err(e @ ParseError::TooLarge(_)) => return Err(ApiFailure::TooLarge(e.to_string()).respond()),
        Err(e @ ParseError::BodyTimeout(_)) => return Err(ApiFailure::BodyTimeout(e.to_string()).respond()),
        Err(e) => return Err(ApiFailure::BadRequest(e.to_string()).respond()),
    };
    serde_json::from_slice(&body)
        .map_err(|e| ApiFailure::BadRequest(format!("请求不是有效的 CDS Hooks JSON：{e}")).respond())
}

/// A call to service `id`: the client admitted (keys, rate, JWT), the service found, its JSON body
/// read within the limits; or the answer refusing it.
async fn admitted<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    st: &State,
    id: &str,
) -> Result<(&'static str, T), HttpResponse> {
    admit(req, st, true).await.map_err(|r| *r)?;
    let hook = cds::hook_of(id).ok_or_else(|| ApiFailure::NotFound(format!("没有这个 CDS 服务：{id}")).respond())?;
    Ok((hook, body_json(req, payload, st.cfg.body_limit, st.cfg.client_body_timeout_ms).await?))
}

fn now_text() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `POST {base}/{id}`: the cards for the draft orders.
pub async fn call(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    st: web::Data<State>,
) -> HttpResponse {
    let (hook, hr) = match admitted::<HookRequest>(&req, payload, &st, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !hr.hook.is_empty() && hr.hook != hook {
        return ApiFailure::BadRequest(format!("服务 {id} 处理 {hook}，请求的 hook 是 {}", hr.hook)).respond();
    }
    let Some(active) = st.rules.load_full() else { return ApiFailure::NotReady.respond() };
    let t0 = std::time::Instant::now();
    let (st2, active2) = (st.clone(), active.clone());
    // History, the override store and the journal's read may do I/O: off the executor.
    let job = tokio::task::spawn_blocking(move || {
        let now = now_text();
        let env = Env {
            rs: &active2.rs,
            history: &st2.history,
            overrides: &st2.overrides,
            pseudo: &st2.journal.pseudo,
            fixmedins_code: &st2.cfg.cds.fixmedins_code,
            now: &now,
        };
        match cds::evaluate(&hr, hook, &env) {
            Ok(e) => {
                // The calendar year of the orders' service date (the call's own day when they give none).
                let day = e.claims.first().and_then(|c| c.lines.iter().map(|l| l.date()).max().or(c.day));
                let year = day.unwrap_or_else(|| chrono::Local::now().date_naive()).year();
                let standing = e.mapped.doctor.clone().map(|doctor| cards::Standing {
                    accrued: doctor_points(&st2, &doctor, year),
                    doctor,
                    year,
                });
                Ok((cards::cards(&active2.rs, &e, standing.as_ref()), Some(e)))
            }
            Err(n) => Err(cards::not_checked(&active2.rs, &n)),
        }
    });
    let rev = active.rs.revision();
    let (cards, evaluated) = match job.await {
        Ok(Ok(x)) => x,
        Ok(Err(cards)) => {
            metrics::REQUESTS.with_label_values(&["cds", "unchecked"]).inc();
            return with_headers(HttpResponse::Ok().json(CdsResponse { cards }), "unchecked", &rev);
        }
        Err(_) => return ApiFailure::Internal("CDS 服务检查失败".into()).respond(),
    };
    let mut hv = "pass";
    if let Some(mut e) = evaluated {
        crate::pipeline::exchange::count_hits(&e.answered.merged);
        hv = e.answered.merged.header_value();
        e.record.elapsed_us = t0.elapsed().as_micros() as u64;
        // Durable before the EHR hears of it: the cards carry the jr_ids a feedback answers.
        st.journal.record_acknowledged(e.record).await;
    }
    metrics::REQUESTS.with_label_values(&["cds", hv]).inc();
    with_headers(HttpResponse::Ok().json(CdsResponse { cards }), hv, &rev)
}

/// The doctor's points this calendar year, from the journal (`None`: it could not be read), through
/// the state's 30-second cache. Blocking.
pub(super) fn doctor_points(st: &State, doctor: &str, year: i32) -> Option<i64> {
    let key = (doctor.to_owned(), year);
    if let Some(p) = st.doctor_points.get(&key) {
        return Some(p);
    }
    let from = chrono::NaiveDate::from_ymd_opt(year, 1, 1)?;
    let to = chrono::NaiveDate::from_ymd_opt(year, 12, 31)?;
    match st.journal.read(|c| crate::journal::stats::doctor_points_between(c, doctor, from, to)) {
        Ok(p) => {
            st.doctor_points.insert(key, p);
            Some(p)
        }
        Err(e) => {
            tracing::warn!(error = %e, "a doctor's points could not be read from the journal");
            None
        }
    }
}

/// `POST {base}/{id}/feedback`: each answer stored as the 3103 answer to the card's `jr_id`.
pub async fn feedback(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    st: web::Data<State>,
) -> HttpResponse {
    use crate::pipeline::analysis::{self, Local, Refused};
    let fb: FeedbackRequest = match admitted(&req, payload, &st, &id).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let answers = match cds::feedback_answers(&fb.feedback) {
        Ok(a) => a,
        Err(e) => return ApiFailure::BadRequest(e.message()).respond(),
    };
    let Some(active) = st.rules.load_full() else { return ApiFailure::NotReady.respond() };
    let envelope = cds::feedback_envelope(&answers, &st.cfg.cds.fixmedins_code, &now_text());
    let st2 = st.clone();
    let job = tokio::task::spawn_blocking(move || {
        let head = crate::wire::parse_head(&envelope)?;
        analysis::local(&head, &active.rs, &st2.history, &st2.overrides)
    });
    let recorded = match job.await {
        Ok(Ok(Local::Feedback(r))) => r,
        Ok(Ok(_)) | Err(_) => return ApiFailure::Internal("CDS 反馈记录失败".into()).respond(),
        Ok(Err(e)) => return ApiFailure::BadRequest(e.to_string()).respond(),
    };
    for f in recorded.feedback {
        st.journal.feedback(f).await;
    }
    match recorded.outcome {
        Ok(()) => {
            metrics::REQUESTS.with_label_values(&["cds-feedback", "pass"]).inc();
            HttpResponse::Ok().json(serde_json::json!({}))
        }
        Err(Refused::MissingReason(i)) => {
            ApiFailure::BadRequest(format!("feedback[{i}]：继续执行须填写理由")).respond()
        }
        Err(Refused::Answers(why)) => ApiFailure::Unprocessable(why).respond(),
    }
}

/// CORS for browser EHR apps: the configured origins (any when none), the CDS methods and
/// headers, never credentials.
pub fn cors(cfg: &CdsConfig) -> actix_cors::Cors {
    let c = actix_cors::Cors::default()
        .allowed_methods(vec!["GET", "POST", "OPTIONS"])
        .allowed_headers(vec!["authorization", "content-type", super::guard::KEY_HEADER])
        .expose_headers(vec!["x-claimgate-decision", "x-claimgate-ruleset"])
        .max_age(3600);
    if cfg.cors_origins.is_empty() {
        c.allow_any_origin()
    } else {
        cfg.cors_origins.iter().fold(c, |c, o| c.allowed_origin(o))
    }
}

/// The CDS routes under the configured base path, behind CORS.
pub fn routes(app: &mut web::ServiceConfig, cfg: &CdsConfig) {
    if !cfg.enabled {
        return;
    }
    app.service(
        web::scope(&cfg.base_path)
            // CORS wraps the whole scope, so a browser's preflight (OPTIONS) is answered before any
            // handler runs, and every answer carries the CORS headers.
            .wrap(cors(cfg))
            .route("", web::get().to(discovery))
            .route("/", web::get().to(discovery))
            .route("/{id}", web::post().to(call))
            .route("/{id}/feedback", web::post().to(feedback)),
    );
}
