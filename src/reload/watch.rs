//! Watching the local rule folders: a digest of their files every few seconds (cheap: a pack is a
//! few hundred KB, hashed on a blocking thread), and a reload when it changes. Polling a digest
//! works the same on every filesystem, network mounts included, where change notifications do not.

use super::activate::{local_digest, Outcome, Reloader};
use super::error::ActivateError;
use std::sync::Arc;
use std::time::Duration;

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
