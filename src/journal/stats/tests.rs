use super::*;
use crate::journal::{db, Feedback, HitRecord, Journal, JrLink, Options, Record};

fn hit(rule: &str, action: &str, fen: i64, points: u32) -> HitRecord {
    HitRecord {
        rule_id: rule.into(),
        rule_name: format!("规则{rule}"),
        action: action.into(),
        severity: "critical".into(),
        amount_fen: fen,
        lines: vec!["L1".into(), "L2".into()],
        message: format!("<{rule}> 命中"),
        basis: "依据".into(),
        points,
    }
}

#[allow(clippy::too_many_arguments)]
fn rec(
    at: &str,
    infno: &str,
    dept: &str,
    doctor: &str,
    psn: &str,
    decision: &str,
    hits: Vec<HitRecord>,
    jr: Vec<JrLink>,
) -> Record {
    Record {
        // Checked two days after the service date: the figures must go by the service date.
        at: format!("{}T09:00:00+08:00", NaiveDate::parse_from_str(at, "%Y-%m-%d").unwrap() + chrono::Days::new(2)),
        service_date: NaiveDate::parse_from_str(at, "%Y-%m-%d").ok(),
        infno: infno.into(),
        msgid: format!("M-{at}-{doctor}-{decision}"),
        fixmedins_code: "H1".into(),
        fixmedins_name: String::new(),
        mdtrt_id: "V1".into(),
        psn_hash: psn.into(),
        dept_code: dept.into(),
        doctor_code: doctor.into(),
        dept_name: String::new(),
        doctor_name: String::new(),
        decision: decision.into(),
        ruleset: "t@1".into(),
        elapsed_us: 7,
        gateway_infcode: None,
        hits,
        jr,
        fallback: String::new(),
    }
}

/// The journals to run a test on: embedded, and on PostgreSQL when the test server is there.
fn journals(test: &str) -> Vec<(Journal, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vec![(Journal::open(dir.path(), 16).unwrap(), dir)];
    if let Some(store) = db::tests::pg_store(test) {
        let dir = tempfile::tempdir().unwrap();
        v.push((Journal::open_shared(dir.path(), store, Options { queue: 16, ..Options::default() }).unwrap(), dir));
    }
    v
}

/// Runs reads on the journal's store, off the async executor.
async fn read<T: Send + 'static>(
    j: &Journal,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
) -> T {
    let j = j.clone();
    tokio::task::spawn_blocking(move || j.read(f).unwrap()).await.unwrap()
}

/// Two days, two departments, three doctors: the figures below are counted by hand from this.
async fn seed(j: &Journal) {
    let day1 = "2025-06-10";
    let day2 = "2025-06-11";
    j.record(rec(day1, "2204", "内科", "D1", "p1", "pass", vec![], vec![])).await;
    j.record(rec(day1, "2204", "内科", "D1", "p1", "remind", vec![hit("R-DAYS", "remind", 1500, 0)], vec![])).await;
    j.record(rec(
        day1,
        "2204",
        "妇科",
        "D2",
        "p2",
        "block",
        vec![hit("R-SEX", "block", 6000, 3), hit("R-DAYS", "remind", 500, 0)],
        vec![],
    ))
    .await;
    // A 3101 answer that blocks: a warning before the fact, not an interception.
    let jr = vec![
        JrLink { jr_id: "JR1".into(), rule_id: "R-DAYS".into() },
        JrLink { jr_id: "JR2".into(), rule_id: "R-SEX".into() },
    ];
    j.record(rec(
        day2,
        "3101",
        "妇科",
        "D2",
        "p2",
        "block",
        vec![hit("R-DAYS", "remind", 700, 0), hit("R-SEX", "block", 6000, 3)],
        jr,
    ))
    .await;
    j.record(rec(day2, "2301", "内科", "D3", "p3", "block", vec![hit("R-MUTEX", "block", 2000, 2)], vec![])).await;
    j.record(rec(day2, "2204", "内科", "D3", "", "unchecked", vec![], vec![])).await;
    for (jr_id, way) in [("JR1", "2"), ("JR1", "1"), ("JR2", "2")] {
        j.feedback(Feedback {
            at: format!("{day2}T09:30:00+08:00"),
            jr_id: jr_id.into(),
            dspo_way: way.into(),
            reason: "理由".into(),
            outcome: "Granted".into(),
        })
        .await;
    }
    j.flush().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_count_what_was_journaled() {
    for (j, _dir) in journals("figures") {
        figures(&j).await;
    }
}

async fn figures(j: &Journal) {
    // Arrange
    seed(j).await;
    // Act
    let s = read(j, |c| stats(c, &Filter::default())).await;
    // Assert
    let t = &s.totals;
    assert_eq!((t.decisions, t.pass, t.remind, t.block, t.unchecked, t.analyses), (6, 1, 1, 3, 1, 1));
    assert_eq!(t.hits, 6);
    // Intercepted: the 2204 sex block (60.00) and the 2301 mutex block (20.00); not the 3101.
    assert_eq!((t.intercepted, t.intercepted_fen), (2, 8000));
    assert_eq!(t.reminded_fen, 1500 + 500 + 700);
    let rules: Vec<(&str, i64, i64)> = s.by_rule.iter().map(|r| (r.rule_id.as_str(), r.hits, r.points)).collect();
    assert_eq!(rules, vec![("R-DAYS", 3, 0), ("R-SEX", 2, 3), ("R-MUTEX", 1, 2)]);
    assert_eq!(s.by_rule[0].rule_name, "规则R-DAYS");
    let dept: Vec<(&str, i64, i64)> = s.by_dept.iter().map(|g| (g.key.as_str(), g.decisions, g.hits)).collect();
    assert_eq!(dept, vec![("妇科", 2, 4), ("内科", 4, 2)]);
    let days: Vec<(&str, i64, i64, i64)> =
        s.by_day.iter().map(|g| (g.key.as_str(), g.decisions, g.block, g.hits)).collect();
    assert_eq!(days, vec![("2025-06-10", 3, 1, 3), ("2025-06-11", 3, 2, 3)]);
    assert_eq!(s.top_patients[0].key, "p2");
    assert!(s.top_patients.iter().all(|p| !p.key.is_empty()), "no empty pseudonym row");
    // 3103: JR1 answered twice (the latest, continue, counts), JR2 modified.
    let fb: Vec<(&str, i64, i64, i64, i64)> =
        s.feedback.iter().map(|f| (f.rule_id.as_str(), f.prompted, f.answered, f.continued, f.modified)).collect();
    assert_eq!(fb, vec![("R-DAYS", 1, 1, 1, 0), ("R-SEX", 1, 1, 0, 1)]);
    assert_eq!(s.feedback[0].override_rate, 1.0);
    assert_eq!(s.feedback[1].acceptance_rate, 1.0);
    // 驾照式记分: D2 would lose 3 (the 2204 sex block), D3 2; the 3101 does not count.
    let pts: Vec<(&str, i64, i64, i64)> =
        s.doctor_points.iter().map(|p| (p.doctor.as_str(), p.blocked_items, p.points, p.amount_fen)).collect();
    assert_eq!(pts, vec![("D2", 1, 3, 6000), ("D3", 1, 2, 2000)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_every_figure() {
    for (j, _dir) in journals("filters") {
        seed(&j).await;
        let on = |f: Filter| read(&j, move |c| stats(c, &f));
        // By service date: the decisions about 2025-06-11 (checked on the 13th).
        let day2 = NaiveDate::from_ymd_opt(2025, 6, 11);
        let s = on(Filter { from: day2, to: day2, ..Filter::default() }).await;
        assert_eq!((s.totals.decisions, s.totals.hits), (3, 3));
        let checked = NaiveDate::from_ymd_opt(2025, 6, 13);
        let s = on(Filter { from: checked, to: checked, ..Filter::default() }).await;
        assert_eq!(s.totals.decisions, 0, "the day of the check is not the service date");
        let s = on(Filter { dept: Some("内科".into()), ..Filter::default() }).await;
        assert_eq!((s.totals.decisions, s.totals.remind, s.totals.block), (4, 1, 1));
        let s = on(Filter { rule: Some("R-SEX".into()), ..Filter::default() }).await;
        // Decisions with a R-SEX hit; hit figures count R-SEX only.
        assert_eq!((s.totals.decisions, s.totals.hits, s.totals.reminded_fen), (2, 2, 0));
        assert_eq!(s.by_rule.len(), 1);
        assert_eq!(s.feedback.len(), 1);
        let s = on(Filter { doctor: Some("D1".into()), ..Filter::default() }).await;
        assert_eq!((s.totals.decisions, s.totals.hits, s.doctor_points.len()), (2, 1, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_pages_newest_first_with_hits_and_answers() {
    for (j, _dir) in journals("listing") {
        seed(&j).await;
        let page = |f: Filter, p: Paging| read(&j, move |c| list(c, &f, p));
        let l = page(Filter::default(), Paging { page: 1, per_page: 4 }).await;
        assert_eq!((l.total, l.items.len()), (6, 4));
        assert!(l.items[0].at >= l.items[3].at);
        // Both dates are listed: the check and the service.
        assert_eq!((&l.items[0].at[..10], l.items[0].service_date.as_str()), ("2025-06-13", "2025-06-11"));
        let l2 = page(Filter::default(), Paging { page: 2, per_page: 4 }).await;
        assert_eq!(l2.items.len(), 2);
        let ids: std::collections::BTreeSet<i64> = l.items.iter().chain(&l2.items).map(|e| e.id).collect();
        assert_eq!(ids.len(), 6, "pages do not overlap");
        let blocks = page(Filter { decision: Some("block".into()), ..Filter::default() }, Paging::default()).await;
        assert_eq!(blocks.total, 3);
        let analysis = blocks.items.iter().find(|e| e.infno == "3101").unwrap().clone();
        assert_eq!(analysis.hits.len(), 2);
        assert_eq!(analysis.hits[0].rule_id, "R-DAYS", "hits in the order the rules fired");
        assert_eq!(analysis.hits[0].lines, vec!["L1", "L2"]);
        assert_eq!(analysis.answers.len(), 3);
        let id = analysis.id;
        let again = read(&j, move |c| get(c, id)).await.unwrap();
        assert_eq!(again.msgid, analysis.msgid);
        assert_eq!(again.hits.len(), 2);
        assert!(read(&j, |c| get(c, 999_999)).await.is_none());
        let (depts, doctors, rules) = read(&j, choices).await;
        assert_eq!((depts.len(), doctors.len(), rules.len()), (2, 3, 3));
    }
}

fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn query_parameters_are_checked_with_clear_messages() {
    let (f, p) =
        Filter::from_pairs(&pairs(&[("from", "2025-06-01"), ("to", "2025-06-30"), ("dept", ""), ("page", "3")]), &[])
            .unwrap();
    assert_eq!(f.from, NaiveDate::from_ymd_opt(2025, 6, 1));
    assert_eq!(f.dept, None, "an empty form field is no filter");
    assert_eq!(p, Paging { page: 3, per_page: 50 });
    assert_eq!(f.to_pairs(), vec![("from", "2025-06-01".to_owned()), ("to", "2025-06-30".to_owned())]);
    let err = |q: &[(&str, &str)]| Filter::from_pairs(&pairs(q), &[]).unwrap_err().0;
    assert!(err(&[("from", "2025-13-01")]).contains("YYYY-MM-DD"));
    assert!(err(&[("from", "2025-06-02"), ("to", "2025-06-01")]).contains("晚于"));
    assert!(err(&[("per_page", "0")]).contains("per_page"));
    assert!(err(&[("per_page", "100000")]).contains("per_page"));
    assert!(err(&[("page", "-1")]).contains("page"));
    assert!(err(&[("decision", "maybe")]).contains("decision"));
    assert!(err(&[("dept", &"x".repeat(65))]).contains("dept"));
    assert!(err(&[("psn_no", "1")]).contains("未知参数"));
    assert!(Filter::from_pairs(&pairs(&[("format", "csv")]), &["format"]).is_ok());
}

#[test]
fn yuan_has_two_decimals() {
    assert_eq!(yuan(0), "0.00");
    assert_eq!(yuan(123_456), "1234.56");
    assert_eq!(yuan(-5), "-0.05");
}

/// Not a timing assertion: prints how long the figures take over 100,000 decisions (run with
/// `--nocapture`) and checks they add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_over_a_hundred_thousand_decisions_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path(), 4096).unwrap();
    hundred_thousand_figures(&j, "SQLite").await;
    if let Some(store) = db::tests::pg_store("figures100k") {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_shared(dir.path(), store, Options { queue: 4096, ..Options::default() }).unwrap();
        hundred_thousand_figures(&j, "PostgreSQL").await;
    }
}

async fn hundred_thousand_figures(j: &Journal, engine: &str) {
    for i in 0..100_000u32 {
        let day = format!("2025-06-{:02}", 1 + i % 30);
        let dept = format!("科室{}", i % 12);
        let doctor = format!("D{}", i % 150);
        let psn = format!("p{}", i % 20_000);
        let (decision, hits) = match i % 10 {
            0 => ("block", vec![hit("R-SEX", "block", 6000, 3)]),
            1 | 2 => ("remind", vec![hit("R-DAYS", "remind", 100, 0)]),
            _ => ("pass", vec![]),
        };
        j.record(rec(&day, "2204", &dept, &doctor, &psn, decision, hits, vec![])).await;
    }
    j.flush().await;
    let t = std::time::Instant::now();
    while j.spill_pending() > 0 && t.elapsed() < std::time::Duration::from_secs(120) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, all, narrow, filtered, page, listed) = read(j, |c| {
        let t0 = std::time::Instant::now();
        let s = stats(c, &Filter::default())?;
        let all = t0.elapsed();
        let t0 = std::time::Instant::now();
        let narrow = stats(c, &Filter { dept: Some("科室3".into()), rule: Some("R-SEX".into()), ..Filter::default() })?;
        let filtered = t0.elapsed();
        let t0 = std::time::Instant::now();
        let page = list(c, &Filter::default(), Paging { page: 10, per_page: 50 })?;
        Ok((s, all, narrow, filtered, page, t0.elapsed()))
    })
    .await;
    eprintln!("{engine}: stats over 100k decisions: all {all:?}, dept+rule {filtered:?}; listing page 10: {listed:?}");
    assert_eq!((s.totals.decisions, s.totals.block, s.totals.remind, s.totals.hits), (100_000, 10_000, 20_000, 30_000));
    assert_eq!(s.totals.intercepted_fen, 10_000 * 6000);
    assert_eq!(s.by_day.len(), 30);
    assert_eq!(s.by_rule.iter().map(|r| r.hits).sum::<i64>(), 30_000);
    assert_eq!(narrow.totals.hits, narrow.totals.block);
    assert_eq!(page.items.len(), 50);
}

/// A settlement that names no department or doctor counts under its visit's (as the upload gave
/// them), names learnt from the traffic label the rows, the dictionary's win, and a row without a
/// department comes after every named one.
#[tokio::test]
async fn settlements_are_attributed_to_their_visit_and_rows_carry_names() {
    for (j, _dir) in journals("stats_names") {
        // Arrange: an upload naming its department and doctor, the visit's settlement naming
        // neither, and a message of an unknown visit naming neither.
        let mut upload =
            rec("2025-06-10", "2204", "100301", "D1", "p1", "remind", vec![hit("R-DAYS", "remind", 100, 0)], vec![]);
        (upload.mdtrt_id, upload.dept_name, upload.doctor_name) = ("V7".into(), "心血管内科".into(), "李建国".into());
        upload.fixmedins_name = "新乡市某县人民医院".into();
        let mut settle = rec("2025-06-10", "2207", "", "", "p1", "block", vec![hit("R-CAP", "block", 900, 2)], vec![]);
        settle.mdtrt_id = "V7".into();
        let mut stray = rec(
            "2025-06-10",
            "2207",
            "",
            "",
            "p2",
            "block",
            vec![hit("R-CAP", "block", 100, 2), hit("R-CAP", "block", 100, 2)],
            vec![],
        );
        stray.mdtrt_id = "V8".into();
        for r in [upload, settle, stray] {
            j.record(r).await;
        }
        j.flush().await;
        let dict = crate::journal::dictionary::Dictionary::parse("类别,编码,名称\n医生,D1,李建国主任\n").unwrap();
        let j2 = j.clone();
        tokio::task::spawn_blocking(move || j2.write_dictionary(&dict)).await.unwrap().unwrap();
        // Act
        let s = read(&j, |c| stats(c, &Filter::default())).await;
        // Assert
        let depts: Vec<(&str, &str, i64)> =
            s.by_dept.iter().map(|g| (g.key.as_str(), g.name.as_str(), g.decisions)).collect();
        assert_eq!(depts, vec![("100301", "心血管内科", 2), ("", "", 1)], "the named row first, the stray last");
        let doctors: Vec<(&str, &str)> = s.by_doctor.iter().map(|g| (g.key.as_str(), g.name.as_str())).collect();
        assert_eq!(doctors[0], ("D1", "李建国主任"), "the dictionary's name wins");
        assert_eq!(s.hospital, Hospital { code: "H1".into(), name: "新乡市某县人民医院".into() });
        assert_eq!(s.doctor_points[0].doctor, "D1");
        assert_eq!(
            (s.doctor_points[0].name.as_str(), s.doctor_points[0].dept_names.as_str()),
            ("李建国主任", "心血管内科")
        );
        assert_eq!(s.largest_blocks.len(), 2);
        assert_eq!(
            (s.largest_blocks[0].dept_name.as_str(), s.largest_blocks[0].infno.as_str()),
            ("心血管内科", "2207")
        );
        // A name learnt later from the traffic does not overwrite the dictionary's.
        let mut again = rec("2025-06-11", "2204", "100301", "D1", "p1", "pass", vec![], vec![]);
        again.doctor_name = "李医生".into();
        j.record(again).await;
        j.flush().await;
        let n = read(&j, names).await;
        assert_eq!(n.doctor("D1"), "李建国主任");
    }
}
