use crate::helpers::root;
use std::process::Command;

fn claimgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_claimgate")).args(args).current_dir(root()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `claimgate check` of an outpatient upload after the 1101, 2201 and 2203 context exchanges.
fn check_after_context(upload: &str) -> (i32, String, String) {
    let f = "tests/fixtures/outpatient/";
    let files =
        ["01-1101-exchange.json", "02-2201-exchange.json", "03-2203-request.json", upload].map(|x| format!("{f}{x}"));
    let mut args = vec!["check", "--rules", "rulesets/national-baseline"];
    args.extend(files.iter().map(String::as_str));
    claimgate(&args)
}

#[test]
fn check_with_context_blocks_with_one_hit_per_problem_and_exits_3() {
    let (code, out, err) = check_after_context("04-2204-violations.json");
    assert_eq!(code, 3, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits: Vec<(String, Vec<String>)> = d["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["rule_id"].as_str().unwrap().to_owned(),
                h["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(
        hits,
        vec![
            ("GZ10000102012000-004".to_owned(), vec!["MZ202509150004".to_owned()]),
            ("GZ10000302004000".to_owned(), vec!["MZ202509150002".to_owned()]),
            ("CG-DAYS-001".to_owned(), vec!["MZ202509150005".to_owned()]),
        ]
    );
    assert_eq!(d["decision"], "block");
    assert!(d.get("unchecked").is_none());
}

#[test]
fn the_same_orders_as_one_3101_give_the_same_rule_ids() {
    let (code, out, _) = claimgate(&[
        "check",
        "--rules",
        "rulesets/national-baseline",
        "tests/fixtures/outpatient/3101-same-orders.json",
    ]);
    assert_eq!(code, 3);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut ids: Vec<&str> = d["hits"].as_array().unwrap().iter().map(|h| h["rule_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec!["CG-DAYS-001", "GZ10000102012000-004", "GZ10000302004000"]);
}

#[test]
fn the_upload_alone_names_its_unchecked_lines_and_facts() {
    let (_, out, _) = claimgate(&[
        "check",
        "--rules",
        "rulesets/national-baseline",
        "tests/fixtures/outpatient/04-2204-violations.json",
    ]);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    let u = d["unchecked"].as_array().unwrap();
    let gend = u.iter().find(|x| x["fact"] == "gend").unwrap();
    assert_eq!(gend["lines"], serde_json::json!(["MZ202509150002"]));
    assert!(u.iter().any(|x| x["fact"] == "med_type"));
}

#[test]
fn bad_input_exits_2_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(&p, r#"{"infno":"2204","input":{"feedetail":[{"feedetl_sn":"1","cnt":[1]}]}}"#).unwrap();
    let (code, _, err) = claimgate(&["check", "--rules", "rulesets/national-baseline", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("input.feedetail[0].cnt"), "{err}");
    std::fs::write(&p, "not json").unwrap();
    assert_eq!(claimgate(&["check", "--rules", "rulesets/national-baseline", p.to_str().unwrap()]).0, 2);
}

#[test]
fn a_clean_upload_exits_0() {
    let (code, out, err) = check_after_context("05-2204-clean.json");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"decision\": \"pass\""));
}

#[test]
fn the_demo_runs_and_shows_pass_remind_and_block() {
    let (code, out, err) = claimgate(&["demo"]);
    assert_eq!(code, 0, "{err}");
    for want in ["通过", "提醒", "拦截", "GZ10000302004000", "被拦截的交易未发往医保网关"] {
        assert!(out.contains(want), "demo output lacks {want}:\n{out}");
    }
    // Items are named by the hospital's catalogue (a fee upload carries codes only), never shown
    // as a bare national code in 【…】.
    assert!(out.contains("【硝苯地平控释片】开药12天"), "the drug is named:\n{out}");
    let bare = regex::Regex::new(r"【[A-Z0-9]{15,}】").unwrap();
    assert!(!bare.is_match(&out), "an item shown by its code:\n{out}");
}

/// The display columns (CJK = 2) at which the demo table's header cells start.
fn column_starts(header: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let (mut col, mut prev_space) = (0, true);
    for c in header.chars() {
        if c != ' ' && prev_space {
            starts.push(col);
        }
        prev_space = c == ' ';
        col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    }
    starts
}

/// Whether a cell of `line` starts at display column `at`: a character boundary there, a space before.
fn starts_a_cell_at(line: &str, at: usize) -> bool {
    let mut col = 0;
    let mut prev = ' ';
    for c in line.chars() {
        if col == at {
            return prev == ' ' && c != ' ';
        }
        if col > at {
            return false;
        }
        col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        prev = c;
    }
    false
}

fn journal_decisions(dir: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(dir.join("journal.sqlite")).unwrap();
    c.query_row("SELECT COUNT(*) FROM j_decision", [], |r| r.get(0)).unwrap()
}

#[test]
fn the_demo_run_twice_into_one_folder_journals_the_day_once_and_prints_the_same_aligned_table() {
    // Arrange
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    // Act
    let (code1, out1, err1) = claimgate(&["demo", "--data", d]);
    assert_eq!(code1, 0, "{err1}");
    let first = journal_decisions(&dir);
    let (code2, out2, err2) = claimgate(&["demo", "--data", d]);
    assert_eq!(code2, 0, "{err2}");
    // Assert: the same day, journaled once, told the same way.
    assert!(first > 0);
    assert_eq!(journal_decisions(&dir), first, "a second run does not double the journal");
    assert_eq!(out1, out2);
    assert!(out1.contains(&format!("claimgate serve --data {d}")), "{out1}");
    // Every row's cells start where the header's do (CJK characters are two columns wide).
    let lines: Vec<&str> = out1.lines().skip_while(|l| !l.trim_start().starts_with("# ")).collect();
    let starts = column_starts(lines[0]);
    assert_eq!(starts.len(), 6, "{}", lines[0]);
    let rows: Vec<&str> = lines[1..].iter().copied().take_while(|l| !l.is_empty()).collect();
    assert!(rows.len() > 10, "{out1}");
    for row in rows {
        // A row without a 说明 ends after its 结果.
        let row_width = unicode_width::UnicodeWidthStr::width(row);
        for &at in starts[1..].iter().filter(|&&at| at < row_width) {
            assert!(starts_a_cell_at(row, at), "column at {at} misaligned in {row:?}\n{out1}");
        }
    }
    // No address of a server that has stopped: the only URL is the one `serve` would listen on.
    for (i, _) in out1.match_indices("http://") {
        assert!(out1[i..].starts_with("http://127.0.0.1:8080/office"), "{}", &out1[i..]);
    }
}

#[test]
fn the_demo_leaves_nothing_in_the_working_directory_and_refuses_a_folder_it_did_not_make() {
    // Arrange
    let cwd = tempfile::tempdir().unwrap();
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("journal.sqlite"), "someone else's").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_claimgate"))
            .args(args)
            .arg("--rules")
            .arg(root().join("rulesets"))
            .current_dir(cwd.path())
            .output()
            .unwrap()
    };
    // Act
    let default = run(&["demo"]);
    let refused = run(&["demo", "--data", foreign.path().to_str().unwrap()]);
    // Assert: the default store was a temporary folder, gone with the demo, and said so.
    assert!(default.status.success(), "{}", String::from_utf8_lossy(&default.stderr));
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "the demo wrote into its working directory");
    assert!(String::from_utf8_lossy(&default.stdout).contains("演示结束时已删除"));
    // A folder with files and no demo marker is left alone, with an error line.
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not made by `claimgate demo`") && err.ends_with('\n'), "{err:?}");
    assert_eq!(std::fs::read_to_string(foreign.path().join("journal.sqlite")).unwrap(), "someone else's");
}

#[test]
fn the_example_config_is_valid() {
    struct NoEnv;
    impl claimgate::config::Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    let c =
        claimgate::config::Config::load(Some(&root().join("deploy/claimgate.example.yaml")), |_| {}, &NoEnv).unwrap();
    assert_eq!(c.tier(), Some(2));
    assert!(c.upstream.is_some());
}

#[test]
fn gen_traffic_then_replay_prints_the_impact_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("week.jsonl");
    let f = file.to_str().unwrap();
    let (code, _, err) = claimgate(&["gen-traffic", "--seed", "3", "--patients", "200", "--days", "5", "-o", f]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = claimgate(&[
        "replay",
        "--rules",
        "rulesets/national-baseline",
        "--rules",
        "rulesets/examples/xinxiang-2025",
        "--format",
        "json",
        f,
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["bad_lines"], 0, "{r}");
    assert!(r["checked"].as_u64().unwrap() > 100);
    let cap = r["rules"].as_array().unwrap().iter().find(|x| x["rule_id"] == "DAILY-CAP-390").expect("cap row");
    assert!(cap["hits"].as_u64().unwrap() >= cap["patients"].as_u64().unwrap());
    let (code, table, _) = claimgate(&[
        "replay",
        "--rules",
        "rulesets/national-baseline",
        "--rules",
        "rulesets/examples/xinxiang-2025",
        f,
    ]);
    assert_eq!(code, 0);
    assert!(table.contains("仅此规则患者") && table.contains("DAILY-CAP-390"), "{table}");
    let (code, _, err) = claimgate(&["replay", "--rules", "rulesets/national-baseline", "/nonexistent.jsonl"]);
    assert_eq!(code, 2, "{err}");
}

/// `replay` on a generated month: every line is accounted for once (unreadable, relayed or checked),
/// every checked message once by outcome, visits beside messages, and each rule's messages and
/// visits bound the blocked totals the header gives.
#[test]
fn replay_of_a_generated_month_gives_totals_that_reconcile() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("month.jsonl");
    let f = file.to_str().unwrap();
    let (code, _, err) = claimgate(&["gen-traffic", "--seed", "5", "--patients", "400", "--days", "30", "-o", f]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&file).unwrap().lines().count() as u64;
    // Act
    let rules = ["replay", "--rules", "rulesets/national-baseline", "--rules", "rulesets/examples/xinxiang-2025"];
    let (code, out, err) = claimgate(&[&rules[..], &["--format", "json", f]].concat());
    let (tcode, table, _) = claimgate(&[&rules[..], &[f]].concat());
    // Assert
    assert_eq!((code, tcode), (0, 0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert_eq!(n("lines"), written);
    assert_eq!(n("bad_lines") + n("relayed") + n("checked"), n("lines"), "every line once: {r}");
    assert_eq!(n("passed") + n("reminded") + n("blocked"), n("checked"), "every checked message once");
    assert!(n("blocked") > 0 && n("visits") > 0 && n("visits") <= n("checked"));
    assert!(n("visits_blocked") + n("visits_reminded") <= n("visits"));
    assert!(n("visits_blocked") <= n("blocked"), "a blocked visit has a blocked message");
    let blocking: Vec<&serde_json::Value> =
        r["rules"].as_array().unwrap().iter().filter(|x| x["action"] == "block").collect();
    let m = |x: &serde_json::Value, k: &str| x[k].as_u64().unwrap();
    let (sum_messages, max_messages) =
        blocking.iter().fold((0, 0), |(s, mx), x| (s + m(x, "messages"), mx.max(m(x, "messages"))));
    let (sum_visits, max_visits) =
        blocking.iter().fold((0, 0), |(s, mx), x| (s + m(x, "visits"), mx.max(m(x, "visits"))));
    assert!(
        max_messages <= n("blocked") && n("blocked") <= sum_messages,
        "{max_messages} ≤ {} ≤ {sum_messages}",
        n("blocked")
    );
    assert!(max_visits <= n("visits_blocked") && n("visits_blocked") <= sum_visits);
    for x in r["rules"].as_array().unwrap() {
        assert!(m(x, "visits") <= m(x, "messages") && m(x, "patients") <= m(x, "visits"), "{x}");
    }
    // The table shows both counts and says how they relate.
    let blocked = format!("拦截 {}", n("blocked"));
    assert!(table.contains(&blocked) && table.contains("就诊") && table.contains("口径"), "{table}");
    assert!(
        table.contains(&format!("= {} 条", n("lines"))) && table.contains(&format!("= {} 条", n("checked"))),
        "{table}"
    );
}

/// A file with nothing to replay (prose, or empty) is an error: exit 2 with the count and reasons.
#[test]
fn replay_of_a_file_with_no_readable_line_exits_non_zero() {
    let (code, out, err) = claimgate(&["replay", "--rules", "rulesets/national-baseline", "README.md"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("nothing to replay") && err.contains("unreadable") && err.ends_with('\n'), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (code, _, err) = claimgate(&["replay", "--rules", "rulesets/national-baseline", empty.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn serve_refuses_a_rules_folder_that_does_not_exist_and_a_start_with_no_pack_that_compiles() {
    // Arrange: a data folder of its own, and a pack folder whose only pack does not compile.
    let data = tempfile::tempdir().unwrap();
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("manifest.yaml"), "name: broken\nversion: \"1\"\n").unwrap();
    std::fs::create_dir(broken.path().join("rules")).unwrap();
    std::fs::write(broken.path().join("rules/r.yaml"), "rules:\n  - id: X\n    kind: no_such_kind\n").unwrap();
    let d = data.path().to_str().unwrap();
    // Act
    let (missing, _, missing_err) =
        claimgate(&["serve", "--listen", "127.0.0.1:0", "--data", d, "--rules", "/nonexistent-rules"]);
    let (bad, _, bad_err) =
        claimgate(&["serve", "--listen", "127.0.0.1:0", "--data", d, "--rules", broken.path().to_str().unwrap()]);
    // Assert: both exit non-zero with the reason, instead of serving every claim unchecked.
    assert_ne!(missing, 0);
    assert!(missing_err.contains("/nonexistent-rules: no such folder"), "{missing_err}");
    assert!(missing_err.ends_with('\n'), "stderr ends its line");
    assert_ne!(bad, 0);
    assert!(bad_err.contains("no rule set could be activated"), "{bad_err}");
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn every_error_names_its_command_ends_in_one_newline_and_speaks_its_audiences_language() {
    // Arrange: operators' commands answer in English, the auditor's report in Chinese (a broken
    // configuration file included: no parser's English in the auditor's message).
    let dir = tempfile::tempdir().unwrap();
    let bad_config = dir.path().join("claimgate.yaml");
    std::fs::write(&bad_config, "listen: 127.0.0.1:8080\nno_such_key: 1\n").unwrap();
    let operator: &[&[&str]] = &[
        &["check", "/nope.json"],
        &["check", "--rules", "/nope", "x.json"],
        &["replay", "--rules", "/nope", "x.jsonl"],
        &["rules", "test", "/nope"],
        &["rules", "verify", "/nope", "--pubkey", "/nope"],
        &["rules", "bundle", "/nope", "--key", "/nope", "-o", "/nope/b.tar.gz"],
        &["rules", "coverage", "--rules", "/nope"],
        &["rules", "import-nhsa", "--points", "/nope"],
        &["serve", "--config", "/nope.yaml"],
        &["serve", "--rules", "/nope", "--listen", "127.0.0.1:0"],
        &["sim-gateway", "--listen", "not-an-address"],
        &["demo", "--rules", "/nope"],
        &["gen-traffic", "-o", "/nope/x.jsonl"],
        &["keygen", "-o", "/nope/x"],
        &["healthcheck", "--url", "http://127.0.0.1:1/healthz"],
    ];
    let auditor: &[&[&str]] = &[
        &["report", "--from", "2025-02-01", "--to", "2025-01-01"],
        &["report", "--from", "2025-01-01", "--to", "2025-01-31", "--data", "/nope"],
        &["report", "--from", "2025-01-01", "--to", "2025-01-31", "--config", "/nope.yaml"],
        &["report", "--from", "2025-01-01", "--to", "2025-01-31", "--config", bad_config.to_str().unwrap()],
    ];
    for (args, chinese) in operator.iter().map(|a| (a, false)).chain(auditor.iter().map(|a| (a, true))) {
        // Act
        let (code, _, err) = claimgate(args);
        // Assert
        let cmd = if args[0] == "rules" { format!("rules {}", args[1]) } else { args[0].to_owned() };
        assert!(code != 0, "{args:?} succeeded");
        assert!(err.starts_with(&format!("claimgate {cmd}: ")), "{args:?}: {err:?}");
        assert!(err.ends_with('\n') && !err.ends_with("\n\n"), "{args:?}: one trailing newline: {err:?}");
        assert_eq!(has_cjk(&err), chinese, "{args:?}: {err:?}");
    }
    let (_, _, err) =
        claimgate(&["report", "--from", "2025-01-01", "--to", "2025-01-31", "--config", bad_config.to_str().unwrap()]);
    assert!(!err.contains("unknown field"), "the parser's English is for `serve`: {err:?}");
    assert!(err.contains("claimgate serve --config"), "the operator is told where to look: {err:?}");
}
