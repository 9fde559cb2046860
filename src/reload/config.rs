//! The `bundles:` section of the configuration (a section of its own so `config.rs` only embeds it;
//! its environment variables are read there, with the others).

use super::verify::Limits;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundleConfig {
    /// Public keys whose signatures are trusted: a key file's path or the key inline
    /// (`ed25519-public:…`). Empty: bundles are refused, only local packs run.
    pub trusted_keys: Vec<String>,
    /// The bureau's bundle URL, polled with `If-None-Match`. Absent: push only.
    pub url: Option<String>,
    /// Seconds between polls (±20 % jitter); failures back off exponentially up to 32× this.
    pub poll_interval_secs: u64,
    /// Long polling: ask the bureau to hold each poll up to this many seconds until a new bundle
    /// exists (`Prefer: wait=N`); when it does (`Preference-Applied: wait`), the next poll follows
    /// at once instead of after the interval. 0: plain polling.
    pub long_poll_secs: u64,
    /// Seconds between digests of the local rule folders (a change reloads them); 0 turns it off.
    pub watch_interval_secs: u64,
    /// The bundle file as received.
    pub max_bundle_bytes: u64,
    /// Everything the bundle decompresses to (against gzip bombs).
    pub max_unpacked_bytes: u64,
    /// One file in the bundle.
    pub max_file_bytes: u64,
}

impl Default for BundleConfig {
    fn default() -> Self {
        let l = Limits::default();
        BundleConfig {
            trusted_keys: Vec::new(),
            url: None,
            poll_interval_secs: 60,
            long_poll_secs: 0,
            watch_interval_secs: 5,
            max_bundle_bytes: l.max_bundle_bytes,
            max_unpacked_bytes: l.max_unpacked_bytes,
            max_file_bytes: l.max_file_bytes,
        }
    }
}

impl BundleConfig {
    /// Bundles are accepted only when some key is trusted.
    pub fn enabled(&self) -> bool {
        !self.trusted_keys.is_empty()
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_bundle_bytes: self.max_bundle_bytes,
            max_unpacked_bytes: self.max_unpacked_bytes,
            max_file_bytes: self.max_file_bytes,
            ..Limits::default()
        }
    }

    /// # Errors
    /// A value that cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(u) = &self.url {
            // This build's HTTP client has no TLS: a TLS-terminating proxy goes in front (signatures, not
            // the transport, are what make a bundle trusted).
            anyhow::ensure!(
                u.starts_with("http://") || u.starts_with("https://"),
                "bundles.url must be an http(s) URL: {u}"
            );
            anyhow::ensure!(self.enabled(), "bundles.url is set but bundles.trusted_keys is empty");
        }
        anyhow::ensure!(self.poll_interval_secs >= 1, "bundles.poll_interval_secs must be at least 1");
        anyhow::ensure!(self.long_poll_secs <= 3600, "bundles.long_poll_secs must be at most 3600");
        anyhow::ensure!(
            self.max_file_bytes <= self.max_unpacked_bytes,
            "bundles.max_file_bytes exceeds max_unpacked_bytes"
        );
        for k in &self.trusted_keys {
            super::bundle::load_public(k).map_err(|e| anyhow::anyhow!("bundles.trusted_keys: {e}"))?;
        }
        Ok(())
    }
}
