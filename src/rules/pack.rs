//! Reading a pack folder from disk: manifest, rule files, tables, tests. No compilation here.

use super::error::{CompileError, Problem};
use super::source::{Manifest, PairRow, RuleFile, TableRow, TestFile};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The largest file a pack may hold (a batch-1 table of 11,290 rows is about 1 MB).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum Table {
    Rows(Vec<(usize, TableRow)>),
    Pairs(Vec<(usize, PairRow)>),
}

/// A pack as read from its folder.
#[derive(Debug, Clone)]
pub struct PackSource {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// `(relative path, text, parsed)`, sorted by path.
    pub rule_files: Vec<(String, String, RuleFile)>,
    /// Raw CSV text by relative path; parsed on demand by the kind that uses it.
    pub table_texts: BTreeMap<String, String>,
    pub test_files: Vec<(String, TestFile)>,
    /// SHA-256 over every file's path and bytes, in path order.
    pub digest: String,
}

fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

fn read_capped(p: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(p).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("file larger than {MAX_FILE_BYTES} bytes"));
    }
    std::fs::read_to_string(p).map_err(|e| e.to_string())
}

fn list(dir: &Path, ext: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| ext.contains(&e)))
        .collect();
    v.sort();
    v
}

fn yaml_problem(file: &str, e: &serde_norway::Error) -> Problem {
    Problem { file: file.to_owned(), line: e.location().map(|l| l.line()), reason: e.to_string() }
}

/// Reads a pack folder.
///
/// # Errors
/// Every unreadable or malformed file, with its line.
pub fn load_pack(dir: &Path) -> Result<PackSource, CompileError> {
    let mut problems = Vec::new();
    let mut hasher = Sha256::new();
    let mut hash_file = |name: &str, text: &str| {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    };
    let mpath = dir.join("manifest.yaml");
    let manifest = match read_capped(&mpath) {
        Ok(t) => {
            hash_file("manifest.yaml", &t);
            match serde_norway::from_str::<Manifest>(&t) {
                Ok(m) => Some(m),
                Err(e) => {
                    problems.push(yaml_problem("manifest.yaml", &e));
                    None
                }
            }
        }
        Err(e) => {
            problems.push(Problem { file: format!("{}/manifest.yaml", dir.display()), line: None, reason: e });
            None
        }
    };
    let mut rule_files = Vec::new();
    let rules_dir = dir.join("rules");
    let rule_paths = list(&rules_dir, &["yaml", "yml"]);
    if rule_paths.is_empty() {
        problems.push(Problem { file: rel(dir, &rules_dir), line: None, reason: "no rule files".into() });
    }
    for p in rule_paths {
        let name = rel(dir, &p);
        match read_capped(&p) {
            Ok(t) => {
                hash_file(&name, &t);
                match serde_norway::from_str::<RuleFile>(&t) {
                    Ok(rf) => rule_files.push((name, t, rf)),
                    Err(e) => problems.push(yaml_problem(&name, &e)),
                }
            }
            Err(e) => problems.push(Problem { file: name, line: None, reason: e }),
        }
    }
    let mut table_texts = BTreeMap::new();
    for p in list(&dir.join("tables"), &["csv"]) {
        let name = rel(dir, &p);
        match read_capped(&p) {
            Ok(t) => {
                hash_file(&name, &t);
                table_texts.insert(name, t);
            }
            Err(e) => problems.push(Problem { file: name, line: None, reason: e }),
        }
    }
    let mut test_files = Vec::new();
    for p in list(&dir.join("tests"), &["yaml", "yml"]) {
        let name = rel(dir, &p);
        match read_capped(&p) {
            Ok(t) => {
                hash_file(&name, &t);
                match serde_norway::from_str::<TestFile>(&t) {
                    Ok(tf) => test_files.push((name, tf)),
                    Err(e) => problems.push(yaml_problem(&name, &e)),
                }
            }
            Err(e) => problems.push(Problem { file: name, line: None, reason: e }),
        }
    }
    let digest = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
    match manifest {
        Some(manifest) if problems.is_empty() => {
            Ok(PackSource { dir: dir.to_path_buf(), manifest, rule_files, table_texts, test_files, digest })
        }
        _ => Err(CompileError { problems }),
    }
}

impl PackSource {
    /// Parses a referenced table in the shape the kind wants.
    ///
    /// # Errors
    /// A missing table or a malformed row, with the CSV line.
    pub fn table(&self, path: &str, pairs: bool) -> Result<Table, Problem> {
        let norm = path.trim_start_matches("./");
        let text = self.table_texts.get(norm).ok_or_else(|| Problem {
            file: norm.to_owned(),
            line: None,
            reason: "table not found in the pack (tables/*.csv)".into(),
        })?;
        let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
        let bad = |line: Option<usize>, e: &dyn std::fmt::Display| Problem {
            file: norm.to_owned(),
            line,
            reason: e.to_string(),
        };
        let headers = rdr.headers().map_err(|e| bad(Some(1), &e))?.clone();
        let mut rows: Vec<(usize, PairRow)> = Vec::new();
        let mut plain: Vec<(usize, TableRow)> = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| bad(e.position().map(|p| p.line() as usize), &e))?;
            let line = rec.position().map_or(0, |p| p.line() as usize);
            if pairs {
                let r: PairRow = rec.deserialize(Some(&headers)).map_err(|e| bad(Some(line), &e))?;
                if r.main.is_empty() || r.sub.is_empty() {
                    return Err(bad(Some(line), &"empty main or sub code"));
                }
                rows.push((line, r));
            } else {
                let r: TableRow = rec.deserialize(Some(&headers)).map_err(|e| bad(Some(line), &e))?;
                if r.code.is_empty() {
                    return Err(bad(Some(line), &"empty code"));
                }
                plain.push((line, r));
            }
        }
        Ok(if pairs { Table::Pairs(rows) } else { Table::Rows(plain) })
    }
}

/// Expands rule folders: a folder with `manifest.yaml` is a pack; otherwise each direct subfolder
/// with one is (so `./rulesets` loads `national-baseline` but not `examples/*`).
pub fn pack_dirs(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for r in roots {
        if r.join("manifest.yaml").is_file() {
            out.push(r.clone());
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(r)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("manifest.yaml").is_file())
            .collect();
        subs.sort();
        if subs.is_empty() {
            out.push(r.clone()); // reported as a missing manifest by the loader
        }
        out.extend(subs);
    }
    out
}
