//! 限年龄 / 儿童专用 / 限儿童 / 儿童禁用: age on the line's service date outside the allowed range.

use super::*;
use crate::claim::time::Age;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "age", "range"];
pub(crate) static SPEC: KindSpec = KindSpec::new("age", Scope::Line, TableShape::Rows, VARS, compile);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Day,
    Month,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    n: i64,
    unit: Unit,
}

impl Bound {
    fn parse(s: &str) -> Result<Bound, String> {
        let s = s.trim();
        let (num, unit) = if let Some(n) = s.strip_suffix('d').or_else(|| s.strip_suffix("天")) {
            (n, Unit::Day)
        } else if let Some(n) = s.strip_suffix('m').or_else(|| s.strip_suffix("月")) {
            (n, Unit::Month)
        } else if let Some(n) = s.strip_suffix('y').or_else(|| s.strip_suffix("岁")) {
            (n, Unit::Year)
        } else {
            (s, Unit::Year)
        };
        let n: i64 = num.trim().parse().map_err(|_| format!("not an age: {s:?} (e.g. 28d, 6m, 18y)"))?;
        if !(0..=150 * 366).contains(&n) {
            return Err(format!("age out of range: {s:?}"));
        }
        Ok(Bound { n, unit })
    }
    fn of(self, a: &Age) -> i64 {
        match self.unit {
            Unit::Day => a.days,
            Unit::Month => a.months,
            Unit::Year => a.years,
        }
    }
    fn text(self) -> String {
        match self.unit {
            Unit::Day => format!("{}天", self.n),
            Unit::Month => format!("{}个月", self.n),
            Unit::Year => format!("{}岁", self.n),
        }
    }
}

/// `min ≤ age < max`.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: Option<Bound>,
    max: Option<Bound>,
}

impl Range {
    fn parse_row(s: &str) -> Result<Range, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| format!("not a range: {s:?} (e.g. 0d-28d, -12y, 1y-)"))?;
        let opt = |x: &str| if x.trim().is_empty() { Ok(None) } else { Bound::parse(x).map(Some) };
        Range { min: opt(a)?, max: opt(b)? }.checked()
    }
    fn checked(self) -> Result<Range, String> {
        if self.min.is_none() && self.max.is_none() {
            return Err("an age range needs min or max".into());
        }
        Ok(self)
    }
    fn allows(&self, a: &Age) -> bool {
        self.min.is_none_or(|m| m.of(a) >= m.n) && self.max.is_none_or(|m| m.of(a) < m.n)
    }
    fn text(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("{}至{}（不含）", a.text(), b.text()),
            (Some(a), None) => format!("{}及以上", a.text()),
            (None, Some(b)) => format!("{}以下", b.text()),
            (None, None) => String::new(),
        }
    }
}

struct AgeLogic {
    range: RowParams<Range>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["min", "max"])?;
    let min = i.params.get("min").map(|v| value_text(v).and_then(|t| Bound::parse(&t))).transpose()?;
    let max = i.params.get("max").map(|v| value_text(v).and_then(|t| Bound::parse(&t))).transpose()?;
    let default = if min.is_some() || max.is_some() { Some(Range { min, max }) } else { None };
    let range = RowParams::with_default(i, default, "params.min or params.max", Range::parse_row)?;
    Ok(Compiled { logic: Box::new(AgeLogic { range }), matchers: vec![] })
}

impl Logic for AgeLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(range), Some(line)) = (self.range.get(tag), c.lines.get(li as usize)) else { return };
        let Some(birth) = c.patient.birth else {
            out.unchecked(r.index, li, Fact::BirthDate);
            return;
        };
        // A service before the birth date is a data error; it is judged as age 0.
        let age = Age::between(birth, line.date()).unwrap_or(Age { days: 0, months: 0, years: 0 });
        if !range.allows(&age) {
            r.hit_line(
                out,
                li,
                line,
                tag,
                vec![("age", Val::Str(age.text().into())), ("range", Val::Str(range.text().into()))],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    fn rs() -> crate::rules::CompiledRuleSet {
        let y = rule("age", "【{item}】限{range}，患者{age}", "    select: { table: tables/a.csv }\n");
        let t =
            "code,name,param\n001201000070000,新生儿护理,0d-28d\nXC01CAS%,儿童专用药,-18y\nXJ01MAZ%,喹诺酮类,18y-\n";
        try_ruleset(&y, &[("tables/a.csv", t)]).unwrap()
    }

    #[test]
    fn newborn_item_on_day_27_passes_and_on_day_28_is_hit() {
        let mut c = claim();
        c.patient.birth = Some(date("2025-06-01"));
        c.lines.push(line("A", "001201000070000", 1, 1000, "2025-06-28 08:00:00"));
        c.lines.push(line("B", "001201000070000", 1, 1000, "2025-06-29 08:00:00"));
        let d = evaluate(&rs(), &c);
        assert_eq!(hits(&d), one("R1", &["B"]));
        assert_eq!(d.hits[0].message, "【新生儿护理】限0天至28天（不含），患者28天");
    }

    #[test]
    fn adult_only_drug_for_a_child_is_hit_and_child_drug_for_an_adult_is_hit() {
        let mut c = claim();
        c.patient.birth = Some(date("2015-01-01"));
        c.lines.push(line("Q", "XJ01MAZ001A001010100001", 1, 500, "2025-06-01 08:00:00"));
        c.lines.push(line("K", "XC01CAS001A001010100001", 1, 500, "2025-06-01 08:00:00"));
        assert_eq!(hits(&evaluate(&rs(), &c)), one("R1", &["Q"]));
        c.patient.birth = Some(date("1990-01-01"));
        assert_eq!(hits(&evaluate(&rs(), &c)), one("R1", &["K"]));
    }

    #[test]
    fn eighteenth_birthday_is_the_boundary() {
        let mut c = claim();
        c.patient.birth = Some(date("2007-06-01"));
        c.lines.push(line("K", "XC01CAS001A001010100001", 1, 500, "2025-05-31 08:00:00"));
        assert!(evaluate(&rs(), &c).hits.is_empty());
        c.lines[0].time = crate::claim::time::parse_datetime("2025-06-01 08:00:00").unwrap();
        assert_eq!(hits(&evaluate(&rs(), &c)), one("R1", &["K"]));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let y = rule("age", "{item}", "    select: { table: tables/a.csv }\n");
        let e = try_ruleset(&y, &[("tables/a.csv", "code,name,param\nX,a,young\n")]).err().unwrap();
        assert!(e.to_string().contains("not a range"), "{e}");
    }
}
