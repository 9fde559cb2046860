//! The office: statistics API, pages (in real headless chromium), report command, and the
//! absence of personal data in everything the office reads.

use crate::helpers::{
    browser, chromium_output, envelope, line, login_page, pg, pg_rows, register, root, spawn_app, spawn_app_with,
    Options, TestApp,
};
use claimgate::demo::{replay, Row, DAY};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "secret-token";

/// Replays the demo day through the proxy and waits until the journal holds all of it.
async fn demo_day(app: &TestApp) -> Vec<Row> {
    let rows = replay(&app.base, DAY).await.unwrap();
    app.state.journal.flush().await;
    rows
}

fn count(rows: &[Row], decision: &str) -> usize {
    rows.iter().filter(|r| r.decision == decision && r.infno != "3103").count()
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let (status, body) = app.get(path, Some(TOKEN)).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn the_stats_api_counts_the_demo_day_behind_the_admin_token() {
    demo_day_figures(spawn_app().await).await;
}

/// The same figures from the journal in the shared store (PostgreSQL).
#[actix_web::test]
async fn the_stats_api_counts_the_demo_day_from_postgres() {
    let Some(url) = pg("office_stats") else { return };
    let app = spawn_app_with(Options { history_store: Some(url.clone()), ..Options::default() }).await;
    assert!(app.state.journal.sqlite_path().is_none(), "the journal is in the shared store");
    demo_day_figures(app).await;
    // It is there, in the journal's own tables beside history's.
    let n: i64 = pg_rows(&url, "SELECT COUNT(*) FROM j_decision")[0].get(0);
    assert_eq!(n, 13);
}

async fn demo_day_figures(app: TestApp) {
    // Arrange
    let rows = demo_day(&app).await;
    // Act
    let (anon, _) = app.get("/admin/v1/stats", None).await;
    let (wrong, _) = app.get("/admin/v1/stats", Some("not-the-token")).await;
    let (status, s) = get_json(&app, "/admin/v1/stats").await;
    // Assert
    assert_eq!((anon, wrong, status), (401, 401, 200));
    let t = &s["totals"];
    assert_eq!(t["block"], count(&rows, "block"));
    assert_eq!(t["remind"], count(&rows, "remind"));
    assert_eq!((t["decisions"].as_i64(), t["block"].as_i64(), t["remind"].as_i64()), (Some(13), Some(2), Some(5)));
    // 经阴道B超 120.00 (patient 丙), and the 2301: 护理互斥 10.00 + 床位费超频次 30.00.
    assert_eq!(t["intercepted_amount"], "160.00");
    let rule = |id: &str| s["by_rule"].as_array().unwrap().iter().find(|r| r["rule_id"] == id).cloned().unwrap();
    assert_eq!(rule("CG-DAYS-001")["hits"], 4);
    assert_eq!(rule("GZ10000302004000")["points"], 2);
    // The doctor of 患者乙 continued past the 3101 reminder with a reason.
    let fb = &s["feedback"][0];
    assert_eq!(
        (fb["rule_id"].as_str(), fb["answered"].as_i64(), fb["continued"].as_i64()),
        (Some("CG-DAYS-001"), Some(1), Some(1))
    );
    assert_eq!(fb["override_rate"], 1.0);
    // 驾照式记分: the inpatient doctor's two blocked items (4 + 4), the outpatient doctor's one (2).
    let points: Vec<(String, i64)> = s["doctor_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["doctor"].as_str().unwrap().to_owned(), p["points"].as_i64().unwrap()))
        .collect();
    assert_eq!(points, vec![("D410700000303".to_owned(), 8), ("D410700000101".to_owned(), 2)]);
    // Filters narrow the figures.
    let (_, s) = get_json(&app, "/admin/v1/stats?dept=100201&rule=CG-MUTEX-001").await;
    assert_eq!((s["totals"]["decisions"].as_i64(), s["totals"]["hits"].as_i64()), (Some(1), Some(1)));
}

#[actix_web::test]
async fn the_journal_api_pages_and_filters_decisions() {
    demo_day_listing(spawn_app().await).await;
}

#[actix_web::test]
async fn the_journal_api_pages_and_filters_decisions_from_postgres() {
    let Some(url) = pg("office_journal") else { return };
    demo_day_listing(spawn_app_with(Options { history_store: Some(url), ..Options::default() }).await).await;
}

async fn demo_day_listing(app: TestApp) {
    demo_day(&app).await;
    let (status, l) = get_json(&app, "/admin/v1/journal?per_page=5&page=2").await;
    assert_eq!(status, 200);
    assert_eq!((l["total"].as_i64(), l["items"].as_array().unwrap().len()), (Some(13), 5));
    let (_, blocks) = get_json(&app, "/admin/v1/journal?decision=block").await;
    let items = blocks["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|e| !e["hits"].as_array().unwrap().is_empty() && e["gateway_infcode"].is_null()));
    let (_, analysis) = get_json(&app, "/admin/v1/journal?rule=CG-DAYS-001").await;
    let with_answer = analysis["items"].as_array().unwrap().iter().find(|e| e["infno"] == "3101").cloned().unwrap();
    assert_eq!(with_answer["answers"][0]["dspo_way"], "1");
}

#[actix_web::test]
async fn bad_query_parameters_get_a_clear_400_never_a_panic() {
    let app = spawn_app().await;
    for (q, needle) in [
        ("/admin/v1/stats?from=2025-02-30", "YYYY-MM-DD"),
        ("/admin/v1/stats?from=2025-06-02&to=2025-06-01", "晚于"),
        ("/admin/v1/journal?per_page=100000", "per_page"),
        ("/admin/v1/journal?page=abc", "page"),
        ("/admin/v1/journal?decision=%3Cx%3E", "decision"),
        ("/admin/v1/journal?psn_no=1", "未知参数"),
        ("/admin/v1/stats?from=%FF%FE", "参数"),
    ] {
        let (status, body) = get_json(&app, q).await;
        assert_eq!(status, 400, "{q}");
        assert!(body["error"].as_str().unwrap_or("").contains(needle), "{q}: {body}");
    }
    let (status, body) = app.get("/office?to=yesterday", Some(TOKEN)).await;
    assert_eq!(status, 400);
    assert!(body.contains("日期格式") && body.contains("yesterday"));
    let (status, _) = app.get("/office/decision/abc", Some(TOKEN)).await;
    assert_eq!(status, 400);
    let (status, body) = app.get("/office/decision/999999", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(body.contains("没有编号为 999999"));
    // The server is still serving.
    assert_eq!(app.get("/healthz", None).await.0, 200);
}

#[actix_web::test]
async fn the_office_login_sets_an_http_only_session_that_never_carries_the_token() {
    let app = spawn_app().await;
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // Without credentials: the login form, not the figures.
    let (status, body) = app.get("/office", None).await;
    assert_eq!(status, 401);
    assert!(body.contains("id=\"login\"") && !body.contains("data-k="));
    let login = |token: &str| {
        no_redirect.post(format!("{}/office/login", app.base)).form(&[("token", token.to_owned())]).send()
    };
    let r = login("wrong").await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = login(TOKEN).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Path=/office") && !cookie.contains(TOKEN));
    let session = cookie.split(';').next().unwrap().to_owned();
    let page =
        |c: &str, path: &str| no_redirect.get(format!("{}{path}", app.base)).header("cookie", c.to_owned()).send();
    let r = page(&session, "/office").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'"));
    assert!(r.text().await.unwrap().contains("data-k=\"decisions\""));
    // A forged session is refused; the cookie does not open the admin API.
    assert_eq!(page("claimgate_office=99999999999.00", "/office").await.unwrap().status().as_u16(), 401);
    assert_eq!(page(&session, "/admin/v1/stats").await.unwrap().status().as_u16(), 401);
}

#[actix_web::test]
async fn what_the_office_shows_from_the_journal_is_escaped() {
    let app = spawn_app().await;
    let evil = "<script>alert(1)</script>";
    app.state
        .journal
        .record(claimgate::journal::Record {
            at: chrono::Local::now().to_rfc3339(),
            service_date: None,
            infno: "2204".into(),
            msgid: "M1".into(),
            fixmedins_code: "H1".into(),
            fixmedins_name: evil.into(),
            mdtrt_id: "V1".into(),
            psn_hash: "p".into(),
            dept_code: evil.into(),
            doctor_code: "D\"><img src=x>".into(),
            // Names learnt from the traffic are the HIS's text too.
            dept_name: "<img src=x onerror=alert(2)>".into(),
            doctor_name: "=HYPERLINK(\"x\")".into(),
            decision: "remind".into(),
            ruleset: "t@1".into(),
            elapsed_us: 1,
            gateway_infcode: Some(0),
            hits: vec![claimgate::journal::HitRecord {
                rule_id: "R1".into(),
                rule_name: evil.into(),
                action: "remind".into(),
                severity: "warning".into(),
                amount_fen: 100,
                lines: vec!["L1".into()],
                message: format!("=cmd|' /C calc'!A0 {evil}"),
                basis: evil.into(),
                points: 0,
            }],
            jr: vec![],
            fallback: String::new(),
        })
        .await;
    app.state.journal.flush().await;
    let (_, page) = app.get("/office", Some(TOKEN)).await;
    assert!(!page.contains("<script") && !page.contains("<img"), "unescaped markup on the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, l) = get_json(&app, "/admin/v1/journal").await;
    let id = l["items"][0]["id"].as_i64().unwrap();
    let (status, detail) = app.get(&format!("/office/decision/{id}"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(!detail.contains("<script") && detail.contains("政策依据"));
    let (status, csv) = app.get("/office/export.csv", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(csv.contains("'=cmd"), "formula-looking cells are neutralised: {csv}");
    assert!(csv.contains("'=HYPERLINK") && !csv.contains(",=HYPERLINK"), "a name is neutralised too: {csv}");
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"), "the department's name, escaped");
}

/// The values of `keys` anywhere in a JSON document.
fn values_of(v: &Value, keys: &[&str], out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if keys.contains(&k.as_str()) && !s.is_empty() && !s.contains("{{") => {
                        out.push(s.clone())
                    }
                    _ => values_of(x, keys, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| values_of(x, keys, out)),
        _ => {}
    }
}

/// The clear identifiers and names of the demo day: certificate numbers and names from the
/// script, psn_no from what the gateway handed out (as the HIS sent it on).
async fn demo_identifiers(sim: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in DAY.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap();
        values_of(&v["envelope"], &["certno", "mdtrt_cert_no", "psn_name", "coner_name", "tel"], &mut ids);
    }
    let received: Vec<Value> = reqwest::get(format!("{sim}/sim/received")).await.unwrap().json().await.unwrap();
    for r in &received {
        if let Some(Value::String(body)) = r.get("body") {
            if let Ok(v) = serde_json::from_str::<Value>(body) {
                values_of(&v, &["psn_no"], &mut ids);
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

fn leaks(haystack: &[u8], ids: &[String]) -> Vec<String> {
    ids.iter().filter(|id| haystack.windows(id.len()).any(|w| w == id.as_bytes())).cloned().collect()
}

/// The demo day and a generated two-day stream through a real `claimgate serve` process (logs
/// captured at debug level): no clear psn_no, certno or name in the data directory's files, the
/// logs, the metrics, the office page, the journal API or the reports; no admin token in the logs.
#[actix_web::test]
async fn no_clear_identifier_reaches_the_journal_logs_page_or_report() {
    use tokio::io::AsyncBufReadExt;
    // Arrange: the simulated gateway here, claimgate as a child process.
    let (sim_addr, sim_server) = claimgate::sim::build("127.0.0.1:0").unwrap();
    actix_web::rt::spawn(sim_server);
    let sim = format!("http://{sim_addr}");
    let data = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(root().join("rulesets/national-baseline"))
        .arg("--data")
        .arg(data.path())
        .arg("--upstream")
        .arg(format!("{sim}/fsi/api/rsfComIfsService/callService"))
        .env("CLAIMGATE_ADMIN_TOKEN", TOKEN)
        .env("CLAIMGATE_LOG_JSON", "1")
        .env("CLAIMGATE_INSTITUTION_TIER", "2")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = String::new();
    let addr = loop {
        let line = lines.next_line().await.unwrap().expect("claimgate exited before listening");
        logs.push_str(&line);
        logs.push('\n');
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "claimgate listening" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let rest = actix_web::rt::spawn(async move {
        let mut more = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            more.push_str(&l);
            more.push('\n');
        }
        more
    });
    let base = format!("http://{addr}");
    // Act: the day, the page, a graceful stop (the journal flushes), the reports.
    let rows = replay(&base, DAY).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.decision == "block").count(), 2);
    let client = reqwest::Client::new();
    // The proxy answers before the journal's writer commits: read the page until it holds the
    // day (each read a round trip through the server; bounded, no sleep).
    let mut page = String::new();
    for _ in 0..2_000 {
        page = client.get(format!("{base}/office")).bearer_auth(TOKEN).send().await.unwrap().text().await.unwrap();
        if page.contains("data-k=\"listed\">13<") {
            break;
        }
    }
    let stats: Value = client
        .get(format!("{base}/admin/v1/journal?per_page=500"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A generated stream as well (two days of 300 patients' traffic, sent as the HIS would).
    let mut stream = Vec::new();
    claimgate::gen::month(11, 300, 2, &mut |v| stream.push(v["request"].clone()));
    let mut stream_ids = Vec::new();
    for req in &stream {
        values_of(req, &["certno", "mdtrt_cert_no", "psn_no", "psn_name"], &mut stream_ids);
        let r = client.post(format!("{base}/fsi/api/rsfComIfsService/callService")).json(req).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "{}", r.status());
    }
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let pid = child.id().unwrap().to_string();
    let stopped = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(stopped.success());
    assert!(child.wait().await.unwrap().success(), "claimgate stops cleanly on SIGTERM");
    logs.push_str(&rest.await.unwrap());
    let mut reports = Vec::new();
    let csv_dir = tempfile::tempdir().unwrap();
    for format in ["html", "csv", "json"] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"));
        cmd.args(["report", "--from", "2000-01-01", "--to", "2099-12-31", "--format", format, "--data"])
            .arg(data.path());
        if format == "csv" {
            cmd.arg("-o").arg(csv_dir.path());
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        if format == "csv" {
            // Every section's file, one after the other.
            let mut all = Vec::new();
            for e in std::fs::read_dir(csv_dir.path()).unwrap() {
                all.extend(std::fs::read(e.unwrap().path()).unwrap());
            }
            assert!(!all.is_empty());
            reports.push(all);
        } else {
            reports.push(out.stdout);
        }
    }
    // Assert
    let mut ids = demo_identifiers(&sim).await;
    assert!(ids.len() >= 12, "the check must look for the day's identifiers: {ids:?}");
    stream_ids.sort();
    stream_ids.dedup();
    assert!(stream_ids.len() >= 20, "{}", stream_ids.len());
    ids.extend(stream_ids);
    assert!(logs.lines().count() > 20, "debug logs were captured");
    assert!(page.contains("data-k=\"block\">2<"), "{page}");
    let report: Value = serde_json::from_slice(&reports[2]).unwrap();
    assert!(
        report["totals"]["decisions"].as_i64().unwrap() > 13,
        "the report covers the day and the stream: {}",
        report["totals"]
    );
    assert_eq!(stats["total"], 13);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let p = entry.unwrap().path();
        found.extend(leaks(&std::fs::read(&p).unwrap(), &ids).into_iter().map(|id| format!("{}: {id}", p.display())));
    }
    found.extend(leaks(logs.as_bytes(), &ids).into_iter().map(|id| format!("logs: {id}")));
    found.extend(leaks(metrics.as_bytes(), &ids).into_iter().map(|id| format!("metrics: {id}")));
    // The admin token never reaches the logs either.
    found.extend(leaks(logs.as_bytes(), &[TOKEN.to_owned()]).into_iter().map(|_| "logs: the admin token".to_owned()));
    found.extend(leaks(page.as_bytes(), &ids).into_iter().map(|id| format!("office page: {id}")));
    found.extend(leaks(stats.to_string().as_bytes(), &ids).into_iter().map(|id| format!("journal API: {id}")));
    for (r, f) in reports.iter().zip(["html", "csv", "json"]) {
        found.extend(leaks(r, &ids).into_iter().map(|id| format!("report {f}: {id}")));
    }
    assert!(found.is_empty(), "clear personal data found: {found:?}");
}

#[actix_web::test]
async fn the_report_command_writes_the_figures_in_three_formats() {
    let app = spawn_app().await;
    demo_day(&app).await;
    let dir = tempfile::tempdir().unwrap();
    // The period is the demo day's service date (it is replayed today).
    let day = "2025-06-10";
    let run = |format: &str, out: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
            .args(["report", "--from", day, "--to", day, "--format", format, "--data"])
            .arg(app.data.path())
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    for format in ["html", "csv", "json"] {
        // CSV: a directory of one file per section.
        let out = dir.path().join(format!("report.{format}"));
        let o = run(format, &out);
        assert!(o.status.success(), "{format}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("医保智能审核月度报告") && html.contains("data-k=\"block\">2<") && html.contains("<svg"));
    assert!(html.contains("新乡市某县人民医院 医保智能审核月度报告"), "the hospital named from the traffic");
    assert!(html.contains("id=\"summary\"") && html.contains("2025年6月10日至2025年6月10日"), "summary and period");
    assert!(html.contains("id=\"largest\"") && html.contains("id=\"exposure\""), "appendix and 记分 exposure");
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
    let csv_dir = dir.path().join("report.csv");
    let mut files: Vec<String> =
        std::fs::read_dir(&csv_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 9, "one file per section: {files:?}");
    let csv = std::fs::read_to_string(csv_dir.join("02-规则排行.csv")).unwrap();
    assert!(csv.starts_with('\u{feff}'), "a BOM for spreadsheet programs");
    assert!(csv.lines().any(|l| l.starts_with("GZ10000302004000,")), "{csv}");
    let summary = std::fs::read_to_string(csv_dir.join("01-汇总.csv")).unwrap();
    assert!(summary.contains("拦截金额（元）,160.00") && summary.contains("医疗机构,新乡市某县人民医院"), "{summary}");
    // CSV without a directory to write into: refused, with a message.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["report", "--from", day, "--to", day, "--format", "csv", "--data"])
        .arg(app.data.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-o"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["totals"]["remind"], 5);
    // A period with nothing in it is an empty report, not an error.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["report", "--from", "2001-01-01", "--to", "2001-01-31", "--format", "json", "--data"])
        .arg(app.data.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["totals"]["decisions"], 0);
    // Bad input: exit 2 with a message, no panic.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["report", "--from", "2025-06-30", "--to", "2025-06-01", "--data"])
        .arg(app.data.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("晚于"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["report", "--from", "2025-06-01", "--to", "2025-06-30", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("未找到审核日志"));
}

/// `claimgate report` with the journal in PostgreSQL: found through `CLAIMGATE_HISTORY_STORE` or the
/// configuration file, as `serve` finds it; not in the data directory.
#[actix_web::test]
async fn the_report_command_reads_the_journal_from_postgres_as_serve_configures_it() {
    let Some(url) = pg("office_report") else { return };
    // Arrange: the demo day through a claimgate whose journal is in the shared store.
    let app = spawn_app_with(Options { history_store: Some(url.clone()), ..Options::default() }).await;
    demo_day(&app).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let report = |extra: &[&std::ffi::OsStr], env: &[(&str, &str)], unset: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"));
        cmd.args(["report", "--from", "2025-06-10", "--to", "2025-06-10", "--format", "json"]).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in unset {
            cmd.env_remove(k);
        }
        cmd.output().unwrap()
    };
    let data = elsewhere.path().as_os_str();
    // Act: through the environment, with a data directory that holds no journal.
    let by_env = report(&["--data".as_ref(), data], &[("CLAIMGATE_HISTORY_STORE", &url)], &[]);
    // Through the configuration file.
    let cfg = elsewhere.path().join("claimgate.yaml");
    std::fs::write(&cfg, format!("history_store: \"{url}\"\ndata: \"{}\"\n", elsewhere.path().display())).unwrap();
    let by_file = report(&["--config".as_ref(), cfg.as_os_str()], &[], &["CLAIMGATE_HISTORY_STORE", "CLAIMGATE_DATA"]);
    // Neither: the (empty) data directory is all it has.
    let neither = report(&["--data".as_ref(), data], &[], &["CLAIMGATE_HISTORY_STORE"]);
    // Assert
    for o in [&by_env, &by_file] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let t = &v["totals"];
        assert_eq!((t["decisions"].as_i64(), t["block"].as_i64(), t["remind"].as_i64()), (Some(13), Some(2), Some(5)));
        assert_eq!(t["intercepted_amount"], "160.00");
        assert_eq!(v["by_day"][0]["key"], "2025-06-10");
    }
    assert_eq!(neither.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("未找到审核日志"));
    assert!(!app.data.path().join("journal.sqlite").exists(), "no local journal with the shared store");
}

/// A claim about 2025-06-10 uploaded (and checked) today counts on 2025-06-10: the trend, the date
/// filters and the listing go by the service date; the listing keeps the time of the check.
#[actix_web::test]
async fn a_claim_is_counted_on_its_service_date_not_on_the_day_it_was_checked() {
    service_date_figures(spawn_app().await).await;
    if let Some(url) = pg("office_service_date") {
        service_date_figures(spawn_app_with(Options { history_store: Some(url), ..Options::default() }).await).await;
    }
}

async fn service_date_figures(app: TestApp) {
    // Arrange: a visit on 2025-06-10, its fee lines uploaded today.
    let (psn, visit) = register(&app, "410702198003150031", "11", 1).await;
    let now = chrono::Local::now();
    let today = now.date_naive().to_string();
    assert_ne!(today, "2025-06-10");
    let mut upload = envelope(
        "2204",
        "H41070100001202506100910000077",
        serde_json::json!({"feedetail": [line("F1", &visit, &psn, "001102000010000", 1, "15.00", "15.00", None)]}),
    );
    upload["inf_time"] = now.format("%Y-%m-%d %H:%M:%S").to_string().into();
    // Act
    let r = app.call(&upload).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    app.state.journal.flush().await;
    // Assert
    let (_, s) = get_json(&app, "/admin/v1/stats").await;
    let days: Vec<(String, i64)> = s["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["key"].as_str().unwrap().to_owned(), d["decisions"].as_i64().unwrap()))
        .collect();
    assert_eq!(days, vec![("2025-06-10".to_owned(), 1)], "the daily trend goes by the service date");
    let (_, on_day) = get_json(&app, "/admin/v1/stats?from=2025-06-10&to=2025-06-10").await;
    assert_eq!(on_day["totals"]["decisions"], 1);
    let (_, checked_today) = get_json(&app, &format!("/admin/v1/stats?from={today}&to={today}")).await;
    assert_eq!(checked_today["totals"]["decisions"], 0, "today is when it was checked, not its date");
    let (_, l) = get_json(&app, "/admin/v1/journal?from=2025-06-10&to=2025-06-10").await;
    assert_eq!(l["total"], 1);
    let item = &l["items"][0];
    assert_eq!(item["service_date"], "2025-06-10");
    assert!(item["at"].as_str().unwrap().starts_with(&today), "the check time is listed too: {item}");
    let (_, page) = app.get("/office", Some(TOKEN)).await;
    assert!(page.contains("data-day=\"2025-06-10\"") && !page.contains(&format!("data-day=\"{today}\"")));
    assert!(page.contains("服务日期"));
}

/// The value shown in the card `data-k="key"`.
fn card(dom: &str, key: &str) -> Option<String> {
    let marker = format!("data-k=\"{key}\">");
    let start = dom.find(&marker)? + marker.len();
    Some(dom[start..].split('<').next()?.to_owned())
}

/// Loads `/office` in real headless Debian chromium: the browser logs in through the form (an
/// auto-submitted copy of it in a local file, so the token is in no URL), follows the redirect with
/// its session cookie, and the rendered DOM must show the demo day's counts.
#[actix_web::test]
async fn the_office_page_in_headless_chromium_shows_the_demo_days_counts() {
    if !browser("the_office_page_in_headless_chromium_shows_the_demo_days_counts") {
        return;
    }
    // Arrange
    let app = spawn_app().await;
    let rows = demo_day(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let login = login_page(dir.path(), &app);
    // Act
    let out =
        chromium_output(&dir.path().join("profile"), &["--dump-dom".into()], &format!("file://{}", login.display()))
            .await;
    let dom = String::from_utf8_lossy(&out.stdout);
    // Assert: logged in, and the cards show what the demo day did.
    assert!(
        !dom.contains("id=\"login\""),
        "chromium did not get past the login: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = rows.iter().filter(|r| r.decision == "block").count().to_string();
    let remind = rows.iter().filter(|r| r.decision == "remind").count().to_string();
    assert_eq!(card(&dom, "block").as_deref(), Some(block.as_str()), "blocks shown");
    assert_eq!(card(&dom, "remind").as_deref(), Some(remind.as_str()), "reminders shown");
    assert_eq!(card(&dom, "decisions").as_deref(), Some("13"));
    assert_eq!(card(&dom, "intercepted_amount").as_deref(), Some("160.00"));
    assert_eq!(card(&dom, "listed").as_deref(), Some("13"));
    // The trend chart, the top rules and the drill-down links are there.
    assert!(dom.contains("<svg id=\"trend\"") && dom.contains("data-block=\"2\""));
    for rule in ["GZ10000302004000", "CG-MUTEX-001", "GZ10000102014000", "CG-DAYS-001", "CG-LOWADM-001"] {
        assert!(dom.contains(&format!("data-rule=\"{rule}\"")), "{rule} in the top rules");
    }
    assert_eq!(dom.matches("href=\"/office/decision/").count(), 13);
    assert_eq!(dom.matches("data-decision=\"block\"").count(), 2);
}

/// A registration (2201) names its department and attending doctor: the journal learns the names,
/// so the office names a doctor whose later messages give the code only.
#[actix_web::test]
async fn a_registration_teaches_the_office_its_department_and_doctor_names() {
    // Arrange, Act: 1101, 2201 (D1 王医生, 100301 内科), 2203 through the proxy.
    let app = spawn_app().await;
    register(&app, "410702198003150031", "11", 1).await;
    // Assert
    let rows =
        app.journal_rows("SELECT kind, code, name FROM j_name WHERE kind <> 'hospital' ORDER BY kind", &[]).await;
    let names: Vec<(String, String, String)> =
        rows.iter().map(|r| (r[0].string(), r[1].string(), r[2].string())).collect();
    assert_eq!(
        names,
        [("dept", "100301", "内科"), ("doctor", "D1", "王医生")].map(|(k, c, n)| (
            k.to_owned(),
            c.to_owned(),
            n.to_owned()
        ))
    );
}
