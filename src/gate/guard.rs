//! Who may send claims to claimgate, and how fast: HIS client keys (`x-claimgate-key`) and a token
//! bucket per client. Both run on the request head, before a byte of the body is read, and refuse
//! in the gateway's envelope so the HIS shows the reason as it shows any gateway error.
//!
//! Keys are kept only as SHA-256 digests and compared in constant time against every configured
//! client (no early exit); a key never reaches a log line, a metric or the gateway.

use super::rescue::Failure;
use crate::config::{Config, RateLimit};
use crate::telemetry::metrics;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The header a HIS client sends its key in. Stripped before forwarding.
pub const KEY_HEADER: &str = "x-claimgate-key";

/// Most clients tracked by the limiter before idle ones are forgotten (addresses without keys).
const MAX_TRACKED: usize = 10_000;

pub struct Guard {
    /// `(sha256(key), client name)`.
    keys: Vec<([u8; 32], Arc<str>)>,
    limiter: Option<Limiter>,
}

impl Guard {
    pub fn new(cfg: &Config) -> Guard {
        let keys = cfg.clients.iter().map(|c| (digest(c.key.as_bytes()), Arc::from(c.name.as_str()))).collect();
        let limiter = (cfg.rate_limit.per_second > 0).then(|| Limiter::new(cfg.rate_limit));
        Guard { keys, limiter }
    }

    /// Admits a request or gives the envelope refusal. The client is named by its key when keys
    /// are configured, else by its address.
    pub fn admit(&self, req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
        self.check(req).map(|_| ()).map_err(|r| {
            Box::new(
                match r {
                    Refusal::NoKey => Failure::NoKey,
                    Refusal::BadKey => Failure::BadKey,
                    Refusal::RateLimited { per_second } => Failure::RateLimited { per_second },
                }
                .respond(""),
            )
        })
    }

    /// Admits a request (the client's name) or says why not, for routes that answer in their own
    /// format (the CDS Hooks endpoints answer JSON). Counted and logged here.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn check(&self, req: &HttpRequest) -> Result<Arc<str>, Refusal> {
        let client: Arc<str> = if self.keys.is_empty() {
            Arc::from(req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default().as_str())
        } else {
            let Some(given) = req.headers().get(KEY_HEADER).map(|v| v.as_bytes()) else {
                metrics::REFUSED.with_label_values(&["no_key"]).inc();
                return Err(Refusal::NoKey);
            };
            match self.identify(given) {
                Some(name) => name,
                None => {
                    metrics::REFUSED.with_label_values(&["bad_key"]).inc();
                    tracing::warn!(peer = ?req.peer_addr(), "request with an unknown client key refused");
                    return Err(Refusal::BadKey);
                }
            }
        };
        if let Some(l) = &self.limiter {
            if !l.take(&client, Instant::now()) {
                metrics::REFUSED.with_label_values(&["rate"]).inc();
                tracing::warn!(client = %client, "request over the client's rate limit refused");
                return Err(Refusal::RateLimited { per_second: l.rate.per_second });
            }
        }
        Ok(client)
    }

    /// The client whose key this is, comparing against every key in constant time.
    fn identify(&self, given: &[u8]) -> Option<Arc<str>> {
        let d = digest(given);
        let mut found = None;
        for (k, name) in &self.keys {
            let mut diff = 0u8;
            for (a, b) in k.iter().zip(d.iter()) {
                diff |= a ^ b;
            }
            if diff == 0 {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// Why [`Guard::check`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoKey,
    BadKey,
    RateLimited { per_second: u32 },
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A token bucket per client.
struct Limiter {
    rate: RateLimit,
    /// A std `Mutex`: held for a map lookup and a few arithmetic operations, never across `.await`.
    buckets: Mutex<HashMap<Arc<str>, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Limiter {
    fn new(rate: RateLimit) -> Limiter {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `client` at `now`; `false` when its bucket is empty.
    fn take(&self, client: &Arc<str>, now: Instant) -> bool {
        let (per_sec, burst) = (f64::from(self.rate.per_second), f64::from(self.rate.burst.max(1)));
        let mut map = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_TRACKED && !map.contains_key(client) {
            // A bucket idle long enough to be full again carries no state worth keeping.
            let full_after = std::time::Duration::from_secs_f64(burst / per_sec);
            map.retain(|_, b| now.saturating_duration_since(b.last) < full_after);
        }
        let b = map.entry(client.clone()).or_insert(Bucket { tokens: burst, last: now });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * per_sec;
        b.tokens = (b.tokens + refill).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The HIS request's end-to-end headers, as they go to the gateway: never hop-by-hop ones, and
/// never the HIS's key, which is claimgate's own credential.
pub fn forwarded_headers(req: &HttpRequest) -> Vec<(String, Vec<u8>)> {
    req.headers()
        .iter()
        .filter(|(k, _)| !super::upstream::is_hop_by_hop(k.as_str()) && k.as_str() != KEY_HEADER)
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        // Arrange
        let l = Limiter::new(RateLimit { per_second: 10, burst: 3 });
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("his-a"), Arc::from("his-b"));
        let t0 = Instant::now();
        // Act / Assert: three at once, the fourth refused; another client is unaffected.
        assert!((0..3).all(|_| l.take(&a, t0)));
        assert!(!l.take(&a, t0));
        assert!(l.take(&b, t0));
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.take(&a, t1));
        assert!(!l.take(&a, t1));
    }

    #[test]
    fn keys_are_recognised_by_digest_and_unknown_ones_are_not() {
        let cfg = Config {
            clients: vec![
                crate::config::ClientKey { name: "his-outpatient".into(), key: "k-outpatient-0123456789".into() },
                crate::config::ClientKey { name: "his-inpatient".into(), key: "k-inpatient-0123456789".into() },
            ],
            ..Config::default()
        };
        let g = Guard::new(&cfg);
        assert_eq!(g.identify(b"k-inpatient-0123456789").as_deref(), Some("his-inpatient"));
        assert_eq!(g.identify(b"k-inpatient-012345678").as_deref(), None);
        assert_eq!(g.identify(b"").as_deref(), None);
    }
}

// === connections per client ===

/// Open connections per peer address, across every worker: a client over
/// `max_connections_per_client` has its new connection closed at once, so a flood of stalled
/// connections from one address cannot use up the process's file descriptors or starve others.
pub struct Conns {
    cap: u32,
    // A std Mutex: held for one map update, never across an await.
    open: Mutex<rustc_hash::FxHashMap<std::net::IpAddr, u32>>,
}

/// One open connection, counted until the connection (and so this, kept in its extensions) drops.
pub struct ConnSlot {
    conns: Arc<Conns>,
    ip: std::net::IpAddr,
    /// The connection's socket (a duplicate descriptor): a request whose body stalls past its
    /// deadline has its connection's reading side shut ([`ConnSlot::stop_reading`]).
    sock: Option<socket2::Socket>,
}

impl ConnSlot {
    /// Ends the connection's reading side: the worker sees the end of the stream, writes what it
    /// has to answer, and closes. actix would otherwise go on waiting for the rest of a stalled
    /// chunked body after its 408, holding the connection.
    pub fn stop_reading(&self) {
        if let Some(s) = &self.sock {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.conns.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Conns {
    pub fn new(cap: u32) -> Arc<Conns> {
        Arc::new(Conns { cap, open: Mutex::new(rustc_hash::FxHashMap::default()) })
    }

    /// Counts a new connection from `ip`; `None` (not counted) when the address is at its cap.
    pub fn open(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<ConnSlot> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ConnSlot { conns: self.clone(), ip, sock: None })
    }

    /// Connections open from `ip` now.
    pub fn count(&self, ip: std::net::IpAddr) -> u32 {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&ip).copied().unwrap_or(0)
    }

    /// Counts a new connection from `ip`, its peer's address, or refuses it: a 503 envelope
    /// written straight to a plain socket (a few hundred bytes into an empty send buffer; best
    /// effort), then both directions shut. Over TLS only the shutdown (no plain bytes inside a TLS
    /// session).
    pub fn admit(
        self: &Arc<Self>,
        tcp: &actix_web::rt::net::TcpStream,
        ip: std::net::IpAddr,
        plain: bool,
    ) -> Option<Arc<ConnSlot>> {
        use std::os::fd::AsFd;
        if let Some(mut slot) = self.open(ip) {
            slot.sock = tcp.as_fd().try_clone_to_owned().ok().map(socket2::Socket::from);
            return Some(Arc::new(slot));
        }
        metrics::REFUSED.with_label_values(&["client_connections"]).inc();
        let sock = socket2::SockRef::from(tcp);
        if plain {
            let _ = sock.send(&Failure::TooManyConnections { per_client: self.cap }.raw_http());
        }
        let _ = sock.shutdown(std::net::Shutdown::Both);
        None
    }
}

#[cfg(test)]
mod conns_tests {
    use super::*;

    #[test]
    fn an_address_at_its_cap_is_refused_until_one_of_its_connections_closes() {
        let conns = Conns::new(2);
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = conns.open(a).expect("first");
        let _second = conns.open(a).expect("second");
        assert!(conns.open(a).is_none(), "third over the cap");
        assert!(conns.open(b).is_some(), "another address is not affected");
        drop(first);
        assert_eq!(conns.count(a), 1);
        assert!(conns.open(a).is_some(), "a slot freed");
    }
}
