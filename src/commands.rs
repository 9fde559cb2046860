//! The binary's commands, from parsed arguments to an exit code; each prints what it has to say.
//! `main.rs` parses the command line and dispatches here (or to [`crate::cli`]).

use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Prints `claimgate CMD: MESSAGE` on stderr as one block ending in exactly one newline (a
/// multi-line message keeps its lines) and returns `code`. Every command reports its errors so.
pub fn fail(cmd: &str, message: &str, code: u8) -> ExitCode {
    eprintln!("claimgate {cmd}: {}", message.trim_end());
    ExitCode::from(code)
}

/// `claimgate serve`: the configuration (file ← flags ← environment), telemetry, then the server until a signal.
pub fn serve(
    config: Option<&Path>,
    listen: Option<String>,
    upstream: Option<String>,
    rules: Vec<PathBuf>,
    data: Option<PathBuf>,
) -> ExitCode {
    let cfg = crate::config::Config::load(
        config,
        |c| {
            if let Some(l) = listen {
                c.listen = l;
            }
            if upstream.is_some() {
                c.upstream = upstream;
            }
            if !rules.is_empty() {
                c.rules = rules;
            }
            if let Some(d) = data {
                c.data = d;
            }
        },
        &crate::config::ProcessEnv,
    );
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return fail("serve", &format!("{e:#}"), 2),
    };
    crate::telemetry::init(cfg.log_json);
    match crate::startup::run_blocking(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("serve", &format!("{e:#}"), 1),
    }
}

/// `claimgate check`: the decision JSON of the last file (exit 0 pass/remind, 3 block, 2 bad input).
pub fn check(rules: &[PathBuf], tier: Option<&str>, files: &[PathBuf]) -> ExitCode {
    let (_, rs) = match crate::cli::load_rules(rules) {
        Ok(x) => x,
        Err(e) => return fail("check", &e, 2),
    };
    let tier = tier.and_then(crate::claim::normalize::parse_tier);
    let (code, out) = crate::cli::check(&rs, files, tier);
    match out {
        Ok(json) => println!("{json}"),
        Err(e) => return fail("check", &e, code as u8),
    }
    ExitCode::from(code as u8)
}

/// `claimgate replay`: a recorded stream through the rule set, the impact per rule as a table or JSON.
pub fn replay(rules: &[PathBuf], tier: Option<&str>, format: &str, file: &Path) -> ExitCode {
    let (_, rs) = match crate::cli::load_rules(rules) {
        Ok(x) => x,
        Err(e) => return fail("replay", &e, 2),
    };
    let (input, size) = match std::fs::File::open(file) {
        Ok(f) => {
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            (std::io::BufReader::new(f), size)
        }
        Err(e) => {
            eprintln!("claimgate replay: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let tier = tier.and_then(crate::claim::normalize::parse_tier);
    // A progress line on stderr: rewritten in place on a terminal, a line per step otherwise.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut shown = false;
    let mut progress = |lines: u64, bytes: u64| {
        let pct = (bytes.min(size) * 100).checked_div(size).map_or_else(|| "?".to_owned(), |p| p.to_string());
        if tty {
            eprint!("\rclaimgate replay: {lines} lines read ({pct}%)");
            shown = true;
        } else if lines % (crate::replay::PROGRESS_EVERY * 10) == 0 {
            eprintln!("claimgate replay: {lines} lines read ({pct}%)");
        }
    };
    let result = crate::replay::run_with_progress(&rs, input, tier, &mut progress);
    if shown {
        eprintln!();
    }
    match result {
        Ok(r) if !crate::replay::readable(&r) => {
            eprintln!(
                "claimgate replay: {}: nothing to replay: {} of {} lines unreadable{}{}",
                file.display(),
                r.bad_lines,
                r.lines,
                if r.bad_examples.is_empty() { "" } else { ": " },
                r.bad_examples.join("; ")
            );
            ExitCode::from(2)
        }
        Ok(r) if format == "json" => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{}", crate::replay::table(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claimgate replay: {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `claimgate gen-traffic`: a generated month of exchanges, one JSON object a line; with
/// `catalogue`, the generated hospital's item names beside it.
pub fn gen_traffic(seed: u64, patients: usize, days: u32, output: &Path, catalogue: Option<&Path>) -> ExitCode {
    use std::io::Write;
    if let Some(p) = catalogue {
        if let Err(e) = std::fs::write(p, crate::gen::catalogue_csv()) {
            eprintln!("claimgate gen-traffic: {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let f = match std::fs::File::create(output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("claimgate gen-traffic: {}: {e}", output.display());
            return ExitCode::from(2);
        }
    };
    let mut w = std::io::BufWriter::new(f);
    let mut n = 0u64;
    let mut err = None;
    crate::gen::month(seed, patients, days, &mut |v| {
        n += 1;
        if err.is_none() {
            if let Err(e) =
                serde_json::to_writer(&mut w, &v).map_err(std::io::Error::from).and_then(|()| w.write_all(b"\n"))
            {
                err = Some(e);
            }
        }
    });
    match err.map_or_else(|| w.flush(), Err) {
        Ok(()) => {
            eprintln!("{n} exchanges written to {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claimgate gen-traffic: {}: {e}", output.display());
            ExitCode::from(2)
        }
    }
}

/// Writes a report's section files into `dir` (created when missing).
fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("无法创建目录 {}：{e}", dir.display()))?;
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("无法写入 {}：{e}", p.display()))?;
    }
    Ok(())
}

/// `claimgate report`: the office's figures for a period, read from the journal where `serve` writes it.
pub fn report(
    period: (NaiveDate, NaiveDate),
    format: crate::report::Format,
    config: Option<&Path>,
    data: Option<PathBuf>,
    output: Option<&Path>,
) -> ExitCode {
    let (from, to) = period;
    if from > to {
        eprintln!("claimgate report: 起始日期 {from} 晚于结束日期 {to}");
        return ExitCode::from(2);
    }
    // The journal is found as `serve` finds it: file, then flags, then environment.
    let cfg = crate::config::Config::load(
        config,
        |c| {
            if let Some(d) = data {
                c.data = d;
            }
        },
        &crate::config::ProcessEnv,
    );
    // The report is the auditor's: what went wrong in Chinese, and where an operator finds the
    // parser's own words (`serve` reads the same file and says it in English).
    let location = match cfg {
        Ok(c) => crate::journal::Location::new(&c.data, c.history_store.as_deref())
            .map_err(|_| "配置项 history_store 不是 PostgreSQL 地址（应以 postgres:// 开头）".to_owned()),
        Err(_) => Err(match config {
            Some(p) if !p.exists() => format!("找不到配置文件 {}", p.display()),
            Some(p) => format!(
                "配置文件 {} 无法读取或内容有误，请运维人员运行 claimgate serve --config {} 查看原因",
                p.display(),
                p.display()
            ),
            None => "环境变量中的配置有误（CLAIMGATE_*），请运维人员运行 claimgate serve 查看原因".to_owned(),
        }),
    };
    let location = match location {
        Ok(l) => l,
        Err(e) => {
            eprintln!("claimgate report: 配置错误：{e}");
            return ExitCode::from(2);
        }
    };
    let filter = crate::journal::stats::Filter { from: Some(from), to: Some(to), ..Default::default() };
    if format == crate::report::Format::Csv && output.is_none() {
        eprintln!("claimgate report: CSV 报表每个部分一个文件，请用 -o 指定输出目录");
        return ExitCode::from(2);
    }
    let out = match crate::report::run(&location, &filter, format) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("claimgate report: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match (out, output) {
        (crate::report::Output::Document(bytes), Some(p)) => {
            std::fs::write(p, &bytes).map_err(|e| format!("无法写入 {}：{e}", p.display()))
        }
        (crate::report::Output::Document(bytes), None) => {
            std::io::Write::write_all(&mut std::io::stdout(), &bytes).map_err(|e| e.to_string())
        }
        (crate::report::Output::Files(files), Some(dir)) => write_files(dir, &files),
        (crate::report::Output::Files(_), None) => Err("CSV 报表需要输出目录（-o）".to_owned()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("claimgate report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `claimgate healthcheck`: GET `url` (the container's HEALTHCHECK; the image has no curl). Exit 0
/// on a 2xx answer within `timeout`, 1 otherwise, with the reason on stderr.
pub fn healthcheck(url: &str, timeout: std::time::Duration) -> ExitCode {
    let probe = async {
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
        let r = client.get(url).send().await.map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status().as_u16()))
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claimgate healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(probe) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("claimgate healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
