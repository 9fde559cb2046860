//! A seeded generator of realistic claims: national codes by category, quantities, departments,
//! doctors, days supply, diagnoses. Used by the benches, the property tests and the load script.
//! Deterministic for a seed (SplitMix64), so figures are reproducible.

use serde_json::{json, Value};

/// SplitMix64: small, fast, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// `(code, unit price in fen, is drug)`: common items of a county hospital.
pub const ITEMS: &[(&str, i64, bool)] = &[
    ("001102000010000", 2_000, false),  // 普通门诊诊查费
    ("001103000010000", 1_500, false),  // 急诊监护费
    ("001109000010000", 3_000, false),  // 普通病房床位费
    ("001201000030000", 1_500, false),  // Ⅰ级护理
    ("001201000040000", 1_000, false),  // Ⅱ级护理
    ("003107010220000", 300, false),    // 心电监测
    ("003107010280000", 200, false),    // 血氧饱和度监测
    ("002503010010000", 500, false),    // 钾测定
    ("002503020010000", 600, false),    // 葡萄糖测定
    ("002503020020000", 2_500, false),  // 葡萄糖耐量试验
    ("002202020010000", 12_000, false), // 经阴道B超
    ("002201000010000", 8_000, false),  // 普通B超
    ("003101000010000", 1_000, false),  // 心电图
    ("XA11DAW036A001010104127", 10, true),
    ("XA11GAW043A001010201815", 2, true),
    ("XC08CAA079A001010104321", 150, true),
    ("XJ01MAZ001A001010100001", 300, true),
    ("XG01AFM015F001010100221", 120, true),
    ("XB05BAA001B002010100011", 4_500, true),
    ("ZA01AAA0001010100001A00", 2_500, true),
    ("C0201010520000000000001", 3_500, false),
];

/// The generated hospital's names for [`ITEMS`] (its 医保目录对照): a fee upload carries codes only.
pub const ITEM_NAMES: &[(&str, &str)] = &[
    ("001102000010000", "普通门诊诊查费"),
    ("001103000010000", "急诊监护费"),
    ("001109000010000", "普通病房床位费"),
    ("001201000030000", "Ⅰ级护理"),
    ("001201000040000", "Ⅱ级护理"),
    ("003107010220000", "心电监测"),
    ("003107010280000", "血氧饱和度监测"),
    ("002503010010000", "钾测定"),
    ("002503020010000", "葡萄糖测定"),
    ("002503020020000", "葡萄糖耐量试验"),
    ("002202020010000", "经阴道B超检查"),
    ("002201000010000", "普通B超检查"),
    ("003101000010000", "常规心电图检查"),
    ("XA11DAW036A001010104127", "维生素B1片"),
    ("XA11GAW043A001010201815", "维生素C片"),
    ("XC08CAA079A001010104321", "硝苯地平控释片"),
    ("XJ01MAZ001A001010100001", "左氧氟沙星片"),
    ("XG01AFM015F001010100221", "甲硝唑阴道泡腾片"),
    ("XB05BAA001B002010100011", "复方氨基酸注射液"),
    ("ZA01AAA0001010100001A00", "板蓝根颗粒"),
    ("C0201010520000000000001", "一次性使用输液器"),
];

/// The HIS code the generated hospital gives a national code (`medins_list_codg`).
fn his_code(code: &str) -> String {
    format!("H{}", &code[code.len() - 6..])
}

/// The generated hospital's 医保目录对照 export as `item_catalogue` reads it (CSV: HIS code,
/// national code, name), so that what its traffic teaches names items as the hospital does.
pub fn catalogue_csv() -> String {
    let mut s = String::from("medins_list_codg,med_list_codg,medins_list_name\n");
    for (code, name) in ITEM_NAMES {
        s.push_str(&format!("{},{code},{name}\n", his_code(code)));
    }
    s
}

pub const DEPTS: &[(&str, &str)] =
    &[("100301", "心血管内科"), ("100201", "呼吸内科"), ("100501", "妇科"), ("100309", "骨科"), ("100701", "儿科")];
/// The generated hospital's doctors: `D4107000nnnnn`, each with a name of its own (the same code
/// always the same name), so what a person reads names doctors as the HIS does.
pub fn doctor(n: u64) -> (String, String) {
    const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    const GIVEN: [&str; 10] = ["建国", "秀英", "志强", "丽华", "海涛", "敏", "磊", "静", "军", "芳"];
    let name = format!("{}{}", SURNAMES[(n % 10) as usize], GIVEN[((n / 10) % 10) as usize]);
    (format!("D4107000{n:05}"), name)
}

pub const DIAGNOSES: &[(&str, &str)] = &[
    ("I10.x00", "原发性高血压"),
    ("J06.900", "急性上呼吸道感染"),
    ("E11.900", "2型糖尿病"),
    ("N76.000", "阴道炎"),
    ("S72.000", "股骨颈骨折"),
    ("K29.700", "胃炎"),
];

fn header(infno: &str, seq: u64, input: Value) -> Value {
    envelope(infno, &format!("H41070100001202506100900{:06}", seq % 1_000_000), "2025-06-10 09:00:00", input)
}

/// A request envelope of the generated county hospital.
fn envelope(infno: &str, msgid: &str, at: &str, input: Value) -> Value {
    json!({"infno": infno, "msgid": msgid, "mdtrtarea_admvs": "410700",
        "insuplc_admdvs": "410700", "recer_sys_code": "HIS", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "",
        "infver": "V1.0", "opter_type": "1", "opter": "0153", "opter_name": "收费员", "inf_time": at,
        "fixmedins_code": "H41070100001", "fixmedins_name": "新乡市某县人民医院", "sign_no": "410700202506100800001234567890", "input": input})
}

fn money(fen: i64) -> String {
    crate::wire::num::format_fixed(fen, 2, 2)
}

/// A fee upload (2204 outpatient or 2301 inpatient) with `n` lines for one visit.
pub fn fee_upload(seed: u64, n: usize, inpatient: bool) -> Value {
    let mut r = Rng::new(seed);
    let visit = format!("410700G{:010}", r.below(10_000_000_000));
    let psn = format!("410000110000{:014}", r.below(100_000_000_000_000));
    let days = if inpatient { 1 + n as u64 / 40 } else { 1 };
    let lines: Vec<Value> = (0..n)
        .map(|i| {
            let (code, price, drug) = *r.pick(ITEMS);
            let cnt = if drug { 1 + r.below(30) as i64 } else { 1 + r.below(2) as i64 };
            let (dept, dname) = *r.pick(DEPTS);
            let day = 10 + r.below(days) as u32;
            let at = format!("2025-06-{:02} {:02}:{:02}:00", day.min(30), 8 + r.below(12), r.below(60));
            let dr = doctor(r.below(50));
            let mut l = json!({"feedetl_sn": format!("{}{:08}", if inpatient {"ZY"} else {"MZ"}, i + 1), "mdtrt_id": visit, "psn_no": psn,
                "fee_ocur_time": at,
                "med_list_codg": code, "medins_list_codg": his_code(code),
                "det_item_fee_sumamt": money(price * cnt), "cnt": cnt, "pric": money(price),
                "bilg_dept_codg": dept, "bilg_dept_name": dname, "bilg_dr_codg": dr.0, "bilg_dr_name": dr.1,
                "acord_dept_codg": dept, "acord_dept_name": dname, "orders_dr_code": "", "orders_dr_name": "",
                "hosp_appr_flag": "0", "tcmdrug_used_way": "", "etip_flag": "0", "etip_hosp_code": "", "dscg_tkdrug_flag": "0", "matn_fee_flag": "0"});
            if inpatient {
                l["init_feedetl_sn"] = json!("");
                l["drord_no"] = json!(format!("DO{:06}", i));
                l["med_type"] = json!("21");
                l["memo"] = json!("");
            } else {
                l["chrg_bchno"] = json!("B0001");
                l["rxno"] = json!("");
                l["rx_circ_flag"] = json!("0");
                if drug {
                    l["prd_days"] = json!(1 + r.below(12));
                    l["sin_dos_dscr"] = json!("1片");
                    l["used_frqu_dscr"] = json!("tid");
                }
            }
            l
        })
        .collect();
    header(if inpatient { "2301" } else { "2204" }, seed, json!({"feedetail": lines}))
}

/// A self-contained 3101 with `n` orders (gender, birth date, med_type, diagnoses all present).
pub fn analysis_3101(seed: u64, n: usize) -> Value {
    let mut r = Rng::new(seed);
    let visit = format!("410700G{:010}", r.below(10_000_000_000));
    let psn = format!("410000110000{:014}", r.below(100_000_000_000_000));
    let (dc, dn) = *r.pick(DIAGNOSES);
    let orders: Vec<Value> = (0..n)
        .map(|i| {
            let (code, price, drug) = *r.pick(ITEMS);
            let cnt = if drug { 1 + r.below(30) as i64 } else { 1 };
            let begin = format!("2025-06-10 {:02}:00:00", 8 + r.below(10));
            let stop = if drug { json!(format!("2025-06-{:02} 09:00:00", 11 + r.below(12))) } else { Value::Null };
            json!({"rx_id": format!("RX{:06}", i + 1), "rxno": "R1", "grpno": "1", "long_drord_flag": "0", "hilist_type": if drug {"101"} else {"201"},
                "chrg_type": if drug {"09"} else {"05"}, "drord_bhvr": "0", "hilist_code": code, "hilist_name": "项目", "hilist_lv": "1",
                "hilist_pric": money(price), "hosplist_code": "H", "hosplist_name": "项目", "cnt": cnt, "pric": money(price), "sumamt": money(price * cnt),
                "spec": "", "drord_begn_date": begin, "drord_stop_date": stop, "drord_dept_codg": "100301", "drord_dept_name": "心血管内科",
                "drord_dr_codg": "D1", "drord_dr_name": "医生", "drord_dr_profttl": "232", "curr_drord_flag": "1"})
        })
        .collect();
    header(
        "3101",
        seed,
        json!({"data": {"syscode": "HIS", "task_id": format!("T{seed}"), "trig_scen": "2", "rule_ids": [], "patient_dtos": [{
        "patn_id": psn, "patn_name": "患者", "gend": if r.below(2) == 0 {"1"} else {"2"}, "brdy": format!("{}-0{}-15", 1940 + r.below(80), 1 + r.below(9)),
        "poolarea": "410700", "curr_mdtrt_id": visit, "fsi_encounter_dtos": [{"mdtrt_id": visit, "medins_id": "H41070100001", "medins_lv": "2",
        "med_mdtrt_type": "1", "med_type": *r.pick(&["11", "13", "14"]), "insutype": "390", "adm_date": "2025-06-10 08:00:00",
        "fsi_diagnose_dtos": [{"maindise_flag": "1", "dise_codg": dc, "dise_name": dn}], "fsi_order_dtos": orders, "fsi_operation_dtos": []}]}]}}),
    )
}

/// A synthetic pack of `n_rules` rules over about `n_points` knowledge points, of every table-driven
/// kind, in the shape of the national batches (for the performance budget of design.md: ~200 rules,
/// ~20,000 knowledge points). The generated claims' items appear in it, so rules do fire.
pub fn synthetic_pack(n_rules: usize, n_points: usize) -> crate::rules::PackSource {
    use crate::rules::source::{Manifest, RuleFile};
    let mut r = Rng::new(42);
    let per = (n_points / n_rules.max(1)).max(1);
    let mut yaml = String::from("rules:\n");
    let mut tables = std::collections::BTreeMap::new();
    let kinds = [
        ("gender", "女"),
        ("age", "-18y"),
        ("daily_units", "1"),
        ("price_cap", "50.00"),
        ("institution_level", "3"),
        ("pair", ""),
    ];
    for i in 0..n_rules {
        let (kind, param) = kinds[i % kinds.len()];
        let table = format!("tables/t{i:03}.csv");
        let mut csv = String::new();
        if kind == "pair" {
            csv.push_str("main,main_name,sub,sub_name,window,basis\n");
            for k in 0..per / 2 {
                let (a, b) = if k == 0 {
                    ("001201000030000".to_owned(), "001201000040000".to_owned())
                } else {
                    (format!("00{:09}0000", r.below(1_000_000_000)), format!("00{:09}0000", r.below(1_000_000_000)))
                };
                csv.push_str(&format!("{a},主项目,{b},子项目,day,合成\n"));
            }
        } else {
            csv.push_str("code,name,param,basis\n");
            for k in 0..per {
                let code = if k == 0 {
                    ITEMS[i % ITEMS.len()].0.to_owned()
                } else if k % 2 == 0 {
                    format!(
                        "X{}{:02}{}{}{:03}%",
                        (b'A' + r.below(20) as u8) as char,
                        r.below(100),
                        (b'A' + r.below(26) as u8) as char,
                        (b'A' + r.below(26) as u8) as char,
                        r.below(1000)
                    )
                } else {
                    format!("00{:09}0000", r.below(1_000_000_000))
                };
                csv.push_str(&format!("{code},合成项目{k},{param},合成\n"));
            }
        }
        tables.insert(table.clone(), csv);
        let msg = match kind {
            "gender" => "【{item}】限{allowed}",
            "age" => "【{item}】限{range}",
            "daily_units" => "【{item}】{date}计{count}次，限{max}次",
            "price_cap" => "【{item}】单价{price}超限价{max}",
            "institution_level" => "【{item}】限{min_tier}",
            _ => "【{main}】与【{sub}】{window}重复收费",
        };
        yaml.push_str(&format!(
            "  - id: SYN-{i:03}\n    name: 合成规则{i}\n    kind: {kind}\n    action: block\n    severity: critical\n    message: \"{msg}\"\n    basis: 合成\n    effective_from: 2025-01-01\n    select: {{ table: {table} }}\n"
        ));
    }
    let rf: RuleFile = serde_norway::from_str(&yaml).expect("synthetic pack is valid YAML");
    crate::rules::PackSource {
        dir: "/synthetic".into(),
        manifest: Manifest {
            name: "synthetic".into(),
            version: format!("{n_rules}r-{n_points}kp"),
            description: String::new(),
            region: String::new(),
        },
        rule_files: vec![("rules/synthetic.yaml".into(), yaml, rf)],
        table_texts: tables,
        test_files: vec![],
        digest: String::new(),
    }
}

/// The ward's attending doctor (the generated stays are all on 心血管内科's ward).
const WARD_DOCTOR: (&str, &str) = ("D410700000001", "李建国");

/// An open stay of the generated month: (person, mdtrt_id, admitted day, length, diagnosis).
type Stay = (usize, String, u32, u32, (&'static str, &'static str));

/// Sends one request to the simulated gateway, records the exchange, returns the answer.
type Send<'a> = dyn Fn(&str, &str, Value, &mut dyn FnMut(Value)) -> Value + 'a;

/// One synthetic patient of the generated month.
struct Person {
    certno: String,
    /// Filled by the 1101 answer.
    psn_no: String,
    chronic: bool,
}

/// One day of the open stays: each a day's fees (2301), and when it is over the discharge and
/// settlement (2402, 2303, 2304), remembered for readmissions. Returns the stays still open.
fn stay_day(
    day: u32,
    people: &[Person],
    stays: Vec<Stay>,
    discharged: &mut Vec<(usize, u32, (&'static str, &'static str))>,
    t: &dyn Fn(u64, u64) -> String,
    send: &Send<'_>,
    out: &mut dyn FnMut(Value),
) -> Vec<Stay> {
    // Stays: a day's fees, and the discharge and settlement when the stay is over.
    let mut still = Vec::new();
    for (i, id, adm, len, dx) in stays {
        let psn = people[i].psn_no.clone();
        let lines: Vec<Value> = (0..4)
            .map(|j| {
                let (code, price, _) = ITEMS[[2, 4, 5, 8][j]];
                json!({"feedetl_sn": format!("ZY{id}{day:02}{j}"), "init_feedetl_sn": "", "mdtrt_id": id, "psn_no": psn, "med_type": "21",
                    "fee_ocur_time": t(6, 10), "med_list_codg": code, "medins_list_codg": his_code(code),
                    "det_item_fee_sumamt": money(price), "cnt": 1, "pric": money(price), "bilg_dept_codg": "100301", "bilg_dept_name": "心血管内科",
                    "bilg_dr_codg": WARD_DOCTOR.0, "bilg_dr_name": WARD_DOCTOR.1, "hosp_appr_flag": "0"})
            })
            .collect();
        send("2301", &t(6, 10), json!({"feedetail": lines}), out);
        if day >= adm + len {
            send(
                "2402",
                &t(10, 0),
                json!({"dscginfo": {"mdtrt_id": id, "psn_no": psn, "endtime": t(10, 0), "dise_codg": dx.0, "dise_name": dx.1, "dscg_way": "1"}, "diseinfo": []}),
                out,
            );
            let setl = json!({"data": {"psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": people[i].certno, "psn_setlway": "01", "mdtrt_id": id, "insutype": "", "mid_setl_flag": "0"}});
            send("2303", &t(10, 5), setl.clone(), out);
            send("2304", &t(10, 10), setl, out);
            discharged.push((i, day, dx));
        } else {
            still.push((i, id, adm, len, dx));
        }
    }
    still
}

/// One outpatient visit's fee lines (the visit, the patient and the medical type; `at`: the fee
/// time): a chronic patient's box of amlodipine near the cap, else a few drugs and services; boxed
/// drugs carry trace codes, one in ~400 a code already sold.
fn outpatient_lines(
    r: &mut Rng,
    sold_codes: &mut Vec<String>,
    chronic: bool,
    seq: u64,
    (visit, psn, med_type): (&str, &str, &str),
    at: &str,
) -> Vec<Value> {
    let (dept, dname) = *r.pick(DEPTS);
    let mut lines = Vec::new();
    let n = if chronic { 1 } else { 2 + r.below(5) as usize };
    for j in 0..n {
        let (code, price, drug, cnt) = if chronic {
            // Amlodipine by the box, the claim near the cap: 90–110 元, fund share 45–55 元.
            ("XC08CAA079A001010104321", 1_000 + r.below(110) as i64 * 10, true, 9)
        } else {
            let (c, p, d) = *r.pick(ITEMS);
            (c, p, d, if d { 1 + r.below(20) as i64 } else { 1 })
        };
        let dr = doctor(r.below(40));
        let mut l = json!({"feedetl_sn": format!("MZ{seq}{j:02}"), "mdtrt_id": visit, "psn_no": psn, "chrg_bchno": format!("B{seq}"), "med_type": med_type,
            "fee_ocur_time": at, "med_list_codg": code, "medins_list_codg": his_code(code),
            "det_item_fee_sumamt": money(price * cnt), "cnt": cnt, "pric": money(price),
            "bilg_dept_codg": dept, "bilg_dept_name": dname, "bilg_dr_codg": dr.0, "bilg_dr_name": dr.1, "hosp_appr_flag": "0"});
        if drug {
            l["prd_days"] = json!(if chronic { 1 } else { 1 + r.below(10) });
            // Trace codes on boxed drugs; one box in ~400 is a code already sold (回流药).
            let code = if !sold_codes.is_empty() && r.below(400) == 0 {
                sold_codes[r.below(sold_codes.len() as u64) as usize].clone()
            } else {
                format!("8{:019}", r.next_u64() % 10_000_000_000_000_000_000)
            };
            sold_codes.push(code.clone());
            l["drug_trac_codg"] = json!(code);
        }
        lines.push(l);
    }
    lines
}

/// The patients: birth dates, residents (70 %) and employees, and the chronic ones (~8 %).
fn people(r: &mut Rng, patients: usize) -> Vec<Person> {
    (0..patients)
        .map(|i| {
            let year = 1940 + r.below(70);
            let (m, d) = (1 + r.below(12), 1 + r.below(28));
            // Digit 16 (index 15) odd → 居民 390 in the simulated gateway; 70 % are residents.
            let d15 = if r.below(10) < 7 { 1 + 2 * r.below(5) } else { 2 * r.below(5) };
            let d16 = r.below(10);
            Person {
                certno: format!("410702{year}{m:02}{d:02}{:01}{d15}{d16}X", i % 10),
                psn_no: String::new(),
                chronic: r.below(100) < 8,
            }
        })
        .collect()
}

/// A month of a county hospital's traffic as recorded exchanges `{"request", "response"}` in time
/// order (answers from the in-process simulated gateway, so fund shares, setl_ids and mdtrt_ids are
/// consistent). The mix: ordinary outpatient visits (1101, 2201, 2203, 2204, 2206, 2207); chronic
/// patients (~8 %) fetching the same drug almost daily, each day's claim near the 50 元 cap — the
/// pattern the 新乡 cap falls on; inpatient stays (2401, daily 2301, 2402, 2303, 2304), some readmitted
/// within 15 days for the same disease; an occasional 2205 revocation, 2208 cancellation, and a box
/// whose trace code is sold twice.
pub fn month(seed: u64, patients: usize, days: u32, out: &mut dyn FnMut(Value)) {
    let sim = crate::sim::Sim::default();
    let mut r = Rng::new(seed);
    let start = chrono::NaiveDate::from_ymd_opt(2025, 11, 1).unwrap_or_default();
    let mut people = people(&mut r, patients);
    let counter = std::cell::Cell::new(0u64);
    let send = |infno: &str, at: &str, input: Value, out: &mut dyn FnMut(Value)| -> Value {
        counter.set(counter.get() + 1);
        let seq = counter.get();
        let stamp: String = at.chars().filter(char::is_ascii_digit).collect();
        let req = envelope(infno, &format!("H41070100001{stamp}{seq:06}"), at, input);
        let resp = sim.answer_envelope(&req);
        out(json!({"request": req, "response": resp.clone()}));
        resp
    };
    let mut sold_codes: Vec<String> = Vec::new();
    // Open stays.
    let mut stays: Vec<Stay> = Vec::new();
    // Recent discharges for readmission: (person, day, diagnosis).
    let mut discharged: Vec<(usize, u32, (&str, &str))> = Vec::new();
    for day in 0..days {
        let date = start + chrono::Days::new(u64::from(day));
        let t = |h: u64, m: u64| format!("{date} {h:02}:{m:02}:00");
        // Who comes today: the chronic patients most days, and a share of the others.
        let today: Vec<usize> =
            (0..people.len()).filter(|&i| if people[i].chronic { r.below(10) < 8 } else { r.below(100) < 3 }).collect();
        for (k, &i) in today.iter().enumerate() {
            let (h, m) = (8 + (k as u64 * 9 / today.len().max(1) as u64), r.below(40));
            // This visit's number, for its HIS-side ids (batch, 门诊号).
            let seq = counter.get();
            let p = &mut people[i];
            let q = send(
                "1101",
                &t(h, m),
                json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno, "certno": p.certno, "psn_cert_type": "01"}}),
                out,
            );
            p.psn_no = q["output"]["baseinfo"]["psn_no"].as_str().unwrap_or_default().to_owned();
            let insutype = q["output"]["insuinfo"][0]["insutype"].as_str().unwrap_or("390").to_owned();
            let psn = p.psn_no.clone();
            let chronic = p.chronic;
            // A few admissions (more often for the elderly chronic); the rest are outpatient.
            // Recently discharged patients come back to the ward more often (分解住院 shows in replays).
            let recent = discharged.iter().any(|d| d.0 == i);
            if !chronic && r.below(100) < if recent { 40 } else { 6 } && !stays.iter().any(|s| s.0 == i) {
                let dx =
                    if let Some(&(_, _, d)) = discharged.iter().find(|d| d.0 == i) { d } else { *r.pick(DIAGNOSES) };
                let a = send(
                    "2401",
                    &t(h, m + 1),
                    json!({"mdtrtinfo": {"psn_no": psn, "insutype": insutype, "begntime": t(h, m), "mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno, "med_type": "21", "ipt_no": format!("ZY{seq}"), "atddr_no": WARD_DOCTOR.0, "chfpdr_name": WARD_DOCTOR.1, "adm_dept_codg": "100301", "adm_dept_name": "心血管内科", "dscg_maindiag_code": dx.0, "dscg_maindiag_name": dx.1, "dise_codg": dx.0, "dise_name": dx.1},
                    "diseinfo": [{"psn_no": psn, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1", "diag_code": dx.0, "diag_name": dx.1, "vali_flag": "1"}]}),
                    out,
                );
                if let Some(id) = a["output"]["result"]["mdtrt_id"].as_str() {
                    stays.push((i, id.to_owned(), day, 2 + r.below(9) as u32, dx));
                }
                continue;
            }
            let reg = send(
                "2201",
                &t(h, m + 1),
                json!({"data": {"psn_no": psn, "insutype": insutype, "begntime": t(h, m), "mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno, "ipt_otp_no": format!("MZ{seq}"), "atddr_no": WARD_DOCTOR.0, "dr_name": WARD_DOCTOR.1, "dept_code": "100301", "dept_name": "心血管内科", "caty": "A03"}}),
                out,
            );
            let Some(visit) = reg["output"]["data"]["mdtrt_id"].as_str().map(str::to_owned) else { continue };
            let dx = if chronic { ("I10.x00", "原发性高血压") } else { *r.pick(DIAGNOSES) };
            let med_type = if chronic { "14" } else { "11" };
            send(
                "2203",
                &t(h, m + 2),
                json!({"mdtrtinfo": {"mdtrt_id": visit, "psn_no": psn, "med_type": med_type, "begntime": t(h, m), "dise_codg": dx.0, "dise_name": dx.1},
                "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": dx.0, "diag_name": dx.1, "vali_flag": "1"}]}),
                out,
            );
            let lines = outpatient_lines(&mut r, &mut sold_codes, chronic, seq, (&visit, &psn, med_type), &t(h, m + 3));
            let u = send("2204", &t(h, m + 3), json!({"feedetail": lines}), out);
            if u["infcode"] != 0 {
                continue;
            }
            if r.below(60) == 0 {
                // The cashier revokes and re-uploads the batch.
                send(
                    "2205",
                    &t(h, m + 4),
                    json!({"data": {"mdtrt_id": visit, "chrg_bchno": format!("B{seq}"), "psn_no": psn}}),
                    out,
                );
                send("2204", &t(h, m + 5), json!({"feedetail": lines}), out);
            }
            let setl = json!({"data": {"psn_no": psn, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno, "med_type": med_type, "psn_setlway": "01", "mdtrt_id": visit, "chrg_bchno": format!("B{seq}"), "insutype": insutype, "acct_used_flag": "0"}});
            send("2206", &t(h, m + 6), setl.clone(), out);
            let s = send("2207", &t(h, m + 7), setl, out);
            if r.below(150) == 0 {
                if let Some(sid) = s["output"]["setlinfo"]["setl_id"].as_str() {
                    send(
                        "2208",
                        &t(h, m + 20),
                        json!({"data": {"setl_id": sid, "mdtrt_id": visit, "psn_no": psn}}),
                        out,
                    );
                }
            }
        }
        stays = stay_day(day, &people, stays, &mut discharged, &t, &send, out);
        discharged.retain(|d| day - d.1 < 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_item_has_a_name_in_the_hospitals_catalogue() {
        let cat = crate::claim::catalogue::Catalogue::parse(&catalogue_csv()).expect("the catalogue parses");
        for (code, _, _) in ITEMS {
            assert!(cat.name(&his_code(code), code).is_some(), "{code} has no name");
        }
        assert_eq!(cat.name("H104321", "").as_deref(), Some("硝苯地平控释片"), "found by the HIS code");
    }
}
