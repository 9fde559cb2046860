//! Patient history through the real proxy and the simulated gateway, against both stores: SQLite
//! (embedded) and PostgreSQL (shared; `CLAIMGATE_TEST_PG` names a server — `.ci/run` starts one and
//! sets `CLAIMGATE_REQUIRE_PG`, so CI never skips these).

use crate::helpers::*;
use serde_json::{json, Value};

async fn app(store: Option<String>, packs: Vec<&'static str>) -> TestApp {
    spawn_app_with(Options { history_store: store, packs, ..Options::default() }).await
}

/// 1101 + 2201 for a 城乡居民 (390) outpatient on `day`; returns (psn_no, mdtrt_id).
async fn outpatient(app: &TestApp, certno: &str, day: &str, tag: &str) -> (String, String) {
    let at = format!("{day} 08:00:00");
    let mut e = envelope(
        "1101",
        &format!("Q{tag}"),
        json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "certno": certno, "psn_cert_type": "01", "psn_name": "测试"}}),
    );
    e["inf_time"] = at.clone().into();
    let psn = app.call(&e).await.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let mut e = envelope(
        "2201",
        &format!("R{tag}"),
        json!({"data": {"psn_no": psn, "insutype": "390", "begntime": at, "mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "ipt_otp_no": format!("MZ{tag}"), "atddr_no": "D1", "dr_name": "王医生", "dept_code": "100301", "dept_name": "内科", "caty": "A03"}}),
    );
    e["inf_time"] = at.into();
    let visit = app.call(&e).await.json["output"]["data"]["mdtrt_id"].as_str().unwrap().to_owned();
    (psn, visit)
}

fn at_day(mut e: Value, day: &str) -> Value {
    e["inf_time"] = format!("{day} 09:00:00").into();
    e
}

/// 2204 (one 40-元-style line of `amount`), then 2206; returns the 2206 reply.
async fn upload_and_presettle(app: &TestApp, psn: &str, visit: &str, amount: &str, tag: &str, day: &str) -> Reply {
    let mut l = line(&format!("F{tag}"), visit, psn, "003101000010000", 1, amount, amount, None);
    l["fee_ocur_time"] = format!("{day} 08:30:00").into();
    let r = app.call(&at_day(envelope("2204", &format!("U{tag}"), json!({"feedetail": [l]})), day)).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    app.call(&at_day(envelope("2206", &format!("P{tag}"), settle_input(psn, visit)), day)).await
}

fn settle_input(psn: &str, visit: &str) -> Value {
    json!({"data": {"psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": "x", "med_type": "11", "psn_setlway": "01", "mdtrt_id": visit, "chrg_bchno": "B1", "insutype": "390", "acct_used_flag": "0"}})
}

async fn settle(app: &TestApp, psn: &str, visit: &str, msgid: &str, day: &str) -> Reply {
    app.call(&at_day(envelope("2207", msgid, settle_input(psn, visit)), day)).await
}

/// 居民 (certno digit 16 odd → 390 in the simulated gateway), 男.
const CERT: &str = "410702195503150031";
const DAY: &str = "2025-11-03";

async fn cap_sequence(store: Option<String>) {
    let app = app(store, vec!["national-baseline", "examples/xinxiang-2025"]).await;
    // Claim 1: 40 元 → the fund pays 20 (居民 50%).
    let (psn, v1) = outpatient(&app, CERT, DAY, "1").await;
    let r = upload_and_presettle(&app, &psn, &v1, "40.00", "1", DAY).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let s1 = settle(&app, &psn, &v1, "S1", DAY).await;
    assert_eq!(s1.json["infcode"], 0);
    let setl1 = s1.json["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_owned();
    // Claim 2: 36 元 → 18; 38 used.
    let (_, v2) = outpatient(&app, CERT, DAY, "2").await;
    assert_eq!(upload_and_presettle(&app, &psn, &v2, "36.00", "2", DAY).await.decision.as_deref(), Some("pass"));
    assert_eq!(settle(&app, &psn, &v2, "S2", DAY).await.json["infcode"], 0);
    // Claim 3: 40 元 → 20; 38 + 20 > 50: stopped at pre-settlement, with the arithmetic.
    let (_, v3) = outpatient(&app, CERT, DAY, "3").await;
    let r = upload_and_presettle(&app, &psn, &v3, "40.00", "3", DAY).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    assert_eq!(r.json["infcode"], -1);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(
        msg.contains("DAILY-CAP-390")
            && msg.contains("单日统筹报销限额50.00元，今日已报销38.00元，本次申请20.00元，超出8.00元"),
        "{msg}"
    );
    let hit = &r.json["output"]["claimgate"]["hits"][0];
    assert_eq!(hit["amount"], "8.00");
    // Settling anyway is stopped too (the pre-settlement's fund share is remembered).
    let r = settle(&app, &psn, &v3, "S3", DAY).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    assert!(app
        .received()
        .await
        .iter()
        .all(|x| !(x["infno"] == "2207" && x["body"].as_str().unwrap().contains("\"S3\""))));
    // A reversal in between: claim 1's settlement cancelled (2208) → 18 + 20 ≤ 50, claim 3 passes.
    let r = app
        .call(&at_day(envelope("2208", "C1", json!({"data": {"setl_id": setl1, "mdtrt_id": v1, "psn_no": psn}})), DAY))
        .await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    let r = app.call(&at_day(envelope("2206", "P3b", settle_input(&psn, &v3)), DAY)).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let r = settle(&app, &psn, &v3, "S3b", DAY).await;
    assert_eq!((r.decision.as_deref(), r.json["infcode"].as_i64()), (Some("pass"), Some(0)), "{}", r.json);
    // The next day starts from zero.
    let (_, v4) = outpatient(&app, CERT, "2025-11-04", "4").await;
    assert_eq!(
        upload_and_presettle(&app, &psn, &v4, "90.00", "4", "2025-11-04").await.decision.as_deref(),
        Some("pass")
    );
}

/// 2207 with no 2206 before it: the fund share is unknown but cannot exceed the policy-range amount.
async fn settle_without_presettlement(store: Option<String>) {
    let app = app(store, vec!["national-baseline", "examples/xinxiang-2025"]).await;
    // Arrange: 20 元 of fund paid today (40 元, 居民 50%).
    let (psn, v1) = outpatient(&app, CERT, DAY, "1").await;
    assert_eq!(upload_and_presettle(&app, &psn, &v1, "40.00", "1", DAY).await.decision.as_deref(), Some("pass"));
    assert_eq!(settle(&app, &psn, &v1, "S1", DAY).await.json["infcode"], 0);
    // Act + Assert, under: a 20 元 claim settled directly — at most 20 more, 40 ≤ 50: it passes.
    let (_, v2) = outpatient(&app, CERT, DAY, "2").await;
    let mut l = line("F2", &v2, &psn, "003101000010000", 1, "20.00", "20.00", None);
    l["fee_ocur_time"] = format!("{DAY} 08:30:00").into();
    assert_eq!(app.call(&at_day(envelope("2204", "U2", json!({"feedetail": [l]})), DAY)).await.json["infcode"], 0);
    let r = settle(&app, &psn, &v2, "S2", DAY).await;
    assert_eq!((r.decision.as_deref(), r.json["infcode"].as_i64()), (Some("pass"), Some(0)), "{}", r.json);
    // Over: a 60 元 claim settled directly — up to 60 more against the 20 left: blocked, asking for 2206.
    let (_, v3) = outpatient(&app, CERT, DAY, "3").await;
    let mut l = line("F3", &v3, &psn, "003101000010000", 1, "60.00", "60.00", None);
    l["fee_ocur_time"] = format!("{DAY} 08:30:00").into();
    assert_eq!(app.call(&at_day(envelope("2204", "U3", json!({"feedetail": [l]})), DAY)).await.json["infcode"], 0);
    let r = settle(&app, &psn, &v3, "S3", DAY).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(msg.contains("DAILY-CAP-390") && msg.contains("未经预结算") && msg.contains("请先预结算"), "{msg}");
    assert!(app
        .received()
        .await
        .iter()
        .all(|x| !(x["infno"] == "2207" && x["body"].as_str().unwrap().contains("\"S3\""))));
    // The pre-settlement it asked for tells the real share, and the claim is judged on it.
    let r = app.call(&at_day(envelope("2206", "P3", settle_input(&psn, &v3)), DAY)).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "30 more against 20 left: {}", r.json);
}

#[actix_web::test]
async fn settling_without_a_presettlement_cannot_bypass_the_cap_sqlite() {
    settle_without_presettlement(None).await;
}

#[actix_web::test]
async fn settling_without_a_presettlement_cannot_bypass_the_cap_postgres() {
    if let Some(url) = pg("cap_no_2206") {
        settle_without_presettlement(Some(url)).await;
    }
}

/// Eight 20 元 claims of one 居民 patient, each pre-settled alone (10 元 of fund each, under the
/// 50 元 cap), then settled all at once, half through `a` and half through `b`: the day's fund
/// never passes the cap — five settle, three are stopped.
async fn concurrent_settlements(a: TestApp, b: Option<TestApp>) {
    let (psn, _) = outpatient(&a, CERT, DAY, "0").await;
    let mut visits = Vec::new();
    for i in 1..=8 {
        let (_, v) = outpatient(&a, CERT, DAY, &i.to_string()).await;
        let r = upload_and_presettle(&a, &psn, &v, "20.00", &i.to_string(), DAY).await;
        assert_eq!(r.decision.as_deref(), Some("pass"), "alone each is under the cap: {}", r.json);
        visits.push(v);
    }
    let mut tasks = Vec::new();
    for (i, v) in visits.iter().enumerate() {
        let to = if i % 2 == 1 { b.as_ref().unwrap_or(&a) } else { &a };
        let body = serde_json::to_vec(&at_day(envelope("2207", &format!("S{i}"), settle_input(&psn, v)), DAY)).unwrap();
        let (c, url) = (to.client.clone(), format!("{}/fsi/api/rsfComIfsService/callService", to.base));
        tasks.push(actix_web::rt::spawn(async move {
            let r = c.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }));
    }
    let (mut settled_n, mut fund) = (0, 0.0);
    for t in tasks {
        let j = t.await.unwrap();
        if j["infcode"] == 0 {
            settled_n += 1;
            fund += j["output"]["setlinfo"]["fund_pay_sumamt"].as_str().unwrap().parse::<f64>().unwrap();
        } else {
            let msg = j["err_msg"].as_str().unwrap();
            assert!(msg.contains("DAILY-CAP-390") && msg.contains("单日统筹报销限额50.00元"), "{msg}");
        }
    }
    assert_eq!(settled_n, 5, "50 元 of cap is five 10 元 shares; fund settled {fund}");
    assert!(fund <= 50.0, "the day's fund {fund} passed the 50 元 cap");
    assert_eq!(settled(&a), (5, 5000), "history holds the five settlements, 50.00 元 of fund");
}

#[actix_web::test]
async fn concurrent_settlements_of_one_person_never_pass_the_cap_sqlite() {
    concurrent_settlements(app(None, vec!["national-baseline", "examples/xinxiang-2025"]).await, None).await;
}

#[actix_web::test]
async fn concurrent_settlements_over_two_instances_sharing_postgres_never_pass_the_cap() {
    let Some(url) = pg("cap_concurrent") else { return };
    let packs = vec!["national-baseline", "examples/xinxiang-2025"];
    let a = app(Some(url.clone()), packs.clone()).await;
    // B shares A's store and A's (simulated) gateway: two instances behind one load balancer.
    let gateway = format!("{}/fsi/api/rsfComIfsService/callService", a.sim);
    let b = spawn_app_with(Options {
        history_store: Some(url),
        packs,
        upstream: Upstream::Url(gateway),
        ..Options::default()
    })
    .await;
    concurrent_settlements(a, Some(b)).await;
}

#[actix_web::test]
async fn daily_cap_sequence_sqlite() {
    cap_sequence(None).await;
}

#[actix_web::test]
async fn daily_cap_sequence_postgres() {
    if let Some(url) = pg("cap") {
        cap_sequence(Some(url)).await;
    }
}

/// Settlement rows and the fund they paid.
fn settled(app: &TestApp) -> (i64, i64) {
    (
        app.history_int("SELECT COUNT(*) FROM h_setl WHERE cancelled = 0"),
        app.history_int("SELECT CAST(COALESCE(SUM(hifp), 0) AS BIGINT) FROM h_setl WHERE cancelled = 0"),
    )
}

async fn retries(store: Option<String>) {
    // The 500 copies of one person's settlement take turns (one at a time, each waiting up to the
    // upstream timeout for its turn): on a loaded debug build that queue outlasts the default 5 s.
    let app = spawn_app_with(Options {
        history_store: store,
        packs: vec!["national-baseline", "examples/xinxiang-2025"],
        upstream_timeout_ms: 120_000,
        ..Options::default()
    })
    .await;
    let (psn, v) = outpatient(&app, CERT, DAY, "1").await;
    assert_eq!(upload_and_presettle(&app, &psn, &v, "40.00", "1", DAY).await.decision.as_deref(), Some("pass"));
    // 1,000 concurrent sends of the same settlement (one msgid), plus 1,000 of the same upload.
    let body = serde_json::to_vec(&at_day(envelope("2207", "S-RETRY", settle_input(&psn, &v)), DAY)).unwrap();
    let mut l = line("F1", &v, &psn, "003101000010000", 1, "40.00", "40.00", None);
    l["fee_ocur_time"] = format!("{DAY} 08:30:00").into();
    let upload = serde_json::to_vec(&at_day(envelope("2204", "U1", json!({"feedetail": [l]})), DAY)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (c, url, b) = (
            app.client.clone(),
            format!("{}/fsi/api/rsfComIfsService/callService", app.base),
            if i % 2 == 0 { body.clone() } else { upload.clone() },
        );
        tasks.push(actix_web::rt::spawn(async move {
            let r = c.post(url).header("content-type", "application/json").body(b).send().await.unwrap();
            r.status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(settled(&app), (1, 2000), "the day's fund total counted once");
    assert_eq!(app.history_int("SELECT COUNT(*) FROM h_line"), 1);
    // And the next claim of the day sees 20 used, not 20 000.
    let (_, v2) = outpatient(&app, CERT, DAY, "2").await;
    let r = upload_and_presettle(&app, &psn, &v2, "80.00", "2", DAY).await;
    assert!(
        r.json["err_msg"].as_str().unwrap_or_default().contains("今日已报销20.00元，本次申请40.00元"),
        "{}",
        r.json
    );
}

#[actix_web::test]
async fn concurrent_retries_are_counted_once_sqlite() {
    retries(None).await;
}

#[actix_web::test]
async fn concurrent_retries_are_counted_once_postgres() {
    if let Some(url) = pg("retries") {
        retries(Some(url)).await;
    }
}

async fn admission(app: &TestApp, psn: &str, msgid: &str, at: &str, dise: &str) -> Reply {
    let mut e = envelope(
        "2401",
        msgid,
        json!({"mdtrtinfo": {"psn_no": psn, "insutype": "390", "begntime": at, "mdtrt_cert_type": "02", "mdtrt_cert_no": CERT, "med_type": "21", "ipt_no": msgid, "atddr_no": "D1", "chfpdr_name": "李医生", "adm_dept_codg": "A03.04", "adm_dept_name": "神经内科", "dscg_maindiag_code": dise, "dscg_maindiag_name": "脑梗死", "dise_codg": dise, "dise_name": "脑梗死"},
        "diseinfo": [{"psn_no": psn, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1", "diag_code": dise, "diag_name": "脑梗死", "vali_flag": "1"}]}),
    );
    e["inf_time"] = at.into();
    app.call(&e).await
}

async fn stays_and_trace_codes(store: Option<String>) {
    let app = app(store, vec!["national-baseline"]).await;
    let (psn, _) = outpatient(&app, CERT, "2025-03-01", "0").await;
    let r = admission(&app, &psn, "A1", "2025-03-01 08:00:00", "I63.900").await;
    let stay = r.json["output"]["result"]["mdtrt_id"].as_str().unwrap().to_owned();
    let mut e = envelope(
        "2402",
        "D1",
        json!({"dscginfo": {"mdtrt_id": stay, "psn_no": psn, "insutype": "390", "endtime": "2025-03-10 10:00:00", "dise_codg": "I63.900", "dise_name": "脑梗死", "dscg_way": "1"}, "diseinfo": []}),
    );
    e["inf_time"] = "2025-03-10 10:00:00".into();
    assert_eq!(app.call(&e).await.json["infcode"], 0);
    // Day 9: reminded (and forwarded); day 16: not.
    let r = admission(&app, &psn, "A2", "2025-03-19 09:00:00", "I63.901").await;
    assert_eq!(r.decision.as_deref(), Some("remind"), "{}", r.json);
    let hit = app
        .journal_rows(
            "SELECT h.rule_id FROM j_hit h JOIN j_decision d ON d.id = h.decision_id WHERE d.msgid = 'A2'",
            &[],
        )
        .await
        .first()
        .map(|r| r[0].string())
        .unwrap_or_default();
    assert_eq!(hit, "HIS-READMIT-001");
    let (psn2, _) = outpatient(&app, "410702196001010051", "2025-03-01", "9").await;
    let r = admission(&app, &psn2, "A3", "2025-03-26 09:00:00", "I63.901").await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "another patient");
    // Trace codes: sold once; the same box to someone else is blocked; a refunded box may be sold again.
    let (_, v1) = outpatient(&app, CERT, "2025-07-02", "5").await;
    let (psn3, v2) = outpatient(&app, "410702196001010051", "2025-07-03", "6").await;
    let drug = |sn: &str, visit: &str, p: &str, cnt: i32, init: &str| {
        let mut l = line(sn, visit, p, "XB01ACA001A001010101", 1, "30.00", "30.00", Some(7));
        l["cnt"] = cnt.into();
        l["det_item_fee_sumamt"] = format!("{}.00", 30 * cnt).into();
        l["drug_trac_codg"] = "81234567890123456789".into();
        l["init_feedetl_sn"] = init.into();
        l["med_type"] = "11".into();
        l
    };
    let r = app.call(&envelope("2204", "T1", json!({"feedetail": [drug("T1", &v1, &psn, 1, "")]}))).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let r = app.call(&envelope("2204", "T2", json!({"feedetail": [drug("T2", &v2, &psn3, 1, "")]}))).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    assert!(r.json["err_msg"].as_str().unwrap().contains("追溯码81234567890123456789已于"), "{}", r.json);
    let r = app.call(&envelope("2204", "T1R", json!({"feedetail": [drug("T1R", &v1, &psn, -1, "T1")]}))).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    let r = app.call(&envelope("2204", "T2b", json!({"feedetail": [drug("T2", &v2, &psn3, 1, "")]}))).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "the refunded box: {}", r.json);
}

#[actix_web::test]
async fn readmission_and_trace_codes_sqlite() {
    stays_and_trace_codes(None).await;
}

#[actix_web::test]
async fn readmission_and_trace_codes_postgres() {
    if let Some(url) = pg("stays") {
        stays_and_trace_codes(Some(url)).await;
    }
}

#[actix_web::test]
async fn a_shared_store_down_at_start_still_serves_and_keeps_accepted_exchanges_for_later() {
    // The key copy a previous run left; the store itself is a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(Options {
        history_store: Some(format!("postgres://claimgate@127.0.0.1:{closed}/claimgate")),
        data_files: vec![("history.key", vec![7u8; 32])],
        ..Options::default()
    })
    .await;
    let (s, _) = app.get("/readyz", None).await;
    assert_eq!(s, 200);
    let (psn, visit) = register(&app, "410702198003150031", "11", 1).await;
    let r = app
        .call(&envelope(
            "2204",
            "H41070100001202506100910009901",
            json!({"feedetail": [line("F1", &visit, &psn, AML, 14, "1.5", "21.00", Some(7))]}),
        ))
        .await;
    assert_eq!(r.json["infcode"], 0, "the claim still goes through: {}", r.json);
    // Cross-claim rules could not look: said so, not guessed.
    let (_, d) = app
        .check(&envelope(
            "2204",
            "H41070100001202506100910009902",
            json!({"feedetail": [line("F2", &visit, &psn, AML, 14, "1.5", "21.00", Some(7))]}),
        ))
        .await;
    assert!(d["unchecked"].as_array().unwrap().iter().any(|u| u["fact"] == "history"), "{d}");
    // Every accepted exchange (2201, 2203, 2204 …) waits in the outbox.
    assert!(app.state.history.pending() >= 3, "{}", app.state.history.pending());
}

const AML: &str = "XC08CAA079A001010104321";

/// Two uploads of one visit: the second 诊查费 is blocked naming the first; a retry of the first counts
/// once; after the first is revoked (2205) the second passes.
async fn second_upload_sees_the_first(store: Option<String>) {
    let app = app(store, vec!["national-baseline"]).await;
    let (psn, visit) = register(&app, "410702198003150012", "11", 1).await;
    let fee = |sn: &str| line(sn, &visit, &psn, "001102000010000", 1, "10.00", "10.00", None);
    let upload = |msgid: &str, sn: &str| envelope("2204", msgid, json!({"feedetail": [fee(sn)]}));
    // Arrange: the first upload, accepted, then sent again (a retry: same msgid, same line).
    let r = app.call(&upload("H41070100001202506101000000001", "F1")).await;
    assert_eq!((r.decision.as_deref(), r.json["infcode"].as_i64()), (Some("pass"), Some(0)), "{}", r.json);
    let r = app.call(&upload("H41070100001202506101000000001", "F1")).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "a retry never counts against itself: {}", r.json);
    // Act: a second upload with a second 诊查费 for the same visit.
    let r = app.call(&upload("H41070100001202506101000000002", "F2")).await;
    // Assert: blocked, naming the earlier line; nothing sent.
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(msg.contains("CG-CLAIM-001") && msg.contains("含此前已上传的明细F1"), "{msg}");
    // The first revoked (2205 by its batch): the second no longer repeats anything.
    let r = app
        .call(&envelope(
            "2205",
            "H41070100001202506101000000003",
            json!({"data": {"mdtrt_id": visit, "chrg_bchno": "B1", "psn_no": psn}}),
        ))
        .await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    let r = app.call(&upload("H41070100001202506101000000004", "F2")).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
}

#[actix_web::test]
async fn a_second_upload_sees_the_first_sqlite() {
    second_upload_sees_the_first(None).await;
}

#[actix_web::test]
async fn a_second_upload_sees_the_first_postgres() {
    if let Some(url) = pg("second_upload") {
        second_upload_sees_the_first(Some(url)).await;
    }
}

/// Lines of one person's day spread over messages: OGTT at one outpatient visit and 葡萄糖测定 at
/// another the same day; Ⅰ级护理 and Ⅱ级护理 of one stay in two daily 2301 batches.
async fn a_day_across_messages(store: Option<String>) {
    let app = app(store, vec!["national-baseline"]).await;
    // Arrange: two visits of one patient on 2025-06-10; OGTT accepted at the first.
    let (psn, v1) = register(&app, "410702198003150012", "11", 1).await;
    let (_, v2) = register(&app, "410702198003150012", "11", 2).await;
    let ogtt = line("G1", &v1, &psn, "002503020020000", 1, "30.00", "30.00", None);
    let r = app.call(&envelope("2204", "H41070100001202506101100000001", json!({"feedetail": [ogtt]}))).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    // Act: 葡萄糖测定 at the second visit, in its own upload.
    let glucose = line("G2", &v2, &psn, "002503020010000", 1, "5.00", "5.00", None);
    let r = app.call(&envelope("2204", "H41070100001202506101100000002", json!({"feedetail": [glucose]}))).await;
    // Assert: blocked by the day's OGTT, naming it and its line.
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(
        msg.contains("GZ10000102012000-004") && msg.contains("葡萄糖耐量试验") && msg.contains("此前已上传的明细G1"),
        "{msg}"
    );

    // Inpatient: Ⅰ级护理 in the morning batch, Ⅱ级护理 in a later batch the same day.
    let r = app
        .call(&envelope("1101", "H41070100001202506101200000001", json!({"data": {"certno": "410702197001010011"}})))
        .await;
    let psn = r.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r = app.call(&envelope("2401", "H41070100001202506101200000002", json!({"mdtrtinfo": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 08:30:00",
        "med_type": "21", "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎", "adm_dept_codg": "100201"}, "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_code": "J18.900", "diag_name": "肺炎"}]}))).await;
    let stay = r.json["output"]["result"]["mdtrt_id"].as_str().unwrap().to_owned();
    let nursing = |sn: &str, code: &str, at: &str| {
        json!({"feedetl_sn": sn, "init_feedetl_sn": "", "mdtrt_id": stay, "psn_no": psn, "med_type": "21", "fee_ocur_time": at,
            "med_list_codg": code, "medins_list_codg": "H", "det_item_fee_sumamt": 15, "cnt": 1, "pric": 15,
            "bilg_dept_codg": "100201", "bilg_dept_name": "呼吸内科", "bilg_dr_codg": "D3", "bilg_dr_name": "孙医生"})
    };
    let first = json!({"feedetail": [nursing("N1", "001201000030000", "2025-06-10 09:00:00")]});
    let r = app.call(&envelope("2301", "H41070100001202506101200000003", first)).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let second = json!({"feedetail": [nursing("N2", "001201000040000", "2025-06-10 16:00:00")]});
    let r = app.call(&envelope("2301", "H41070100001202506101200000004", second)).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(msg.contains("CG-MUTEX-001") && msg.contains("此前已上传的明细N1"), "{msg}");
}

#[actix_web::test]
async fn a_day_across_messages_is_judged_whole_sqlite() {
    a_day_across_messages(None).await;
}

#[actix_web::test]
async fn a_day_across_messages_is_judged_whole_postgres() {
    if let Some(url) = pg("day_across") {
        a_day_across_messages(Some(url)).await;
    }
}
