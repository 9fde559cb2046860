//! HL7 CDS Hooks 2.0 on the wire: the service request, the cards answered, discovery, feedback, and
//! the FHIR R4 resources a request carries (read leniently as JSON values: FHIR is large and an
//! EHR sends much that claimgate does not read).
//!
//! [`to_analysis`] turns a hook request into the national 3101/3102 envelope (`input.data` with
//! `patient_dtos[]`), so a CDS call is normalised, evaluated, answered and journaled exactly as a
//! 3101 from an HIS; [`to_feedback`] turns CDS feedback into a 3103 envelope. Both are JSON to JSON:
//! this module is where the FHIR field names and the national ones meet, and nothing else knows
//! either. What a field becomes is documented in the README's CDS Hooks section.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The identifier system of the national 人员编号 (`psn_no`) on `Patient.identifier`.
pub const SID_PSN_NO: &str = "https://claimgate.cn/fhir/sid/psn-no";
/// The identifier system of the national 就诊ID (`mdtrt_id`) on `Encounter.identifier`.
pub const SID_MDTRT_ID: &str = "https://claimgate.cn/fhir/sid/mdtrt-id";
/// The identifier system of an order's id as the HIS will bill it (`rx_id` in 3101, `feedetl_sn` in
/// 2204/2301) on an order's `identifier`; without it the resource's `id` is used.
pub const SID_RX_ID: &str = "https://claimgate.cn/fhir/sid/rx-id";
/// The identifier system of the doctor's national code (`drord_dr_codg`) on `requester.identifier`.
pub const SID_DR_CODE: &str = "https://claimgate.cn/fhir/sid/dr-code";
/// The code system of the national 医保目录编码 (`med_list_codg` / `hilist_code`).
pub const CS_HILIST: &str = "https://claimgate.cn/fhir/CodeSystem/nhsa-hilist";
/// The code system of the national 医疗类别 (`med_type`) on `Encounter.type`.
pub const CS_MED_TYPE: &str = "https://claimgate.cn/fhir/CodeSystem/nhsa-med-type";
/// The code system of claimgate's override reasons.
pub const CS_OVERRIDE: &str = "https://claimgate.cn/fhir/CodeSystem/override-reason";
/// The extension giving an order's unit price (`valueMoney`, 元) when the order itself has none.
pub const EXT_UNIT_PRICE: &str = "https://claimgate.cn/fhir/StructureDefinition/unit-price";

// === the request ===

/// A CDS service call (`POST {base}/{id}`).
#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct HookRequest {
    pub hook: String,
    pub hook_instance: String,
    pub fhir_server: Option<String>,
    pub context: Context,
    /// Prefetched FHIR resources by the keys of the service's prefetch templates.
    pub prefetch: Map<String, Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Context {
    pub user_id: Option<String>,
    pub patient_id: Option<String>,
    pub encounter_id: Option<String>,
    /// `order-select`: the orders the user selected (`MedicationRequest/103`).
    pub selections: Vec<String>,
    /// `order-select` / `order-sign`: a FHIR Bundle of the draft orders.
    pub draft_orders: Option<Value>,
}

/// The feedback endpoint's body.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FeedbackRequest {
    pub feedback: Vec<FeedbackEntry>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct FeedbackEntry {
    /// The card's `uuid`.
    pub card: String,
    /// `accepted` or `overridden`.
    pub outcome: String,
    pub accepted_suggestions: Vec<Value>,
    pub override_reason: Option<OverrideReason>,
    pub outcome_timestamp: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct OverrideReason {
    pub reason: Option<Coding>,
    pub user_comment: Option<String>,
}

// === the answer ===

#[derive(Debug, Serialize, Deserialize, Default, Clone, PartialEq)]
#[serde(default)]
pub struct Coding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Serialize, Default)]
pub struct CdsResponse {
    pub cards: Vec<Card>,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub uuid: String,
    /// At most 140 characters.
    pub summary: String,
    /// GitHub-flavoured markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `info`, `warning` or `critical`.
    pub indicator: &'static str,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Required when there are suggestions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    /// claimgate's own fields (`cn.claimgate.points`, `cn.claimgate.rule`, `cn.claimgate.unchecked`).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extension: Map<String, Value>,
}

#[derive(Debug, Serialize, Default)]
pub struct Source {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Coding>,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub label: String,
    pub uuid: String,
    pub is_recommended: bool,
    pub actions: Vec<Action>,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// `create`, `update` or `delete`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// `delete`: the references of the resources to remove (`ServiceRequest/sr-1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_id: Vec<String>,
}

/// `GET {base}`: the services.
#[derive(Debug, Serialize)]
pub struct Discovery {
    pub services: Vec<Service>,
}

#[derive(Debug, Serialize)]
pub struct Service {
    pub hook: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub id: &'static str,
    pub prefetch: Map<String, Value>,
}

/// The prefetch templates every service asks for: the patient, the encounter, its conditions.
pub fn prefetch_templates() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("patient".into(), json!("Patient/{{context.patientId}}"));
    m.insert("encounter".into(), json!("Encounter/{{context.encounterId}}"));
    m.insert("conditions".into(), json!("Condition?patient={{context.patientId}}&encounter={{context.encounterId}}"));
    m
}

// === FHIR → the national 3101 ===

/// A draft order claimgate could not turn into a line, and why (Chinese, for the card).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `MedicationRequest/mr-1`.
    pub reference: String,
    /// What it is called in the order.
    pub name: String,
    pub why: &'static str,
}

/// A draft order as read: its reference, the line id it is billed under, the name shown, and the
/// resource itself (the suggestions edit a copy of it).
#[derive(Debug, Clone)]
pub struct Order {
    pub reference: String,
    pub rx_id: String,
    pub name: String,
    pub resource: Value,
    /// Whether the quantity is given by `dispenseRequest.quantity` (reducible by a suggestion).
    pub dispense_quantity: bool,
}

/// What a hook request became.
#[derive(Debug)]
pub struct Mapped {
    /// The national 3101 (or 3102) envelope, as bytes ready for `parse_head`.
    pub envelope: Vec<u8>,
    pub orders: Vec<Order>,
    pub skipped: Vec<Skipped>,
    /// Prefetch entries absent (`patient`, `encounter`, `conditions`): said so on a card.
    pub missing_prefetch: Vec<&'static str>,
    /// The ordering doctor's national code, when one is known.
    pub doctor: Option<String>,
}

/// The envelope's fixed fields.
pub struct EnvelopeHead<'a> {
    pub infno: &'a str,
    pub msgid: &'a str,
    pub fixmedins_code: &'a str,
    /// `yyyy-MM-dd HH:mm:ss`: the time of the call, and the service time of an order that gives none.
    pub now: &'a str,
    /// `trig_scen`.
    pub trig_scen: &'a str,
}

/// The national code's shape: 西药/中成药 (`X`/`Z` + 22), 医疗服务项目 (15 digits, optional local
/// suffix), 医用耗材 (`C` + 9 digits + more), 中药饮片 (`T` + 9 or more).
pub fn is_national_code(c: &str) -> bool {
    let b = c.as_bytes();
    match b.first() {
        Some(b'X' | b'Z') => b.len() == 23 && b[1..].iter().all(|x| x.is_ascii_uppercase() || x.is_ascii_digit()),
        Some(b'C') => {
            b.len() >= 10 && b[1..10].iter().all(u8::is_ascii_digit) && b[10..].iter().all(u8::is_ascii_alphanumeric)
        }
        Some(b'T') => b.len() >= 10 && b[1..].iter().all(u8::is_ascii_alphanumeric),
        Some(b'0'..=b'9') => {
            b.len() >= 15
                && b[..15].iter().all(u8::is_ascii_digit)
                && (b.len() == 15
                    || (b[15] == b'-'
                        && b.len() > 16
                        && b[16..].iter().all(|x| x.is_ascii_alphanumeric() || *x == b'.')))
        }
        _ => false,
    }
}

fn s(v: &Value) -> Option<&str> {
    v.as_str().map(str::trim).filter(|t| !t.is_empty())
}

/// The value of the identifier of `system` in `identifier[]`.
fn identifier<'a>(v: &'a Value, system: &str) -> Option<&'a str> {
    v.get("identifier")?.as_array()?.iter().find(|i| i["system"] == system).and_then(|i| s(&i["value"]))
}

/// The national code of a CodeableConcept: the coding of claimgate's system, else any coding whose
/// code has the national code's shape; with the display (or the concept's text).
fn national_code(cc: &Value) -> (Option<String>, String) {
    let codings = cc.get("coding").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let pick = codings
        .iter()
        .find(|c| c["system"] == CS_HILIST && s(&c["code"]).is_some())
        .or_else(|| codings.iter().find(|c| s(&c["code"]).is_some_and(is_national_code)));
    let name = pick
        .and_then(|c| s(&c["display"]))
        .or_else(|| s(&cc["text"]))
        .or_else(|| codings.iter().find_map(|c| s(&c["display"])))
        .unwrap_or_default()
        .to_owned();
    (pick.and_then(|c| s(&c["code"])).map(str::to_owned), name)
}

/// A FHIR date or dateTime as the national `yyyy-MM-dd HH:mm:ss` (the clock time as written; a
/// date alone is midnight). `None`: not a full date.
pub fn national_time(t: &str) -> Option<String> {
    let t = t.trim();
    let date = t.get(..10)?;
    let b = date.as_bytes();
    if !(b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())) {
        return None;
    }
    let time = match t.get(10..) {
        Some(rest) if rest.starts_with('T') && rest.len() >= 9 => rest.get(1..9)?,
        _ => "00:00:00",
    };
    Some(format!("{date} {time}"))
}

fn money(v: &Value) -> Option<String> {
    match &v["value"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(t) => Some(t.clone()),
        _ => None,
    }
}

/// The unit price claimgate's extension gives.
fn unit_price_ext(r: &Value) -> Option<String> {
    r.get("extension")?.as_array()?.iter().find(|e| e["url"] == EXT_UNIT_PRICE).and_then(|e| money(&e["valueMoney"]))
}

/// Days in a FHIR Duration (`d`, `wk`, `mo` taken as 30 days).
fn duration_days(d: &Value) -> Option<i64> {
    let v = d["value"].as_f64()?;
    let per = match d["code"].as_str().or(d["unit"].as_str()).unwrap_or("d") {
        "d" | "day" | "days" | "天" => 1.0,
        "wk" | "week" | "weeks" | "周" => 7.0,
        "mo" | "month" | "months" | "月" => 30.0,
        _ => return None,
    };
    let days = (v * per).round();
    (1.0..=3650.0).contains(&days).then_some(days as i64)
}

/// The last path segment of a reference (`Practitioner/123` → `123`).
fn ref_id(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// The doctor of an order: the national code on `requester.identifier`, else the id of the
/// `requester` reference, else the hook's `userId`.
fn doctor_of(r: &Value, user: Option<&str>) -> (Option<String>, String) {
    let req = &r["requester"];
    let code = req
        .get("identifier")
        .filter(|i| i["system"] == SID_DR_CODE || i.get("system").is_none())
        .and_then(|i| s(&i["value"]))
        .or_else(|| s(&req["reference"]).map(ref_id))
        .or_else(|| user.map(ref_id))
        .map(str::to_owned);
    (code, s(&req["display"]).unwrap_or_default().to_owned())
}

/// The resources of a Bundle (or an array of resources, or one resource).
pub fn resources(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) if o.get("resourceType").and_then(Value::as_str) == Some("Bundle") => o
            .get("entry")
            .and_then(Value::as_array)
            .map(|es| es.iter().filter_map(|e| e.get("resource")).collect())
            .unwrap_or_default(),
        Value::Object(_) => vec![v],
        _ => vec![],
    }
}

/// One draft order as a 3101 `fsi_order_dtos[]` entry, or why it cannot be one.
fn order_dto(r: &Value, user: Option<&str>, now: &str, discharge: bool) -> Result<(Value, Order), Skipped> {
    let rt = r["resourceType"].as_str().unwrap_or_default();
    let id = s(&r["id"]).unwrap_or_default();
    let reference = format!("{rt}/{id}");
    let (cc, qty, price, begin) = match rt {
        "MedicationRequest" => (
            &r["medicationCodeableConcept"],
            r["dispenseRequest"]["quantity"]["value"].clone(),
            unit_price_ext(r),
            s(&r["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"]).or_else(|| s(&r["authoredOn"])),
        ),
        "ServiceRequest" => (
            &r["code"],
            r["quantityQuantity"]["value"].clone(),
            unit_price_ext(r),
            s(&r["occurrenceDateTime"]).or_else(|| s(&r["occurrencePeriod"]["start"])).or_else(|| s(&r["authoredOn"])),
        ),
        "ChargeItem" => (
            &r["code"],
            r["quantity"]["value"].clone(),
            money(&r["priceOverride"]).or_else(|| unit_price_ext(r)),
            s(&r["occurrenceDateTime"]).or_else(|| s(&r["occurrencePeriod"]["start"])).or_else(|| s(&r["enteredDate"])),
        ),
        _ => {
            return Err(Skipped {
                reference,
                name: String::new(),
                why: "不支持的医嘱类型（仅支持 MedicationRequest、ServiceRequest、ChargeItem）",
            })
        }
    };
    let (code, name) = national_code(cc);
    let Some(code) = code else {
        return Err(Skipped { reference, name, why: "未找到医保目录编码（医保编码不在 coding 中）" });
    };
    let qty = match (qty, rt) {
        (Value::Number(n), _) if n.as_f64().is_some_and(|q| q > 0.0) => Value::Number(n),
        // A service or charge without a quantity is one unit (FHIR's default reading).
        (Value::Null, "ServiceRequest" | "ChargeItem") => json!(1),
        _ => return Err(Skipped { reference, name, why: "未给出数量（dispenseRequest.quantity）" }),
    };
    let rx_id = identifier(r, SID_RX_ID).or((!id.is_empty()).then_some(id));
    let Some(rx_id) = rx_id.map(str::to_owned) else {
        return Err(Skipped {
            reference, name, why: "医嘱没有 id 或 rx-id 标识，无法与后续收费明细对应"
        });
    };
    let begin = begin.and_then(national_time).unwrap_or_else(|| now.to_owned());
    let stop = r["dispenseRequest"]["expectedSupplyDuration"]
        .as_object()
        .and_then(|_| duration_days(&r["dispenseRequest"]["expectedSupplyDuration"]))
        .and_then(|days| {
            let d = chrono::NaiveDateTime::parse_from_str(&begin, "%Y-%m-%d %H:%M:%S").ok()?;
            Some((d + chrono::Days::new(days as u64)).format("%Y-%m-%d %H:%M:%S").to_string())
        });
    let (dr, dr_name) = doctor_of(r, user);
    let discharge = discharge
        || r["category"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| c["coding"].as_array().is_some_and(|cd| cd.iter().any(|x| x["code"] == "discharge")))
        });
    let mut dto = json!({
        "rx_id": rx_id, "hilist_code": code, "hilist_name": name, "cnt": qty,
        "pric": price.clone().map_or(json!(0), Value::String),
        "drord_begn_date": begin, "drord_stop_date": stop, "drord_dr_codg": dr.clone().unwrap_or_default(),
        "drord_dr_name": dr_name, "drord_bhvr": if discharge { "1" } else { "0" }, "curr_drord_flag": "1",
    });
    if price.is_none() {
        // No price in the order: the amount is unknown (0), and the doctor's answer covers the item
        // and quantity only (see `pipeline::overrides::fingerprint`).
        dto["sumamt"] = json!(0);
    }
    let dispense_quantity = rt == "MedicationRequest";
    Ok((dto, Order { reference, rx_id, name, resource: r.clone(), dispense_quantity }))
}

fn gender_code(g: Option<&str>) -> &'static str {
    match g {
        Some("male") => "1",
        Some("female") => "2",
        _ => "",
    }
}

/// `Encounter.class` (v3 ActCode) as 医疗类别: AMB → 11 普通门诊, EMER → 13 急诊, IMP/ACUTE/NONAC → 21 普通住院.
fn med_type_of(enc: &Value) -> Option<String> {
    let types = enc["type"].as_array().map(Vec::as_slice).unwrap_or_default();
    if let Some(c) =
        types.iter().flat_map(|t| t["coding"].as_array().into_iter().flatten()).find(|c| c["system"] == CS_MED_TYPE)
    {
        return s(&c["code"]).map(str::to_owned);
    }
    match enc["class"]["code"].as_str()? {
        "AMB" | "VR" => Some("11".into()),
        "EMER" => Some("13".into()),
        "IMP" | "ACUTE" | "NONAC" | "SS" => Some("21".into()),
        _ => None,
    }
}

/// Whether the prefetched encounter is an inpatient stay (医疗类别 2x).
pub fn inpatient(req: &HookRequest) -> bool {
    req.prefetch.get("encounter").and_then(med_type_of).is_some_and(|m| m.starts_with('2'))
}

/// An ICD-10 code: a coding of an ICD-10 system, else any coding shaped like one (`M10.900`).
fn icd10(cc: &Value) -> Option<(String, String)> {
    let codings = cc["coding"].as_array()?;
    let shaped = |c: &str| {
        let b = c.as_bytes();
        b.len() >= 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_alphanumeric()
    };
    let pick = codings
        .iter()
        .find(|c| c["system"].as_str().is_some_and(|sy| sy.to_ascii_lowercase().contains("icd-10")))
        .or_else(|| codings.iter().find(|c| s(&c["code"]).is_some_and(shaped)))?;
    let name = s(&pick["display"]).or_else(|| s(&cc["text"])).unwrap_or_default();
    Some((s(&pick["code"])?.to_owned(), name.to_owned()))
}

/// Whether a Condition counts: not refuted, not entered in error, not resolved or inactive.
fn condition_counts(c: &Value) -> bool {
    let code = |p: &str| c[p]["coding"][0]["code"].as_str().unwrap_or("");
    !matches!(code("verificationStatus"), "refuted" | "entered-in-error")
        && !matches!(code("clinicalStatus"), "resolved" | "inactive")
}

/// Turns a hook request into the national analysis envelope (3101 for ordering hooks, 3102 for the
/// discharge hook) with its orders as read and what could not be read.
pub fn to_analysis(req: &HookRequest, head: &EnvelopeHead<'_>) -> Mapped {
    let user = req.context.user_id.as_deref();
    // CDS Hooks 2.0: a client that could not prefetch a resource may send an OperationOutcome in
    // its place — that is a missing prefetch (its facts unchecked), never an empty resource.
    let pf = |k: &str| req.prefetch.get(k).filter(|v| !v.is_null() && v["resourceType"] != "OperationOutcome");
    let mut missing_prefetch = Vec::new();
    let patient = pf("patient");
    if patient.is_none() {
        missing_prefetch.push("patient");
    }
    let encounter = pf("encounter");
    if encounter.is_none() {
        missing_prefetch.push("encounter");
    }
    let conditions = pf("conditions");
    if conditions.is_none() {
        missing_prefetch.push("conditions");
    }
    let null = Value::Null;
    let (p, e) = (patient.unwrap_or(&null), encounter.unwrap_or(&null));
    let psn_no =
        identifier(p, SID_PSN_NO).or_else(|| s(&p["id"])).or(req.context.patient_id.as_deref()).unwrap_or_default();
    let mdtrt_id =
        identifier(e, SID_MDTRT_ID).or_else(|| s(&e["id"])).or(req.context.encounter_id.as_deref()).unwrap_or_default();
    let brdy = s(&p["birthDate"]).filter(|d| d.len() == 10).unwrap_or_default();
    let med_type = med_type_of(e);
    // Diagnoses: the encounter's ranked diagnoses first (rank 1 is the main one), then the conditions.
    let main_ref = e["diagnosis"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["rank"] == 1))
        .and_then(|d| s(&d["condition"]["reference"]))
        .map(|r| ref_id(r).to_owned());
    let mut diagnoses = Vec::new();
    for (i, c) in conditions.map(resources).unwrap_or_default().into_iter().enumerate() {
        if c["resourceType"] != "Condition" || !condition_counts(c) {
            continue;
        }
        if let Some((code, name)) = icd10(&c["code"]) {
            let main = main_ref.as_deref().map_or(i == 0, |m| s(&c["id"]) == Some(m));
            diagnoses.push(json!({"dise_codg": code, "dise_name": name, "maindise_flag": if main { "1" } else { "0" }, "inout_dise_type": "1"}));
        }
    }
    let discharge = req.hook == "encounter-discharge";
    let (mut dtos, mut orders, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let drafts = req.context.draft_orders.as_ref().map(resources).unwrap_or_default();
    for r in drafts {
        let reference =
            format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default());
        // order-select: only the selected orders are judged (the others are still being written).
        if req.hook == "order-select"
            && !req.context.selections.is_empty()
            && !req.context.selections.contains(&reference)
        {
            continue;
        }
        match order_dto(r, user, head.now, discharge) {
            Ok((dto, o)) => {
                dtos.push(dto);
                orders.push(o);
            }
            Err(sk) => skipped.push(sk),
        }
    }
    let doctor = dtos
        .iter()
        .find_map(|d| s(&d["drord_dr_codg"]).map(str::to_owned))
        .or_else(|| user.map(|u| ref_id(u).to_owned()));
    let encounter_dto = json!({
        "mdtrt_id": mdtrt_id, "medins_id": head.fixmedins_code, "med_type": med_type.clone().unwrap_or_default(),
        "med_mdtrt_type": match med_type.as_deref() { Some(m) if m.starts_with('2') => "2", Some(_) => "1", None => "" },
        "adm_date": s(&e["period"]["start"]).and_then(national_time), "dscg_date": s(&e["period"]["end"]).and_then(national_time),
        "dr_codg": doctor.clone().unwrap_or_default(),
        "fsi_diagnose_dtos": diagnoses, "fsi_order_dtos": dtos, "fsi_operation_dtos": [],
    });
    let data = json!({
        "syscode": "CDS", "task_id": req.hook_instance, "trig_scen": head.trig_scen, "rule_ids": [],
        "patient_dtos": [{"patn_id": psn_no, "gend": gender_code(s(&p["gender"])), "brdy": brdy,
            "curr_mdtrt_id": mdtrt_id, "fsi_encounter_dtos": [encounter_dto]}],
    });
    let envelope = json!({
        "infno": head.infno, "msgid": head.msgid, "mdtrtarea_admvs": "", "insuplc_admdvs": "", "recer_sys_code": "CDS",
        "infver": "V1.0", "opter_type": "1", "opter": doctor.clone().unwrap_or_default(), "inf_time": head.now,
        "fixmedins_code": head.fixmedins_code, "input": {"data": data},
    });
    Mapped { envelope: serde_json::to_vec(&envelope).unwrap_or_default(), orders, skipped, missing_prefetch, doctor }
}

/// One doctor's answer as a 3103 `warns[]` entry: `dspo_way` 1 continue (with the reason), 2 modify.
pub struct Answer<'a> {
    pub jr_id: &'a str,
    pub continue_with: Option<String>,
}

/// The 3103 envelope for the doctors' answers.
pub fn to_feedback(answers: &[Answer<'_>], msgid: &str, fixmedins_code: &str, now: &str) -> Vec<u8> {
    let warns: Vec<Value> = answers
        .iter()
        .map(|a| match &a.continue_with {
            Some(reason) => json!({"warn_rslt_id": a.jr_id, "dspo_way": "1", "dspo_way_rea": reason}),
            None => json!({"warn_rslt_id": a.jr_id, "dspo_way": "2", "dspo_way_rea": ""}),
        })
        .collect();
    let env = json!({"infno": "3103", "msgid": msgid, "recer_sys_code": "CDS", "infver": "V1.0", "inf_time": now,
        "fixmedins_code": fixmedins_code, "input": {"data": {"warn_type": "1", "warns": warns}}});
    serde_json::to_vec(&env).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_codes_are_recognised_by_shape_whatever_their_system() {
        assert!(is_national_code("XA11DAW036A001010104127"));
        assert!(is_national_code("001201000030000"));
        assert!(is_national_code("001102000000100-110200002.10"));
        assert!(is_national_code("C02010105200001"));
        assert!(!is_national_code("1049502"), "an RxNorm code");
        assert!(!is_national_code("XA11"));
        let cc = json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049502"},
            {"system": "urn:oid:1.2.156.hospital", "code": "XA11DAW036A001010104127", "display": "维生素B1片"}]});
        assert_eq!(national_code(&cc), (Some("XA11DAW036A001010104127".into()), "维生素B1片".into()));
    }

    #[test]
    fn draft_orders_become_3101_orders_with_quantity_days_supply_price_doctor_and_discharge_flag() {
        // Arrange: a discharge medication for 2 weeks and a charge item with its own price.
        let req: HookRequest = serde_json::from_value(json!({
            "hook": "encounter-discharge", "hookInstance": "h-1",
            "context": {"userId": "Practitioner/u-9", "patientId": "p", "encounterId": "e",
                "draftOrders": {"resourceType": "Bundle", "entry": [
                    {"resource": {"resourceType": "MedicationRequest", "id": "mr-1",
                        "medicationCodeableConcept": {"coding": [{"system": CS_HILIST, "code": "XA11DAW036A001010104127", "display": "维生素B1片"}]},
                        "authoredOn": "2025-06-20T08:30:00+08:00",
                        "requester": {"identifier": {"system": SID_DR_CODE, "value": "D7"}, "display": "李医生"},
                        "dispenseRequest": {"quantity": {"value": 42}, "expectedSupplyDuration": {"value": 2, "code": "wk"}}}},
                    {"resource": {"resourceType": "ChargeItem", "id": "ci-1", "code": {"coding": [{"code": "C02010105200001", "display": "一次性输液器"}]},
                        "quantity": {"value": 2}, "priceOverride": {"value": 3.5, "currency": "CNY"}, "occurrenceDateTime": "2025-06-20"}}]}},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1951-08-27"},
                "encounter": {"resourceType": "Encounter", "id": "e", "class": {"code": "IMP"}}}
        }))
        .unwrap();
        let head = EnvelopeHead {
            infno: "3102",
            msgid: "M1",
            fixmedins_code: "H1",
            now: "2025-06-20 09:00:00",
            trig_scen: "9",
        };
        // Act
        let m = to_analysis(&req, &head);
        let env: Value = serde_json::from_slice(&m.envelope).unwrap();
        // Assert
        let p = &env["input"]["data"]["patient_dtos"][0];
        assert_eq!(
            (p["patn_id"].as_str(), p["gend"].as_str(), p["brdy"].as_str()),
            (Some("p"), Some("2"), Some("1951-08-27"))
        );
        let e = &p["fsi_encounter_dtos"][0];
        assert_eq!((e["med_type"].as_str(), e["med_mdtrt_type"].as_str()), (Some("21"), Some("2")));
        let o = &e["fsi_order_dtos"];
        assert_eq!(o[0]["drord_begn_date"], "2025-06-20 08:30:00");
        assert_eq!(o[0]["drord_stop_date"], "2025-07-04 08:30:00", "14 days");
        assert_eq!((o[0]["drord_dr_codg"].as_str(), o[0]["drord_bhvr"].as_str()), (Some("D7"), Some("1")));
        assert_eq!((o[0]["cnt"].as_f64(), o[0]["sumamt"].as_i64()), (Some(42.0), Some(0)), "no price: amount 0");
        assert_eq!((o[1]["cnt"].as_f64(), o[1]["pric"].as_str()), (Some(2.0), Some("3.5")));
        assert_eq!(o[1]["drord_dr_codg"], "u-9", "no requester: the hook's user");
        assert_eq!(m.missing_prefetch, vec!["conditions"]);
        assert!(m.skipped.is_empty());
    }

    #[test]
    fn an_operation_outcome_in_place_of_a_prefetch_is_a_missing_prefetch() {
        // CDS Hooks 2.0: a client that failed to prefetch may send an OperationOutcome instead.
        let failed = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]});
        let req: HookRequest = serde_json::from_value(json!({
            "hook": "order-sign", "hookInstance": "h-2", "context": {"patientId": "p", "encounterId": "e"},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "gender": "male"},
                "encounter": failed.clone(), "conditions": failed}
        }))
        .unwrap();
        let head = EnvelopeHead {
            infno: "3101",
            msgid: "M2",
            fixmedins_code: "H1",
            now: "2025-06-20 09:00:00",
            trig_scen: "5",
        };
        let m = to_analysis(&req, &head);
        assert_eq!(m.missing_prefetch, vec!["encounter", "conditions"], "unchecked, never read as empty");
    }

    #[test]
    fn fhir_times_become_national_times_and_partial_dates_do_not() {
        assert_eq!(national_time("2025-06-10T09:30:00+08:00").as_deref(), Some("2025-06-10 09:30:00"));
        assert_eq!(national_time("2025-06-10").as_deref(), Some("2025-06-10 00:00:00"));
        assert_eq!(national_time("2025-06"), None);
        assert_eq!(national_time("2025/06/10"), None);
    }
}
