use crate::helpers::*;
use serde_json::json;

const MAN: &str = "410702198003150031";
const AML: &str = "XC08CAA079A001010104321";

#[actix_web::test]
async fn a_clean_claim_passes_and_the_gateway_receives_the_identical_bytes_and_headers() {
    // Arrange
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 1).await;
    let env = envelope(
        "2204",
        "H41070100001202506100910000001",
        json!({"feedetail": [
            line("F1", &visit, &psn, "001102000010000", 1, "20.00", "20.00", None),
            line("F2", &visit, &psn, AML, 14, "1.5", "21.00", Some(7)),
        ]}),
    );
    // Non-canonical spacing on purpose: the bytes must arrive exactly as sent.
    let body = serde_json::to_string_pretty(&env).unwrap().into_bytes();
    // Act
    let r = app
        .post_raw(
            body.clone(),
            &[
                ("content-type", "application/json"),
                ("x-tif-paasid", "hosp01"),
                ("x-tif-signature", "abc123"),
                ("x-tif-timestamp", "1749517800"),
                ("x-tif-nonce", "n1"),
            ],
        )
        .await;
    // Assert
    assert_eq!(r.decision.as_deref(), Some("pass"));
    assert_eq!(r.ruleset.as_deref(), Some("national-baseline@2026.11.1"));
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    assert_eq!(r.json["output"]["result"].as_array().unwrap().len(), 2);
    let got = app.received().await;
    let last = got.iter().rev().find(|x| x["infno"] == "2204").unwrap();
    assert_eq!(last["body"].as_str().unwrap().as_bytes(), &body[..]);
    assert_eq!(last["headers"]["x-tif-signature"], "abc123");
    assert_eq!(last["headers"]["x-tif-paasid"], "hosp01");
    assert_eq!(last["headers"]["x-tif-nonce"], "n1");
}

#[actix_web::test]
async fn a_violating_claim_is_blocked_in_the_envelope_and_never_reaches_the_gateway() {
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 2).await;
    let env = envelope(
        "2204",
        "H41070100001202506100910000002",
        json!({"feedetail": [
            line("F1", &visit, &psn, "002202020010000", 1, "120", "120.00", None),
        ]}),
    );
    let r = app.call(&env).await;
    assert_eq!(r.decision.as_deref(), Some("block"));
    assert_eq!(r.json["infcode"], -1);
    let msg = r.json["err_msg"].as_str().unwrap();
    assert!(msg.contains("GZ10000302004000") && msg.contains("限女性"), "{msg}");
    assert!(r.json["inf_refmsgid"].as_str().unwrap().starts_with("410700"));
    assert!(app.received().await.iter().all(|x| x["infno"] != "2204"));
}

#[actix_web::test]
async fn a_reminder_is_forwarded_with_its_decision_header() {
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 3).await;
    let env = envelope(
        "2204",
        "H41070100001202506100910000003",
        json!({"feedetail": [
            line("F1", &visit, &psn, AML, 20, "1.5", "30.00", Some(10)),
        ]}),
    );
    let r = app.call(&env).await;
    assert_eq!(r.decision.as_deref(), Some("remind"));
    assert_eq!(r.json["infcode"], 0);
    assert!(app.received().await.iter().any(|x| x["infno"] == "2204"));
    // The reminder is journaled with its hit and the gateway's outcome; the person only as a pseudonym.
    let row = app
        .journal_rows(
            "SELECT decision, gateway_infcode, psn_hash, service_date FROM j_decision WHERE msgid = $1",
            &["H41070100001202506100910000003"],
        )
        .await
        .remove(0);
    let (decision, infcode, psn_hash) = (row[0].string(), row[1].int(), row[2].string());
    assert_eq!((decision.as_str(), infcode), ("remind", Some(0)));
    assert_eq!(row[3].string(), "2025-06-10", "the lines' service date");
    assert_eq!(psn_hash.len(), 32);
    assert_ne!(psn_hash, psn);
    let rule = app.journal_rows("SELECT rule_id FROM j_hit", &[]).await[0][0].string();
    assert_eq!(rule, "CG-DAYS-001");
    // No clear psn_no or certno anywhere in the journal's files.
    for entry in std::fs::read_dir(app.data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [psn.as_bytes(), MAN.as_bytes()] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "clear identifier in the journal");
        }
    }
}

fn nursing_orders(psn: &str, visit: &str, cnt2: u32) -> serde_json::Value {
    let order = |id: &str, code: &str, name: &str, cnt: u32, pric: u32| {
        json!({"rx_id": id, "rxno": "R1", "hilist_type": "201", "chrg_type": "07",
        "hilist_code": code, "hilist_name": name, "cnt": cnt, "pric": pric, "sumamt": cnt * pric, "drord_begn_date": "2025-06-10 10:00:00",
        "drord_dept_codg": "100201", "drord_dept_name": "呼吸内科", "drord_dr_codg": "D3", "drord_dr_name": "孙医生"})
    };
    json!({"data": {"syscode": "HIS", "task_id": "T1", "trig_scen": "5", "rule_ids": [], "patient_dtos": [{"patn_id": psn, "gend": "1", "brdy": "1980-03-15",
        "curr_mdtrt_id": visit, "fsi_encounter_dtos": [{"mdtrt_id": visit, "medins_lv": "2", "med_mdtrt_type": "2", "med_type": "21", "insutype": "310",
        "fsi_diagnose_dtos": [{"maindise_flag": "1", "dise_codg": "S72.000", "dise_name": "股骨颈骨折"}],
        "fsi_order_dtos": [order("N1", "001201000030000", "Ⅰ级护理", 1, 15), order("N2", "001201000040000", "Ⅱ级护理", cnt2, 10)]}]}]}})
}

fn nursing_upload(psn: &str, visit: &str, cnt2: u32, msgid: &str) -> serde_json::Value {
    let l = |sn: &str, code: &str, cnt: u32, pric: u32| {
        json!({"feedetl_sn": sn, "init_feedetl_sn": "", "mdtrt_id": visit, "psn_no": psn, "med_type": "21",
        "fee_ocur_time": "2025-06-10 10:00:00", "med_list_codg": code, "medins_list_codg": "H", "det_item_fee_sumamt": cnt * pric, "cnt": cnt, "pric": pric,
        "bilg_dept_codg": "100201", "bilg_dept_name": "呼吸内科", "bilg_dr_codg": "D3", "bilg_dr_name": "孙医生"})
    };
    envelope(
        "2301",
        msgid,
        json!({"feedetail": [l("N1", "001201000030000", 1, 15), l("N2", "001201000040000", cnt2, 10)]}),
    )
}

#[actix_web::test]
async fn a_3103_continue_with_reason_passes_an_overridable_block_for_the_same_lines_only() {
    let app = spawn_app().await;
    let r = app
        .call(&envelope(
            "1101",
            "H41070100001202506101000000001",
            json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": MAN, "certno": MAN}}),
        ))
        .await;
    let psn = r.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r = app.call(&envelope("2401", "H41070100001202506101000000002", json!({"mdtrtinfo": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:30:00",
        "med_type": "21", "dscg_maindiag_code": "S72.000", "dscg_maindiag_name": "股骨颈骨折", "adm_dept_codg": "100201"}, "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_code": "S72.000", "diag_name": "股骨颈骨折"}]}))).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let visit = r.json["output"]["result"]["mdtrt_id"].as_str().unwrap().to_owned();

    // Without an answer the two nursing levels are blocked.
    let r = app.call(&nursing_upload(&psn, &visit, 1, "H41070100001202506101000000003")).await;
    assert_eq!(r.decision.as_deref(), Some("block"));

    // 事中分析 (3102) names the hit with a jr_id; the doctor continues with a reason (3103).
    let r = app.call(&envelope("3102", "H41070100001202506101000000004", nursing_orders(&psn, &visit, 1))).await;
    let result = r.json["output"]["result"].as_array().unwrap().clone();
    let jr = result.iter().find(|x| x["rule_id"] == "CG-MUTEX-001").unwrap();
    assert_eq!(jr["judge_result_detail_dtos"].as_array().unwrap().len(), 2);
    let jr_id = jr["jr_id"].as_str().unwrap();
    let empty = app.call(&envelope("3103", "H41070100001202506101000000005", json!({"data": {"warn_type": "2", "warns": [{"warn_rslt_id": jr_id, "dspo_way": "1", "dspo_way_rea": ""}]}}))).await;
    assert_eq!(empty.json["infcode"], -1, "an empty reason is refused");
    let ok = app.call(&envelope("3103", "H41070100001202506101000000006", json!({"data": {"warn_type": "2", "warns": [{"warn_rslt_id": jr_id, "dspo_way": "1", "dspo_way_rea": "下午病情好转，护理级别调整"}]}}))).await;
    assert_eq!(ok.json["infcode"], 0);

    // The same lines now pass; changed lines do not.
    let r = app.call(&nursing_upload(&psn, &visit, 1, "H41070100001202506101000000007")).await;
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let r = app.call(&nursing_upload(&psn, &visit, 2, "H41070100001202506101000000008")).await;
    assert_eq!(r.decision.as_deref(), Some("block"));

    // Both answers are journaled with their reasons; the blocks with no gateway outcome.
    let answers = app.journal_int("SELECT COUNT(*) FROM j_feedback WHERE jr_id = $1", &[jr_id]).await;
    assert_eq!(answers, 2);
    let blocks = app
        .journal_int(
            "SELECT COUNT(*) FROM j_decision WHERE infno = '2301' AND decision = 'block' AND gateway_infcode IS NULL",
            &[],
        )
        .await;
    assert_eq!(blocks, 2);
}

/// The doctor answers on instance A; the upload reaches B, which shares A's store (the same data
/// directory after a restart, or the same PostgreSQL): B honours the answer.
async fn an_answer_outlives_the_instance_that_took_it(a: TestApp, b: impl std::future::Future<Output = TestApp>) {
    // Arrange: a stay, 事中分析 with a hit, the doctor continues with a reason on A.
    let r = a.call(&envelope("1101", "H41070100001202506101100000001", json!({"data": {"certno": MAN}}))).await;
    let psn = r.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r = a.call(&envelope("2401", "H41070100001202506101100000002", json!({"mdtrtinfo": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:30:00",
        "med_type": "21", "dscg_maindiag_code": "S72.000", "dscg_maindiag_name": "股骨颈骨折", "adm_dept_codg": "100201"}, "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_code": "S72.000", "diag_name": "股骨颈骨折"}]}))).await;
    let visit = r.json["output"]["result"]["mdtrt_id"].as_str().unwrap().to_owned();
    let r = a.call(&envelope("3102", "H41070100001202506101100000003", nursing_orders(&psn, &visit, 1))).await;
    let result = r.json["output"]["result"].as_array().unwrap().clone();
    let jr_id = result.iter().find(|x| x["rule_id"] == "CG-MUTEX-001").unwrap()["jr_id"].as_str().unwrap().to_owned();
    let ok = a.call(&envelope("3103", "H41070100001202506101100000004", json!({"data": {"warn_type": "2", "warns": [{"warn_rslt_id": jr_id, "dspo_way": "1", "dspo_way_rea": "下午病情好转，护理级别调整"}]}}))).await;
    assert_eq!(ok.json["infcode"], 0, "{}", ok.json);
    // Act: the upload reaches the other instance.
    let b = b.await;
    let r = b.call(&nursing_upload(&psn, &visit, 1, "H41070100001202506101100000005")).await;
    // Assert: the answered lines pass there, changed ones do not, and an answer B cannot honour is refused.
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let r = b.call(&nursing_upload(&psn, &visit, 2, "H41070100001202506101100000006")).await;
    assert_eq!(r.decision.as_deref(), Some("block"));
    let again = b.call(&envelope("3103", "H41070100001202506101100000007", json!({"data": {"warn_type": "2", "warns": [{"warn_rslt_id": jr_id, "dspo_way": "1", "dspo_way_rea": "同上"}]}}))).await;
    assert_eq!(again.json["infcode"], 0, "a repeated answer on another instance is known there: {}", again.json);
    let unknown = b.call(&envelope("3103", "H41070100001202506101100000008", json!({"data": {"warn_type": "2", "warns": [{"warn_rslt_id": "JR-NOT-ISSUED", "dspo_way": "1", "dspo_way_rea": "理由"}]}}))).await;
    assert_eq!(unknown.json["infcode"], -1, "an HIS shows infcode 0 as success: {}", unknown.json);
    let msg = unknown.json["err_msg"].as_str().unwrap();
    assert!(msg.contains("JR-NOT-ISSUED") && msg.contains("请重新进行事前分析"), "{msg}");
}

#[actix_web::test]
async fn a_doctors_answer_outlives_a_restart() {
    let a = spawn_app().await;
    let dir = a.data.path().to_path_buf();
    an_answer_outlives_the_instance_that_took_it(
        a,
        spawn_app_with(Options { data_dir: Some(dir), ..Options::default() }),
    )
    .await;
}

#[actix_web::test]
async fn a_doctors_answer_on_one_instance_is_honoured_by_another_sharing_postgres() {
    let Some(url) = pg("override_shared") else { return };
    let a = spawn_app_with(Options { history_store: Some(url.clone()), ..Options::default() }).await;
    an_answer_outlives_the_instance_that_took_it(
        a,
        spawn_app_with(Options { history_store: Some(url), ..Options::default() }),
    )
    .await;
}

#[actix_web::test]
async fn sign_in_and_person_query_are_relayed_untouched() {
    let app = spawn_app().await;
    let env = envelope(
        "9001",
        "H41070100001202506100800000001",
        json!({"signIn": {"opter_no": "0153", "mac": "00-16-3E-00-00-01", "ip": "10.0.0.21"}}),
    );
    let body = serde_json::to_vec(&env).unwrap();
    let r = app.post_raw(body.clone(), &[("content-type", "application/json")]).await;
    assert_eq!(r.json["infcode"], 0);
    assert!(r.json["output"]["signinoutb"]["sign_no"].is_string());
    assert_eq!(r.decision, None, "relayed transactions carry no decision");
    let got = app.received().await;
    assert_eq!(got[0]["body"].as_str().unwrap().as_bytes(), &body[..]);
    let r = app.call(&envelope("1101", "H41070100001202506100800000002", json!({"data": {"certno": MAN}}))).await;
    assert_eq!(r.json["output"]["baseinfo"]["gend"], "1");
}

#[actix_web::test]
async fn gateway_refusing_connections_gives_a_clear_envelope_error() {
    let app = spawn_app_with(Options { upstream: Upstream::Refused, ..Options::default() }).await;
    let r = app.call(&envelope("9001", "M1", json!({"signIn": {}}))).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json["infcode"], -1);
    assert!(r.json["err_msg"].as_str().unwrap().contains("医保网关连接失败"), "{}", r.json);
}

#[actix_web::test]
async fn a_slow_gateway_times_out_within_the_configured_timeout() {
    let app = spawn_app_with(Options { upstream_timeout_ms: 300, ..Options::default() }).await;
    app.sim_mode("slow", 3_000).await;
    let t0 = std::time::Instant::now();
    let r = app.call(&envelope("9001", "M2", json!({"signIn": {}}))).await;
    assert_eq!(r.status, 504);
    assert!(r.json["err_msg"].as_str().unwrap().contains("响应超时"), "{}", r.json);
    assert!(t0.elapsed() < std::time::Duration::from_millis(2_500), "answered before the gateway did");
}

#[actix_web::test]
async fn a_gateway_answering_garbage_gives_a_clear_envelope_error() {
    let app = spawn_app().await;
    app.sim_mode("garbage", 0).await;
    let r = app.call(&envelope("9001", "M3", json!({"signIn": {}}))).await;
    assert_eq!(r.status, 502);
    assert!(r.json["err_msg"].as_str().unwrap().contains("无法解析的应答"), "{}", r.json);
}

#[actix_web::test]
async fn bad_input_is_answered_in_the_envelope_naming_the_field() {
    let app = spawn_app_with(Options { body_limit: 4096, ..Options::default() }).await;
    let r = app.post_raw(b"{not json".to_vec(), &[]).await;
    assert_eq!(r.json["infcode"], -1);
    let env = envelope(
        "2204",
        "M4",
        json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": "V", "psn_no": "P", "cnt": "abc"}]}),
    );
    let r = app.call(&env).await;
    assert!(r.json["err_msg"].as_str().unwrap().contains("input.feedetail[0].cnt"), "{}", r.json);
    let env = envelope("2204", "M5", json!({"feedetail": [line("F1", "V", "P", AML, 1, "1", "1.00", None)]}));
    let mut env2 = env.clone();
    env2["input"]["feedetail"][0]["det_item_fee_sumamt"] = json!("1.005");
    let r = app.call(&env2).await;
    assert!(r.json["err_msg"].as_str().unwrap().contains("det_item_fee_sumamt"), "{}", r.json);
    let big = vec![b' '; 10_000];
    let r = app.post_raw(big, &[]).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json["infcode"], -1);
    let deep = format!("{{\"infno\":\"2204\",\"input\":{}{}}}", "[".repeat(200), "]".repeat(200));
    let r = app.post_raw(deep.into_bytes(), &[]).await;
    assert!(r.json["err_msg"].as_str().unwrap().contains("nested"), "{}", r.json);
    // The server keeps serving.
    assert_eq!(app.get("/healthz", None).await.0, 200);
}

#[actix_web::test]
async fn health_readiness_metrics_and_admin_need_what_they_should() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.0, 200);
    let (s, body) = app.get("/readyz", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("national-baseline@2026.11.1"));
    app.call(&envelope("9001", "M6", json!({"signIn": {}}))).await;
    let (_, m) = app.get("/metrics", None).await;
    assert!(m.contains("claimgate_requests_total{decision=\"relay\",infno=\"9001\"}"), "{m}");
    assert_eq!(app.get("/admin/v1/ruleset", None).await.0, 401);
    assert_eq!(app.get("/admin/v1/ruleset", Some("wrong")).await.0, 401);
    let (s, body) = app.get("/admin/v1/ruleset", Some("secret-token")).await;
    assert_eq!(s, 200);
    assert!(body.contains("\"digest\""));
}

#[actix_web::test]
async fn v1_check_returns_the_decision_json_and_never_forwards() {
    let app = spawn_app().await;
    let (s, d) = app.check(&fixture("outpatient/3101-same-orders.json")).await;
    assert_eq!(s, 200);
    assert_eq!(d["decision"], "block");
    assert!(d["hits"].as_array().unwrap().iter().any(|h| h["rule_id"] == "GZ10000302004000"));
    assert!(d["elapsed_us"].is_u64());
    assert!(app.received().await.is_empty());
    let (s, e) = app.check(&json!({"infno": "9001", "input": {}})).await;
    assert_eq!(s, 400);
    assert!(e["error"].as_str().unwrap().contains("not a checked"));
}

#[actix_web::test]
async fn without_an_upstream_claimgate_answers_claims_itself() {
    let app = spawn_app_with(Options { upstream: Upstream::None, ..Options::default() }).await;
    let env = envelope(
        "2204",
        "M7",
        json!({"feedetail": [line("F1", "V1", "P1", "001102000010000", 1, "20", "20.00", None)]}),
    );
    let r = app.call(&env).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    assert_eq!(r.json["output"]["claimgate"]["decision"], "pass");
}

#[actix_web::test]
async fn settlement_sees_the_accepted_lines_and_a_revocation_removes_them() {
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 4).await;
    let up = envelope(
        "2204",
        "H41070100001202506100910000041",
        json!({"feedetail": [line("F1", &visit, &psn, AML, 20, "1.5", "30.00", Some(10))]}),
    );
    assert_eq!(app.call(&up).await.decision.as_deref(), Some("remind"));
    let settle = |msgid: &str| {
        envelope(
            "2206",
            msgid,
            json!({"data": {"psn_no": psn, "mdtrt_id": visit, "med_type": "11", "insutype": "310", "medfee_sumamt": "30.00"}}),
        )
    };
    let r = app.call(&settle("H41070100001202506100910000042")).await;
    assert_eq!(r.decision.as_deref(), Some("remind"), "the learnt 10-day line is seen at pre-settlement");
    assert_eq!(r.json["output"]["setlinfo"]["medfee_sumamt"], "30.00");
    let revoke = envelope(
        "2205",
        "H41070100001202506100910000043",
        json!({"data": {"mdtrt_id": visit, "chrg_bchno": "0000", "psn_no": psn}}),
    );
    assert_eq!(app.call(&revoke).await.json["infcode"], 0);
    let r = app.call(&settle("H41070100001202506100910000044")).await;
    assert_eq!(r.decision.as_deref(), Some("pass"));
    assert_eq!(r.json["output"]["setlinfo"]["medfee_sumamt"], "0.00");
}

#[actix_web::test]
async fn a_reminder_names_the_item_from_the_hospitals_catalogue_where_the_upload_sends_codes_only() {
    // Arrange: the HIS's 医保目录对照 export, and an upload of a 10-day supply (codes only).
    let catalogue =
        "medins_list_codg,medins_list_name,med_list_codg\nYP0001065,维生素B1片（10mg×100片）,XA11DAW036A001010104127\n";
    let app = spawn_app_with(Options {
        data_files: vec![("catalogue.csv", catalogue.as_bytes().to_vec())],
        tweak: Box::new(|c| c.item_catalogue = Some(c.data.join("catalogue.csv"))),
        ..Options::default()
    })
    .await;
    for f in ["outpatient/01-1101-exchange.json", "outpatient/02-2201-exchange.json"] {
        app.call(&fixture(f)["request"]).await;
    }
    app.call(&fixture("outpatient/03-2203-request.json")).await;
    let upload = fixture("outpatient/04-2204-violations.json");
    // Act
    let (status, d) = app.check(&upload).await;
    // Assert: the reminder says which drug, not its code.
    assert_eq!(status, 200);
    let hit =
        d["hits"].as_array().unwrap().iter().find(|h| h["rule_id"] == "CG-DAYS-001").expect("the supply reminder");
    let msg = hit["message"].as_str().unwrap();
    assert!(msg.contains("【维生素B1片（10mg×100片）】") && !msg.contains("XA11DAW036A001010104127"), "{msg}");
}

#[actix_web::test]
async fn by_default_a_reminded_claims_answer_carries_the_reminder_in_warn_msg() {
    // Arrange: the visit's context, then an upload whose only problem is a 10-day supply.
    let app = spawn_app().await;
    for f in ["outpatient/01-1101-exchange.json", "outpatient/02-2201-exchange.json"] {
        app.call(&fixture(f)["request"]).await;
    }
    app.call(&fixture("outpatient/03-2203-request.json")).await;
    let mut upload = fixture("outpatient/04-2204-violations.json");
    let lines = upload["input"]["feedetail"].as_array().unwrap().clone();
    upload["input"]["feedetail"] = json!([lines.iter().find(|l| l["feedetl_sn"] == "MZ202509150005").unwrap()]);
    // Act
    let r = app.call(&upload).await;
    // Assert: forwarded (the simulated gateway answers as it will), and the cashier sees why it was reminded.
    assert_eq!(r.decision.as_deref(), Some("remind"), "{}", r.json);
    assert_eq!(app.received().await.iter().filter(|x| x["infno"] == "2204").count(), 1);
    let warn = r.json["warn_msg"].as_str().unwrap_or_default();
    assert!(warn.contains("CG-DAYS-001") && warn.contains("开药10天"), "{}", r.json);
}
