//! The machine-readable description of the API, generated from the handlers'
//! `#[utoipa::path]` annotations and served at `/openapi.json`.

use super::bulk_query_input::{
    EventsBulkRetryInput, IgnoredEventsBulkRetryInput, RequestsBulkRetryInput,
};
use super::object_inputs::{
    ConnectionChange, ConnectionInput, DestinationChange, DestinationInput,
};
use super::{
    applications, bookmarks, bulk, catalog, endpoints, inbound, issues, listen, notifications,
    objects, outbound, portal_sessions, probes, signing_secret, transformations,
    webhook_deliveries, webhook_jobs,
};
use axum::Json;
use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "hookgate management API", description = "Hookdeck 2023-07-01 style; every path also works without the /2023-07-01 prefix and under /2024-03-01, and /webhooks is /connections. Outbound webhooks: /v1/... and /api/webhook-deliveries."),
    paths(
        inbound::list_requests, inbound::get_request, inbound::request_events, inbound::request_ignored_events,
        inbound::retry_request, inbound::request_raw_body, inbound::list_ignored_events, inbound::get_ignored_event,
        outbound::list_events, outbound::get_event, outbound::event_raw_body, outbound::retry_event, outbound::mute_event,
        outbound::list_attempts, outbound::get_attempt,
        catalog::list_sources, catalog::get_source, catalog::list_destinations, catalog::get_destination,
        catalog::list_connections, catalog::count_connections, catalog::get_connection, catalog::destination_queue, listen::stream, listen::report, catalog::pause_connection, catalog::unpause_connection,
        transformations::run, transformations::list, transformations::create, transformations::upsert, transformations::get,
        transformations::update, transformations::delete, transformations::executions, transformations::execution,
        objects::create, objects::upsert, objects::update, objects::delete, objects::archive_action,
        signing_secret::get, signing_secret::set, signing_secret::rotate,
        issues::list_triggers, issues::create_trigger, issues::upsert_trigger, issues::get_trigger, issues::update_trigger, issues::post_update_trigger,
        issues::delete_trigger, issues::disable_trigger, issues::enable_trigger, issues::list_issues,
        issues::count_issues, issues::get_issue, issues::update_issue, issues::dismiss_issue,
        notifications::put_webhooks,
        bookmarks::list, bookmarks::create, bookmarks::get, bookmarks::update, bookmarks::delete, bookmarks::trigger, bookmarks::raw_body,
        bulk::plan, bulk::plan_generate, bulk::create, bulk::list, bulk::get, bulk::cancel, bulk::cancel_ignored_events,
        applications::create, applications::list, applications::get, applications::update, applications::delete,
        applications::create_event_type, applications::list_event_types, applications::get_event_type,
        applications::update_event_type, applications::delete_event_type, portal_sessions::create,
        endpoints::create, endpoints::list, endpoints::get, endpoints::update, endpoints::delete, endpoints::rotate_secret,
        webhook_jobs::create, webhook_jobs::list, webhook_jobs::get, webhook_jobs::retry, webhook_jobs::cancel,
        webhook_deliveries::list, webhook_deliveries::get_one, webhook_deliveries::cancel, webhook_deliveries::retry,
        probes::healthz, probes::readyz,
    ),
    components(schemas(DestinationInput, DestinationChange, ConnectionInput, ConnectionChange, listen::CliReady, EventsBulkRetryInput, RequestsBulkRetryInput, IgnoredEventsBulkRetryInput)),
    modifiers(&BearerKey)
)]
struct ApiDoc;

/// Declares the API-key scheme the paths refer to.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("api_key", SecurityScheme::Http(bearer));
    }
}

pub async fn document() -> Json<Value> {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        list_every_operation(paths);
    }
    Json(document)
}

/// The reference's second spellings, and actions, served by the first's handler.
const SPELLINGS: [(&str, &str); 3] = [
    (
        "/2023-07-01/sources/{id}/archive",
        "/2023-07-01/sources/{id}/unarchive",
    ),
    (
        "/2023-07-01/requests/{id}/ignored_events",
        "/2023-07-01/requests/{id}/ignored-events",
    ),
    (
        "/2023-07-01/bulk/{kind}/retry/plan",
        "/2023-07-01/bulk/{kind}/retry/plan/generate",
    ),
];

/// `PATCH` is served as `PUT` on these (`/v1`'s partial updates).
const PATCHED: [&str; 3] = [
    "/v1/applications/{id}",
    "/v1/applications/{id}/event-types/{name}",
    "/v1/endpoints/{id}",
];

/// Sources, destinations and connections share one handler per action,
/// which utoipa documents once (under `/sources`); the document lists the
/// operation for each kind, taking and answering that kind's object.
const OTHER_KINDS: [(&str, [(&str, &str); 3]); 2] = [
    (
        "destinations",
        [
            ("SourceView", "DestinationView"),
            ("SourceInput", "DestinationInput"),
            ("SourceChange", "DestinationChange"),
        ],
    ),
    (
        "connections",
        [
            ("SourceView", "ConnectionView"),
            ("SourceInput", "ConnectionInput"),
            ("SourceChange", "ConnectionChange"),
        ],
    ),
];

/// The bulk retry kinds, served by one handler per action (`{kind}`), and
/// the body each kind's `POST` takes: its `query` has the filters of that
/// kind's list, as the reference gives each kind its own.
const BULK_KINDS: [(&str, &str); 3] = [
    ("events", "EventsBulkRetryInput"),
    ("requests", "RequestsBulkRetryInput"),
    ("ignored-events", "IgnoredEventsBulkRetryInput"),
];

/// utoipa documents a handler once; one handler may serve several paths or
/// methods. Each is listed, as what a client may call.
fn list_every_operation(paths: &mut serde_json::Map<String, Value>) {
    for (first, second) in SPELLINGS {
        if let Some(item) = paths.get(first).cloned() {
            paths.entry(second).or_insert(item);
        }
    }
    list_each_bulk_kind(paths);
    for path in PATCHED {
        let put = paths.get(path).and_then(|item| item.get("put")).cloned();
        if let (Some(put), Some(item)) = (put, paths.get_mut(path)) {
            item["patch"] = put;
        }
    }
    let sources: Vec<(String, Value)> = paths
        .iter()
        .filter(|(path, _)| path.starts_with("/2023-07-01/sources"))
        .map(|(path, item)| (path.clone(), item.clone()))
        .collect();
    for (kind, schemas) in OTHER_KINDS {
        for (path, item) in &sources {
            let path = path.replacen("sources", kind, 1);
            let text = schemas
                .iter()
                .fold(item.to_string(), |text, (source, other)| {
                    text.replace(&format!("/{source}\""), &format!("/{other}\""))
                });
            let copied: Value = serde_json::from_str(&text).unwrap_or_default();
            let target = paths.entry(path).or_insert_with(|| json!({}));
            for (method, operation) in copied.as_object().into_iter().flatten() {
                if target.get(method).is_none() {
                    target[method] = operation.clone();
                }
            }
        }
    }
}

/// Each `/bulk/{kind}/…` path becomes one path per kind, without the `kind`
/// parameter, whose `POST` body is that kind's.
fn list_each_bulk_kind(paths: &mut serde_json::Map<String, Value>) {
    let templates: Vec<String> = paths
        .keys()
        .filter(|path| path.contains("/bulk/{kind}/"))
        .cloned()
        .collect();
    for template in templates {
        let Some(item) = paths.remove(&template) else {
            continue;
        };
        for (kind, body) in BULK_KINDS {
            let text = item
                .to_string()
                .replace("/BulkRetryInput\"", &format!("/{body}\""));
            let mut copied: Value = serde_json::from_str(&text).unwrap_or_default();
            let operations = copied
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut());
            for operation in operations {
                if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
                    parameters.retain(|parameter| parameter["name"] != "kind");
                }
            }
            let path = template.replace("{kind}", kind);
            paths.entry(path).or_insert(copied);
        }
    }
}
