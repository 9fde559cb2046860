use claimgate::config::Config;
use claimgate::store::{P, V};
use serde_json::{json, Value};
use std::path::PathBuf;

/// A private schema on the test PostgreSQL server (`CLAIMGATE_TEST_PG`, started by `.ci/pg`) as a
/// URL whose search_path is that schema, or `None` (skipped, said so) when no server is configured;
/// `CLAIMGATE_REQUIRE_PG` turns the skip into a failure.
pub fn pg(test: &str) -> Option<String> {
    let Ok(url) = std::env::var("CLAIMGATE_TEST_PG") else {
        assert!(
            std::env::var("CLAIMGATE_REQUIRE_PG").is_err(),
            "CLAIMGATE_REQUIRE_PG is set but CLAIMGATE_TEST_PG is not"
        );
        eprintln!("SKIPPED {test} on PostgreSQL: CLAIMGATE_TEST_PG is not set");
        return None;
    };
    let schema = format!("t_{test}_{}", std::process::id());
    let u = url.clone();
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
    // The sync client must not run on the test's async executor.
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&u, postgres::NoTls).expect("test PostgreSQL");
        c.batch_execute(&sql).expect("schema");
    })
    .join()
    .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// One query straight on PostgreSQL (`url` as [`pg`] returns it), off the async executor.
pub fn pg_rows(url: &str, sql: &str) -> Vec<postgres::Row> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("test PostgreSQL");
        c.query(sql.as_str(), &[]).expect("query")
    })
    .join()
    .unwrap()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> Value {
    let p = root().join("tests/fixtures").join(rel);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

pub struct TestApp {
    pub base: String,
    pub sim: String,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<claimgate::gate::State>,
    /// The data directory (journal, key); removed when the test ends.
    pub data: tempfile::TempDir,
}

pub struct Options {
    pub upstream: Upstream,
    pub upstream_timeout_ms: u64,
    pub body_limit: usize,
    /// Packs under `rulesets/`.
    pub packs: Vec<&'static str>,
    /// `None`: SQLite under the data dir; `Some(url)`: PostgreSQL.
    pub history_store: Option<String>,
    /// Files to put in the data directory before start (name, bytes).
    pub data_files: Vec<(&'static str, Vec<u8>)>,
    /// Last word on the configuration (access control, budgets, policies).
    pub tweak: Box<dyn FnOnce(&mut Config)>,
    /// Run on this data directory instead of a fresh one (a restart of an earlier instance).
    pub data_dir: Option<PathBuf>,
}

pub enum Upstream {
    Sim,
    None,
    /// A loopback port where nothing listens.
    Refused,
    /// Any other URL (a fault-injecting fake gateway).
    Url(String),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            upstream: Upstream::Sim,
            upstream_timeout_ms: 5_000,
            body_limit: claimgate::wire::DEFAULT_BODY_LIMIT,
            packs: vec!["national-baseline"],
            history_store: None,
            data_files: Vec::new(),
            tweak: Box::new(|_| {}),
            data_dir: None,
        }
    }
}

/// Starts the simulated gateway and claimgate (national-baseline, 二级) on free loopback ports.
pub async fn spawn_app_with(o: Options) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        claimgate::telemetry::init(false);
    }
    let (sim_addr, sim_server) = claimgate::sim::build("127.0.0.1:0").unwrap();
    actix_web::rt::spawn(sim_server);
    let sim = format!("http://{sim_addr}");
    let upstream = match o.upstream {
        Upstream::Sim => Some(format!("{sim}/fsi/api/rsfComIfsService/callService")),
        Upstream::None => None,
        Upstream::Url(u) => Some(u),
        Upstream::Refused => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = l.local_addr().unwrap();
            drop(l);
            Some(format!("http://{a}/fsi/api/rsfComIfsService/callService"))
        }
    };
    let data = tempfile::tempdir().unwrap();
    for (name, bytes) in &o.data_files {
        std::fs::write(data.path().join(name), bytes).unwrap();
    }
    let mut cfg = Config {
        data: o.data_dir.unwrap_or_else(|| data.path().to_path_buf()),
        listen: "127.0.0.1:0".into(),
        upstream,
        rules: o.packs.iter().map(|p| root().join("rulesets").join(p)).collect(),
        history_store: o.history_store,
        // Debug builds on a loaded 2-core machine: the budget must not turn checks into fallbacks.
        check_budget_ms: 10_000,
        institution_tier: Some("2".into()),
        upstream_timeout_ms: o.upstream_timeout_ms,
        upstream_connect_timeout_ms: 1_000,
        body_limit: o.body_limit,
        admin_token: Some("secret-token".into()),
        ..Config::default()
    };
    (o.tweak)(&mut cfg);
    let app = claimgate::startup::build(cfg).unwrap();
    assert!(app.state.rules.load().is_some(), "rules must activate: {:?}", app.state.last_error());
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    actix_web::rt::spawn(app.server);
    TestApp { base, sim, client: reqwest::Client::new(), state, data }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub struct Reply {
    pub status: u16,
    pub decision: Option<String>,
    pub ruleset: Option<String>,
    pub json: Value,
}

impl TestApp {
    pub async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        let mut rb = self.client.post(format!("{}/fsi/api/rsfComIfsService/callService", self.base)).body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (decision, ruleset, status) = (h("x-claimgate-decision"), h("x-claimgate-ruleset"), r.status().as_u16());
        let bytes = r.bytes().await.unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, decision, ruleset, json }
    }

    pub async fn call(&self, env: &Value) -> Reply {
        self.post_raw(serde_json::to_vec(env).unwrap(), &[("content-type", "application/json")]).await
    }

    pub async fn check(&self, env: &Value) -> (u16, Value) {
        let r = self.client.post(format!("{}/v1/check", self.base)).json(env).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut rb = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Waits until the journal is durable, then runs one query on whichever store holds it
    /// (SQLite or PostgreSQL; `$1…` text parameters).
    pub async fn journal_rows(&self, sql: &str, params: &[&str]) -> Vec<Vec<V>> {
        self.state.journal.flush().await;
        let j = self.state.journal.clone();
        let (sql, ps) = (sql.to_owned(), params.iter().map(|p| (*p).to_owned()).collect::<Vec<String>>());
        tokio::task::spawn_blocking(move || {
            j.read(|c| c.query(&sql, &ps.iter().map(|p| P::T(p)).collect::<Vec<_>>())).unwrap()
        })
        .await
        .unwrap()
    }

    /// The journal query's first column of its first row, as an integer.
    pub async fn journal_int(&self, sql: &str, params: &[&str]) -> i64 {
        self.journal_rows(sql, params).await.first().and_then(|r| r[0].int()).unwrap_or(-1)
    }

    /// One integer from the history store itself (off the async executor: the PostgreSQL client is
    /// sync).
    pub fn history_int(&self, sql: &str) -> i64 {
        let h = self.state.history.clone();
        let sql = sql.to_owned();
        std::thread::spawn(move || {
            let mut out = -1;
            h.store()
                .read(&mut |c| {
                    out = c.query(&sql, &[])?[0][0].int().unwrap_or(-1);
                    Ok(())
                })
                .unwrap();
            out
        })
        .join()
        .unwrap()
    }

    /// What the simulated gateway received so far.
    pub async fn received(&self) -> Vec<Value> {
        self.client.get(format!("{}/sim/received", self.sim)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn sim_mode(&self, mode: &str, delay_ms: u64) {
        self.client
            .post(format!("{}/sim/mode", self.sim))
            .json(&json!({"mode": mode, "delay_ms": delay_ms}))
            .send()
            .await
            .unwrap();
    }
}

/// A full envelope around `input`.
pub fn envelope(infno: &str, msgid: &str, input: Value) -> Value {
    json!({"infno": infno, "msgid": msgid, "mdtrtarea_admvs": "410700", "insuplc_admdvs": "410700", "recer_sys_code": "HIS",
        "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "", "infver": "V1.0", "opter_type": "1", "opter": "0153",
        "opter_name": "收费员", "inf_time": "2025-06-10 09:00:00", "fixmedins_code": "H41070100001", "fixmedins_name": "新乡市某县人民医院",
        "sign_no": "410700202506100800001234567890", "input": input})
}

/// Registers a person (1101) and a visit (2201 + 2203) through the proxy; returns (psn_no, mdtrt_id).
pub async fn register(app: &TestApp, certno: &str, med_type: &str, seq: u32) -> (String, String) {
    let r = app
        .call(&envelope("1101", &format!("H41070100001202506100900{seq:02}01"), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "certno": certno, "psn_cert_type": "01", "psn_name": "测试"}})))
        .await;
    let psn = r.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r = app
        .call(&envelope("2201", &format!("H41070100001202506100900{seq:02}02"), json!({"data": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:00:00", "mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "ipt_otp_no": format!("MZ{seq}"), "atddr_no": "D1", "dr_name": "王医生", "dept_code": "100301", "dept_name": "内科", "caty": "A03"}})))
        .await;
    let visit = r.json["output"]["data"]["mdtrt_id"].as_str().unwrap().to_owned();
    app.call(&envelope("2203", &format!("H41070100001202506100900{seq:02}03"), json!({"mdtrtinfo": {"mdtrt_id": visit, "psn_no": psn, "med_type": med_type, "begntime": "2025-06-10 09:00:00", "dise_codg": "I10.x00", "dise_name": "原发性高血压"}, "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "原发性高血压", "vali_flag": "1"}]})))
        .await;
    (psn, visit)
}

/// One 2204 line.
#[allow(clippy::too_many_arguments)]
pub fn line(
    sn: &str,
    visit: &str,
    psn: &str,
    code: &str,
    cnt: u32,
    pric: &str,
    amt: &str,
    prd_days: Option<u32>,
) -> Value {
    let mut v = json!({"feedetl_sn": sn, "mdtrt_id": visit, "psn_no": psn, "chrg_bchno": "B1", "fee_ocur_time": "2025-06-10 09:10:00",
        "med_list_codg": code, "medins_list_codg": format!("H-{code}"), "det_item_fee_sumamt": amt, "cnt": cnt, "pric": pric,
        "bilg_dept_codg": "100301", "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "王医生", "hosp_appr_flag": "0"});
    if let Some(d) = prd_days {
        v["prd_days"] = json!(d);
    }
    v
}

/// Debian's chromium, for the tests that render the office page and the report.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser is there; CI (`CLAIMGATE_REQUIRE_BROWSER`) insists on it.
pub fn browser(test: &str) -> bool {
    if std::path::Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CLAIMGATE_REQUIRE_BROWSER").is_none(),
        "CLAIMGATE_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install -y chromium)"
    );
    eprintln!("\n!!!!! SKIPPED {test}: {CHROMIUM} is not installed (apt-get install -y chromium; CI sets CLAIMGATE_REQUIRE_BROWSER) !!!!!\n");
    false
}

/// Runs headless chromium on `url` with `extra` arguments (`--dump-dom`, `--print-to-pdf=…`);
/// returns what it printed.
pub async fn chromium_output(profile: &std::path::Path, extra: &[String], url: &str) -> std::process::Output {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within two minutes")
    .unwrap();
    out
}

/// A local page that logs the browser in to `/office` through the form (the token in no URL).
pub fn login_page(dir: &std::path::Path, app: &TestApp) -> PathBuf {
    let login = dir.join("login.html");
    std::fs::write(
        &login,
        format!(
            "<!DOCTYPE html><html><body><form method=\"post\" action=\"{}/office/login\"><input type=\"hidden\" name=\"token\" value=\"secret-token\"></form><script>document.forms[0].submit()</script></body></html>",
            app.base
        ),
    )
    .unwrap();
    login
}
