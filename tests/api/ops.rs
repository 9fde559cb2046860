//! What an operator's tooling reads: the metrics a fresh process exports, its log lines, and the
//! deploy/ files (Prometheus rules, Grafana dashboard, Kubernetes manifests) checked against them.

use crate::helpers::root;
use claimgate::telemetry::metrics;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A real `claimgate serve` with stderr piped (not a terminal), the national baseline pack, no
/// upstream (check-only). Returns the child, its address and the log lines up to "listening".
fn serve(data: &std::path::Path) -> (Child, String, Vec<String>, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rules"])
        .arg(root().join("rulesets/national-baseline"))
        .arg("--data")
        .arg(data)
        .env_remove("CLAIMGATE_LOG_JSON")
        .env_remove("CLAIMGATE_UPSTREAM")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut logs = Vec::new();
    let addr = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "claimgate exited before listening:\n{}", logs.join(""));
        logs.push(line.clone());
        if line.contains("claimgate listening") {
            let addr = line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap();
            break addr.to_owned();
        }
    };
    (child, addr, logs, err)
}

fn stop(mut child: Child, mut err: BufReader<std::process::ChildStderr>, logs: &mut Vec<String>) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "claimgate stops cleanly on SIGTERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    logs.extend(rest.lines().map(|l| format!("{l}\n")));
}

/// The sample's value in the Prometheus text `m`, by its full name with labels as printed.
fn sample(m: &str, series: &str) -> Option<f64> {
    m.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

#[actix_web::test]
async fn a_fresh_server_lists_every_counter_at_zero_with_process_and_build_metrics_and_plain_logs() {
    // Arrange: a new process, so nothing has been counted yet.
    let data = tempfile::tempdir().unwrap();
    let (child, addr, mut logs, err) = serve(data.path());
    // Act
    let m = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    stop(child, err, &mut logs);
    // Assert: every labelled counter's known values present before any request; those only a
    // request can move are at 0 (the activation's self-test reads and writes a scratch history).
    let families: [(&str, &str, &[&str]); 7] = [
        ("claimgate_fallbacks_total", "reason", metrics::FALLBACK_REASONS),
        ("claimgate_upstream_errors_total", "kind", metrics::UPSTREAM_ERROR_KINDS),
        ("claimgate_refused_total", "reason", metrics::REFUSED_REASONS),
        ("claimgate_overrides_total", "dspo_way", metrics::OVERRIDE_WAYS),
        ("claimgate_history_writes_total", "outcome", metrics::HISTORY_WRITE_OUTCOMES),
        ("claimgate_history_lookups_total", "cache", metrics::HISTORY_CACHE),
        ("claimgate_history_snapshot_updates_total", "outcome", metrics::SNAPSHOT_OUTCOMES),
    ];
    for (name, label, values) in families {
        for v in values {
            let series = format!("{name}{{{label}=\"{v}\"}}");
            let value = sample(&m, &series);
            assert!(value.is_some(), "{series} listed from the start:\n{m}");
            if !name.starts_with("claimgate_history") {
                assert_eq!(value, Some(0.0), "{series} at 0 before any request");
            }
        }
    }
    for series in [
        "claimgate_requests_total{decision=\"block\",infno=\"2207\"}",
        "claimgate_ruleset_update_failures_total{origin=\"pull\",stage=\"verify\"}",
        "claimgate_journal_errors_total",
        "claimgate_journal_spill_pending",
        "claimgate_history_outbox_pending",
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series} at 0 from the start");
    }
    // Every rule of the active set has its hit counter, e.g. the daily cap of the baseline pack.
    let rules = m.lines().filter(|l| l.starts_with("claimgate_rule_hits_total{")).count() as f64;
    assert!(rules > 0.0 && Some(rules) == sample(&m, "claimgate_ruleset_rules"), "one hit series per rule");
    assert_eq!(sample(&m, "claimgate_ruleset_activations_total{origin=\"local\"}"), Some(1.0));
    // The binary is built with the test's profile.
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let build = format!("claimgate_build_info{{profile=\"{profile}\",version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&m, &build), Some(1.0), "{m}");
    assert!(sample(&m, "process_cpu_seconds_total").is_some(), "process CPU exported");
    for process in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
        assert!(sample(&m, process).is_some_and(|v| v > 0.0), "{process} exported");
    }
    // Logs written to a pipe carry no colour codes (journald and files get plain text).
    let logs = logs.concat();
    assert!(logs.contains("INFO") && logs.contains("claimgate listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escapes in piped logs:\n{logs:?}");
}

/// The metric names the binary exports: every family's `# TYPE` line on a fresh `claimgate serve`'s
/// /metrics (histograms as `_bucket`, `_sum` and `_count`), plus Prometheus' own `up`.
async fn exported() -> std::collections::BTreeSet<String> {
    let data = tempfile::tempdir().unwrap();
    let (child, addr, mut logs, err) = serve(data.path());
    let m = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    stop(child, err, &mut logs);
    let mut names = std::collections::BTreeSet::from(["up".to_owned()]);
    for line in m.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The metric names a PromQL expression reads: identifiers outside strings, braces' label names and
/// `by (…)` lists, that are not functions, keywords or durations.
fn metric_names(expr: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        "sum",
        "rate",
        "increase",
        "irate",
        "histogram_quantile",
        "topk",
        "bottomk",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "max",
        "min",
        "avg",
        "count",
        "clamp_min",
        "clamp_max",
        "absent",
        "delta",
        "deriv",
        "label_values",
        "time",
        "bool",
        "offset",
    ];
    let mut names = Vec::new();
    let (mut depth_brace, mut in_str, mut after_by) = (0, false, false);
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            in_str = c != '"' || chars[i - 1] == '\\';
        } else if c == '"' {
            in_str = true;
        } else if c == '{' {
            depth_brace += 1;
        } else if c == '}' {
            depth_brace -= 1;
        } else if c == ')' {
            after_by = false;
        } else if c == '[' {
            // A range: `[5m]`, `[$__rate_interval]`.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' {
            let start = i;
            while i + 1 < chars.len()
                && (chars[i + 1].is_ascii_alphanumeric() || chars[i + 1] == '_' || chars[i + 1] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..=i].iter().collect();
            if word == "by" || word == "without" || word == "on" || word == "ignoring" {
                after_by = true;
            } else if depth_brace == 0 && !after_by && !word.starts_with('$') && !WORDS.contains(&word.as_str()) {
                names.push(word);
            }
        }
        i += 1;
    }
    names
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[actix_web::test]
async fn every_alert_rule_reads_exported_metrics_and_the_failure_modes_are_covered() {
    // Arrange
    let exported = exported().await;
    let text = std::fs::read_to_string(root().join("deploy/prometheus/claimgate-alerts.yaml")).unwrap();
    // Act
    let file: RuleFile = serde_norway::from_str(&text).unwrap();
    // Assert
    let mut read = std::collections::BTreeSet::new();
    for g in &file.groups {
        assert!(!g.name.is_empty() && !g.rules.is_empty());
        for r in &g.rules {
            let names = metric_names(&r.expr);
            assert!(!names.is_empty(), "{}: reads no metric: {}", r.alert, r.expr);
            for n in &names {
                assert!(exported.contains(n), "{}: {n} is not exported by claimgate (expr {})", r.alert, r.expr);
            }
            read.extend(names);
            assert!(r.alert.starts_with("Claimgate"), "{}", r.alert);
            assert!(
                matches!(r.labels.get("severity").map(String::as_str), Some("critical" | "warning")),
                "{}",
                r.alert
            );
            assert!(r.annotations.get("summary").is_some_and(|s| !s.is_empty()), "{}", r.alert);
            assert!(r.annotations.get("description").is_some_and(|s| !s.is_empty()), "{}", r.alert);
            if let Some(f) = &r.for_ {
                assert!(f.ends_with('m') || f.ends_with('s'), "{}: for {f}", r.alert);
            }
        }
    }
    for must in [
        "claimgate_fallbacks_total",
        "claimgate_history_outbox_pending",
        "claimgate_journal_spill_pending",
        "claimgate_upstream_errors_total",
        "claimgate_ready",
    ] {
        assert!(read.contains(must), "no alert reads {must}");
    }
}

/// Every panel of a dashboard, rows' nested panels included.
fn all_panels(panels: &[serde_json::Value], out: &mut Vec<serde_json::Value>) {
    for p in panels {
        out.push(p.clone());
        if let Some(inner) = p["panels"].as_array() {
            all_panels(inner, out);
        }
    }
}

#[actix_web::test]
async fn every_dashboard_panel_queries_exported_metrics() {
    // Arrange
    let exported = exported().await;
    let text = std::fs::read_to_string(root().join("deploy/grafana/claimgate-dashboard.json")).unwrap();
    // Act
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Assert
    assert_eq!(d["uid"], "claimgate");
    let mut panels = Vec::new();
    all_panels(d["panels"].as_array().unwrap(), &mut panels);
    let ids: std::collections::BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let mut read = std::collections::BTreeSet::new();
    let mut queries = 0;
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert!(!title.is_empty());
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: reads no metric: {expr}");
            for n in &names {
                assert!(exported.contains(n), "{title}: {n} is not exported by claimgate ({expr})");
            }
            read.extend(names);
            queries += 1;
        }
        let g = &p["gridPos"];
        assert!(g["w"].as_i64().unwrap() > 0 && g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24, "{title}");
    }
    assert!(queries >= 20, "{queries} queries");
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            let metric = q.trim_start_matches("label_values(").split(',').next().unwrap();
            assert!(exported.contains(metric), "variable {}: {metric}", v["name"]);
        }
    }
    // The operator sees every counter family the binary has, bar none.
    for n in exported.iter().filter(|n| n.starts_with("claimgate_") && !n.ends_with("_sum") && !n.ends_with("_bucket"))
    {
        let family = n.trim_end_matches("_count");
        assert!(read.iter().any(|r| r.starts_with(family)), "no panel shows {n}");
    }
}

/// Runs `promtool` in `dir`; `None` when it is not installed and not required.
fn promtool(dir: &std::path::Path, args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool").args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) => {
            assert!(
                std::env::var("CLAIMGATE_REQUIRE_PROMTOOL").is_err(),
                "CLAIMGATE_REQUIRE_PROMTOOL is set but promtool cannot run: {e}"
            );
            eprintln!("SKIPPED promtool checks: {e} (Debian's `prometheus` package has it)");
            None
        }
    }
}

#[test]
fn promtool_accepts_the_alert_rules_passes_their_unit_tests_and_parses_every_dashboard_query() {
    // Arrange: the dashboard's queries as recording rules, Grafana's variables given values.
    let dir = root().join("deploy/prometheus");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/grafana/claimgate-dashboard.json")).unwrap())
            .unwrap();
    let mut panels = Vec::new();
    all_panels(d["panels"].as_array().unwrap(), &mut panels);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, t) in panels.iter().flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default()).enumerate() {
        let expr = t["expr"]
            .as_str()
            .unwrap()
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$instance", ".*");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::Value::String(expr)
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dashboard-rules.yaml"), rules).unwrap();
    // Act
    let Some(check) = promtool(&dir, &["check", "rules", "claimgate-alerts.yaml"]) else { return };
    let unit = promtool(&dir, &["test", "rules", "claimgate-alerts.test.yaml"]).unwrap();
    let dashboard = promtool(tmp.path(), &["check", "rules", "dashboard-rules.yaml"]).unwrap();
    // Assert
    for (what, out) in [("check rules", check), ("test rules", unit), ("dashboard queries", dashboard)] {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("SUCCESS"), "promtool {what}:\n{text}");
    }
}

/// The objects a kustomization folder applies: its resources' YAML documents, bases followed.
fn kustomize(dir: &std::path::Path, out: &mut Vec<(String, serde_json::Value)>) {
    let k: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap()).unwrap();
    assert_eq!(k["kind"], "Kustomization");
    for r in k["resources"].as_array().unwrap() {
        let p = dir.join(r.as_str().unwrap());
        if p.is_dir() {
            kustomize(&p, out);
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            out.push((p.display().to_string(), v));
        }
    }
}

/// `v` read as the Kubernetes type `T` and written back must be `v` itself: a missing required
/// field, a wrong type or a misspelt (hence dropped) field fails.
fn schema_check<T: serde::de::DeserializeOwned + serde::Serialize>(file: &str, v: &serde_json::Value) {
    let typed: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{file}: {} {}: {e}", v["kind"], v["metadata"]["name"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, v, "{file}: {} {} has fields the API does not know", v["kind"], v["metadata"]["name"]);
}

#[test]
fn the_kubernetes_manifests_are_valid_api_objects_that_reference_what_they_ship() {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, policy::v1 as policy};
    let container_cfg = std::fs::read_to_string(root().join("deploy/claimgate.container.yaml")).unwrap();
    for (variant, replicas) in [("embedded", 1..=1), ("shared-postgres", 2..=10)] {
        // Arrange
        let mut objects = Vec::new();
        kustomize(&root().join("deploy/k8s").join(variant), &mut objects);
        // Act: each object against its API type.
        for (file, v) in &objects {
            match v["kind"].as_str().unwrap() {
                "ConfigMap" => schema_check::<core::ConfigMap>(file, v),
                "Secret" => schema_check::<core::Secret>(file, v),
                "Service" => schema_check::<core::Service>(file, v),
                "PersistentVolumeClaim" => schema_check::<core::PersistentVolumeClaim>(file, v),
                "Deployment" => schema_check::<apps::Deployment>(file, v),
                "StatefulSet" => schema_check::<apps::StatefulSet>(file, v),
                "PodDisruptionBudget" => schema_check::<policy::PodDisruptionBudget>(file, v),
                other => panic!("{file}: unexpected kind {other}"),
            }
        }
        // Assert: the workload and what it refers to.
        let named = |kind: &str, name: &str| {
            objects.iter().map(|(_, v)| v).find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
        };
        let workloads: Vec<&serde_json::Value> = objects
            .iter()
            .map(|(_, v)| v)
            .filter(|v| v["kind"] == "Deployment" || v["kind"] == "StatefulSet")
            .collect();
        assert_eq!(workloads.len(), 1, "{variant}");
        let w = workloads[0];
        assert!(replicas.contains(&w["spec"]["replicas"].as_i64().unwrap()), "{variant}: replicas");
        let pod = &w["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{variant}");
        let c = &pod["containers"][0];
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{variant}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{variant}");
        assert_eq!(c["ports"][0]["name"], c["readinessProbe"]["httpGet"]["port"], "{variant}");
        for e in c["env"].as_array().unwrap() {
            let r = &e["valueFrom"]["secretKeyRef"];
            let secret = named("Secret", r["name"].as_str().unwrap());
            let has_key = secret.is_some_and(|s| s["stringData"].get(r["key"].as_str().unwrap()).is_some());
            assert!(has_key || r["optional"] == true, "{variant}: {} from a secret key it does not ship", e["name"]);
        }
        let envs: Vec<&str> = c["env"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert!(envs.contains(&"CLAIMGATE_ADMIN_TOKEN"), "{variant}");
        assert_eq!(envs.contains(&"CLAIMGATE_HISTORY_STORE"), variant == "shared-postgres", "{variant}");
        let mounts: Vec<&str> =
            c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
        assert!(mounts.contains(&"/var/lib/claimgate/data") && mounts.contains(&"/etc/claimgate"), "{variant}");
        for vol in pod["volumes"].as_array().unwrap() {
            if let Some(cm) = vol["configMap"]["name"].as_str() {
                let cm = named("ConfigMap", cm).unwrap_or_else(|| panic!("{variant}: ConfigMap {cm}"));
                assert_eq!(
                    cm["data"]["claimgate.yaml"].as_str(),
                    Some(container_cfg.as_str()),
                    "the ConfigMap is deploy/claimgate.container.yaml"
                );
            }
            if let Some(pvc) = vol["persistentVolumeClaim"]["claimName"].as_str() {
                assert!(named("PersistentVolumeClaim", pvc).is_some(), "{variant}: PVC {pvc}");
            }
        }
        let data_is_durable = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "data" && v.get("persistentVolumeClaim").is_some())
            || w["spec"]["volumeClaimTemplates"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["metadata"]["name"] == "data"));
        assert!(data_is_durable, "{variant}: the data folder outlives the pod");
        let service = named("Service", "claimgate").unwrap();
        assert_eq!(service["spec"]["selector"], w["spec"]["selector"]["matchLabels"], "{variant}");
    }
}

#[test]
fn the_container_config_and_dockerfile_ship_no_gateway_address_and_run_unprivileged() {
    struct NoEnv;
    impl claimgate::config::Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }
    // Arrange
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    // Act
    let c =
        claimgate::config::Config::load(Some(&root().join("deploy/claimgate.container.yaml")), |_| {}, &NoEnv).unwrap();
    // Assert: the configuration the image carries names no gateway and sets the tier.
    assert_eq!(c.upstream, None);
    assert_eq!(c.tier(), Some(2));
    assert_eq!(c.listen, "0.0.0.0:8080");
    assert!(dockerfile.contains("COPY deploy/claimgate.container.yaml /etc/claimgate/claimgate.yaml"));
    assert!(!dockerfile.contains("claimgate.example.yaml"));
    // No address of a real network anywhere in deploy/ but the commented example configuration.
    for dir in [
        "deploy",
        "deploy/k8s/base",
        "deploy/k8s/embedded",
        "deploy/k8s/shared-postgres",
        "deploy/grafana",
        "deploy/prometheus",
    ] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() && p.file_name().unwrap() != "claimgate.example.yaml" {
                assert!(!std::fs::read_to_string(&p).unwrap().contains("10.10."), "{}", p.display());
            }
        }
    }
    // The build context leaves out local builds and data directories (patients' history).
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for must in ["target", "data"] {
        assert!(ignored.lines().any(|l| l.trim() == must), ".dockerignore lacks {must}");
    }
    // The image's user, volume and health check.
    let user = dockerfile.lines().find_map(|l| l.strip_prefix("USER ")).expect("a USER line");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "USER {user}");
    assert!(dockerfile.contains("VOLUME [\"/var/lib/claimgate/data\"]"));
    assert_eq!(c.data, std::path::PathBuf::from("/var/lib/claimgate/data"), "the volume is the data folder");
    let health = dockerfile.lines().skip_while(|l| !l.starts_with("HEALTHCHECK")).nth(1).expect("HEALTHCHECK CMD");
    assert!(health.contains("\"healthcheck\"") && health.contains("/healthz"), "{health}");
}

#[actix_web::test]
async fn healthcheck_exits_0_on_a_live_server_and_1_with_the_reason_otherwise() {
    // Arrange
    let app = crate::helpers::spawn_app().await;
    let probe = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_claimgate"))
            .args(["healthcheck", "--url", &url, "--timeout-secs", "5"])
            .output()
            .await
            .unwrap()
    };
    // Act
    let alive = probe(format!("{}/healthz", app.base)).await;
    let missing = probe(format!("{}/no-such-route", app.base)).await;
    let down = probe("http://127.0.0.1:1/healthz".into()).await;
    // Assert
    assert!(alive.status.success(), "{}", String::from_utf8_lossy(&alive.stderr));
    for out in [missing, down] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.starts_with("claimgate healthcheck: http://127.0.0.1:") && err.ends_with('\n'), "{err:?}");
    }
}

/// What a ready server still cannot do is said where an operator looks (`/readyz` `warnings`) and
/// where the 医保办 looks (a banner on `/office`): no institution tier, no 医保目录对照.
#[actix_web::test]
async fn readiness_and_the_office_say_what_an_unset_tier_or_catalogue_leaves_undone() {
    use crate::helpers::{spawn_app_with, Options};
    // Arrange: one server with neither set, one with both.
    let bare = spawn_app_with(Options { tweak: Box::new(|c| c.institution_tier = None), ..Options::default() }).await;
    let full = spawn_app_with(Options {
        data_files: vec![("catalogue.csv", claimgate::gen::catalogue_csv().into_bytes())],
        tweak: Box::new(|c| c.item_catalogue = Some(c.data.join("catalogue.csv"))),
        ..Options::default()
    })
    .await;
    // Act
    let warnings = |body: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_owned()).collect()
    };
    let (bare_ready, bare_body) = bare.get("/readyz", None).await;
    let (full_ready, full_body) = full.get("/readyz", None).await;
    let (_, office) = bare.get("/office", Some("secret-token")).await;
    // Assert
    assert_eq!((bare_ready, full_ready), (200, 200), "ready either way");
    let w = warnings(bare_body);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("institution_tier is not set") && w[1].starts_with("item_catalogue is not set"), "{w:?}");
    assert!(warnings(full_body).is_empty());
    assert!(office.contains("未设置本院医疗机构级别") && office.contains("未配置医保目录对照"), "the office's banners");
}
