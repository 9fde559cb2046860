//! The client to the settlement gateway: one connection pool, connect and whole-call timeouts,
//! every failure classified.

use crate::telemetry::metrics;
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
    #[error("医保网关应答过大（超过{limit}字节，耗时{ms}毫秒）")]
    TooLarge { limit: usize, ms: u128 },
}

impl UpstreamError {
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Io { .. } => "io",
            UpstreamError::Garbage { .. } => "garbage",
            UpstreamError::TooLarge { .. } => "too_large",
        }
    }
}

pub struct Upstream {
    client: reqwest::Client,
    url: String,
    /// Largest answer read; the rest is never buffered.
    max_answer: usize,
}

/// How to reach the gateway.
pub struct Options<'a> {
    pub url: &'a str,
    pub connect_ms: u64,
    pub total_ms: u64,
    /// PEM CA certificates for an `https://` gateway; when given, the only ones trusted.
    pub ca_pem: Option<&'a [u8]>,
    pub max_answer: usize,
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
    /// The client cannot be built, or the CA file holds no usable certificate.
    pub fn new(o: &Options<'_>) -> anyhow::Result<Upstream> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(o.url.starts_with("https://"))
            .connect_timeout(Duration::from_millis(o.connect_ms))
            .timeout(Duration::from_millis(o.total_ms))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true);
        if let Some(pem) = o.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| anyhow::anyhow!("upstream_ca_file: not PEM certificates: {e}"))?;
            anyhow::ensure!(!certs.is_empty(), "upstream_ca_file: no certificate in the file");
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Upstream { client: b.build()?, url: o.url.to_owned(), max_answer: o.max_answer })
    }

    /// Sends a HIS request's bytes with the headers that may leave ([`super::guard::forwarded_headers`])
    /// and reads the answer: timed and counted under `label`, with its envelope when it is a
    /// readable JSON one. An answer that is neither encoded nor JSON is [`UpstreamError::Garbage`].
    ///
    /// # Errors
    /// The gateway failed (counted and logged here).
    pub async fn exchange(
        &self,
        headers: &[(String, Vec<u8>)],
        infno: &str,
        body: Bytes,
        label: &'static str,
    ) -> Result<(Answer, Option<crate::wire::ResponseEnvelope>), UpstreamError> {
        let t0 = Instant::now();
        let result = self.call(infno, headers, body).await;
        metrics::UPSTREAM_SECONDS.with_label_values(&[label]).observe(t0.elapsed().as_secs_f64());
        let answer = result.inspect_err(|e| {
            metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
            tracing::warn!(infno = label, kind = e.kind(), error = %e, "gateway call failed");
        })?;
        let encoded = answer.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-encoding"));
        let parsed = if encoded { None } else { serde_json::from_slice(&answer.body).ok() };
        if !encoded && parsed.is_none() {
            let ms = t0.elapsed().as_millis();
            let e = UpstreamError::Garbage { status: answer.status, len: answer.body.len(), ms };
            metrics::UPSTREAM_ERRORS.with_label_values(&[e.kind()]).inc();
            return Err(e);
        }
        Ok((answer, parsed))
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
        if resp.content_length().is_some_and(|n| n > self.max_answer as u64) {
            return Err(UpstreamError::TooLarge { limit: self.max_answer, ms: ms() });
        }
        let mut body = bytes::BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| classify(&e, ms()))?;
            if body.len() + chunk.len() > self.max_answer {
                return Err(UpstreamError::TooLarge { limit: self.max_answer, ms: ms() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body: body.freeze() })
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
