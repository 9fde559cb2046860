//! Items the fund does not pay, or pays only on a condition the messages cannot show: every
//! selected line is hit. 中药饮片单复方均不予支付 (两库 第十一批) blocks; 药品限二线使用 (第九批) and
//! 限适应症 texts no diagnosis list decides are reminders the doctor answers (3103). `{note}` is the
//! row's published text (the table's `note` column), else `params.note`.

use super::*;
use crate::rules::decision::Val;

const VARS: &[&str] = &["item", "code", "note"];
pub(crate) static SPEC: KindSpec = KindSpec::new("listed", Scope::Line, TableShape::Rows, VARS, compile);

struct ListedLogic {
    default: SmolStr,
    notes: Vec<SmolStr>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["note"])?;
    let default: SmolStr = i.params.get("note").map(value_text).transpose()?.unwrap_or_default().into();
    let notes = i.rows.iter().map(|(_, r)| SmolStr::new(r.note.trim())).collect();
    Ok(Compiled { logic: Box::new(ListedLogic { default, notes }), matchers: vec![] })
}

impl Logic for ListedLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let Some(line) = c.lines.get(li as usize) else { return };
        let note = self.notes.get(tag as usize).filter(|n| !n.is_empty()).unwrap_or(&self.default);
        r.hit_line(out, li, line, tag, vec![("note", Val::Str(note.clone()))]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    const TABLE: &str = "code,name,param,basis,note\nT001700251,蜂蜜,,第十一批,不得纳入基金支付范围的中药饮片\n";

    #[test]
    fn every_listed_line_is_hit_with_the_rows_note_and_basis() {
        let y = rule("listed", "【{item}】{note}", "    select: { table: tables/t.csv }\n");
        let rs = try_ruleset(&y, &[("tables/t.csv", TABLE)]).unwrap();
        let mut c = claim();
        c.lines.push(line("F1", "T001700251", 10, 50, "2025-06-01 09:00:00"));
        c.lines.push(line("F2", "T001700252", 10, 50, "2025-06-01 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【蜂蜜】不得纳入基金支付范围的中药饮片");
        assert_eq!(&*d.hits[0].basis, "测试；第十一批");
    }

    #[test]
    fn a_refund_line_is_not_hit() {
        let y =
            rule("listed", "【{item}】{note}", "    select: { codes: [T001700251] }\n    params: { note: 不予支付 }\n");
        let rs = ruleset(&y);
        let mut c = claim();
        c.lines.push(line("F1", "T001700251", -10, 50, "2025-06-01 09:00:00"));
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.lines[0] = line("F1", "T001700251", 10, 50, "2025-06-01 09:00:00");
        assert_eq!(evaluate(&rs, &c).hits[0].message, "【T001700251】不予支付");
    }
}
