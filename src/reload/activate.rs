//! Activation: verify → compile → self-test → swap → persist, with no visible half-state.
//!
//! The active rule set is composed of layers, in this order (a later pack's rule replaces an earlier
//! one with the same id): the bureau's bundle (pushed, pulled or the last-known-good), then the local
//! packs of the `rules` folders (the hospital's own). A new bundle or a changed local folder produces a
//! candidate set; only when it compiles and its packs' own test cases pass is it stored into the
//! `ArcSwap` every request loads once. The previous bundle is kept for rollback.
//!
//! Everything here blocks (file I/O, compilation, test cases): call it from `spawn_blocking`.

use super::bundle::{self, BundleInfo};
use super::config::BundleConfig;
use super::error::{ActivateError, BundleError};
use super::verify::{self, Verified};
use crate::rules::{self, CompiledRuleSet, PackSource};
use crate::telemetry::metrics;
use arc_swap::ArcSwapOption;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The active rule set and where it came from. Requests load one `Arc<Active>` and keep it.
pub struct Active {
    pub rs: CompiledRuleSet,
    /// `bundle:<origin>`, `local:<dirs>`, or both joined with ` + `.
    pub source: String,
    /// RFC 3339.
    pub activated_at: String,
    /// The bureau bundle in the set, if any.
    pub bundle: Option<BundleInfo>,
}

impl Active {
    pub fn new(rs: CompiledRuleSet, source: String, activated_at: String, bundle: Option<BundleInfo>) -> Active {
        Active { rs, source, activated_at, bundle }
    }
}

/// How a candidate arrived (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Push,
    Pull,
    LastKnownGood,
    Local,
    Rollback,
    /// A candidate set for shadow evaluation (never activated as such).
    Shadow,
    /// A shadow candidate promoted to active.
    Promote,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Push => "push",
            Origin::Pull => "pull",
            Origin::LastKnownGood => "last-known-good",
            Origin::Local => "local",
            Origin::Rollback => "rollback",
            Origin::Shadow => "shadow",
            Origin::Promote => "promote",
        }
    }
}

/// A verified bundle's pack, ready to compose.
struct BundleLayer {
    info: BundleInfo,
    pack: PackSource,
    /// The bundle file, for persisting it as last-known-good.
    bytes: Arc<Vec<u8>>,
}

#[derive(Default)]
struct Layers {
    bundle: Option<Arc<BundleLayer>>,
    previous: Option<Arc<BundleLayer>>,
    /// The local packs of the running set (the last ones that loaded).
    local: Vec<PackSource>,
    /// Digest of the local folders' files when `local` was loaded.
    local_digest: String,
}

/// The last failure, for `/readyz` and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub at: String,
    pub origin: &'static str,
    pub stage: &'static str,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub last_error: Option<LastError>,
    /// The most recent update attempt failed (cleared by the next activation).
    pub last_update_failed: bool,
    pub previous: Option<BundleInfo>,
}

/// The result of an attempt that did not fail.
pub enum Outcome {
    Activated(Arc<Active>),
    /// The candidate is what already runs; nothing was swapped.
    Unchanged,
}

/// Owns activation. Shared (`Arc`) by the admin handlers, the poller and the watcher.
pub struct Reloader {
    rules: Arc<ArcSwapOption<Active>>,
    cfg: BundleConfig,
    trusted: Vec<VerifyingKey>,
    local_dirs: Vec<PathBuf>,
    /// `<data>/bundles`: `active.bundle`, `previous.bundle`, staging folders.
    dir: PathBuf,
    tier: Option<u8>,
    /// Serialises activations and holds the layers. A std Mutex: taken only on blocking threads,
    /// never across an await.
    layers: Mutex<Layers>,
    /// A std Mutex: held only to copy a small struct.
    status: Mutex<Status>,
    /// The ETag of the last bundle fetched from the bureau. A pull holds it from its activation
    /// until it stores the new tag, so another `pull_once` fetching meanwhile (the poller pulls
    /// one at a time; tests pull beside it) asks with the tag of the bundle now running, never
    /// with the one before it.
    pub(super) etag: tokio::sync::Mutex<Option<String>>,
    /// The bureau honoured `Prefer: wait` on the last poll.
    pub(super) long_polled: std::sync::atomic::AtomicBool,
    /// Counts activations, for whoever waits for one.
    activations: tokio::sync::watch::Sender<u64>,
    /// The candidate under shadow evaluation, if any.
    shadow: super::shadow::Shadow,
    /// The set replaced by the last swap. Holding it here means the set before it, released at the
    /// next swap, is usually dropped on the activation thread rather than by whichever request
    /// happened to hold its last reference (freeing a compiled set is not free).
    retired: Mutex<Option<Arc<Active>>>,
}

const ACTIVE_FILE: &str = "active.bundle";
const PREVIOUS_FILE: &str = "previous.bundle";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the layers half-written (they are replaced whole).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A bundle's `created_at` (verified to be RFC 3339).
fn created(b: &BundleInfo) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(b.created_at.trim()).ok()
}

fn now() -> String {
    chrono::Local::now().to_rfc3339()
}

/// Writes a file so that a crash leaves the old or the new content, never a torn one.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Reloader {
    /// # Errors
    /// A trusted key cannot be read.
    pub fn new(
        rules: Arc<ArcSwapOption<Active>>,
        cfg: &BundleConfig,
        local_dirs: &[PathBuf],
        data: &Path,
        tier: Option<u8>,
    ) -> Result<Reloader, BundleError> {
        let trusted = cfg.trusted_keys.iter().map(|k| bundle::load_public(k)).collect::<Result<Vec<_>, _>>()?;
        Ok(Reloader {
            rules,
            cfg: cfg.clone(),
            trusted,
            local_dirs: local_dirs.to_vec(),
            dir: data.join("bundles"),
            tier,
            layers: Mutex::new(Layers::default()),
            status: Mutex::new(Status::default()),
            etag: tokio::sync::Mutex::new(None),
            long_polled: std::sync::atomic::AtomicBool::new(false),
            activations: tokio::sync::watch::Sender::new(0),
            shadow: super::shadow::Shadow::new(),
            retired: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &BundleConfig {
        &self.cfg
    }

    pub fn local_dirs(&self) -> &[PathBuf] {
        &self.local_dirs
    }

    /// A receiver of the activation count (incremented after each swap).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.activations.subscribe()
    }

    pub fn active(&self) -> Option<Arc<Active>> {
        self.rules.load_full()
    }

    /// Never waits for an activation in progress (the layers' lock is not taken), so `/readyz` and
    /// the admin API answer at once.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    fn publish_previous(&self, layers: &Layers) {
        lock(&self.status).previous = layers.previous.as_ref().map(|p| p.info.clone());
    }

    /// At start: the local packs and, when bundles are enabled, the last-known-good bundle (the
    /// bureau may be unreachable; the poller fetches a newer one later). Failures are recorded; the
    /// server then runs not ready.
    pub fn start(&self) {
        let mut layers = lock(&self.layers);
        let mut local = Vec::new();
        if !self.local_dirs.is_empty() {
            let digest = local_digest(&self.local_dirs);
            match self.load_local() {
                Ok(p) => {
                    local = p;
                    layers.local_digest = digest;
                }
                Err(e) => self.fail(Origin::Local, &e),
            }
        }
        let mut bundle = None;
        let mut previous = None;
        if self.cfg.enabled() {
            for (file, slot) in [(ACTIVE_FILE, &mut bundle), (PREVIOUS_FILE, &mut previous)] {
                let path = self.dir.join(file);
                let Ok(bytes) = std::fs::read(&path) else { continue };
                match self.verify_and_stage(bytes, Origin::LastKnownGood) {
                    Ok(l) => *slot = Some(Arc::new(l)),
                    Err(e) => self.fail(Origin::LastKnownGood, &e),
                }
            }
        }
        if bundle.is_none() && local.is_empty() {
            return;
        }
        match self.compose(bundle.as_ref(), &local) {
            Ok(rs) => {
                let origin = if bundle.is_some() { Origin::LastKnownGood } else { Origin::Local };
                self.swap(rs, bundle.as_ref(), origin);
                layers.bundle = bundle;
                layers.previous = previous;
                layers.local = local;
                self.publish_previous(&layers);
            }
            Err(e) if bundle.is_some() && !local.is_empty() => {
                // The bundle no longer composes with the local packs: run the local ones alone
                // rather than nothing, and say so.
                match self.compose(None, &local) {
                    Ok(rs) => {
                        self.swap(rs, None, Origin::Local);
                        layers.local = local;
                        layers.previous = bundle;
                        self.publish_previous(&layers);
                    }
                    Err(e2) => self.fail(Origin::Local, &e2),
                }
                self.fail(Origin::LastKnownGood, &e);
            }
            Err(e) => self.fail(if bundle.is_some() { Origin::LastKnownGood } else { Origin::Local }, &e),
        }
    }

    /// Verifies a bundle and activates it (composed with the local packs), then persists it as
    /// last-known-good. The running set stays on any failure.
    ///
    /// # Errors
    /// Why the bundle was refused (also recorded as the last error and counted).
    pub fn activate_bundle(&self, bytes: Vec<u8>, origin: Origin) -> Result<Outcome, ActivateError> {
        self.activate_bundle_forced(bytes, origin, false)
    }

    /// [`Reloader::activate_bundle`] for an administrator's push: a bundle created before the
    /// running one is refused unless `force` (`PUT /admin/v1/ruleset?force=true`), which is logged
    /// and counted (`claimgate_ruleset_forced_older_total`).
    ///
    /// # Errors
    /// As [`Reloader::activate_bundle`].
    pub fn activate_bundle_forced(
        &self,
        bytes: Vec<u8>,
        origin: Origin,
        force: bool,
    ) -> Result<Outcome, ActivateError> {
        let r = self.activate_bundle_inner(bytes, origin, force);
        if let Err(e) = &r {
            self.fail(origin, e);
        }
        r
    }

    fn activate_bundle_inner(&self, bytes: Vec<u8>, origin: Origin, force: bool) -> Result<Outcome, ActivateError> {
        if !self.cfg.enabled() {
            return Err(ActivateError::Disabled);
        }
        let mut layers = lock(&self.layers);
        let layer = Arc::new(self.verify_and_stage(bytes, origin)?);
        if layers.bundle.as_ref().is_some_and(|b| b.info.digest == layer.info.digest) {
            return Ok(Outcome::Unchanged);
        }
        if let Some(running) = layers.bundle.as_ref().filter(|b| created(&layer.info) < created(&b.info)) {
            // The transport is not what makes a bundle trusted; an old bundle, validly signed,
            // replayed by whoever sits on the wire must not undo a newer one. An administrator
            // can still go back on purpose: a push with `force`, a rollback, a promotion.
            let older = format!(
                "{}@{} was created at {}, before the running {}@{} ({})",
                layer.info.name,
                layer.info.version,
                layer.info.created_at,
                running.info.name,
                running.info.version,
                running.info.created_at
            );
            match origin {
                Origin::Pull => {
                    return Err(BundleError::Older(format!("{older}; a pulled bundle never goes back in time")).into())
                }
                Origin::Push if !force => {
                    return Err(BundleError::Older(format!(
                        "{older}; push it with ?force=true to go back to it on purpose"
                    ))
                    .into())
                }
                Origin::Push => {
                    tracing::warn!(bundle = %older, "an older bundle pushed with force=true replaces the running one");
                    crate::telemetry::metrics::RULESET_FORCED_OLDER.inc();
                }
                _ => {}
            }
        }
        let rs = self.compose(Some(&layer), &layers.local)?;
        let active = self.swap(rs, Some(&layer), origin);
        layers.previous = layers.bundle.replace(layer);
        self.publish_previous(&layers);
        // The set is active; failing to persist it only costs the restart path, so it is recorded
        // rather than undone.
        if let Err(e) = self.persist(&layers) {
            self.fail(origin, &e);
        }
        Ok(Outcome::Activated(active))
    }

    /// Reloads the local rule folders and activates them with the running bundle.
    ///
    /// # Errors
    /// Why the local packs were refused (recorded and counted).
    pub fn reload_local(&self) -> Result<Outcome, ActivateError> {
        let r = (|| {
            let mut layers = lock(&self.layers);
            let digest = local_digest(&self.local_dirs);
            let local = self.load_local()?;
            let bundle = layers.bundle.clone();
            let rs = self.compose(bundle.as_ref(), &local)?;
            let active = self.swap(rs, bundle.as_ref(), Origin::Local);
            layers.local = local;
            layers.local_digest = digest;
            Ok(Outcome::Activated(active))
        })();
        if let Err(e) = &r {
            self.fail(Origin::Local, e);
        }
        r
    }

    pub fn shadow(&self) -> &super::shadow::Shadow {
        &self.shadow
    }

    /// Verifies, compiles (with the local packs) and self-tests a bundle, then evaluates it beside
    /// the active set on live traffic. Replaces any earlier candidate; activates nothing.
    ///
    /// # Errors
    /// Why the bundle was refused (counted; not recorded as a failed update of the running set).
    pub fn set_shadow(&self, bytes: Vec<u8>) -> Result<BundleInfo, ActivateError> {
        let r = (|| {
            if !self.cfg.enabled() {
                return Err(ActivateError::Disabled);
            }
            let layers = lock(&self.layers);
            let layer = Arc::new(self.verify_and_stage(bytes, Origin::Shadow)?);
            let rs = self.compose(Some(&layer), &layers.local)?;
            tracing::info!(candidate = %rs.revision(), "shadow candidate set");
            self.shadow.set(rs, layer.info.clone(), layer.bytes.clone());
            Ok(layer.info.clone())
        })();
        if let Err(e) = &r {
            tracing::warn!(error = %e, "shadow candidate refused");
            metrics::RULESET_FAILURES.with_label_values(&[Origin::Shadow.as_str(), e.stage().as_str()]).inc();
        }
        r
    }

    /// Activates the shadow candidate's bundle (through the whole activation path) and ends the
    /// shadow run.
    ///
    /// # Errors
    /// No candidate, or its activation was refused.
    pub fn promote(&self) -> Result<Outcome, ActivateError> {
        let Some(c) = self.shadow.candidate() else { return Err(ActivateError::NoCandidate) };
        let r = self.activate_bundle(c.bytes.as_ref().clone(), Origin::Promote)?;
        self.shadow.clear();
        Ok(r)
    }

    /// The digest of the local folders when they were last loaded.
    pub(super) fn loaded_local_digest(&self) -> String {
        lock(&self.layers).local_digest.clone()
    }

    /// Goes back to the previous bundle (which becomes the one to roll back to in turn).
    ///
    /// # Errors
    /// No previous bundle, or it no longer composes with the local packs.
    pub fn rollback(&self) -> Result<Outcome, ActivateError> {
        let r = (|| {
            let mut layers = lock(&self.layers);
            let Some(prev) = layers.previous.clone() else {
                return Err(ActivateError::Rollback("no previous bundle to roll back to".into()));
            };
            let rs = self.compose(Some(&prev), &layers.local)?;
            let active = self.swap(rs, Some(&prev), Origin::Rollback);
            layers.previous = layers.bundle.replace(prev);
            self.publish_previous(&layers);
            if let Err(e) = self.persist(&layers) {
                self.fail(Origin::Rollback, &e);
            }
            Ok(Outcome::Activated(active))
        })();
        if let Err(e) = &r {
            self.fail(Origin::Rollback, e);
        }
        r
    }

    // === steps ===

    fn load_local(&self) -> Result<Vec<PackSource>, ActivateError> {
        let mut packs = Vec::new();
        let mut problems = Vec::new();
        for d in crate::rules::pack_dirs(&self.local_dirs) {
            match rules::load_pack(&d) {
                Ok(p) => packs.push(p),
                Err(e) => problems.extend(e.problems),
            }
        }
        if problems.is_empty() {
            Ok(packs)
        } else {
            Err(ActivateError::Compile(rules::CompileError { problems }.to_string()))
        }
    }

    /// Verifies, then writes the files to a staging folder under the data directory and reads the
    /// pack back through the one pack loader (the folder is removed when this returns).
    fn verify_and_stage(&self, bytes: Vec<u8>, origin: Origin) -> Result<BundleLayer, ActivateError> {
        let today = chrono::Local::now().date_naive();
        let v: Verified = verify::verify(&bytes, &self.trusted, &self.cfg.limits(), today)?;
        let stage_err =
            |e: std::io::Error| ActivateError::Persist(format!("staging under {}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(stage_err)?;
        let tmp = tempfile::Builder::new().prefix(".staging-").tempdir_in(&self.dir).map_err(stage_err)?;
        let root = tmp.path().join(v.manifest.name.replace(['/', '\\', '.'], "_"));
        for (rel, content) in &v.files {
            // `rel` passed `bundle::is_pack_file`: at most one folder level, no `..`.
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(stage_err)?;
            }
            std::fs::write(&p, content).map_err(stage_err)?;
        }
        let pack = rules::load_pack(&root).map_err(|e| ActivateError::Compile(e.to_string()))?;
        Ok(BundleLayer {
            info: BundleInfo {
                name: v.manifest.name,
                version: v.manifest.version,
                digest: v.digest,
                created_at: v.manifest.created_at,
                effective_from: v.manifest.effective_from,
                effective_until: v.manifest.effective_until,
                key_id: v.key_id,
                origin: origin.as_str(),
            },
            pack,
            bytes: Arc::new(bytes),
        })
    }

    /// Compiles the layers together and runs every pack's own test cases against the result.
    fn compose(
        &self,
        bundle: Option<&Arc<BundleLayer>>,
        local: &[PackSource],
    ) -> Result<CompiledRuleSet, ActivateError> {
        let packs: Vec<PackSource> = bundle.map(|b| b.pack.clone()).into_iter().chain(local.iter().cloned()).collect();
        let rs = rules::compile(&packs).map_err(|e| ActivateError::Compile(e.to_string()))?;
        let report = crate::pipeline::packtest::run(&rs, &packs, self.tier);
        if !report.failures.is_empty() {
            return Err(ActivateError::SelfTest(
                report.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"),
            ));
        }
        Ok(rs)
    }

    fn swap(&self, rs: CompiledRuleSet, bundle: Option<&Arc<BundleLayer>>, origin: Origin) -> Arc<Active> {
        let mut source = Vec::new();
        if let Some(b) = bundle {
            source.push(format!("bundle:{}", b.info.origin));
        }
        if !self.local_dirs.is_empty() {
            let dirs: Vec<String> = self.local_dirs.iter().map(|d| d.display().to_string()).collect();
            source.push(format!("local:{}", dirs.join(",")));
        }
        tracing::info!(ruleset = %rs.revision(), rules = rs.rules.len(), origin = origin.as_str(), "rule set activated");
        metrics::RULESET_RULES.set(rs.rules.len() as i64);
        for r in &rs.rules {
            metrics::touch_rule(&r.id, if r.action == crate::rules::Action::Block { "block" } else { "remind" });
        }
        metrics::RULESET_ACTIVATIONS.with_label_values(&[origin.as_str()]).inc();
        metrics::RULESET_UPDATE_FAILED.set(0);
        let mut info = bundle.map(|b| b.info.clone());
        if let Some(i) = info.as_mut() {
            if origin == Origin::Rollback {
                i.origin = Origin::Rollback.as_str();
            }
        }
        let active = Arc::new(Active::new(rs, source.join(" + "), now(), info));
        let old = self.rules.swap(Some(active.clone()));
        drop(std::mem::replace(&mut *lock(&self.retired), old));
        lock(&self.status).last_update_failed = false;
        self.activations.send_modify(|n| *n += 1);
        active
    }

    /// Writes the active and previous bundles (atomically, each) under `<data>/bundles`.
    fn persist(&self, layers: &Layers) -> Result<(), ActivateError> {
        let err = |e: std::io::Error| ActivateError::Persist(format!("{}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        if let Some(p) = &layers.previous {
            write_atomic(&self.dir.join(PREVIOUS_FILE), &p.bytes).map_err(err)?;
        }
        if let Some(b) = &layers.bundle {
            write_atomic(&self.dir.join(ACTIVE_FILE), &b.bytes).map_err(err)?;
        }
        Ok(())
    }

    pub(super) fn fail(&self, origin: Origin, e: &ActivateError) {
        tracing::error!(origin = origin.as_str(), stage = e.stage().as_str(), error = %e, "rule set update refused; the running one stays");
        metrics::RULESET_FAILURES.with_label_values(&[origin.as_str(), e.stage().as_str()]).inc();
        metrics::RULESET_UPDATE_FAILED.set(1);
        let mut s = lock(&self.status);
        s.last_update_failed = true;
        s.last_error =
            Some(LastError { at: now(), origin: origin.as_str(), stage: e.stage().as_str(), error: e.to_string() });
    }
}

/// SHA-256 over the path and bytes of every file the pack loader reads in the packs under `dirs`.
/// Unreadable files count as their error text, so a change in readability is a change too.
pub fn local_digest(dirs: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    for pack in crate::rules::pack_dirs(dirs) {
        for f in super::bundle::pack_paths(&pack) {
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
