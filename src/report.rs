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
body{font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;margin:0;background:#f4f6f8;color:#1f2933}
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
";

/// A complete HTML document.
pub fn page(title: &str, header_right: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{CSS}</style></head><body><header><h1>{t}</h1><div>{header_right}</div></header><main>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// The daily trend as an inline SVG: a stacked bar per day (blocked, reminded, other decisions).
pub fn trend_svg(s: &Stats) -> String {
    let days = &s.by_day;
    if days.is_empty() {
        return "<p class=\"muted\">所选范围内没有审核记录。</p>".into();
    }
    let (w, h, left, bottom, top) = (860.0_f64, 240.0_f64, 44.0_f64, 36.0_f64, 12.0_f64);
    let max = days.iter().map(|d| d.decisions).max().unwrap_or(1).max(1) as f64;
    let plot_h = h - bottom - top;
    let slot = (w - left - 8.0) / days.len() as f64;
    let bar = (slot * 0.7).clamp(2.0, 40.0);
    let y = |v: f64| top + plot_h - v / max * plot_h;
    let mut o = format!(
        "<svg id=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"每日审核趋势\">"
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
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let other = (d.decisions - d.block - d.remind).max(0);
        let mut base = 0.0;
        let _ = write!(
            o,
            "<g class=\"day\" data-day=\"{}\" data-decisions=\"{}\" data-remind=\"{}\" data-block=\"{}\"><title>{}：审核 {} 笔，提醒 {}，拦截 {}，命中 {}</title>",
            esc(&d.key),
            d.decisions,
            d.remind,
            d.block,
            esc(&d.key),
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
        if i % label_every == 0 || i + 1 == days.len() {
            let label: String = d.key.chars().skip(5).collect();
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
    for (i, (color, name)) in [("#c62828", "拦截"), ("#e67e22", "提醒"), ("#9aa5b1", "通过/未审")].iter().enumerate()
    {
        let lx = left + 90.0 * i as f64;
        let _ = write!(
            o,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{ly}\" font-size=\"11\" fill=\"#1f2933\">{name}</text>",
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

    o.push_str("<section><h2>每日趋势（按服务日期）</h2>");
    o.push_str(&trend_svg(s));
    o.push_str("</section>");

    o.push_str("<section id=\"by-rule\"><h2>规则命中排行</h2><table><thead><tr><th>规则编码</th><th>规则名称</th><th class=\"n\">命中</th><th class=\"n\">拦截</th><th class=\"n\">提醒</th><th class=\"n\">涉及金额（元）</th><th class=\"n\">记分</th></tr></thead><tbody>");
    for r in &s.by_rule {
        let _ = write!(
            o,
            "<tr data-rule=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&r.rule_id),
            cell("rule", &r.rule_id, &r.rule_id),
            esc(or_dash(&r.rule_name)),
            r.hits,
            r.block,
            r.remind,
            stats::yuan(r.amount_fen),
            r.points
        );
    }
    if s.by_rule.is_empty() {
        o.push_str("<tr><td colspan=\"7\" class=\"muted\">无命中</td></tr>");
    }
    o.push_str("</tbody></table></section>");

    for (id, title, kind, rows) in
        [("by-dept", "科室排行", "dept", &s.by_dept), ("by-doctor", "医生排行", "doctor", &s.by_doctor)]
    {
        let head = if kind == "dept" { "科室" } else { "医生" };
        let _ = write!(
            o,
            "<section id=\"{id}\"><h2>{title}</h2><table><thead><tr><th>{head}</th><th class=\"n\">审核笔数</th><th class=\"n\">提醒</th><th class=\"n\">拦截</th><th class=\"n\">命中</th><th class=\"n\">涉及金额（元）</th></tr></thead><tbody>"
        );
        for g in rows {
            let _ = write!(
                o,
                "<tr data-{kind}=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&g.key),
                cell(kind, &g.key, &g.key),
                g.decisions,
                g.remind,
                g.block,
                g.hits,
                stats::yuan(g.amount_fen)
            );
        }
        o.push_str("</tbody></table></section>");
    }

    o.push_str("<section id=\"points\"><h2>驾照式记分预警（若被拦截项目已结算，医生将被记分）</h2><table><thead><tr><th>医生</th><th>科室</th><th class=\"n\">被拦截项目</th><th class=\"n\">预计记分</th><th class=\"n\">涉及金额（元）</th></tr></thead><tbody>");
    for p in &s.doctor_points {
        let _ = write!(
            o,
            "<tr data-doctor=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&p.doctor),
            cell("doctor", &p.doctor, &p.doctor),
            esc(or_dash(&p.depts)),
            p.blocked_items,
            p.points,
            stats::yuan(p.amount_fen)
        );
    }
    if s.doctor_points.is_empty() {
        o.push_str("<tr><td colspan=\"5\" class=\"muted\">无被拦截项目</td></tr>");
    }
    o.push_str("</tbody></table><p class=\"muted\">分值取自规则包各规则的 points 字段（示例值，待地方确认）；未设分值的规则记 0 分。</p></section>");

    o.push_str("<section id=\"feedback\"><h2>医生反馈（3103）：提醒采纳率与继续执行率</h2><table><thead><tr><th>规则</th><th>名称</th><th class=\"n\">提示次数</th><th class=\"n\">已反馈</th><th class=\"n\">返回修改</th><th class=\"n\">继续执行</th><th class=\"n\">采纳率</th><th class=\"n\">继续执行率</th></tr></thead><tbody>");
    for f in &s.feedback {
        let _ = write!(
            o,
            "<tr data-rule=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&f.rule_id),
            cell("rule", &f.rule_id, &f.rule_id),
            esc(or_dash(&f.rule_name)),
            f.prompted,
            f.answered,
            f.modified,
            f.continued,
            if f.answered > 0 { pct(f.acceptance_rate) } else { "—".into() },
            if f.answered > 0 { pct(f.override_rate) } else { "—".into() },
        );
    }
    if s.feedback.is_empty() {
        o.push_str("<tr><td colspan=\"8\" class=\"muted\">无事前/事中分析提示</td></tr>");
    }
    o.push_str(
        "</tbody></table><p class=\"muted\">继续执行率长期很高的规则，可能需要调整阈值或改为仅提示。</p></section>",
    );

    o.push_str("<section id=\"patients\"><h2>命中最多的患者（假名）</h2><table><thead><tr><th>患者假名</th><th class=\"n\">审核笔数</th><th class=\"n\">拦截</th><th class=\"n\">命中</th><th class=\"n\">涉及金额（元）</th></tr></thead><tbody>");
    for p in &s.top_patients {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&short(&p.key)),
            p.decisions,
            p.block,
            p.hits,
            stats::yuan(p.amount_fen)
        );
    }
    o.push_str("</tbody></table><p class=\"muted\">假名为医保个人编号的密钥哈希，不可逆；同一患者在各记录中假名相同。</p></section>");
    o
}

/// The decisions table of a listing page.
pub fn listing_html(l: &Listing, detail: &dyn Fn(i64) -> String, page_link: &dyn Fn(u32) -> String) -> String {
    let mut o = format!(
        "<section id=\"journal\"><h2>审核明细（共 <span data-k=\"listed\">{}</span> 笔）</h2><table><thead><tr><th>审核时间</th><th>服务日期</th><th>交易</th><th>科室</th><th>医生</th><th>患者假名</th><th>结果</th><th>命中规则</th><th class=\"n\">涉及金额（元）</th></tr></thead><tbody>",
        l.total
    );
    for e in &l.items {
        let rules = e.hits.iter().map(|h| esc(&h.rule_id)).collect::<Vec<_>>().join("<br>");
        let amount: i64 = e.hits.iter().map(|h| h.amount_fen).sum();
        let _ = write!(
            o,
            "<tr data-decision=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><span class=\"tag {}\">{}</span></td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&e.decision),
            esc(&detail(e.id)),
            esc(&time(&e.at)),
            esc(&e.service_date),
            esc(&e.infno),
            esc(or_dash(&e.dept_code)),
            esc(or_dash(&e.doctor_code)),
            esc(&short(&e.psn_hash)),
            esc(&e.decision),
            esc(decision_label(&e.decision)),
            rules,
            stats::yuan(amount)
        );
    }
    if l.items.is_empty() {
        o.push_str("<tr><td colspan=\"9\" class=\"muted\">没有符合条件的记录</td></tr>");
    }
    o.push_str("</tbody></table>");
    let pages = ((l.total.max(0) as u64).div_ceil(u64::from(l.per_page.max(1)))).max(1);
    let _ = write!(o, "<p class=\"pager\">第 {} / {pages} 页 ", l.page);
    if l.page > 1 {
        let _ = write!(o, "<a href=\"{}\">上一页</a> ", esc(&page_link(l.page - 1)));
    }
    if u64::from(l.page) < pages {
        let _ = write!(o, "<a href=\"{}\">下一页</a>", esc(&page_link(l.page + 1)));
    }
    o.push_str("</p></section>");
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
        ("科室", e.dept_code.clone()),
        ("医生", e.doctor_code.clone()),
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
        o.push_str("<section id=\"answers\"><h2>医生反馈（3103）</h2><table><thead><tr><th>时间</th><th>审核结果ID</th><th>规则</th><th>处理方式</th><th>理由</th></tr></thead><tbody>");
        for a in &e.answers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&time(&a.at)),
                esc(&a.jr_id),
                esc(&a.rule_id),
                esc(way_label(&a.dspo_way)),
                esc(or_dash(&a.reason))
            );
        }
        o.push_str("</tbody></table></section>");
    }
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

/// The decisions of a listing, one row per hit (a decision without hits has one row).
pub fn listing_csv(l: &Listing) -> Vec<u8> {
    let mut rows = vec![[
        "记录ID",
        "审核时间",
        "服务日期",
        "交易号",
        "报文ID",
        "科室",
        "医生",
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
            e.at.clone(),
            e.service_date.clone(),
            e.infno.clone(),
            e.msgid.clone(),
            e.dept_code.clone(),
            e.doctor_code.clone(),
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

/// The report's figures as one long table (类别 says which figure a row belongs to).
pub fn stats_csv(s: &Stats) -> Vec<u8> {
    let mut rows = vec![["类别", "编码", "名称", "审核笔数", "提醒", "拦截", "命中", "金额（元）", "记分", "说明"]
        .map(str::to_owned)
        .to_vec()];
    let row =
        |c: &str, k: &str, n: &str, d: i64, r: i64, b: i64, h: i64, fen: i64, p: i64, note: &str| -> Vec<String> {
            vec![
                c.to_owned(),
                k.to_owned(),
                n.to_owned(),
                d.to_string(),
                r.to_string(),
                b.to_string(),
                h.to_string(),
                stats::yuan(fen),
                p.to_string(),
                note.to_owned(),
            ]
        };
    let t = &s.totals;
    rows.push(row(
        "汇总",
        "",
        &scope(&s.filter),
        t.decisions,
        t.remind,
        t.block,
        t.hits,
        t.intercepted_fen,
        0,
        &format!(
            "通过 {}，未审 {}，事中拦截交易 {}，提醒涉及金额 {} 元；金额列为拦截金额",
            t.pass,
            t.unchecked,
            t.intercepted,
            stats::yuan(t.reminded_fen)
        ),
    ));
    for r in &s.by_rule {
        rows.push(row("规则", &r.rule_id, &r.rule_name, 0, r.remind, r.block, r.hits, r.amount_fen, r.points, ""));
    }
    for g in &s.by_dept {
        rows.push(row("科室", &g.key, "", g.decisions, g.remind, g.block, g.hits, g.amount_fen, 0, ""));
    }
    for g in &s.by_doctor {
        rows.push(row("医生", &g.key, "", g.decisions, g.remind, g.block, g.hits, g.amount_fen, 0, ""));
    }
    for g in &s.by_day {
        rows.push(row("服务日期", &g.key, "", g.decisions, g.remind, g.block, g.hits, g.amount_fen, 0, ""));
    }
    for p in &s.doctor_points {
        rows.push(row(
            "记分预警",
            &p.doctor,
            &p.depts,
            0,
            0,
            p.blocked_items,
            p.blocked_items,
            p.amount_fen,
            p.points,
            "",
        ));
    }
    for f in &s.feedback {
        rows.push(row(
            "医生反馈",
            &f.rule_id,
            &f.rule_name,
            f.prompted,
            0,
            0,
            0,
            0,
            0,
            &format!(
                "已反馈 {}，返回修改 {}，继续执行 {}，采纳率 {}，继续执行率 {}",
                f.answered,
                f.modified,
                f.continued,
                pct(f.acceptance_rate),
                pct(f.override_rate)
            ),
        ));
    }
    for g in &s.top_patients {
        rows.push(row("患者（假名）", &g.key, "", g.decisions, g.remind, g.block, g.hits, g.amount_fen, 0, ""));
    }
    csv_bytes(rows)
}

/// The monthly report as a standalone HTML document.
pub fn report_html(s: &Stats, generated_at: &str) -> String {
    let mut body = format!(
        "<section><p>统计范围：<b id=\"scope\">{}</b></p><p class=\"muted\">生成时间：{}。数据来源：claimgate 审核日志（患者以假名表示，不含姓名与证件号）。</p></section>",
        esc(&scope(&s.filter)),
        esc(generated_at)
    );
    body.push_str(&figures_html(s, None));
    page("医保智能审核月度报告", "医共体自律管理", &body)
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

/// `claimgate report`: the figures of the journal at `loc` (the embedded file or the shared
/// PostgreSQL store, found as `serve` finds it) for a filter, as a document.
///
/// # Errors
/// The journal is missing or unreadable (the message is in Chinese, for the office).
pub fn run(loc: &Location, filter: &Filter, format: Format) -> Result<Vec<u8>, String> {
    let store = journal::open_reader(loc)?;
    let mut out = None;
    store
        .read(&mut |c| {
            out = Some(stats::stats(c, filter)?);
            Ok(())
        })
        .map_err(|e| format!("统计失败：{e}"))?;
    let s = out.ok_or_else(|| "统计失败".to_owned())?;
    Ok(match format {
        Format::Html => report_html(&s, &chrono::Local::now().format("%Y-%m-%d %H:%M").to_string()).into_bytes(),
        Format::Csv => stats_csv(&s),
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&s).map_err(|e| format!("统计结果无法编码：{e}"))?;
            v.push(b'\n');
            v
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

    #[test]
    fn the_report_refuses_a_missing_journal_in_chinese() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(&Location::new(dir.path(), None).unwrap(), &Filter::default(), Format::Html).unwrap_err();
        assert!(e.contains("未找到审核日志"), "{e}");
        assert!("pdf".parse::<Format>().unwrap_err().contains("不支持的格式"));
    }
}
