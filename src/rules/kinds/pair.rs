//! 重复收费 (两库 第七批: main ⊃ sub within a window — 单日, 单次就诊, 同一小时, 6小时) and
//! 互斥项目 (Ⅰ级护理 with Ⅱ级护理 the same day). `includes` hits the sub line (it is already paid
//! inside the main item); `exclusive` hits both.

use super::*;
use crate::rules::decision::Val;
use chrono::NaiveDate;

const VARS: &[&str] = &["main", "main_code", "sub", "sub_code", "window", "date", "earlier"];
pub(crate) static SPEC: KindSpec = KindSpec::new("pair", Scope::Group, TableShape::Pairs, VARS, compile).many_tags();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Day,
    Visit,
    Hours(i64),
}

impl Window {
    fn parse(s: &str) -> Result<Window, String> {
        match s.trim() {
            "day" | "单日" | "同一日" | "自然日" => Ok(Window::Day),
            "visit" | "单次就诊" | "当次住院" | "当次门诊" => Ok(Window::Visit),
            "hour" | "1h" | "同一小时" => Ok(Window::Hours(1)),
            o => {
                let n = o.strip_suffix('h').or_else(|| o.strip_suffix("小时")).and_then(|n| n.parse::<i64>().ok());
                match n {
                    Some(n) if (1..=72).contains(&n) => Ok(Window::Hours(n)),
                    _ => Err(format!("unknown window {o:?} (day, visit, hour, 6h)")),
                }
            }
        }
    }
    fn text(self) -> String {
        match self {
            Window::Day => "同一日".into(),
            Window::Visit => "同一次就诊".into(),
            Window::Hours(1) => "同一小时".into(),
            Window::Hours(n) => format!("{n}小时内"),
        }
    }
}

struct Pair {
    main_name: String,
    sub_name: String,
    /// The codes, for finding the other item among earlier messages' lines (exact codes only).
    main_code: SmolStr,
    sub_code: SmolStr,
    window: Window,
}

struct PairLogic {
    exclusive: bool,
    pairs: Vec<Pair>,
}

fn compile(i: &KindInput<'_>) -> Result<Compiled, String> {
    only_params(i.params, &["mode", "window", "pairs"])?;
    let exclusive = choice(i.params, "mode", &[("includes", false), ("exclusive", true)])?;
    let default_window = i.params.get("window").map(|v| value_text(v).and_then(|t| Window::parse(&t))).transpose()?;
    let mut rows: Vec<(String, crate::rules::source::PairRow)> =
        i.pairs.iter().map(|(l, r)| (format!("table line {l}"), r.clone())).collect();
    if let Some(v) = i.params.get("pairs") {
        let list: Vec<crate::rules::source::PairRow> =
            serde_json::from_value(v.clone()).map_err(|e| format!("params.pairs: {e}"))?;
        rows.extend(list.into_iter().enumerate().map(|(n, r)| (format!("params.pairs[{n}]"), r)));
    }
    if rows.is_empty() {
        return Err("no pairs: give select.table or params.pairs".into());
    }
    let mut pairs = Vec::with_capacity(rows.len());
    let mut matchers = Vec::with_capacity(rows.len() * 2);
    for (p, (at, r)) in rows.into_iter().enumerate() {
        let window = match (r.window.trim(), default_window) {
            ("", Some(w)) => w,
            ("", None) => return Err(format!("{at}: no window and no params.window default")),
            (w, _) => Window::parse(w).map_err(|e| format!("{at}: {e}"))?,
        };
        if r.main.trim().is_empty() || r.sub.trim().is_empty() {
            return Err(format!("{at}: empty main or sub"));
        }
        matchers.push((r.main.trim().to_owned(), (p as u32) * 2));
        matchers.push((r.sub.trim().to_owned(), (p as u32) * 2 + 1));
        let exact = |c: &str| if c.ends_with(['%', '*']) { SmolStr::default() } else { SmolStr::new(c) };
        pairs.push(Pair {
            main_code: exact(r.main.trim()),
            sub_code: exact(r.sub.trim()),
            main_name: r.main_name,
            sub_name: r.sub_name,
            window,
        });
    }
    Ok(Compiled { logic: Box::new(PairLogic { exclusive, pairs }), matchers })
}

impl PairLogic {
    fn emit(
        &self,
        r: &RuleCx<'_>,
        c: &Claim,
        p: &Pair,
        (mains, subs): (&[u32], &[u32]),
        date: Option<NaiveDate>,
        out: &mut Out,
    ) {
        let (Some(&m0), Some(&s0)) = (mains.first(), subs.first()) else { return };
        let name = |li: u32, given: &str| {
            let l = &c.lines[li as usize];
            if !given.is_empty() {
                SmolStr::new(given)
            } else {
                l.name.clone().unwrap_or_else(|| l.code.clone())
            }
        };
        let mut lines: Vec<u32> =
            if self.exclusive { mains.iter().chain(subs).copied().collect() } else { subs.to_vec() };
        lines.sort_unstable();
        lines.dedup();
        let amount = subs.iter().fold(crate::claim::Fen::ZERO, |a, &s| a + c.lines[s as usize].amount);
        let date = date.unwrap_or_else(|| c.lines[s0 as usize].date());
        out.hit(
            r.index,
            lines,
            amount,
            vec![
                ("main", Val::Str(name(m0, &p.main_name))),
                ("main_code", Val::Str(c.lines[m0 as usize].code.clone())),
                ("sub", Val::Str(name(s0, &p.sub_name))),
                ("sub_code", Val::Str(c.lines[s0 as usize].code.clone())),
                ("window", Val::Str(p.window.text().into())),
                ("date", Val::Date(date)),
                ("earlier", Val::Str(SmolStr::default())),
            ],
        );
    }
}

impl PairLogic {
    /// `lines` (all mains, or all subs when `are_subs`) of this claim against the other item's
    /// accepted lines from earlier messages within the window: each line with an earlier partner is
    /// hit, naming it. A sub is the duplicate of an earlier main; a main billed after its sub was
    /// accepted is hit in its place (only this claim's lines can still be stopped).
    fn against_history(&self, r: &RuleCx<'_>, c: &Claim, p: &Pair, lines: &[u32], are_subs: bool, out: &mut Out) {
        let other = if are_subs { &p.main_code } else { &p.sub_code };
        if other.is_empty() || c.history.is_none() {
            return;
        }
        for &li in lines {
            let l = &c.lines[li as usize];
            let within = |q: &crate::claim::PastLine| match p.window {
                Window::Day => q.date() == l.date(),
                Window::Visit => *q.mdtrt_id == *c.encounter.mdtrt_id,
                Window::Hours(h) => (q.time - l.time).num_seconds().abs() < h * 3600,
            };
            let prior: Vec<&crate::claim::PastLine> =
                r.past.earlier(other).filter(|q| !q.refund && within(q)).collect();
            let Some(first) = prior.first() else { continue };
            let own = if are_subs { &p.sub_name } else { &p.main_name };
            let own_name =
                if own.is_empty() { l.name.clone().unwrap_or_else(|| l.code.clone()) } else { SmolStr::new(own) };
            let given = if are_subs { &p.main_name } else { &p.sub_name };
            let other_name = if given.is_empty() { SmolStr::new(&*first.code) } else { SmolStr::new(given) };
            let (main, main_code, sub, sub_code) = if are_subs {
                (other_name, SmolStr::new(&*first.code), own_name, l.code.clone())
            } else {
                (own_name, l.code.clone(), other_name, SmolStr::new(&*first.code))
            };
            out.hit(
                r.index,
                vec![li],
                l.amount,
                vec![
                    ("main", Val::Str(main)),
                    ("main_code", Val::Str(main_code)),
                    ("sub", Val::Str(sub)),
                    ("sub_code", Val::Str(sub_code)),
                    ("window", Val::Str(p.window.text().into())),
                    ("date", Val::Date(l.date())),
                    ("earlier", Val::Str(earlier_note(&prior))),
                ],
            );
        }
    }
}

impl Logic for PairLogic {
    /// The day's, the hour's or the visit's earlier uploads are read from history.
    fn lookback_days(&self) -> u32 {
        if self.pairs.iter().any(|p| p.window == Window::Visit) {
            30
        } else {
            1
        }
    }

    fn group(&self, r: &RuleCx<'_>, c: &Claim, members: &[(u32, u32)], out: &mut Out) {
        // (pair, role, line), refunds left out: a refund never makes a duplicate.
        let mut m: Vec<(u32, u32, u32)> = members
            .iter()
            .filter(|&&(li, _)| c.lines.get(li as usize).is_some_and(|l| !l.is_refund()))
            .map(|&(li, tag)| (tag / 2, tag % 2, li))
            .collect();
        m.sort_unstable();
        for run in m.chunk_by(|a, b| a.0 == b.0) {
            let Some(p) = self.pairs.get(run[0].0 as usize) else { continue };
            let mains: Vec<u32> = run.iter().filter(|x| x.1 == 0).map(|x| x.2).collect();
            let subs: Vec<u32> = run.iter().filter(|x| x.1 == 1 && !mains.contains(&x.2)).map(|x| x.2).collect();
            if mains.is_empty() || subs.is_empty() {
                // One of the two on this claim: the other may have been accepted in an earlier message.
                self.against_history(r, c, p, if mains.is_empty() { &subs } else { &mains }, mains.is_empty(), out);
                continue;
            }
            match p.window {
                Window::Visit => self.emit(r, c, p, (&mains, &subs), None, out),
                Window::Day => {
                    let mut dates: Vec<NaiveDate> = subs.iter().map(|&s| c.lines[s as usize].date()).collect();
                    dates.sort_unstable();
                    dates.dedup();
                    for d in dates {
                        let dm: Vec<u32> = mains.iter().copied().filter(|&x| c.lines[x as usize].date() == d).collect();
                        let ds: Vec<u32> = subs.iter().copied().filter(|&x| c.lines[x as usize].date() == d).collect();
                        if !dm.is_empty() {
                            self.emit(r, c, p, (&dm, &ds), Some(d), out);
                        }
                    }
                }
                Window::Hours(h) => {
                    for &s in &subs {
                        let ts = c.lines[s as usize].time;
                        let near: Vec<u32> = mains
                            .iter()
                            .copied()
                            .filter(|&x| (c.lines[x as usize].time - ts).num_seconds().abs() < h * 3600)
                            .collect();
                        if !near.is_empty() {
                            self.emit(r, c, p, (&near, &[s]), None, out);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::rules::evaluate;

    const PAIRS: &str = "main,main_name,sub,sub_name,window,basis\n\
        001103000010000,急诊监护费,001109000010000,普通病房床位费,day,第七批\n\
        003107010160000,持续有创性血压监测,003107010220000,心电监测,hour,第七批\n";

    fn includes() -> crate::rules::CompiledRuleSet {
        let y = rule("pair", "{date}{window}收取【{main}】与【{sub}】", "    select: { table: tables/p.csv }\n");
        try_ruleset(&y, &[("tables/p.csv", PAIRS)]).unwrap()
    }

    #[test]
    fn sub_item_on_the_same_day_as_its_main_item_is_hit() {
        let mut c = claim();
        c.lines.push(line("M", "001103000010000", 1, 5000, "2025-06-01 08:00:00"));
        c.lines.push(line("S", "001109000010000", 1, 3000, "2025-06-01 23:00:00"));
        c.lines.push(line("T", "001109000010000", 1, 3000, "2025-06-02 08:00:00"));
        let d = evaluate(&includes(), &c);
        assert_eq!(hits(&d), one("R1", &["S"]));
        assert_eq!(d.hits[0].message, "2025-06-01同一日收取【急诊监护费】与【普通病房床位费】");
        assert_eq!(d.hits[0].amount.get(), 3000);
    }

    #[test]
    fn a_partner_accepted_in_an_earlier_upload_the_same_day_makes_this_line_a_duplicate() {
        use crate::claim::{History, PastLine};
        use std::sync::Arc;
        let mut c = claim();
        let mid: Arc<str> = c.encounter.mdtrt_id.as_str().into();
        let mut h = History::default();
        h.lines.push(PastLine::of(mid.clone(), &line("M0", "001103000010000", 1, 5000, "2025-06-01 08:00:00"), false));
        c.history = Some(Arc::new(h));
        // The sub in a second upload the same day: hit, naming the earlier main.
        c.lines.push(line("S", "001109000010000", 1, 3000, "2025-06-01 23:00:00"));
        let y = rule("pair", "【{main}】已含【{sub}】{earlier}", "    select: { table: tables/p.csv }\n");
        let rs = try_ruleset(&y, &[("tables/p.csv", PAIRS)]).unwrap();
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["S"]));
        assert_eq!(
            d.hits[0].message,
            "【急诊监护费】已含【普通病房床位费】（含此前已上传的明细M0 2025-06-01 08:00:00）"
        );
        // The next day it is no duplicate; and a resent main (a retry of M0) is not its own partner.
        c.lines[0] = line("S", "001109000010000", 1, 3000, "2025-06-02 08:00:00");
        assert!(evaluate(&rs, &c).hits.is_empty());
        c.lines[0] = line("M0", "001103000010000", 1, 5000, "2025-06-01 08:00:00");
        assert!(evaluate(&rs, &c).hits.is_empty());
    }

    #[test]
    fn hour_window_is_strictly_less_than_sixty_minutes() {
        let mut c = claim();
        c.lines.push(line("M", "003107010160000", 1, 5000, "2025-06-01 08:00:00"));
        c.lines.push(line("S", "003107010220000", 1, 300, "2025-06-01 08:59:59"));
        c.lines.push(line("T", "003107010220000", 1, 300, "2025-06-01 09:00:00"));
        assert_eq!(hits(&evaluate(&includes(), &c)), one("R1", &["S"]));
    }

    #[test]
    fn exclusive_nursing_levels_hit_both_lines_and_refunds_do_not_count() {
        let rs = ruleset(&rule(
            "pair",
            "{date}同时收取【{main}】和【{sub}】",
            "    params:\n      mode: exclusive\n      window: day\n      pairs:\n        - { main: \"001201000030000\", main_name: Ⅰ级护理, sub: \"001201000040000\", sub_name: Ⅱ级护理 }\n",
        ));
        let mut c = claim();
        c.lines.push(line("N1", "001201000030000", 1, 2000, "2025-06-01 08:00:00"));
        c.lines.push(line("N2", "001201000040000", 1, 1500, "2025-06-01 09:00:00"));
        let d = evaluate(&rs, &c);
        assert_eq!(hits(&d), one("R1", &["N1", "N2"]));
        assert_eq!(d.hits[0].message, "2025-06-01同时收取【Ⅰ级护理】和【Ⅱ级护理】");
        c.lines[1].qty = crate::claim::Qty::whole(-1);
        assert!(evaluate(&rs, &c).hits.is_empty());
    }

    #[test]
    fn select_lists_are_refused_for_pairs() {
        let y = rule(
            "pair",
            "{main}",
            "    select: { codes: [X] }\n    params: { pairs: [{ main: A, sub: B, window: day }] }\n",
        );
        assert!(try_ruleset(&y, &[]).err().unwrap().to_string().contains("select lists are not allowed"));
    }
}
