//! 限科室 (专科限制): an item that only some departments may order.

use super::*;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "dept", "dept_name", "allowed"];
pub(crate) static SPEC: KindSpec = KindSpec::new("department", Scope::Line, TableShape::Rows, VARS, compile);

struct DeptLogic {
    allowed: RowParams<CodeList>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["depts"])?;
    let allowed = RowParams::build(
        i,
        "depts",
        |v| CodeList::parse(&value_list(v)?),
        |s| CodeList::parse(&s.split('|').map(str::to_owned).collect::<Vec<_>>()),
    )?;
    Ok(Compiled { logic: Box::new(DeptLogic { allowed }), matchers: vec![] })
}

impl Logic for DeptLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let (Some(allowed), Some(line)) = (self.allowed.get(tag), c.lines.get(li as usize)) else { return };
        if line.dept_code.is_empty() {
            out.unchecked(r.index, li, Fact::Department);
            return;
        }
        if !allowed.matches(&line.dept_code) {
            r.hit_line(
                out,
                li,
                line,
                tag,
                vec![
                    ("dept", Val::Str(line.dept_code.clone())),
                    ("dept_name", Val::Str(line.dept_name.clone())),
                    ("allowed", Val::Str(allowed.text().into())),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    #[test]
    fn only_listed_departments_may_order() {
        let rs = ruleset(&rule(
            "department",
            "【{item}】限{allowed}开具，开单科室{dept_name}({dept})",
            "    select: { code_prefixes: [XS01LA] }\n    params: { depts: [\"A10%\", \"100501\"] }\n",
        ));
        let mut c = claim();
        c.lines.push(line("F1", "XS01LAK001B001010100001", 1, 500000, "2025-06-01 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【XS01LAK001B001010100001】限100501、A10*开具，开单科室内科(100309)");
        c.lines[0].dept_code = "A10.01".into();
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.lines[0].dept_code = Default::default();
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "bilg_dept_codg");
    }
}
