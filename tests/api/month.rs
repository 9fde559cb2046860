//! A generated month of a county hospital's traffic sent through the proxy as the HIS would send
//! it (`gen::month`, answered by the simulated gateway), then read as the 医保办 reads it: the
//! `/office` page and the monthly report, both rendered in real headless chromium (the report also
//! printed to PDF). Names must be visible, the summary present, no unnamed row above a named one,
//! and no inpatient settlement blocked as 重复住院 for want of the recorded `mdtrt_id`s.

use crate::helpers::{browser, chromium_output, login_page, root, spawn_app_with, Options, TestApp};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "secret-token";
const FROM: &str = "2025-11-01";
const TO: &str = "2025-11-30";

/// Sends every request of a generated month through the proxy, in order; returns how many.
async fn send_month(app: &TestApp, seed: u64, patients: usize, days: u32) -> usize {
    let mut requests = Vec::new();
    claimgate::gen::month(seed, patients, days, &mut |v| requests.push(v["request"].clone()));
    for req in &requests {
        let r = app.post_raw(serde_json::to_vec(req).unwrap(), &[]).await;
        assert!(r.status < 500, "{} {}", r.status, r.json);
    }
    app.state.journal.flush().await;
    requests.len()
}

async fn month_app() -> TestApp {
    let app = spawn_app_with(Options {
        packs: vec!["national-baseline", "examples/xinxiang-2025"],
        // The generated hospital's 医保目录对照 names its items (fee uploads carry codes only).
        data_files: vec![("catalogue.csv", claimgate::gen::catalogue_csv().into_bytes())],
        tweak: Box::new(|c| {
            // A debug build on a busy machine must not turn claims into budget fallbacks here.
            c.check_budget_ms = 10_000;
            c.item_catalogue = Some(c.data.join("catalogue.csv"));
        }),
        ..Options::default()
    })
    .await;
    send_month(&app, 21, 150, 30).await;
    app
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// What headless chromium printed for `url` (see [`chromium_output`]).
async fn chromium(profile: &Path, extra: &[String], url: &str) -> String {
    String::from_utf8_lossy(&chromium_output(profile, extra, url).await.stdout).into_owned()
}

/// The table rows of the section `id` in a rendered DOM, each as its cells' text.
fn rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let Some(start) = dom.find(&format!(" id=\"{id}\"")) else { return Vec::new() };
    let section = &dom[start..];
    let section = &section[..section.find("</section>").unwrap_or(section.len())];
    let body = section.split("<tbody>").nth(1).unwrap_or("");
    body.split("<tr")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| {
                    let inner = &td[td.find('>').map_or(0, |i| i + 1)..];
                    // The cell's text without its tags.
                    let mut text = String::new();
                    let mut in_tag = false;
                    for c in inner[..inner.find("</td>").unwrap_or(inner.len())].chars() {
                        match c {
                            '<' => in_tag = true,
                            '>' => in_tag = false,
                            c if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text
                })
                .collect()
        })
        .collect()
}

/// In a ranking, every row naming no department or doctor comes after every named one.
fn unnamed_rows_last(rows: &[Vec<String>]) {
    let first_unnamed = rows.iter().position(|r| r[0].starts_with("未归属"));
    if let Some(i) = first_unnamed {
        assert!(rows[i..].iter().all(|r| r[0].starts_with("未归属")), "an unnamed row above a named one: {rows:?}");
    }
}

#[actix_web::test]
async fn a_generated_month_through_the_proxy_blocks_no_inpatient_settlement_as_a_repeated_stay() {
    // Arrange, Act
    let app = month_app().await;
    // Assert: the stays were settled; none of their messages met a stay that never was.
    let count = |sql: &'static str| {
        let app = &app;
        async move { app.journal_rows(sql, &[]).await[0][0].int().unwrap() }
    };
    let settlements = count("SELECT COUNT(*) FROM j_decision WHERE infno = '2304'").await;
    let blocked = count("SELECT COUNT(*) FROM j_decision WHERE infno = '2304' AND decision = 'block'").await;
    let settled = count("SELECT COUNT(*) FROM j_decision WHERE infno = '2304' AND gateway_infcode = 0").await;
    assert!(settlements > 0 && settled > 0, "the month has inpatient settlements");
    assert_eq!(settled + blocked, settlements, "every settlement not blocked went through");
    let overlap = get_json(&app, "/admin/v1/journal?rule=HIS-OVERLAP-001").await;
    assert_eq!(overlap["total"], 0, "重复住院 on a month whose stays do not overlap: {}", overlap["items"][0]);
    let refused = app.journal_rows("SELECT COUNT(*) FROM j_decision WHERE gateway_infcode <> 0", &[]).await;
    assert_eq!(refused[0][0].int(), Some(0), "the gateway knew every visit the stream names");
}

#[actix_web::test]
async fn the_office_and_the_report_of_a_generated_month_name_departments_and_doctors() {
    // Arrange
    let app = month_app().await;
    // Act: the figures, the page, the report.
    let s = get_json(&app, &format!("/admin/v1/stats?from={FROM}&to={TO}")).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["report", "--from", FROM, "--to", TO, "--data"])
        .arg(app.data.path())
        .arg("-o")
        .arg(&report)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Assert: the figures name the hospital, departments and doctors; settlements count under
    // their visit's department, so no unnamed row leads either ranking.
    assert_eq!(s["hospital"]["name"], "新乡市某县人民医院");
    for key in ["by_dept", "by_doctor"] {
        let rows = s[key].as_array().unwrap();
        assert!(!rows.is_empty());
        assert_ne!(rows[0]["key"], "", "{key} led by an unnamed row: {}", rows[0]);
        assert_ne!(rows[0]["name"], "", "{key}: the leading row named: {}", rows[0]);
        let unnamed = rows.iter().position(|r| r["key"] == "").unwrap_or(rows.len());
        assert!(rows[unnamed..].iter().all(|r| r["key"] == ""), "{key}: unnamed rows last");
    }
    let settlements = app
        .journal_rows("SELECT COUNT(*) FROM j_decision WHERE infno IN ('2207', '2304') AND dept_code = ''", &[])
        .await;
    assert_eq!(settlements[0][0].int(), Some(0), "every settlement attributed to its visit's department");
    let html = std::fs::read_to_string(&report).unwrap();
    // Every hit the office and the report show names its items as the hospital's catalogue does,
    // none by a bare code in 【…】.
    let bare = regex::Regex::new(r"【[A-Z0-9]{15,}】").unwrap();
    let messages = app.journal_rows("SELECT message FROM j_hit", &[]).await;
    assert!(messages.len() > 100, "the month has hits: {}", messages.len());
    let coded: Vec<String> = messages.iter().map(|r| r[0].string()).filter(|m| bare.is_match(m)).take(3).collect();
    assert!(coded.is_empty(), "items shown by their codes: {coded:?}");
    assert!(html.contains("id=\"summary\"") && html.contains("新乡市某县人民医院 医保智能审核月度报告"));
    if !browser("the chromium half of the_office_and_the_report_of_a_generated_month_name_departments_and_doctors") {
        return;
    }
    // The office page, logged in through the form, as the browser renders it.
    let login = login_page(dir.path(), &app);
    let office = chromium(&dir.path().join("p1"), &["--dump-dom".into()], &format!("file://{}", login.display())).await;
    assert!(!office.contains("id=\"login\""), "chromium did not get past the login");
    let depts = rows(&office, "by-dept");
    let names: Vec<&str> = claimgate::gen::DEPTS.iter().map(|d| d.1).collect();
    assert!(names.iter().any(|n| depts[0][0].starts_with(&format!("{n}（"))), "{:?}", depts[0]);
    unnamed_rows_last(&depts);
    let doctors = rows(&office, "by-doctor");
    assert!(!doctors[0][0].starts_with("未归属") && doctors[0][0].contains("（D4107000"), "{:?}", doctors[0]);
    unnamed_rows_last(&doctors);
    assert!(office.contains("<option value=\"100301\">心血管内科（100301）</option>"), "the filter lists names");
    // The report as the browser renders it, and printed to PDF.
    let url = format!("file://{}", report.display());
    let dom = chromium(&dir.path().join("p2"), &["--dump-dom".into()], &url).await;
    assert!(dom.contains("id=\"hospital\">新乡市某县人民医院<"), "the hospital");
    assert!(dom.contains("2025年11月1日至2025年11月30日"), "the period");
    let summary = dom.split("<section class=\"summary\" id=\"summary\">").nth(1).expect("the summary");
    let summary = &summary[..summary.find("</section>").unwrap()];
    assert!(
        summary.contains("拦截金额") && summary.contains("命中最多的规则") && summary.contains("上期"),
        "{summary}"
    );
    unnamed_rows_last(&rows(&dom, "by-dept"));
    unnamed_rows_last(&rows(&dom, "by-doctor"));
    let largest = rows(&dom, "largest");
    assert!(!largest.is_empty() && largest[0][2].contains("（"), "appendix rows name the department: {largest:?}");
    assert!(!rows(&dom, "exposure").is_empty(), "记分 exposure");
    let pdf = dir.path().join("report.pdf");
    chromium(
        &dir.path().join("p3"),
        &[format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".into()],
        &url,
    )
    .await;
    let bytes = std::fs::read(&pdf).expect("chromium printed the report");
    assert!(bytes.starts_with(b"%PDF"), "a PDF");
    let count = |pat: &[u8]| bytes.windows(pat.len()).filter(|w| *w == pat).count();
    let pages = count(b"/Type /Page") - count(b"/Type /Pages");
    assert!(pages >= 2, "the report prints on several A4 pages (the appendix on its own): {pages}");
}
