//! The office's figures, as plain SQL over a read connection to the journal: hits by rule,
//! department, doctor and day; amounts intercepted; doctors' answers (3103) per rule; patients by
//! hits (pseudonyms only); 驾照式记分 exposure per doctor; and the paged decision listing.
//!
//! Everything here reads; nothing renders. Callers run these off the async executor (they are
//! blocking SQLite reads).

use chrono::NaiveDate;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;

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
    /// First local date included (`at`).
    pub from: Option<NaiveDate>,
    /// Last local date included.
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

    /// `WHERE` conditions on `decisions d` (without the rule condition on hits) and their values.
    fn decision_where(&self, with_decision: bool) -> (String, Vec<Value>) {
        let mut w = vec!["1=1".to_owned()];
        let mut v: Vec<Value> = Vec::new();
        if let Some(d) = self.from {
            w.push("substr(d.at, 1, 10) >= ?".into());
            v.push(Value::Text(d.format("%Y-%m-%d").to_string()));
        }
        if let Some(d) = self.to {
            w.push("substr(d.at, 1, 10) <= ?".into());
            v.push(Value::Text(d.format("%Y-%m-%d").to_string()));
        }
        if let Some(x) = &self.dept {
            w.push("d.dept_code = ?".into());
            v.push(Value::Text(x.clone()));
        }
        if let Some(x) = &self.doctor {
            w.push("d.doctor_code = ?".into());
            v.push(Value::Text(x.clone()));
        }
        if let Some(x) = &self.rule {
            w.push("EXISTS (SELECT 1 FROM hits x WHERE x.decision_id = d.id AND x.rule_id = ?)".into());
            v.push(Value::Text(x.clone()));
        }
        if with_decision {
            if let Some(x) = &self.decision {
                w.push("d.decision = ?".into());
                v.push(Value::Text(x.clone()));
            }
        }
        (w.join(" AND "), v)
    }

    /// Conditions on `hits h JOIN decisions d`: the decision filter plus the rule itself.
    fn hit_where(&self) -> (String, Vec<Value>) {
        let (mut w, mut v) = self.decision_where(false);
        if let Some(x) = &self.rule {
            w.push_str(" AND h.rule_id = ?");
            v.push(Value::Text(x.clone()));
        }
        (w, v)
    }

    /// Hits per decision (restricted to the rule when one is set), as a subquery to join.
    fn hit_counts(&self) -> (String, Vec<Value>) {
        match &self.rule {
            Some(r) => (
                "SELECT decision_id, count(*) AS n, sum(amount_fen) AS amt FROM hits WHERE rule_id = ? GROUP BY decision_id"
                    .into(),
                vec![Value::Text(r.clone())],
            ),
            None => ("SELECT decision_id, count(*) AS n, sum(amount_fen) AS amt FROM hits GROUP BY decision_id".into(), vec![]),
        }
    }
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
    pub depts: String,
    /// Block hits in blocked claim transactions.
    pub blocked_items: i64,
    pub points: i64,
    #[serde(serialize_with = "ser_yuan", rename = "amount")]
    pub amount_fen: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub filter: Filter,
    pub totals: Totals,
    pub by_rule: Vec<RuleRow>,
    pub by_dept: Vec<GroupRow>,
    pub by_doctor: Vec<GroupRow>,
    /// Every day with decisions, oldest first.
    pub by_day: Vec<GroupRow>,
    pub feedback: Vec<FeedbackRow>,
    /// Keys are keyed pseudonyms of psn_no, never the number.
    pub top_patients: Vec<GroupRow>,
    pub doctor_points: Vec<PointsRow>,
}

/// Opens the journal for reading (it must exist).
///
/// # Errors
/// The file is missing or not a journal.
pub fn open_read(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    // Fails here, not in the middle of a page, when the file is not a journal.
    c.query_row("SELECT count(*) FROM decisions", [], |r| r.get::<_, i64>(0))?;
    Ok(c)
}

fn group(
    c: &Connection,
    f: &Filter,
    key: &str,
    extra: &str,
    order: &str,
    limit: Option<u32>,
) -> rusqlite::Result<Vec<GroupRow>> {
    let (hc, mut v) = f.hit_counts();
    let (w, wv) = f.decision_where(false);
    v.extend(wv);
    let lim = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let sql = format!(
        "SELECT {key} AS k, count(*), sum(d.decision = 'remind'), sum(d.decision = 'block'), coalesce(sum(hc.n), 0), coalesce(sum(hc.amt), 0)
         FROM decisions d LEFT JOIN ({hc}) hc ON hc.decision_id = d.id
         WHERE {w}{extra} GROUP BY k ORDER BY {order}{lim}"
    );
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(v), |r| {
        Ok(GroupRow {
            key: r.get(0)?,
            decisions: r.get(1)?,
            remind: r.get(2)?,
            block: r.get(3)?,
            hits: r.get(4)?,
            amount_fen: r.get(5)?,
        })
    })?;
    rows.collect()
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
pub fn stats(c: &Connection, f: &Filter) -> rusqlite::Result<Stats> {
    let (dw, dv) = f.decision_where(false);
    let (hw, hv) = f.hit_where();

    let mut totals = c.query_row(
        &format!(
            "SELECT count(*), coalesce(sum(decision = 'pass'), 0), coalesce(sum(decision = 'remind'), 0),
                    coalesce(sum(decision = 'block'), 0), coalesce(sum(decision = 'unchecked'), 0),
                    coalesce(sum(infno IN {ANALYSIS}), 0), coalesce(sum(decision = 'block' AND infno NOT IN {ANALYSIS}), 0)
             FROM decisions d WHERE {dw}"
        ),
        params_from_iter(dv.clone()),
        |r| {
            Ok(Totals {
                decisions: r.get(0)?,
                pass: r.get(1)?,
                remind: r.get(2)?,
                block: r.get(3)?,
                unchecked: r.get(4)?,
                analyses: r.get(5)?,
                intercepted: r.get(6)?,
                ..Totals::default()
            })
        },
    )?;
    let (hits, intercepted, reminded): (i64, i64, i64) = c.query_row(
        &format!(
            "SELECT count(*),
                    coalesce(sum(CASE WHEN h.action = 'block' AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS} THEN h.amount_fen END), 0),
                    coalesce(sum(CASE WHEN h.action = 'remind' THEN h.amount_fen END), 0)
             FROM hits h JOIN decisions d ON d.id = h.decision_id WHERE {hw}"
        ),
        params_from_iter(hv.clone()),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    totals.hits = hits;
    totals.intercepted_fen = intercepted;
    totals.reminded_fen = reminded;

    let by_rule = {
        let mut st = c.prepare(&format!(
            "SELECT h.rule_id, max(h.rule_name), count(*), sum(h.action = 'block'), sum(h.action = 'remind'),
                    sum(h.amount_fen), max(h.points)
             FROM hits h JOIN decisions d ON d.id = h.decision_id WHERE {hw}
             GROUP BY h.rule_id ORDER BY count(*) DESC, h.rule_id"
        ))?;
        let rows = st.query_map(params_from_iter(hv.clone()), |r| {
            Ok(RuleRow {
                rule_id: r.get(0)?,
                rule_name: r.get(1)?,
                hits: r.get(2)?,
                block: r.get(3)?,
                remind: r.get(4)?,
                amount_fen: r.get(5)?,
                points: r.get(6)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };

    let top = "coalesce(sum(hc.n), 0) DESC, count(*) DESC, k";
    let by_dept = group(c, f, "d.dept_code", "", top, Some(TOP))?;
    let by_doctor = group(c, f, "d.doctor_code", "", top, Some(TOP))?;
    let by_day = group(c, f, "substr(d.at, 1, 10)", "", "k", None)?;
    let top_patients = group(
        c,
        f,
        "d.psn_hash",
        " AND d.psn_hash <> '' AND hc.n > 0",
        "coalesce(sum(hc.n), 0) DESC, count(*) DESC, k",
        Some(10),
    )?;

    let feedback = {
        let (mut jw, mut jv) = f.decision_where(false);
        if let Some(r) = &f.rule {
            jw.push_str(" AND j.rule_id = ?");
            jv.push(Value::Text(r.clone()));
        }
        let mut st = c.prepare(&format!(
            "SELECT j.rule_id,
                    coalesce((SELECT h.rule_name FROM hits h WHERE h.decision_id = j.decision_id AND h.rule_id = j.rule_id LIMIT 1), ''),
                    count(*), count(fb.id), coalesce(sum(fb.dspo_way = '1'), 0), coalesce(sum(fb.dspo_way = '2'), 0)
             FROM jr j JOIN decisions d ON d.id = j.decision_id
             LEFT JOIN feedback fb ON fb.id = (SELECT max(id) FROM feedback WHERE jr_id = j.jr_id)
             WHERE {jw} GROUP BY j.rule_id ORDER BY count(*) DESC, j.rule_id"
        ))?;
        let rows = st.query_map(params_from_iter(jv), |r| {
            let (answered, continued, modified): (i64, i64, i64) = (r.get(3)?, r.get(4)?, r.get(5)?);
            Ok(FeedbackRow {
                rule_id: r.get(0)?,
                rule_name: r.get(1)?,
                prompted: r.get(2)?,
                answered,
                continued,
                modified,
                override_rate: rate(continued, answered),
                acceptance_rate: rate(modified, answered),
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };

    let doctor_points = {
        let mut st = c.prepare(&format!(
            "SELECT d.doctor_code, group_concat(DISTINCT d.dept_code), count(*), sum(h.points), sum(h.amount_fen)
             FROM hits h JOIN decisions d ON d.id = h.decision_id
             WHERE {hw} AND h.action = 'block' AND d.decision = 'block' AND d.infno NOT IN {ANALYSIS}
             GROUP BY d.doctor_code ORDER BY sum(h.points) DESC, count(*) DESC, d.doctor_code LIMIT {TOP}"
        ))?;
        let rows = st.query_map(params_from_iter(hv), |r| {
            Ok(PointsRow {
                doctor: r.get(0)?,
                depts: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                blocked_items: r.get(2)?,
                points: r.get(3)?,
                amount_fen: r.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };

    Ok(Stats { filter: f.clone(), totals, by_rule, by_dept, by_doctor, by_day, feedback, top_patients, doctor_points })
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
    pub at: String,
    pub infno: String,
    pub msgid: String,
    pub fixmedins_code: String,
    pub mdtrt_id: String,
    /// Keyed pseudonym of psn_no.
    pub psn_hash: String,
    pub dept_code: String,
    pub doctor_code: String,
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
    "d.id, d.at, d.infno, d.msgid, d.fixmedins_code, d.mdtrt_id, d.psn_hash, d.dept_code, d.doctor_code,
     d.decision, d.ruleset, d.elapsed_us, d.gateway_infcode";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        at: r.get(1)?,
        infno: r.get(2)?,
        msgid: r.get(3)?,
        fixmedins_code: r.get(4)?,
        mdtrt_id: r.get(5)?,
        psn_hash: r.get(6)?,
        dept_code: r.get(7)?,
        doctor_code: r.get(8)?,
        decision: r.get(9)?,
        ruleset: r.get(10)?,
        elapsed_us: r.get(11)?,
        gateway_infcode: r.get(12)?,
        hits: Vec::new(),
        answers: Vec::new(),
    })
}

fn fill(c: &Connection, e: &mut Entry) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "SELECT rule_id, rule_name, action, severity, amount_fen, lines, message, basis, points FROM hits
         WHERE decision_id = ?1 ORDER BY rowid",
    )?;
    e.hits = st
        .query_map([e.id], |r| {
            let lines: String = r.get(5)?;
            Ok(HitRow {
                rule_id: r.get(0)?,
                rule_name: r.get(1)?,
                action: r.get(2)?,
                severity: r.get(3)?,
                amount_fen: r.get(4)?,
                lines: lines.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                message: r.get(6)?,
                basis: r.get(7)?,
                points: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = c.prepare_cached(
        "SELECT j.jr_id, j.rule_id, f.at, f.dspo_way, f.reason FROM jr j JOIN feedback f ON f.jr_id = j.jr_id
         WHERE j.decision_id = ?1 ORDER BY f.id",
    )?;
    e.answers = st
        .query_map([e.id], |r| {
            Ok(AnswerRow {
                jr_id: r.get(0)?,
                rule_id: r.get(1)?,
                at: r.get(2)?,
                dspo_way: r.get(3)?,
                reason: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}

/// One page of decisions matching `f`, newest first, each with its hits and answers.
///
/// # Errors
/// The journal cannot be read.
pub fn list(c: &Connection, f: &Filter, p: Paging) -> rusqlite::Result<Listing> {
    let (w, v) = f.decision_where(true);
    let total: i64 =
        c.query_row(&format!("SELECT count(*) FROM decisions d WHERE {w}"), params_from_iter(v.clone()), |r| r.get(0))?;
    let offset = u64::from(p.page.saturating_sub(1)) * u64::from(p.per_page);
    let mut st = c.prepare(&format!(
        "SELECT {ENTRY_COLS} FROM decisions d WHERE {w} ORDER BY d.at DESC, d.id DESC LIMIT {} OFFSET {offset}",
        p.per_page
    ))?;
    let mut items = st.query_map(params_from_iter(v), entry)?.collect::<rusqlite::Result<Vec<_>>>()?;
    for e in &mut items {
        fill(c, e)?;
    }
    Ok(Listing { filter: f.clone(), page: p.page, per_page: p.per_page, total, items })
}

/// One decision by id.
///
/// # Errors
/// The journal cannot be read.
pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Entry>> {
    let mut st = c.prepare(&format!("SELECT {ENTRY_COLS} FROM decisions d WHERE d.id = ?1"))?;
    let mut rows = st.query_map([id], entry)?;
    match rows.next() {
        Some(e) => {
            let mut e = e?;
            fill(c, &mut e)?;
            Ok(Some(e))
        }
        None => Ok(None),
    }
}

/// Departments, doctors, and rules with their names.
pub type Choices = (Vec<String>, Vec<String>, Vec<(String, String)>);

/// The codes seen in the journal, for the office's filter lists: (departments, doctors, rules
/// with names).
///
/// # Errors
/// The journal cannot be read.
pub fn choices(c: &Connection) -> rusqlite::Result<Choices> {
    let col = |sql: &str| -> rusqlite::Result<Vec<String>> { c.prepare(sql)?.query_map([], |r| r.get(0))?.collect() };
    let depts = col("SELECT DISTINCT dept_code FROM decisions WHERE dept_code <> '' ORDER BY 1 LIMIT 500")?;
    let doctors = col("SELECT DISTINCT doctor_code FROM decisions WHERE doctor_code <> '' ORDER BY 1 LIMIT 500")?;
    let rules = c
        .prepare("SELECT rule_id, max(rule_name) FROM hits GROUP BY rule_id ORDER BY rule_id LIMIT 500")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((depts, doctors, rules))
}

#[cfg(test)]
mod tests;
