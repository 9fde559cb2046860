//! Hostile traffic (#19): invalid claim messages never reach the gateway, stalled bodies and
//! connection floods are cut, framing errors get envelopes.

use crate::helpers::*;
use claimgate::telemetry::metrics;
use serde_json::{json, Value};

const MAN: &str = "410702198003150031";

/// A 2206/2207/2303/2304 `input.data` for the registered visit, with `medfee_sumamt` as given.
fn settle_data(psn: &str, visit: &str, medfee_sumamt: Value) -> Value {
    json!({"data": {"psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": MAN, "med_type": "11",
        "medfee_sumamt": medfee_sumamt, "psn_setlway": "01", "mdtrt_id": visit, "chrg_bchno": "B1",
        "insutype": "310", "acct_used_flag": "0"}})
}

#[actix_web::test]
async fn every_class_of_invalid_claim_is_answered_locally_and_the_gateway_receives_nothing() {
    // Arrange: a registered visit, so that only the invalid field stands between a message and the gateway.
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 1).await;
    let fee = |f: &str, v: Value| {
        let mut l = line("F1", &visit, &psn, "001102000010000", 1, "20.00", "20.00", None);
        l[f] = v;
        json!({"feedetail": [l]})
    };
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    // 2206 (a pre-settlement goes to the gateway before its check) with every bad medfee_sumamt seen.
    for bad in [json!(1e300), json!("1e400"), json!("abc"), json!(true), json!([]), json!({}), json!(20.001)] {
        cases.push(("2206", settle_data(&psn, &visit, bad), "input.data.medfee_sumamt"));
    }
    let exponent: Value = serde_json::from_str("1e2").unwrap();
    cases.push(("2206", settle_data(&psn, &visit, json!("-5.00")), "input.data.medfee_sumamt"));
    cases.push(("2303", settle_data(&psn, &visit, json!(-5)), "input.data.medfee_sumamt"));
    cases.push(("2207", settle_data(&psn, &visit, json!("\"20.00\"")), "input.data.medfee_sumamt"));
    cases.push(("2304", settle_data(&psn, &visit, json!("20.001")), "input.data.medfee_sumamt"));
    cases.push(("2204", fee("pric", json!("-20.00")), "input.feedetail[0].pric"));
    cases.push(("2204", fee("det_item_fee_sumamt", json!("20.005")), "input.feedetail[0].det_item_fee_sumamt"));
    cases.push(("2204", fee("det_item_fee_sumamt", json!("2e1")), "input.feedetail[0].det_item_fee_sumamt"));
    cases.push(("2301", fee("cnt", json!([1])), "input.feedetail[0].cnt"));
    cases.push(("2204", json!("eyJmZWVkZXRhaWwiOltdfQ=="), "input"));
    cases.push(("2204", json!([]), "input"));
    let mut sent: Vec<(Vec<u8>, &str)> = cases
        .into_iter()
        .enumerate()
        .map(|(i, (infno, input, path))| {
            (serde_json::to_vec(&envelope(infno, &format!("H4107010000120250610BAD{i:04}"), input)).unwrap(), path)
        })
        .collect();
    // serde_json writes 1e300 as `1e300`; a literal exponent amount in the bytes as a HIS sends it:
    let mut e = envelope("2206", "H4107010000120250610BADEXP1", settle_data(&psn, &visit, exponent));
    e["input"]["data"]["medfee_sumamt"] = json!(0);
    let text = serde_json::to_string(&e).unwrap().replace("\"medfee_sumamt\":0", "\"medfee_sumamt\":1e2");
    sent.push((text.into_bytes(), "input.data.medfee_sumamt"));
    // msgid missing, empty or a number.
    for msgid in [json!(null), json!(""), json!(2025061009100000001u64)] {
        let mut e = envelope("2206", "x", settle_data(&psn, &visit, json!("20.00")));
        e["msgid"] = msgid;
        sent.push((serde_json::to_vec(&e).unwrap(), "msgid"));
    }
    let before = app.received().await.len();
    let counted = metrics::INVALID.with_label_values(&["2206"]).get();
    // Act + Assert: each one answered locally, naming the field, with a reason in Chinese.
    for (body, path) in &sent {
        let r = app.post_raw(body.clone(), &[("content-type", "application/json")]).await;
        let msg = r.json["err_msg"].as_str().unwrap_or_default();
        assert_eq!(r.json["infcode"], -1, "{} → {}", String::from_utf8_lossy(body), r.json);
        assert!(msg.contains("报文无法处理") && msg.contains(&format!("{path}：")), "{path}: {msg}");
        assert_eq!(app.received().await.len(), before, "{} reached the gateway", String::from_utf8_lossy(body));
    }
    assert!(metrics::INVALID.with_label_values(&["2206"]).get() >= counted + 12, "counted");
    // The same pre-settlement with a valid amount does reach the gateway: the refusals were for the field.
    let ok = envelope("2206", "H4107010000120250610GOOD0001", settle_data(&psn, &visit, json!("20.00")));
    let r = app.call(&ok).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    assert_eq!(app.received().await.len(), before + 1);
}

#[actix_web::test]
async fn an_invalid_upload_whose_check_runs_over_budget_is_refused_not_forwarded_unchecked() {
    // Arrange: a 1 ms budget and fail-open, the path that forwards a claim without a judgement.
    let app = spawn_app_with(Options {
        tweak: Box::new(|c| {
            c.check_budget_ms = 1;
            c.fail_open = true;
        }),
        ..Options::default()
    })
    .await;
    let (psn, visit) = ("41000011000000000099990001", "410700G0000201506109999");
    let mut lines: Vec<Value> = (0..3_000)
        .map(|i| line(&format!("FP{i:05}"), visit, psn, "001102000010000", 1, "15.00", "15.00", None))
        .collect();
    lines[2_999]["det_item_fee_sumamt"] = json!("-15.001");
    // Act
    let r = app.call(&envelope("2204", "H4107010000120250610BIG00001", json!({"feedetail": lines}))).await;
    // Assert
    assert_eq!(r.json["infcode"], -1, "{}", r.json);
    assert!(r.json["err_msg"].as_str().unwrap().contains("input.feedetail[2999].det_item_fee_sumamt"), "{}", r.json);
    assert!(app.received().await.is_empty(), "an invalid upload went upstream");
}
