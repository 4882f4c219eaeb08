//! The Grafana dashboard (`deploy/grafana/hookgate.json`) and the Prometheus
//! alerting rules (`deploy/prometheus/alerts.yml`): well formed, and every
//! metric their PromQL names exists in a live scrape of a gateway that has
//! ingested, routed, transformed, rate-limited and delivered.

use crate::common::{route, Reply, Sink, TestGateway};
use crate::metrics::{two_a_second, Scrape};
use crate::outbound::{one_endpoint, INSECURE};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const DASHBOARD: &str = include_str!("../../deploy/grafana/hookgate.json");
const ALERTS: &str = include_str!("../../deploy/prometheus/alerts.yml");

/// Every `hookgate_…` metric name in a PromQL expression, outside its
/// quoted strings (label values).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let unquoted = expr.split('"').step_by(2);
    unquoted
        .flat_map(|part| {
            part.match_indices("hookgate_")
                .filter(|(at, _)| !part[..*at].ends_with(is_name_char))
                .map(|(at, _)| {
                    let rest = &part[at..];
                    let end = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
                    rest[..end].to_string()
                })
        })
        .collect()
}

/// The dashboard's panels (rows are panels too, without queries).
fn panels(dashboard: &Value) -> Vec<&Value> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .collect()
}

/// Every PromQL expression of the dashboard: its panels' and its variables'.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let targets = panels(dashboard)
        .into_iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| {
            target["expr"]
                .as_str()
                .expect("a target's expr")
                .to_string()
        });
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|variable| variable["definition"].as_str().map(str::to_string));
    targets.chain(variables).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertingRule>,
}

/// Prometheus' alerting rule, as `promtool check rules` reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertingRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Prometheus' duration: one or more `<number><unit>`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|unit| after.starts_with(unit));
        match (digits, unit) {
            (1.., Some(unit)) => rest = &after[unit.len()..],
            _ => return false,
        }
    }
    !text.is_empty()
}

fn alerting_rules() -> Vec<AlertingRule> {
    let file: RuleFile =
        serde_yaml::from_str(ALERTS).expect("alerts.yml is a Prometheus rule file");
    assert!(!file.groups.is_empty());
    file.groups
        .into_iter()
        .inspect(|group| assert!(!group.name.is_empty() && !group.rules.is_empty()))
        .flat_map(|group| group.rules)
        .collect()
}

#[test]
fn the_alerting_rules_are_well_formed() {
    let rules = alerting_rules();
    let names: BTreeSet<&str> = rules.iter().map(|rule| rule.alert.as_str()).collect();
    assert_eq!(names.len(), rules.len(), "alert names are unique");
    for rule in &rules {
        let alert = &rule.alert;
        assert!(!rule.expr.trim().is_empty(), "{alert}");
        assert!(
            rule.pending_for.as_deref().is_none_or(is_duration),
            "{alert}"
        );
        assert!(
            ["warning", "critical"].contains(&rule.labels["severity"].as_str()),
            "{alert}"
        );
        assert!(rule.annotations.contains_key("summary"), "{alert}");
    }
    let used = |name: &str| {
        rules
            .iter()
            .any(|rule| metric_names(&rule.expr).contains(name))
    };
    // The issue's four: backlog growing, destination failing, disk nearly full, router lag.
    for name in [
        "hookgate_queue_depth",
        "hookgate_queue_lateness_seconds",
        "hookgate_attempts_total",
        "hookgate_data_dir_free_bytes",
        "hookgate_router_lag_requests",
    ] {
        assert!(used(name), "no alert on {name}");
    }
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_over_a_chosen_prometheus() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("JSON");
    assert_eq!(dashboard["uid"], "hookgate");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let datasource = json!({ "type": "prometheus", "uid": "${datasource}" });
    let ids: BTreeSet<u64> = panels(&dashboard)
        .iter()
        .map(|panel| panel["id"].as_u64().expect("a panel id"))
        .collect();
    assert_eq!(ids.len(), panels(&dashboard).len(), "panel ids are unique");
    for panel in panels(&dashboard) {
        let title = &panel["title"];
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{title}");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], datasource, "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
    }
    let used: BTreeSet<String> = dashboard_queries(&dashboard)
        .iter()
        .flat_map(|query| metric_names(query))
        .collect();
    // Ingest rate and errors by source, delivery success rate and latency by
    // destination, queue depth and lateness, transformation failures.
    for name in [
        "hookgate_requests_total",
        "hookgate_attempts_total",
        "hookgate_delivery_latency_seconds_bucket",
        "hookgate_queue_depth",
        "hookgate_queue_lateness_seconds",
        "hookgate_transformation_runs_total",
    ] {
        assert!(used.contains(name), "no panel on {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboard_and_the_alerts_name_is_in_a_live_scrape() {
    let ok = Sink::start(Reply::Status(200)).await;
    let limited = Sink::start(Reply::Status(200)).await;
    let endpoint_sink = Sink::start(Reply::Status(200)).await;
    let boom = r#"rules = [ { type = "transform", transformation = { name = "boom", code = "addHandler('transform', (r) => { throw new Error('no') })" } } ]"#;
    let gw = TestGateway::start_with(
        INSECURE,
        &format!(
            "[[sources]]\nname = \"shop\"\n{}{}{}",
            route("shop", "ok", &ok.url("/"), ""),
            route("shop", "broken", &ok.url("/"), boom),
            two_a_second("shop", "limited", &limited.url("/")),
        ),
    )
    .await;
    one_endpoint(&gw, &endpoint_sink, json!({})).await;
    for _ in 0..3 {
        assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    }
    assert_eq!(gw.post("/e/nowhere", "{}").await.0, 404);
    ok.wait_for(3).await;
    limited.wait_for(3).await;

    let scrape = Scrape::of(&gw).await;
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let queries = dashboard_queries(&dashboard)
        .into_iter()
        .map(|query| ("deploy/grafana/hookgate.json", query));
    let rules = alerting_rules()
        .into_iter()
        .map(|rule| ("deploy/prometheus/alerts.yml", rule.expr));
    let mut checked = BTreeSet::new();
    for (file, query) in queries.chain(rules) {
        let names = metric_names(&query);
        assert!(!names.is_empty(), "{file}: no hookgate metric in {query}");
        for name in names {
            assert!(scrape.has(&name), "{file}: {name} is not scraped ({query})");
            checked.insert(name);
        }
    }
    assert!(checked.len() >= 20, "{checked:?}");
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let expr = r#"sum by (destination) (rate(hookgate_attempts_total{outcome="2xx", x="hookgate_no"}[5m])) / hookgate_queue_depth"#;
    assert_eq!(
        metric_names(expr),
        ["hookgate_attempts_total", "hookgate_queue_depth"]
            .map(String::from)
            .into()
    );
    assert!(is_duration("15m") && is_duration("1h30m") && !is_duration("15") && !is_duration("m"));
}
