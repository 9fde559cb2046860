//! Every answer claimgate writes itself, in the gateway's own envelope. One place maps each failure
//! class to what the HIS receives:
//!
//! | source | HTTP | envelope |
//! |---|---|---|
//! | HIS (bad input) | 200 (413 when too large, 408 when its body stalls) | `infcode -1`, `err_msg` names the field |
//! | HIS (not HTTP/1.1 claimgate can frame) | 400 / 408 / 431, connection closed | `infcode -1` (written by [`super::conn`] in place of actix's empty answer) |
//! | rule block | 200 | `infcode -1`, `err_msg` has the hit messages |
//! | gateway (down, slow, garbage) | 502 / 504 | `infcode -1`, `err_msg` says which, with the elapsed time |
//! | internal | 500 / 503 | `infcode -1`, logged |
//!
//! The JSON routes (`/v1/check`, the admin API, the office's API) answer `{"error": …}` with the
//! status [`ApiFailure`] picks. No other file in `gate` chooses a status for a failure.

use super::upstream::UpstreamError;
use crate::reload::ActivateError;
use crate::wire::{OwnResponse, ParseError};
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(1);

/// `inf_refmsgid`: 接收方医保区划(6) + time(14) + serial(10).
pub fn refmsgid(admdvs: &str) -> String {
    let area = if admdvs.len() == 6 && admdvs.bytes().all(|b| b.is_ascii_digit()) { admdvs } else { "000000" };
    let n = SEQ.fetch_add(1, Ordering::Relaxed) % 10_000_000_000;
    format!("{area}{}{n:010}", chrono::Local::now().format("%Y%m%d%H%M%S"))
}

/// Builds an envelope answer.
fn envelope(
    status: StatusCode,
    admdvs: &str,
    infcode: i32,
    err_msg: Option<&str>,
    warn_msg: Option<&str>,
    output: serde_json::Value,
) -> HttpResponse {
    let now = chrono::Local::now().format("%Y%m%d%H%M%S%3f").to_string();
    let id = refmsgid(admdvs);
    let body =
        OwnResponse { infcode, inf_refmsgid: &id, refmsg_time: &now, respond_time: &now, err_msg, warn_msg, output };
    HttpResponse::build(status)
        .content_type("application/json;charset=utf-8")
        .body(serde_json::to_vec(&body).unwrap_or_default())
}

/// The answer to a message claimgate handled itself (`infcode 0`, 200), with reminders as `warn_msg`.
pub fn answer(admdvs: &str, warn_msg: Option<&str>, output: serde_json::Value) -> HttpResponse {
    envelope(StatusCode::OK, admdvs, 0, None, warn_msg, output)
}

/// A blocked claim (`infcode -1`, 200): the block messages as `err_msg`, reminders as `warn_msg`.
pub fn blocked(admdvs: &str, err_msg: &str, warn_msg: Option<&str>, output: serde_json::Value) -> HttpResponse {
    envelope(StatusCode::OK, admdvs, -1, Some(err_msg), warn_msg, output)
}

fn error(status: StatusCode, admdvs: &str, msg: &str) -> HttpResponse {
    envelope(status, admdvs, -1, Some(msg), None, serde_json::json!({}))
}

/// A failure on the routes that answer in the gateway's envelope (the intercepted route), by where
/// it comes from; [`Failure::respond`] is the only place that picks its status and message.
#[derive(Debug)]
pub enum Failure<'a> {
    // The HIS (downstream).
    /// The message cannot be read (413 when too large, else 200).
    BadInput(&'a ParseError),
    /// Client keys are configured and the request carries none (401).
    NoKey,
    /// The request's client key is not registered (403).
    BadKey,
    /// The client is over its rate limit (429, `Retry-After: 1`).
    RateLimited { per_second: u32 },
    /// The client's address has `max_connections_per_client` connections open already (503).
    TooManyConnections { per_client: u32 },
    /// A 3103 answer continues without a reason (200; the index of the warning).
    MissingReason(usize),
    /// 3103 answers that cannot take effect (unknown or expired `jr_id`, a non-overridable block), with
    /// what to do (200, infcode -1).
    FeedbackRefused(&'a str),
    /// A transaction claimgate answers itself but does not support (200).
    Unsupported,
    /// The claim route was called with another method than POST (405, `Allow: POST`).
    NotPost,
    /// The request cannot be framed as HTTP/1.1 (400): Content-Length with Transfer-Encoding, a
    /// negative or doubled Content-Length, bytes that are not HTTP.
    Framing,
    /// The request head is over actix's size limit (431).
    HeadTooLarge,
    /// The request head was not sent within `client_request_timeout_ms` (408).
    HeadTimeout { ms: u64 },
    // The gateway (upstream).
    /// No gateway is configured (check-only mode) and the message must be forwarded (502).
    NoUpstream,
    /// The gateway is down, slow (504), or answered garbage (502).
    Upstream(&'a UpstreamError),
    // claimgate itself (internal).
    /// No rule set is active: 3101/3102 cannot be answered (503).
    NotReady,
    /// No rule set is active and the fail policy is closed: a claim is refused (503).
    NotReadyClosed,
    /// A check failed and the fail policy refuses the claim: the time budget ran out or a kind
    /// panicked (500).
    CheckFailed { budget: bool },
    /// A local analysis panicked (500).
    Internal,
    /// Another settlement of the same person held its turn past the wait (409, `Retry-After: 1`).
    Busy,
}

impl Failure<'_> {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadInput(ParseError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::BadInput(ParseError::BodyTimeout(_)) => StatusCode::REQUEST_TIMEOUT,
            Failure::BadInput(_) | Failure::MissingReason(_) | Failure::FeedbackRefused(_) | Failure::Unsupported => {
                StatusCode::OK
            }
            Failure::NoKey => StatusCode::UNAUTHORIZED,
            Failure::NotPost => StatusCode::METHOD_NOT_ALLOWED,
            Failure::Framing => StatusCode::BAD_REQUEST,
            Failure::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Failure::HeadTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Failure::BadKey => StatusCode::FORBIDDEN,
            Failure::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Failure::Busy => StatusCode::CONFLICT,
            Failure::NoUpstream => StatusCode::BAD_GATEWAY,
            Failure::Upstream(e) if e.kind() == "timeout" => StatusCode::GATEWAY_TIMEOUT,
            Failure::Upstream(_) => StatusCode::BAD_GATEWAY,
            Failure::NotReady | Failure::NotReadyClosed | Failure::TooManyConnections { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::CheckFailed { .. } | Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> Cow<'static, str> {
        match self {
            Failure::BadInput(e) => format!("claimgate: 报文无法处理：{}（{e}）", e.reason_zh()).into(),
            Failure::NoKey => "claimgate: 客户端未认证（请求缺少 x-claimgate-key），请联系信息科配置接口密钥".into(),
            Failure::BadKey => "claimgate: 客户端密钥无效（x-claimgate-key 未登记），请联系信息科".into(),
            Failure::RateLimited { per_second } => {
                format!("claimgate: 请求过于频繁（每个客户端每秒最多{per_second}笔），请稍后重试").into()
            }
            Failure::TooManyConnections { per_client } => {
                format!("claimgate: 该客户端同时打开的连接过多（每个客户端最多{per_client}个），请稍后重试").into()
            }
            Failure::MissingReason(i) => {
                format!("claimgate: input.data.warns[{i}].dspo_way_rea: 继续执行医嘱时必须填写理由").into()
            }
            Failure::FeedbackRefused(why) => format!("claimgate: 3103反馈未生效：{why}").into(),
            Failure::Unsupported => "claimgate: 不支持的交易".into(),
            Failure::NotPost => "claimgate: 医保交易接口只接受POST请求（请求体为JSON交易报文）".into(),
            Failure::Framing => {
                "claimgate: 请求无法按HTTP/1.1读取（Content-Length与Transfer-Encoding并存、长度为负数或重复，\
                                 或不是HTTP报文），未处理，连接已关闭；请检查HIS接口程序"
                    .into()
            }
            Failure::HeadTooLarge => "claimgate: 请求头过大，未处理，连接已关闭；请检查HIS接口程序".into(),
            Failure::HeadTimeout { ms } => format!("claimgate: 请求头未在{ms}毫秒内传完，未处理，连接已关闭").into(),
            Failure::NoUpstream => "claimgate: 未配置上游医保网关（仅审核模式），该交易无法转发".into(),
            Failure::Upstream(e) => format!("claimgate: {e}").into(),
            Failure::NotReady => "claimgate: 审核规则尚未就绪".into(),
            Failure::NotReadyClosed => "claimgate: 审核规则尚未就绪，暂停结算".into(),
            Failure::CheckFailed { budget: true } => "claimgate: 审核超时，已按配置暂停该笔结算，请稍后重试".into(),
            Failure::CheckFailed { budget: false } => {
                "claimgate: 审核内部错误，已按配置暂停该笔结算，请联系信息科".into()
            }
            Failure::Internal => "claimgate: 审核内部错误，请联系信息科".into(),
            Failure::Busy => "claimgate: 该参保人的另一笔结算正在处理，本笔未提交医保，请稍后重新结算".into(),
        }
    }

    /// The envelope the HIS receives (`infcode -1`), addressed from `admdvs`.
    pub fn respond(&self, admdvs: &str) -> HttpResponse {
        let mut r = error(self.status(), admdvs, &self.message());
        if matches!(self, Failure::RateLimited { .. } | Failure::Busy) {
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if matches!(self, Failure::NotPost) {
            r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        if matches!(self, Failure::BadInput(ParseError::BodyTimeout(_))) {
            // The rest of a stalled body may still come: the connection cannot carry another request.
            r.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        }
        r
    }
}

impl Failure<'_> {
    /// The refusal as the bytes of a whole HTTP/1.1 response that closes its connection: for a
    /// connection refused before actix serves it (no request read, so no `HttpResponse` to build).
    pub fn raw_http(&self) -> Vec<u8> {
        let now = chrono::Local::now().format("%Y%m%d%H%M%S%3f").to_string();
        let id = refmsgid("");
        let msg = self.message();
        let body = OwnResponse {
            infcode: -1,
            inf_refmsgid: &id,
            refmsg_time: &now,
            respond_time: &now,
            err_msg: Some(&msg),
            warn_msg: None,
            output: serde_json::json!({}),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let status = self.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json;charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

/// A failure on the JSON routes (`/v1/check`, the admin API, the office's API): a status and
/// `{"error": …}`; [`ApiFailure::respond`] is the only place that picks the status.
#[derive(Debug)]
pub enum ApiFailure<'a> {
    /// The caller's request cannot be used (400).
    BadRequest(String),
    /// The body is larger than allowed (413).
    TooLarge(String),
    /// The body did not arrive within `client_body_timeout_ms` (408, connection closed).
    BodyTimeout(String),
    /// A pushed bundle is larger than `bundles.max_bundle_bytes` (413, stage `verify`).
    BundleTooLarge(u64),
    /// No rule set is active (503).
    NotReady,
    /// Nothing to show (404).
    NotFound(String),
    /// No admin token is configured (403).
    AdminDisabled,
    /// The read-only token asked for a change (403).
    ReadOnly,
    /// No or a wrong bearer token (401).
    WrongToken,
    /// A bundle, rollback or promotion refused by `reload` (403 disabled, 409 nothing to go back
    /// to, 500 not persisted, 422 otherwise), with the stage it failed at.
    Refused(&'a ActivateError),
    /// claimgate failed (500).
    Internal(String),
    /// A client without credentials, or with a JWT that does not verify (401, CDS Hooks).
    Unauthorized(String),
    /// A client key that is not registered (403, CDS Hooks).
    Forbidden(String),
    /// Over the client's rate (429, CDS Hooks).
    TooMany(String),
    /// Read, but cannot take effect (422: a CDS feedback the override store refuses).
    Unprocessable(String),
}

impl ApiFailure<'_> {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiFailure::TooLarge(_) | ApiFailure::BundleTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiFailure::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiFailure::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiFailure::NotFound(_) => StatusCode::NOT_FOUND,
            ApiFailure::AdminDisabled | ApiFailure::ReadOnly | ApiFailure::Refused(ActivateError::Disabled) => {
                StatusCode::FORBIDDEN
            }
            ApiFailure::WrongToken => StatusCode::UNAUTHORIZED,
            ApiFailure::Refused(ActivateError::Rollback(_) | ActivateError::NoCandidate) => StatusCode::CONFLICT,
            ApiFailure::Refused(ActivateError::Persist(_)) | ApiFailure::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiFailure::Refused(_) | ApiFailure::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiFailure::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiFailure::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiFailure::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn respond(&self) -> HttpResponse {
        let body = match self {
            ApiFailure::BadRequest(m)
            | ApiFailure::TooLarge(m)
            | ApiFailure::BodyTimeout(m)
            | ApiFailure::Internal(m)
            | ApiFailure::NotFound(m)
            | ApiFailure::Unauthorized(m)
            | ApiFailure::Forbidden(m)
            | ApiFailure::TooMany(m)
            | ApiFailure::Unprocessable(m) => serde_json::json!({"error": m}),
            ApiFailure::BundleTooLarge(limit) => {
                serde_json::json!({"error": format!("bundle larger than {limit} bytes"), "stage": "verify"})
            }
            ApiFailure::NotReady => serde_json::json!({"error": "no rule set is active"}),
            ApiFailure::AdminDisabled => serde_json::json!({"error": "admin API disabled: no admin token configured"}),
            ApiFailure::ReadOnly => {
                serde_json::json!({"error": "this token may only read; changes need the admin token"})
            }
            ApiFailure::WrongToken => serde_json::json!({"error": "missing or wrong bearer token"}),
            ApiFailure::Refused(e) => serde_json::json!({"error": e.to_string(), "stage": e.stage().as_str()}),
        };
        let mut r = HttpResponse::build(self.status()).json(body);
        if matches!(self, ApiFailure::BodyTimeout(_)) {
            r.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        }
        r
    }
}
