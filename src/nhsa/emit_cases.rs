//! Generated test cases: for sampled points of every rule, a violating claim (the rule must hit the
//! line) and, where the class has one, its compliant twin (the rule must not hit it). Cases name
//! only their own rule (`hits_include` / `hits_exclude`), so they hold in any composition of packs.

use super::classes::Variant;
use super::indication::Matcher;
use super::{Era, Placed};
use chrono::NaiveDate;
use serde_json::{json, Value};

/// Diagnoses for a claim whose indication is not met: the first one no term of the point names.
const UNRELATED: &[(&str, &str)] =
    &[("S82.200", "胫骨骨干骨折"), ("K35.800", "急性阑尾炎"), ("J06.900", "急性上呼吸道感染")];

/// An herbal piece on neither 中药饮片 list, for the compound prescription that passes.
const OTHER_HERB: (&str, &str) = ("T000700123", "甘草片");

fn day(era: Era) -> NaiveDate {
    let s = match era {
        Era::Current => "2025-09-15",
        Era::Superseded => "2025-12-15",
        Era::Revised => "2026-02-15",
    };
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

fn price(code: &str) -> f64 {
    if code.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        50.0
    } else {
        10.0
    }
}

fn order<'a>(id: &'a str, code: &'a str, name: &'a str) -> Order<'a> {
    Order { id, code, name, cnt: 1.0, price: price(code), day: 0, days: None }
}

type Case = (String, String, String);

struct Out<'r> {
    rule_id: &'r str,
    era: Era,
    cases: Vec<Case>,
}

impl Out<'_> {
    fn hit(&mut self, what: &str, f: &Facts, orders: &[Order<'_>], line: &str) {
        let env = envelope(f, day(self.era), orders);
        let expect = json!({"hits_include": [{"rule_id": self.rule_id, "lines": [line]}]});
        self.cases.push((format!("{}：{what}", self.rule_id), env.to_string(), expect.to_string()));
    }
    fn pass(&mut self, what: &str, f: &Facts, orders: &[Order<'_>]) {
        let env = envelope(f, day(self.era), orders);
        let expect = json!({"hits_exclude": [self.rule_id]});
        self.cases.push((format!("{}：{what}", self.rule_id), env.to_string(), expect.to_string()));
    }
}

/// A birth date that makes the patient `years` old on `d`.
fn years_before(d: NaiveDate, years: i32) -> String {
    use chrono::Datelike;
    NaiveDate::from_ymd_opt(d.year() - years, 1, 1).unwrap_or(d).to_string()
}

pub(crate) fn cases(v: &Variant, rule_id: &str, era: Era, points: &[&Placed], m: &Matcher) -> Vec<Case> {
    let mut out = Out { rule_id, era, cases: Vec::new() };
    let mut sample: Vec<&Placed> = points.iter().take(1).copied().collect();
    if points.len() > 2 {
        sample.push(points[points.len() / 2]);
    }
    for p in sample {
        one(&mut out, v, p, points, m);
    }
    out.cases
}

/// The cases of one point of a rule (`all`: the rule's points, for classes that pair points).
#[cfg(test)]
pub(crate) fn point_cases(v: &Variant, rule_id: &str, era: Era, p: &Placed, all: &[&Placed], m: &Matcher) -> Vec<Case> {
    let mut out = Out { rule_id, era, cases: Vec::new() };
    one(&mut out, v, p, all, m);
    out.cases
}

fn one(out: &mut Out<'_>, v: &Variant, p: &Placed, all: &[&Placed], m: &Matcher) {
    let code = p.point.codes[0].trim();
    let name = super::classes::one_line(&p.point.item_name);
    let name = name.as_str();
    let t = Facts::typical();
    let d = day(out.era);
    let r1 = [order("R1", code, name)];
    match (v.kind, v.class) {
        ("gender", _) => {
            let (bad, good) = if p.param == "男" { ("2", "1") } else { ("1", "2") };
            out.hit(&format!("{name}限{}，患者性别不符", p.param), &Facts { gend: bad, ..t.clone() }, &r1, "R1");
            out.pass(&format!("{name}限{}，患者性别相符", p.param), &Facts { gend: good, ..t }, &r1);
        }
        ("age", "医疗服务项目限年龄") => {
            out.hit(&format!("{name}用于85岁患者"), &Facts { brdy: years_before(d, 85), ..t.clone() }, &r1, "R1");
            out.pass(&format!("{name}用于45岁患者"), &t, &r1);
        }
        ("age", _) => {
            out.hit(&format!("{name}用于45岁成人"), &t, &r1, "R1");
            out.pass(&format!("{name}用于7岁儿童"), &Facts { brdy: years_before(d, 7), ..t }, &r1);
        }
        ("insurance_type", c) => {
            let good = if c == "药品限工伤保险" { "410" } else { "510" };
            out.hit(&format!("{name}用于职工医保参保人"), &t, &r1, "R1");
            out.pass(&format!("{name}用于险种{good}参保人"), &Facts { insutype: good, ..t }, &r1);
        }
        ("institution_level", _) => {
            let bad = if p.param == "3" { "2" } else { "3" };
            out.hit(&format!("{name}在级别不足的医疗机构使用"), &Facts { medins_lv: bad, ..t.clone() }, &r1, "R1");
            out.pass(&format!("{name}在三级医疗机构使用"), &t, &r1);
        }
        ("visit_type", _) => {
            let good = if v.key == "ER" { "13" } else { "21" };
            out.hit(&format!("{name}用于普通门诊"), &t, &r1, "R1");
            out.pass(&format!("{name}用于医疗类别{good}"), &Facts { med_type: good, ..t }, &r1);
        }
        ("course_days", "药品限支付疗程") => {
            let n: i64 = p.param.parse().unwrap_or(14);
            let long = [Order { days: Some(n + 1), ..order("R1", code, name) }];
            let ok = [Order { days: Some(n), ..order("R1", code, name) }];
            out.hit(&format!("{name}一次开具{}天", n + 1), &t, &long, "R1");
            out.pass(&format!("{name}一次开具{n}天"), &t, &ok);
        }
        ("course_days", _) => {
            let n: i64 = p.param.parse().unwrap_or(30);
            let late = [order("R1", code, name), Order { day: n, ..order("R2", code, name) }];
            let ok = [order("R1", code, name), Order { day: n - 1, ..order("R2", code, name) }];
            out.hit(&format!("{name}首次使用后第{}天再次使用", n + 1), &t, &late, "R2");
            out.pass(&format!("{name}首次使用后第{n}天再次使用"), &t, &ok);
        }
        ("pair", _) => {
            let (a, b) = (p.point.codes[0].trim(), p.point.codes[1].trim());
            let (an, bn) = p.point.item_name.split_once('×').unwrap_or((name, name));
            let same = [order("R1", a, an), order("R2", b, bn)];
            let apart = [order("R1", a, an), Order { day: 1, ..order("R2", b, bn) }];
            out.hit(&format!("{an}与{bn}同日收费"), &t, &same, "R2");
            out.pass(&format!("{an}与{bn}不在同日"), &t, &apart);
        }
        ("daily_units", _) => {
            let max: f64 = if v.key == "H" { 24.0 } else { 1.0 };
            out.hit(
                &format!("{name}一日计费{}", max + 1.0),
                &t,
                &[Order { cnt: max + 1.0, ..order("R1", code, name) }],
                "R1",
            );
            out.pass(&format!("{name}一日计费{max}"), &t, &[Order { cnt: max, ..order("R1", code, name) }]);
        }
        ("interval", _) => {
            let n: i64 = p.param.parse().unwrap_or(14);
            let close = [order("R1", code, name), Order { day: n - 1, ..order("R2", code, name) }];
            let apart = [order("R1", code, name), Order { day: n, ..order("R2", code, name) }];
            out.hit(&format!("{name}间隔{}天", n - 1), &t, &close, "R2");
            out.pass(&format!("{name}间隔{n}天"), &t, &apart);
        }
        ("herbal_single", _) => {
            out.hit(&format!("{name}单独使用"), &t, &r1, "R1");
            let compound = [order("R1", code, name), order("R2", OTHER_HERB.0, OTHER_HERB.1)];
            out.pass(&format!("{name}与{}组成复方", OTHER_HERB.1), &t, &compound);
        }
        ("listed", "中药饮片单复方均不予支付") => {
            out.hit(&format!("{name}纳入处方"), &t, &r1, "R1");
            out.pass(&format!("处方不含{name}"), &t, &[order("R1", OTHER_HERB.0, OTHER_HERB.1)]);
        }
        ("listed", _) => out.hit(&format!("{name}提醒医生确认"), &t, &r1, "R1"),
        ("incision_discount", _) => {
            let Some(second) = all.iter().find(|o| o.param == p.param && o.point.codes[0].trim() != code) else {
                return;
            };
            let (c2, n2) = (second.point.codes[0].trim(), super::classes::one_line(&second.point.item_name));
            let main = Order { price: 1000.0, ..order("R1", code, name) };
            let full =
                [Order { price: 1000.0, ..order("R1", code, name) }, Order { price: 800.0, ..order("R2", c2, &n2) }];
            let half = [main, Order { price: 800.0, cnt: 0.5, ..order("R2", c2, &n2) }];
            out.hit(&format!("同一{}内{name}与{n2}均全价收费", p.param), &t, &full, "R2");
            out.pass(&format!("同一{}内{n2}按50%收费", p.param), &t, &half);
        }
        ("diagnosis_required", _) => {
            let terms = m.terms(&p.note);
            let codes: Vec<String> = m.codes(&terms).unwrap_or_default();
            let named = |c: &str, n: &str| {
                terms.iter().any(|t| n.contains(t.as_str())) || codes.iter().any(|p| c.starts_with(p.as_str()))
            };
            let Some(&(uc, un)) = UNRELATED.iter().find(|(c, n)| !named(c, n)) else { return };
            let bad = Facts { diagnosis: (uc.into(), un.into()), ..t.clone() };
            out.hit(&format!("{name}用于{un}"), &bad, &r1, "R1");
            if let Some((gc, gn)) = m.example(&terms) {
                let good = Facts { diagnosis: (gc.into(), gn.into()), ..t };
                out.pass(&format!("{name}用于{gn}"), &good, &r1);
            }
        }
        _ => {}
    }
}

/// A test order line of a 3101 message.
pub(crate) struct Order<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub name: &'a str,
    pub cnt: f64,
    pub price: f64,
    pub day: i64,
    /// Days from the order's start to its stop (a drug's days supply).
    pub days: Option<i64>,
}

/// The facts of a test visit.
#[derive(Clone)]
pub(crate) struct Facts {
    pub gend: &'static str,
    pub brdy: String,
    pub insutype: &'static str,
    pub med_type: &'static str,
    pub medins_lv: &'static str,
    pub diagnosis: (String, String),
}

impl Facts {
    pub fn typical() -> Facts {
        Facts {
            gend: "1",
            brdy: "1980-06-01".into(),
            insutype: "310",
            med_type: "11",
            medins_lv: "1",
            diagnosis: ("J06.900".into(), "急性上呼吸道感染".into()),
        }
    }
}

fn chrg_type(code: &str) -> &'static str {
    match code.as_bytes().first() {
        Some(b'X') => "09",
        Some(b'Z') => "11",
        Some(b'T') => "10",
        _ => "05",
    }
}

/// A 3101 (事前分析) message: one patient, one visit, the orders on `date` plus each order's day.
pub(crate) fn envelope(f: &Facts, date: chrono::NaiveDate, orders: &[Order<'_>]) -> Value {
    let at = |d: i64| {
        let day = date.checked_add_signed(chrono::Duration::days(d)).unwrap_or(date);
        format!("{day} 09:00:00")
    };
    let inpatient = f.med_type.starts_with('2');
    let orders: Vec<Value> = orders
        .iter()
        .map(|o| {
            json!({
                "rx_id": o.id, "hilist_code": o.code, "hilist_name": o.name, "chrg_type": chrg_type(o.code),
                "cnt": o.cnt, "pric": o.price, "sumamt": (o.cnt * o.price * 100.0).round() / 100.0,
                "drord_begn_date": at(o.day), "drord_stop_date": o.days.map(|n| at(o.day + n)),
                "drord_dept_codg": "A03", "drord_dept_name": "内科", "drord_bhvr": "0"
            })
        })
        .collect();
    json!({
        "infno": "3101",
        "input": {"data": {"trig_scen": "2", "patient_dtos": [{
            "patn_id": "P0001", "patn_name": "患者甲", "gend": f.gend, "brdy": f.brdy, "curr_mdtrt_id": "M0001",
            "fsi_encounter_dtos": [{
                "mdtrt_id": "M0001", "medins_id": "H41070100001", "medins_name": "示例市人民医院",
                "medins_lv": f.medins_lv, "med_mdtrt_type": if inpatient { "3" } else { "1" },
                "med_type": f.med_type, "insutype": f.insutype, "adm_date": at(0),
                "fsi_diagnose_dtos": [{"dise_codg": f.diagnosis.0, "dise_name": f.diagnosis.1, "maindise_flag": "1", "inout_dise_type": "1"}],
                "fsi_order_dtos": orders
            }]
        }]}}
    })
}
