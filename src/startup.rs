//! Startup: from a configuration to a bound, running server (zero2prod's `startup.rs`). Opens the
//! stores, history and the journal, builds the upstream client and the reloader, starts the
//! background work (rule activation, the bureau poller, the local watcher, history's outbox
//! drainer and retention), binds first so tests can ask for port 0, then builds the HTTP server
//! over [`gate::routes`].

use crate::config::Config;
use crate::gate::conn::Conn;
use crate::gate::{self, guard, tls, upstream, State};
use crate::history::History;
use crate::pipeline::overrides;
use crate::reload::{Active, Reloader};
use crate::store::Store;
use crate::telemetry::metrics;
use actix_http::{error::DispatchError, Protocol};
use actix_service::{fn_service, map_config, ServiceFactory, ServiceFactoryExt};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::rt::net::TcpStream;
use actix_web::{web, App};
use arc_swap::ArcSwapOption;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The shared state every request sees.
///
/// # Errors
/// The upstream client cannot be built, the journal cannot be opened, a trusted key cannot be read.
pub fn state(cfg: Config) -> anyhow::Result<State> {
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
    // The doctors' 3103 answers live where history does: they survive a restart, and every
    // instance sharing the store honours them.
    let overrides = Arc::new(overrides::Overrides::with_store(store.clone()));
    // Settlements of one person take turns: across instances when they share PostgreSQL.
    let turns = match cfg.history_store.as_deref() {
        Some(url) if store.shared() => crate::pipeline::turns::Turns::shared(url).map_err(anyhow::Error::msg)?,
        _ => crate::pipeline::turns::Turns::local(),
    };
    // The journal lives where history does: the shared store when there is one (its own
    // tables), else its own SQLite file beside history's.
    let opts =
        crate::journal::Options { retention_days: cfg.journal_retention_days, ..crate::journal::Options::default() };
    let journal = if store.shared() {
        crate::journal::Journal::open_shared(&cfg.data, store, opts)?
    } else {
        crate::journal::Journal::open_with(&cfg.data, opts)?
    };
    tracing::info!(at = %journal.location(), "decision journal opened");
    if let Some(p) = &cfg.staff_dictionary {
        let d = crate::journal::dictionary::Dictionary::load(p).map_err(|e| anyhow::anyhow!("staff_dictionary {e}"))?;
        // A shared store that is down now: the names learnt from the traffic serve until the next start.
        match journal.write_dictionary(&d) {
            Ok(()) => tracing::info!(names = d.entries.len(), "staff dictionary loaded"),
            Err(e) => tracing::warn!(error = %e, "staff dictionary not written to the journal"),
        }
    }
    let rules = Arc::new(ArcSwapOption::empty());
    let reload = Reloader::new(rules.clone(), &cfg.bundles, &cfg.rules, &cfg.data, cfg.tier())?;
    Ok(State {
        journal,
        history,
        upstream,
        overrides,
        turns,
        rules,
        reload: Arc::new(reload),
        guard: guard::Guard::new(&cfg),
        cds_jwt: gate::cds::JwtKeys::load(&cfg.cds)?,
        doctor_points: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(30)).build(),
        cfg,
    })
}

/// The configured history store (with the PostgreSQL store, the journal's too): PostgreSQL when a
/// URL is given, else SQLite `history.sqlite` under `data/`.
///
/// # Errors
/// The store cannot be opened.
pub fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    // History's tables, the doctors' answers (overrides) and the CDS JWTs seen, created when the
    // engine opens.
    fn schema(c: &mut dyn crate::store::Conn) -> Result<(), crate::store::StoreError> {
        crate::history::db::create_schema(c)?;
        overrides::create_schema(c)?;
        crate::cds::replay::create_schema(c)
    }
    let store: Arc<dyn Store> = match cfg.history_store.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(crate::store::postgres::PgStore::connect(url, 16, schema)?)
        }
        Some(other) => anyhow::bail!("history_store: expected a postgres:// URL, got {other:?}"),
        None => {
            std::fs::create_dir_all(&cfg.data)?;
            let path = cfg.data.join("history.sqlite");
            Arc::new(crate::store::sqlite::SqliteStore::open(&path, cfg.history_full_sync, 4, schema)?)
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
pub fn open_history_in(cfg: &Config, store: Arc<dyn Store>) -> anyhow::Result<History> {
    tracing::info!(store = store.kind(), "patient history opened");
    std::fs::create_dir_all(&cfg.data)?;
    let outbox = crate::history::outbox::Outbox::open(&cfg.data.join("history-outbox.sqlite"))?;
    if outbox.pending() > 0 {
        tracing::warn!(pending = outbox.pending(), "history outbox holds exchanges from an earlier run; applying them");
    }
    let mut h = History::open(store, cfg.tier(), 200_000, Some(&cfg.data.join("history.key")))?
        .with_outbox(outbox)
        .with_snapshot_budget(cfg.history_cache_mb.max(1) << 20);
    if let Some(p) = &cfg.item_catalogue {
        let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("item_catalogue {}: {e}", p.display()))?;
        let c = crate::claim::catalogue::Catalogue::parse(&text)
            .map_err(|e| anyhow::anyhow!("item_catalogue {}: {e}", p.display()))?;
        tracing::info!(items = c.len(), "item catalogue loaded");
        h = h.with_catalogue(c);
    }
    Ok(h)
}

/// The history's two background threads: the outbox drainer (probes a store that is down, applies
/// what waits, every 2 s) and retention (prunes history older than `history_retention_days`, never
/// less than the active rules' window, at start and every six hours).
fn spawn_history_upkeep(
    history: Arc<History>,
    overrides: Arc<overrides::Overrides>,
    rules: Arc<ArcSwapOption<Active>>,
    retention_days: u32,
) {
    // The outbox drainer: accepted exchanges whose write failed are applied as soon as the store is back.
    let drainer = history.clone();
    let spawned = std::thread::Builder::new().name("history-outbox".into()).spawn(move || loop {
        // A store that is down fails fast on the request path; only this probe reopens it.
        if drainer.probe().is_ok() && drainer.pending() > 0 {
            if let Err(e) = drainer.drain_outbox() {
                tracing::warn!(error = %e, pending = drainer.pending(), "history store still unavailable");
            }
        }
        metrics::HISTORY_OUTBOX.set(drainer.pending() as i64);
        std::thread::sleep(Duration::from_secs(2));
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "history outbox thread not started");
    }
    let spawned = std::thread::Builder::new().name("history-retention".into()).spawn(move || loop {
        let window = rules.load().as_ref().map_or(0, |a| a.rs.lookback);
        let days = retention_days.max(window);
        match history.prune(chrono::Local::now().date_naive(), days) {
            Ok(n) if n > 0 => tracing::info!(rows = n, days, "history pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "history retention failed; retried later"),
        }
        let before = chrono::Local::now().date_naive() - chrono::Days::new(u64::from(days));
        if let Err(e) = overrides.prune(&before.format("%Y-%m-%d").to_string()) {
            tracing::warn!(error = %e, "pruning the doctors' answers failed; retried later");
        }
        std::thread::sleep(Duration::from_secs(6 * 3600));
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "history retention thread not started");
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
    let state = web::Data::new(self::state(cfg)?);
    // Local packs and the last-known-good bundle; a refused one leaves the server up but not ready
    // (/readyz 503). Then the bureau poller and the local watcher, on this runtime.
    state.reload.start();
    if state.cfg.bundles.url.is_some() {
        crate::reload::pull::spawn_poller(state.reload.clone());
    }
    if state.cfg.bundles.watch_interval_secs > 0 && !state.cfg.rules.is_empty() {
        crate::reload::watch::spawn_watcher(state.reload.clone());
    }
    spawn_history_upkeep(
        state.history.clone(),
        state.overrides.clone(),
        state.rules.clone(),
        state.cfg.history_retention_days,
    );
    let tls = state.cfg.tls.as_ref().map(tls::server_config).transpose()?;
    let conns = guard::Conns::new(state.cfg.max_connections_per_client);
    let http = Http { state: state.clone(), addr };
    // Connections above `max_connections` per worker wait in the backlog.
    let mut builder =
        actix_server::Server::build().max_concurrent_connections(state.cfg.max_connections).shutdown_timeout(30);
    if state.cfg.workers > 0 {
        builder = builder.workers(state.cfg.workers);
    }
    let shutdown = builder.graceful_shutdown_signal();
    let head_ms = state.cfg.client_request_timeout_ms;
    // Each connection is counted against its peer address (one over `max_connections_per_client`
    // is refused and closed before a byte of it is read) and wrapped in a `gate::conn::Conn`.
    let builder = match tls {
        None => builder.listen("claimgate", listener, move || {
            let conns = conns.clone();
            fn_service(move |io: TcpStream| served(Conn::plain(io, &conns, head_ms)))
                .and_then(http.service(shutdown.clone()))
        })?,
        Some(tls) => builder.listen("claimgate-tls", listener, move || {
            let conns = conns.clone();
            actix_tls::accept::rustls_0_23::Acceptor::new(tls.clone())
                .map_init_err(|()| ())
                .map_err(|_| DispatchError::Io(std::io::Error::other("TLS handshake failed or timed out")))
                .and_then(fn_service(move |io: TlsStream<TcpStream>| served(Conn::tls(io, &conns, head_ms))))
                .and_then(http.service(shutdown.clone()))
        })?,
    };
    let server = builder.run();
    Ok(Running { addr, handle: server.handle(), state, server })
}

/// What actix-http's service takes: a connection, its protocol and its peer.
type Served = (Conn, Protocol, Option<SocketAddr>);

/// What actix-http serves: an accepted connection as HTTP/1, or nothing for one refused over its
/// client's cap (already answered and shut).
fn served(conn: Option<Conn>) -> std::future::Ready<Result<Served, DispatchError>> {
    std::future::ready(match conn {
        Some(c) => {
            let peer = c.peer_addr();
            Ok((c, Protocol::Http1, Some(peer)))
        }
        None => Err(DispatchError::Io(std::io::Error::other("over max_connections_per_client"))),
    })
}

/// What each worker's HTTP service is built from: actix-web's `App` over [`gate::routes`], served
/// by actix-http on a [`Conn`], as the configuration says.
#[derive(Clone)]
struct Http {
    state: web::Data<State>,
    addr: SocketAddr,
}

impl Http {
    fn service(
        &self,
        shutdown: actix_server::GracefulShutdownSignal,
    ) -> impl ServiceFactory<Served, Config = (), Response = (), Error = DispatchError, InitError = ()> {
        let Http { state, addr } = self.clone();
        let cfg = &state.cfg;
        let (proxy_path, cds) = (cfg.proxy_path.clone(), cfg.cds.clone());
        let head_timeout = Duration::from_millis(cfg.client_request_timeout_ms);
        let body_timeout = Duration::from_millis(cfg.client_body_timeout_ms);
        let app = App::new()
            .app_data(state)
            // Outermost, before any route reads a byte: the body's deadline runs from the head.
            .wrap_fn(move |mut req, srv| {
                gate::body_deadline(&mut req, body_timeout);
                actix_web::dev::Service::call(srv, req)
            })
            .configure(|app| gate::routes(app, &proxy_path, &cds));
        actix_http::HttpService::build()
            // A client that has not sent its whole request head within this time gets 408 and is
            // cut (slow-loris); the body has its own deadline (`body_deadline`).
            .client_request_timeout(head_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            .graceful_shutdown_signal(move || {
                let signal = shutdown.clone();
                async move { signal.notified().await }
            })
            // Where a request's body deadline finds its connection.
            .on_connect_ext(|io: &Conn, ext| {
                ext.insert(io.slot().clone());
            })
            .finish(map_config(app, |()| actix_web::dev::AppConfig::default()))
    }
}

/// `claimgate serve`: runs until SIGINT/SIGTERM, then drains in-flight requests.
///
/// # Errors
/// Startup failures.
pub fn run_blocking(cfg: Config) -> anyhow::Result<()> {
    // A configuration that cannot be what the operator meant is refused, not served unchecked.
    for dir in &cfg.rules {
        anyhow::ensure!(
            dir.is_dir(),
            "rules: {}: no such folder (give --rules the folder of the rule packs)",
            dir.display()
        );
    }
    if cfg.tier().is_none() {
        tracing::warn!(
            "institution_tier is not set: 限医疗机构级别 is unchecked on fee uploads that carry no medins_lv"
        );
    }
    if cfg.item_catalogue.is_none() {
        tracing::warn!("{}", gate::CATALOGUE_UNSET);
    }
    actix_web::rt::System::new().block_on(async move {
        let r = build(cfg)?;
        if r.state.rules.load().is_none() && !r.state.cfg.bundles.enabled() {
            let why = r.state.last_error().unwrap_or_else(|| "no rule pack".into());
            anyhow::bail!("no rule set could be activated, and no bureau bundle is configured to bring one: {why}");
        }
        tracing::info!(addr = %r.addr, upstream = ?r.state.cfg.upstream, "claimgate listening");
        r.server.await?;
        // Everything queued before shutdown reaches the journal before the process exits.
        r.state.journal.flush().await;
        Ok(())
    })
}
