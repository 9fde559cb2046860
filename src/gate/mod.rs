//! The HTTP server: the intercepted gateway route, the check API, health, metrics, admin.
//!
//! Architecture Invariant: this is the only module that knows HTTP. Each request takes one rule-set
//! snapshot at its start (`ArcSwap`) and keeps it to the end; it never sees half a pack.
//! Phases of the proxy route are charted in `docs/pipeline.md`.

pub mod office;
pub mod overrides;
pub mod proxy;
pub mod rescue;
pub mod upstream;

use crate::cli::load_rules;
use crate::config::Config;
use crate::history::History;
use crate::rules::CompiledRuleSet;
use crate::telemetry::metrics;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use arc_swap::ArcSwapOption;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The active rule set and where it came from.
pub struct Active {
    pub rs: CompiledRuleSet,
    pub source: String,
    pub activated_at: String,
}

pub struct State {
    pub cfg: Config,
    pub rules: ArcSwapOption<Active>,
    /// Patient history (durable store + caches).
    pub history: Arc<History>,
    pub upstream: Option<upstream::Upstream>,
    pub overrides: overrides::Overrides,
    /// The decision journal under `data/`.
    pub journal: crate::journal::Journal,
    /// `(when, what)` of the last failed activation. A std Mutex: held only to copy a string,
    /// never across an await.
    pub last_error: Mutex<Option<(String, String)>>,
}

impl State {
    /// # Errors
    /// The upstream client cannot be built.
    pub fn new(cfg: Config) -> anyhow::Result<State> {
        let upstream = match &cfg.upstream {
            Some(u) => Some(upstream::Upstream::new(u, cfg.upstream_connect_timeout_ms, cfg.upstream_timeout_ms)?),
            None => None,
        };
        let journal = crate::journal::Journal::open_with(
            &cfg.data,
            crate::journal::Options { queue: 8192, retention_days: cfg.journal_retention_days },
        )?;
        Ok(State {
            journal,
            history: Arc::new(open_history(&cfg)?),
            upstream,
            overrides: overrides::Overrides::default(),
            rules: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
            cfg,
        })
    }

    /// Loads, compiles and self-tests the configured packs; activates them only if all pass.
    /// The running set stays on failure.
    ///
    /// # Errors
    /// Why the packs were refused (also kept as `last_error`).
    pub fn activate_from_config(&self) -> Result<(), String> {
        let dirs = &self.cfg.rules;
        let result = load_rules(dirs).and_then(|(packs, rs)| {
            let report = crate::pipeline::packtest::run(&rs, &packs, self.cfg.tier());
            if report.failures.is_empty() {
                Ok(rs)
            } else {
                Err(report.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"))
            }
        });
        match result {
            Ok(rs) => {
                tracing::info!(ruleset = %rs.revision(), rules = rs.rules.len(), knowledge_points = rs.knowledge_points, "rule set activated");
                metrics::RULESET_RULES.set(rs.rules.len() as i64);
                let source = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",");
                self.rules.store(Some(Arc::new(Active {
                    rs,
                    source: format!("local:{source}"),
                    activated_at: chrono::Local::now().to_rfc3339(),
                })));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "rule set refused; the running one stays");
                if let Ok(mut g) = self.last_error.lock() {
                    *g = Some((chrono::Local::now().to_rfc3339(), e.clone()));
                }
                Err(e)
            }
        }
    }
}

/// The configured history store: PostgreSQL when a URL is given, else SQLite under `data/`.
///
/// # Errors
/// The store cannot be opened.
pub fn open_history(cfg: &Config) -> anyhow::Result<History> {
    let store: Arc<dyn crate::history::Store> = match cfg.history_store.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(crate::history::postgres::PgStore::connect(url, 16)?)
        }
        Some(other) => anyhow::bail!("history_store: expected a postgres:// URL, got {other:?}"),
        None => {
            std::fs::create_dir_all(&cfg.data)?;
            let path = cfg.data.join("history.sqlite");
            Arc::new(crate::history::sqlite::SqliteStore::open(&path, cfg.history_full_sync, 4)?)
        }
    };
    tracing::info!(store = store.kind(), "patient history opened");
    Ok(History::new(store, cfg.tier(), 200_000)?)
}

/// Prunes history older than `history_retention_days` (never less than the active rules' window),
/// at start and every six hours, on a thread of its own.
fn spawn_history_retention(st: web::Data<State>) {
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
    let last_error = st.last_error.lock().ok().and_then(|g| g.clone());
    match st.rules.load_full() {
        Some(a) => HttpResponse::Ok().json(serde_json::json!({
            "ready": true, "ruleset": a.rs.revision(), "last_error": last_error.map(|(at, e)| serde_json::json!({"at": at, "error": e}))
        })),
        None => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ready": false, "reason": "no rule set is active", "last_error": last_error.map(|(at, e)| serde_json::json!({"at": at, "error": e}))
        })),
    }
}

async fn metrics_route() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics::render())
}

/// Constant-time comparison of the bearer token; admin is refused outright when no token is set.
fn authorized(req: &HttpRequest, st: &State) -> Result<(), Box<HttpResponse>> {
    let Some(token) = st.cfg.admin_token.as_deref() else {
        return Err(Box::new(
            HttpResponse::Forbidden()
                .json(serde_json::json!({"error": "admin API disabled: no admin token configured"})),
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    if diff == 0 && !a.is_empty() {
        Ok(())
    } else {
        Err(Box::new(HttpResponse::Unauthorized().json(serde_json::json!({"error": "missing or wrong bearer token"}))))
    }
}

async fn admin_ruleset(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = authorized(&req, &st) {
        return *r;
    }
    let last_error = st.last_error.lock().ok().and_then(|g| g.clone());
    let a = st.rules.load_full();
    HttpResponse::Ok().json(serde_json::json!({
        "name": a.as_ref().map(|a| a.rs.name.to_string()),
        "version": a.as_ref().map(|a| a.rs.version.to_string()),
        "digest": a.as_ref().map(|a| a.rs.digest.to_string()),
        "source": a.as_ref().map(|a| a.source.clone()),
        "activated_at": a.as_ref().map(|a| a.activated_at.clone()),
        "rules": a.as_ref().map(|a| a.rs.rules.len()),
        "knowledge_points": a.as_ref().map(|a| a.rs.knowledge_points),
        "last_error": last_error.map(|(at, e)| serde_json::json!({"at": at, "error": e})),
    }))
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
/// The address cannot be bound, or the upstream client cannot be built.
pub fn build(cfg: Config) -> anyhow::Result<Running> {
    metrics::touch();
    let listener = std::net::TcpListener::bind(&cfg.listen).map_err(|e| anyhow::anyhow!("bind {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let proxy_path = cfg.proxy_path.clone();
    let state = web::Data::new(State::new(cfg)?);
    // A refused pack leaves the server up but not ready (/readyz 503), as after a bad bureau push.
    let _ = state.activate_from_config();
    spawn_history_retention(state.clone());
    let st = state.clone();
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
            .route("/admin/v1/ruleset", web::get().to(admin_ruleset))
            // The office: /admin/v1/stats, /admin/v1/journal and the /office pages.
            .configure(office::routes)
    })
    .client_request_timeout(Duration::from_secs(10))
    .shutdown_timeout(30)
    .listen(listener)?
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
