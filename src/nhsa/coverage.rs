//! Coverage: the 88 rule types of the 2025 catalogue read against a compiled rule set — which
//! rules enforce each type (the national pack's by their GZ family, other packs' by kind), how
//! many knowledge points and codes they load, the points left out for review, and for a type no
//! rule enforces, why it cannot be judged from the national messages.

use crate::rules::CompiledRuleSet;
use serde::Serialize;
use std::fmt::Write as _;

/// The 2025 catalogue (`seq,tier1,tier2,name,gz_code_1_0,has_knowledge_points,new_in_2025`).
pub const CATALOGUE: &str = include_str!("../../tools/nhsa/rule-catalogue-2025.csv");

#[derive(Debug, Clone, Serialize)]
pub struct TypeCoverage {
    pub seq: u16,
    pub tier1: String,
    pub tier2: String,
    pub name: String,
    pub gz_code: String,
    /// Whether the bureau published knowledge points for the type.
    pub published_points: bool,
    /// `enforced`, `table_only` or `not_enforced`.
    pub status: &'static str,
    pub rules: Vec<String>,
    pub kinds: Vec<String>,
    pub points: usize,
    pub codes: usize,
    pub left_out: usize,
    /// Why the type is not (or only partly) enforced; empty when it is.
    pub reason: String,
}

/// A point a pack's converter left out (`review.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    pub kp_id: String,
    pub rule_class: String,
    pub item_name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub revision: String,
    pub enforced: usize,
    pub types: Vec<TypeCoverage>,
    pub left_out: Vec<LeftOut>,
}

/// Kinds that enforce a catalogue type wherever a pack uses them (local or baseline rules).
const KIND_TYPES: &[(u16, &[&str])] = &[
    (9, &["days_supply"]),
    (14, &["price_cap"]),
    (21, &["department"]),
    (25, &["pair"]),
    (26, &["unbundling"]),
    (27, &["daily_units", "claim_units"]),
    (49, &["readmission"]),
    (50, &["visit_frequency"]),
    (51, &["visit_frequency", "split_purchase"]),
    (52, &["visit_frequency"]),
    (53, &["low_threshold_admission"]),
    (68, &["days_supply"]),
    (69, &["repeat_item"]),
    (43, &["trace_code"]),
];

/// Why a type no shipped rule enforces cannot be judged from the national messages (or what it
/// would need). Types not listed take the default for their tier.
const REASONS: &[(u16, &str)] = &[
    (6, "未公布知识点；可用 age 规则（max: 28d）按本地名单配置"),
    (11, "需门诊慢特病病种目录与病种备案信息，结算报文不载"),
    (16, "未公布知识点；可用 insurance_type 规则按本地名单配置"),
    (17, "未公布知识点；可用 insurance_type 规则按本地名单配置"),
    (18, "未公布知识点；可用 age 规则按本地名单配置"),
    (19, "未公布知识点；可用 age 规则按本地名单配置"),
    (20, "未公布知识点；可用 diagnosis_required 规则按本地名单配置"),
    (22, "未公布知识点；可用 visit_type 规则按本地名单配置"),
    (24, "未公布知识点；可用 institution_level 规则按本地名单配置"),
    (28, "需项目年度报销总额参数，国家未公布"),
    (30, "需项目与耗材的对照知识，国家未公布"),
    (32, "耗材知识点未随知识点表提供；可用 age 规则按本地名单配置"),
    (33, "耗材知识点未随知识点表提供；可用 age 规则按本地名单配置"),
    (34, "需耗材年度报销总额参数，国家未公布"),
    (35, "医保结算清单（4101）不经事前事中审核路径"),
    (36, "需结算明细与收费票据比对，属事后核查"),
    (37, "需疾病诊断编码库的有效性校验规则，国家未公布"),
    (38, "需手术操作编码库的有效性校验规则，国家未公布"),
    (39, "手术操作编码与性别的知识点未随知识点表提供"),
    (40, "诊断与手术操作对应知识点未随知识点表提供"),
    (41, "属上传时效监测，需平台侧时间戳，事后统计"),
    (42, "需入出院时间与计费日期，部分可由 course_days/readmission 覆盖；国家未公布参数"),
    (44, "需围手术期用药时点与手术记录，报文不载"),
    (45, "需抗菌药物分级目录与医师处方权限，报文不载"),
    (46, "需品种数阈值，国家未公布"),
    (
        47,
        "国家接口报文未标识互联网诊疗：知识表已随包提供（tables/NHSA2025-047.csv），需医院按本地互联网诊疗医疗类别启用",
    ),
    (48, "需耗材进销存数据，不在结算报文中"),
    (54, "诊断与性别知识点未随知识点表提供"),
    (55, "诊断与年龄知识点未随知识点表提供"),
    (64, "药品与医疗服务项目对照知识点未随知识点表提供"),
    (66, "儿童禁用知识点未随知识点表提供；可用 age 规则（min: 18y）按本地名单配置"),
    (70, "超说明书适应症知识点未随知识点表提供"),
    (71, "药品禁忌症知识点未随知识点表提供"),
    (72, "老年人用药知识点未随知识点表提供"),
    (73, "妊娠期及哺乳期用药知识点未随知识点表提供；报文不载妊娠状态"),
    (74, "药品相互作用知识点未随知识点表提供"),
    (75, "十八反十九畏知识点未随知识点表提供"),
    (76, "需中药饮片处方付数与剂量，报文不载处方结构"),
    (77, "需中药饮片处方剂量，报文不载处方结构"),
    (78, "无指征检查知识点未随知识点表提供"),
    (79, "无指征治疗知识点未随知识点表提供"),
    (82, "项目禁忌症知识点未随知识点表提供"),
    (83, "项目超适应症知识点未随知识点表提供"),
    (84, "耗材与项目对照知识点未随知识点表提供"),
    (85, "耗材与科室对照知识点未随知识点表提供"),
    (86, "需耗材数量阈值，国家未公布"),
    (87, "耗材与性别知识点未随知识点表提供"),
    (88, "耗材限疾病知识点未随知识点表提供"),
];

fn family(seq: u16, gz: &str) -> String {
    if gz.is_empty() {
        format!("NHSA2025-{seq:03}")
    } else {
        gz.to_owned()
    }
}

/// Reads the left-out points of `review.csv` texts (`kp_id,rule_class,item_name,reason`).
pub fn read_review(texts: &[String]) -> Vec<LeftOut> {
    let mut out = Vec::new();
    for t in texts {
        let mut r = csv::Reader::from_reader(t.as_bytes());
        for rec in r.records().flatten() {
            let f = |i: usize| rec.get(i).unwrap_or("").to_owned();
            out.push(LeftOut { kp_id: f(0), rule_class: f(1), item_name: f(2), reason: f(3) });
        }
    }
    out
}

/// The coverage of `rs`; `left_out` are the packs' review lists.
pub fn coverage(rs: &CompiledRuleSet, left_out: Vec<LeftOut>) -> Coverage {
    let mut types = Vec::new();
    let mut rdr = csv::Reader::from_reader(CATALOGUE.as_bytes());
    for rec in rdr.records().flatten() {
        let f = |i: usize| rec.get(i).unwrap_or("").trim().to_owned();
        let Ok(seq) = f(0).parse::<u16>() else { continue };
        let (name, gz) = (f(3), f(4));
        let fam = family(seq, &gz);
        let mut t = TypeCoverage {
            seq,
            tier1: f(1),
            tier2: f(2),
            name: name.clone(),
            gz_code: gz,
            published_points: f(5) == "1",
            status: "not_enforced",
            rules: vec![],
            kinds: vec![],
            points: 0,
            codes: 0,
            left_out: left_out.iter().filter(|l| l.rule_class == name).count(),
            reason: String::new(),
        };
        let by_kind: &[&str] = KIND_TYPES.iter().find(|(s, _)| *s == seq).map_or(&[], |(_, k)| k);
        for r in &rs.rules {
            let national = r.id.starts_with(fam.as_str());
            if !national && !by_kind.contains(&r.kind) {
                continue;
            }
            t.rules.push(r.id.to_string());
            if !t.kinds.iter().any(|k| k == r.kind) {
                t.kinds.push(r.kind.to_owned());
            }
            if national {
                t.points += r.sources();
                t.codes += r.table_rows();
            }
        }
        let table_only = seq == 47;
        if !t.rules.is_empty() {
            t.status = "enforced";
        } else if table_only {
            t.status = "table_only";
        }
        if t.rules.is_empty() || t.left_out > 0 {
            let specific = REASONS.iter().find(|(s, _)| *s == seq).map(|(_, r)| *r);
            t.reason = match (t.rules.is_empty(), specific) {
                (true, Some(r)) => r.to_owned(),
                (true, None) => "当前规则集未含此类规则".to_owned(),
                (false, _) => format!("{}个知识点的文字不能判定，未入包，见待审清单", t.left_out),
            };
        }
        types.push(t);
    }
    let enforced = types.iter().filter(|t| t.status == "enforced").count();
    Coverage { revision: rs.revision(), enforced, types, left_out }
}

impl Coverage {
    /// The table `claimgate rules coverage` prints.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}：2025版规则目录88类中执行{}类\n序号\t类型\t状态\t知识点\t编码\t未入包\t规则（类型）\t说明\n",
            self.revision, self.enforced
        );
        for t in &self.types {
            let status = match t.status {
                "enforced" => "执行",
                "table_only" => "仅知识表",
                _ => "未执行",
            };
            let rules = if t.rules.is_empty() {
                "—".to_owned()
            } else {
                format!("{}（{}）", t.rules.join(" "), t.kinds.join("、"))
            };
            let _ = writeln!(
                s,
                "{}\t{}\t{status}\t{}\t{}\t{}\t{rules}\t{}",
                t.seq, t.name, t.points, t.codes, t.left_out, t.reason
            );
        }
        if !self.left_out.is_empty() {
            let _ = writeln!(s, "\n未入包的知识点（待审，{}个）：", self.left_out.len());
            for l in &self.left_out {
                let _ = writeln!(s, "{}\t{}\t{}\t{}", l.kp_id, l.rule_class, l.item_name, l.reason);
            }
        }
        s
    }
}
