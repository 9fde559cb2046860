//! Rule bundles from the bureau and local rule folders: fetch (pull), push, verify, activate,
//! last-known-good, rollback, local watch, shadow runs.
//!
//! The pipeline is verify → compile → self-test → swap → persist (OPA's `activateBundles`: check
//! everything before changing anything). The swap is one `ArcSwap` store; each request loads one
//! `Arc<Active>` at its start and keeps it, so no request sees half a pack.
//!
//! Architecture Invariant: a bundle that fails its signature, a digest, a size limit, compilation or
//! its own test cases is never activated, and the running set stays.
//! Architecture Invariant: this module knows nothing of HTTP handlers; `gate` calls it with bytes.
//!
//! # Layout
//! - `bundle.rs`: the file format, key files, the bundle builder.
//! - `verify.rs`: bounded reading of an archive, signatures, digests.
//! - `activate.rs`: [`Reloader`] — layers (bundle, local), compose, swap, persist, rollback.
//! - `pull.rs`: the bureau poller; `watch.rs`: the local folders' digest watcher.

pub mod activate;
pub mod bundle;
pub mod config;
pub mod error;
pub mod pull;
pub mod shadow;
pub mod verify;
pub mod watch;

pub use activate::{Active, Origin, Outcome, Reloader, Status};
pub use bundle::BundleInfo;
pub use config::BundleConfig;
pub use error::{ActivateError, BundleError};
pub use verify::{verify, Limits, Verified};

/// `claimgate rules verify BUNDLE --pubkey KEY`: verifies the bundle, then compiles its pack and runs
/// its test cases, exactly as an activation would (without activating anything). `Ok` is a summary.
///
/// # Errors
/// The first reason the bundle would be refused.
pub fn verify_file(bundle: &std::path::Path, pubkeys: &[String]) -> Result<String, String> {
    let bytes = std::fs::read(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let data = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let cfg = BundleConfig { trusted_keys: pubkeys.to_vec(), watch_interval_secs: 0, ..BundleConfig::default() };
    let rules = std::sync::Arc::new(arc_swap::ArcSwapOption::empty());
    let r = Reloader::new(rules, &cfg, &[], data.path(), None).map_err(|e| e.to_string())?;
    match r.activate_bundle(bytes, Origin::Push) {
        Ok(Outcome::Activated(a)) => {
            let b = a.bundle.as_ref();
            Ok(format!(
                "ok: {} ({} rules, {} knowledge points), signed by key {}, manifest sha256 {}\n",
                a.rs.revision(),
                a.rs.rules.len(),
                a.rs.knowledge_points,
                b.map(|b| b.key_id.as_str()).unwrap_or("?"),
                b.map(|b| b.digest.as_str()).unwrap_or("?"),
            ))
        }
        Ok(Outcome::Unchanged) => Ok("ok\n".into()),
        Err(e) => Err(e.to_string()),
    }
}
