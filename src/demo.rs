//! `claimgate demo`: claimgate and the simulated gateway in one process on free loopback ports; a
//! day of a small hospital replayed through the real HTTP path; a table of what happened.
//!
//! The day is `tests/fixtures/demo/day.jsonl` (embedded in the binary). Each line is a step
//! `{"who", "what", "at", "save"?, "envelope"}`; `{{psn.X}}`, `{{visit.X}}` and `{{jr.X}}` in the
//! envelope are filled from earlier answers (`save: {"psn": "X"}` keeps a 1101 answer's psn_no, and
//! so on), as an HIS would.

use crate::config::Config;
use crate::sim;
use anyhow::Context;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const DAY: &str = include_str!("../tests/fixtures/demo/day.jsonl");
/// The demo hospital's 医保目录对照 export (HIS code, national code, its name for the item): a fee
/// upload carries codes only, and the hospital's catalogue names them (`item_catalogue`).
pub const CATALOGUE: &str = include_str!("../tests/fixtures/demo/catalogue.csv");

#[derive(serde::Deserialize)]
struct Step {
    who: String,
    what: String,
    at: String,
    #[serde(default)]
    save: HashMap<String, String>,
    envelope: Value,
}

/// One replayed step's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub who: String,
    pub what: String,
    pub infno: String,
    pub decision: String,
    pub infcode: i64,
    pub message: String,
}

fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut s = text.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

/// Fills the header fields an HIS always sends, from the step's nominal time.
fn complete_header(env: &mut Value, at: &str, seq: usize) {
    let compact: String = at.chars().filter(char::is_ascii_digit).collect();
    let defaults = [
        ("msgid", Value::String(format!("H41070100001{compact:0<14}{:04}", seq % 10_000))),
        ("mdtrtarea_admvs", "410700".into()),
        ("insuplc_admdvs", "410700".into()),
        ("recer_sys_code", "HIS".into()),
        ("dev_no", "".into()),
        ("dev_safe_info", "".into()),
        ("cainfo", "".into()),
        ("signtype", "".into()),
        ("infver", "V1.0".into()),
        ("opter_type", "1".into()),
        ("opter", "0153".into()),
        ("opter_name", "收费员".into()),
        ("inf_time", at.into()),
        ("fixmedins_code", "H41070100001".into()),
        ("fixmedins_name", "新乡市某县人民医院".into()),
        ("sign_no", "410700202506100800001234567890".into()),
    ];
    if let Value::Object(m) = env {
        for (k, v) in defaults {
            m.entry(k).or_insert(v);
        }
    }
}

/// Replays `script` against a claimgate at `base` and returns a row per step.
///
/// # Errors
/// A malformed script line or a transport failure.
pub async fn replay(base: &str, script: &str) -> anyhow::Result<Vec<Row>> {
    let client = reqwest::Client::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::new();
    for (n, line) in script.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let step: Step = serde_json::from_str(line).with_context(|| format!("day.jsonl line {}", n + 1))?;
        let mut env: Value = serde_json::from_str(&fill(&step.envelope.to_string(), &vars))?;
        complete_header(&mut env, &step.at, n + 1);
        let infno = env.get("infno").and_then(Value::as_str).unwrap_or("").to_owned();
        let resp = client
            .post(format!("{base}/fsi/api/rsfComIfsService/callService"))
            .header("content-type", "application/json;charset=utf-8")
            .body(serde_json::to_vec(&env)?)
            .send()
            .await?;
        let decision =
            resp.headers().get("x-claimgate-decision").and_then(|v| v.to_str().ok()).unwrap_or("relay").to_owned();
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
        let out = body.get("output").cloned().unwrap_or(Value::Null);
        for (kind, name) in &step.save {
            let v = match kind.as_str() {
                "psn" => out.pointer("/baseinfo/psn_no"),
                "visit" => out.pointer("/data/mdtrt_id").or_else(|| out.pointer("/result/mdtrt_id")),
                "jr" => out.pointer("/result/0/jr_id"),
                "setl" => out.pointer("/setlinfo/setl_id"),
                _ => None,
            };
            if let Some(Value::String(s)) = v {
                vars.insert(format!("{kind}.{name}"), s.clone());
            }
        }
        let infcode = body.get("infcode").and_then(Value::as_i64).unwrap_or(-1);
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let mut message = if infcode != 0 { text("err_msg") } else { text("warn_msg") };
        if infno == "3101" {
            if let Some(r) = out.get("result").and_then(Value::as_array) {
                message = r
                    .iter()
                    .map(|x| {
                        format!("[{}]{}", x["rule_id"].as_str().unwrap_or(""), x["vola_cont"].as_str().unwrap_or(""))
                    })
                    .collect::<Vec<_>>()
                    .join("；");
            }
        }
        if infno == "2207" || infno == "2304" {
            if let Some(f) = out.pointer("/setlinfo/fund_pay_sumamt").and_then(Value::as_str) {
                message = format!("结算成功，基金支付{f}元");
            }
        }
        rows.push(Row { who: step.who, what: step.what, infno, decision, infcode, message });
    }
    Ok(rows)
}

fn label(decision: &str) -> &str {
    match decision {
        "pass" => "通过",
        "remind" => "提醒",
        "block" => "拦截",
        "unchecked" => "未审",
        "relay" => "转发",
        other => other,
    }
}

/// The file a data directory gets when the demo made it: a later demo may clear what an earlier one
/// left there, and never touches a folder without it.
pub const MARKER: &str = ".claimgate-demo";

/// What `serve` keeps under `data` (config.rs), with SQLite's `-wal`/`-shm` companions.
fn is_store_file(name: &str) -> bool {
    name.starts_with("history") || name.starts_with("journal") || name == "bundles"
}

/// Makes `dir` ready for a demo: created (with the marker) when missing or empty; when an earlier
/// demo made it, its store is removed so that the day is journaled once however often the demo
/// runs.
///
/// # Errors
/// `dir` holds files and no marker (it is not the demo's to clear), or it cannot be written.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let marker = dir.join(MARKER);
    let entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("read {}", dir.display()))?;
    if !entries.is_empty() && !marker.exists() {
        anyhow::bail!(
            "{} is not empty and was not made by `claimgate demo`; give an empty or new folder \
             (the demo clears what an earlier demo left in its folder, never anything else)",
            dir.display()
        );
    }
    for e in entries {
        let name = e.file_name();
        if !is_store_file(&name.to_string_lossy()) {
            continue;
        }
        let p = e.path();
        let removed = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        removed.with_context(|| format!("remove {}", p.display()))?;
    }
    std::fs::write(&marker, "claimgate demo data: `claimgate demo --data` clears and refills this folder\n")
        .with_context(|| format!("write {}", marker.display()))?;
    Ok(())
}

/// Display width of a cell: CJK characters take two terminal columns.
fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// The rows as a table whose columns line up in a terminal (padded by display width, not by
/// characters); the last column (说明) is not padded.
pub fn table(rows: &[Row]) -> String {
    let head = ["#", "患者", "业务", "交易", "结果", "说明"];
    let mut cells: Vec<[String; 6]> = vec![head.map(str::to_owned)];
    for (i, r) in rows.iter().enumerate() {
        cells.push([
            (i + 1).to_string(),
            r.who.clone(),
            r.what.clone(),
            r.infno.clone(),
            label(&r.decision).to_owned(),
            r.message.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
    let mut out = String::new();
    for row in &cells {
        // The number is right-aligned, the text columns left-aligned, two spaces between columns.
        out.push_str(&" ".repeat(widths[0] - width(&row[0])));
        out.push_str(&row[0]);
        for (c, w) in row.iter().zip(widths).skip(1).take(4) {
            out.push_str("  ");
            out.push_str(c);
            out.push_str(&" ".repeat(w - width(c)));
        }
        out.push_str("  ");
        out.push_str(&row[5]);
        // A step without a message (a relayed sign-in) ends at its last cell.
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// Where the demo's store lives: a temporary folder removed when the demo ends, or the caller's.
enum Data {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Data {
    fn path(&self) -> &Path {
        match self {
            Data::Temporary(t) => t.path(),
            Data::Kept(p) => p,
        }
    }
}

/// `claimgate demo [--data DIR]`: everything it prints is still true when it has exited (no address
/// of a server that has stopped; the journal's folder named only when it is kept).
///
/// # Errors
/// The data folder is not the demo's, the packs do not load, a port cannot be bound, a step fails in
/// transport.
pub fn run_blocking(rules: &[PathBuf], data: Option<&Path>) -> anyhow::Result<()> {
    let data = match data {
        Some(d) => {
            prepare(d)?;
            Data::Kept(d.to_path_buf())
        }
        None => Data::Temporary(tempfile::Builder::new().prefix("claimgate-demo-").tempdir()?),
    };
    actix_web::rt::System::new().block_on(async move {
        let (sim_addr, sim_server) = sim::build("127.0.0.1:0")?;
        let sim_handle = sim_server.handle();
        actix_web::rt::spawn(sim_server);
        let mut catalogue = tempfile::Builder::new().prefix("claimgate-demo-catalogue-").suffix(".csv").tempfile()?;
        std::io::Write::write_all(&mut catalogue, CATALOGUE.as_bytes())?;
        let cfg = Config {
            listen: "127.0.0.1:0".into(),
            upstream: Some(format!("http://{sim_addr}/fsi/api/rsfComIfsService/callService")),
            rules: rules.to_vec(),
            data: data.path().to_path_buf(),
            institution_tier: Some("2".into()),
            warn_msg_reminders: true,
            item_catalogue: Some(catalogue.path().to_path_buf()),
            ..Config::default()
        };
        let g = crate::startup::build(cfg)?;
        if g.state.rules.load().is_none() {
            let e = g.state.last_error().unwrap_or_default();
            anyhow::bail!("rule packs refused:\n{}", e.trim_end());
        }
        let handle = g.handle.clone();
        let ruleset = g.state.rules.load_full().map(|a| a.rs.revision()).unwrap_or_default();
        actix_web::rt::spawn(g.server);
        let base = format!("http://{}", g.addr);
        println!("claimgate 演示：claimgate 与模拟医保网关在本机临时端口上运行，演示结束即停止（规则包 {ruleset}，二级医院）\n");
        let rows = replay(&base, DAY).await?;
        // The journal is durable before the demo exits (the office page reads it afterwards).
        g.state.journal.flush().await;
        handle.stop(true).await;
        sim_handle.stop(true).await;
        print!("{}", table(&rows));
        let count = |d: &str| rows.iter().filter(|r| r.decision == d).count();
        println!(
            "\n合计 {} 笔：通过 {}，提醒 {}，拦截 {}，转发(非审核交易) {}；被拦截的交易未发往医保网关。",
            rows.len(),
            count("pass"),
            count("remind"),
            count("block"),
            count("relay")
        );
        match &data {
            Data::Kept(dir) => {
                println!(
                    "审核日志与患者历史保存在 {}（再次运行会先清除上次演示的数据，不会重复累计）。",
                    dir.display()
                );
                println!(
                    "查看自律办公室看板：CLAIMGATE_ADMIN_TOKEN=<令牌> claimgate serve --data {}，然后打开 http://127.0.0.1:8080/office",
                    dir.display()
                );
            }
            Data::Temporary(_) => println!(
                "审核日志写在临时目录，演示结束时已删除；要保留并在自律办公室看板查看，请运行 claimgate demo --data <目录>。"
            ),
        }
        println!("claimgate serve 运行时，指标见其 /metrics（Prometheus 文本格式）；规则说明见 docs/rule-format.md");
        Ok(())
    })
}
