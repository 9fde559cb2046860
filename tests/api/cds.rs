//! The CDS Hooks 2.0 service: discovery, a service call with FHIR R4 draft orders shaped as the
//! spec's examples, feedback that overrides a card, and the settlement the override lets through —
//! on SQLite and PostgreSQL.

use crate::helpers::{envelope, pg, spawn_app, spawn_app_with, Options, TestApp};
use serde_json::{json, Value};

const MAN: &str = "410702198003150031";

impl TestApp {
    async fn cds(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
        let mut rb = self.client.post(format!("{}/cds-services{path}", self.base)).json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let (s, d) =
            (r.status().as_u16(), r.headers().get("x-claimgate-decision").map(|v| v.to_str().unwrap().to_owned()));
        (s, d, r.json().await.unwrap_or(Value::Null))
    }
}

/// An inpatient stay through the proxy (1101, 2401): `(psn_no, mdtrt_id)`.
async fn admit(app: &TestApp, seq: u32) -> (String, String) {
    let r = app
        .call(&envelope(
            "1101",
            &format!("H4107010000120250610120000{seq:02}01"),
            json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": MAN, "certno": MAN}}),
        ))
        .await;
    let psn = r.json["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r = app.call(&envelope("2401", &format!("H4107010000120250610120000{seq:02}02"), json!({"mdtrtinfo": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:30:00",
        "med_type": "21", "dscg_maindiag_code": "S72.000", "dscg_maindiag_name": "股骨颈骨折", "adm_dept_codg": "100201"}, "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_code": "S72.000", "diag_name": "股骨颈骨折"}]}))).await;
    let visit = r.json["output"]["result"]["mdtrt_id"].as_str().unwrap().to_owned();
    (psn, visit)
}

/// The 2301 that bills the two nursing orders (`N1` Ⅰ级护理 15.00, `N2` Ⅱ级护理 10.00), by doctor D3.
fn nursing_upload(psn: &str, visit: &str, msgid: &str) -> Value {
    let l = |sn: &str, code: &str, name: &str, pric: u32| {
        json!({"feedetl_sn": sn, "init_feedetl_sn": "", "mdtrt_id": visit, "psn_no": psn, "med_type": "21",
        "fee_ocur_time": "2025-06-10 10:00:00", "med_list_codg": code, "medins_list_codg": name, "det_item_fee_sumamt": pric, "cnt": 1, "pric": pric,
        "bilg_dept_codg": "100201", "bilg_dept_name": "骨科", "bilg_dr_codg": "D3", "bilg_dr_name": "孙医生"})
    };
    envelope(
        "2301",
        msgid,
        json!({"feedetail": [l("N1", "001201000030000", "Ⅰ级护理", 15), l("N2", "001201000040000", "Ⅱ级护理", 10)]}),
    )
}

/// An order-sign request as the spec's example has it (`hookInstance`, `fhirServer`, `context` with
/// `userId`, `patientId`, `encounterId`, `draftOrders` Bundle; `prefetch`), with two ServiceRequests:
/// 一级护理 priced through claimgate's extension, 二级护理 without a price.
fn order_sign(psn: &str, visit: &str) -> Value {
    let sr = |id: &str, code: &str, name: &str, price: Option<u32>| {
        let mut r = json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "225358003", "display": "Nursing care"},
                                {"system": "urn:oid:2.16.156.10011.2.3.hospital.items", "code": code, "display": name}], "text": name},
            "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"},
            "occurrenceDateTime": "2025-06-10T10:00:00+08:00", "authoredOn": "2025-06-10T09:50:00+08:00",
            "requester": {"reference": "Practitioner/pr-3", "identifier": {"system": "https://claimgate.cn/fhir/sid/dr-code", "value": "D3"}, "display": "孙医生"}});
        if let Some(p) = price {
            r["extension"] = json!([{"url": "https://claimgate.cn/fhir/StructureDefinition/unit-price", "valueMoney": {"value": p, "currency": "CNY"}}]);
        }
        json!({"resource": r})
    };
    json!({
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://ehr.example.cn/fhir",
        "hook": "order-sign",
        "context": {"userId": "Practitioner/pr-3", "patientId": "pat-1", "encounterId": "enc-1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [
                sr("N1", "001201000030000", "Ⅰ级护理", Some(15)), sr("N2", "001201000040000", "Ⅱ级护理", None)]}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "pat-1", "gender": "male", "birthDate": "1980-03-15",
                "identifier": [{"system": "https://claimgate.cn/fhir/sid/psn-no", "value": psn}]},
            "encounter": {"resourceType": "Encounter", "id": "enc-1", "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
                "identifier": [{"system": "https://claimgate.cn/fhir/sid/mdtrt-id", "value": visit}],
                "period": {"start": "2025-06-10T09:30:00+08:00"}},
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Condition", "id": "c-1",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "S72.000", "display": "股骨颈骨折"}]}}}]}
        }
    })
}

#[actix_web::test]
async fn discovery_lists_the_three_services_with_prefetch_templates_and_answers_a_browser_preflight() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let r = app.client.get(format!("{}/cds-services", app.base)).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/cds-services/claimgate-order-sign", app.base))
        .header("origin", "https://ehr.example.cn")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    // Assert
    assert_eq!(status, 200);
    let services = v["services"].as_array().unwrap();
    let hooks: Vec<&str> = services.iter().map(|s| s["hook"].as_str().unwrap()).collect();
    assert_eq!(hooks, vec!["order-select", "order-sign", "encounter-discharge"]);
    for s in services {
        assert!(s["id"].as_str().unwrap().starts_with("claimgate-"));
        assert!(!s["title"].as_str().unwrap().is_empty() && !s["description"].as_str().unwrap().is_empty());
        assert_eq!(s["prefetch"]["patient"], "Patient/{{context.patientId}}");
        assert_eq!(s["prefetch"]["encounter"], "Encounter/{{context.encounterId}}");
        assert!(s["prefetch"]["conditions"].as_str().unwrap().starts_with("Condition?patient={{context.patientId}}"));
    }
    assert!(pre.status().is_success(), "{}", pre.status());
    assert!(pre.headers().get("access-control-allow-origin").is_some());
}

/// Cards for two draft orders; the doctor overrides with a reason; the settlement the override
/// covers goes through the proxy, and the journal holds the answer linked to its rule.
async fn an_override_through_cds_feedback_lets_the_settlement_through(app: TestApp) {
    // Arrange: the stay, and the nursing upload blocked once (4 points accrued by D3 in 2025).
    let (psn, visit) = admit(&app, 1).await;
    let r = app.call(&nursing_upload(&psn, &visit, "H41070100001202506101200000101")).await;
    assert_eq!(r.decision.as_deref(), Some("block"), "{}", r.json);
    app.state.journal.flush().await;

    // Act: order-sign with the same two orders.
    let (status, decision, v) = app.cds("/claimgate-order-sign", &order_sign(&psn, &visit), &[]).await;

    // Assert: one card for the 互斥 hit, with the rule's points and the doctor's year so far.
    assert_eq!(status, 200, "{v}");
    assert_eq!(decision.as_deref(), Some("block"));
    let cards = v["cards"].as_array().unwrap();
    let card = cards.iter().find(|c| c["source"]["topic"]["code"] == "CG-MUTEX-001").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(card["indicator"], "critical");
    let summary = card["summary"].as_str().unwrap();
    assert!(summary.chars().count() <= 140 && summary.contains("Ⅰ级护理") && summary.contains("Ⅱ级护理"), "{summary}");
    let detail = card["detail"].as_str().unwrap();
    assert!(detail.contains("政策依据") && detail.contains("分级护理指导原则"), "{detail}");
    assert!(card["source"]["label"].as_str().unwrap().contains("national-baseline"));
    assert_eq!(card["extension"]["cn.claimgate.points"]["rule_points"], 4);
    assert_eq!(card["extension"]["cn.claimgate.points"]["doctor"], "D3");
    assert_eq!(card["extension"]["cn.claimgate.points"]["accrued"], 4);
    assert_eq!(card["extension"]["cn.claimgate.points"]["suspension_at"], 9);
    assert!(detail.contains("累计记分4分"), "{detail}");
    assert!(!card["overrideReasons"].as_array().unwrap().is_empty(), "an overridable block offers reasons");
    let delete = &card["suggestions"][0]["actions"][0];
    assert_eq!(delete["type"], "delete");
    assert!(delete["resourceId"].as_array().unwrap().contains(&json!("ServiceRequest/N2")));
    assert_eq!(card["selectionBehavior"], "at-most-one");

    // Act: feedback without a reason, for a card never issued, then overridden with a reason.
    let uuid = card["uuid"].as_str().unwrap();
    let bare =
        json!({"feedback": [{"card": uuid, "outcome": "overridden", "outcomeTimestamp": "2025-06-10T10:05:00Z"}]});
    let (no_reason, _, _) = app.cds("/claimgate-order-sign/feedback", &bare, &[]).await;
    let stray = json!({"feedback": [{"card": "00000000-0000-4000-8000-000000000000", "outcome": "overridden",
        "overrideReason": {"reason": {"code": "clinical-need", "system": "https://claimgate.cn/fhir/CodeSystem/override-reason"}}}]});
    let (unknown, _, unknown_body) = app.cds("/claimgate-order-sign/feedback", &stray, &[]).await;
    let fb = json!({"feedback": [{"card": uuid, "outcome": "overridden",
        "overrideReason": {"reason": {"code": "clinical-need", "system": "https://claimgate.cn/fhir/CodeSystem/override-reason", "display": "病情需要，继续执行"},
            "userComment": "下午病情好转，护理级别调整"},
        "outcomeTimestamp": "2025-06-10T10:06:00Z"}]});
    let (ok, _, ok_body) = app.cds("/claimgate-order-sign/feedback", &fb, &[]).await;
    let r = app.call(&nursing_upload(&psn, &visit, "H41070100001202506101200000102")).await;

    // Assert: refused without a reason and for an unknown card; the override lets the same lines through.
    assert_eq!(no_reason, 400);
    assert_eq!(unknown, 422, "{unknown_body}");
    assert!(unknown_body["error"].as_str().unwrap().contains("请重新进行事前分析"));
    assert_eq!(ok, 200, "{ok_body}");
    assert_eq!(r.decision.as_deref(), Some("pass"), "{}", r.json);
    let forwarded = app.received().await;
    assert!(forwarded.iter().any(|x| x["body"].as_str().unwrap().contains("H41070100001202506101200000102")));
    // The answer is a 3103 answer in the journal, linked to its rule through the jr_id the card carried.
    let reason = app.journal_rows("SELECT dspo_way, reason FROM j_feedback WHERE jr_id = $1", &[uuid]).await;
    assert_eq!(reason.len(), 1);
    assert_eq!(reason[0][0].string(), "1");
    assert!(reason[0][1].string().contains("下午病情好转"));
    let linked =
        app.journal_int("SELECT COUNT(*) FROM j_jr WHERE jr_id = $1 AND rule_id = 'CG-MUTEX-001'", &[uuid]).await;
    assert_eq!(linked, 1);
}

#[actix_web::test]
async fn an_override_through_cds_feedback_lets_the_settlement_through_on_sqlite() {
    an_override_through_cds_feedback_lets_the_settlement_through(spawn_app().await).await;
}

#[actix_web::test]
async fn an_override_through_cds_feedback_lets_the_settlement_through_on_postgres() {
    let Some(url) = pg("cds_override") else { return };
    let app = spawn_app_with(Options { history_store: Some(url), ..Options::default() }).await;
    an_override_through_cds_feedback_lets_the_settlement_through(app).await;
}

#[actix_web::test]
async fn missing_prefetch_and_an_order_without_a_national_code_are_said_on_a_card_never_passed_silently() {
    // Arrange: no conditions prefetched, no birth date, and a MedicationRequest coded in RxNorm only.
    let app = spawn_app().await;
    let mut req = order_sign("P-NOT-SEEN", "V-NOT-SEEN");
    req["hook"] = json!("order-select");
    req["prefetch"].as_object_mut().unwrap().remove("conditions");
    req["prefetch"]["patient"].as_object_mut().unwrap().remove("birthDate");
    req["context"]["selections"] = json!(["MedicationRequest/mr-1", "ServiceRequest/N1"]);
    req["context"]["draftOrders"]["entry"].as_array_mut().unwrap().push(json!({"resource": {
        "resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "617314", "display": "atorvastatin 10 MG Oral Tablet"}]},
        "dispenseRequest": {"quantity": {"value": 30, "unit": "片"}, "expectedSupplyDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}}}));
    // Act
    let (status, _, v) = app.cds("/claimgate-order-select", &req, &[]).await;
    // Assert: a warning card names what was not checked; the unselected order N2 is not judged.
    assert_eq!(status, 200, "{v}");
    let cards = v["cards"].as_array().unwrap();
    assert!(cards.iter().all(|c| c["source"]["topic"]["code"] != "CG-MUTEX-001"), "N2 was not selected: {v}");
    let card =
        cards.iter().find(|c| c["extension"]["cn.claimgate.unchecked"].is_object()).unwrap_or_else(|| panic!("{v}"));
    assert_eq!(card["indicator"], "warning");
    assert!(card["summary"].as_str().unwrap().contains("未检查"));
    let un = &card["extension"]["cn.claimgate.unchecked"];
    assert_eq!(un["prefetch"], json!(["conditions"]));
    assert_eq!(un["orders"][0]["reference"], "MedicationRequest/mr-1");
    assert!(card["detail"].as_str().unwrap().contains("atorvastatin"), "the order is named: {}", card["detail"]);
}

#[actix_web::test]
async fn check_hits_carry_points_and_the_doctors_year_so_far() {
    // Arrange: one blocked upload by D3 (4 points), then the same lines checked.
    let app = spawn_app().await;
    let (psn, visit) = admit(&app, 2).await;
    app.call(&nursing_upload(&psn, &visit, "H41070100001202506101200000201")).await;
    app.state.journal.flush().await;
    // Act
    let (status, v) = app.check(&nursing_upload(&psn, &visit, "H41070100001202506101200000202")).await;
    // Assert
    assert_eq!(status, 200);
    let hit = v["hits"].as_array().unwrap().iter().find(|h| h["rule_id"] == "CG-MUTEX-001").unwrap().clone();
    assert_eq!(hit["points"], 4);
    assert_eq!(
        v["doctor_points"],
        json!([{"doctor": "D3", "year": 2025, "accrued": 4, "suspension_at": 9, "termination_at": 12}])
    );
}

/// An EHR holding a P-384 key whose public half claimgate trusts (`cds.jwt_issuers`), and the client
/// key it calls with.
struct Ehr {
    _dir: tempfile::TempDir,
    public_key: std::path::PathBuf,
    key: jsonwebtoken::EncodingKey,
}

const EHR_ISS: &str = "https://ehr.example.cn";
const EHR_KEY: (&str, &str) = ("x-claimgate-key", "k-ehr-0123456789abcdef");

impl Ehr {
    fn new() -> Ehr {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let public_key = dir.path().join("ehr.pem");
        std::fs::write(&public_key, kp.public_key_pem()).unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap();
        Ehr { _dir: dir, public_key, key }
    }

    /// claimgate configured with this EHR's key and client key.
    fn options(&self, history_store: Option<String>) -> Options {
        let public_key = self.public_key.clone();
        Options {
            history_store,
            tweak: Box::new(move |c| {
                c.clients = vec![claimgate::config::ClientKey { name: "ehr".into(), key: EHR_KEY.1.into() }];
                c.cds.jwt_issuers = vec![claimgate::config::JwtIssuer { iss: EHR_ISS.into(), public_key }];
            }),
            ..Options::default()
        }
    }

    /// `Authorization` with a JWT for `aud`: `jti`, valid until `exp` (Unix seconds).
    fn bearer(&self, aud: &str, jti: &str, exp: i64) -> String {
        let claims = json!({"iss": EHR_ISS, "sub": "client-1", "aud": aud, "iat": chrono::Utc::now().timestamp(), "exp": exp, "jti": jti});
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        format!("Bearer {}", jsonwebtoken::encode(&header, &claims, &self.key).unwrap())
    }
}

#[actix_web::test]
async fn cds_calls_need_the_client_key_and_a_verified_jwt_when_an_ehr_key_is_configured() {
    // Arrange: a client key, and an EHR's P-384 key whose public half claimgate trusts.
    let ehr = Ehr::new();
    let app = spawn_app_with(ehr.options(None)).await;
    let aud = format!("{}/cds-services/claimgate-order-sign", app.base);
    let now = chrono::Utc::now().timestamp();
    let good = ehr.bearer(&aud, "j-1", now + 300);
    let wrong_aud = ehr.bearer("https://elsewhere.example.cn/cds-services/x", "j-1", now + 300);
    let body = order_sign("P1", "V1");
    // Act
    let (no_key, _, _) = app.cds("/claimgate-order-sign", &body, &[("authorization", &good)]).await;
    let (no_jwt, _, _) =
        app.cds("/claimgate-order-sign", &body, &[("x-claimgate-key", "k-ehr-0123456789abcdef")]).await;
    let (bad_aud, _, _) = app
        .cds(
            "/claimgate-order-sign",
            &body,
            &[("x-claimgate-key", "k-ehr-0123456789abcdef"), ("authorization", &wrong_aud)],
        )
        .await;
    let (ok, _, v) = app
        .cds("/claimgate-order-sign", &body, &[("x-claimgate-key", "k-ehr-0123456789abcdef"), ("authorization", &good)])
        .await;
    // The same token again (a replay), a token living longer than the spec's five minutes, and a
    // fresh one with the scheme in lower case (RFC 9110: the scheme is case-insensitive).
    let key_h = EHR_KEY;
    let (replayed, _, why) = app.cds("/claimgate-order-sign", &body, &[key_h, ("authorization", &good)]).await;
    let (long, fresh) =
        (ehr.bearer(&aud, "j-2", now + 3600), ehr.bearer(&aud, "j-3", now + 300).replacen("Bearer", "bearer", 1));
    let (too_long, _, _) = app.cds("/claimgate-order-sign", &body, &[key_h, ("authorization", &long)]).await;
    let (fresh_ok, _, _) = app.cds("/claimgate-order-sign", &body, &[key_h, ("authorization", &fresh)]).await;
    // Assert
    assert_eq!((no_key, no_jwt, bad_aud), (401, 401, 401));
    assert_eq!(ok, 200, "{v}");
    assert!(v["cards"].is_array());
    assert_eq!(replayed, 401, "a replayed jti is refused: {why}");
    assert!(why.to_string().contains("jti 重复"), "{why}");
    assert_eq!((too_long, fresh_ok), (401, 200), "exp more than five minutes ahead is refused; a new jti passes");
}

/// encounter-discharge on a short, cheap stay whose main diagnosis is on the low-threshold list: the
/// stay — the lines history holds for the visit and the discharge orders — is judged as at
/// settlement (CG-LOWADM-003: ≤ 3 days, ≤ 1,500 元, no surgery), and a card says so before the
/// discharge is settled.
#[actix_web::test]
async fn encounter_discharge_reminds_a_short_cheap_stay_of_a_listed_diagnosis() {
    // Arrange: a stay of the last two days (the hook is called now) with two bed days (2 × 50.00)
    // billed and accepted.
    let app = spawn_app().await;
    let today = chrono::Local::now().date_naive();
    let day = |back: u64| (today - chrono::Days::new(back)).format("%Y-%m-%d").to_string();
    let (psn, visit) = admit(&app, 31).await;
    let bed = |sn: &str, day: &str| {
        json!({"feedetl_sn": sn, "init_feedetl_sn": "", "mdtrt_id": visit, "psn_no": psn, "med_type": "21",
        "fee_ocur_time": format!("{day} 20:00:00"), "med_list_codg": "001109000010000", "medins_list_codg": "床位费",
        "det_item_fee_sumamt": 50, "cnt": 1, "pric": 50, "bilg_dept_codg": "100201", "bilg_dept_name": "骨科",
        "bilg_dr_codg": "D3", "bilg_dr_name": "孙医生"})
    };
    let upload = envelope(
        "2301",
        "H41070100001202506101200003111",
        json!({"feedetail": [bed("B1", &day(2)), bed("B2", &day(1))]}),
    );
    let r = app.call(&upload).await;
    assert_eq!(r.json["infcode"], 0, "{}", r.json);
    // The EHR discharges today with 急性上呼吸道感染 as the encounter's condition; no draft orders.
    let mut req = order_sign(&psn, &visit);
    req["hook"] = json!("encounter-discharge");
    req["context"].as_object_mut().unwrap().remove("draftOrders");
    req["prefetch"]["encounter"]["period"] =
        json!({"start": format!("{}T09:30:00+08:00", day(2)), "end": format!("{}T09:00:00+08:00", day(0))});
    req["prefetch"]["conditions"]["entry"][0]["resource"]["code"]["coding"][0] =
        json!({"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.900", "display": "急性上呼吸道感染"});
    // Act
    let (status, _, v) = app.cds("/claimgate-encounter-discharge", &req, &[]).await;
    // Assert
    assert_eq!(status, 200, "{v}");
    let cards = v["cards"].as_array().unwrap();
    let text = |c: &Value| {
        format!("{} {}", c["summary"].as_str().unwrap_or_default(), c["detail"].as_str().unwrap_or_default())
    };
    let low = cards
        .iter()
        .find(|c| text(c).contains("疑似低标准入院"))
        .unwrap_or_else(|| panic!("no low-threshold card: {v}"));
    assert!(text(low).contains("住院2天、总费用100.00元"), "the stay from history: {}", text(low));
    assert_eq!(low["indicator"], "warning");
}

/// Two instances sharing PostgreSQL behind one address (the `shared-postgres` deployment): a token
/// one of them took is refused by the other — the `jti`s taken live in the shared store.
#[actix_web::test]
async fn a_jwt_taken_by_one_instance_is_refused_as_a_replay_by_another_sharing_postgres() {
    // Arrange
    let Some(url) = pg("cds_jti_shared") else { return };
    let ehr = Ehr::new();
    let a = spawn_app_with(ehr.options(Some(url.clone()))).await;
    let b = spawn_app_with(ehr.options(Some(url))).await;
    // Each instance expects its own URL as the audience here (behind one address both would expect
    // that address), so the EHR signs the same jti once for each: the jti, not the token's bytes,
    // is what may be used once.
    let now = chrono::Utc::now().timestamp();
    let body = order_sign("P1", "V1");
    let aud_a = format!("{}/cds-services/claimgate-order-sign", a.base);
    let aud_b = format!("{}/cds-services/claimgate-order-sign", b.base);
    let to_b = ehr.bearer(&aud_b, "shared-1", now + 300);
    // Act: the token for b is first used at b; a different token with the same jti is then sent to a.
    let (first, _, _) = b.cds("/claimgate-order-sign", &body, &[EHR_KEY, ("authorization", &to_b)]).await;
    let (again_b, _, _) = b.cds("/claimgate-order-sign", &body, &[EHR_KEY, ("authorization", &to_b)]).await;
    let same_jti_at_a = ehr.bearer(&aud_a, "shared-1", now + 300);
    let (at_a, _, why) = a.cds("/claimgate-order-sign", &body, &[EHR_KEY, ("authorization", &same_jti_at_a)]).await;
    let (fresh_at_a, _, _) = a
        .cds("/claimgate-order-sign", &body, &[EHR_KEY, ("authorization", &ehr.bearer(&aud_a, "shared-2", now + 300))])
        .await;
    // Assert
    assert_eq!((first, again_b), (200, 401));
    assert_eq!(at_a, 401, "the jti taken at the other instance is a replay here: {why}");
    assert!(why.to_string().contains("jti 重复"), "{why}");
    assert_eq!(fresh_at_a, 200);
}

/// The store that keeps the `jti`s taken is unreachable: whether a token was used before cannot be
/// told, so the call is refused (500, said in Chinese) rather than taken on trust.
#[actix_web::test]
async fn a_jwt_is_refused_when_the_store_cannot_say_whether_its_jti_was_used() {
    // Arrange: a shared store on a closed port (the key copy a previous run left lets it start).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ehr = Ehr::new();
    let mut options = ehr.options(Some(format!("postgres://claimgate@127.0.0.1:{closed}/claimgate")));
    options.data_files = vec![("history.key", vec![7u8; 32])];
    let app = spawn_app_with(options).await;
    let aud = format!("{}/cds-services/claimgate-order-sign", app.base);
    let token = ehr.bearer(&aud, "down-1", chrono::Utc::now().timestamp() + 300);
    // Act
    let (status, _, v) =
        app.cds("/claimgate-order-sign", &order_sign("P1", "V1"), &[EHR_KEY, ("authorization", &token)]).await;
    // Assert
    assert_eq!(status, 500, "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("无法确认 JWT 是否已被使用"), "{v}");
}
