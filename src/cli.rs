//! The offline commands (`check`, `rules test`, `rules schema`), as functions the binary and the
//! tests share.

use crate::config::pack_dirs;
use crate::history::History;
use crate::pipeline::exchange::{self, Checked};
use crate::pipeline::packtest;
use crate::rules::{self, CompiledRuleSet};
use crate::wire::{parse_head, ResponseEnvelope};
use std::path::PathBuf;

/// Exit codes of `claimgate check` (design.md).
pub const EXIT_PASS: i32 = 0;
pub const EXIT_BLOCK: i32 = 3;
pub const EXIT_BAD_INPUT: i32 = 2;

/// Loads the packs under `dirs` (see [`pack_dirs`]).
///
/// # Errors
/// Every problem of every pack, as text.
pub fn load_rules(dirs: &[PathBuf]) -> Result<(Vec<rules::PackSource>, CompiledRuleSet), String> {
    rules::load(&pack_dirs(dirs)).map_err(|e| e.to_string())
}

/// `claimgate check`: evaluates the last file with the earlier ones as context.
/// Returns the exit code and what to print (decision JSON on stdout, or an error for stderr).
pub fn check(rs: &CompiledRuleSet, files: &[PathBuf], tier: Option<u8>) -> (i32, Result<String, String>) {
    let Some((last, context)) = files.split_last() else {
        return (EXIT_BAD_INPUT, Err("no input file".into()));
    };
    let ctx = History::ephemeral(tier);
    let read = |p: &PathBuf| -> Result<serde_json::Value, String> {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.len() > crate::wire::DEFAULT_BODY_LIMIT as u64 {
            return Err(format!("{}: larger than {} bytes", p.display(), crate::wire::DEFAULT_BODY_LIMIT));
        }
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", p.display()))
    };
    // A file's request as bytes (the head borrows them) and its gateway answer, if any.
    let load = |p: &PathBuf| -> Result<(Vec<u8>, Option<serde_json::Value>), String> {
        let (req, resp) = crate::wire::split_exchange(read(p)?);
        Ok((serde_json::to_vec(&req).unwrap_or_default(), resp))
    };
    for p in context {
        let (bytes, resp) = match load(p) {
            Ok(x) => x,
            Err(e) => return (EXIT_BAD_INPUT, Err(e)),
        };
        let head = match parse_head(&bytes) {
            Ok(h) => h,
            Err(e) => return (EXIT_BAD_INPUT, Err(format!("{}: {e}", p.display()))),
        };
        let resp: Option<ResponseEnvelope> = match resp.map(serde_json::from_value).transpose() {
            Ok(r) => r,
            Err(e) => return (EXIT_BAD_INPUT, Err(format!("{}: response: {e}", p.display()))),
        };
        if let Err(e) = ctx.learn(&head, resp.as_ref(), None) {
            return (EXIT_BAD_INPUT, Err(format!("{}: {e}", p.display())));
        }
    }
    let (bytes, answer) = match load(last) {
        Ok(x) => x,
        Err(e) => return (EXIT_BAD_INPUT, Err(e)),
    };
    let ex = match exchange::Exchange::begin(bytes.into(), None) {
        Ok(ex) => ex,
        Err(e) => return (EXIT_BAD_INPUT, Err(format!("{}: {e}", last.display()))),
    };
    let head = ex.head();
    // The last file may be an exchange: a pre-settlement is checked on the gateway's answer.
    let answer: Option<ResponseEnvelope> = answer.and_then(|a| serde_json::from_value(a).ok());
    let overrides = crate::pipeline::overrides::Overrides::default();
    match exchange::check(head, rs, &ctx, &overrides, answer.as_ref(), |_, _| {}) {
        Checked::Done { claims, decision: d, .. } if !claims.is_empty() => {
            let code = if d.decision == rules::Outcome::Block { EXIT_BLOCK } else { EXIT_PASS };
            (code, Ok(serde_json::to_string_pretty(&d).unwrap_or_default()))
        }
        Checked::Done { .. } => (
            EXIT_BAD_INPUT,
            Err(format!("{}: infno {}: not a checked claim transaction", last.display(), head.infno.as_str())),
        ),
        Checked::Bad(e) | Checked::Encrypted(e) => (EXIT_BAD_INPUT, Err(format!("{}: {e}", last.display()))),
        Checked::Failed(why) => (EXIT_BAD_INPUT, Err(format!("{}: check failed: {why}", last.display()))),
    }
}

/// `claimgate rules test DIR`: compiles the packs and runs their cases. `Ok` is the summary.
///
/// # Errors
/// The compile problems, or the failed cases and the rules without a passing case.
pub fn rules_test(dirs: &[PathBuf], tier: Option<u8>) -> Result<String, String> {
    let (packs, rs) = load_rules(dirs)?;
    let report = packtest::run(&rs, &packs, tier);
    let mut s = String::new();
    for f in &report.failures {
        s.push_str(&format!("FAIL {f}\n"));
    }
    if !report.untested.is_empty() {
        s.push_str(&format!("rules without a passing test case: {}\n", report.untested.join(", ")));
    }
    s.push_str(&format!(
        "{} passed, {} failed ({} rules, {} knowledge points, {})\n",
        report.passed,
        report.failures.len(),
        rs.rules.len(),
        rs.knowledge_points,
        rs.revision()
    ));
    if report.failures.is_empty() && report.untested.is_empty() {
        Ok(s)
    } else {
        Err(s)
    }
}

/// `claimgate rules bundle DIR --key KEY -o OUT`: checks the pack as `rules test` does (compile, every
/// case passes), then writes the signed bundle. `Ok` is the summary.
///
/// # Errors
/// The pack does not pass, a key cannot be read, the file cannot be written.
pub fn rules_bundle(
    dir: &std::path::Path,
    keys: &[PathBuf],
    out: &std::path::Path,
    effective: (Option<String>, Option<String>),
) -> Result<String, String> {
    let (packs, rs) = load_rules(&[dir.to_path_buf()])?;
    let report = packtest::run(&rs, &packs, None);
    if !report.failures.is_empty() {
        let lines: Vec<String> = report.failures.iter().map(|f| format!("FAIL {f}")).collect();
        return Err(format!("the pack's own test cases fail; not bundled\n{}", lines.join("\n")));
    }
    let keys = keys
        .iter()
        .map(|k| crate::reload::bundle::load_secret(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let created = chrono::Local::now().to_rfc3339();
    let bytes = crate::reload::bundle::build(dir, &keys, &created, effective).map_err(|e| e.to_string())?;
    std::fs::write(out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} ({} bytes): {}, {} rules, {} test cases passed, {} signature(s)\n",
        out.display(),
        bytes.len(),
        rs.revision(),
        rs.rules.len(),
        report.passed,
        keys.len()
    ))
}

/// `claimgate rules import-nhsa`: converts the NHSA 两库 knowledge points into the national pack.
/// `Ok` is the summary (what each class became, the points left out).
///
/// # Errors
/// An input that cannot be read, or the pack that cannot be written.
pub fn rules_import_nhsa(
    points: &std::path::Path,
    icd: &std::path::Path,
    out: &std::path::Path,
    version: Option<String>,
) -> Result<String, String> {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let (points, icd10) = (read(points)?, read(icd)?);
    // The pack keeps its version unless a new one is given (the output then stays byte for byte).
    let version = version.or_else(|| pack_version(out)).unwrap_or_else(|| "2026.12.1".to_owned());
    let conv = crate::nhsa::convert(&crate::nhsa::Sources { points: &points, icd10: &icd10, version: &version });
    crate::nhsa::write(&conv, out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut s = crate::nhsa::summary(&conv);
    s.push_str(&format!("wrote {} files to {} (version {version})\n", conv.files.len(), out.display()));
    Ok(s)
}

/// The `version` of the pack at `dir`, if it has a manifest.
pub fn pack_version(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("manifest.yaml")).ok()?;
    serde_norway::from_str::<crate::rules::source::Manifest>(&text).ok().map(|m| m.version)
}

/// `claimgate rules coverage`: the 88 rule types of the 2025 catalogue against the packs under `dirs`.
///
/// # Errors
/// The packs do not compile.
pub fn rules_coverage(dirs: &[PathBuf], json: bool) -> Result<String, String> {
    let (packs, rs) = load_rules(dirs)?;
    let reviews: Vec<String> =
        packs.iter().filter_map(|p| std::fs::read_to_string(p.dir.join("review.csv")).ok()).collect();
    let c = crate::nhsa::coverage(&rs, crate::nhsa::coverage::read_review(&reviews));
    Ok(if json { serde_json::to_string_pretty(&c).unwrap_or_default() + "\n" } else { c.text() })
}
