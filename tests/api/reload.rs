//! Rule bundles end to end: push, pull, refusals, last-known-good across a restart, rollback,
//! the local folder watcher, and swaps under load.

use crate::helpers::{fixture, root};
use actix_web::web;
use claimgate::config::Config;
use claimgate::reload::bundle;
use claimgate::reload::pull::{pull_once, PullOutcome};
use claimgate::reload::BundleConfig;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "secret-token";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn trusting(k: &SigningKey) -> BundleConfig {
    BundleConfig {
        trusted_keys: vec![bundle::public_key_text(&k.verifying_key())],
        watch_interval_secs: 0,
        poll_interval_secs: 3600,
        ..BundleConfig::default()
    }
}

struct App {
    base: String,
    client: reqwest::Client,
    state: web::Data<claimgate::gate::State>,
    handle: actix_web::dev::ServerHandle,
}

/// claimgate in check-only mode on a free loopback port, local packs `rules`, data under `data`.
async fn spawn(data: &Path, rules: Vec<PathBuf>, bundles: BundleConfig) -> App {
    let cfg = Config {
        data: data.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        upstream: None,
        rules,
        institution_tier: Some("2".into()),
        admin_token: Some(TOKEN.into()),
        bundles,
        // Debug builds on a loaded 2-core machine: the budget must not turn checks into fallbacks
        // (as in helpers::spawn_app_with); these tests are about swaps, not the budget.
        check_budget_ms: 10_000,
        ..Config::default()
    };
    let app = claimgate::startup::build(cfg).unwrap();
    let base = format!("http://{}", app.addr);
    let (state, handle) = (app.state.clone(), app.handle.clone());
    actix_web::rt::spawn(app.server);
    App { base, client: reqwest::Client::new(), state, handle }
}

impl App {
    async fn push(&self, bytes: Vec<u8>) -> (u16, Value) {
        let r = self
            .client
            .put(format!("{}/admin/v1/ruleset", self.base))
            .bearer_auth(TOKEN)
            .body(bytes)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn rollback(&self) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/admin/v1/ruleset/rollback", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn ruleset(&self) -> Value {
        let r = self.client.get(format!("{}/admin/v1/ruleset", self.base)).bearer_auth(TOKEN).send().await.unwrap();
        r.json().await.unwrap()
    }

    async fn readyz(&self) -> (u16, Value) {
        let r = self.client.get(format!("{}/readyz", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The standalone 2204 with violations through `/v1/check`: (status, x-claimgate-ruleset, decision JSON).
    async fn check(&self) -> (u16, Option<String>, Value) {
        let env = fixture("outpatient/04-2204-violations.json");
        let r = self.client.post(format!("{}/v1/check", self.base)).json(&env).send().await.unwrap();
        let rev = r.headers().get("x-claimgate-ruleset").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (r.status().as_u16(), rev, r.json().await.unwrap_or(Value::Null))
    }

    async fn serving(&self) -> String {
        let (status, rev, _) = self.check().await;
        assert_eq!(status, 200);
        rev.unwrap_or_default()
    }
}

/// A copy of national-baseline at `version`, every rule's basis prefixed with `[version]` so each hit
/// tells which revision produced it. `edit` may change files (relative path → text) before writing.
fn variant(version: &str, edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let src = root().join("rulesets/national-baseline");
    for sub in ["", "rules", "tables", "tests"] {
        std::fs::create_dir_all(out.path().join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap().flatten() {
            let p = e.path();
            if !p.is_file() {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if rel == "manifest.yaml" {
                text = text
                    .lines()
                    .map(|l| if l.starts_with("version:") { format!("version: \"{version}\"") } else { l.to_owned() })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            if rel.starts_with("rules/") {
                text = text.replace("basis: \"", &format!("basis: \"[{version}] "));
            }
            std::fs::write(out.path().join(&rel), edit(&rel, text)).unwrap();
        }
    }
    out
}

fn same(_: &str, t: String) -> String {
    t
}

fn signed(dir: &Path, k: &SigningKey) -> Vec<u8> {
    bundle::build(dir, std::slice::from_ref(k), "2026-11-23T08:00:00+08:00", (None, None)).unwrap()
}

/// A bundle whose manifest lists `listed` but whose archive holds `shipped`, signed by `k` (or unsigned).
fn crafted(listed: &[(String, Vec<u8>)], shipped: &[(String, Vec<u8>)], k: Option<&SigningKey>) -> Vec<u8> {
    let m = bundle::manifest_for("national-baseline", "2026.11.9", "2026-11-23T08:00:00+08:00", (None, None), listed);
    let mb = serde_json::to_vec(&m).unwrap();
    let sb = k.map(|k| serde_json::to_vec(&bundle::sign(&mb, std::slice::from_ref(k))).unwrap());
    bundle::write_archive(&mb, sb.as_deref(), shipped).unwrap()
}

fn rev(v: &str) -> String {
    format!("national-baseline@{v}")
}

#[actix_web::test]
async fn a_pushed_bundle_is_activated_without_a_restart() {
    // Arrange: bundles only, nothing active yet.
    let data = tempfile::tempdir().unwrap();
    let app = spawn(data.path(), vec![], trusting(&key(1))).await;
    assert_eq!(app.readyz().await.0, 503);
    let (v1, v2) = (variant("2026.11.2", same), variant("2026.11.3", same));

    // Act
    let (s1, body1) = app.push(signed(v1.path(), &key(1))).await;
    let serving1 = app.serving().await;
    let (s2, body2) = app.push(signed(v2.path(), &key(1))).await;
    let (status, serving2, decision) = app.check().await;
    let (again, body3) = app.push(signed(v2.path(), &key(1))).await;

    // Assert
    assert_eq!((s1, s2), (200, 200), "{body1} {body2}");
    assert_eq!(serving1, rev("2026.11.2"));
    assert_eq!((status, serving2), (200, Some(rev("2026.11.3"))));
    assert!(decision["hits"][0]["basis"].as_str().unwrap_or_default().starts_with("[2026.11.3]"), "{decision}");
    assert_eq!(body2["bundle"]["origin"], "push");
    assert_eq!(body2["bundle"]["key_id"], bundle::key_id(&key(1).verifying_key()));
    assert_eq!(body2["previous_bundle"]["version"], "2026.11.2");
    assert_eq!(body2["source"], "bundle:push");
    assert!(body2["activated_at"].is_string() && body2["digest"].is_string(), "{body2}");
    assert_eq!((again, body3["activated"].as_bool()), (200, Some(false)), "the same bundle twice is a no-op");
    assert_eq!(app.readyz().await.0, 200);
    assert!(
        data.path().join("bundles/active.bundle").is_file() && data.path().join("bundles/previous.bundle").is_file()
    );
}

#[actix_web::test]
async fn push_and_rollback_require_the_admin_token() {
    let data = tempfile::tempdir().unwrap();
    let app = spawn(data.path(), vec![], trusting(&key(1))).await;
    let v1 = variant("2026.11.2", same);
    let r =
        app.client.put(format!("{}/admin/v1/ruleset", app.base)).body(signed(v1.path(), &key(1))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r =
        app.client.post(format!("{}/admin/v1/ruleset/rollback", app.base)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(app.state.rules.load().is_none(), "nothing was activated");
}

#[actix_web::test]
async fn refused_bundles_name_the_reason_and_the_running_pack_keeps_serving() {
    // Arrange: v1 runs; small limits so a bomb is cheap to build.
    let data = tempfile::tempdir().unwrap();
    let limits = BundleConfig { max_unpacked_bytes: 4 << 20, max_file_bytes: 4 << 20, ..trusting(&key(1)) };
    let app = spawn(data.path(), vec![], limits).await;
    let v1 = variant("2026.11.2", same);
    assert_eq!(app.push(signed(v1.path(), &key(1))).await.0, 200);

    let good = variant("2026.11.9", same);
    let files = bundle::pack_files(good.path(), 1 << 20).unwrap();
    let mut changed = files.clone();
    let i = changed.iter().position(|(p, _)| p == "rules/patient.yaml").unwrap();
    changed[i].1 =
        String::from_utf8(changed[i].1.clone()).unwrap().replacen("action: block", "action: remind", 1).into_bytes();
    let mut extra = files.clone();
    extra.push(("rules/zz-extra.yaml".into(), b"rules: []\n".to_vec()));
    let bad_regex = variant("2026.11.9", |rel, t| {
        if rel == "rules/patient.yaml" {
            t.replacen("rules:\n", "rules:\n  - id: ZZ-BAD-REGEX\n    name: 坏正则\n    kind: gender\n    action: block\n    severity: critical\n    message: '{item}'\n    basis: b\n    select: { code_patterns: ['(unclosed'] }\n    params: { gender: 2 }\n", 1)
        } else {
            t
        }
    });
    let failing = variant("2026.11.9", |rel, t| {
        if rel == "rules/patient.yaml" {
            t.replacen("action: block", "action: remind", 1)
        } else {
            t
        }
    });
    let mut bomb = files.clone();
    for n in 1..=4 {
        // 3 MiB each passes the per-file limit; together they pass the 4 MiB decompressed limit.
        bomb.push((format!("tables/zeros{n}.csv"), vec![b'0'; 3 << 20]));
    }
    let bomb_bytes = crafted(&bomb, &bomb, Some(&key(1)));
    assert!(bomb_bytes.len() < 256 << 10, "a bomb is small: {}", bomb_bytes.len());

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unsigned", crafted(&files, &files, None), "unsigned"),
        ("untrusted key", signed(good.path(), &key(2)), "not signed by a trusted key"),
        ("changed file", crafted(&files, &changed, Some(&key(1))), "rules/patient.yaml: SHA-256 does not match"),
        (
            "extra file",
            crafted(&files, &extra, Some(&key(1))),
            "rules/zz-extra.yaml is in the archive but not in the manifest",
        ),
        ("bad regex", signed(bad_regex.path(), &key(1)), "invalid regex"),
        ("failing test case", signed(failing.path(), &key(1)), "the pack's own test cases failed"),
        ("gzip bomb", bomb_bytes, "the decompressed bundle is larger than the limit"),
        ("not a bundle", b"PK\x03\x04 not gzip".to_vec(), "not a readable gzip tar archive"),
    ];
    for (what, bytes, reason) in cases {
        // Act
        let (status, body) = app.push(bytes).await;
        // Assert
        assert_eq!(status, 422, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{what}: {error}");
        assert_eq!(app.serving().await, rev("2026.11.2"), "{what}: the running pack keeps serving");
        let (ready, r) = app.readyz().await;
        assert_eq!((ready, r["last_update_failed"].as_bool()), (200, Some(true)), "{what}: {r}");
        let info = app.ruleset().await;
        assert!(info["last_error"]["error"].as_str().unwrap_or_default().contains(reason), "{what}: {info}");
        assert_eq!(info["version"], "2026.11.2");
    }
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("claimgate_ruleset_update_failures_total{origin=\"push\",stage=\"verify\"}"), "{metrics}");
    assert!(
        metrics.contains("claimgate_ruleset_update_failures_total{origin=\"push\",stage=\"selftest\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("claimgate_ruleset_activations_total{origin=\"push\"}"), "{metrics}");
}

/// The bureau: serves one bundle with an ETag, answers 304 to a matching `If-None-Match`, and
/// honours `Prefer: wait=N` by holding such a request until the bundle changes (or N seconds pass).
struct Bureau {
    url: String,
    bundle: Arc<Mutex<Vec<u8>>>,
    changed: Arc<tokio::sync::Notify>,
    requests: Seen,
}

/// `(If-None-Match, Prefer)` of each request the bureau received.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

impl Bureau {
    fn publish(&self, bytes: Vec<u8>) {
        *self.bundle.lock().unwrap() = bytes;
        self.changed.notify_waiters();
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &bundle::sha256_hex(body)[..16])
}

async fn bureau(initial: Vec<u8>) -> Bureau {
    let bundle = Arc::new(Mutex::new(initial));
    let changed = Arc::new(tokio::sync::Notify::new());
    let requests: Seen = Arc::new(Mutex::new(Vec::new()));
    let (b, c, r) = (bundle.clone(), changed.clone(), requests.clone());
    let server = actix_web::HttpServer::new(move || {
        let (b, c, r) = (b.clone(), c.clone(), r.clone());
        actix_web::App::new().route(
            "/bundles/national-baseline.tar.gz",
            web::get().to(move |req: actix_web::HttpRequest| {
                let (b, c, r) = (b.clone(), c.clone(), r.clone());
                async move {
                    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let (inm, prefer) = (header("if-none-match"), header("prefer"));
                    r.lock().unwrap().push((inm.clone(), prefer.clone()));
                    let wait =
                        prefer.as_deref().and_then(|p| p.strip_prefix("wait=")).and_then(|w| w.parse::<u64>().ok());
                    // Registered before looking at the bundle, so a change in between is not missed.
                    let notified = c.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Some(w) = wait {
                        if inm.as_deref() == Some(etag_of(&b.lock().unwrap()).as_str()) {
                            let _ = tokio::time::timeout(Duration::from_secs(w), notified).await;
                        }
                    }
                    let body = b.lock().unwrap().clone();
                    let etag = etag_of(&body);
                    let unchanged = inm.as_deref() == Some(etag.as_str());
                    let mut resp =
                        if unchanged { actix_web::HttpResponse::NotModified() } else { actix_web::HttpResponse::Ok() };
                    resp.insert_header(("etag", etag));
                    if let Some(w) = wait {
                        resp.insert_header(("preference-applied", format!("wait={w}")));
                    }
                    if unchanged {
                        resp.finish()
                    } else {
                        resp.body(body)
                    }
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    Bureau { url: format!("http://{addr}/bundles/national-baseline.tar.gz"), bundle, changed, requests }
}

#[actix_web::test]
async fn with_long_polling_a_new_bundle_is_taken_as_soon_as_the_bureau_publishes_it() {
    // Arrange: a poll interval of an hour, so only long polling can bring v2 in.
    let data = tempfile::tempdir().unwrap();
    let (v1, v2) = (variant("2026.11.2", same), variant("2026.11.3", same));
    let b = bureau(signed(v1.path(), &key(1))).await;
    let cfg = BundleConfig { url: Some(b.url.clone()), long_poll_secs: 300, ..trusting(&key(1)) };
    let app = spawn(data.path(), vec![], cfg).await;
    let mut activations = app.state.reload.subscribe();
    tokio::time::timeout(Duration::from_secs(60), activations.wait_for(|n| *n >= 1)).await.unwrap().unwrap();

    // Act: the bureau publishes v2 while the poller's request is held.
    b.publish(signed(v2.path(), &key(1)));
    tokio::time::timeout(Duration::from_secs(60), activations.wait_for(|n| *n >= 2)).await.unwrap().unwrap();

    // Assert
    assert_eq!(app.serving().await, rev("2026.11.3"));
    let seen = b.requests.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, p)| p.as_deref() == Some("wait=300")), "{seen:?}");
    assert!(seen.len() >= 2 && seen[1].0.is_some(), "the second poll carried v1's ETag: {seen:?}");
}

#[actix_web::test]
async fn a_pulled_bundle_is_activated_and_an_unchanged_one_costs_a_304() {
    // Arrange: the bureau serves v1; claimgate polls it at start.
    let data = tempfile::tempdir().unwrap();
    let (v1, v2) = (variant("2026.11.2", same), variant("2026.11.3", same));
    let b = bureau(signed(v1.path(), &key(1))).await;
    let app = spawn(data.path(), vec![], BundleConfig { url: Some(b.url.clone()), ..trusting(&key(1)) }).await;
    let mut activations = app.state.reload.subscribe();

    // Act 1: the poller's first poll, at start.
    tokio::time::timeout(Duration::from_secs(60), activations.wait_for(|n| *n >= 1)).await.unwrap().unwrap();
    // Assert 1
    assert_eq!(app.serving().await, rev("2026.11.2"));
    let info = app.ruleset().await;
    assert_eq!((info["bundle"]["origin"].as_str(), info["source"].as_str()), (Some("pull"), Some("bundle:pull")));

    // Act 2: the bureau publishes v2.
    b.publish(signed(v2.path(), &key(1)));
    let client = reqwest::Client::new();
    let second = pull_once(&app.state.reload, &client).await.unwrap();
    let third = pull_once(&app.state.reload, &client).await.unwrap();

    // Assert 2
    assert_eq!(second, PullOutcome::Activated(rev("2026.11.3")));
    assert_eq!(app.serving().await, rev("2026.11.3"));
    assert_eq!(third, PullOutcome::NotModified);
    let seen = b.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], (None, None), "the first poll has no ETag, and no long polling was asked for");
    assert!(seen[1].0.is_some() && seen[2].0.is_some() && seen[1] != seen[2], "v1's then v2's ETag: {seen:?}");

    // Act 3: the wire serves a bundle signed by someone else, then an older bundle, validly signed.
    b.publish(signed(v1.path(), &key(2)));
    let untrusted = pull_once(&app.state.reload, &client).await;
    let old = bundle::build(v1.path(), &[key(1)], "2026-11-01T08:00:00+08:00", (None, None)).unwrap();
    b.publish(old.clone());
    let replayed = pull_once(&app.state.reload, &client).await;
    // Assert 3
    assert!(untrusted.is_err_and(|e| e.to_string().contains("not signed by a trusted key")));
    assert!(replayed.is_err_and(|e| e.to_string().contains("a pulled bundle never goes back in time")));
    assert_eq!(app.serving().await, rev("2026.11.3"));
    let (status, refused) = app.push(old.clone()).await;
    assert_eq!(status, 422, "an older bundle is not pushed by mistake: {refused}");
    assert!(refused["error"].as_str().unwrap().contains("?force=true"), "{refused}");
    assert_eq!(app.serving().await, rev("2026.11.3"));
    let forced = claimgate::telemetry::metrics::RULESET_FORCED_OLDER.get();
    // An administrator may go back on purpose; the scheme of the token is case-insensitive.
    let r = app
        .client
        .put(format!("{}/admin/v1/ruleset?force=true", app.base))
        .header("authorization", format!("bearer {TOKEN}"))
        .body(old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.serving().await, rev("2026.11.2"));
    assert_eq!(claimgate::telemetry::metrics::RULESET_FORCED_OLDER.get(), forced + 1, "counted");
}

#[actix_web::test]
async fn a_restart_with_the_bureau_down_comes_up_on_the_last_known_good() {
    // Arrange: one run takes v1 then v2 (so v1 is the previous), then stops.
    let data = tempfile::tempdir().unwrap();
    let (v1, v2) = (variant("2026.11.2", same), variant("2026.11.3", same));
    let first = spawn(data.path(), vec![], trusting(&key(1))).await;
    assert_eq!(first.push(signed(v1.path(), &key(1))).await.0, 200);
    assert_eq!(first.push(signed(v2.path(), &key(1))).await.0, 200);
    first.handle.stop(true).await;
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/bundles/x.tar.gz", l.local_addr().unwrap())
    };

    // Act: restart with the bureau unreachable.
    let app = spawn(data.path(), vec![], BundleConfig { url: Some(down), ..trusting(&key(1)) }).await;

    // Assert: ready at once on v2, from the last-known-good; rollback reaches the persisted v1.
    assert_eq!(app.readyz().await.0, 200);
    assert_eq!(app.serving().await, rev("2026.11.3"));
    let info = app.ruleset().await;
    assert_eq!(info["bundle"]["origin"], "last-known-good", "{info}");
    let (status, body) = app.rollback().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.serving().await, rev("2026.11.2"));
    let failed = pull_once(&app.state.reload, &reqwest::Client::new()).await;
    assert!(failed.is_err_and(|e| e.to_string().starts_with("fetch:")));
    assert_eq!(app.serving().await, rev("2026.11.2"), "the bureau being down changes nothing");
}

#[actix_web::test]
async fn rollback_returns_to_the_previous_bundle_and_back() {
    let data = tempfile::tempdir().unwrap();
    let app = spawn(data.path(), vec![], trusting(&key(1))).await;
    let (v1, v2) = (variant("2026.11.2", same), variant("2026.11.3", same));
    assert_eq!(app.push(signed(v1.path(), &key(1))).await.0, 200);
    let (status, body) = app.rollback().await;
    assert_eq!(status, 409, "nothing to roll back to: {body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("no previous bundle"));
    assert_eq!(app.push(signed(v2.path(), &key(1))).await.0, 200);

    let (status, body) = app.rollback().await;
    assert_eq!((status, body["version"].as_str()), (200, Some("2026.11.2")), "{body}");
    assert_eq!(body["bundle"]["origin"], "rollback");
    assert_eq!(app.serving().await, rev("2026.11.2"));
    let (status, _) = app.rollback().await;
    assert_eq!(status, 200);
    assert_eq!(app.serving().await, rev("2026.11.3"), "a second rollback undoes the first");
}

#[actix_web::test]
async fn a_changed_local_folder_is_reloaded_and_a_broken_edit_is_refused() {
    // Arrange: no bundles, one local pack in a folder we edit.
    let data = tempfile::tempdir().unwrap();
    let local = variant("2026.11.2", same);
    let app = spawn(data.path(), vec![local.path().to_path_buf()], BundleConfig::default()).await;
    assert_eq!(app.serving().await, rev("2026.11.2"));
    assert!(matches!(watch_once(&app).await, Ok(None)), "nothing changed");

    // Act 1: a new revision is saved.
    let m = local.path().join("manifest.yaml");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("2026.11.2", "2026.11.4")).unwrap();
    assert!(matches!(watch_once(&app).await, Ok(Some(_))));
    // Assert 1
    assert_eq!(app.serving().await, rev("2026.11.4"));
    assert_eq!(app.ruleset().await["source"], format!("local:{}", local.path().display()));

    // Act 2: a broken edit.
    std::fs::write(local.path().join("rules/zz.yaml"), "rules:\n  - id: X\n    nmae: typo\n").unwrap();
    let refused = watch_once(&app).await;
    // Assert 2
    assert!(refused.is_err_and(|e| e.to_string().contains("unknown field `nmae`")));
    assert_eq!(app.serving().await, rev("2026.11.4"));
}

async fn watch_once(app: &App) -> Result<Option<claimgate::reload::Outcome>, claimgate::reload::ActivateError> {
    claimgate::reload::watch::watch_once(&app.state.reload).await
}

#[actix_web::test]
async fn a_local_pack_layers_over_the_bundle_and_wins_on_a_shared_id() {
    // Arrange: the bundle is the national baseline; the local pack redefines one of its rules.
    let data = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let p = local.path();
    std::fs::create_dir_all(p.join("rules")).unwrap();
    std::fs::write(p.join("manifest.yaml"), "name: hospital\nversion: '7'\n").unwrap();
    let national = std::fs::read_to_string(root().join("rulesets/national-baseline/rules/combination.yaml")).unwrap();
    // The same rule with the hospital's own basis (the rule the standalone 2204 hits).
    let start = national.find("  - id: GZ10000102012000-004").unwrap();
    let end = national[start + 4..].find("\n  - id: ").map_or(national.len(), |e| start + 4 + e + 1);
    let rule = national[start..end].replace("basis: \"", "basis: \"[本院] ");
    std::fs::write(p.join("rules/local.yaml"), format!("rules:\n{rule}")).unwrap();
    let app = spawn(data.path(), vec![p.to_path_buf()], trusting(&key(1))).await;
    let v1 = variant("2026.11.2", same);

    // Act
    let (status, body) = app.push(signed(v1.path(), &key(1))).await;
    let (_, serving, decision) = app.check().await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(serving.as_deref(), Some("national-baseline+hospital@2026.11.2+7"));
    assert_eq!(body["source"], format!("bundle:push + local:{}", p.display()));
    assert!(decision["hits"][0]["basis"].as_str().unwrap_or_default().starts_with("[本院]"), "{decision}");
}

/// A one-rule pack named like the baseline: the glucose pair rule as a reminder, with its own case.
fn reminder_only_pack(version: &str) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let p = out.path();
    std::fs::create_dir_all(p.join("rules")).unwrap();
    std::fs::create_dir_all(p.join("tests")).unwrap();
    std::fs::write(p.join("manifest.yaml"), format!("name: national-baseline\nversion: \"{version}\"\n")).unwrap();
    let national = std::fs::read_to_string(root().join("rulesets/national-baseline/rules/combination.yaml")).unwrap();
    let start = national.find("  - id: GZ10000102012000-004").unwrap();
    let end = national[start + 4..].find("\n  - id: ").map_or(national.len(), |e| start + 4 + e + 1);
    let rule = national[start..end]
        .replace("action: block", "action: remind")
        .replace("basis: \"", &format!("basis: \"[{version}] "));
    std::fs::write(p.join("rules/combination.yaml"), format!("rules:\n{rule}")).unwrap();
    let case = serde_json::json!({"cases": [{
        "name": "葡萄糖耐量试验与葡萄糖测定同日：仅提醒",
        "envelope": fixture("outpatient/04-2204-violations.json"),
        "expect": {"decision": "remind", "hits": [{"rule_id": "GZ10000102012000-004", "lines": ["MZ202509150004"]}]}
    }]});
    std::fs::write(p.join("tests/combination.yaml"), serde_json::to_string_pretty(&case).unwrap()).unwrap();
    out
}

#[actix_web::test]
async fn a_shadow_candidate_is_counted_on_live_traffic_without_changing_answers_and_promotes_in_one_call() {
    // Arrange: v1 blocks the glucose pair; the candidate only reminds.
    let data = tempfile::tempdir().unwrap();
    let app = spawn(data.path(), vec![], trusting(&key(1))).await;
    let v1 = variant("2026.11.2", same);
    assert_eq!(app.push(signed(v1.path(), &key(1))).await.0, 200);
    let candidate = reminder_only_pack("2026.12.1");
    let shadow = |method: reqwest::Method, path: &str| {
        app.client.request(method, format!("{}/admin/v1/shadow{path}", app.base)).bearer_auth(TOKEN)
    };
    let r = shadow(reqwest::Method::PUT, "").body(signed(candidate.path(), &key(2))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422, "an untrusted candidate is refused like any bundle");
    let r = shadow(reqwest::Method::PUT, "").body(signed(candidate.path(), &key(1))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Act 1: live traffic.
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(app.check().await);
    }
    let report: Value = shadow(reqwest::Method::GET, "").send().await.unwrap().json().await.unwrap();

    // Assert 1: answers come from the active set only; the report counts the candidate's would-be hits.
    for (status, rev_, d) in &answers {
        assert_eq!(
            (*status, rev_.as_deref(), d["decision"].as_str()),
            (200, Some("national-baseline@2026.11.2"), Some("block"))
        );
    }
    assert_eq!((report["observed"].as_u64(), report["evaluated"].as_u64()), (Some(5), Some(5)), "{report}");
    let rule = &report["rules"]["GZ10000102012000-004"];
    assert_eq!((rule["would_remind"].as_u64(), rule["would_block"].as_u64()), (Some(5), Some(0)), "{report}");
    assert_eq!(rule["active_block"].as_u64(), Some(5), "{report}");
    assert_eq!(report["differing"].as_u64(), Some(5));
    let diff = &report["differences"][0];
    assert_eq!(
        (diff["active"]["decision"].as_str(), diff["candidate"]["decision"].as_str()),
        (Some("block"), Some("remind"))
    );
    assert_eq!(report["revision"], "national-baseline@2026.12.1");

    // Act 2: promote.
    let r = shadow(reqwest::Method::POST, "/promote").send().await.unwrap();
    // Assert 2
    assert_eq!(r.status().as_u16(), 200);
    let (_, serving, d) = app.check().await;
    assert_eq!((serving.as_deref(), d["decision"].as_str()), (Some("national-baseline@2026.12.1"), Some("remind")));
    assert_eq!(app.ruleset().await["bundle"]["origin"], "promote");
    assert_eq!(shadow(reqwest::Method::GET, "").send().await.unwrap().status().as_u16(), 404, "the shadow run ended");
    assert_eq!(shadow(reqwest::Method::POST, "/promote").send().await.unwrap().status().as_u16(), 409);
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
}

/// Sends the 2204 `count` times or until `stop`, checking that every answer came whole from one
/// revision: the header, the decision's `ruleset` and every hit's `basis` tag agree.
async fn traffic(
    app: Arc<App>,
    count: usize,
    stop: Arc<AtomicBool>,
    done: Arc<tokio::sync::Notify>,
) -> (Vec<Duration>, Vec<String>) {
    let mut lat = Vec::new();
    let mut problems = Vec::new();
    while lat.len() < count && !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (status, rev, d) = app.check().await;
        lat.push(t.elapsed());
        done.notify_one();
        let version = rev.as_deref().and_then(|r| r.strip_prefix("national-baseline@")).unwrap_or("?").to_owned();
        let tag = format!("[{version}]");
        let hits = d["hits"].as_array().cloned().unwrap_or_default();
        let consistent = d["ruleset"]["version"] == version.as_str()
            && !hits.is_empty()
            && hits.iter().all(|h| h["basis"].as_str().unwrap_or_default().starts_with(&tag));
        if status != 200 || !consistent {
            problems.push(format!("status {status}, header {rev:?}, body {d}"));
        }
    }
    (lat, problems)
}

async fn gather(
    clients: Vec<actix_web::rt::task::JoinHandle<(Vec<Duration>, Vec<String>)>>,
) -> (Vec<Duration>, Vec<String>) {
    let (mut lat, mut problems) = (Vec::new(), Vec::new());
    for c in clients {
        let (l, p) = c.await.unwrap();
        lat.extend(l);
        problems.extend(p);
    }
    (lat, problems)
}

#[actix_web::test]
async fn swapping_packs_100_times_under_load_fails_no_request_and_mixes_no_packs() {
    // Arrange: two revisions whose every hit names its revision in `basis`.
    let data = tempfile::tempdir().unwrap();
    let app = Arc::new(spawn(data.path(), vec![], trusting(&key(1))).await);
    let (a, b) = (variant("2026.11.2", same), variant("2026.11.3", same));
    let bundles = [signed(a.path(), &key(1)), signed(b.path(), &key(1))];
    assert_eq!(app.push(bundles[0].clone()).await.0, 200);
    const CLIENTS: usize = 4;
    let done = Arc::new(tokio::sync::Notify::new());
    let run = |count: usize, stop: Arc<AtomicBool>| {
        (0..CLIENTS)
            .map(|_| actix_web::rt::spawn(traffic(app.clone(), count, stop.clone(), done.clone())))
            .collect::<Vec<_>>()
    };

    // Act 1: the baseline, no swaps.
    let (mut quiet, mut problems) = gather(run(500, Arc::new(AtomicBool::new(false)))).await;

    // Act 2: 100 swaps, alternating the two revisions, while the clients send claims.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = run(usize::MAX, stop.clone());
    let swap_start = Instant::now();
    for i in 1..=100 {
        let (status, body) = app.push(bundles[i % 2].clone()).await;
        assert_eq!((status, body["activated"].as_bool()), (200, Some(true)), "swap {i}: {body}");
    }
    let swap_time = swap_start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut busy, p) = gather(clients).await;
    problems.extend(p);

    // Act 3: the swap alone, without the activation's work: 100 stores of two precompiled sets,
    // with ten answered claims between one store and the next.
    let precompiled = [a.path(), b.path()].map(|d| {
        let (_, rs) = claimgate::rules::load(&[d.to_path_buf()]).unwrap();
        Arc::new(claimgate::reload::Active::new(rs, "test".into(), String::new(), None))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let clients = run(usize::MAX, stop.clone());
    for i in 0..100 {
        app.state.rules.store(Some(precompiled[i % 2].clone()));
        for _ in 0..10 {
            done.notified().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut bare, p) = gather(clients).await;
    problems.extend(p);

    // Assert
    assert!(problems.is_empty(), "{} bad answers, first: {}", problems.len(), problems[0]);
    assert!(!busy.is_empty() && !bare.is_empty());
    let (nq, nb, nr) = (quiet.len(), busy.len(), bare.len());
    let (q50, q99) = (percentile(&mut quiet, 0.50), percentile(&mut quiet, 0.99));
    let (b50, b99) = (percentile(&mut busy, 0.50), percentile(&mut busy, 0.99));
    let (r50, r99) = (percentile(&mut bare, 0.50), percentile(&mut bare, 0.99));
    println!(
        "swap load: {CLIENTS} clients; without swaps {nq} requests p50 {q50:?} p99 {q99:?}; \
         during 100 pushed swaps ({swap_time:?}, {:?}/swap) {nb} requests p50 {b50:?} p99 {b99:?}; \
         during 100 bare swaps {nr} requests p50 {r50:?} p99 {r99:?}; 0 failed, 0 mixed",
        swap_time / 100
    );
}

fn claimgate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claimgate")).args(args).current_dir(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_bundle_and_verify_on_the_command_line() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let pack = root().join("rulesets/national-baseline");
    let pack = pack.to_str().unwrap();

    // Act
    let keygen = claimgate(dir.path(), &["keygen", "-o", "bureau"]);
    let again = claimgate(dir.path(), &["keygen", "-o", "bureau"]);
    let other = claimgate(dir.path(), &["keygen", "-o", "other"]);
    let made = claimgate(dir.path(), &["rules", "bundle", pack, "--key", "bureau.key", "-o", "nb.bundle"]);
    let ok = claimgate(dir.path(), &["rules", "verify", "nb.bundle", "--pubkey", "bureau.pub"]);
    let untrusted = claimgate(dir.path(), &["rules", "verify", "nb.bundle", "--pubkey", "other.pub"]);

    // Assert
    assert_eq!((keygen.0, other.0), (0, 0), "{keygen:?}");
    assert!(again.0 != 0 && again.2.contains("already exists"), "keygen never overwrites: {again:?}");
    assert_eq!(made.0, 0, "{made:?}");
    assert!(made.1.contains("national-baseline@") && made.1.contains("test cases passed, 1 signature(s)"), "{made:?}");
    assert_eq!(ok.0, 0, "{ok:?}");
    assert!(ok.1.starts_with("ok: national-baseline@") && ok.1.contains("signed by key"), "{ok:?}");
    assert_ne!(untrusted.0, 0);
    assert!(untrusted.2.contains("not signed by a trusted key"), "{untrusted:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("bureau.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by its owner only");
    }
}
