//! Watching the local rule folders: a digest of their files every few seconds (cheap: a pack is a
//! few hundred KB, hashed on a blocking thread), and a reload when it changes. Polling a digest
//! works the same on every filesystem, network mounts included, where change notifications do not.

use super::activate::{Outcome, Reloader};
use super::error::ActivateError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// SHA-256 over the path and bytes of every file the pack loader reads in the packs under `dirs`.
/// Unreadable files count as their error text, so a change in readability is a change too.
pub fn local_digest(dirs: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    for pack in crate::config::pack_dirs(dirs) {
        let mut files = vec![pack.join("manifest.yaml")];
        for sub in ["rules", "tables", "tests"] {
            let mut v: Vec<PathBuf> =
                std::fs::read_dir(pack.join(sub)).into_iter().flatten().flatten().map(|e| e.path()).collect();
            v.sort();
            files.extend(v);
        }
        for f in files {
            hash_file(&mut h, &f);
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(h: &mut Sha256, f: &Path) {
    h.update(f.to_string_lossy().as_bytes());
    h.update([0]);
    match std::fs::read(f) {
        Ok(b) => h.update(&b),
        Err(e) => h.update(e.to_string().as_bytes()),
    }
    h.update([0]);
}

/// Reloads the local folders if their digest differs from the loaded one. `Ok(None)`: unchanged.
///
/// # Errors
/// The changed packs were refused (recorded; the running set stays).
pub async fn watch_once(r: &Arc<Reloader>) -> Result<Option<Outcome>, ActivateError> {
    let rr = r.clone();
    let join = |e: tokio::task::JoinError| ActivateError::Compile(format!("reload task: {e}"));
    let changed = tokio::task::spawn_blocking(move || local_digest(rr.local_dirs()) != rr.loaded_local_digest())
        .await
        .map_err(join)?;
    if !changed {
        return Ok(None);
    }
    let rr = r.clone();
    tokio::task::spawn_blocking(move || rr.reload_local()).await.map_err(join)?.map(Some)
}

/// Watches forever on the current runtime.
pub fn spawn_watcher(r: Arc<Reloader>) {
    let every = Duration::from_secs(r.config().watch_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // A refused edit is retried only when the files change again, not every tick.
        let mut refused: Option<String> = None;
        loop {
            tick.tick().await;
            let rr = r.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || local_digest(rr.local_dirs())).await else { continue };
            if refused.as_deref() == Some(now.as_str()) {
                continue;
            }
            match watch_once(&r).await {
                Ok(Some(_)) => {
                    tracing::info!("local rule folders changed; reloaded");
                    refused = None;
                }
                Ok(None) => {}
                Err(_) => refused = Some(now),
            }
        }
    });
}
