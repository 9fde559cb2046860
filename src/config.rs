//! Configuration: defaults ← YAML file ← command-line flags ← `CLAIMGATE_*` environment variables.
//! See `deploy/claimgate.example.yaml` for every key.

pub use crate::pipeline::exchange::{FailAction, FailPolicy};
use crate::reload::BundleConfig;
/// Kept here for callers from before it moved to `rules`, where pack folders are read.
pub use crate::rules::pack_dirs;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HIS-facing server listens on.
    pub listen: String,
    /// The settlement gateway. `{infno}` in the URL is replaced (provinces that put it in the path).
    /// Absent: check-only mode, claim transactions are answered by claimgate itself.
    pub upstream: Option<String>,
    /// Rule pack folders, or folders of packs (each subfolder with a manifest.yaml).
    pub rules: Vec<PathBuf>,
    /// Where durable state lives.
    pub data: PathBuf,
    /// Bearer token for `/admin/*` (read and write); admin routes are refused when unset.
    pub admin_token: Option<String>,
    /// Bearer token for the read-only admin routes (`GET /admin/v1/ruleset`, stats, journal,
    /// shadow report, the office pages); it can never push, roll back or change the shadow.
    pub admin_read_token: Option<String>,
    /// HIS clients allowed on the proxy route and `/v1/check`, each with its own key sent in
    /// `x-claimgate-key`. Empty: no key is asked for (the listener is trusted).
    pub clients: Vec<ClientKey>,
    /// Per-client request rate (by key, or by peer address without keys); 0 = unlimited.
    pub rate_limit: RateLimit,
    /// TLS on the HIS-facing listener, optionally requiring client certificates (mTLS).
    pub tls: Option<TlsConfig>,
    /// Open connections per worker thread; more wait in the listen backlog.
    pub max_connections: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// A client must send its request head within this time, else 408 and the connection closes (slow-loris).
    pub client_request_timeout_ms: u64,
    /// A request's body must have arrived within this time of its head, else 408 in the envelope and
    /// the connection closes (a body, or a chunked one, that stalls half-way).
    pub client_body_timeout_ms: u64,
    /// Open connections from one peer address (all workers together); a connection above it is
    /// closed at once (answered 503 in the envelope where it can be), so one client cannot use up
    /// the process's file descriptors. 4,096: a central HIS server holding 2,000 concurrent
    /// settlements from one address is served, while one address can take at most a sixteenth of
    /// the systemd unit's `LimitNOFILE` (65,536).
    pub max_connections_per_client: u32,
    /// This hospital's tier (1/2/3 or 一级/二级/三级) for 限医疗机构级别 on 2204/2301.
    pub institution_tier: Option<String>,
    /// The intercepted route.
    pub proxy_path: String,
    /// Largest request body, bytes.
    pub body_limit: usize,
    pub upstream_connect_timeout_ms: u64,
    /// Whole-call timeout to the gateway.
    pub upstream_timeout_ms: u64,
    /// Extra trust for an `https://` gateway: a PEM file of CA certificates. When set, only these
    /// CAs are trusted (a provincial private CA); unset, the public web roots are.
    pub upstream_ca_file: Option<PathBuf>,
    /// Largest gateway answer read, bytes; a larger one is a gateway error, never buffered whole.
    pub upstream_max_answer_bytes: usize,
    /// claimgate's own time budget per message on the settlement path (parse, history, rules); past it
    /// the claim is handled as on an internal failure (`fail_open`), counted and journaled with
    /// `fallback = budget`. 200 ms: a check takes about 1 ms, but at 300 req/s on two cores one
    /// claim queued on the blocking pool passed the earlier 50 ms; the gateway's own answer takes
    /// hundreds of milliseconds, so the headroom costs the cashier nothing noticeable.
    pub check_budget_ms: u64,
    /// A claim whose check failed (internal error, budget overrun, no active rule set): true
    /// forwards it unchecked (journaled `unchecked`), false answers an error. The default for
    /// `fail_policy`.
    pub fail_open: bool,
    /// Per severity: what a failed check does when the active pack has a blocking rule of that
    /// severity (the strongest one decides). Unset severities follow `fail_open`.
    pub fail_policy: FailPolicy,
    /// Add reminder texts to the gateway answer's `warn_msg`, where the cashier and doctor see them
    /// (on by default; the answer of a reminded claim is then re-serialised — turn it off to relay the
    /// gateway's bytes untouched).
    pub warn_msg_reminders: bool,
    /// The hospital's 医保目录对照 export (CSV: `med_list_codg`, `medins_list_codg`, a name column),
    /// naming the items of messages that send codes only.
    pub item_catalogue: Option<PathBuf>,
    /// The hospital's dictionary of department and doctor names (CSV: `类别,编码,名称`, or
    /// `科室编码,科室名称,医生编码,医生姓名` columns; see `journal::dictionary`), so the office and
    /// the report name departments and doctors the messages give as codes only. Its names win
    /// over those learnt from the traffic.
    pub staff_dictionary: Option<PathBuf>,
    /// Structured JSON logs.
    pub log_json: bool,
    /// Where patient history (and the decision journal) lives: absent = SQLite `history.sqlite`
    /// (and `journal.sqlite`) under `data`; a `postgres://user@host:port/db` URL = the shared
    /// PostgreSQL store, for both.
    pub history_store: Option<String>,
    /// History older than this many days is pruned (at least the longest rule window).
    pub history_retention_days: u32,
    /// Memory for cached patient history snapshots, MiB (least recently used evicted first).
    pub history_cache_mb: u64,
    /// SQLite: fsync every commit (survives power loss; a killed process loses nothing either way).
    pub history_full_sync: bool,
    /// Journal records (decisions, hits, 3103 answers) checked more than this many days ago are
    /// pruned (by the time of the check, not the service date); absent or 0 keeps everything.
    pub journal_retention_days: Option<u32>,
    /// Signed rule bundles from the bureau and the local folders' watcher (`reload`).
    pub bundles: BundleConfig,
    /// The HL7 CDS Hooks 2.0 service (`cds`).
    pub cds: CdsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            upstream: None,
            rules: vec![PathBuf::from("./rulesets")],
            data: PathBuf::from("./data"),
            admin_token: None,
            admin_read_token: None,
            clients: Vec::new(),
            rate_limit: RateLimit::default(),
            tls: None,
            max_connections: 25_000,
            workers: 0,
            client_request_timeout_ms: 10_000,
            client_body_timeout_ms: 10_000,
            max_connections_per_client: 4_096,
            institution_tier: None,
            proxy_path: "/fsi/api/rsfComIfsService/callService".into(),
            body_limit: crate::wire::DEFAULT_BODY_LIMIT,
            upstream_connect_timeout_ms: 2_000,
            upstream_timeout_ms: 30_000,
            upstream_ca_file: None,
            upstream_max_answer_bytes: 64 << 20,
            check_budget_ms: 200,
            fail_open: true,
            fail_policy: FailPolicy::default(),
            warn_msg_reminders: true,
            item_catalogue: None,
            staff_dictionary: None,
            log_json: false,
            history_store: None,
            history_retention_days: 400,
            history_full_sync: false,
            history_cache_mb: 128,
            journal_retention_days: None,
            bundles: BundleConfig::default(),
            cds: CdsConfig::default(),
        }
    }
}

/// The CDS Hooks service: where it is mounted, who may call it from a browser, whose JWTs it trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdsConfig {
    /// Serve the CDS Hooks endpoints at all.
    pub enabled: bool,
    /// The base path: discovery at `{base_path}`, services at `{base_path}/{id}`.
    pub base_path: String,
    /// Origins allowed by CORS (browser EHR apps); empty allows any origin (no credentials are
    /// ever allowed: the JWT travels in the `Authorization` header).
    pub cors_origins: Vec<String>,
    /// EHRs whose JWT bearer is verified; when any is configured, every service call and feedback
    /// must carry a valid JWT from one of them.
    pub jwt_issuers: Vec<JwtIssuer>,
    /// The `aud` a JWT must name; unset: the URL of the endpoint called, as the request states it.
    pub jwt_audience: Option<String>,
    /// 定点医药机构编号 written into the national envelope a CDS call becomes.
    pub fixmedins_code: String,
}

impl Default for CdsConfig {
    fn default() -> Self {
        CdsConfig {
            enabled: true,
            base_path: "/cds-services".into(),
            cors_origins: Vec::new(),
            jwt_issuers: Vec::new(),
            jwt_audience: None,
            fixmedins_code: String::new(),
        }
    }
}

/// An EHR (CDS client) and the public key its JWTs are signed with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// The JWT's `iss`.
    pub iss: String,
    /// PEM file of the public key (RSA for RS256/RS384/RS512, P-256/P-384 for ES256/ES384).
    pub public_key: PathBuf,
}

/// One HIS client and its key (`x-claimgate-key`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKey {
    /// Shown in logs and metrics (never the key).
    pub name: String,
    pub key: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey").field("name", &self.name).field("key", &"<redacted>").finish()
    }
}

/// A token bucket per client: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second per client; 0 = unlimited.
    pub per_second: u32,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 0, burst: 50 }
    }
}

/// TLS for the HIS-facing listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of this server.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a certificate they issued (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// The source of environment variables (a trait so tests need not touch the process environment).
pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Reads the file (if any), applies `flags` (already parsed), then the environment.
    ///
    /// # Errors
    /// An unreadable or invalid file, an invalid value.
    pub fn load(
        file: Option<&std::path::Path>,
        apply_flags: impl FnOnce(&mut Config),
        env: &dyn Env,
    ) -> anyhow::Result<Config> {
        let mut c = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("config {}: {e}", p.display()))?;
                serde_norway::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        apply_flags(&mut c);
        if let Some(v) = env.get("CLAIMGATE_LISTEN") {
            c.listen = v;
        }
        if let Some(v) = env.get("CLAIMGATE_UPSTREAM") {
            c.upstream = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_RULES") {
            c.rules = v.split(',').map(PathBuf::from).collect();
        }
        if let Some(v) = env.get("CLAIMGATE_DATA") {
            c.data = PathBuf::from(v);
        }
        if let Some(v) = env.get("CLAIMGATE_ADMIN_TOKEN") {
            c.admin_token = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_ADMIN_READ_TOKEN") {
            c.admin_read_token = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_CLIENT_KEYS") {
            c.clients = v
                .split(',')
                .map(|kv| match kv.split_once(':') {
                    Some((name, key)) => Ok(ClientKey { name: name.trim().to_owned(), key: key.trim().to_owned() }),
                    None => Err(anyhow::anyhow!("CLAIMGATE_CLIENT_KEYS: expected name:key pairs, comma-separated")),
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = env.get("CLAIMGATE_UPSTREAM_CA_FILE") {
            c.upstream_ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env.get("CLAIMGATE_INSTITUTION_TIER") {
            c.institution_tier = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_FAIL_OPEN") {
            c.fail_open = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = env.get("CLAIMGATE_WARN_MSG_REMINDERS") {
            c.warn_msg_reminders = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = env.get("CLAIMGATE_ITEM_CATALOGUE") {
            c.item_catalogue = Some(PathBuf::from(v));
        }
        if let Some(v) = env.get("CLAIMGATE_STAFF_DICTIONARY") {
            c.staff_dictionary = Some(PathBuf::from(v));
        }
        if let Some(v) = env.get("CLAIMGATE_HISTORY_STORE") {
            c.history_store = Some(v);
        }
        if let Some(v) = env.get("CLAIMGATE_JOURNAL_RETENTION_DAYS") {
            c.journal_retention_days = Some(
                v.parse()
                    .map_err(|_| anyhow::anyhow!("CLAIMGATE_JOURNAL_RETENTION_DAYS: not a number of days: {v}"))?,
            );
        }
        if let Some(v) = env.get("CLAIMGATE_LOG_JSON") {
            c.log_json = matches!(v.as_str(), "1" | "true" | "yes");
        }
        apply_bundle_env(&mut c.bundles, env)?;
        c.validate()?;
        Ok(c)
    }

    /// # Errors
    /// A value that cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.body_limit >= 1024, "body_limit must be at least 1024 bytes");
        anyhow::ensure!(self.proxy_path.starts_with('/'), "proxy_path must start with /");
        anyhow::ensure!(
            !self.rules.is_empty() || self.bundles.enabled(),
            "at least one rules folder is required (or bundles.trusted_keys)"
        );
        self.bundles.validate()?;
        if let Some(u) = &self.upstream {
            anyhow::ensure!(
                u.starts_with("http://") || u.starts_with("https://"),
                "upstream must be an http(s) URL: {u}"
            );
        }
        for (i, k) in self.clients.iter().enumerate() {
            anyhow::ensure!(!k.name.is_empty(), "clients[{i}].name must not be empty");
            anyhow::ensure!(k.key.len() >= 16, "clients[{i}] ({}): key must be at least 16 characters", k.name);
            anyhow::ensure!(
                self.clients[..i].iter().all(|o| o.name != k.name && o.key != k.key),
                "clients[{i}] ({}): names and keys must be unique",
                k.name
            );
        }
        anyhow::ensure!(
            self.rate_limit.per_second == 0 || self.rate_limit.burst >= 1,
            "rate_limit.burst must be at least 1"
        );
        anyhow::ensure!(self.max_connections >= 1, "max_connections must be at least 1");
        anyhow::ensure!(self.client_body_timeout_ms >= 1, "client_body_timeout_ms must be at least 1");
        anyhow::ensure!(self.max_connections_per_client >= 1, "max_connections_per_client must be at least 1");
        anyhow::ensure!(self.upstream_max_answer_bytes >= 1024, "upstream_max_answer_bytes must be at least 1024");
        anyhow::ensure!(
            self.admin_read_token.is_none() || self.admin_read_token != self.admin_token,
            "admin_read_token must differ from admin_token"
        );
        anyhow::ensure!(
            self.cds.base_path.starts_with('/') && !self.cds.base_path.ends_with('/'),
            "cds.base_path must start with / and not end with /"
        );
        if let Some(t) = &self.institution_tier {
            anyhow::ensure!(crate::claim::normalize::parse_tier(t).is_some(), "institution_tier: not a tier: {t}");
        }
        Ok(())
    }

    pub fn tier(&self) -> Option<u8> {
        self.institution_tier.as_deref().and_then(crate::claim::normalize::parse_tier)
    }
}

/// The `bundles:` section's variables: `CLAIMGATE_TRUSTED_KEYS` (comma-separated),
/// `CLAIMGATE_BUNDLE_URL`, `CLAIMGATE_BUNDLE_POLL_SECS`, `CLAIMGATE_WATCH_SECS`.
///
/// # Errors
/// A number that does not parse.
fn apply_bundle_env(b: &mut BundleConfig, env: &dyn Env) -> anyhow::Result<()> {
    if let Some(v) = env.get("CLAIMGATE_TRUSTED_KEYS") {
        b.trusted_keys = v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    }
    if let Some(v) = env.get("CLAIMGATE_BUNDLE_URL") {
        b.url = Some(v);
    }
    if let Some(v) = env.get("CLAIMGATE_BUNDLE_POLL_SECS") {
        b.poll_interval_secs =
            v.parse().map_err(|_| anyhow::anyhow!("CLAIMGATE_BUNDLE_POLL_SECS: not a number: {v}"))?;
    }
    if let Some(v) = env.get("CLAIMGATE_WATCH_SECS") {
        b.watch_interval_secs = v.parse().map_err(|_| anyhow::anyhow!("CLAIMGATE_WATCH_SECS: not a number: {v}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn get(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|s| (*s).to_owned())
        }
    }

    #[test]
    fn environment_overrides_flags_which_override_defaults() {
        let env = FakeEnv(HashMap::from([("CLAIMGATE_LISTEN", "127.0.0.1:9999"), ("CLAIMGATE_ADMIN_TOKEN", "t")]));
        let c = Config::load(
            None,
            |c| {
                c.listen = "0.0.0.0:1".into();
                c.upstream = Some("http://127.0.0.1:9090/x".into());
            },
            &env,
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.upstream.as_deref(), Some("http://127.0.0.1:9090/x"));
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert!(Config::load(None, |c| c.upstream = Some("ftp://x".into()), &FakeEnv(HashMap::new())).is_err());
    }

    #[test]
    fn the_environment_sets_bundle_keys_url_and_intervals_and_validation_catches_mistakes() {
        // Arrange
        let (_, public) = crate::reload::bundle::generate_keypair().unwrap_or_default();
        let public: &'static str = Box::leak(public.trim().to_owned().into_boxed_str());
        let env = FakeEnv(HashMap::from([
            ("CLAIMGATE_TRUSTED_KEYS", public),
            ("CLAIMGATE_BUNDLE_URL", "http://127.0.0.1:1/b.tar.gz"),
            ("CLAIMGATE_BUNDLE_POLL_SECS", "30"),
            ("CLAIMGATE_WATCH_SECS", "0"),
        ]));
        let mut c = BundleConfig::default();
        // Act
        apply_bundle_env(&mut c, &env).unwrap();
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
        let bad_secs = FakeEnv(HashMap::from([("CLAIMGATE_BUNDLE_POLL_SECS", "x")]));
        assert!(apply_bundle_env(&mut BundleConfig::default(), &bad_secs).is_err());
    }
}
