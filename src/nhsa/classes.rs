//! The 21 rule classes of the knowledge points: which rule (kind, action, message) each becomes,
//! and how a point's published text decides its row. Every reading of a text is here, and a
//! point the text does not decide is left out with the reason, for review.

use super::indication::Matcher;
use super::{ClassCount, Era, Placed, Point, Skipped};
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

/// One rule a class becomes (most classes have one; 限就医方式, 限支付疗程, 限适应症 have two).
#[derive(Debug)]
pub(crate) struct Variant {
    pub class: &'static str,
    /// Appended to the rule id (`GZ…-IP`); empty for a class's main rule.
    pub key: &'static str,
    pub name: &'static str,
    /// Empty: the points are shipped as a table with no rule (the messages cannot show the fact).
    pub kind: &'static str,
    pub action: &'static str,
    pub severity: &'static str,
    pub overridable: bool,
    pub message: &'static str,
    /// The rule's `params` as a YAML flow mapping (empty: none).
    pub params: &'static str,
    /// What the rule reads into the data beyond the text, stated in its basis.
    pub note: &'static str,
    /// The table is a pair table (`main,main_name,sub,sub_name,window,basis`).
    pub pairs: bool,
}

pub(crate) struct Decided {
    pub variant: &'static Variant,
    pub param: String,
    pub note: String,
}

type Decide = fn(&Point, &Matcher) -> Result<Decided, String>;

pub(crate) struct Class {
    pub name: &'static str,
    /// The rule id family: the national GZ code, or `NHSA2025-<seq>` for the types framework 1.0
    /// gave no code (限就医方式, 项目限年龄, 周期超频次, 超互联网医院).
    pub family: &'static str,
    /// Sequence number in the 2025 catalogue of 88 rule types.
    pub seq: u16,
    /// File name of the class's rule file and test file.
    pub slug: &'static str,
    pub decide: Decide,
}

macro_rules! variant {
    ($class:expr, $key:expr, $name:expr, $kind:expr, $action:expr, $sev:expr, $ovr:expr, $msg:expr, $params:expr, $note:expr) => {
        Variant {
            class: $class,
            key: $key,
            name: $name,
            kind: $kind,
            action: $action,
            severity: $sev,
            overridable: $ovr,
            message: $msg,
            params: $params,
            note: $note,
            pairs: false,
        }
    };
}

const CHILD: &str = "儿童指未满18周岁（国家医保药品目录凡例），按服务日期计算年龄";

static DRUG_GENDER: Variant = variant!(
    "药品区分性别使用",
    "",
    "药品区分性别使用",
    "gender",
    "block",
    "critical",
    false,
    "【{item}】限{allowed}患者使用，患者性别为{gender}，医保基金不予支付",
    "",
    "限定性别由说明文字判定（前列腺、睾丸…→男性；子宫、月经、妊娠…→女性），文字不能判定者列入待审清单"
);
static ITEM_GENDER: Variant = variant!(
    "医疗服务项目区分性别使用",
    "",
    "医疗服务项目区分性别使用",
    "gender",
    "block",
    "critical",
    false,
    "【{item}】为{allowed}专用医疗服务项目，患者性别为{gender}，医保基金不予支付",
    "",
    "限定性别取自项目内涵（男性/女性…相关）"
);
static DRUG_CHILD_ONLY: Variant = variant!(
    "药品儿童专用",
    "",
    "药品儿童专用",
    "age",
    "block",
    "critical",
    false,
    "【{item}】为儿童专用药品（{range}），患者年龄{age}，医保基金不予支付",
    "{ max: 18y }",
    CHILD
);
static DRUG_CHILD_LIMITED: Variant = variant!(
    "药品限儿童使用",
    "",
    "药品限儿童使用",
    "age",
    "block",
    "critical",
    false,
    "【{item}】限儿童使用（{range}），患者年龄{age}，医保基金不予支付",
    "{ max: 18y }",
    CHILD
);
static ITEM_CHILD_ONLY: Variant = variant!(
    "医疗服务项目儿童专用",
    "",
    "医疗服务项目儿童专用",
    "age",
    "block",
    "critical",
    false,
    "【{item}】为儿童专用医疗服务项目（{range}），患者年龄{age}，医保基金不予支付",
    "{ max: 18y }",
    CHILD
);
static ITEM_AGE: Variant = variant!(
    "医疗服务项目限年龄",
    "",
    "医疗服务项目限年龄",
    "age",
    "block",
    "critical",
    false,
    "【{item}】限法定就业年龄段患者（{range}），患者年龄{age}，医保基金不予支付",
    "",
    "法定就业年龄段按16周岁至60周岁（不含）判断；女性退休年龄较低，此处从宽，不致误拦"
);
static DRUG_WORK_INJURY: Variant = variant!(
    "药品限工伤保险",
    "",
    "药品限工伤保险",
    "insurance_type",
    "block",
    "critical",
    false,
    "【{item}】限工伤保险支付，本次参保险种为{insutype}，基本医疗保险基金不予支付，请按工伤保险或自费结算",
    "{ insutypes: ['410'], label: 工伤保险 }",
    "工伤保险按险种类型代码410（人社险种类型）识别"
);
static DRUG_MATERNITY: Variant = variant!(
    "药品限生育保险",
    "",
    "药品限生育保险",
    "insurance_type",
    "block",
    "critical",
    false,
    "【{item}】限生育保险支付，本次参保险种为{insutype}，基本医疗保险基金不予支付，请按生育保险或自费结算",
    "{ insutypes: ['510'], med_types: ['51', '52'], label: 生育保险 }",
    "生育保险按险种类型510或医疗类别51生育门诊、52生育住院识别"
);
static DRUG_TIER: Variant = variant!(
    "药品限医疗机构级别",
    "",
    "药品限医疗机构级别",
    "institution_level",
    "block",
    "critical",
    false,
    "【{item}】限{min_tier}医疗机构使用，本院为{tier}，医保基金不予支付",
    "",
    "限定级别取自说明文字（限二级及以上…）"
);
static DRUG_VISIT_IP: Variant = variant!(
    "药品限就医方式",
    "IP",
    "药品限就医方式（限住院）",
    "visit_type",
    "block",
    "critical",
    false,
    "【{item}】限{allowed}患者使用，本次为{visit}，医保基金不予支付",
    "{ visits: [inpatient] }",
    "限定就医方式取自说明文字（…住院患者方予支付）"
);
static DRUG_VISIT_ER: Variant = variant!(
    "药品限就医方式",
    "ER",
    "药品限就医方式（限急诊或住院）",
    "visit_type",
    "block",
    "critical",
    false,
    "【{item}】限急诊或住院患者使用，本次为{visit}，医保基金不予支付",
    "{ visits: [inpatient], med_types: ['13'] }",
    "限定就医方式取自说明文字（限急诊或住院患者）"
);
static DRUG_COURSE: Variant = variant!(
    "药品限支付疗程",
    "",
    "药品限支付疗程",
    "course_days",
    "block",
    "critical",
    false,
    "【{item}】{window}已使用{days}天，超过限定支付疗程{max}天，超出部分医保基金不予支付",
    "{ window: visit }",
    "按本次就诊（单次住院）内使用天数计算：逐日明细各计一天，处方按用药天数计"
);
static DRUG_COURSE_LONG: Variant = variant!(
    "药品限支付疗程",
    "S",
    "药品限支付疗程（长疗程）",
    "course_days",
    "block",
    "critical",
    false,
    "【{item}】自{first}起已使用{days}天，超过限定支付疗程{max}天，超出部分医保基金不予支付",
    "{ window: lookback, lookback_days: 400, measure: span }",
    "按首次使用起的跨度计算（如支付不超过12个月）"
);
static ITEM_COURSE: Variant = variant!(
    "医疗服务项目限支付疗程",
    "",
    "医疗服务项目限支付疗程",
    "course_days",
    "block",
    "critical",
    false,
    "【{item}】自{first}起已使用{days}天，超过限定支付疗程{max}天，超出部分医保基金不予支付",
    "{ window: lookback, lookback_days: 400, measure: span }",
    "按首次使用起的跨度计算，跨就诊累计"
);
static ITEM_DUPLICATE: Variant = Variant {
    pairs: true,
    ..variant!(
        "医疗服务项目重复收费",
        "",
        "医疗服务项目重复收费",
        "pair",
        "block",
        "critical",
        false,
        "【{main}】已包含【{sub}】，{date}同时收取属重复收费{earlier}，医保基金不予支付",
        "{ mode: includes, window: day }",
        "项目A的内涵包含项目B，同日同时收费时拦截项目B"
    )
};
static ITEM_FREQUENCY: Variant = variant!(
    "医疗服务项目限定频次",
    "",
    "医疗服务项目限定频次（按日计价）",
    "daily_units",
    "block",
    "critical",
    false,
    "【{item}】{date}计费{count}次{earlier}，超过每日限定{max}次，超出部分医保基金不予支付",
    "{ max: 1 }",
    "计价单位为日（天）的项目每日限1次"
);
static ITEM_FREQUENCY_HOURS: Variant = variant!(
    "医疗服务项目限定频次",
    "H",
    "医疗服务项目限定频次（按小时计价）",
    "daily_units",
    "block",
    "critical",
    false,
    "【{item}】{date}计费{count}小时{earlier}，超过每日限定{max}小时，超出部分医保基金不予支付",
    "{ max: 24 }",
    "计价单位为小时的项目每日限24小时"
);
static ITEM_INTERVAL: Variant = variant!(
    "医疗服务项目周期超频次",
    "",
    "医疗服务项目周期超频次",
    "interval",
    "block",
    "critical",
    false,
    "【{item}】距上次使用（{prev_date}）仅{gap}天，限定每{min_days}天支付一次",
    "",
    "周期取自说明文字：评定间隔不短于14天→14天，每周最多一次→7天，反映近2-3个月→60天，反映近2-3周→14天"
);
static HERBAL_SINGLE: Variant = variant!(
    "中药饮片单方使用不予支付",
    "",
    "中药饮片单方使用不予支付",
    "herbal_single",
    "block",
    "critical",
    false,
    "中药饮片【{items}】单独使用或全部由其组成的处方，统筹基金不予支付",
    "",
    "以本次申报的全部中药饮片视为一张处方"
);
static HERBAL_NONE: Variant = variant!(
    "中药饮片单复方均不予支付",
    "",
    "中药饮片单复方均不予支付",
    "listed",
    "block",
    "critical",
    false,
    "中药饮片【{item}】不得纳入基金支付范围（单复方均不予支付），请按自费处理",
    "",
    ""
);
static INTERNET: Variant = variant!(
    "超互联网医院药品支付范围",
    "",
    "超互联网医院药品支付范围",
    "",
    "block",
    "critical",
    false,
    "",
    "",
    "国家接口报文未标识互联网诊疗，本规则随知识表提供，需医院按本地互联网诊疗医疗类别启用"
);
static INCISION: Variant = variant!(
    "手术项目未按规定折价收费",
    "",
    "手术项目未按规定折价收费",
    "incision_discount",
    "block",
    "critical",
    false,
    "同一切口第二及以后的手术【{item}】应按{rate}折价收费（主手术【{main}】），多收{excess}元",
    "{ rate: '0.5' }",
    "同日同一手术组的多项手术视为经同一切口；单价最高者为主手术，其余按50%计收"
);
static SECOND_LINE: Variant = variant!(
    "药品限二线使用",
    "",
    "药品限二线使用",
    "listed",
    "remind",
    "warning",
    true,
    "【{item}】为限二线使用药品：{note} 请确认一线药品使用无效或不能耐受，可填写理由后继续",
    "",
    "报文不载一线用药疗效，事前提醒由医生确认（3103）"
);
static INDICATION_DX: Variant = variant!(
    "药品限适应症",
    "DX",
    "药品限适应症",
    "diagnosis_required",
    "remind",
    "warning",
    true,
    "【{item}】限定支付范围：{required} 本次诊断（{diagnoses}）未见相应适应症，请核实或填写理由后继续",
    "",
    "适应症按限定支付范围文字中的疾病名称与ICD-10诊断名称匹配；诊断相符则不提醒"
);
static INDICATION_TEXT: Variant = variant!(
    "药品限适应症",
    "TX",
    "药品限适应症（需医生确认）",
    "listed",
    "remind",
    "warning",
    true,
    "【{item}】限定支付范围：{note} 请核实适应症，必要时填写理由后继续",
    "",
    "限定支付范围文字未能匹配到ICD-10诊断名称，每次使用均提醒医生确认"
);

pub(crate) static CLASSES: &[Class] = &[
    Class {
        name: "药品限工伤保险",
        family: "GZ10000101001000",
        seq: 1,
        slug: "drug-work-injury",
        decide: |_, _| plain(&DRUG_WORK_INJURY),
    },
    Class {
        name: "药品限生育保险",
        family: "GZ10000101002000",
        seq: 2,
        slug: "drug-maternity",
        decide: |_, _| plain(&DRUG_MATERNITY),
    },
    Class {
        name: "中药饮片单复方均不予支付",
        family: "GZ10000101003000",
        seq: 3,
        slug: "herbal-not-covered",
        decide: |_, _| plain(&HERBAL_NONE),
    },
    Class {
        name: "中药饮片单方使用不予支付",
        family: "GZ10000101004000",
        seq: 4,
        slug: "herbal-single",
        decide: |_, _| plain(&HERBAL_SINGLE),
    },
    Class {
        name: "药品限二线使用",
        family: "GZ10000101005000",
        seq: 5,
        slug: "drug-second-line",
        decide: |p, _| noted(&SECOND_LINE, p),
    },
    Class {
        name: "药品限儿童使用",
        family: "GZ10000101007000",
        seq: 7,
        slug: "drug-child-limited",
        decide: |_, _| plain(&DRUG_CHILD_LIMITED),
    },
    Class {
        name: "药品限适应症", family: "GZ10000101008000", seq: 8, slug: "drug-indication", decide: indication
    },
    Class {
        name: "药品限支付疗程", family: "GZ10000101010000", seq: 10, slug: "drug-course", decide: drug_course
    },
    Class { name: "药品限医疗机构级别", family: "GZ10000101012000", seq: 12, slug: "drug-tier", decide: tier },
    Class { name: "药品限就医方式", family: "NHSA2025-013", seq: 13, slug: "drug-visit", decide: visit },
    Class {
        name: "手术项目未按规定折价收费",
        family: "GZ10000102002000",
        seq: 15,
        slug: "surgery-discount",
        decide: incision,
    },
    Class {
        name: "医疗服务项目限支付疗程",
        family: "GZ10000102010000",
        seq: 23,
        slug: "item-course",
        decide: item_course,
    },
    Class {
        name: "医疗服务项目重复收费",
        family: "GZ10000102012000",
        seq: 25,
        slug: "item-duplicate",
        decide: duplicate,
    },
    Class {
        name: "医疗服务项目限定频次",
        family: "GZ10000102014000",
        seq: 27,
        slug: "item-frequency",
        decide: frequency,
    },
    Class {
        name: "医疗服务项目限年龄", family: "NHSA2025-029", seq: 29, slug: "item-age", decide: working_age
    },
    Class {
        name: "医疗服务项目周期超频次", family: "NHSA2025-031", seq: 31, slug: "item-interval", decide: interval
    },
    Class {
        name: "超互联网医院药品支付范围",
        family: "NHSA2025-047",
        seq: 47,
        slug: "drug-internet",
        decide: |_, _| plain(&INTERNET),
    },
    Class {
        name: "药品儿童专用",
        family: "GZ10000301002000",
        seq: 65,
        slug: "drug-child-only",
        decide: |_, _| plain(&DRUG_CHILD_ONLY),
    },
    Class {
        name: "药品区分性别使用", family: "GZ10000301004000", seq: 67, slug: "drug-gender", decide: drug_gender
    },
    Class {
        name: "医疗服务项目儿童专用",
        family: "GZ10000302003000",
        seq: 80,
        slug: "item-child-only",
        decide: |_, _| plain(&ITEM_CHILD_ONLY),
    },
    Class {
        name: "医疗服务项目区分性别使用",
        family: "GZ10000302004000",
        seq: 81,
        slug: "item-gender",
        decide: item_gender,
    },
];

pub(crate) fn find(class: &str) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.name == class)
}

pub(crate) fn of_variant(v: &Variant) -> &'static Class {
    CLASSES.iter().find(|c| c.name == v.class).expect("every variant names a listed class")
}

fn plain(v: &'static Variant) -> Result<Decided, String> {
    Ok(Decided { variant: v, param: String::new(), note: String::new() })
}

fn noted(v: &'static Variant, p: &Point) -> Result<Decided, String> {
    Ok(Decided { variant: v, param: String::new(), note: one_line(p.text()) })
}

/// A published text on one line (some attachments break lines inside a cell).
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words that decide the sex a drug is for. Reviewed against all 640 points of 第一批: a point with
/// words of both lists, or of neither, is left out for review.
const MALE_WORDS: &[&str] =
    &["前列腺", "男性", "男子", "勃起", "阳痿", "早泄", "遗精", "睾丸", "精子", "精液", "阴茎", "阴囊", "输精管"];
const FEMALE_WORDS: &[&str] = &[
    "子宫",
    "宫颈",
    "胞宫",
    "暖宫",
    "宫寒",
    "月经",
    "经期",
    "痛经",
    "闭经",
    "经闭",
    "经行",
    "经前",
    "经血",
    "经量",
    "调经",
    "崩漏",
    "带下",
    "白带",
    "妊娠",
    "孕",
    "胎",
    "产后",
    "产妇",
    "分娩",
    "恶露",
    "流产",
    "乳腺",
    "乳房",
    "乳汁",
    "下乳",
    "奶汁",
    "缺乳",
    "乳癖",
    "乳痈",
    "哺乳",
    "卵巢",
    "排卵",
    "不孕",
    "阴道",
    "外阴",
    "盆腔",
    "女性",
    "妇女",
    "妇人",
    "妇科",
    "更年期",
    "绝经",
    "育龄",
];

fn drug_gender(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let text = format!("{}{}", p.item_name, p.text());
    let m: Vec<&str> = MALE_WORDS.iter().copied().filter(|w| text.contains(w)).collect();
    let f: Vec<&str> = FEMALE_WORDS.iter().copied().filter(|w| text.contains(w)).collect();
    let param = match (m.is_empty(), f.is_empty()) {
        (false, true) => "男",
        (true, false) => "女",
        (false, false) => {
            return Err(format!("gender not decided: the text has male words {m:?} and female words {f:?}"))
        }
        (true, true) => return Err("gender not decided: the text names no sex-specific term".into()),
    };
    Ok(Decided { variant: &DRUG_GENDER, param: param.into(), note: String::new() })
}

fn item_gender(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let t = p.text();
    let param = match (t.contains("男性"), t.contains("女性")) {
        (true, false) => "男",
        (false, true) => "女",
        _ => return Err(format!("gender not decided by the item's content {t:?}")),
    };
    Ok(Decided { variant: &ITEM_GENDER, param: param.into(), note: String::new() })
}

fn working_age(p: &Point, _: &Matcher) -> Result<Decided, String> {
    if p.text().contains("法定就业年龄") {
        Ok(Decided { variant: &ITEM_AGE, param: "16y-60y".into(), note: String::new() })
    } else {
        Err(format!("age range not decided by {:?}", p.text()))
    }
}

fn tier(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let t = p.text();
    let param = if t.contains("二级及以上") {
        "2"
    } else if t.contains("三级") {
        "3"
    } else {
        return Err(format!("institution level not decided by {t:?}"));
    };
    Ok(Decided { variant: &DRUG_TIER, param: param.into(), note: String::new() })
}

fn visit(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let t = p.text();
    let v = if t.contains("急诊或住院") {
        &DRUG_VISIT_ER
    } else if t.contains("住院") {
        &DRUG_VISIT_IP
    } else {
        return Err(format!("visit type not decided by {t:?}"));
    };
    Ok(Decided { variant: v, param: String::new(), note: String::new() })
}

static LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:不超过|最多支付)\s*([0-9]+|[一二三四五六七八九十两]+)\s*(天|日|周|个月|月|年)")
        .expect("a valid regex")
});

fn chinese_int(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let d =
        |c: char| "零一二三四五六七八九".chars().position(|x| x == c).map(|p| p as i64).or((c == '两').then_some(2));
    let cs: Vec<char> = s.chars().collect();
    match cs.as_slice() {
        [a] => d(*a).or((*a == '十').then_some(10)),
        ['十', b] => Some(10 + d(*b)?),
        [a, '十'] => Some(d(*a)? * 10),
        [a, '十', b] => Some(d(*a)? * 10 + d(*b)?),
        _ => None,
    }
}

/// The days a 限支付疗程 text allows: 支付不超过14天, 单次最多支付14天, 不超过12个月, 不超过一年.
pub(crate) fn limit_days(text: &str) -> Option<i64> {
    let c = LIMIT.captures(text)?;
    let n = chinese_int(&c[1])?;
    let days = match &c[2] {
        "天" | "日" => n,
        "周" => n * 7,
        "个月" | "月" => n * 30,
        _ => n * 365,
    };
    (1..=3660).contains(&days).then_some(days)
}

fn drug_course(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let days = limit_days(p.text()).ok_or_else(|| format!("course limit not decided by {:?}", p.text()))?;
    let v = if days > 60 { &DRUG_COURSE_LONG } else { &DRUG_COURSE };
    Ok(Decided { variant: v, param: days.to_string(), note: String::new() })
}

fn item_course(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let days = limit_days(p.text()).ok_or_else(|| format!("course limit not decided by {:?}", p.text()))?;
    Ok(Decided { variant: &ITEM_COURSE, param: days.to_string(), note: String::new() })
}

fn duplicate(p: &Point, _: &Matcher) -> Result<Decided, String> {
    if p.codes.len() != 2 {
        return Err(format!("a 重复收费 point lists item A then item B; this one has {} codes", p.codes.len()));
    }
    if p.codes[0].trim() == p.codes[1].trim() {
        return Err("item A and item B are the same code".into());
    }
    Ok(Decided { variant: &ITEM_DUPLICATE, param: String::new(), note: one_line(p.text()) })
}

fn frequency(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let v = match p.text() {
        "日" | "天" => &ITEM_FREQUENCY,
        "小时" => &ITEM_FREQUENCY_HOURS,
        o => return Err(format!("frequency unit {o:?} not decided")),
    };
    Ok(Decided { variant: v, param: String::new(), note: String::new() })
}

static NOT_SHORTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"不短于\s*([0-9]+)\s*天").expect("a valid regex"));

fn interval(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let t = p.text();
    let days = if let Some(c) = NOT_SHORTER.captures(t) {
        c[1].parse::<i64>().map_err(|e| e.to_string())?
    } else if t.contains("每周最多") {
        7
    } else if t.contains("2-3个月") {
        60
    } else if t.contains("2-3周") {
        14
    } else {
        return Err(format!("period not decided by {t:?}"));
    };
    Ok(Decided { variant: &ITEM_INTERVAL, param: days.to_string(), note: String::new() })
}

fn incision(p: &Point, _: &Matcher) -> Result<Decided, String> {
    let group = p.text();
    if group.is_empty() {
        return Err("no 手术组 given".into());
    }
    Ok(Decided { variant: &INCISION, param: group.to_owned(), note: String::new() })
}

fn indication(p: &Point, m: &Matcher) -> Result<Decided, String> {
    let note = one_line(p.text());
    if note.is_empty() {
        return Err("no 限定支付范围 text".into());
    }
    let terms = m.terms(&note);
    if terms.is_empty() {
        return Ok(Decided { variant: &INDICATION_TEXT, param: String::new(), note });
    }
    let mut param: Vec<String> = terms.clone();
    param.extend(m.codes(&terms).unwrap_or_default());
    Ok(Decided { variant: &INDICATION_DX, param: param.join("|"), note })
}

/// Leaves out every gender point with a code that a point of the other sex lists for overlapping
/// dates (the published lists contradict each other there).
pub(crate) fn drop_gender_conflicts(
    placed: &mut Vec<Placed>,
    skipped: &mut Vec<Skipped>,
    counts: &mut BTreeMap<String, ClassCount>,
) {
    let overlap = |a: Era, b: Era| a == b || a == Era::Current || b == Era::Current;
    let mut by_code: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in placed.iter().enumerate() {
        if p.variant.kind == "gender" {
            for c in &p.point.codes {
                by_code.entry((p.variant.class, c.trim())).or_default().push(i);
            }
        }
    }
    let mut bad: BTreeMap<usize, String> = BTreeMap::new();
    for ((_, code), idx) in &by_code {
        for &a in idx {
            for &b in idx {
                let (pa, pb) = (&placed[a], &placed[b]);
                if pa.param != pb.param && overlap(pa.era, pb.era) {
                    bad.entry(a).or_insert_with(|| {
                        format!(
                            "code {code} is listed for {} here and for {} by {}",
                            pa.param, pb.param, pb.point.kp_id
                        )
                    });
                }
            }
        }
    }
    let drop: HashSet<usize> = bad.keys().copied().collect();
    for (i, reason) in bad {
        let p = &placed[i].point;
        counts.entry(p.rule_class.clone()).or_default().skipped += 1;
        skipped.push(Skipped {
            kp_id: p.kp_id.clone(),
            rule_class: p.rule_class.clone(),
            item_name: p.item_name.clone(),
            reason,
        });
    }
    let mut i = 0;
    placed.retain(|_| {
        i += 1;
        !drop.contains(&(i - 1))
    });
}
