//! Every answer claimgate writes itself, in the gateway's own envelope. One place maps each failure
//! class to what the HIS receives:
//!
//! | source | HTTP | envelope |
//! |---|---|---|
//! | HIS (bad input) | 200 (413 when too large) | `infcode -1`, `err_msg` names the field |
//! | rule block | 200 | `infcode -1`, `err_msg` has the hit messages |
//! | gateway (down, slow, garbage) | 502 / 504 | `infcode -1`, `err_msg` says which, with the elapsed time |
//! | internal | 500 / 503 | `infcode -1`, logged |

use crate::wire::OwnResponse;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(1);

/// `inf_refmsgid`: 接收方医保区划(6) + time(14) + serial(10).
pub fn refmsgid(admdvs: &str) -> String {
    let area = if admdvs.len() == 6 && admdvs.bytes().all(|b| b.is_ascii_digit()) { admdvs } else { "000000" };
    let n = SEQ.fetch_add(1, Ordering::Relaxed) % 10_000_000_000;
    format!("{area}{}{n:010}", chrono::Local::now().format("%Y%m%d%H%M%S"))
}

/// Builds an envelope answer.
pub fn envelope(
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

pub fn error(status: StatusCode, admdvs: &str, msg: &str) -> HttpResponse {
    envelope(status, admdvs, -1, Some(msg), None, serde_json::json!({}))
}

pub fn bad_input(admdvs: &str, e: &crate::wire::ParseError) -> HttpResponse {
    let status =
        if matches!(e, crate::wire::ParseError::TooLarge(_)) { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::OK };
    error(status, admdvs, &format!("claimgate: 报文无法处理：{e}"))
}
