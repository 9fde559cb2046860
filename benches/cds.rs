//! A CDS Hooks `order-sign` call with 20 draft orders against `/v1/check` of the same 20 lines as a
//! 3101, both over loopback HTTP to the real server (national-baseline + national-liangku). The
//! budget: the CDS call adds at most 2 ms. A second server trusts an EHR's key (`cds.jwt_issuers`):
//! the same call with a fresh JWT each time (verified, its `jti` recorded in the history store).
//! Run: `cargo bench --bench cds`.

use claimgate::config::Config;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::path::PathBuf;

const PSN: &str = "41000011000000000012345678";
const VISIT: &str = "410700G0000123456";

/// 20 items: the two nursing levels (one 互斥 hit) and 18 services billed once.
fn items() -> Vec<(String, String, u32)> {
    let mut v = vec![
        ("001201000030000".to_owned(), "Ⅰ级护理".to_owned(), 15),
        ("001201000040000".to_owned(), "Ⅱ级护理".to_owned(), 10),
    ];
    for i in 0..18 {
        v.push((format!("00110200{:07}", 10 + i), format!("检查项目{i}"), 20 + i));
    }
    v
}

fn order_sign() -> Value {
    let entries: Vec<Value> = items()
        .into_iter()
        .enumerate()
        .map(|(i, (code, name, price))| {
            json!({"resource": {"resourceType": "ServiceRequest", "id": format!("O{i}"), "status": "draft", "intent": "order",
                "code": {"coding": [{"system": "https://claimgate.cn/fhir/CodeSystem/nhsa-hilist", "code": code, "display": name}]},
                "occurrenceDateTime": "2025-06-10T10:00:00+08:00",
                "extension": [{"url": "https://claimgate.cn/fhir/StructureDefinition/unit-price", "valueMoney": {"value": price, "currency": "CNY"}}],
                "requester": {"identifier": {"system": "https://claimgate.cn/fhir/sid/dr-code", "value": "D3"}, "display": "孙医生"}}})
        })
        .collect();
    json!({"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": "order-sign",
        "context": {"userId": "Practitioner/D3", "patientId": "pat-1", "encounterId": "enc-1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "pat-1", "gender": "male", "birthDate": "1980-03-15",
                "identifier": [{"system": "https://claimgate.cn/fhir/sid/psn-no", "value": PSN}]},
            "encounter": {"resourceType": "Encounter", "id": "enc-1", "class": {"code": "IMP"},
                "identifier": [{"system": "https://claimgate.cn/fhir/sid/mdtrt-id", "value": VISIT}], "period": {"start": "2025-06-10T09:30:00+08:00"}},
            "conditions": {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition", "id": "c-1",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "S72.000", "display": "股骨颈骨折"}]}}}]}}})
}

/// The same 20 lines as the 3101 an HIS would send.
fn analysis() -> Value {
    let orders: Vec<Value> = items()
        .into_iter()
        .enumerate()
        .map(|(i, (code, name, price))| {
            json!({"rx_id": format!("O{i}"), "hilist_code": code, "hilist_name": name, "cnt": 1, "pric": price,
                "drord_begn_date": "2025-06-10 10:00:00", "drord_dr_codg": "D3", "drord_dr_name": "孙医生", "drord_bhvr": "0"})
        })
        .collect();
    json!({"infno": "3101", "msgid": "H41070100001202506101000000001", "mdtrtarea_admvs": "410700", "insuplc_admdvs": "410700",
        "recer_sys_code": "HIS", "infver": "V1.0", "opter_type": "1", "opter": "D3", "inf_time": "2025-06-10 10:00:00",
        "fixmedins_code": "H41070100001", "input": {"data": {"syscode": "HIS", "task_id": "T1", "trig_scen": "5", "rule_ids": [],
        "patient_dtos": [{"patn_id": PSN, "gend": "1", "brdy": "1980-03-15", "curr_mdtrt_id": VISIT,
            "fsi_encounter_dtos": [{"mdtrt_id": VISIT, "medins_id": "H41070100001", "med_type": "21", "med_mdtrt_type": "2",
                "adm_date": "2025-06-10 09:30:00", "dr_codg": "D3",
                "fsi_diagnose_dtos": [{"dise_codg": "S72.000", "dise_name": "股骨颈骨折", "maindise_flag": "1", "inout_dise_type": "1"}],
                "fsi_order_dtos": orders, "fsi_operation_dtos": []}]}]}}})
}

/// A server on a loopback port with `cfg`; its address.
fn serve(cfg: Config) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let r = claimgate::startup::build(cfg).expect("server");
            tx.send(r.addr).unwrap();
            r.server.await.unwrap();
        })
    });
    rx.recv().unwrap()
}

fn benches(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (data, jwt_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = |data: &std::path::Path| Config {
        listen: "127.0.0.1:0".into(),
        rules: vec![root.join("rulesets/national-baseline"), root.join("rulesets/national-liangku")],
        data: data.to_path_buf(),
        institution_tier: Some("2".into()),
        ..Config::default()
    };
    let addr = serve(cfg(data.path()));
    // The EHR's P-384 key; claimgate trusts its public half.
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let public_key = jwt_data.path().join("ehr.pem");
    std::fs::write(&public_key, kp.public_key_pem()).unwrap();
    let mut with_jwt = cfg(jwt_data.path());
    with_jwt.cds.jwt_issuers = vec![claimgate::config::JwtIssuer { iss: "https://ehr.example.cn".into(), public_key }];
    let jwt_addr = serve(with_jwt);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap();
    let jti = std::sync::atomic::AtomicU64::new(0);
    let bearer = || {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": "https://ehr.example.cn", "aud": format!("http://{jwt_addr}/cds-services/claimgate-order-sign"),
            "iat": now, "exp": now + 300, "jti": format!("bench-{}", jti.fetch_add(1, std::sync::atomic::Ordering::Relaxed))});
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        format!("Bearer {}", jsonwebtoken::encode(&header, &claims, &key).unwrap())
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let (cds_body, check_body) = (serde_json::to_vec(&order_sign()).unwrap(), serde_json::to_vec(&analysis()).unwrap());
    let post_to = |addr: std::net::SocketAddr, path: &str, body: &[u8], auth: Option<String>| {
        let mut rb =
            client.post(format!("http://{addr}{path}")).header("content-type", "application/json").body(body.to_vec());
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        rt.block_on(async move {
            let r = rb.send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap()
        })
    };
    let post = |path: &str, body: &[u8]| post_to(addr, path, body, None);
    // Both find the 互斥 hit: the same work is being compared.
    let cards: Value = serde_json::from_slice(&post("/cds-services/claimgate-order-sign", &cds_body)).unwrap();
    let decision: Value = serde_json::from_slice(&post("/v1/check", &check_body)).unwrap();
    assert!(
        cards["cards"].as_array().unwrap().iter().any(|c| c["source"]["topic"]["code"] == "CG-MUTEX-001"),
        "{cards}"
    );
    assert!(decision["hits"].as_array().unwrap().iter().any(|h| h["rule_id"] == "CG-MUTEX-001"), "{decision}");
    let mut g = c.benchmark_group("cds");
    g.bench_function("v1_check_3101_20_lines", |b| b.iter(|| post("/v1/check", &check_body)));
    g.bench_function("order_sign_20_draft_orders", |b| {
        b.iter(|| post("/cds-services/claimgate-order-sign", &cds_body))
    });
    // Signing the token is the EHR's work: outside the measured time.
    g.bench_function("order_sign_20_draft_orders_with_jwt", |b| {
        b.iter_batched(
            bearer,
            |auth| post_to(jwt_addr, "/cds-services/claimgate-order-sign", &cds_body, Some(auth)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(cds, benches);
criterion_main!(cds);
