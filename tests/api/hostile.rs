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
async fn a_reversal_that_does_not_name_what_it_undoes_is_refused_and_the_gateway_receives_nothing() {
    // Arrange: a registered visit with one accepted upload (something a 2205 could revoke).
    let app = spawn_app().await;
    let (psn, visit) = register(&app, MAN, "11", 1).await;
    let upload = envelope(
        "2204",
        "H4107010000120250610REV00001",
        json!({"feedetail": [line("F1", &visit, &psn, "001102000010000", 1, "20.00", "20.00", None)]}),
    );
    assert_eq!(app.call(&upload).await.json["infcode"], 0);
    let revoke = |data: Value| json!({"data": data});
    let cases = [
        ("2205", revoke(json!({"chrg_bchno": "B1", "psn_no": psn})), "input.data.mdtrt_id"),
        ("2205", revoke(json!({"mdtrt_id": [visit], "chrg_bchno": "B1", "psn_no": psn})), "input.data.mdtrt_id"),
        ("2205", revoke(json!({"mdtrt_id": visit, "psn_no": psn})), "input.data.chrg_bchno"),
        ("2302", revoke(json!({"mdtrt_id": visit, "psn_no": psn})), "input.data.feedetl_sn"),
        ("2208", revoke(json!({"mdtrt_id": visit, "psn_no": psn})), "input.data.setl_id"),
        ("2305", revoke(json!({"setl_id": "S1", "mdtrt_id": visit, "psn_no": ""})), "input.data.psn_no"),
        ("2205", json!("not an object"), "input"),
    ];
    let before = app.received().await.len();
    // Act + Assert: each answered locally, naming the field; nothing reaches the gateway.
    for (i, (infno, input, path)) in cases.iter().enumerate() {
        let r = app.call(&envelope(infno, &format!("H4107010000120250610REVBAD{i:02}"), input.clone())).await;
        let msg = r.json["err_msg"].as_str().unwrap_or_default();
        assert_eq!(r.json["infcode"], -1, "{infno} {input} → {}", r.json);
        assert!(msg.contains("报文无法处理") && msg.contains(&format!("{path}：")), "{path}: {msg}");
        assert_eq!(app.received().await.len(), before, "{infno} {input} reached the gateway");
    }
    // The revocation naming its visit, batch and person is relayed.
    let ok = envelope(
        "2205",
        "H4107010000120250610REVOK001",
        revoke(json!({"mdtrt_id": visit, "chrg_bchno": "B1", "psn_no": psn})),
    );
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

// === stalled bodies and connection floods ===

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HEAD: &str =
    "POST /fsi/api/rsfComIfsService/callService HTTP/1.1\r\nHost: claimgate\r\nContent-Type: application/json\r\n";

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection from `from` (any 127/8 address is loopback: a second client on the same host).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection (bounded, so a bug fails the test
/// instead of hanging it).
async fn until_closed(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the server closed the connection")
        .ok();
    String::from_utf8_lossy(&buf).into_owned()
}

fn short_body_deadline() -> Box<dyn FnOnce(&mut claimgate::config::Config)> {
    Box::new(|c| {
        c.client_body_timeout_ms = 300;
        c.max_connections_per_client = 20;
    })
}

#[actix_web::test]
async fn a_body_that_stalls_half_way_is_answered_408_in_the_envelope_and_its_connection_closed() {
    // Arrange
    let app = spawn_app_with(Options { tweak: short_body_deadline(), ..Options::default() }).await;
    let part = r#"{"infno":"2204","msgid":"H41070100001202506100910000009","input":{"feedetail":["#;
    // Act: a declared length never reached, and a chunked body whose last chunk never comes.
    let mut sized = TcpStream::connect(addr(&app)).await.unwrap();
    sized.write_all(format!("{HEAD}Content-Length: 5000\r\n\r\n{part}").as_bytes()).await.unwrap();
    let mut chunked = TcpStream::connect(addr(&app)).await.unwrap();
    chunked
        .write_all(format!("{HEAD}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{part}\r\n", part.len()).as_bytes())
        .await
        .unwrap();
    let (sized, chunked) = (until_closed(&mut sized).await, until_closed(&mut chunked).await);
    // Assert
    for answer in [&sized, &chunked] {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""infcode":-1"#) && answer.contains("请求体未在300毫秒内传完"), "{answer}");
    }
    assert!(app.received().await.is_empty(), "nothing of a stalled body reached the gateway");
    assert_eq!(app.get("/healthz", None).await.0, 200);
}

#[actix_web::test]
async fn a_flood_of_stalled_connections_from_one_client_is_capped_and_cut_while_others_are_served() {
    // Arrange: the flood comes from 127.0.0.2, the hospital's HIS from 127.0.0.1.
    let app = spawn_app_with(Options { tweak: short_body_deadline(), ..Options::default() }).await;
    let flooder = Ipv4Addr::new(127, 0, 0, 2);
    let refused_before = metrics::REFUSED.with_label_values(&["client_connections"]).get();
    for wave in 0..3 {
        // Act: 200 connections that send a head and part of a body, then nothing.
        let mut flood = Vec::new();
        for _ in 0..200 {
            let mut s = connect_from(flooder, addr(&app)).await;
            // A refused connection may be shut before the write lands: that is the point.
            let _ = s.write_all(format!("{HEAD}Content-Length: 9000\r\n\r\n{{\"infno\":").as_bytes()).await;
            flood.push(s);
        }
        // Assert: the HIS is served meanwhile.
        assert_eq!(app.get("/healthz", None).await.0, 200, "wave {wave}");
        let mut answers = Vec::new();
        for s in &mut flood {
            answers.push(until_closed(s).await);
        }
        // Every connection was closed by the server: cut at the body deadline (408), or refused at
        // once over the cap (503) — or shut before its refusal could be read.
        let cut = answers.iter().filter(|a| a.starts_with("HTTP/1.1 408")).count();
        let capped = answers.iter().filter(|a| a.contains("该客户端同时打开的连接过多")).count();
        eprintln!("wave {wave}: {cut} cut at the deadline, {capped} refused over the cap");
        assert!(cut >= 20, "wave {wave}: the first 20 are served until their deadline ({cut})");
        assert!(cut < 100, "wave {wave}: {cut} of 200 connections held: the cap did not hold");
        assert!(capped > 0, "wave {wave}: {:?}", &answers[..3]);
    }
    assert!(metrics::REFUSED.with_label_values(&["client_connections"]).get() >= refused_before + 300);
    // After the flood, the flooding address's slots are free again: a claim from it goes through.
    let client = reqwest::Client::builder().local_address(IpAddr::V4(flooder)).build().unwrap();
    let env = envelope("9001", "H41070100001202506100910000010", json!({"signIn": {"opter_no": "0153"}}));
    let r = client.post(format!("{}/fsi/api/rsfComIfsService/callService", app.base)).json(&env).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.received().await.len(), 1, "the sign-in reached the gateway; no flood bytes did");
}

// === envelopes for every answer a client can read ===

#[actix_web::test]
async fn another_method_than_post_on_the_claim_routes_is_answered_in_the_envelope() {
    // Arrange
    let app = spawn_app().await;
    for path in ["/fsi/api/rsfComIfsService/callService", "/fsi/api/rsfComIfsService/callService/2204"] {
        // Act
        let r = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        // Assert
        assert_eq!(r.status().as_u16(), 405, "{path}");
        assert_eq!(r.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
        let env: Value = r.json().await.unwrap();
        assert_eq!(env["infcode"], -1);
        assert!(env["err_msg"].as_str().unwrap().contains("只接受POST请求"), "{env}");
    }
}

#[actix_web::test]
async fn the_infno_route_takes_the_transaction_from_its_path_when_the_body_lacks_it() {
    // Arrange: a gateway called 广东-style, with the infno in the URL.
    let app = spawn_app_with(Options {
        tweak: Box::new(|c| {
            c.upstream = c.upstream.as_ref().map(|u| format!("{u}/{{infno}}"));
        }),
        ..Options::default()
    })
    .await;
    let (psn, visit) = register(&app, MAN, "11", 1).await;
    let mut env = envelope("2206", "H4107010000120250610PATH0001", settle_data(&psn, &visit, json!("20.00")));
    env.as_object_mut().unwrap().remove("infno");
    let url = format!("{}/fsi/api/rsfComIfsService/callService/2206", app.base);
    // Act
    let r = app.client.post(&url).json(&env).send().await.unwrap();
    // Assert: checked as a 2206 and forwarded to the gateway's 2206 URL.
    assert_eq!(r.headers().get("x-claimgate-decision").and_then(|v| v.to_str().ok()), Some("pass"));
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["infcode"], 0, "{answer}");
    assert!(app.received().await.iter().any(|m| m["infno"] == "2206"));
    // A body naming another transaction than its path is refused, and not forwarded.
    let before = app.received().await.len();
    env["infno"] = json!("2207");
    env["msgid"] = json!("H4107010000120250610PATH0002");
    let r: Value = app.client.post(&url).json(&env).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["infcode"], -1);
    assert!(r["err_msg"].as_str().unwrap().contains("infno：与URL路径中的交易编号不一致"), "{r}");
    assert_eq!(app.received().await.len(), before);
}

#[actix_web::test]
async fn framing_errors_and_overlong_or_slow_heads_are_answered_in_the_envelope_and_the_connection_closed() {
    // Arrange: a short head deadline, so that a head never finished is answered within the test.
    let app =
        spawn_app_with(Options { tweak: Box::new(|c| c.client_request_timeout_ms = 500), ..Options::default() }).await;
    let refused = |r: &str| metrics::REFUSED.with_label_values(&[r]).get();
    let before = (refused("framing"), refused("head_too_large"), refused("head_timeout"));
    let body = r#"{"infno":"9001","msgid":"H41070100001202506100910000011","input":{}}"#;
    let n = body.len();
    let not_http = "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}garbage\r\n\r\n";
    let framing = "请求无法按HTTP/1.1读取";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "Content-Length with Transfer-Encoding",
            format!("{HEAD}Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n\r\n{body}"),
            "400",
            framing,
        ),
        ("a negative Content-Length", format!("{HEAD}Content-Length: -{n}\r\n\r\n{body}"), "400", framing),
        (
            "two different Content-Lengths",
            format!("{HEAD}Content-Length: {n}\r\nContent-Length: 3\r\n\r\n{body}"),
            "400",
            framing,
        ),
        ("bytes that are not HTTP", not_http.to_owned(), "400", framing),
        (
            "more headers than the limit",
            format!("{HEAD}{}\r\n", (0..100).map(|i| format!("X-F{i}: a\r\n")).collect::<String>()),
            "431",
            "请求头过大",
        ),
        ("a head never finished", format!("{HEAD}Content-Length: {n}\r\n"), "408", "请求头未在500毫秒内传完"),
        (
            "a claim POST without a body",
            format!("{HEAD}Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "200",
            "请求体为空",
        ),
        // Framed, but its chunk size is not hex: actix hands claimgate a failed body.
        (
            "a broken chunk size",
            format!("{HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"),
            "200",
            "报文无法处理",
        ),
    ];
    for (what, bytes, status, reason) in cases {
        // Act
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(bytes.as_bytes()).await.unwrap();
        let answer = until_closed(&mut s).await;
        // Assert: the status, then an envelope the HIS can read, saying why in Chinese.
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{what}: {answer}");
        let env: Value = answer
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or_else(|| panic!("{what}: no envelope in {answer}"));
        assert_eq!(env["infcode"], -1, "{what}: {env}");
        assert!(env["err_msg"].as_str().unwrap().contains(reason), "{what}: {env}");
    }
    assert!(app.received().await.is_empty(), "nothing reached the gateway");
    assert_eq!(
        (refused("framing"), refused("head_too_large"), refused("head_timeout")),
        (before.0 + 4, before.1 + 1, before.2 + 1)
    );
    // A request pipelined before bytes that cannot be framed is answered first, then the envelope.
    let ok = envelope("9001", "H41070100001202506100910000012", json!({"signIn": {"opter_no": "0153"}}));
    let ok = serde_json::to_string(&ok).unwrap();
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let pipelined = format!("{HEAD}Content-Length: {}\r\n\r\n{ok}{HEAD}Content-Length: -1\r\n\r\n", ok.len());
    s.write_all(pipelined.as_bytes()).await.unwrap();
    let answers = until_closed(&mut s).await;
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    let second = answers.find("HTTP/1.1 400").unwrap_or_else(|| panic!("{answers}"));
    assert!(answers[second..].contains(framing), "{answers}");
    assert_eq!(app.received().await.len(), 1, "the sign-in reached the gateway");
    assert_eq!(app.get("/healthz", None).await.0, 200);
}
