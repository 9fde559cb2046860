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
use std::path::PathBuf;

pub const DAY: &str = include_str!("../tests/fixtures/demo/day.jsonl");

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

/// `claimgate demo`.
///
/// # Errors
/// The packs do not load, a port cannot be bound, a step fails in transport.
pub fn run_blocking(rules: &[PathBuf]) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let (sim_addr, sim_server) = sim::build("127.0.0.1:0")?;
        let sim_handle = sim_server.handle();
        actix_web::rt::spawn(sim_server);
        let cfg = Config {
            listen: "127.0.0.1:0".into(),
            upstream: Some(format!("http://{sim_addr}/fsi/api/rsfComIfsService/callService")),
            rules: rules.to_vec(),
            institution_tier: Some("2".into()),
            warn_msg_reminders: true,
            ..Config::default()
        };
        let g = crate::startup::build(cfg)?;
        if g.state.rules.load().is_none() {
            let e = g.state.last_error().unwrap_or_default();
            anyhow::bail!("rule packs refused:\n{e}");
        }
        let handle = g.handle.clone();
        let ruleset = g.state.rules.load_full().map(|a| a.rs.revision()).unwrap_or_default();
        actix_web::rt::spawn(g.server);
        let base = format!("http://{}", g.addr);
        println!("claimgate 演示：{base} → 模拟医保网关 http://{sim_addr}（规则包 {ruleset}，二级医院）\n");
        let rows = replay(&base, DAY).await?;
        // The journal is durable before the demo exits (the office page reads it afterwards).
        g.state.journal.flush().await;
        println!("{:>3}  {:<8} {:<26} {:<5} {:<4} 说明", "#", "患者", "业务", "交易", "结果");
        for (i, r) in rows.iter().enumerate() {
            println!(
                "{:>3}  {:<8} {:<26} {:<5} {:<4} {}",
                i + 1,
                r.who,
                r.what,
                r.infno,
                label(&r.decision),
                r.message
            );
        }
        let count = |d: &str| rows.iter().filter(|r| r.decision == d).count();
        println!(
            "\n合计 {} 笔：通过 {}，提醒 {}，拦截 {}，转发(非审核交易) {}；被拦截的交易未发往医保网关。",
            rows.len(),
            count("pass"),
            count("remind"),
            count("block"),
            count("relay")
        );
        println!("指标见 {base}/metrics ；规则说明见 docs/rule-format.md");
        println!(
            "审核日志已写入 {}；查看自律办公室看板：CLAIMGATE_ADMIN_TOKEN=<令牌> claimgate serve，然后打开 http://127.0.0.1:8080/office",
            g.state.journal.location()
        );
        handle.stop(true).await;
        sim_handle.stop(true).await;
        Ok(())
    })
}
