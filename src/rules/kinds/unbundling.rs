//! 分解收费: components billed beside the package that includes them (重复), or enough components
//! billed on one day without the package that the package should have been billed (分解). The
//! day's accepted lines from earlier messages count too (history): a package uploaded in the
//! morning makes an afternoon upload's component a 重复, and components spread over uploads add up
//! to a 分解; only this claim's lines are hit, the earlier ones named in `{earlier}`.

use super::*;
use crate::claim::Fen;
use crate::rules::decision::Val;
use chrono::NaiveDate;

const VARS: &[&str] = &["package", "package_code", "components", "count", "pattern", "date", "earlier"];
pub(crate) static SPEC: KindSpec =
    KindSpec::new("unbundling", Scope::Group, TableShape::Rows, VARS, compile).many_tags();

struct UnbundleLogic {
    package_name: String,
    package_code: String,
    component_names: Vec<String>,
    /// The components' codes (index = tag − 1), to find them among earlier messages' lines.
    component_codes: Vec<String>,
    min_components: Option<usize>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["package", "components", "min_components"])?;
    let pkg = i.params.get("package").and_then(|v| v.as_object()).ok_or("params.package: expected {code, name}")?;
    let package_code = pkg
        .get("code")
        .map(value_text)
        .transpose()?
        .filter(|c| !c.is_empty())
        .ok_or("params.package.code is required")?;
    let package_name = pkg.get("name").map(value_text).transpose()?.unwrap_or_else(|| package_code.clone());
    let mut comps: Vec<(String, String)> = Vec::new();
    if let Some(v) = i.params.get("components") {
        for (n, c) in v.as_array().ok_or("params.components: expected a list")?.iter().enumerate() {
            match c {
                serde_json::Value::Object(o) => {
                    let code = o
                        .get("code")
                        .map(value_text)
                        .transpose()?
                        .ok_or(format!("params.components[{n}].code is required"))?;
                    let name = o.get("name").map(value_text).transpose()?.unwrap_or_else(|| code.clone());
                    comps.push((code, name));
                }
                other => {
                    let code = value_text(other)?;
                    comps.push((code.clone(), code));
                }
            }
        }
    }
    for (_, r) in i.rows {
        comps.push((r.code.clone(), if r.name.is_empty() { r.code.clone() } else { r.name.clone() }));
    }
    if comps.is_empty() {
        return Err("params.components (or a table) is required".into());
    }
    let min_components = i
        .params
        .get("min_components")
        .map(|v| value_text(v)?.parse::<usize>().map_err(|_| "params.min_components: not a number".to_owned()))
        .transpose()?;
    if min_components.is_some_and(|m| m < 2 || m > comps.len()) {
        return Err(format!("params.min_components must be between 2 and {}", comps.len()));
    }
    let mut matchers = vec![(package_code.clone(), 0)];
    matchers.extend(comps.iter().enumerate().map(|(n, (c, _))| (c.clone(), n as u32 + 1)));
    Ok(Compiled {
        logic: Box::new(UnbundleLogic {
            package_name,
            package_code,
            component_codes: comps.iter().map(|(c, _)| c.trim().to_owned()).collect(),
            component_names: comps.into_iter().map(|(_, n)| n).collect(),
            min_components,
        }),
        matchers,
    })
}

impl Logic for UnbundleLogic {
    /// The day's earlier uploads are read from history.
    fn lookback_days(&self) -> u32 {
        1
    }
    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        let mut m: Vec<(NaiveDate, u32, u32)> = members
            .iter()
            .filter_map(|&(li, tag)| {
                let l = c.lines.get(li as usize)?;
                (!l.is_refund()).then(|| (l.date(), tag, li))
            })
            .collect();
        m.sort_unstable();
        for day in m.chunk_by(|a, b| a.0 == b.0) {
            let d = day[0].0;
            let has_package = day.iter().any(|x| x.1 == 0);
            let comps: Vec<u32> =
                day.iter().filter(|x| x.1 > 0 && !day.iter().any(|y| y.1 == 0 && y.2 == x.2)).map(|x| x.2).collect();
            let mut kinds: Vec<u32> = day.iter().filter(|x| x.1 > 0).map(|x| x.1).collect();
            // The day's accepted lines from earlier messages: the package, and components.
            let same_day = |code: &str| -> Vec<&crate::claim::PastLine> {
                if code.ends_with(['%', '*']) {
                    return Vec::new();
                }
                r.past.earlier(code).filter(|p| !p.refund && p.date() == d).collect()
            };
            let mut prior = same_day(&self.package_code);
            let earlier_package = !prior.is_empty();
            for (n, code) in self.component_codes.iter().enumerate() {
                let found = same_day(code);
                if !found.is_empty() {
                    kinds.push(n as u32 + 1);
                    prior.extend(found);
                }
            }
            kinds.sort_unstable();
            kinds.dedup();
            let package_lines: Vec<u32> = day.iter().filter(|x| x.1 == 0).map(|x| x.2).collect();
            let (pattern, lines) = if (has_package || earlier_package) && !comps.is_empty() {
                (format!("与组合项目【{}】同日重复收费", self.package_name), comps.clone())
            } else if has_package && comps.is_empty() && !kinds.is_empty() {
                // The package now, its components accepted earlier the same day: the package repeats them.
                (format!("组合项目【{}】与当日已收取的分项重复收费", self.package_name), package_lines)
            } else if !has_package
                && !earlier_package
                && !comps.is_empty()
                && self.min_components.is_some_and(|min| kinds.len() >= min)
            {
                (format!("分项收取，应按组合项目【{}】收费", self.package_name), comps.clone())
            } else {
                continue;
            };
            let mut lines = lines;
            lines.sort_unstable();
            lines.dedup();
            let names: Vec<&str> =
                kinds.iter().filter_map(|&k| self.component_names.get(k as usize - 1).map(String::as_str)).collect();
            let amount = lines.iter().fold(Fen::ZERO, |a, &l| a + c.lines[l as usize].amount);
            out.hit(
                r.index,
                lines,
                amount,
                vec![
                    ("package", Val::Str(self.package_name.as_str().into())),
                    ("package_code", Val::Str(self.package_code.as_str().into())),
                    ("components", Val::Str(names.join("、").into())),
                    ("count", Val::Int(kinds.len() as i64)),
                    ("pattern", Val::Str(pattern.into())),
                    ("date", Val::Date(d)),
                    ("earlier", Val::Str(earlier_note(&prior))),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        ruleset(&rule(
            "unbundling",
            "{date}【{components}】{pattern}",
            "    params:\n      package: { code: \"002503000000000\", name: 电解质组合 }\n      components:\n        - { code: \"002503010010000\", name: 钾测定 }\n        - { code: \"002503010020000\", name: 钠测定 }\n        - { code: \"002503010030000\", name: 氯测定 }\n      min_components: 3\n",
        ))
    }

    #[test]
    fn components_beside_the_package_are_hit() {
        let mut c = claim();
        c.lines.push(line("P", "002503000000000", 1, 3000, "2025-06-01 08:00:00"));
        c.lines.push(line("K", "002503010010000", 1, 800, "2025-06-01 08:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["K"]));
        assert_eq!(d.hits[0].message, "2025-06-01【钾测定】与组合项目【电解质组合】同日重复收费");
    }

    #[test]
    fn the_days_earlier_uploads_count_and_only_this_uploads_lines_are_hit() {
        use crate::claim::{History, PastLine};
        use std::sync::Arc;
        let mut c = claim();
        let mid: Arc<str> = c.encounter.mdtrt_id.as_str().into();
        let mut h = History::default();
        h.lines.push(PastLine::of(mid.clone(), &line("K0", "002503010010000", 1, 800, "2025-06-01 08:00:00"), false));
        h.lines.push(PastLine::of(mid.clone(), &line("N0", "002503010020000", 1, 800, "2025-06-01 08:00:00"), false));
        c.history = Some(Arc::new(h));
        // A third component in a later upload: 分解 across the two uploads; the new line is hit.
        c.lines.push(line("C", "002503010030000", 1, 800, "2025-06-01 15:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["C"]));
        assert!(d.hits[0].message.contains("分项收取"), "{}", d.hits[0].message);
        // The package in a later upload, its components accepted earlier: the package repeats them.
        c.lines[0] = line("P", "002503000000000", 1, 3000, "2025-06-01 15:00:00");
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["P"]));
        assert!(d.hits[0].message.contains("与当日已收取的分项重复收费"), "{}", d.hits[0].message);
        // The next day nothing earlier counts.
        c.lines[0] = line("P", "002503000000000", 1, 3000, "2025-06-02 15:00:00");
        assert!(evaluate(&rs(), &c).hits.is_empty());
    }

    #[test]
    fn three_components_without_the_package_are_unbundling_two_are_not() {
        let mut c = claim();
        c.lines.push(line("K", "002503010010000", 1, 800, "2025-06-01 08:00:00"));
        c.lines.push(line("N", "002503010020000", 1, 800, "2025-06-01 08:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.lines.push(line("C", "002503010030000", 1, 800, "2025-06-01 08:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["K", "N", "C"]));
        assert_eq!(d.hits[0].amount.get(), 2400);
    }
}
