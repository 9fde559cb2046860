//! The office's figures, as plain SQL over the journal's store (SQLite or PostgreSQL, the same
//! text for both): hits by rule, department, doctor and service date; amounts intercepted;
//! doctors' answers (3103) per rule; patients by hits (pseudonyms only); 驾照式记分 exposure per
//! doctor; and the paged decision listing.
//!
//! Dates: the date filters and the by-day figures use each decision's service date (the date of
//! the claim's lines), never the time it was checked; the listing shows both.
//!
//! Everything here reads; nothing renders. Callers run these off the async executor (they are
//! blocking reads) inside [`crate::journal::Journal::read`] or a store's `read`.

use crate::store::{Conn, StoreError, P, V};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::HashMap;

/// Transactions answered locally before the fact (事前/事中分析): their blocks warn, they do not
/// stop a payment, so they never count as intercepted money.
const ANALYSIS: &str = "('3101','3102')";

/// Longest accepted filter value (department, doctor and rule codes are short).
const MAX_CODE: usize = 64;
/// Most decisions on one listing page.
pub const MAX_PER_PAGE: u32 = 500;
/// Rows in each "top" table.
pub const TOP: u32 = 20;

/// Which decisions the figures cover. Empty means "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// First service date included.
    pub from: Option<NaiveDate>,
    /// Last service date included.
    pub to: Option<NaiveDate>,
    pub dept: Option<String>,
    pub doctor: Option<String>,
    /// Decisions with a hit of this rule; hit figures count this rule only.
    pub rule: Option<String>,
    /// `pass`, `remind`, `block`, `unchecked` (the listing only).
    pub decision: Option<String>,
}

/// Paging of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Paging {
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

impl Default for Paging {
    fn default() -> Self {
        Paging { page: 1, per_page: 50 }
    }
}

/// A query parameter that cannot be used; the text is for the office (Chinese).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn date(key: &str, v: &str) -> Result<NaiveDate, FilterError> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| FilterError(format!("参数 {key}：日期格式应为 YYYY-MM-DD，收到“{}”", clip(v))))
}

fn code(key: &str, v: &str) -> Result<String, FilterError> {
    if v.chars().count() > MAX_CODE || v.chars().any(char::is_control) {
        return Err(FilterError(format!("参数 {key}：编码过长或含控制字符")));
    }
    Ok(v.to_owned())
}

fn number(key: &str, v: &str, max: u32) -> Result<u32, FilterError> {
    match v.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(FilterError(format!("参数 {key}：应为 1 到 {max} 之间的整数，收到“{}”", clip(v)))),
    }
}

/// At most 20 characters of a bad value, for an error message.
fn clip(v: &str) -> String {
    v.chars().take(20).collect()
}

impl Filter {
    /// Reads `from`, `to`, `dept`, `doctor`, `rule`, `decision`, `page`, `per_page` from query
    /// pairs. Empty values mean "not set" (what an HTML form sends for an empty field); keys in
    /// `ignore` are skipped; any other key is refused.
    ///
    /// # Errors
    /// An unknown key, a malformed date, `from` after `to`, an unknown decision, a bad page.
    pub fn from_pairs(pairs: &[(String, String)], ignore: &[&str]) -> Result<(Filter, Paging), FilterError> {
        let mut f = Filter::default();
        let mut p = Paging::default();
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() || ignore.contains(&k.as_str()) {
                continue;
            }
            match k.as_str() {
                "from" => f.from = Some(date(k, v)?),
                "to" => f.to = Some(date(k, v)?),
                "dept" => f.dept = Some(code(k, v)?),
                "doctor" => f.doctor = Some(code(k, v)?),
                "rule" => f.rule = Some(code(k, v)?),
                "decision" => match v {
                    "pass" | "remind" | "block" | "unchecked" => f.decision = Some(v.to_owned()),
                    _ => {
                        return Err(FilterError(format!(
                            "参数 decision：应为 pass、remind、block 或 unchecked，收到“{}”",
                            clip(v)
                        )))
                    }
                },
                "page" => p.page = number(k, v, 1_000_000)?,
                "per_page" => p.per_page = number(k, v, MAX_PER_PAGE)?,
                other => return Err(FilterError(format!("未知参数：{}", clip(other)))),
            }
        }
        if let (Some(a), Some(b)) = (f.from, f.to) {
            if a > b {
                return Err(FilterError(format!("起始日期 {a} 晚于结束日期 {b}")));
            }
        }
        Ok((f, p))
    }

    /// The filter as query pairs (for links that keep it).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(d) = self.from {
            out.push(("from", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(d) = self.to {
            out.push(("to", d.format("%Y-%m-%d").to_string()));
        }
        for (k, v) in
            [("dept", &self.dept), ("doctor", &self.doctor), ("rule", &self.rule), ("decision", &self.decision)]
        {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        }
        out
    }

    /// `WHERE` conditions on `j_decision d` (without the rule condition on hits).
    fn decision_where(&self, b: &mut Binds, with_decision: bool) -> String {
        let mut w = vec!["1=1".to_owned()];
        if let Some(d) = self.from {
            w.push(format!("d.service_date >= {}", b.text(&d.format("%Y-%m-%d").to_string())));
        }
        if let Some(d) = self.to {
            w.push(format!("d.service_date <= {}", b.text(&d.format("%Y-%m-%d").to_string())));
        }
        if let Some(x) = &self.dept {
            w.push(format!("d.dept_code = {}", b.text(x)));
        }
        if let Some(x) = &self.doctor {
            w.push(format!("d.doctor_code = {}", b.text(x)));
        }
        if let Some(x) = &self.rule {
            w.push(format!("EXISTS (SELECT 1 FROM j_hit x WHERE x.decision_id = d.id AND x.rule_id = {})", b.text(x)));
        }
        if with_decision {
            if let Some(x) = &self.decision {
                w.push(format!("d.decision = {}", b.text(x)));
            }
        }
        w.join(" AND ")
    }

    /// Conditions on `j_hit h JOIN j_decision d`: the decision filter plus the rule itself.
    fn hit_where(&self, b: &mut Binds) -> String {
        let mut w = self.decision_where(b, false);
        if let Some(x) = &self.rule {
            w.push_str(&format!(" AND h.rule_id = {}", b.text(x)));
        }
        w
    }

    /// Hits per decision (restricted to the rule when one is set), as a subquery to join.
    fn hit_counts(&self, b: &mut Binds) -> String {
        let only = match &self.rule {
            Some(r) => format!(" WHERE rule_id = {}", b.text(r)),
            None => String::new(),
        };
        format!(
            "SELECT decision_id, COUNT(*) AS n, CAST(SUM(amount_fen) AS BIGINT) AS amt FROM j_hit{only} GROUP BY decision_id"
        )
    }
}

/// The text parameters of one statement, numbered `$1, $2, …` in the order they are bound (each
/// statement gets its own: PostgreSQL wants exactly the parameters a statement uses).
#[derive(Default)]
struct Binds(Vec<String>);

impl Binds {
    fn text(&mut self, v: &str) -> String {
        self.0.push(v.to_owned());
        format!("${}", self.0.len())
    }
    fn params(&self) -> Vec<P<'_>> {
        self.0.iter().map(|s| P::T(s)).collect()
    }
}

/// A text column (NULL as empty).
fn t(v: &V) -> String {
    v.string()
}

/// An integer column (NULL as 0).
fn n(v: &V) -> i64 {
    v.int().unwrap_or(0)
}

/// `SUM(CASE WHEN cond THEN 1 ELSE 0 END)` as BIGINT, 0 over no rows: counts a condition on both
/// engines (PostgreSQL cannot sum a boolean, and returns NUMERIC for a sum of BIGINT).
fn count_if(cond: &str) -> String {
    format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS BIGINT)")
}

/// `SUM(x)` as BIGINT, 0 over no rows.
fn sum(x: &str) -> String {
    format!("CAST(COALESCE(SUM({x}), 0) AS BIGINT)")
}

/// 元 with two decimals from fen.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn ser_yuan<S: serde::Serializer>(fen: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&yuan(*fen))
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub decisions: i64,
    pub pass: i64,
    pub remind: i64,
    pub block: i64,
    pub unchecked: i64,
    /// Decisions answered locally before the fact (3101/3102), included in the counts above.
    pub analyses: i64,
    pub hits: i64,
    /// Money of block hits in blocked claim transactions (not 3101/3102): stopped before payment.
    #[serde(serialize_with = "ser_yuan", rename = "intercepted_amount")]
    pub intercepted_fen: i64,
    /// Money of reminder hits.
    #[serde(serialize_with = "ser_yuan", rename = "reminded_amount")]
    pub reminded_fen: i64,
    /// Blocked claim transactions (not 3101/3102).
    pub intercepted: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleRow {
    pub rule_id: String,
    pub rule_name: String,
    pub hits: i64,
    pub block: i64,
    pub remind: i64,
    #[serde(serialize_with = "ser_yuan", rename = "amount")]
    pub amount_fen: i64,
    pub points: i64,
}

/// Decisions and hits grouped by one key (department, doctor, day or patient pseudonym).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupRow {
    pub key: String,
    /// The department's or doctor's name (learnt from the traffic or the dictionary); empty when
    /// unknown, and for days and patients.
    pub name: String,
    pub decisions: i64,
    pub remind: i64,
    pub block: i64,
    pub hits: i64,
    #[serde(serialize_with = "ser_yuan", rename = "amount")]
    pub amount_fen: i64,
}

/// Doctors' 3103 answers to the jr_ids of one rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedbackRow {
    pub rule_id: String,
    pub rule_name: String,
    /// jr_ids handed out (3101/3102 results).
    pub prompted: i64,
    /// jr_ids with at least one answer (the latest counts).
    pub answered: i64,
    /// 继续执行 (dspo_way 1): the reminder was overridden.
    pub continued: i64,
    /// 返回修改 (dspo_way 2): the reminder was accepted.
    pub modified: i64,
    /// `continued / answered`, 0 when nothing was answered.
    pub override_rate: f64,
    /// `modified / answered`.
    pub acceptance_rate: f64,
}

/// What a doctor would have lost under 驾照式记分 had the blocked items gone through.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PointsRow {
    pub doctor: String,
    /// The doctor's name (empty when unknown).
    pub name: String,
    pub depts: String,
    /// The departments' names, in the order of `depts` (a code stands for an unknown name).
    pub dept_names: String,
    /// Block hits in blocked claim transactions.
    pub blocked_items: i64,
    pub points: i64,
    #[serde(serialize_with = "ser_yuan", rename = "amount")]
    pub amount_fen: i64,
}

/// The hospital the figures are about: the institution of most of the scope's messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Hospital {
    pub code: String,
    /// `fixmedins_name` as the traffic gives it (empty when no message named it).
    pub name: String,
}

/// Names of departments, doctors and hospitals by code, as the journal learnt them from the
/// traffic or was given them by the hospital's dictionary (`j_name`).
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub dept: HashMap<String, String>,
    pub doctor: HashMap<String, String>,
    pub hospital: HashMap<String, String>,
}

impl Names {
    fn of<'a>(m: &'a HashMap<String, String>, code: &str) -> &'a str {
        m.get(code).map_or("", String::as_str)
    }
    pub fn dept(&self, code: &str) -> &str {
        Self::of(&self.dept, code)
    }
    pub fn doctor(&self, code: &str) -> &str {
        Self::of(&self.doctor, code)
    }
}

/// Every name the journal holds.
///
/// # Errors
/// The journal cannot be read.
pub fn names(c: &mut dyn Conn) -> Result<Names, StoreError> {
    let mut n = Names::default();
    for r in c.query("SELECT kind, code, name FROM j_name", &[])? {
        let map = match r[0].text() {
            Some("dept") => &mut n.dept,
            Some("doctor") => &mut n.doctor,
            Some("hospital") => &mut n.hospital,
            _ => continue,
        };
        map.insert(t(&r[1]), t(&r[2]));
    }
    Ok(n)
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub filter: Filter,
    pub hospital: Hospital,
    pub totals: Totals,
    pub by_rule: Vec<RuleRow>,
    pub by_dept: Vec<GroupRow>,
    pub by_doctor: Vec<GroupRow>,
    /// Every service date with decisions, oldest first.
    pub by_day: Vec<GroupRow>,
    pub feedback: Vec<FeedbackRow>,
    /// Keys are keyed pseudonyms of psn_no, never the number.
    pub top_patients: Vec<GroupRow>,
    pub doctor_points: Vec<PointsRow>,
    /// The scope's largest blocked claim transactions (not 3101/3102), by amount blocked.
    pub largest_blocks: Vec<Entry>,
}

fn group(
    c: &mut dyn Conn,
    f: &Filter,
    key: &str,
    extra: &str,
    order: &str,
    limit: Option<u32>,
) -> Result<Vec<GroupRow>, StoreError> {
    let mut b = Binds::default();
    let hc = f.hit_counts(&mut b);
    let w = f.decision_where(&mut b, false);
    let lim = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    // Rows without a code (nobody named the department or doctor) come after every named row.
    let sql = format!(
        "SELECT {key} AS k, COUNT(*), {}, {}, {}, {}
         FROM j_decision d LEFT JOIN ({hc}) hc ON hc.decision_id = d.id
         WHERE {w}{extra} GROUP BY {key} ORDER BY CASE WHEN {key} = '' THEN 1 ELSE 0 END, {order}{lim}",
        count_if("d.decision = 'remind'"),
        count_if("d.decision = 'block'"),
        sum("hc.n"),
        sum("hc.amt"),
    );
    Ok(c.query(&sql, &b.params())?
        .iter()
        .map(|r| GroupRow {
            key: t(&r[0]),
            name: String::new(),
            decisions: n(&r[1]),
            remind: n(&r[2]),
            block: n(&r[3]),
            hits: n(&r[4]),
            amount_fen: n(&r[5]),
        })
        .collect())
}

fn rate(n: i64, d: i64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// All the office's figures for `f` (`f.decision` is ignored: the figures cover every outcome).
///
/// # Errors
/// The journal cannot be read.
pub fn stats(c: &mut dyn Conn, f: &Filter) -> Result<Stats, StoreError> {
    let totals = totals(c, f)?;
    let names = names(c)?;

    let by_rule = by_rule(c, f)?;

    let top = "COALESCE(SUM(hc.n), 0) DESC, COUNT(*) DESC, k";
    let mut by_dept = group(c, f, "d.dept_code", "", top, Some(TOP))?;
    for g in &mut by_dept {
        g.name = names.dept(&g.key).to_owned();
    }
    let mut by_doctor = group(c, f, "d.doctor_code", "", top, Some(TOP))?;
    for g in &mut by_doctor {
        g.name = names.doctor(&g.key).to_owned();
    }
    let by_day = group(c, f, "d.service_date", "", "k", None)?;
    let top_patients = group(c, f, "d.psn_hash", " AND d.psn_hash <> '' AND hc.n > 0", top, Some(10))?;

    let feedback = feedback(c, f)?;

    let mut doctor_points = doctor_points(c, f)?;
    for p in &mut doctor_points {
        p.name = names.doctor(&p.doctor).to_owned();
        p.dept_names = p
            .depts
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| match names.dept(d) {
                "" => d,
                name => name,
            })
            .collect::<Vec<_>>()
            .join("、");
    }
    let hospital = hospital(c, f, &names)?;
    let largest_blocks = largest_blocks(c, f, &names)?;

    Ok(Stats {
        filter: f.clone(),
        hospital,
        totals,
        by_rule,
        by_dept,
        by_doctor,
        by_day,
        feedback,
        top_patients,
        doctor_points,
        largest_blocks,
    })
}

/// The institution of most of the scope's messages, with the name the traffic gave it.
fn hospital(c: &mut dyn Conn, f: &Filter, names: &Names) -> Result<Hospital, StoreError> {
    let mut b = Binds::default();
    let w = f.decision_where(&mut b, false);
    let sql = format!(
        "SELECT d.fixmedins_code FROM j_decision d WHERE {w} AND d.fixmedins_code <> '' \
         GROUP BY d.fixmedins_code ORDER BY COUNT(*) DESC, d.fixmedins_code LIMIT 1"
    );
    let code = c.query(&sql, &b.params())?.first().map(|r| t(&r[0]));
    let code = match code {
        Some(c) => c,
        // Nothing in scope: the hospital the journal knows best.
        None => names.hospital.keys().min().cloned().unwrap_or_default(),
    };
    let name = names.hospital.get(&code).cloned().unwrap_or_default();
    Ok(Hospital { code, name })
}

/// Appendix rows: the blocked claim transactions with the most money blocked.
pub const LARGEST: u32 = 20;

fn largest_blocks(c: &mut dyn Conn, f: &Filter, names: &Names) -> Result<Vec<Entry>, StoreError> {
    let mut b = Binds::default();
    let hc = f.hit_counts(&mut b);
    let w = f.decision_where(&mut b, false);
    let sql = format!(
        "SELECT {ENTRY_COLS} FROM j_decision d JOIN ({hc}) hc ON hc.decision_id = d.id
         WHERE {w} AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS}
         ORDER BY hc.amt DESC, d.service_date DESC, d.id DESC LIMIT {LARGEST}"
    );
    let rows = c.query(&sql, &b.params())?;
    let mut items: Vec<Entry> = rows.iter().map(|r| entry(r)).collect();
    fill(c, &mut items)?;
    name_entries(&mut items, names);
    Ok(items)
}

fn name_entries(items: &mut [Entry], names: &Names) {
    for e in items {
        e.dept_name = names.dept(&e.dept_code).to_owned();
        e.doctor_name = names.doctor(&e.doctor_code).to_owned();
    }
}

/// The scope's totals (decisions by outcome, hits, money).
///
/// # Errors
/// The journal cannot be read.
pub fn totals(c: &mut dyn Conn, f: &Filter) -> Result<Totals, StoreError> {
    let mut b = Binds::default();
    let dw = f.decision_where(&mut b, false);
    let sql = format!(
        "SELECT COUNT(*), {}, {}, {}, {}, {}, {} FROM j_decision d WHERE {dw}",
        count_if("d.decision = 'pass'"),
        count_if("d.decision = 'remind'"),
        count_if("d.decision = 'block'"),
        count_if("d.decision = 'unchecked'"),
        count_if(&format!("d.infno IN {ANALYSIS}")),
        count_if(&format!("d.decision = 'block' AND d.infno NOT IN {ANALYSIS}")),
    );
    let r = c.query(&sql, &b.params())?;
    let r = r.first().ok_or_else(|| StoreError::Sql("totals: no row".into()))?;
    let mut totals = Totals {
        decisions: n(&r[0]),
        pass: n(&r[1]),
        remind: n(&r[2]),
        block: n(&r[3]),
        unchecked: n(&r[4]),
        analyses: n(&r[5]),
        intercepted: n(&r[6]),
        ..Totals::default()
    };

    let mut b = Binds::default();
    let hw = f.hit_where(&mut b);
    let sql = format!(
        "SELECT COUNT(*), {}, {} FROM j_hit h JOIN j_decision d ON d.id = h.decision_id WHERE {hw}",
        sum(&format!(
            "CASE WHEN h.action = 'block' AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS} THEN h.amount_fen END"
        )),
        sum("CASE WHEN h.action = 'remind' THEN h.amount_fen END"),
    );
    let r = c.query(&sql, &b.params())?;
    let r = r.first().ok_or_else(|| StoreError::Sql("hit totals: no row".into()))?;
    totals.hits = n(&r[0]);
    totals.intercepted_fen = n(&r[1]);
    totals.reminded_fen = n(&r[2]);
    Ok(totals)
}

/// Hits, blocks, reminders, amount and points per rule, most hits first.
fn by_rule(c: &mut dyn Conn, f: &Filter) -> Result<Vec<RuleRow>, StoreError> {
    let mut b = Binds::default();
    let hw = f.hit_where(&mut b);
    let sql = format!(
        "SELECT h.rule_id, MAX(h.rule_name), COUNT(*), {}, {}, {}, MAX(h.points)
         FROM j_hit h JOIN j_decision d ON d.id = h.decision_id WHERE {hw}
         GROUP BY h.rule_id ORDER BY COUNT(*) DESC, h.rule_id",
        count_if("h.action = 'block'"),
        count_if("h.action = 'remind'"),
        sum("h.amount_fen"),
    );
    Ok(c.query(&sql, &b.params())?
        .iter()
        .map(|r| RuleRow {
            rule_id: t(&r[0]),
            rule_name: t(&r[1]),
            hits: n(&r[2]),
            block: n(&r[3]),
            remind: n(&r[4]),
            amount_fen: n(&r[5]),
            points: n(&r[6]),
        })
        .collect())
}

/// Per rule: the jr_ids handed out and what the doctors answered.
fn feedback(c: &mut dyn Conn, f: &Filter) -> Result<Vec<FeedbackRow>, StoreError> {
    let mut b = Binds::default();
    let mut jw = f.decision_where(&mut b, false);
    if let Some(r) = &f.rule {
        jw.push_str(&format!(" AND j.rule_id = {}", b.text(r)));
    }
    // The rule's name from the hits of the decision that handed the jr_id out (inside the
    // aggregate: PostgreSQL refuses an ungrouped column in a plain subquery).
    let sql = format!(
        "SELECT j.rule_id,
                COALESCE(MAX((SELECT h.rule_name FROM j_hit h WHERE h.decision_id = j.decision_id AND h.rule_id = j.rule_id LIMIT 1)), ''),
                COUNT(*), COUNT(fb.id), {}, {}
         FROM j_jr j JOIN j_decision d ON d.id = j.decision_id
         LEFT JOIN j_feedback fb ON fb.id = (SELECT MAX(id) FROM j_feedback WHERE jr_id = j.jr_id)
         WHERE {jw} GROUP BY j.rule_id ORDER BY COUNT(*) DESC, j.rule_id",
        count_if("fb.dspo_way = '1'"),
        count_if("fb.dspo_way = '2'"),
    );
    Ok(c.query(&sql, &b.params())?
        .iter()
        .map(|r| {
            let (answered, continued, modified) = (n(&r[3]), n(&r[4]), n(&r[5]));
            FeedbackRow {
                rule_id: t(&r[0]),
                rule_name: t(&r[1]),
                prompted: n(&r[2]),
                answered,
                continued,
                modified,
                override_rate: rate(continued, answered),
                acceptance_rate: rate(modified, answered),
            }
        })
        .collect())
}

/// The 驾照式记分 points a doctor has accrued between two service dates (a calendar year), counted as
/// the office's 记分 table counts them: the points of the blocking rules that blocked the doctor's
/// fee uploads and settlements (事前/事中分析 warn and are not counted). Shown to the doctor at
/// ordering time (`/v1/check`, the CDS cards) against 9 (暂停) and 12 (终止).
///
/// # Errors
/// The store failed.
pub fn doctor_points_between(
    c: &mut dyn Conn,
    doctor: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64, StoreError> {
    let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
    let sql = format!(
        "SELECT {} FROM j_hit h JOIN j_decision d ON d.id = h.decision_id
         WHERE d.doctor_code = $1 AND d.service_date >= $2 AND d.service_date <= $3
           AND h.action = 'block' AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS}",
        sum("h.points")
    );
    Ok(c.query(&sql, &[P::T(doctor), P::T(&from), P::T(&to)])?.first().map_or(0, |r| n(&r[0])))
}

/// The doctors whose blocked items weigh most in points, with their departments.
fn doctor_points(c: &mut dyn Conn, f: &Filter) -> Result<Vec<PointsRow>, StoreError> {
    let blocked = format!("h.action = 'block' AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS}");
    let mut b = Binds::default();
    let hw = f.hit_where(&mut b);
    let sql = format!(
        "SELECT d.doctor_code, COUNT(*), {}, {}
         FROM j_hit h JOIN j_decision d ON d.id = h.decision_id WHERE {hw} AND {blocked}
         GROUP BY d.doctor_code ORDER BY CASE WHEN d.doctor_code = '' THEN 1 ELSE 0 END, SUM(h.points) DESC, COUNT(*) DESC, d.doctor_code LIMIT {TOP}",
        sum("h.points"),
        sum("h.amount_fen"),
    );
    let mut rows: Vec<PointsRow> = c
        .query(&sql, &b.params())?
        .iter()
        .map(|r| PointsRow {
            doctor: t(&r[0]),
            name: String::new(),
            depts: String::new(),
            dept_names: String::new(),
            blocked_items: n(&r[1]),
            points: n(&r[2]),
            amount_fen: n(&r[3]),
        })
        .collect();
    // Each doctor's departments, in code order (one query for both engines rather than
    // `group_concat` / `string_agg`).
    let mut b = Binds::default();
    let hw = f.hit_where(&mut b);
    let sql = format!(
        "SELECT d.doctor_code, d.dept_code FROM j_hit h JOIN j_decision d ON d.id = h.decision_id
         WHERE {hw} AND {blocked} AND d.dept_code <> '' GROUP BY d.doctor_code, d.dept_code ORDER BY d.doctor_code, d.dept_code"
    );
    let pairs = c.query(&sql, &b.params())?;
    for p in &mut rows {
        let depts: Vec<String> =
            pairs.iter().filter(|r| r[0].text() == Some(p.doctor.as_str())).map(|r| t(&r[1])).collect();
        p.depts = depts.join(",");
    }
    Ok(rows)
}

/// One hit of a listed decision.
#[derive(Debug, Clone, Serialize)]
pub struct HitRow {
    pub rule_id: String,
    pub rule_name: String,
    pub action: String,
    pub severity: String,
    #[serde(serialize_with = "ser_yuan", rename = "amount")]
    pub amount_fen: i64,
    pub lines: Vec<String>,
    pub message: String,
    pub basis: String,
    pub points: i64,
}

/// A doctor's 3103 answer to a jr_id of a listed decision.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerRow {
    pub jr_id: String,
    pub rule_id: String,
    pub at: String,
    /// `1` continue, `2` modify.
    pub dspo_way: String,
    pub reason: String,
}

/// A journaled decision with its hits and answers.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    /// When it was checked (RFC 3339, local time).
    pub at: String,
    /// The service date of the claim (`yyyy-MM-dd`).
    pub service_date: String,
    pub infno: String,
    pub msgid: String,
    pub fixmedins_code: String,
    pub mdtrt_id: String,
    /// Keyed pseudonym of psn_no.
    pub psn_hash: String,
    pub dept_code: String,
    pub doctor_code: String,
    /// Names of the department and doctor (empty when unknown).
    pub dept_name: String,
    pub doctor_name: String,
    pub decision: String,
    pub ruleset: String,
    pub elapsed_us: i64,
    pub gateway_infcode: Option<i64>,
    pub hits: Vec<HitRow>,
    pub answers: Vec<AnswerRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub filter: Filter,
    pub page: u32,
    pub per_page: u32,
    /// Decisions matching the filter, all pages.
    pub total: i64,
    pub items: Vec<Entry>,
}

const ENTRY_COLS: &str =
    "d.id, d.at, d.service_date, d.infno, d.msgid, d.fixmedins_code, d.mdtrt_id, d.psn_hash, d.dept_code, d.doctor_code,
     d.decision, d.ruleset, d.elapsed_us, d.gateway_infcode";

fn entry(r: &[V]) -> Entry {
    Entry {
        id: n(&r[0]),
        at: t(&r[1]),
        service_date: t(&r[2]),
        infno: t(&r[3]),
        msgid: t(&r[4]),
        fixmedins_code: t(&r[5]),
        mdtrt_id: t(&r[6]),
        psn_hash: t(&r[7]),
        dept_code: t(&r[8]),
        doctor_code: t(&r[9]),
        dept_name: String::new(),
        doctor_name: String::new(),
        decision: t(&r[10]),
        ruleset: t(&r[11]),
        elapsed_us: n(&r[12]),
        gateway_infcode: r[13].int(),
        hits: Vec::new(),
        answers: Vec::new(),
    }
}

/// Decisions whose hits and answers one statement reads.
const FILL_CHUNK: usize = 500;

/// Reads the hits and answers of `items`, a few hundred decisions per statement.
fn fill(c: &mut dyn Conn, items: &mut [Entry]) -> Result<(), StoreError> {
    let at: std::collections::HashMap<i64, usize> = items.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    let ids: Vec<i64> = items.iter().map(|e| e.id).collect();
    for chunk in ids.chunks(FILL_CHUNK) {
        let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let ps: Vec<P<'_>> = chunk.iter().map(|id| P::I(*id)).collect();
        let hits = c.query(
            &format!(
                "SELECT decision_id, rule_id, rule_name, action, severity, amount_fen, lines, message, basis, points FROM j_hit
                 WHERE decision_id IN ({list}) ORDER BY decision_id, pos"
            ),
            &ps,
        )?;
        for r in hits {
            let Some(&i) = at.get(&n(&r[0])) else { continue };
            items[i].hits.push(HitRow {
                rule_id: t(&r[1]),
                rule_name: t(&r[2]),
                action: t(&r[3]),
                severity: t(&r[4]),
                amount_fen: n(&r[5]),
                lines: t(&r[6]).split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                message: t(&r[7]),
                basis: t(&r[8]),
                points: n(&r[9]),
            });
        }
        let answers = c.query(
            &format!(
                "SELECT j.decision_id, j.jr_id, j.rule_id, f.at, f.dspo_way, f.reason FROM j_jr j JOIN j_feedback f ON f.jr_id = j.jr_id
                 WHERE j.decision_id IN ({list}) ORDER BY f.id"
            ),
            &ps,
        )?;
        for r in answers {
            let Some(&i) = at.get(&n(&r[0])) else { continue };
            items[i].answers.push(AnswerRow {
                jr_id: t(&r[1]),
                rule_id: t(&r[2]),
                at: t(&r[3]),
                dspo_way: t(&r[4]),
                reason: t(&r[5]),
            });
        }
    }
    Ok(())
}

/// One page of decisions matching `f`, latest service date first (then newest check), each with its hits and answers.
///
/// # Errors
/// The journal cannot be read.
pub fn list(c: &mut dyn Conn, f: &Filter, p: Paging) -> Result<Listing, StoreError> {
    let mut b = Binds::default();
    let w = f.decision_where(&mut b, true);
    let total =
        c.query(&format!("SELECT COUNT(*) FROM j_decision d WHERE {w}"), &b.params())?.first().map_or(0, |r| n(&r[0]));
    let offset = u64::from(p.page.saturating_sub(1)) * u64::from(p.per_page);
    let rows = c.query(
        &format!(
            "SELECT {ENTRY_COLS} FROM j_decision d WHERE {w} ORDER BY d.service_date DESC, d.at DESC, d.id DESC LIMIT {} OFFSET {offset}",
            p.per_page
        ),
        &b.params(),
    )?;
    let mut items: Vec<Entry> = rows.iter().map(|r| entry(r)).collect();
    fill(c, &mut items)?;
    name_entries(&mut items, &names(c)?);
    Ok(Listing { filter: f.clone(), page: p.page, per_page: p.per_page, total, items })
}

/// One decision by id.
///
/// # Errors
/// The journal cannot be read.
pub fn get(c: &mut dyn Conn, id: i64) -> Result<Option<Entry>, StoreError> {
    let rows = c.query(&format!("SELECT {ENTRY_COLS} FROM j_decision d WHERE d.id = $1"), &[P::I(id)])?;
    let Some(r) = rows.first() else { return Ok(None) };
    let mut e = [entry(r)];
    fill(c, &mut e)?;
    name_entries(&mut e, &names(c)?);
    let [e] = e;
    Ok(Some(e))
}

/// Departments, doctors, and rules, each `(code, name)` (an empty name: unknown).
pub type Choices = (Vec<(String, String)>, Vec<(String, String)>, Vec<(String, String)>);

/// The codes seen in the journal, for the office's filter lists: (departments, doctors, rules
/// with names).
///
/// # Errors
/// The journal cannot be read.
pub fn choices(c: &mut dyn Conn) -> Result<Choices, StoreError> {
    let mut col =
        |sql: &str| -> Result<Vec<String>, StoreError> { Ok(c.query(sql, &[])?.iter().map(|r| t(&r[0])).collect()) };
    let depts = col("SELECT DISTINCT dept_code FROM j_decision WHERE dept_code <> '' ORDER BY dept_code LIMIT 500")?;
    let doctors =
        col("SELECT DISTINCT doctor_code FROM j_decision WHERE doctor_code <> '' ORDER BY doctor_code LIMIT 500")?;
    let names = names(c)?;
    let depts = depts
        .into_iter()
        .map(|d| {
            let name = names.dept(&d).to_owned();
            (d, name)
        })
        .collect();
    let doctors = doctors
        .into_iter()
        .map(|d| {
            let name = names.doctor(&d).to_owned();
            (d, name)
        })
        .collect();
    let rules = c
        .query("SELECT rule_id, MAX(rule_name) FROM j_hit GROUP BY rule_id ORDER BY rule_id LIMIT 500", &[])?
        .iter()
        .map(|r| (t(&r[0]), t(&r[1])))
        .collect();
    Ok((depts, doctors, rules))
}

#[cfg(test)]
mod tests;
