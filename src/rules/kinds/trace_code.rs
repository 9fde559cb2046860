//! 药品追溯码: "一盒药品的追溯码，只应有一次被扫码销售的记录". A code on this claim that was already
//! sold (to anyone, at any institution sharing the history) and not returned is 回流药 or a
//! substituted box. A returned (refunded, revoked) box may be sold again; the same line sent again
//! (retry) is not a second sale. Lines with no trace code are not judged here.

use super::*;
use crate::rules::decision::{Fact, Val};

const VARS: &[&str] = &["item", "code", "trace_code", "sold_on", "to_whom"];
pub(crate) static SPEC: KindSpec = KindSpec::new("trace_code", Scope::Line, TableShape::Rows, VARS, compile);

struct TraceLogic {
    lookback: u32,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["lookback_days"])?;
    let lookback = match i.params.get("lookback_days") {
        Some(v) => value_text(v)?.parse::<u32>().map_err(|_| "params.lookback_days: a whole number")?,
        None => 1,
    };
    Ok(Compiled { logic: Box::new(TraceLogic { lookback }), matchers: vec![] })
}

impl Logic for TraceLogic {
    fn line(&self, r: &RuleCx<'_>, c: &Claim, li: u32, tag: u32, out: &mut Out) {
        let Some(line) = c.lines.get(li as usize) else { return };
        if line.trace_codes.is_empty() || line.is_refund() {
            return;
        }
        let Some(traces) = &c.traces else {
            out.unchecked(r.index, li, Fact::History);
            return;
        };
        let earlier = line.trace_codes.iter().find_map(|code| {
            traces.iter().find(|t| &t.code == code && !(t.mdtrt_id == c.encounter.mdtrt_id && t.feedetl_sn == line.id))
        });
        if let Some(t) = earlier {
            let whom = if t.same_patient { "该患者（同一追溯码重复扫码）" } else { "其他患者" };
            r.hit_line(
                out,
                li,
                line,
                tag,
                vec![
                    ("trace_code", Val::Str(t.code.clone().into())),
                    ("sold_on", Val::Date(t.day)),
                    ("to_whom", Val::Str(whom.into())),
                ],
            );
        }
    }
    fn lookback_days(&self) -> u32 {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::claim::TraceUse;
    use crate::rules::evaluate;

    #[test]
    fn a_code_sold_before_is_hit_a_retry_of_the_same_line_is_not() {
        let rs = ruleset(&rule("trace_code", "【{item}】追溯码{trace_code}已于{sold_on}销售给{to_whom}", ""));
        let mut c = claim();
        let mut l = line("F1", "XA10BAA001A001010101", 1, 3000, "2025-07-02 09:00:00");
        l.trace_codes = vec!["81234567890123456789".into()];
        c.lines.push(l);
        c.lines.push(line("F2", "XA10BAA001A001010101", 1, 3000, "2025-07-02 09:00:00"));
        assert_eq!(evaluate(&rs, &c).unchecked[0].fact, "history");
        c.traces = Some(vec![]);
        assert!(evaluate(&rs, &c).hits.is_empty());
        let sold = |mdtrt: &str, sn: &str| TraceUse {
            code: "81234567890123456789".into(),
            mdtrt_id: mdtrt.into(),
            feedetl_sn: sn.into(),
            day: date("2025-07-01"),
            fixmedins_code: "H1".into(),
            same_patient: false,
        };
        c.traces = Some(vec![sold(&c.encounter.mdtrt_id.clone(), "F1")]);
        assert!(evaluate(&rs, &c).hits.is_empty(), "the same line again");
        c.traces = Some(vec![sold("OTHER", "X9")]);
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["F1"]));
        assert_eq!(d.hits[0].message, "【XA10BAA001A001010101】追溯码81234567890123456789已于2025-07-01销售给其他患者");
    }
}
