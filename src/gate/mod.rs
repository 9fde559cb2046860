//! The HTTP server: the intercepted gateway route, the check API, health, metrics, admin.
//!
//! Architecture Invariant: this is the only module that knows HTTP. Each request takes one rule-set
//! snapshot at its start (`ArcSwap`) and keeps it to the end; it never sees half a pack.
//! Phases of the proxy route are charted in `docs/pipeline.md`.

pub mod admin;
pub mod guard;
pub mod office;
pub mod overrides;
pub mod proxy;
pub mod rescue;
pub mod tls;
pub mod upstream;

use crate::config::Config;
use crate::history::History;
use crate::reload::Reloader;
use crate::telemetry::metrics;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use arc_swap::ArcSwapOption;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::reload::Active;

pub struct State {
    pub cfg: Config,
    /// The active rule set; `reload` stores into it, requests load one snapshot each.
    pub rules: Arc<ArcSwapOption<Active>>,
    /// Patient history (durable store + caches).
    pub history: Arc<History>,
    pub upstream: Option<upstream::Upstream>,
    pub overrides: overrides::Overrides,
    /// The decision journal (`data/journal.sqlite`, or the shared store's `j_*` tables).
    pub journal: crate::journal::Journal,
    /// Bundles, local packs, activation, rollback.
    pub reload: Arc<Reloader>,
    /// HIS client keys and per-client rate limits.
    pub guard: guard::Guard,
}

impl State {
    /// # Errors
    /// The upstream client cannot be built, the journal cannot be opened, a trusted key cannot be read.
    pub fn new(cfg: Config) -> anyhow::Result<State> {
        let upstream = match &cfg.upstream {
            Some(u) => {
                let ca = match &cfg.upstream_ca_file {
                    Some(p) => {
                        Some(std::fs::read(p).map_err(|e| anyhow::anyhow!("upstream_ca_file {}: {e}", p.display()))?)
                    }
                    None => None,
                };
                Some(upstream::Upstream::new(&upstream::Options {
                    url: u,
                    connect_ms: cfg.upstream_connect_timeout_ms,
                    total_ms: cfg.upstream_timeout_ms,
                    ca_pem: ca.as_deref(),
                    max_answer: cfg.upstream_max_answer_bytes,
                })?)
            }
            None => None,
        };
        let store = open_store(&cfg)?;
        let history = Arc::new(open_history_in(&cfg, store.clone())?);
        // The journal lives where history does: the shared store when there is one (its own
        // tables), else its own SQLite file beside history's.
        let opts = crate::journal::Options {
            retention_days: cfg.journal_retention_days,
            ..crate::journal::Options::default()
        };
        let journal = if store.shared() {
            crate::journal::Journal::open_shared(&cfg.data, store, opts)?
        } else {
            crate::journal::Journal::open_with(&cfg.data, opts)?
        };
        tracing::info!(at = %journal.location(), "decision journal opened");
        let rules = Arc::new(ArcSwapOption::empty());
        let reload = Reloader::new(rules.clone(), &cfg.bundles, &cfg.rules, &cfg.data, cfg.tier())?;
        Ok(State {
            journal,
            history,
            upstream,
            overrides: overrides::Overrides::default(),
            rules,
            reload: Arc::new(reload),
            guard: guard::Guard::new(&cfg),
            cfg,
        })
    }

    /// Reloads, compiles and self-tests the configured local packs (with the running bundle, if
    /// any); activates them only if all pass. The running set stays on failure.
    ///
    /// # Errors
    /// Why the packs were refused (also kept as the last error).
    pub fn activate_from_config(&self) -> Result<(), String> {
        self.reload.reload_local().map(|_| ()).map_err(|e| e.to_string())
    }

    /// The last failed update's message, if any.
    pub fn last_error(&self) -> Option<String> {
        self.reload.status().last_error.map(|e| e.error)
    }
}

/// The configured history store (with the PostgreSQL store, the journal's too): PostgreSQL when a
/// URL is given, else SQLite `history.sqlite` under `data/`.
///
/// # Errors
/// The store cannot be opened.
pub fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn crate::history::Store>> {
    let store: Arc<dyn crate::history::Store> = match cfg.history_store.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(crate::store::postgres::PgStore::connect(url, 16, crate::history::db::create_schema)?)
        }
        Some(other) => anyhow::bail!("history_store: expected a postgres:// URL, got {other:?}"),
        None => {
            std::fs::create_dir_all(&cfg.data)?;
            let path = cfg.data.join("history.sqlite");
            Arc::new(crate::store::sqlite::SqliteStore::open(
                &path,
                cfg.history_full_sync,
                4,
                crate::history::db::create_schema,
            )?)
        }
    };
    Ok(store)
}

/// The configured history store: PostgreSQL when a URL is given, else SQLite under `data/`.
///
/// # Errors
/// The store cannot be opened.
pub fn open_history(cfg: &Config) -> anyhow::Result<History> {
    open_history_in(cfg, open_store(cfg)?)
}

/// History in an opened store, with its outbox and key copy under `data/`.
///
/// # Errors
/// The outbox cannot be opened; the key can be read neither from the store nor from the copy.
pub fn open_history_in(cfg: &Config, store: Arc<dyn crate::history::Store>) -> anyhow::Result<History> {
    tracing::info!(store = store.kind(), "patient history opened");
    std::fs::create_dir_all(&cfg.data)?;
    let outbox = crate::history::outbox::Outbox::open(&cfg.data.join("history-outbox.sqlite"))?;
    if outbox.pending() > 0 {
        tracing::warn!(pending = outbox.pending(), "history outbox holds exchanges from an earlier run; applying them");
    }
    Ok(History::open(store, cfg.tier(), 200_000, Some(&cfg.data.join("history.key")))?
        .with_outbox(outbox)
        .with_snapshot_budget(cfg.history_cache_mb.max(1) << 20))
}

/// The history's two background threads: the outbox drainer (probes a store that is down, applies
/// what waits, every 2 s) and retention (prunes history older than `history_retention_days`, never
/// less than the active rules' window, at start and every six hours).
fn spawn_history_upkeep(st: web::Data<State>) {
    // The outbox drainer: accepted exchanges whose write failed are applied as soon as the store is back.
    let drainer = st.clone();
    let spawned = std::thread::Builder::new().name("history-outbox".into()).spawn(move || loop {
        // A store that is down fails fast on the request path; only this probe reopens it.
        if drainer.history.probe().is_ok() && drainer.history.pending() > 0 {
            if let Err(e) = drainer.history.drain_outbox() {
                tracing::warn!(error = %e, pending = drainer.history.pending(), "history store still unavailable");
            }
        }
        metrics::HISTORY_OUTBOX.set(drainer.history.pending() as i64);
        std::thread::sleep(Duration::from_secs(2));
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "history outbox thread not started");
    }
    let spawned = std::thread::Builder::new().name("history-retention".into()).spawn(move || loop {
        let window = st.rules.load().as_ref().map_or(0, |a| a.rs.lookback);
        let days = st.cfg.history_retention_days.max(window);
        match st.history.prune(chrono::Local::now().date_naive(), days) {
            Ok(n) if n > 0 => tracing::info!(rows = n, days, "history pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "history retention failed; retried later"),
        }
        std::thread::sleep(Duration::from_secs(6 * 3600));
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "history retention thread not started");
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(st: web::Data<State>) -> HttpResponse {
    let status = st.reload.status();
    let last_error =
        status.last_error.as_ref().map(|e| serde_json::json!({"at": e.at, "stage": e.stage, "error": e.error}));
    match st.rules.load_full() {
        Some(a) => HttpResponse::Ok().json(serde_json::json!({
            "ready": true, "ruleset": a.rs.revision(), "last_update_failed": status.last_update_failed, "last_error": last_error
        })),
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ready": false, "reason": "no rule set is active", "last_update_failed": status.last_update_failed, "last_error": last_error
        })),
    }
}

async fn metrics_route() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics::render())
}

/// What an admin route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reading state: `GET /admin/v1/ruleset`, stats, journal, the shadow report, the office.
    Read,
    /// Changing it: push, rollback, shadow set/clear/promote.
    Write,
}

/// Constant-time comparison; empty never matches.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0 && !a.is_empty()
}

/// The scope a presented token grants (`None`: neither token). Both tokens are always compared.
pub(crate) fn token_scope(given: &[u8], cfg: &Config) -> Option<Scope> {
    let write = cfg.admin_token.as_deref().is_some_and(|t| ct_eq(given, t.as_bytes()));
    let read = cfg.admin_read_token.as_deref().is_some_and(|t| ct_eq(given, t.as_bytes()));
    if write {
        Some(Scope::Write)
    } else if read {
        Some(Scope::Read)
    } else {
        None
    }
}

/// Checks the bearer token for `need`; admin is refused outright when no token is set for it
/// (the write token also reads). The token is never logged.
pub(crate) fn authorized(req: &HttpRequest, st: &State, need: Scope) -> Result<(), Box<HttpResponse>> {
    let configured = match need {
        Scope::Read => st.cfg.admin_token.is_some() || st.cfg.admin_read_token.is_some(),
        Scope::Write => st.cfg.admin_token.is_some(),
    };
    if !configured {
        return Err(Box::new(
            HttpResponse::Forbidden()
                .json(serde_json::json!({"error": "admin API disabled: no admin token configured"})),
        ));
    }
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match token_scope(given.as_bytes(), &st.cfg) {
        Some(Scope::Write) => Ok(()),
        Some(Scope::Read) if need == Scope::Read => Ok(()),
        Some(Scope::Read) => Err(Box::new(
            HttpResponse::Forbidden()
                .json(serde_json::json!({"error": "this token may only read; changes need the admin token"})),
        )),
        None => Err(Box::new(
            HttpResponse::Unauthorized().json(serde_json::json!({"error": "missing or wrong bearer token"})),
        )),
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
    pub state: web::Data<State>,
    pub server: actix_web::dev::Server,
}

/// Binds, activates the rules and builds the server (not yet polled). Binding first lets tests ask
/// for port 0 and read back the real one.
///
/// # Errors
/// The address cannot be bound, the upstream client cannot be built, a trusted key cannot be read.
/// Must run on a tokio runtime (the poller and the watcher are spawned on it).
pub fn build(cfg: Config) -> anyhow::Result<Running> {
    metrics::touch();
    let listener = std::net::TcpListener::bind(&cfg.listen).map_err(|e| anyhow::anyhow!("bind {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let proxy_path = cfg.proxy_path.clone();
    let state = web::Data::new(State::new(cfg)?);
    // Local packs and the last-known-good bundle; a refused one leaves the server up but not ready
    // (/readyz 503). Then the bureau poller and the local watcher, on this runtime.
    state.reload.start();
    if state.cfg.bundles.url.is_some() {
        crate::reload::pull::spawn_poller(state.reload.clone());
    }
    if state.cfg.bundles.watch_interval_secs > 0 && !state.cfg.rules.is_empty() {
        crate::reload::watch::spawn_watcher(state.reload.clone());
    }
    spawn_history_upkeep(state.clone());
    let st = state.clone();
    let tls = state.cfg.tls.as_ref().map(tls::server_config).transpose()?;
    let (max_conn, workers, req_timeout) =
        (state.cfg.max_connections, state.cfg.workers, state.cfg.client_request_timeout_ms);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(st.clone())
            // The proxy route reads its own body (size-limited, answered in the envelope).
            .route(&proxy_path, web::post().to(proxy::proxy))
            .route("/fsi/api/rsfComIfsService/callService/{infno}", web::post().to(proxy::proxy))
            .route("/v1/check", web::post().to(proxy::check))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_route))
            .route("/admin/v1/ruleset", web::get().to(admin::ruleset))
            // The push route reads its own body (bounded by bundles.max_bundle_bytes).
            .route("/admin/v1/ruleset", web::put().to(admin::push))
            .route("/admin/v1/ruleset/rollback", web::post().to(admin::rollback))
            .route("/admin/v1/shadow", web::put().to(admin::shadow_set))
            .route("/admin/v1/shadow", web::get().to(admin::shadow_report))
            .route("/admin/v1/shadow", web::delete().to(admin::shadow_clear))
            .route("/admin/v1/shadow/promote", web::post().to(admin::shadow_promote))
            // The office: /admin/v1/stats, /admin/v1/journal and the /office pages.
            .configure(office::routes)
    })
    // A client that has not sent its whole request head within this time gets 408 and is cut
    // (slow-loris); connections above `max_connections` per worker wait in the backlog.
    .client_request_timeout(Duration::from_millis(req_timeout))
    .client_disconnect_timeout(Duration::from_secs(1))
    .max_connections(max_conn)
    .shutdown_timeout(30);
    let server = if workers > 0 { server.workers(workers) } else { server };
    let server = match tls {
        Some(t) => server.listen_rustls_0_23(listener, t)?,
        None => server.listen(listener)?,
    }
    .run();
    Ok(Running { addr, handle: server.handle(), state, server })
}

/// `claimgate serve`: runs until SIGINT/SIGTERM, then drains in-flight requests.
///
/// # Errors
/// Startup failures.
pub fn run_blocking(cfg: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let r = build(cfg)?;
        tracing::info!(addr = %r.addr, upstream = ?r.state.cfg.upstream, "claimgate listening");
        r.server.await?;
        // Everything queued before shutdown reaches the journal before the process exits.
        r.state.journal.flush().await;
        Ok(())
    })
}
