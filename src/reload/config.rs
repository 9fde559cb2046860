//! The `bundles:` section of the configuration (a section of its own so `config.rs` only embeds it).

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

    /// `CLAIMGATE_TRUSTED_KEYS` (comma-separated), `CLAIMGATE_BUNDLE_URL`, `CLAIMGATE_BUNDLE_POLL_SECS`,
    /// `CLAIMGATE_WATCH_SECS`.
    ///
    /// # Errors
    /// A number that does not parse.
    pub fn apply_env(&mut self, env: &dyn crate::config::Env) -> anyhow::Result<()> {
        if let Some(v) = env.get("CLAIMGATE_TRUSTED_KEYS") {
            self.trusted_keys = v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = env.get("CLAIMGATE_BUNDLE_URL") {
            self.url = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_BUNDLE_POLL_SECS") {
            self.poll_interval_secs =
                v.parse().map_err(|_| anyhow::anyhow!("CLAIMGATE_BUNDLE_POLL_SECS: not a number: {v}"))?;
        }
        if let Some(v) = env.get("CLAIMGATE_WATCH_SECS") {
            self.watch_interval_secs =
                v.parse().map_err(|_| anyhow::anyhow!("CLAIMGATE_WATCH_SECS: not a number: {v}"))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, String>);
    impl crate::config::Env for FakeEnv {
        fn get(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
    }

    #[test]
    fn the_environment_sets_keys_url_and_intervals_and_validation_catches_mistakes() {
        // Arrange
        let (_, public) = crate::reload::bundle::generate_keypair().unwrap_or_default();
        let env = FakeEnv(HashMap::from([
            ("CLAIMGATE_TRUSTED_KEYS", public.trim().to_owned()),
            ("CLAIMGATE_BUNDLE_URL", "http://127.0.0.1:1/b.tar.gz".to_owned()),
            ("CLAIMGATE_BUNDLE_POLL_SECS", "30".to_owned()),
            ("CLAIMGATE_WATCH_SECS", "0".to_owned()),
        ]));
        let mut c = BundleConfig::default();
        // Act
        c.apply_env(&env).unwrap();
        // Assert
        assert_eq!((c.trusted_keys.len(), c.poll_interval_secs, c.watch_interval_secs), (1, 30, 0));
        assert!(c.enabled() && c.validate().is_ok());
        let https = BundleConfig { url: Some("https://x/b".into()), ..c.clone() };
        assert!(https.validate().is_ok(), "rustls is built in");
        let ftp = BundleConfig { url: Some("ftp://x/b".into()), ..c.clone() };
        assert!(ftp.validate().is_err());
        let keyless = BundleConfig { trusted_keys: vec![], ..c.clone() };
        assert!(keyless.validate().is_err(), "a URL without a trusted key");
        let bad_key = BundleConfig { trusted_keys: vec!["ed25519-public:nope".into()], ..c };
        assert!(bad_key.validate().is_err());
        assert!(BundleConfig::default()
            .apply_env(&FakeEnv(HashMap::from([("CLAIMGATE_BUNDLE_POLL_SECS", "x".to_owned())])))
            .is_err());
    }
}
