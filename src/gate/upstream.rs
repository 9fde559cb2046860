//! The client to the settlement gateway: one connection pool, connect and whole-call timeouts,
//! every failure classified.

use bytes::Bytes;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("医保网关连接失败（{detail}，耗时{ms}毫秒）")]
    Connect { detail: String, ms: u128 },
    #[error("医保网关响应超时（耗时{ms}毫秒）")]
    Timeout { ms: u128 },
    #[error("医保网关连接中断（{detail}，耗时{ms}毫秒）")]
    Io { detail: String, ms: u128 },
    #[error("医保网关返回无法解析的应答（HTTP {status}，{len}字节，耗时{ms}毫秒）")]
    Garbage { status: u16, len: usize, ms: u128 },
}

impl UpstreamError {
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Io { .. } => "io",
            UpstreamError::Garbage { .. } => "garbage",
        }
    }
}

pub struct Upstream {
    client: reqwest::Client,
    url: String,
}

/// What the gateway answered.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the client library sets itself.
pub fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

impl Upstream {
    /// # Errors
    /// The client cannot be built.
    pub fn new(url: &str, connect_ms: u64, total_ms: u64) -> anyhow::Result<Upstream> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(connect_ms))
            .timeout(Duration::from_millis(total_ms))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(Upstream { client, url: url.to_owned() })
    }

    /// Sends `body` byte for byte with the caller's end-to-end headers.
    ///
    /// # Errors
    /// [`UpstreamError`], classified, with the elapsed time.
    pub async fn call(&self, infno: &str, headers: &[(String, Vec<u8>)], body: Bytes) -> Result<Answer, UpstreamError> {
        let t0 = Instant::now();
        let url = self.url.replace("{infno}", infno);
        let mut rb = self.client.post(url);
        for (k, v) in headers {
            if let (Ok(n), Ok(v)) =
                (reqwest::header::HeaderName::from_bytes(k.as_bytes()), reqwest::header::HeaderValue::from_bytes(v))
            {
                rb = rb.header(n, v);
            }
        }
        let ms = || t0.elapsed().as_millis();
        let resp = rb.body(body).send().await.map_err(|e| classify(&e, ms()))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(k, _)| !is_hop_by_hop(k.as_str()))
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let body = resp.bytes().await.map_err(|e| classify(&e, ms()))?;
        Ok(Answer { status, headers, body })
    }
}

fn classify(e: &reqwest::Error, ms: u128) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout { ms }
    } else if e.is_connect() {
        UpstreamError::Connect { detail: root(e), ms }
    } else {
        UpstreamError::Io { detail: root(e), ms }
    }
}

fn root(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}
