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

pub const DEPTS: &[(&str, &str)] =
    &[("100301", "心血管内科"), ("100201", "呼吸内科"), ("100501", "妇科"), ("100309", "骨科"), ("100701", "儿科")];
pub const DIAGNOSES: &[(&str, &str)] = &[
    ("I10.x00", "原发性高血压"),
    ("J06.900", "急性上呼吸道感染"),
    ("E11.900", "2型糖尿病"),
    ("N76.000", "阴道炎"),
    ("S72.000", "股骨颈骨折"),
    ("K29.700", "胃炎"),
];

fn header(infno: &str, seq: u64, input: Value) -> Value {
    json!({"infno": infno, "msgid": format!("H41070100001202506100900{:06}", seq % 1_000_000), "mdtrtarea_admvs": "410700",
        "insuplc_admdvs": "410700", "recer_sys_code": "HIS", "dev_no": "", "dev_safe_info": "", "cainfo": "", "signtype": "",
        "infver": "V1.0", "opter_type": "1", "opter": "0153", "opter_name": "收费员", "inf_time": "2025-06-10 09:00:00",
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
            let mut l = json!({"feedetl_sn": format!("{}{:08}", if inpatient {"ZY"} else {"MZ"}, i + 1), "mdtrt_id": visit, "psn_no": psn,
                "fee_ocur_time": format!("2025-06-{:02} {:02}:{:02}:00", day.min(30), 8 + r.below(12), r.below(60)),
                "med_list_codg": code, "medins_list_codg": format!("H{}", &code[code.len() - 6..]),
                "det_item_fee_sumamt": money(price * cnt), "cnt": cnt, "pric": money(price),
                "bilg_dept_codg": dept, "bilg_dept_name": dname, "bilg_dr_codg": format!("D4107000{:05}", r.below(50)), "bilg_dr_name": "医生",
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
