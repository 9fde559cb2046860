//! The `claimgate` binary: a thin CLI over the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "claimgate", version, about = "医保结算前智能审核网关 — pre-settlement claim interceptor")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the interceptor.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        listen: Option<String>,
        #[arg(long)]
        upstream: Option<String>,
        #[arg(long)]
        rules: Vec<PathBuf>,
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Run the simulated settlement gateway.
    SimGateway {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
    },
    /// Start claimgate and a simulated gateway, replay a day of sample claims, print what happened.
    Demo {
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
    },
    /// Evaluate the last file (earlier files are context exchanges) and print the decision JSON.
    Check {
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
        /// This hospital's tier (1/2/3) for 限医疗机构级别.
        #[arg(long)]
        tier: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a recorded stream (JSONL, in time order) through a rule set with a fresh history and print
    /// the impact per rule: hits, patients, amounts, and hits on patients with no other violation.
    Replay {
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
        /// This hospital's tier (1/2/3).
        #[arg(long)]
        tier: Option<String>,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
        file: PathBuf,
    },
    /// Write a generated month of realistic traffic as recorded exchanges (JSONL) for `replay`.
    GenTraffic {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 3000)]
        patients: usize,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
    /// Write the office's figures for a period (monthly report for the 医共体 leadership).
    Report {
        /// First day included, YYYY-MM-DD.
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day included, YYYY-MM-DD.
        #[arg(long)]
        to: chrono::NaiveDate,
        /// html, csv or json.
        #[arg(long, default_value = "html")]
        format: claimgate::report::Format,
        /// The configuration `serve` runs with: the journal is read where it writes it (the
        /// embedded journal under `data`, or the shared PostgreSQL of `history_store`;
        /// `CLAIMGATE_DATA` and `CLAIMGATE_HISTORY_STORE` override the file as for `serve`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory holding journal.sqlite (overrides the configuration; default ./data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output file (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Write a new ed25519 key pair for signing rule bundles: PREFIX.key (private) and PREFIX.pub.
    Keygen {
        #[arg(short = 'o', long = "out", default_value = "claimgate")]
        prefix: PathBuf,
    },
    /// Rule pack tools.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Compile packs and run their own test cases.
    Test {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a rule file.
    Schema,
    /// Check a pack (compile, test cases), then pack and sign it into one bundle file.
    Bundle {
        dir: PathBuf,
        /// Private key file(s) from `claimgate keygen`; each adds a signature.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// yyyy-MM-dd: the bundle is refused before this day.
        #[arg(long)]
        effective_from: Option<String>,
        /// yyyy-MM-dd: the bundle is refused after this day.
        #[arg(long)]
        effective_until: Option<String>,
    },
    /// Convert the NHSA 两库 knowledge points into the national pack (rules, tables, test cases).
    ImportNhsa {
        /// The knowledge points, one JSON object a line.
        #[arg(long, default_value = "tools/nhsa/knowledge-points.jsonl")]
        points: PathBuf,
        /// ICD-10 codes and names (`code<TAB>name`), for matching 限适应症 texts to diagnoses.
        #[arg(long, default_value = "tools/nhsa/icd/diagnoses.tsv")]
        icd: PathBuf,
        /// The pack folder to (re)write.
        #[arg(long, default_value = "rulesets/national-liangku")]
        out: PathBuf,
        /// The pack's new version (default: keep the one in its manifest).
        #[arg(long = "pack-version")]
        version: Option<String>,
    },
    /// Which of the 88 rule types of the 2025 catalogue the rule set enforces, and the points left out.
    Coverage {
        /// Rule pack folders (default ./rulesets).
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// `text` (default) or `json`.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Verify a bundle as an activation would: signature, digests, limits, compile, test cases.
    Verify {
        bundle: PathBuf,
        /// Trusted public key file(s).
        #[arg(long = "pubkey", required = true)]
        pubkeys: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Replay { rules, tier, format, file } => {
            let (_, rs) = match claimgate::cli::load_rules(&rules) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let input = match std::fs::File::open(&file) {
                Ok(f) => std::io::BufReader::new(f),
                Err(e) => {
                    eprintln!("claimgate replay: {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            let tier = tier.as_deref().and_then(claimgate::claim::normalize::parse_tier);
            match claimgate::replay::run(&rs, input, tier) {
                Ok(r) if format == "json" => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    print!("{}", claimgate::replay::table(&r));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("claimgate replay: {}: {e}", file.display());
                    ExitCode::from(2)
                }
            }
        }
        Cmd::GenTraffic { seed, patients, days, output } => {
            use std::io::Write;
            let f = match std::fs::File::create(&output) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("claimgate gen-traffic: {}: {e}", output.display());
                    return ExitCode::from(2);
                }
            };
            let mut w = std::io::BufWriter::new(f);
            let mut n = 0u64;
            let mut err = None;
            claimgate::gen::month(seed, patients, days, &mut |v| {
                n += 1;
                if err.is_none() {
                    if let Err(e) = serde_json::to_writer(&mut w, &v)
                        .map_err(std::io::Error::from)
                        .and_then(|()| w.write_all(b"\n"))
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
        Cmd::Check { rules, tier, files } => {
            let (_, rs) = match claimgate::cli::load_rules(&rules) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let tier = tier.as_deref().and_then(claimgate::claim::normalize::parse_tier);
            let (code, out) = claimgate::cli::check(&rs, &files, tier);
            match out {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("claimgate check: {e}"),
            }
            ExitCode::from(code as u8)
        }
        Cmd::Rules { cmd: RulesCmd::Test { dirs } } => match claimgate::cli::rules_test(&dirs, None) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(s) => {
                eprint!("{s}");
                ExitCode::FAILURE
            }
        },
        Cmd::Keygen { prefix } => match claimgate::reload::bundle::keygen_files(&prefix) {
            Ok((k, p)) => {
                println!("private key: {} (keep it secret)\npublic key:  {}", k.display(), p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("claimgate keygen: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Rules { cmd: RulesCmd::Bundle { dir, keys, out, effective_from, effective_until } } => {
            match claimgate::cli::rules_bundle(&dir, &keys, &out, (effective_from, effective_until)) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => {
                    eprintln!("claimgate rules bundle: {s}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Rules { cmd: RulesCmd::Verify { bundle, pubkeys } } => {
            let keys: Vec<String> = pubkeys.iter().map(|p| p.display().to_string()).collect();
            match claimgate::reload::verify_file(&bundle, &keys) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => {
                    eprintln!("claimgate rules verify: refused: {s}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Rules { cmd: RulesCmd::ImportNhsa { points, icd, out, version } } => {
            match claimgate::cli::rules_import_nhsa(&points, &icd, &out, version) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => {
                    eprintln!("{s}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Rules { cmd: RulesCmd::Coverage { rules, format } } => {
            let dirs = if rules.is_empty() { vec![PathBuf::from("rulesets")] } else { rules };
            match claimgate::cli::rules_coverage(&dirs, format == "json") {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => {
                    eprintln!("{s}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Rules { cmd: RulesCmd::Schema } => {
            print!("{}", claimgate::rules::source::rule_file_schema());
            ExitCode::SUCCESS
        }
        Cmd::Serve { config, listen, upstream, rules, data } => {
            let cfg = claimgate::config::Config::load(
                config.as_deref(),
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
                &claimgate::config::ProcessEnv,
            );
            let cfg = match cfg {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("claimgate: {e:#}");
                    return ExitCode::from(2);
                }
            };
            claimgate::telemetry::init(cfg.log_json);
            match claimgate::gate::run_blocking(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("claimgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::SimGateway { listen } => {
            claimgate::telemetry::init(false);
            match claimgate::sim::run_blocking(&listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sim-gateway: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Report { from, to, format, config, data, output } => {
            if from > to {
                eprintln!("claimgate report: 起始日期 {from} 晚于结束日期 {to}");
                return ExitCode::from(2);
            }
            // The journal is found as `serve` finds it: file, then flags, then environment.
            let cfg = claimgate::config::Config::load(
                config.as_deref(),
                |c| {
                    if let Some(d) = data {
                        c.data = d;
                    }
                },
                &claimgate::config::ProcessEnv,
            );
            let location = match cfg
                .map_err(|e| format!("{e:#}"))
                .and_then(|c| claimgate::journal::Location::new(&c.data, c.history_store.as_deref()))
            {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("claimgate report: 配置错误：{e}");
                    return ExitCode::from(2);
                }
            };
            let filter = claimgate::journal::stats::Filter { from: Some(from), to: Some(to), ..Default::default() };
            let bytes = match claimgate::report::run(&location, &filter, format) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("claimgate report: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let written = match &output {
                Some(p) => std::fs::write(p, &bytes).map_err(|e| format!("无法写入 {}：{e}", p.display())),
                None => std::io::Write::write_all(&mut std::io::stdout(), &bytes).map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("claimgate report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Demo { rules } => match claimgate::demo::run_blocking(&rules) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
