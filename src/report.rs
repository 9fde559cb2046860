//! The office's figures as documents, in Chinese: the `/office` page body, the monthly report
//! (`claimgate report`, HTML/CSV/JSON), the decision drill-down and the CSV export.
//!
//! Everything is rendered on the server into self-contained HTML (inline CSS, inline SVG, no
//! script, no external resource), so it works on a hospital intranet with no internet access.
//!
//! Architecture Invariant: every value read from the journal goes through [`esc`] (HTML) or
//! [`csv_cell`] (CSV) before it is written out; no query, no HTTP here.

use crate::journal::stats::{self, Entry, Filter, Listing, Stats};
use crate::journal::{self, Location};
use std::fmt::Write;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query value.
pub fn url_enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// `a=b&c=d` from pairs, percent-encoded.
pub fn query(pairs: &[(&str, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", url_enc(v))).collect::<Vec<_>>().join("&")
}

pub fn decision_label(d: &str) -> &str {
    match d {
        "pass" => "通过",
        "remind" => "提醒",
        "block" => "拦截",
        "unchecked" => "未审",
        other => other,
    }
}

fn action_label(a: &str) -> &str {
    match a {
        "block" => "拦截",
        "remind" => "提醒",
        other => other,
    }
}

fn way_label(w: &str) -> &str {
    match w {
        "1" => "继续执行",
        "2" => "返回修改",
        other => other,
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

/// A pseudonym shortened for screens (still not reversible; the full one is in JSON and CSV).
fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

/// `2025-06-10T09:00:00.123+08:00` as `2025-06-10 09:00:00`.
fn time(at: &str) -> String {
    at.chars().take(19).map(|c| if c == 'T' { ' ' } else { c }).collect()
}

/// A department or doctor as a person reads it: `名称（编码）`, the code alone when no name is
/// known, and 未归属 when the message named none.
pub fn named(name: &str, code: &str) -> String {
    match (name.trim(), code) {
        (_, "") => "未归属（报文未载明）".to_owned(),
        ("", c) => c.to_owned(),
        (n, c) => format!("{n}（{c}）"),
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}

/// The scope of a filter in words.
pub fn scope(f: &Filter) -> String {
    let mut s = match (f.from, f.to) {
        (Some(a), Some(b)) => format!("服务日期 {a} 至 {b}"),
        (Some(a), None) => format!("服务日期 {a} 起"),
        (None, Some(b)) => format!("服务日期截至 {b}"),
        (None, None) => "全部日期".to_owned(),
    };
    for (label, v) in [("科室", &f.dept), ("医生", &f.doctor), ("规则", &f.rule)] {
        if let Some(v) = v {
            let _ = write!(s, "，{label} {v}");
        }
    }
    s
}

const CSS: &str = "
body{font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC','WenQuanYi Micro Hei',sans-serif;margin:0;background:#f4f6f8;color:#1f2933}
header{background:#0b5394;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:20px;margin:0}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin:0 0 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:16px;margin:0 0 8px;color:#0b5394}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f4f8}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px;background:none;box-shadow:none;padding:0}
.card{background:#fff;border-radius:6px;padding:10px 16px;min-width:110px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:22px}
.card span{font-size:12px;color:#52606d}
.card.block b{color:#c62828}.card.remind b{color:#e67e22}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;font-size:13px}
form.filters label{display:flex;flex-direction:column}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;color:#fff;background:#7b8794}
.tag.block{background:#c62828}.tag.remind{background:#e67e22}.tag.pass{background:#2e7d32}
.muted{color:#7b8794;font-size:12px}
.err{color:#c62828}
a{color:#0b5394}
.summary p{margin:4px 0;line-height:1.7}
.report header{background:#fff;color:#0b5394;border-bottom:2px solid #0b5394}
@page{size:A4;margin:14mm 12mm}
@media print{body{background:#fff}main{padding:0;max-width:none}section{box-shadow:none;border:1px solid #e4e7eb;break-inside:avoid-page}
tr{break-inside:avoid}thead{display:table-header-group}header{background:#fff;color:#0b5394}form,.pager,.noprint{display:none}
section.appendix{break-before:page}}
";

/// A complete HTML document.
pub fn page(title: &str, header_right: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{CSS}</style></head><body><header><h1>{t}</h1><div>{header_right}</div></header><main>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// The days the trend covers: every day from the scope's first day (else the first day with
/// records) to its last (else the last day with records), so a day without records shows as a gap
/// and not as a missing column; `None` per day without records. Only the days with records when
/// the range is longer than a year.
fn trend_days(s: &Stats) -> Vec<(String, Option<&stats::GroupRow>)> {
    let parse = |k: &str| chrono::NaiveDate::parse_from_str(k, "%Y-%m-%d").ok();
    let first = s.filter.from.or_else(|| s.by_day.first().and_then(|d| parse(&d.key)));
    let last = s.filter.to.or_else(|| s.by_day.last().and_then(|d| parse(&d.key)));
    let with_records = || s.by_day.iter().map(|d| (d.key.clone(), Some(d))).collect();
    let (Some(first), Some(last)) = (first, last) else { return with_records() };
    // A scope that runs past the records (an open-ended month) ends at the last record.
    let last = match s.by_day.last().and_then(|d| parse(&d.key)) {
        Some(l) if s.filter.to.is_none() => last.max(l),
        _ => last,
    };
    if (last - first).num_days() > 370 || last < first {
        return with_records();
    }
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        let key = day.format("%Y-%m-%d").to_string();
        let row = s.by_day.iter().find(|d| d.key == key);
        out.push((key, row));
        day = day.succ_opt().unwrap_or(last + chrono::Days::new(1));
    }
    out
}

/// The daily trend as an inline SVG: a stacked bar per service date (blocked, reminded, other
/// decisions), and a gap marker on each day of the scope without records.
pub fn trend_svg(s: &Stats) -> String {
    let days = trend_days(s);
    if s.by_day.is_empty() {
        return "<p class=\"muted\">所选范围内没有审核记录。</p>".into();
    }
    let (w, h, left, bottom, top) = (860.0_f64, 240.0_f64, 44.0_f64, 36.0_f64, 12.0_f64);
    let max = s.by_day.iter().map(|d| d.decisions).max().unwrap_or(1).max(1) as f64;
    let plot_h = h - bottom - top;
    let slot = (w - left - 8.0) / days.len() as f64;
    let bar = (slot * 0.7).clamp(2.0, 40.0);
    let y = |v: f64| top + plot_h - v / max * plot_h;
    let mut o = format!(
        "<svg id=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"每日审核趋势（按服务日期）\">"
    );
    // Axis and grid: 0, half, max.
    for frac in [0.0, 0.5, 1.0] {
        let v = (max * frac).round();
        let yy = y(v);
        let _ = write!(
            o,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{}\" y2=\"{yy:.1}\" stroke=\"#e4e7eb\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#52606d\">{v}</text>",
            w - 4.0,
            left - 4.0,
            yy + 4.0
        );
    }
    let label_every = (days.len() / 10).max(1);
    for (i, (key, d)) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        match d {
            Some(d) => {
                let other = (d.decisions - d.block - d.remind).max(0);
                let mut base = 0.0;
                let _ = write!(
                    o,
                    "<g class=\"day\" data-day=\"{}\" data-decisions=\"{}\" data-remind=\"{}\" data-block=\"{}\"><title>{}：审核 {} 笔，提醒 {}，拦截 {}，命中 {}</title>",
                    esc(key),
                    d.decisions,
                    d.remind,
                    d.block,
                    esc(key),
                    d.decisions,
                    d.remind,
                    d.block,
                    d.hits
                );
                for (n, color) in [(d.block, "#c62828"), (d.remind, "#e67e22"), (other, "#9aa5b1")] {
                    if n > 0 {
                        let (y1, y0) = (y(base + n as f64), y(base));
                        let _ = write!(
                            o,
                            "<rect x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                            y0 - y1
                        );
                        base += n as f64;
                    }
                }
                o.push_str("</g>");
            }
            None => {
                // A day without records: a hatched band the height of the plot, so an empty day
                // reads as a gap (no traffic, or claimgate was not in the path) and not as zero.
                let _ = write!(
                    o,
                    "<g class=\"gap\" data-gap=\"{}\"><title>{}：无审核记录</title><rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" height=\"{plot_h:.1}\" fill=\"#f0f4f8\" stroke=\"#cbd2d9\" stroke-dasharray=\"3 2\"/></g>",
                    esc(key),
                    esc(key)
                );
            }
        }
        if i % label_every == 0 || i + 1 == days.len() {
            let label: String = key.chars().skip(5).collect();
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#52606d\">{}</text>",
                x + bar / 2.0,
                h - bottom + 14.0,
                esc(&label)
            );
        }
    }
    let ly = h - 8.0;
    for (i, (color, name)) in
        [("#c62828", "拦截"), ("#e67e22", "提醒"), ("#9aa5b1", "通过/未审"), ("#f0f4f8", "无记录")].iter().enumerate()
    {
        let lx = left + 90.0 * i as f64;
        let _ = write!(
            o,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\" stroke=\"#cbd2d9\"/><text x=\"{}\" y=\"{ly}\" font-size=\"11\" fill=\"#1f2933\">{name}</text>",
            ly - 9.0,
            lx + 14.0
        );
    }
    o.push_str("</svg>");
    o
}

fn card(o: &mut String, key: &str, class: &str, value: &str, label: &str) {
    let _ = write!(o, "<div class=\"card {class}\"><b data-k=\"{key}\">{}</b><span>{label}</span></div>", esc(value));
}

/// The totals as cards, and what the 3101/3102 share of them means.
fn cards(t: &stats::Totals) -> String {
    let mut o = String::from("<section class=\"cards\" id=\"totals\">");
    card(&mut o, "decisions", "", &t.decisions.to_string(), "审核笔数");
    card(&mut o, "pass", "pass", &t.pass.to_string(), "通过");
    card(&mut o, "remind", "remind", &t.remind.to_string(), "提醒");
    card(&mut o, "block", "block", &t.block.to_string(), "拦截");
    card(&mut o, "unchecked", "", &t.unchecked.to_string(), "未审（缺少事实）");
    card(&mut o, "hits", "", &t.hits.to_string(), "规则命中次数");
    card(&mut o, "intercepted", "block", &t.intercepted.to_string(), "事中拦截交易");
    card(&mut o, "intercepted_amount", "block", &stats::yuan(t.intercepted_fen), "拦截金额（元）");
    card(&mut o, "reminded_amount", "remind", &stats::yuan(t.reminded_fen), "提醒涉及金额（元）");
    o.push_str("</section>");
    let _ = write!(
        o,
        "<p class=\"muted\">其中 {} 笔为事前/事中分析（3101/3102）的本地应答；其“拦截”为事前警示，不计入拦截金额。</p>",
        t.analyses
    );
    o
}

/// Turns `(filter key, value)` into an href.
pub type Linker<'a> = dyn Fn(&str, &str) -> String + 'a;

/// The figures (cards, trend, top tables) shared by the page and the report. `link` turns a
/// filter change into an href (the page links drill into its own filters; the report has none).
pub fn figures_html(s: &Stats, link: Option<&Linker<'_>>) -> String {
    let mut o = cards(&s.totals);

    let cell = |kind: &str, v: &str, text: &str| -> String {
        match link {
            Some(l) if !v.is_empty() => format!("<a href=\"{}\">{}</a>", esc(&l(kind, v)), esc(text)),
            _ => esc(or_dash(text)),
        }
    };

    // A rule's row: marked with its code, which opens it (a link on the page), then its name.
    let rule = |id: &str, name: &str| (format!(" data-rule=\"{}\"", esc(id)), cell("rule", id, id), esc(or_dash(name)));

    o.push_str("<section><h2>每日趋势（按服务日期）</h2>");
    o.push_str(&trend_svg(s));
    o.push_str("</section>");

    let mut t = Table::open(
        &mut o,
        " id=\"by-rule\"",
        "规则命中排行",
        &["规则编码", "规则名称", "#命中", "#拦截", "#提醒", "#涉及金额（元）", "#记分"],
    );
    for r in &s.by_rule {
        let (tr, code, name) = rule(&r.rule_id, &r.rule_name);
        t.row(&mut o, &tr, &[&code, &name, &r.hits, &r.block, &r.remind, &stats::yuan(r.amount_fen), &r.points]);
    }
    t.close(&mut o, Some("无命中"), "");

    for (id, title, kind, rows) in
        [("by-dept", "科室排行", "dept", &s.by_dept), ("by-doctor", "医生排行", "doctor", &s.by_doctor)]
    {
        let head = if kind == "dept" { "科室" } else { "医生" };
        let heads = [head, "#审核笔数", "#提醒", "#拦截", "#命中", "#涉及金额（元）"];
        let mut t = Table::open(&mut o, &format!(" id=\"{id}\""), title, &heads);
        for g in rows {
            t.row(
                &mut o,
                &format!(" data-{kind}=\"{}\"", esc(&g.key)),
                &[
                    &cell(kind, &g.key, &named(&g.name, &g.key)),
                    &g.decisions,
                    &g.remind,
                    &g.block,
                    &g.hits,
                    &stats::yuan(g.amount_fen),
                ],
            );
        }
        t.close(&mut o, None, "");
    }

    let mut t = Table::open(
        &mut o,
        " id=\"points\"",
        "驾照式记分预警（若被拦截项目已结算，医生将被记分）",
        &["医生", "科室", "#被拦截项目", "#预计记分", "#涉及金额（元）"],
    );
    for p in &s.doctor_points {
        t.row(
            &mut o,
            &format!(" data-doctor=\"{}\"", esc(&p.doctor)),
            &[
                &cell("doctor", &p.doctor, &named(&p.name, &p.doctor)),
                &esc(or_dash(&p.dept_names)),
                &p.blocked_items,
                &p.points,
                &stats::yuan(p.amount_fen),
            ],
        );
    }
    t.close(
        &mut o,
        Some("无被拦截项目"),
        "<p class=\"muted\">分值取自规则包各规则的 points 字段（示例值，待地方确认）；未设分值的规则记 0 分。</p>",
    );

    let mut t = Table::open(
        &mut o,
        " id=\"feedback\"",
        "医生反馈（3103）：提醒采纳率与继续执行率",
        &["规则", "名称", "#提示次数", "#已反馈", "#返回修改", "#继续执行", "#采纳率", "#继续执行率"],
    );
    for f in &s.feedback {
        let rate = |r: f64| if f.answered > 0 { pct(r) } else { "—".into() };
        let (tr, code, name) = rule(&f.rule_id, &f.rule_name);
        t.row(
            &mut o,
            &tr,
            &[
                &code,
                &name,
                &f.prompted,
                &f.answered,
                &f.modified,
                &f.continued,
                &rate(f.acceptance_rate),
                &rate(f.override_rate),
            ],
        );
    }
    t.close(
        &mut o,
        Some("无事前/事中分析提示"),
        "<p class=\"muted\">继续执行率长期很高的规则，可能需要调整阈值或改为仅提示。</p>",
    );

    patients_table(&mut o, &s.top_patients);
    o
}

/// The patients with the most hits, by pseudonym.
fn patients_table(o: &mut String, top: &[stats::GroupRow]) {
    let mut t = Table::open(
        o,
        " id=\"patients\"",
        "命中最多的患者（假名）",
        &["患者假名", "#审核笔数", "#拦截", "#命中", "#涉及金额（元）"],
    );
    for p in top {
        t.row(
            o,
            "",
            &[
                &format!("<code>{}</code>", esc(&short(&p.key))),
                &p.decisions,
                &p.block,
                &p.hits,
                &stats::yuan(p.amount_fen),
            ],
        );
    }
    t.close(o, None, "<p class=\"muted\">假名为医保个人编号的密钥哈希，不可逆；同一患者在各记录中假名相同。</p>");
}

/// A `<section>` holding one table, written straight into the page. A head written `#名称` is a
/// numeric column: it and its cells are right-aligned (`class="n"`).
struct Table {
    numeric: Vec<bool>,
    rows: usize,
}

impl Table {
    /// `attrs` go on the `<section>` as they are (` id="…"`); `title` is HTML.
    fn open(o: &mut String, attrs: &str, title: &str, heads: &[&str]) -> Table {
        let _ = write!(o, "<section{attrs}><h2>{title}</h2><table><thead><tr>");
        let numeric = heads
            .iter()
            .map(|h| {
                let (n, text) = h.strip_prefix('#').map_or((false, *h), |t| (true, t));
                let _ = write!(o, "{}{text}</th>", if n { "<th class=\"n\">" } else { "<th>" });
                n
            })
            .collect();
        o.push_str("</tr></thead><tbody>");
        Table { numeric, rows: 0 }
    }

    /// One row: its `<tr>` attributes (escaped, with a leading space) and its cells, as HTML.
    fn row(&mut self, o: &mut String, tr: &str, cells: &[&dyn std::fmt::Display]) {
        let _ = write!(o, "<tr{tr}>");
        for (c, n) in cells.iter().zip(&self.numeric) {
            let _ = write!(o, "{}{c}</td>", if *n { "<td class=\"n\">" } else { "<td>" });
        }
        o.push_str("</tr>");
        self.rows += 1;
    }

    /// Closes it: `empty` as the only row of a table without rows (when given), then `after` (HTML
    /// under the table, inside the section).
    fn close(self, o: &mut String, empty: Option<&str>, after: &str) {
        if let (0, Some(e)) = (self.rows, empty) {
            let _ = write!(o, "<tr><td colspan=\"{}\" class=\"muted\">{e}</td></tr>", self.numeric.len());
        }
        let _ = write!(o, "</tbody></table>{after}</section>");
    }
}

/// The decisions table of a listing page.
pub fn listing_html(l: &Listing, detail: &dyn Fn(i64) -> String, page_link: &dyn Fn(u32) -> String) -> String {
    let mut o = String::new();
    let mut t = Table::open(
        &mut o,
        " id=\"journal\"",
        &format!("审核明细（共 <span data-k=\"listed\">{}</span> 笔）", l.total),
        &["审核时间", "服务日期", "交易", "科室", "医生", "患者假名", "结果", "命中规则", "#涉及金额（元）"],
    );
    for e in &l.items {
        let rules = e.hits.iter().map(|h| esc(&h.rule_id)).collect::<Vec<_>>().join("<br>");
        let amount: i64 = e.hits.iter().map(|h| h.amount_fen).sum();
        t.row(
            &mut o,
            &format!(" data-decision=\"{}\"", esc(&e.decision)),
            &[
                &format!("<a href=\"{}\">{}</a>", esc(&detail(e.id)), esc(&time(&e.at))),
                &esc(&e.service_date),
                &esc(&e.infno),
                &esc(&named(&e.dept_name, &e.dept_code)),
                &esc(&named(&e.doctor_name, &e.doctor_code)),
                &format!("<code>{}</code>", esc(&short(&e.psn_hash))),
                &format!("<span class=\"tag {}\">{}</span>", esc(&e.decision), esc(decision_label(&e.decision))),
                &rules,
                &stats::yuan(amount),
            ],
        );
    }
    let pages = ((l.total.max(0) as u64).div_ceil(u64::from(l.per_page.max(1)))).max(1);
    let mut pager = format!("<p class=\"pager\">第 {} / {pages} 页 ", l.page);
    if l.page > 1 {
        let _ = write!(pager, "<a href=\"{}\">上一页</a> ", esc(&page_link(l.page - 1)));
    }
    if u64::from(l.page) < pages {
        let _ = write!(pager, "<a href=\"{}\">下一页</a>", esc(&page_link(l.page + 1)));
    }
    pager.push_str("</p>");
    t.close(&mut o, Some("没有符合条件的记录"), &pager);
    o
}

/// One decision with every hit's explanation and the doctors' answers.
pub fn decision_html(e: &Entry) -> String {
    let mut o = String::from("<section id=\"decision\"><h2>审核记录</h2><table>");
    let gw = e.gateway_infcode.map_or_else(|| "未发往网关或无应答".to_owned(), |c| c.to_string());
    for (k, v) in [
        ("审核时间", e.at.clone()),
        ("服务日期", e.service_date.clone()),
        ("交易号（infno）", e.infno.clone()),
        ("报文ID（msgid）", e.msgid.clone()),
        ("机构编码", e.fixmedins_code.clone()),
        ("就诊ID", e.mdtrt_id.clone()),
        ("患者假名", e.psn_hash.clone()),
        ("科室", named(&e.dept_name, &e.dept_code)),
        ("医生", named(&e.doctor_name, &e.doctor_code)),
        ("结果", decision_label(&e.decision).to_owned()),
        ("规则包", e.ruleset.clone()),
        ("网关应答 infcode", gw),
        ("审核耗时（微秒）", e.elapsed_us.to_string()),
    ] {
        let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(or_dash(&v)));
    }
    o.push_str("</table></section><section id=\"hits\"><h2>命中规则与说明</h2>");
    if e.hits.is_empty() {
        o.push_str("<p class=\"muted\">未命中任何规则。</p>");
    }
    for h in &e.hits {
        let _ = write!(
            o,
            "<div class=\"hit\" data-rule=\"{}\"><h3><span class=\"tag {}\">{}</span> {} {}</h3><p>{}</p><p class=\"muted\">涉及明细：{}；金额 {} 元；严重程度 {}；记分 {}</p><p class=\"muted\">政策依据：{}</p></div>",
            esc(&h.rule_id),
            esc(&h.action),
            esc(action_label(&h.action)),
            esc(&h.rule_id),
            esc(&h.rule_name),
            esc(&h.message),
            esc(or_dash(&h.lines.join("、"))),
            stats::yuan(h.amount_fen),
            esc(&h.severity),
            h.points,
            esc(or_dash(&h.basis))
        );
    }
    o.push_str("</section>");
    if !e.answers.is_empty() {
        let mut t = Table::open(
            &mut o,
            " id=\"answers\"",
            "医生反馈（3103）",
            &["时间", "审核结果ID", "规则", "处理方式", "理由"],
        );
        for a in &e.answers {
            t.row(
                &mut o,
                "",
                &[
                    &esc(&time(&a.at)),
                    &esc(&a.jr_id),
                    &esc(&a.rule_id),
                    &esc(way_label(&a.dspo_way)),
                    &esc(or_dash(&a.reason)),
                ],
            );
        }
        t.close(&mut o, None, "");
    }
    o
}

/// The decisions of a listing, one row per hit (a decision without hits has one row). Times are
/// `yyyy-MM-dd HH:mm:ss` in local time, which spreadsheet programs read as dates.
pub fn listing_csv(l: &Listing) -> Vec<u8> {
    let mut rows = vec![[
        "记录ID",
        "审核时间",
        "服务日期",
        "交易号",
        "报文ID",
        "科室编码",
        "科室名称",
        "医生编码",
        "医生姓名",
        "患者假名",
        "结果",
        "规则编码",
        "规则名称",
        "动作",
        "金额（元）",
        "明细行",
        "提示信息",
        "记分",
        "网关应答",
    ]
    .map(str::to_owned)
    .to_vec()];
    for e in &l.items {
        let base = vec![
            e.id.to_string(),
            time(&e.at),
            e.service_date.clone(),
            e.infno.clone(),
            e.msgid.clone(),
            e.dept_code.clone(),
            e.dept_name.clone(),
            e.doctor_code.clone(),
            e.doctor_name.clone(),
            e.psn_hash.clone(),
            decision_label(&e.decision).to_owned(),
        ];
        let gw = e.gateway_infcode.map(|c| c.to_string()).unwrap_or_default();
        if e.hits.is_empty() {
            let mut r = base.clone();
            r.extend(["", "", "", "", "", "", ""].map(str::to_owned));
            r.push(gw.clone());
            rows.push(r);
        }
        for h in &e.hits {
            let mut r = base.clone();
            r.extend([
                h.rule_id.clone(),
                h.rule_name.clone(),
                action_label(&h.action).to_owned(),
                stats::yuan(h.amount_fen),
                h.lines.join(" "),
                h.message.clone(),
                h.points.to_string(),
                gw.clone(),
            ]);
            rows.push(r);
        }
    }
    csv_bytes(rows)
}

/// What a report compares its period with: the period of the same length just before it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Previous {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub totals: stats::Totals,
}

/// The period just before `f`'s, of the same length (`None` without both dates).
pub fn previous_period(f: &Filter) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    let (from, to) = (f.from?, f.to?);
    let days = (to - from).num_days() + 1;
    let prev_to = from.pred_opt()?;
    let prev_from = prev_to.checked_sub_days(chrono::Days::new(u64::try_from(days - 1).ok()?))?;
    Some((prev_from, prev_to))
}

/// 驾照式记分: points in a calendar year at which a doctor's 医保支付资格 is suspended, and at
/// which it is terminated (医保发〔2024〕23号).
pub const SUSPEND_AT: i64 = 9;
pub const CYCLE_POINTS: i64 = 12;

/// What a doctor's points would mean against the 12-point cycle.
pub fn points_status(points: i64) -> &'static str {
    if points >= CYCLE_POINTS {
        "达到 12 分：终止医保支付资格"
    } else if points >= SUSPEND_AT {
        "达到 9 分：暂停医保支付资格"
    } else if points > 0 {
        "未达暂停线"
    } else {
        "—"
    }
}

/// A change in words: `增加 12.5%`, `减少 3.0%`, `持平`; `None` when there is nothing to compare with.
fn change(now: i64, before: i64) -> Option<String> {
    if before == 0 {
        return None;
    }
    let pct = (now - before) as f64 * 100.0 / before as f64;
    Some(if pct.abs() < 0.05 {
        "持平".to_owned()
    } else if pct > 0.0 {
        format!("增加 {pct:.1}%")
    } else {
        format!("减少 {:.1}%", -pct)
    })
}

fn cn_date(d: chrono::NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}

/// The period in words (`2025年11月1日至11月30日`; the scope's words without dates).
fn period_words(f: &Filter) -> String {
    match (f.from, f.to) {
        (Some(a), Some(b)) => format!("{}至{}", cn_date(a), cn_date(b)),
        _ => scope(f),
    }
}

/// The hospital as the title names it.
fn hospital_words(s: &Stats) -> String {
    match (s.hospital.name.trim(), s.hospital.code.as_str()) {
        ("", "") => "本院".to_owned(),
        ("", c) => format!("机构 {c}"),
        (n, _) => n.to_owned(),
    }
}

/// The report's summary, in sentences: volume and outcomes, money intercepted against the previous
/// period, the rules hit most, and the departments and doctors most exposed.
pub fn summary_sentences(s: &Stats, prev: Option<&Previous>) -> Vec<String> {
    let t = &s.totals;
    let mut out = Vec::new();
    out.push(format!(
        "{}，{}经 claimgate 审核的医保交易共 {} 笔：通过 {} 笔，提醒 {} 笔，拦截 {} 笔，未审 {} 笔（审核超时或无法判断时放行）。",
        period_words(&s.filter),
        hospital_words(s),
        t.decisions,
        t.pass,
        t.remind,
        t.block,
        t.unchecked
    ));
    let mut money = format!(
        "事中拦截交易 {} 笔，拦截金额 {} 元；提醒涉及金额 {} 元。",
        t.intercepted,
        stats::yuan(t.intercepted_fen),
        stats::yuan(t.reminded_fen)
    );
    if let Some(p) = prev {
        let span = format!("{}至{}", cn_date(p.from), cn_date(p.to));
        match change(t.intercepted_fen, p.totals.intercepted_fen) {
            Some(c) => {
                let _ = write!(
                    money,
                    "与上期（{span}）相比，拦截金额{c}（上期 {} 元），审核笔数{}（上期 {} 笔）。",
                    stats::yuan(p.totals.intercepted_fen),
                    change(t.decisions, p.totals.decisions).unwrap_or_else(|| "无可比".to_owned()),
                    p.totals.decisions
                );
            }
            None if p.totals.decisions == 0 => {
                let _ = write!(money, "上期（{span}）无审核记录，暂无环比。");
            }
            None => {
                let _ =
                    write!(money, "上期（{span}）审核 {} 笔，无拦截金额，无法计算拦截金额的变化。", p.totals.decisions);
            }
        }
    }
    out.push(money);
    if !s.by_rule.is_empty() {
        let top: Vec<String> = s
            .by_rule
            .iter()
            .take(3)
            .map(|r| {
                format!(
                    "{}（{}，命中 {} 次，涉及 {} 元）",
                    or_dash(&r.rule_name),
                    r.rule_id,
                    r.hits,
                    stats::yuan(r.amount_fen)
                )
            })
            .collect();
        out.push(format!("命中最多的规则：{}。", top.join("；")));
    }
    if let Some(d) = s.by_dept.iter().find(|g| !g.key.is_empty() && g.hits > 0) {
        out.push(format!(
            "命中最多的科室为{}：命中 {} 次，拦截 {} 笔，涉及 {} 元。",
            named(&d.name, &d.key),
            d.hits,
            d.block,
            stats::yuan(d.amount_fen)
        ));
    }
    let exposed: Vec<&stats::PointsRow> = s.doctor_points.iter().filter(|p| p.points >= SUSPEND_AT).collect();
    match (exposed.len(), s.doctor_points.first()) {
        (0, Some(p)) if p.points > 0 => out.push(format!(
            "驾照式记分：被拦截项目若已结算，预计记分最多的医生为{}，{} 分（12 分周期的 {:.0}%），无医生达到 9 分暂停线。",
            named(&p.name, &p.doctor),
            p.points,
            p.points as f64 * 100.0 / CYCLE_POINTS as f64
        )),
        (0, _) => out.push("驾照式记分：本期被拦截项目均未设分值或无拦截，无记分风险。".to_owned()),
        (n, _) => out.push(format!(
            "驾照式记分：被拦截项目若已结算，{n} 名医生将达到 9 分暂停线或 12 分终止线（{}），请科室重点提醒。",
            exposed.iter().take(5).map(|p| format!("{} {} 分", named(&p.name, &p.doctor), p.points)).collect::<Vec<_>>().join("、")
        )),
    }
    out
}

/// The 记分 exposure table: each doctor's points against the 12-point cycle.
fn exposure_html(s: &Stats) -> String {
    let mut o = String::new();
    let mut t = Table::open(
        &mut o,
        " id=\"exposure\"",
        "驾照式记分风险（12 分周期）",
        &["医生", "科室", "#被拦截项目", "#预计记分", "#占 12 分", "状态"],
    );
    for p in &s.doctor_points {
        t.row(
            &mut o,
            &format!(" data-doctor=\"{}\"", esc(&p.doctor)),
            &[
                &esc(&named(&p.name, &p.doctor)),
                &esc(or_dash(&p.dept_names)),
                &p.blocked_items,
                &p.points,
                &format!("{:.0}%", p.points as f64 * 100.0 / CYCLE_POINTS as f64),
                &points_status(p.points),
            ],
        );
    }
    t.close(
        &mut o,
        Some("本期无被拦截项目"),
        "<p class=\"muted\">记分按自然年累计，全国共享；一年内累计 9 分暂停、12 分终止医保支付资格（医保发〔2024〕23号）。此处为本期若被拦截项目已结算将产生的记分，不含其他机构及往期记分。</p>",
    );
    o
}

/// The appendix: the period's largest blocked claims.
fn appendix_html(s: &Stats) -> String {
    let mut o = String::new();
    let mut t = Table::open(
        &mut o,
        " class=\"appendix\" id=\"largest\"",
        "附录：本期拦截金额最大的交易",
        &["服务日期", "交易", "科室", "医生", "患者假名", "命中规则", "#拦截金额（元）"],
    );
    for e in &s.largest_blocks {
        let blocked: i64 = e.hits.iter().filter(|h| h.action == "block").map(|h| h.amount_fen).sum();
        let rules = e
            .hits
            .iter()
            .map(|h| format!("{} {}", esc(&h.rule_id), esc(&h.rule_name)))
            .collect::<Vec<_>>()
            .join("<br>");
        t.row(
            &mut o,
            &format!(" data-largest=\"{}\"", e.id),
            &[
                &esc(&e.service_date),
                &esc(&e.infno),
                &esc(&named(&e.dept_name, &e.dept_code)),
                &esc(&named(&e.doctor_name, &e.doctor_code)),
                &format!("<code>{}</code>", esc(&short(&e.psn_hash))),
                &rules,
                &stats::yuan(blocked),
            ],
        );
    }
    t.close(&mut o, Some("本期无拦截交易"), "");
    o
}

/// A CSV cell: formula-looking text is prefixed with `'` so a spreadsheet shows it as text.
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv_bytes(rows: Vec<Vec<String>>) -> Vec<u8> {
    // A UTF-8 BOM so spreadsheet programs used in hospital offices read the Chinese correctly.
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    for r in rows {
        let _ = w.write_record(r.iter().map(|c| csv_cell(c)));
    }
    w.into_inner().unwrap_or_default()
}

fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| (*c).to_owned()).collect()
}

/// The report's figures as one CSV file per section, `(file name, bytes)`: each a plain table a
/// spreadsheet opens as it is (dates `yyyy-MM-dd`, amounts in 元 with two decimals).
pub fn report_csv(s: &Stats, prev: Option<&Previous>) -> Vec<(String, Vec<u8>)> {
    let summary = summary_rows(s, prev);
    let mut rules = vec![header(&["规则编码", "规则名称", "命中", "拦截", "提醒", "涉及金额（元）", "记分"])];
    for r in &s.by_rule {
        rules.push(vec![
            r.rule_id.clone(),
            r.rule_name.clone(),
            r.hits.to_string(),
            r.block.to_string(),
            r.remind.to_string(),
            stats::yuan(r.amount_fen),
            r.points.to_string(),
        ]);
    }
    let group = |first: &[&str], rows: &[stats::GroupRow]| {
        let mut cols = first.to_vec();
        cols.extend(["审核笔数", "提醒", "拦截", "命中", "涉及金额（元）"]);
        let mut out = vec![header(&cols)];
        for g in rows {
            let mut r = vec![g.key.clone()];
            if first.len() > 1 {
                r.push(if g.key.is_empty() { "未归属（报文未载明）".to_owned() } else { g.name.clone() });
            }
            r.extend([
                g.decisions.to_string(),
                g.remind.to_string(),
                g.block.to_string(),
                g.hits.to_string(),
                stats::yuan(g.amount_fen),
            ]);
            out.push(r);
        }
        out
    };
    let depts = group(&["科室编码", "科室名称"], &s.by_dept);
    let doctors = group(&["医生编码", "医生姓名"], &s.by_doctor);
    // Every day of the period, a day without records marked (as the trend's gap).
    let mut days = vec![header(&["服务日期", "审核笔数", "提醒", "拦截", "命中", "涉及金额（元）", "备注"])];
    for (key, d) in trend_days(s) {
        days.push(match d {
            Some(g) => vec![
                key,
                g.decisions.to_string(),
                g.remind.to_string(),
                g.block.to_string(),
                g.hits.to_string(),
                stats::yuan(g.amount_fen),
                String::new(),
            ],
            None => vec![key, "0".into(), "0".into(), "0".into(), "0".into(), "0.00".into(), "无审核记录".into()],
        });
    }
    let patients = group(&["患者假名"], &s.top_patients);
    let points = points_rows(s);
    let mut feedback =
        vec![header(&["规则编码", "规则名称", "提示次数", "已反馈", "返回修改", "继续执行", "采纳率", "继续执行率"])];
    for f in &s.feedback {
        feedback.push(vec![
            f.rule_id.clone(),
            f.rule_name.clone(),
            f.prompted.to_string(),
            f.answered.to_string(),
            f.modified.to_string(),
            f.continued.to_string(),
            pct(f.acceptance_rate),
            pct(f.override_rate),
        ]);
    }
    let largest = largest_rows(s);
    [
        ("01-汇总.csv", summary),
        ("02-规则排行.csv", rules),
        ("03-科室排行.csv", depts),
        ("04-医生排行.csv", doctors),
        ("05-每日趋势.csv", days),
        ("06-记分风险.csv", points),
        ("07-医生反馈.csv", feedback),
        ("08-患者假名排行.csv", patients),
        ("09-附录-最大拦截交易.csv", largest),
    ]
    .into_iter()
    .map(|(n, rows)| (n.to_owned(), csv_bytes(rows)))
    .collect()
}

/// The summary sheet: the hospital, the period, the outcomes and amounts, the previous period's
/// figures, and the summary sentences.
fn summary_rows(s: &Stats, prev: Option<&Previous>) -> Vec<Vec<String>> {
    let t = &s.totals;
    let mut summary = vec![header(&["项目", "数值"])];
    let mut kv = |k: &str, v: String| summary.push(vec![k.to_owned(), v]);
    kv("医疗机构", hospital_words(s));
    kv("机构编码", s.hospital.code.clone());
    kv("统计起始日期", s.filter.from.map(|d| d.to_string()).unwrap_or_default());
    kv("统计截止日期", s.filter.to.map(|d| d.to_string()).unwrap_or_default());
    kv("审核笔数", t.decisions.to_string());
    kv("通过", t.pass.to_string());
    kv("提醒", t.remind.to_string());
    kv("拦截", t.block.to_string());
    kv("未审", t.unchecked.to_string());
    kv("其中事前/事中分析（3101/3102）", t.analyses.to_string());
    kv("规则命中次数", t.hits.to_string());
    kv("事中拦截交易", t.intercepted.to_string());
    kv("拦截金额（元）", stats::yuan(t.intercepted_fen));
    kv("提醒涉及金额（元）", stats::yuan(t.reminded_fen));
    if let Some(p) = prev {
        kv("上期起始日期", p.from.to_string());
        kv("上期截止日期", p.to.to_string());
        kv("上期审核笔数", p.totals.decisions.to_string());
        kv("上期拦截金额（元）", stats::yuan(p.totals.intercepted_fen));
    }
    for (i, line) in summary_sentences(s, prev).into_iter().enumerate() {
        kv(&format!("摘要 {}", i + 1), line);
    }
    summary
}

/// The 记分 sheet: each doctor's points against the 12-point cycle.
fn points_rows(s: &Stats) -> Vec<Vec<String>> {
    let mut points = vec![header(&[
        "医生编码",
        "医生姓名",
        "科室",
        "被拦截项目",
        "预计记分",
        "占12分比例",
        "状态",
        "涉及金额（元）",
    ])];
    for p in &s.doctor_points {
        points.push(vec![
            p.doctor.clone(),
            p.name.clone(),
            p.dept_names.clone(),
            p.blocked_items.to_string(),
            p.points.to_string(),
            format!("{:.0}%", p.points as f64 * 100.0 / CYCLE_POINTS as f64),
            points_status(p.points).to_owned(),
            stats::yuan(p.amount_fen),
        ]);
    }
    points
}

/// The appendix sheet: the period's largest blocked claims.
fn largest_rows(s: &Stats) -> Vec<Vec<String>> {
    let mut largest = vec![header(&[
        "记录ID",
        "服务日期",
        "审核时间",
        "交易号",
        "科室编码",
        "科室名称",
        "医生编码",
        "医生姓名",
        "患者假名",
        "命中规则",
        "拦截金额（元）",
    ])];
    for e in &s.largest_blocks {
        let blocked: i64 = e.hits.iter().filter(|h| h.action == "block").map(|h| h.amount_fen).sum();
        largest.push(vec![
            e.id.to_string(),
            e.service_date.clone(),
            time(&e.at),
            e.infno.clone(),
            e.dept_code.clone(),
            e.dept_name.clone(),
            e.doctor_code.clone(),
            e.doctor_name.clone(),
            e.psn_hash.clone(),
            e.hits.iter().map(|h| h.rule_id.clone()).collect::<Vec<_>>().join(" "),
            stats::yuan(blocked),
        ]);
    }
    largest
}

/// The monthly report as a standalone HTML document, printable to PDF (A4, sections kept whole):
/// the hospital and period, a summary in sentences with the change against the previous period,
/// the figures with names, the 记分 exposure, and an appendix of the largest blocked claims.
pub fn report_html(s: &Stats, prev: Option<&Previous>, generated_at: &str) -> String {
    let hospital = hospital_words(s);
    let mut body = format!(
        "<section id=\"cover\"><p>医疗机构：<b id=\"hospital\">{}</b>{}</p><p>统计期间：<b id=\"period\">{}</b>（按服务日期）</p><p class=\"muted\">生成时间：{}。数据来源：claimgate 审核日志（患者以假名表示，不含姓名与证件号）。</p></section>",
        esc(&hospital),
        if s.hospital.code.is_empty() { String::new() } else { format!("（{}）", esc(&s.hospital.code)) },
        esc(&period_words(&s.filter)),
        esc(generated_at)
    );
    body.push_str("<section class=\"summary\" id=\"summary\"><h2>摘要</h2>");
    for line in summary_sentences(s, prev) {
        let _ = write!(body, "<p>{}</p>", esc(&line));
    }
    body.push_str("</section>");
    body.push_str(&figures_html(s, None));
    body.push_str(&exposure_html(s));
    body.push_str(&appendix_html(s));
    let doc = page(&format!("{hospital} 医保智能审核月度报告"), "医共体自律管理", &body);
    doc.replacen("<body>", "<body class=\"report\">", 1)
}

/// Output formats of `claimgate report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("不支持的格式：{other}（可选 html、csv、json）")),
        }
    }
}

/// What `claimgate report` writes: one document, or (CSV) one file per section.
pub enum Output {
    Document(Vec<u8>),
    Files(Vec<(String, Vec<u8>)>),
}

/// The report's JSON: the figures and the previous period's totals.
#[derive(serde::Serialize)]
struct ReportJson<'a> {
    #[serde(flatten)]
    stats: &'a Stats,
    previous: Option<&'a Previous>,
    summary: Vec<String>,
}

/// `claimgate report`: the figures of the journal at `loc` (the embedded file or the shared
/// PostgreSQL store, found as `serve` finds it) for a filter, with the previous period's totals,
/// as a document.
///
/// # Errors
/// The journal is missing or unreadable (the message is in Chinese, for the office).
pub fn run(loc: &Location, filter: &Filter, format: Format) -> Result<Output, String> {
    let store = journal::open_reader(loc)?;
    let mut out = None;
    let before = previous_period(filter);
    store
        .read(&mut |c| {
            let s = stats::stats(c, filter)?;
            let prev = match before {
                Some((from, to)) => {
                    let f = Filter { from: Some(from), to: Some(to), ..filter.clone() };
                    Some(Previous { from, to, totals: stats::totals(c, &f)? })
                }
                None => None,
            };
            out = Some((s, prev));
            Ok(())
        })
        .map_err(|e| format!("统计失败：{e}"))?;
    let (s, prev) = out.ok_or_else(|| "统计失败".to_owned())?;
    Ok(match format {
        Format::Html => Output::Document(
            report_html(&s, prev.as_ref(), &chrono::Local::now().format("%Y-%m-%d %H:%M").to_string()).into_bytes(),
        ),
        Format::Csv => Output::Files(report_csv(&s, prev.as_ref())),
        Format::Json => {
            let j = ReportJson { stats: &s, previous: prev.as_ref(), summary: summary_sentences(&s, prev.as_ref()) };
            let mut v = serde_json::to_vec_pretty(&j).map_err(|e| format!("统计结果无法编码：{e}"))?;
            v.push(b'\n');
            Output::Document(v)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("<script>\"x\"&'y'</script>"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
        assert_eq!(url_enc("内科 A&B"), "%E5%86%85%E7%A7%91%20A%26B");
    }

    #[test]
    fn csv_cells_that_look_like_formulas_are_text() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("-12.50"), "-12.50");
        assert_eq!(csv_cell("内科"), "内科");
    }

    fn day(key: &str, decisions: i64, block: i64) -> stats::GroupRow {
        stats::GroupRow {
            key: key.into(),
            name: String::new(),
            decisions,
            remind: 0,
            block,
            hits: block,
            amount_fen: 0,
        }
    }

    fn figures(from: &str, to: &str, by_day: Vec<stats::GroupRow>) -> Stats {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        Stats {
            filter: Filter { from: d(from), to: d(to), ..Filter::default() },
            hospital: stats::Hospital { code: "H41070100001".into(), name: "新乡市某县人民医院".into() },
            totals: stats::Totals {
                decisions: 10,
                block: 3,
                intercepted: 3,
                intercepted_fen: 12_000,
                ..Default::default()
            },
            by_rule: vec![],
            by_dept: vec![],
            by_doctor: vec![],
            by_day,
            feedback: vec![],
            top_patients: vec![],
            doctor_points: vec![],
            largest_blocks: vec![],
        }
    }

    #[test]
    fn the_trend_marks_each_empty_day_of_the_period_as_a_gap() {
        // Arrange: a week with records on three days.
        let s = figures(
            "2025-11-01",
            "2025-11-07",
            vec![day("2025-11-02", 4, 1), day("2025-11-03", 3, 1), day("2025-11-06", 3, 1)],
        );
        // Act
        let svg = trend_svg(&s);
        // Assert: a bar per day with records, a gap on each of the four others, in date order.
        assert_eq!(svg.matches("<g class=\"day\"").count(), 3);
        let gaps: Vec<&str> = svg.split("data-gap=\"").skip(1).map(|g| &g[..10]).collect();
        assert_eq!(gaps, ["2025-11-01", "2025-11-04", "2025-11-05", "2025-11-07"]);
        assert!(svg.find("data-day=\"2025-11-03\"") < svg.find("data-gap=\"2025-11-04\""));
        // Without a period, from the first day with records to the last.
        let open = figures("", "", vec![day("2025-11-02", 1, 0), day("2025-11-04", 1, 0)]);
        let open = trend_svg(&open);
        assert_eq!((open.matches("data-gap=").count(), open.matches("class=\"day\"").count()), (1, 2));
        // The daily CSV lists every day of the period, the empty ones marked.
        let files = report_csv(&s, None);
        let daily = String::from_utf8(files.iter().find(|(n, _)| n == "05-每日趋势.csv").unwrap().1.clone()).unwrap();
        assert_eq!(daily.lines().count(), 8, "{daily}");
        assert!(daily.contains("2025-11-04,0,0,0,0,0.00,无审核记录") && daily.contains("2025-11-02,4,0,1,1,0.00,"));
    }

    #[test]
    fn the_summary_compares_with_the_previous_period_in_sentences() {
        let s = figures("2025-11-01", "2025-11-30", vec![]);
        assert_eq!(
            previous_period(&s.filter),
            chrono::NaiveDate::from_ymd_opt(2025, 10, 2).zip(chrono::NaiveDate::from_ymd_opt(2025, 10, 31))
        );
        let (from, to) = previous_period(&s.filter).unwrap();
        let before = stats::Totals { decisions: 8, intercepted_fen: 8_000, ..Default::default() };
        let text = summary_sentences(&s, Some(&Previous { from, to, totals: before })).join("");
        assert!(
            text.starts_with("2025年11月1日至2025年11月30日，新乡市某县人民医院经 claimgate 审核的医保交易共 10 笔"),
            "{text}"
        );
        assert!(text.contains("拦截金额 120.00 元") && text.contains("拦截金额增加 50.0%（上期 80.00 元）"), "{text}");
        let none = summary_sentences(&s, Some(&Previous { from, to, totals: stats::Totals::default() })).join("");
        assert!(none.contains("无审核记录，暂无环比"), "{none}");
        assert_eq!(points_status(12), "达到 12 分：终止医保支付资格");
        assert_eq!(points_status(9), "达到 9 分：暂停医保支付资格");
        assert_eq!(named("", ""), "未归属（报文未载明）");
        assert_eq!(named("儿科", "100701"), "儿科（100701）");
    }

    #[test]
    fn the_report_refuses_a_missing_journal_in_chinese() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = run(&Location::new(dir.path(), None).unwrap(), &Filter::default(), Format::Html) else {
            panic!("a report without a journal")
        };
        assert!(e.contains("未找到审核日志"), "{e}");
        assert!("pdf".parse::<Format>().unwrap_err().contains("不支持的格式"));
    }
}
