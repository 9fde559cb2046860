//! A simulated settlement gateway that speaks the national envelope: visits, fee details,
//! pre-settlement and settlement with a deductible and a reimbursement ratio per insutype, reversals,
//! retries answered once per `msgid`, and fault modes for tests (`POST /sim/mode`).
//!
//! Control routes (not part of the national interface):
//! - `POST /sim/mode` `{"mode": "normal" | "slow" | "garbage" | "reject" | "hang", "delay_ms": 500}`
//! - `GET /sim/received` — the last 1,000 requests received (infno, headers, body)
//! - `POST /sim/reset`

use crate::wire::num::{format_fixed, parse_fixed};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Normal,
    Slow,
    Garbage,
    Reject,
    Hang,
}

#[derive(Default, Clone)]
struct Visit {
    psn_no: String,
    insutype: String,
    inpatient: bool,
    /// feedetl_sn → (amount in fen, setl_id when settled).
    lines: BTreeMap<String, (i64, Option<String>)>,
}

struct Setl {
    mdtrt_id: String,
}

struct Inner {
    seq: u64,
    mode: Mode,
    delay_ms: u64,
    visits: HashMap<String, Visit>,
    setls: HashMap<String, Setl>,
    /// msgid → answer already given (a retry gets the same answer and changes nothing).
    answered: HashMap<String, Vec<u8>>,
    received: VecDeque<Value>,
}

/// The simulator's state. A std Mutex: every critical section is short and never spans an await.
pub struct Sim {
    inner: Mutex<Inner>,
}

impl Default for Sim {
    fn default() -> Self {
        Sim {
            inner: Mutex::new(Inner {
                seq: 0,
                mode: Mode::Normal,
                delay_ms: 0,
                visits: HashMap::new(),
                setls: HashMap::new(),
                answered: HashMap::new(),
                received: VecDeque::new(),
            }),
        }
    }
}

impl Sim {
    /// The answer envelope to `request`, in process (the traffic generator records exchanges with it).
    /// `at` stands in for the wall clock in the answer's times.
    pub fn answer_envelope(&self, request: &Value) -> Value {
        let infno = text(request, "infno");
        let area = text(request, "mdtrtarea_admvs");
        let msgid = text(request, "msgid");
        let (code, err, output) = self.answer(&infno, &area, &msgid, request.get("input").unwrap_or(&Value::Null));
        let at = text(request, "inf_time").replace(['-', ' ', ':'], "");
        json!({"infcode": code, "inf_refmsgid": format!("{:0>6}{}{:010}", area, at, self.inner.lock().map(|g| g.seq).unwrap_or(0)),
            "refmsg_time": format!("{at}000"), "respond_time": format!("{at}100"), "err_msg": err, "warn_msg": null, "output": output})
    }
}

/// 居民 390: 50%, 职工 310: 70%; inpatient deductible 300 元, outpatient none (simulation values).
fn policy(insutype: &str, inpatient: bool) -> (i64, i64) {
    let ratio = if insutype.starts_with("31") { 70 } else { 50 };
    (if inpatient { 30_000 } else { 0 }, ratio)
}

fn fen_text(f: i64) -> String {
    format_fixed(f, 2, 2)
}

fn amount(v: &Value) -> i64 {
    match v {
        Value::Number(n) => parse_fixed(&n.to_string(), 2).unwrap_or(0),
        Value::String(s) => parse_fixed(s, 2).unwrap_or(0),
        _ => 0,
    }
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Gender and birth date from an 18-digit 居民身份证号 (digits 7–14 birth, digit 17 odd = 男).
fn from_certno(cert: &str) -> (String, String) {
    let b = cert.as_bytes();
    if b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) {
        let g = if (b[16] - b'0') % 2 == 1 { "1" } else { "2" };
        return (g.into(), format!("{}-{}-{}", &cert[6..10], &cert[10..12], &cert[12..14]));
    }
    ("0".into(), String::new())
}

/// The id the gateway hands out for a request (`kind`: G outpatient visit, Z inpatient stay, S
/// settlement): a function of the request's `msgid` when it has one, so a recorded stream replayed
/// through claimgate to a fresh simulator meets the ids it recorded (a replayed 2401 gets the
/// `mdtrt_id` its recorded fee uploads, discharge and settlement name); the sequence number
/// otherwise.
fn issued_id(area: &str, kind: char, msgid: &str, seq: u64) -> String {
    use sha2::Digest;
    if msgid.is_empty() {
        return format!("{area:0>6}{kind}{seq:010}");
    }
    let d = sha2::Sha256::digest(msgid.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&d[..8]);
    format!("{area:0>6}{kind}{:018}", u64::from_be_bytes(n) % 1_000_000_000_000_000_000)
}

impl Sim {
    fn answer(&self, infno: &str, area: &str, msgid: &str, input: &Value) -> (i32, Option<String>, Value) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.seq += 1;
        let seq = g.seq;
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let data = input.get("data").cloned().unwrap_or(Value::Null);
        match infno {
            "9001" => (
                0,
                None,
                json!({"signinoutb": {"sign_time": now, "sign_no": format!("{area}{}{seq:010}", chrono::Local::now().format("%Y%m%d%H%M%S"))}}),
            ),
            "1101" => {
                let cert = text(&data, "certno");
                let cert = if cert.is_empty() { text(&data, "mdtrt_cert_no") } else { cert };
                let (gend, brdy) = from_certno(&cert);
                let tail: String = cert.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
                let psn_no = format!("{area:0>6}{:0>20}", tail);
                let insutype = if cert.as_bytes().get(15).is_some_and(|d| d % 2 == 0) { "310" } else { "390" };
                (
                    0,
                    None,
                    json!({
                        "baseinfo": {"psn_no": psn_no, "psn_cert_type": "01", "certno": cert, "psn_name": text(&data, "psn_name"), "gend": gend, "naty": "01", "brdy": brdy, "age": 0},
                        "insuinfo": [{"balc": 0, "insutype": insutype, "psn_type": if insutype == "310" {"11"} else {"15"}, "psn_insu_stas": "1", "psn_insu_date": "2020-01-01", "paus_insu_date": null, "cvlserv_flag": "0", "insuplc_admdvs": area, "emp_name": ""}],
                        "idetinfo": []
                    }),
                )
            }
            "2201" => {
                let id = issued_id(area, 'G', msgid, seq);
                g.visits.insert(
                    id.clone(),
                    Visit { psn_no: text(&data, "psn_no"), insutype: text(&data, "insutype"), ..Visit::default() },
                );
                (
                    0,
                    None,
                    json!({"data": {"mdtrt_id": id, "psn_no": text(&data, "psn_no"), "ipt_otp_no": text(&data, "ipt_otp_no")}}),
                )
            }
            "2401" => {
                let m = input.get("mdtrtinfo").cloned().unwrap_or(Value::Null);
                let id = issued_id(area, 'Z', msgid, seq);
                g.visits.insert(
                    id.clone(),
                    Visit {
                        psn_no: text(&m, "psn_no"),
                        insutype: text(&m, "insutype"),
                        inpatient: true,
                        ..Visit::default()
                    },
                );
                (0, None, json!({"result": {"mdtrt_id": id}}))
            }
            "2204" | "2301" => upload(&mut g, input),
            "2205" | "2302" => {
                let id = text(&data, "mdtrt_id");
                let sn = text(&data, "feedetl_sn");
                let Some(v) = g.visits.get_mut(&id) else {
                    return (-1, Some(format!("就诊信息不存在：{id}")), json!({}));
                };
                if infno == "2205" || sn == "0000" || sn.is_empty() {
                    v.lines.retain(|_, (_, s)| s.is_some());
                } else {
                    v.lines.retain(|k, (_, s)| k != &sn || s.is_some());
                }
                (0, None, json!({}))
            }
            "2206" | "2207" | "2303" | "2304" => {
                let setl_id = issued_id(area, 'S', msgid, seq);
                settle(&mut g, infno, (area, seq, setl_id), &data)
            }
            "2208" | "2305" => {
                let sid = text(&data, "setl_id");
                let Some(s) = g.setls.remove(&sid) else {
                    return (-1, Some(format!("结算信息不存在：{sid}")), json!({}));
                };
                if let Some(v) = g.visits.get_mut(&s.mdtrt_id) {
                    for (_, st) in v.lines.values_mut().filter(|(_, st)| st.as_deref() == Some(sid.as_str())) {
                        *st = None;
                    }
                }
                (0, None, json!({"setlinfo": {"setl_id": sid, "mdtrt_id": s.mdtrt_id}}))
            }
            _ => (0, None, json!({})),
        }
    }
}

/// 2204 / 2301: each line kept on its visit (refused when the visit is unknown), answered per line.
fn upload(g: &mut Inner, input: &Value) -> (i32, Option<String>, Value) {
    let lines = input.get("feedetail").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for l in &lines {
        let id = text(l, "mdtrt_id");
        let Some(v) = g.visits.get_mut(&id) else {
            return (-1, Some(format!("就诊信息不存在：{id}")), json!({}));
        };
        let amt = amount(l.get("det_item_fee_sumamt").unwrap_or(&Value::Null));
        let sn = text(l, "feedetl_sn");
        v.lines.entry(sn.clone()).or_insert((amt, None));
        let code = text(l, "med_list_codg");
        let cat = match code.as_bytes().first() {
            Some(b'X') => "09",
            Some(b'Z') => "11",
            Some(b'C') => "08",
            _ => "05",
        };
        out.push(json!({"feedetl_sn": sn, "det_item_fee_sumamt": fen_text(amt), "cnt": l.get("cnt"), "pric": l.get("pric"),
            "pric_uplmt_amt": l.get("pric"), "selfpay_prop": "0", "fulamt_ownpay_amt": "0.00", "overlmt_amt": "0.00",
            "preselfpay_amt": "0.00", "inscp_scp_amt": fen_text(amt), "chrgitm_lv": "01", "med_chrgitm_type": cat,
            "bas_medn_flag": "0", "hi_nego_drug_flag": "0", "chld_medc_flag": "0", "list_sp_item_flag": "0", "lmt_used_flag": "0", "drt_reim_flag": "0", "memo": ""}));
    }
    (0, None, json!({"result": out}))
}

/// 2206 / 2303 (pre-settlement) and 2207 / 2304 (settlement): the visit's open lines under a
/// simple policy; a settlement marks them settled.
fn settle(g: &mut Inner, infno: &str, ids: (&str, u64, String), data: &Value) -> (i32, Option<String>, Value) {
    let (area, seq, issued) = ids;
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let id = text(data, "mdtrt_id");
    let Some(v) = g.visits.get(&id).cloned() else {
        return (-1, Some(format!("就诊信息不存在：{id}")), json!({}));
    };
    let insutype = if text(data, "insutype").is_empty() { v.insutype.clone() } else { text(data, "insutype") };
    let total: i64 = v.lines.values().filter(|(_, s)| s.is_none()).map(|(a, _)| *a).sum();
    let (deductible, ratio) = policy(&insutype, v.inpatient);
    let base = (total - deductible).max(0);
    let fund = (base * ratio + 50) / 100;
    let cash = total - fund;
    let settle = matches!(infno, "2207" | "2304");
    let setl_id = if settle { issued } else { String::new() };
    if settle {
        if let Some(vm) = g.visits.get_mut(&id) {
            for (_, s) in vm.lines.values_mut().filter(|(_, s)| s.is_none()) {
                *s = Some(setl_id.clone());
            }
        }
        g.setls.insert(setl_id.clone(), Setl { mdtrt_id: id.clone() });
    }
    let fund_code = if insutype.starts_with("31") { "310100" } else { "390100" };
    (
        0,
        None,
        json!({
            "setlinfo": {"mdtrt_id": id, "setl_id": setl_id, "psn_no": v.psn_no, "insutype": insutype, "setl_time": now,
                "medfee_sumamt": fen_text(total), "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00",
                "inscp_scp_amt": fen_text(total), "act_pay_dedc": fen_text(deductible.min(total)), "hifp_pay": fen_text(fund),
                "pool_prop_selfpay": format!("{}", ratio as f64 / 100.0), "cvlserv_pay": "0.00", "hifes_pay": "0.00", "hifmi_pay": "0.00",
                "hifob_pay": "0.00", "maf_pay": "0.00", "oth_pay": "0.00", "fund_pay_sumamt": fen_text(fund), "psn_part_amt": fen_text(cash),
                "acct_pay": "0.00", "psn_cash_pay": fen_text(cash), "hosp_part_amt": "0.00", "balc": "0.00", "acct_mulaid_pay": "0.00",
                "medins_setl_id": format!("M{seq}"), "clr_optins": area, "clr_way": "1", "clr_type": "11"},
            "setldetail": [{"fund_pay_type": fund_code, "fund_pay_type_name": if fund_code == "310100" {"职工基本医疗保险统筹基金"} else {"城乡居民基本医疗保险基金"},
                "inscp_scp_amt": fen_text(total), "crt_payb_lmt_amt": fen_text(fund), "fund_payamt": fen_text(fund), "setl_proc_info": ""}]
        }),
    )
}

async fn call(req: HttpRequest, body: web::Bytes, sim: web::Data<Sim>) -> HttpResponse {
    let (mode, delay) = {
        let g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.mode, g.delay_ms)
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let infno = text(&parsed, "infno");
    let infno = if infno.is_empty() { req.match_info().get("infno").unwrap_or("").to_owned() } else { infno };
    {
        let mut g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
            .collect();
        g.received.push_back(json!({"infno": infno, "headers": headers, "body": String::from_utf8_lossy(&body)}));
        while g.received.len() > 1000 {
            g.received.pop_front();
        }
    }
    match mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Mode::Slow => tokio::time::sleep(Duration::from_millis(delay)).await,
        Mode::Garbage => {
            return HttpResponse::Ok().content_type("text/html").body("<html><body>502 Bad Gateway</body></html>")
        }
        _ => {}
    }
    let area = text(&parsed, "mdtrtarea_admvs");
    let msgid = text(&parsed, "msgid");
    if !msgid.is_empty() {
        let g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(prev) = g.answered.get(&msgid) {
            return HttpResponse::Ok().content_type("application/json;charset=utf-8").body(prev.clone());
        }
    }
    let (code, err, output) = if parsed.is_null() {
        (-1, Some("报文不是合法的JSON".to_owned()), json!({}))
    } else if mode == Mode::Reject {
        (-1, Some("医保平台内部错误（模拟）".to_owned()), json!({}))
    } else {
        sim.answer(&infno, &area, &msgid, parsed.get("input").unwrap_or(&Value::Null))
    };
    let now = chrono::Local::now();
    let body = serde_json::to_vec(&json!({
        "infcode": code,
        "inf_refmsgid": format!("{:0>6}{}{:010}", if area.is_empty() {"000000"} else {area.as_str()}, now.format("%Y%m%d%H%M%S"), now.timestamp_subsec_micros()),
        "refmsg_time": now.format("%Y%m%d%H%M%S%3f").to_string(),
        "respond_time": now.format("%Y%m%d%H%M%S%3f").to_string(),
        "err_msg": err, "warn_msg": null, "output": output
    }))
    .unwrap_or_default();
    if !msgid.is_empty() && code == 0 {
        let mut g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.answered.len() > 200_000 {
            g.answered.clear();
        }
        g.answered.insert(msgid, body.clone());
    }
    HttpResponse::Ok().content_type("application/json;charset=utf-8").body(body)
}

#[derive(serde::Deserialize)]
struct ModeReq {
    mode: Mode,
    #[serde(default)]
    delay_ms: u64,
}

async fn set_mode(m: web::Json<ModeReq>, sim: web::Data<Sim>) -> HttpResponse {
    let mut g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
    g.mode = m.mode;
    g.delay_ms = m.delay_ms;
    HttpResponse::Ok().json(json!({"mode": m.mode, "delay_ms": m.delay_ms}))
}

async fn received(sim: web::Data<Sim>) -> HttpResponse {
    let g = sim.inner.lock().unwrap_or_else(|p| p.into_inner());
    HttpResponse::Ok().json(g.received.iter().collect::<Vec<_>>())
}

async fn reset(sim: web::Data<Sim>) -> HttpResponse {
    *sim.inner.lock().unwrap_or_else(|p| p.into_inner()) =
        Sim::default().inner.into_inner().unwrap_or_else(|p| p.into_inner());
    HttpResponse::Ok().json(json!({"reset": true}))
}

/// Binds and builds the simulator (not yet polled).
///
/// # Errors
/// The address cannot be bound.
pub fn build(listen: &str) -> anyhow::Result<(SocketAddr, actix_web::dev::Server)> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("bind {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let sim = web::Data::new(Sim::default());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(sim.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route("/sim/mode", web::post().to(set_mode))
            .route("/sim/received", web::get().to(received))
            .route("/sim/reset", web::post().to(reset))
            .route("/fsi/api/rsfComIfsService/callService/{infno}", web::post().to(call))
            .default_service(web::post().to(call))
    })
    .workers(2)
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok((addr, server))
}

/// `claimgate sim-gateway`.
///
/// # Errors
/// Startup failures.
pub fn run_blocking(listen: &str) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let (addr, server) = build(listen)?;
        tracing::info!(%addr, "simulated settlement gateway listening");
        server.await?;
        Ok(())
    })
}
