//! The self-regulation office (医保办 / 医共体自律办公室): the statistics API
//! (`GET /admin/v1/stats`, `GET /admin/v1/journal`, bearer token) and the server-rendered pages
//! under `/office` (the bearer token, or a session cookie set by the login form).
//!
//! The session cookie is stateless: `expiry.HMAC-SHA256(admin token, expiry)`, HttpOnly,
//! SameSite=Lax, scoped to `/office`. It never carries the token itself, dies after
//! [`SESSION_SECS`], and every session dies when the token changes. The token never appears in a
//! URL. Journal reads run on the blocking pool (`web::block`), never on the async executor, against
//! whichever store holds the journal (the embedded SQLite file or the shared PostgreSQL).

use super::rescue::ApiFailure;
use super::State;
use crate::journal::stats::{self, Filter, FilterError, Paging};
use crate::report::{self, esc, query};
use crate::store::{Conn, StoreError};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the office session cookie.
const COOKIE: &str = "claimgate_office";
/// Lifetime of an office session.
pub const SESSION_SECS: i64 = 8 * 3600;
/// Most decisions in one CSV export.
const EXPORT_MAX: u32 = 100_000;

/// Registers the office routes (called from `gate::build`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/v1/stats", web::get().to(api_stats))
        .route("/admin/v1/journal", web::get().to(api_journal))
        .route("/office", web::get().to(office))
        .route("/office/login", web::post().to(login))
        .route("/office/logout", web::post().to(logout))
        .route("/office/decision/{id}", web::get().to(decision))
        .route("/office/export.csv", web::get().to(export_csv));
}

// === auth ===

fn session_mac(token: &str, exp: i64) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()) else { return String::new() };
    mac.update(b"claimgate office session\0");
    mac.update(exp.to_string().as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

use super::ct_eq;

/// A fresh session cookie value for `token`.
pub fn session_value(token: &str, now: i64) -> String {
    let exp = now + SESSION_SECS;
    format!("{exp}.{}", session_mac(token, exp))
}

/// Whether a cookie value is a live session for `token` at `now`.
pub fn session_valid(token: &str, value: &str, now: i64) -> bool {
    let Some((exp, mac)) = value.split_once('.') else { return false };
    let Ok(exp) = exp.parse::<i64>() else { return false };
    exp > now && exp <= now + SESSION_SECS && ct_eq(mac.as_bytes(), session_mac(token, exp).as_bytes())
}

fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// For the pages: the bearer token (admin or read-only) or a live session cookie.
fn office_auth(req: &HttpRequest, st: &State) -> Result<(), Box<HttpResponse>> {
    let tokens = office_tokens(st);
    if tokens.is_empty() {
        return Err(Box::new(html(
            ApiFailure::AdminDisabled.status(),
            report::page("医保智能审核 · 自律办公室", "", "<section><p class=\"err\">未配置管理令牌（admin_token / CLAIMGATE_ADMIN_TOKEN），办公室页面已停用。</p></section>"),
        )));
    }
    if req.headers().contains_key(header::AUTHORIZATION) && super::authorized(req, st, super::Scope::Read).is_ok() {
        return Ok(());
    }
    match cookie(req, COOKIE) {
        Some(v) if tokens.iter().any(|t| session_valid(t, v, now())) => Ok(()),
        _ => Err(Box::new(login_page(ApiFailure::WrongToken.status(), None))),
    }
}

/// The tokens that open the office (read-only pages): the admin token and the read token.
fn office_tokens(st: &State) -> Vec<&str> {
    [st.cfg.admin_token.as_deref(), st.cfg.admin_read_token.as_deref()].into_iter().flatten().collect()
}

fn login_page(status: StatusCode, error: Option<&str>) -> HttpResponse {
    let err = error.map(|e| format!("<p class=\"err\" id=\"login-error\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "<section id=\"login\"><h2>请登录</h2>{err}<form method=\"post\" action=\"/office/login\">\
         <label>管理令牌 <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> \
         <button type=\"submit\">登录</button></form>\
         <p class=\"muted\">令牌即 claimgate 的管理令牌（CLAIMGATE_ADMIN_TOKEN），登录后 {} 小时内有效。</p></section>",
        SESSION_SECS / 3600
    );
    html(status, report::page("医保智能审核 · 自律办公室", "", &body))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(form: web::Form<LoginForm>, st: web::Data<State>) -> HttpResponse {
    if office_tokens(&st).is_empty() {
        return login_page(ApiFailure::AdminDisabled.status(), Some("未配置管理令牌，办公室页面已停用"));
    }
    let given = form.token.trim().as_bytes();
    // The session is keyed by the token that matched (both are always compared).
    let token = match super::token_scope(given, &st.cfg) {
        Some(super::Scope::Write) => st.cfg.admin_token.as_deref(),
        Some(super::Scope::Read) => st.cfg.admin_read_token.as_deref(),
        None => None,
    };
    let Some(token) = token else {
        return login_page(ApiFailure::WrongToken.status(), Some("令牌错误，请重试"));
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/office"))
        .insert_header((
            header::SET_COOKIE,
            format!(
                "{COOKIE}={}; Path=/office; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Lax",
                session_value(token, now())
            ),
        ))
        .finish()
}

async fn logout() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/office"))
        .insert_header((header::SET_COOKIE, format!("{COOKIE}=; Path=/office; Max-Age=0; HttpOnly; SameSite=Lax")))
        .finish()
}

// === responses ===

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // No script, no external resource: the page needs nothing else.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

/// A failed page: the status [`ApiFailure`] picks, its message on the page.
fn error_page(f: &ApiFailure<'_>) -> HttpResponse {
    let msg = match f {
        ApiFailure::BadRequest(m) | ApiFailure::NotFound(m) | ApiFailure::Internal(m) => m.as_str(),
        _ => "",
    };
    let body = format!(
        "<section><p class=\"err\" id=\"error\">{}</p><p><a href=\"/office\">返回看板</a></p></section>",
        esc(msg)
    );
    html(f.status(), report::page("医保智能审核 · 自律办公室", "", &body))
}

/// Query pairs of the request; a malformed query string is a 400, never a panic.
fn pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, FilterError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|_| FilterError("查询参数无法解析".into()))
}

fn filter(req: &HttpRequest) -> Result<(Filter, Paging), FilterError> {
    Filter::from_pairs(&pairs(req)?, &[])
}

/// Why a journal read failed, for the caller.
enum ReadError {
    Db(String),
    Blocking,
}

impl ReadError {
    fn text(&self) -> String {
        match self {
            ReadError::Db(e) => format!("审核日志读取失败：{e}"),
            ReadError::Blocking => "审核日志读取被中断".into(),
        }
    }
}

/// Runs a read of the journal on the blocking pool.
async fn read<T: Send + 'static>(
    st: &State,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ReadError> {
    let journal = st.journal.clone();
    match web::block(move || journal.read(f)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "journal read failed");
            Err(ReadError::Db(e.to_string()))
        }
        Err(_) => Err(ReadError::Blocking),
    }
}

// === the admin API ===

async fn api_stats(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    api(&req, &st, |c, f, _| stats::stats(c, &f)).await
}

async fn api_journal(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    api(&req, &st, |c, f, p| stats::list(c, &f, p)).await
}

/// The office's API: authorise (read), parse the filter, read the journal, answer JSON.
async fn api<T: serde::Serialize + Send + 'static>(
    req: &HttpRequest,
    st: &State,
    query: impl FnOnce(&mut dyn Conn, Filter, Paging) -> Result<T, StoreError> + Send + 'static,
) -> HttpResponse {
    if let Err(r) = super::authorized(req, st, super::Scope::Read) {
        return *r;
    }
    let (f, p) = match filter(req) {
        Ok(x) => x,
        Err(e) => return ApiFailure::BadRequest(e.0).respond(),
    };
    match read(st, move |c| query(c, f, p)).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => ApiFailure::Internal(e.text()).respond(),
    }
}

// === the pages ===

fn header_right() -> String {
    "<form method=\"post\" action=\"/office/logout\"><button type=\"submit\">退出</button></form>".into()
}

fn select(name: &str, label: &str, options: &[(String, String)], current: Option<&str>) -> String {
    let mut o = format!("<label>{label}<select name=\"{name}\"><option value=\"\">全部</option>");
    for (v, text) in options {
        let sel = if current == Some(v.as_str()) { " selected" } else { "" };
        o.push_str(&format!("<option value=\"{}\"{sel}>{}</option>", esc(v), esc(text)));
    }
    o.push_str("</select></label>");
    o
}

fn filter_form(
    f: &Filter,
    depts: &[(String, String)],
    doctors: &[(String, String)],
    rules: &[(String, String)],
) -> String {
    let d = |x: Option<chrono::NaiveDate>| x.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
    // A name first, its code beside it (the code alone when no name is known).
    let plain = |v: &[(String, String)]| {
        v.iter().map(|(code, name)| (code.clone(), report::named(name, code))).collect::<Vec<_>>()
    };
    let rules: Vec<(String, String)> = rules.iter().map(|(id, name)| (id.clone(), format!("{id} {name}"))).collect();
    let export = query(&f.to_pairs());
    format!(
        "<section><form class=\"filters\" method=\"get\" action=\"/office\">\
         <label>服务日期起<input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>服务日期止<input type=\"date\" name=\"to\" value=\"{}\"></label>{}{}{}\
         <button type=\"submit\">筛选</button> <a href=\"/office\">清除筛选</a> \
         <a id=\"export\" href=\"/office/export.csv{}{}\">导出明细 CSV</a></form>\
         <p class=\"muted\">当前范围：<span id=\"scope\">{}</span></p></section>",
        d(f.from),
        d(f.to),
        select("dept", "科室", &plain(depts), f.dept.as_deref()),
        select("doctor", "医生", &plain(doctors), f.doctor.as_deref()),
        select("rule", "规则", &rules, f.rule.as_deref()),
        if export.is_empty() { "" } else { "?" },
        esc(&export),
        esc(&report::scope(f)),
    )
}

/// `/office?…` with one filter key replaced (and the page reset).
fn office_link(f: &Filter, key: &str, value: &str) -> String {
    let mut pairs: Vec<(&str, String)> = f.to_pairs().into_iter().filter(|(k, _)| *k != key).collect();
    let key = match key {
        "rule" => "rule",
        "dept" => "dept",
        _ => "doctor",
    };
    pairs.push((key, value.to_owned()));
    format!("/office?{}", query(&pairs))
}

async fn office(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = office_auth(&req, &st) {
        return *r;
    }
    let (f, p) = match filter(&req) {
        Ok(x) => x,
        Err(e) => return error_page(&ApiFailure::BadRequest(e.0)),
    };
    let fq = f.clone();
    let read = read(&st, move |c| Ok((stats::stats(c, &fq)?, stats::list(c, &fq, p)?, stats::choices(c)?))).await;
    let (s, l, (depts, doctors, rules)) = match read {
        Ok(x) => x,
        Err(e) => return error_page(&ApiFailure::Internal(e.text())),
    };
    let mut body = String::new();
    if st.cfg.tier().is_none() {
        // Said where the 医保办 looks: without it every 限医疗机构级别 rule is unchecked on fee uploads.
        body.push_str(
            "<p class=\"banner\" role=\"alert\" style=\"background:#fff4e5;border:1px solid #f0a020;padding:.5em 1em\">\
             未设置本院医疗机构级别（institution_tier）：费用上传中的“药品限医疗机构级别”规则均无法判断，\
             请信息科在配置文件中设置 institution_tier（一级/二级/三级）。</p>",
        );
    }
    if st.cfg.item_catalogue.is_none() {
        // Fee uploads carry codes only: without the hospital's catalogue an item no pack names is
        // shown to the cashier and here by its code.
        body.push_str(
            "<p class=\"banner\" role=\"status\" style=\"background:#eef6ff;border:1px solid #7aa7d9;padding:.5em 1em\">\
             未配置医保目录对照（item_catalogue）：费用上传只带编码，规则包目录之外的项目在提示中只能以编码显示，\
             请信息科配置 HIS 导出的医保目录对照文件。</p>",
        );
    }
    body.push_str(&filter_form(&f, &depts, &doctors, &rules));
    let link = |k: &str, v: &str| office_link(&f, k, v);
    body.push_str(&report::figures_html(&s, Some(&link)));
    let page_link = |n: u32| {
        let mut pairs = f.to_pairs();
        pairs.push(("page", n.to_string()));
        format!("/office?{}", query(&pairs))
    };
    body.push_str(&report::listing_html(&l, &|id| format!("/office/decision/{id}"), &page_link));
    // The hospital the figures are about, named as the traffic names it.
    let title = match s.hospital.name.as_str() {
        "" => "医保智能审核 · 自律办公室看板".to_owned(),
        name => format!("{name} · 医保智能审核 · 自律办公室看板"),
    };
    html(StatusCode::OK, report::page(&title, &header_right(), &body))
}

async fn decision(req: HttpRequest, path: web::Path<String>, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = office_auth(&req, &st) {
        return *r;
    }
    let Ok(id) = path.into_inner().parse::<i64>() else {
        return error_page(&ApiFailure::BadRequest("记录编号应为整数".into()));
    };
    match read(&st, move |c| stats::get(c, id)).await {
        Ok(Some(e)) => {
            let body = format!("<p><a href=\"/office\">← 返回看板</a></p>{}", report::decision_html(&e));
            html(StatusCode::OK, report::page("医保智能审核 · 审核记录", &header_right(), &body))
        }
        Ok(None) => error_page(&ApiFailure::NotFound(format!("没有编号为 {id} 的审核记录"))),
        Err(e) => error_page(&ApiFailure::Internal(e.text())),
    }
}

async fn export_csv(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    if let Err(r) = office_auth(&req, &st) {
        return *r;
    }
    let f = match pairs(&req).and_then(|p| Filter::from_pairs(&p, &["page", "per_page"])) {
        Ok((f, _)) => f,
        Err(e) => return error_page(&ApiFailure::BadRequest(e.0)),
    };
    match read(&st, move |c| stats::list(c, &f, Paging { page: 1, per_page: EXPORT_MAX })).await {
        Ok(l) => {
            let mut r = HttpResponse::Ok();
            r.content_type("text/csv; charset=utf-8")
                .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"claimgate-journal.csv\""))
                .insert_header((header::CACHE_CONTROL, "no-store"));
            if l.total > i64::from(EXPORT_MAX) {
                r.insert_header(("x-claimgate-truncated", EXPORT_MAX.to_string()));
            }
            r.body(report::listing_csv(&l))
        }
        Err(e) => error_page(&ApiFailure::Internal(e.text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_bound_to_the_token_and_expires() {
        let v = session_value("secret", 1_000);
        assert!(session_valid("secret", &v, 1_000));
        assert!(!session_valid("other", &v, 1_000), "a new token ends every session");
        assert!(!session_valid("secret", &v, 1_000 + SESSION_SECS), "expired");
        assert!(!v.contains("secret"));
        // A forged expiry does not carry the MAC of the real one.
        let (_, mac) = v.split_once('.').unwrap();
        assert!(!session_valid("secret", &format!("{}.{mac}", 1_000 + SESSION_SECS + 5), 1_000));
        assert!(!session_valid("secret", "garbage", 1_000));
    }
}
