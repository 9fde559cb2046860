//! Pulling bundles from the bureau: `GET url` with `If-None-Match` (a 304 costs nothing), the body
//! read within the bundle size limit, then verify and activate on a blocking thread. The poller
//! waits a jittered interval between polls and backs off exponentially on failures. With
//! `long_poll_secs`, each poll asks the bureau to hold it until something changes (`Prefer: wait=N`,
//! RFC 7240, as OPA's bundle service does); a bureau that honours it (`Preference-Applied`) is polled
//! again at once.

use super::activate::{Origin, Outcome, Reloader};
use super::error::ActivateError;
use std::sync::Arc;
use std::time::Duration;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// 304: the bureau has nothing newer than our ETag.
    NotModified,
    /// A bundle came that is the one already running.
    Unchanged,
    /// A new bundle was activated; its revision.
    Activated(String),
}

/// Fetches the configured URL once and activates what it returns.
///
/// # Errors
/// The fetch failed or the bundle was refused (recorded and counted either way).
pub async fn pull_once(r: &Arc<Reloader>, client: &reqwest::Client) -> Result<PullOutcome, ActivateError> {
    let fetched = fetch(r, client).await;
    let (bytes, etag) = match fetched {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(PullOutcome::NotModified),
        Err(e) => {
            r.fail(Origin::Pull, &e);
            return Err(e);
        }
    };
    let rr = r.clone();
    let mut remembered = r.etag.lock().await;
    let outcome = tokio::task::spawn_blocking(move || rr.activate_bundle(bytes, Origin::Pull))
        .await
        .map_err(|e| ActivateError::Fetch(format!("activation task: {e}")))?;
    // Remember the ETag only for a bundle we took (or already run), so a refused one is fetched
    // again after the bureau fixes it under the same tag or not.
    let outcome = outcome?;
    *remembered = etag;
    drop(remembered);
    Ok(match outcome {
        Outcome::Activated(a) => PullOutcome::Activated(a.rs.revision()),
        Outcome::Unchanged => PullOutcome::Unchanged,
    })
}

/// `Ok(None)` on 304; otherwise the body and its ETag.
async fn fetch(r: &Reloader, client: &reqwest::Client) -> Result<Option<(Vec<u8>, Option<String>)>, ActivateError> {
    let Some(url) = r.config().url.clone() else {
        return Err(ActivateError::Fetch("no bundles.url configured".into()));
    };
    let limit = r.config().max_bundle_bytes;
    let etag = r.etag.lock().await.clone();
    let mut rb = client.get(&url);
    if let Some(t) = &etag {
        rb = rb.header(reqwest::header::IF_NONE_MATCH, t);
    }
    let wait = r.config().long_poll_secs;
    if wait > 0 {
        rb = rb.header("prefer", format!("wait={wait}")).timeout(Duration::from_secs(wait + 30));
    }
    let mut resp = rb.send().await.map_err(|e| ActivateError::Fetch(format!("GET {url}: {e}")))?;
    let honoured = wait > 0
        && resp.headers().get("preference-applied").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("wait"));
    r.long_polled.store(honoured, std::sync::atomic::Ordering::Relaxed);
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(ActivateError::Fetch(format!("GET {url}: HTTP {status}")));
    }
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(ActivateError::Fetch(format!("GET {url}: bundle larger than {limit} bytes")));
    }
    let new_etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ActivateError::Fetch(format!("GET {url}: {e}")))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ActivateError::Fetch(format!("GET {url}: bundle larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some((body, new_etag)))
}

/// A random factor in [0.8, 1.2): polls from many hospitals do not arrive in step.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 4];
    let x = if getrandom::getrandom(&mut b).is_ok() { u32::from_le_bytes(b) } else { u32::MAX / 2 };
    d.mul_f64(0.8 + 0.4 * f64::from(x) / f64::from(u32::MAX))
}

/// The wait before the next poll after `failures` consecutive failures.
pub fn next_delay(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    // Start retrying soon (at most 5 s), double each time, never wait more than 32 intervals.
    let first = interval.min(Duration::from_secs(5));
    first.saturating_mul(1u32 << (failures - 1).min(16)).min(interval.saturating_mul(32))
}

/// Polls forever on the current runtime (first poll at once).
pub fn spawn_poller(r: Arc<Reloader>) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            r.fail(Origin::Pull, &ActivateError::Fetch(format!("http client: {e}")));
            return;
        }
    };
    let interval = Duration::from_secs(r.config().poll_interval_secs.max(1));
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            match pull_once(&r, &client).await {
                Ok(o) => {
                    tracing::debug!(outcome = ?o, "bundle poll");
                    failures = 0;
                }
                Err(_) => failures = failures.saturating_add(1),
            }
            let long_polled = r.long_polled.load(std::sync::atomic::Ordering::Relaxed);
            // After a long poll the bureau already waited; a floor of a second keeps a bureau that
            // claims long polling but answers at once from being hammered.
            let delay =
                if failures == 0 && long_polled { Duration::from_secs(1) } else { next_delay(interval, failures) };
            tokio::time::sleep(jitter(delay)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_up_to_32_intervals() {
        let i = Duration::from_secs(60);
        assert_eq!(next_delay(i, 0), i);
        assert_eq!(next_delay(i, 1), Duration::from_secs(5));
        assert_eq!(next_delay(i, 2), Duration::from_secs(10));
        assert_eq!(next_delay(i, 5), Duration::from_secs(80));
        assert_eq!(next_delay(i, 30), Duration::from_secs(60 * 32));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(80) && d < Duration::from_secs(120), "{d:?}");
        }
    }
}
