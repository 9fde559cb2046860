//! The `claimgate` binary: a thin CLI over the library.

use claimgate::commands::fail;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc, not glibc's malloc: after a flood of connections is cut, the memory their buffers held
/// goes back to the OS (glibc kept it in its arenas: 40 MB resident before 9,000 stalled
/// connections, 170 MB long after they were closed).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        /// YAML configuration file (keys: deploy/claimgate.example.yaml); flags override it, and
        /// CLAIMGATE_* variables override both.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address the HIS connects to (default 127.0.0.1:8080); env CLAIMGATE_LISTEN, which wins over the flag
        #[arg(long)]
        listen: Option<String>,
        /// The settlement gateway's URL; without it claim transactions are answered by claimgate
        /// itself (check-only mode); env CLAIMGATE_UPSTREAM, which wins over the flag
        #[arg(long)]
        upstream: Option<String>,
        /// A rule pack folder, or a folder of packs; repeat for several (default ./rulesets); env CLAIMGATE_RULES, which wins over the flag
        #[arg(long)]
        rules: Vec<PathBuf>,
        /// Folder of the embedded store: history, journal, keys, bundles (default ./data); env CLAIMGATE_DATA, which wins over the flag
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Run the simulated settlement gateway.
    SimGateway {
        /// Address the simulated gateway listens on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
    },
    /// Start claimgate and a simulated gateway, replay a day of sample claims, print what happened.
    Demo {
        /// Rule pack folder(s) the demo's claimgate runs.
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
        /// Keep the demo's store (journal, history) in DIR, to open it with `serve --data DIR`
        /// afterwards; a later demo into DIR replaces it. Default: a temporary folder, removed.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Evaluate the last file (earlier files are context exchanges) and print the decision JSON.
    Check {
        /// Rule pack folder(s) to evaluate with.
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
        /// This hospital's tier (1/2/3) for 限医疗机构级别.
        #[arg(long)]
        tier: Option<String>,
        /// Request envelopes or exchanges {"request", "response"}, in time order: the last is
        /// evaluated, the earlier ones give context (a 1101 answer, a 2201 registration).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a recorded stream (JSONL, in time order) through a rule set with a fresh history and print
    /// the impact per rule: hits, patients, amounts, and hits on patients with no other violation.
    Replay {
        /// Rule pack folder(s) to replay through.
        #[arg(long, default_value = "./rulesets")]
        rules: Vec<PathBuf>,
        /// This hospital's tier (1/2/3).
        #[arg(long)]
        tier: Option<String>,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// The recorded stream: one request envelope or exchange a line (`gen-traffic` writes one).
        file: PathBuf,
    },
    /// Write a generated month of realistic traffic as recorded exchanges (JSONL) for `replay`.
    GenTraffic {
        /// Random seed: the same seed writes the same stream.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Insured persons in the hospital's catchment.
        #[arg(long, default_value_t = 3000)]
        patients: usize,
        /// Days of traffic.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// The JSONL file to write.
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Also write the generated hospital's 医保目录对照 (item names by code, CSV) here, for
        /// `item_catalogue`: its fee uploads carry codes only.
        #[arg(long)]
        catalogue: Option<PathBuf>,
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
        /// Output file (default: standard output); with `--format csv`, the directory that
        /// receives one CSV file per section (required).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Probe a running claimgate (the container image's HEALTHCHECK): exit 0 when URL answers 2xx.
    Healthcheck {
        /// The URL to GET (/healthz: alive; /readyz: a rule set is active).
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
        /// Seconds before the probe counts as failed.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Write a new ed25519 key pair for signing rule bundles: PREFIX.key (private) and PREFIX.pub.
    Keygen {
        /// Path prefix of the two files written (PREFIX.key, PREFIX.pub).
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
        /// Rule pack folders, or folders of packs.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a rule file.
    Schema,
    /// Check a pack (compile, test cases), then pack and sign it into one bundle file.
    Bundle {
        /// The rule pack folder (manifest.yaml, rule files, tables, tests/).
        dir: PathBuf,
        /// Private key file(s) from `claimgate keygen`; each adds a signature.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// The bundle file to write (.tar.gz).
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
        /// The bundle file.
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
            claimgate::commands::replay(&rules, tier.as_deref(), &format, &file)
        }
        Cmd::GenTraffic { seed, patients, days, output, catalogue } => {
            claimgate::commands::gen_traffic(seed, patients, days, &output, catalogue.as_deref())
        }
        Cmd::Check { rules, tier, files } => claimgate::commands::check(&rules, tier.as_deref(), &files),
        Cmd::Rules { cmd: RulesCmd::Test { dirs } } => match claimgate::cli::rules_test(&dirs, None) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(s) => fail("rules test", &s, 1),
        },
        Cmd::Keygen { prefix } => match claimgate::reload::bundle::keygen_files(&prefix) {
            Ok((k, p)) => {
                println!("private key: {} (keep it secret)\npublic key:  {}", k.display(), p.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail("keygen", &e.to_string(), 1),
        },
        Cmd::Rules { cmd: RulesCmd::Bundle { dir, keys, out, effective_from, effective_until } } => {
            match claimgate::cli::rules_bundle(&dir, &keys, &out, (effective_from, effective_until)) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => fail("rules bundle", &s, 1),
            }
        }
        Cmd::Rules { cmd: RulesCmd::Verify { bundle, pubkeys } } => {
            let keys: Vec<String> = pubkeys.iter().map(|p| p.display().to_string()).collect();
            match claimgate::reload::verify_file(&bundle, &keys) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(s) => fail("rules verify", &format!("refused: {s}"), 1),
            }
        }
        Cmd::Rules { cmd: RulesCmd::ImportNhsa { points, icd, out, version } } => {
            printed("rules import-nhsa", claimgate::cli::rules_import_nhsa(&points, &icd, &out, version))
        }
        Cmd::Rules { cmd: RulesCmd::Coverage { rules, format } } => {
            let dirs = if rules.is_empty() { vec![PathBuf::from("rulesets")] } else { rules };
            printed("rules coverage", claimgate::cli::rules_coverage(&dirs, format == "json"))
        }
        Cmd::Rules { cmd: RulesCmd::Schema } => {
            print!("{}", claimgate::rules::source::rule_file_schema());
            ExitCode::SUCCESS
        }
        Cmd::Serve { config, listen, upstream, rules, data } => {
            claimgate::commands::serve(config.as_deref(), listen, upstream, rules, data)
        }
        Cmd::SimGateway { listen } => {
            claimgate::telemetry::init(false);
            match claimgate::sim::run_blocking(&listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail("sim-gateway", &format!("{e:#}"), 1),
            }
        }
        Cmd::Report { from, to, format, config, data, output } => {
            claimgate::commands::report((from, to), format, config.as_deref(), data, output.as_deref())
        }
        Cmd::Healthcheck { url, timeout_secs } => {
            claimgate::commands::healthcheck(&url, std::time::Duration::from_secs(timeout_secs))
        }
        Cmd::Demo { rules, data } => match claimgate::demo::run_blocking(&rules, data.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail("demo", &format!("{e:#}"), 1),
        },
    }
}

/// A command's text on stdout (exit 0), or its error on stderr (exit 2).
fn printed(cmd: &str, r: Result<String, String>) -> ExitCode {
    match r {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(s) => fail(cmd, &s, 2),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument of `c` and its subcommands without a description, as `path --flag`.
    fn undescribed(c: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in c.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                out.push(format!(
                    "{path} {}",
                    a.get_long().map_or_else(|| a.get_id().to_string(), |l| format!("--{l}"))
                ));
            }
        }
        for sub in c.get_subcommands() {
            assert!(sub.get_about().is_some(), "{path} {} has no description", sub.get_name());
            undescribed(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_of_every_subcommand_has_a_description() {
        // Arrange
        let cli = Cli::command();
        cli.clone().debug_assert();
        // Act
        let mut missing = Vec::new();
        undescribed(&cli, "claimgate", &mut missing);
        // Assert
        assert!(missing.is_empty(), "arguments without a description (a `///` line): {missing:#?}");
    }
}
