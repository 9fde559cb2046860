//! The national 两库 (NHSA 医保基金智能监管 规则库/知识库) as a rule pack.
//!
//! [`convert`] turns the published knowledge points (`knowledge-points.jsonl`, one point a line:
//! see `tools/nhsa/README.md`) into the files of a rule pack — a rule file per rule class, a CSV
//! table per rule, generated test cases, a review list of the points left out — so that a new
//! batch from the bureau is one command (`claimgate rules import-nhsa`), not hand editing. The
//! shipped pack `rulesets/national-liangku` is this function's output, and a test fails when the two
//! drift apart. [`coverage`] reads a compiled rule set against the 88 rule types of the 2025
//! catalogue.
//!
//! What the data leaves open is decided here, in one reviewed place each: the gender a drug is
//! for (a word list over its published text; undecided points are listed, never guessed), the
//! limits in the texts (限二级及以上, 住院, 支付不超过14天), and the diagnoses a 限适应症 text
//! names (its terms matched against the ICD-10 names).

mod classes;
pub mod coverage;
mod emit;
mod emit_cases;
mod indication;

pub use coverage::{coverage, Coverage};

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// The day the 2026 revision (8项药品类规则更新修订) takes effect; the points it supersedes apply
/// until the day before.
pub const REVISION_DAY: &str = "2026-01-28";
pub const REVISION_EVE: &str = "2026-01-27";

/// The pack's name as the manifest gives it.
pub const PACK_NAME: &str = "national-liangku";

/// One published knowledge point, as `knowledge-points.jsonl` carries it.
#[derive(Debug, Clone, Deserialize)]
pub struct Point {
    pub kp_id: String,
    pub rule_class: String,
    #[serde(default)]
    pub gz_code: Option<String>,
    #[serde(default)]
    pub item_name: String,
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub constraint: Option<String>,
    #[serde(default)]
    pub detect_logic: Option<String>,
    #[serde(default)]
    pub batch: Option<u32>,
    #[serde(default)]
    pub release: String,
    #[serde(default)]
    pub supersedes: Option<String>,
    #[serde(default)]
    pub source_file: String,
    #[serde(default)]
    pub source_row: Option<u32>,
}

impl Point {
    pub fn text(&self) -> &str {
        self.constraint.as_deref().unwrap_or("").trim()
    }
    /// 第N批 or 2026年修订.
    pub fn batch_text(&self) -> String {
        match self.batch {
            Some(n) => format!("第{}批", chinese_number(n)),
            None if self.release.starts_with("updates_2026") => "2026-01-28 修订".to_owned(),
            None => self.release.clone(),
        }
    }
    /// Where the point was published: batch, attachment and row, and its id.
    pub fn source(&self) -> String {
        let row = self.source_row.map_or_else(String::new, |r| format!("第{r}行"));
        format!("{} 附件「{}」{row}（{}）", self.batch_text(), self.source_file, self.kp_id)
    }
}

fn chinese_number(n: u32) -> String {
    const D: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n as usize].to_owned(),
        10 => "十".to_owned(),
        11..=19 => format!("十{}", D[(n - 10) as usize]),
        20..=99 => format!("{}十{}", D[(n / 10) as usize], if n % 10 == 0 { "" } else { D[(n % 10) as usize] }),
        _ => n.to_string(),
    }
}

/// Which dates a point applies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Era {
    /// Not revised: no dates.
    Current,
    /// Superseded by the 2026 revision: service dates up to [`REVISION_EVE`].
    Superseded,
    /// From the 2026 revision: service dates from [`REVISION_DAY`].
    Revised,
}

impl Era {
    /// A point's era: from the revision, superseded by it, or neither.
    pub(crate) fn of(p: &Point, superseded: &HashSet<&str>) -> Era {
        if p.release.starts_with("updates_") {
            Era::Revised
        } else if superseded.contains(p.kp_id.as_str()) {
            Era::Superseded
        } else {
            Era::Current
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Era::Current => "",
            Era::Superseded => "-2025",
            Era::Revised => "-2026",
        }
    }
}

/// A point the converter left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kp_id: String,
    pub rule_class: String,
    pub item_name: String,
    pub reason: String,
}

/// What one rule class became.
#[derive(Debug, Clone, Default)]
pub struct ClassCount {
    pub points: usize,
    pub codes: usize,
    pub skipped: usize,
}

/// The converter's output: the pack's files by relative path, and what was left out.
#[derive(Debug, Default)]
pub struct Conversion {
    pub files: BTreeMap<String, String>,
    pub skipped: Vec<Skipped>,
    pub by_class: BTreeMap<String, ClassCount>,
    /// 限适应症 points whose diagnoses the ICD matcher decided, of all 限适应症 points.
    pub indications_decided: (usize, usize),
}

/// The inputs: the knowledge points (JSON lines), the ICD-10 list (`code<TAB>name` with a header)
/// for the 限适应症 matcher, and the pack's version.
pub struct Sources<'a> {
    pub points: &'a str,
    pub icd10: &'a str,
    pub version: &'a str,
}

/// A point placed in a rule: which variant of its class, the table row's `param` and `note`.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub point: Point,
    pub era: Era,
    pub variant: &'static classes::Variant,
    pub param: String,
    pub note: String,
}

/// Reads the points, one per line; a line that is not a point is reported and skipped.
fn read_points(text: &str, skipped: &mut Vec<Skipped>) -> Vec<Point> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Point>(line) {
            Ok(p) if !seen.insert(p.kp_id.clone()) => skipped.push(Skipped {
                kp_id: p.kp_id.clone(),
                rule_class: p.rule_class.clone(),
                item_name: p.item_name.clone(),
                reason: "duplicate kp_id (the first is kept)".into(),
            }),
            Ok(p) => out.push(p),
            Err(e) => skipped.push(Skipped {
                kp_id: format!("line {}", n + 1),
                rule_class: String::new(),
                item_name: String::new(),
                reason: format!("not a knowledge point: {e}"),
            }),
        }
    }
    out
}

/// Converts the knowledge points into the pack's files. Never fails: a point that cannot be placed
/// is listed in [`Conversion::skipped`] with its `kp_id` and the reason, and the others load.
pub fn convert(src: &Sources<'_>) -> Conversion {
    let mut conv = Conversion::default();
    let points = read_points(src.points, &mut conv.skipped);
    let superseded: HashSet<&str> = points.iter().filter_map(|p| p.supersedes.as_deref()).collect();
    let matcher = indication::Matcher::new(src.icd10);
    let mut placed: Vec<Placed> = Vec::new();
    let mut decided = (0, 0);
    for p in &points {
        let era = Era::of(p, &superseded);
        let count = conv.by_class.entry(p.rule_class.clone()).or_default();
        let skip = |reason: String| Skipped {
            kp_id: p.kp_id.clone(),
            rule_class: p.rule_class.clone(),
            item_name: p.item_name.clone(),
            reason,
        };
        let codes: Vec<&String> = p.codes.iter().filter(|c| !c.trim().is_empty()).collect();
        if codes.is_empty() {
            count.skipped += 1;
            conv.skipped.push(skip("no codes".into()));
            continue;
        }
        let Some(class) = classes::find(&p.rule_class) else {
            count.skipped += 1;
            conv.skipped.push(skip(format!("unknown rule class {:?}", p.rule_class)));
            continue;
        };
        match (class.decide)(p, &matcher) {
            Ok(d) => {
                if class.name == "药品限适应症" {
                    decided.1 += 1;
                    if d.variant.key == "DX" {
                        decided.0 += 1;
                    }
                }
                placed.push(Placed { point: p.clone(), era, variant: d.variant, param: d.param, note: d.note });
            }
            Err(reason) => {
                count.skipped += 1;
                conv.skipped.push(skip(reason));
            }
        }
    }
    classes::drop_gender_conflicts(&mut placed, &mut conv.skipped, &mut conv.by_class);
    for pl in &placed {
        let c = conv.by_class.entry(pl.point.rule_class.clone()).or_default();
        c.points += 1;
        c.codes += pl.point.codes.len();
    }
    conv.indications_decided = decided;
    emit::emit(&placed, &matcher, src.version, &mut conv);
    conv
}

/// Writes a conversion into `dir`: the generated folders are replaced whole, so a code the bureau
/// withdrew does not linger in an old table.
///
/// # Errors
/// A file or folder that cannot be written.
pub fn write(conv: &Conversion, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in ["rules", "tables", "tests"] {
        let d = dir.join(sub);
        if d.is_dir() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
    }
    for (rel, text) in &conv.files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)?;
    }
    Ok(())
}

/// The summary `import-nhsa` prints: what each class became, the matcher's rate, the points left out.
pub fn summary(conv: &Conversion) -> String {
    let mut s = String::new();
    let (mut points, mut codes, mut skipped) = (0, 0, 0);
    for (class, c) in &conv.by_class {
        s.push_str(&format!("{class}: {} points, {} codes, {} left out\n", c.points, c.codes, c.skipped));
        points += c.points;
        codes += c.codes;
        skipped += c.skipped;
    }
    let (d, n) = conv.indications_decided;
    s.push_str(&format!(
        "total: {points} points, {codes} codes, {skipped} left out (listed in review.csv); 限适应症: the ICD matcher decided {d} of {n} points\n"
    ));
    s
}

#[cfg(test)]
mod tests;
