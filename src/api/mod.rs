//! The management REST API, on its own listener (`server.api_listen`), modelled on
//! Hookdeck's `2023-07-01` API: the same paths with and without a version
//! prefix (`API_VERSIONS`), and with the reference's other spellings.

pub(crate) mod applications;
mod auth;
mod bookmarks;
pub(crate) mod bulk;
pub mod bulk_query_input;
pub(crate) mod catalog;
mod delivery_query;
pub(crate) mod endpoints;
pub(crate) mod error;
mod failed_logins;
pub(crate) mod inbound;
pub(crate) mod issues;
mod listen;
mod listing;
mod notifications;
pub mod object_inputs;
mod objects;
mod openapi;
pub(crate) mod outbound;
mod portal_sessions;
mod probes;
pub mod provider_inputs;
pub(crate) mod query;
mod rate;
mod schema;
pub(crate) mod serve;
mod showing;
mod signing_secret;
mod sorting;
pub(crate) mod transformations;
pub(crate) mod v1;
mod views;
pub(crate) mod webhook_deliveries;
pub(crate) mod webhook_jobs;

pub(crate) use auth::{locked_out, Refused};
pub use auth::{ApiKeys, KeyBudgets};
pub(crate) use issues::issue_object;
pub use objects::resolve_transformations;
pub use rate::Budget;
pub(crate) use views::{attempt as attempt_object, event as event_object};

use crate::config::Config;
use crate::delivery::Scheduler;
use crate::model::{Catalog, Payload};
use crate::pipeline::transform::TransformLimits;
use crate::pipeline::Router;
use crate::store::{Direction, Store};
use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router as Routes;
use error::{ApiError, ApiResult};
use serde_json::Value;
use std::sync::Arc;

/// What every handler can reach.
pub struct ApiState {
    pub store: Store,
    /// Every object's `team_id` (see `Store::team_id`).
    pub team_id: String,
    /// Where the ingress is reached, for sources' `url` (see `ServerSection::ingress_url`).
    pub ingress_url: String,
    /// What signs deliveries (`/workspace/signing-secret`).
    pub signing_secret: crate::signing::workspace_secret::WorkspaceSecret,
    pub catalog: Arc<ArcSwap<Catalog>>,
    pub scheduler: Arc<Scheduler>,
    /// For re-routing a request on demand.
    pub router: Router,
    /// Where webhook jobs are journaled (as the ingress journals requests).
    pub commit: crate::store::CommitLog,
    pub keys: ApiKeys,
    /// Webhook jobs each application may be sent, whichever key sends them.
    pub jobs_per_application: Budget<String>,
    /// Bounds for `PUT /transformations/run`, as for configured transformations.
    pub transform_limits: TransformLimits,
    /// The file's own config, to validate API-created objects against
    /// (replaced when the file is reloaded).
    pub config: ArcSwap<Config>,
    /// One writer at a time for API-created objects.
    pub object_updates: std::sync::Mutex<()>,
    /// One change of an endpoint at a time (update, secret rotation,
    /// deletion): each reads, changes and saves the whole record.
    pub endpoint_updates: std::sync::Mutex<()>,
    /// Whether this node leads its cluster: only the leader runs bulk retries.
    pub leases: crate::cluster::Leases,
    /// One webhook job created at a time, so an idempotency key yields one job.
    pub job_creation: std::sync::Mutex<()>,
    /// Bulk retries running in the background.
    pub background: Background,
    /// Where the span of a webhook job's creation goes.
    pub telemetry: crate::telemetry::Telemetry,
    /// Answers `/healthz` and `/readyz`.
    pub readiness: Arc<crate::health::Readiness>,
    /// Where webhook jobs are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Becomes true when the gateway stops, ending `hookgate listen` streams
    /// so the listener's graceful stop is not held open by them.
    pub stopped: tokio::sync::watch::Receiver<bool>,
    /// Unopened sign-in links of customer portals.
    pub portal_links: crate::console::PortalLinks,
}

/// Work the API started that outlives its request (bulk retries). A graceful
/// stop asks it to stop between batches and waits for it, so that it neither
/// holds the store past the stop nor queues events while lanes drain; what it
/// had not done resumes on the next start.
#[derive(Default)]
pub struct Background {
    stop: tokio_util::sync::CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    /// What each task running works on: a node that leads again (cluster
    /// mode) resumes no job a second time.
    running: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Background {
    /// Runs `work` on `name` unless a task on it is running already.
    pub fn spawn_once(
        &self,
        name: String,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let running = self.running.clone();
        if !running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone())
        {
            return;
        }
        self.tasks.spawn(async move {
            work.await;
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
        });
    }

    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Asks every task to stop and waits up to `grace` for them to end;
    /// false when some were still running then.
    pub async fn stop(&self, grace: std::time::Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

/// Continues the background work the last run left (bulk retries).
pub fn resume(state: &Arc<ApiState>) -> Result<(), String> {
    bulk::resume_all(state).map_err(|e| e.message)
}

type Shared = State<Arc<ApiState>>;

/// The version prefixes served, each the same API: the reference's and the
/// one Hookdeck's SDKs send by default.
pub const API_VERSIONS: [&str; 2] = ["2023-07-01", "2024-03-01"];

/// Connections were once "webhooks"; the reference keeps `/webhooks` working (L345).
const CONNECTION_ROOTS: [&str; 2] = ["/connections", "/webhooks"];

/// The API's routes, behind the API-key check.
pub fn router(state: Arc<ApiState>) -> Routes {
    let resources = Routes::new()
        .route("/requests", get(inbound::list_requests))
        .route("/requests/{id}", get(inbound::get_request))
        .route("/requests/{id}/events", get(inbound::request_events))
        .route(
            "/requests/{id}/ignored_events",
            get(inbound::request_ignored_events),
        )
        .route(
            "/requests/{id}/ignored-events",
            get(inbound::request_ignored_events),
        )
        .route("/requests/{id}/retry", post(inbound::retry_request))
        .route("/requests/{id}/raw_body", get(inbound::request_raw_body))
        .route(
            "/transformations",
            get(transformations::list)
                .post(transformations::create)
                .put(transformations::upsert),
        )
        .route(
            "/transformations/{id}",
            get(transformations::get)
                .put(transformations::update)
                .delete(transformations::delete),
        )
        .route(
            "/transformations/{id}/executions",
            get(transformations::executions),
        )
        .route(
            "/transformations/{id}/executions/{execution_id}",
            get(transformations::execution),
        )
        .route("/transformations/run", put(transformations::run))
        .route("/bulk/{kind}/retry", get(bulk::list).post(bulk::create))
        .route("/bulk/{kind}/retry/plan", get(bulk::plan))
        .route("/bulk/{kind}/retry/plan/generate", get(bulk::plan_generate))
        .route(
            "/bulk/ignored-events/{id}/cancel",
            post(bulk::cancel_ignored_events),
        )
        .route("/bulk/{kind}/retry/{id}", get(bulk::get))
        .route("/bulk/{kind}/retry/{id}/cancel", post(bulk::cancel))
        .route("/bookmarks", get(bookmarks::list).post(bookmarks::create))
        .route(
            "/bookmarks/{id}",
            get(bookmarks::get)
                .put(bookmarks::update)
                .delete(bookmarks::delete),
        )
        .route("/bookmarks/{id}/raw_body", get(bookmarks::raw_body))
        .route("/bookmarks/{id}/trigger", post(bookmarks::trigger))
        .route(
            "/issue-triggers",
            get(issues::list_triggers)
                .post(issues::create_trigger)
                .put(issues::upsert_trigger),
        )
        .route(
            "/issue-triggers/{id}",
            get(issues::get_trigger)
                .put(issues::update_trigger)
                .post(issues::post_update_trigger)
                .delete(issues::delete_trigger),
        )
        .route("/issue-triggers/{id}/disable", put(issues::disable_trigger))
        .route("/issue-triggers/{id}/enable", put(issues::enable_trigger))
        .route("/notifications/webhooks", put(notifications::put_webhooks))
        .route("/issues", get(issues::list_issues))
        .route("/issues/count", get(issues::count_issues))
        .route(
            "/issues/{id}",
            get(issues::get_issue)
                .put(issues::update_issue)
                .delete(issues::dismiss_issue),
        )
        .route("/ignored_events", get(inbound::list_ignored_events))
        .route("/ignored_events/{id}", get(inbound::get_ignored_event))
        .route("/events", get(outbound::list_events))
        .route("/events/{id}", get(outbound::get_event))
        .route("/events/{id}/retry", post(outbound::retry_event))
        .route("/events/{id}/mute", put(outbound::mute_event))
        .route("/events/{id}/raw_body", get(outbound::event_raw_body))
        .route("/attempts", get(outbound::list_attempts))
        .route("/attempts/{id}", get(outbound::get_attempt))
        .route(
            "/sources",
            get(catalog::list_sources)
                .post(objects::create)
                .put(objects::upsert),
        )
        .route(
            "/destinations",
            get(catalog::list_destinations)
                .post(objects::create)
                .put(objects::upsert),
        )
        .route(
            "/sources/{id}",
            get(catalog::get_source)
                .put(objects::update)
                .delete(objects::delete),
        )
        .route(
            "/destinations/{id}",
            get(catalog::get_destination)
                .put(objects::update)
                .delete(objects::delete),
        )
        .route("/destinations/{id}/queue", get(catalog::destination_queue))
        .route("/destinations/{id}/listen", get(listen::stream))
        .route(
            "/destinations/{id}/listen/{delivery_id}",
            post(listen::report),
        )
        .route(
            "/workspace/signing-secret",
            get(signing_secret::get).put(signing_secret::set),
        )
        .route(
            "/workspace/signing-secret/rotate",
            post(signing_secret::rotate),
        )
        .route(
            "/{kind}/{id}/{action}",
            put(objects::archive_action).post(objects::archive_action),
        )
        .merge(connection_routes());
    let versioned = API_VERSIONS.iter().fold(Routes::new(), |routes, version| {
        routes.nest(&format!("/{version}"), resources.clone())
    });
    let openapi = API_VERSIONS.iter().fold(
        Routes::new().route("/openapi.json", get(openapi::document)),
        |routes, version| routes.route(&format!("/{version}/openapi"), get(openapi::document)),
    );
    versioned
        .merge(resources)
        // Routed here, not nested: a nested route costs every call its URI
        // rebuilt without the prefix and a second lookup. (Sending a job,
        // its POST, does not come through the router: `serve`.)
        .route("/v1/webhook-jobs", get(webhook_jobs::list))
        .nest("/v1", v1::routes())
        .nest("/api/webhook-deliveries", webhook_deliveries::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        // The description holds no data, so it is readable without a key.
        .merge(openapi)
        // Load balancers probe without a key.
        .merge(probes::routes())
        .with_state(state)
}

/// `/connections/…`, and the same under `/webhooks`.
fn connection_routes() -> Routes<Arc<ApiState>> {
    CONNECTION_ROOTS.iter().fold(Routes::new(), |routes, root| {
        routes
            .route(
                root,
                get(catalog::list_connections)
                    .post(objects::create)
                    .put(objects::upsert),
            )
            .route(&format!("{root}/count"), get(catalog::count_connections))
            .route(
                &format!("{root}/{{id}}"),
                get(catalog::get_connection)
                    .put(objects::update)
                    .delete(objects::delete),
            )
            .route(
                &format!("{root}/{{id}}/pause"),
                put(catalog::pause_connection),
            )
            .route(
                &format!("{root}/{{id}}/unpause"),
                put(catalog::unpause_connection),
            )
    })
}

/// A record's view, with its payload when `include=data` asked for it.
fn with_data<T>(
    include_data: bool,
    payload: impl Fn(&T) -> crate::store::Result<Option<Payload>>,
    view: impl Fn(&T, Option<&Payload>) -> Value,
) -> impl Fn(&T) -> ApiResult<Value> {
    move |record| {
        let data = if include_data { payload(record)? } else { None };
        Ok(view(record, data.as_ref()))
    }
}

/// A page of records as Hookdeck's list answer, bounded by `budget_bytes` of
/// views: the page ends early once they pass the budget (a record's view, and
/// so its payload, is built only while the page has room), with the cursor
/// moved to where it ended so the client continues from there. The record
/// nearest the cursor is always kept, so a single huge one still comes, one
/// per page.
fn bounded_page<T: sorting::Listed>(
    request: &sorting::StorePage<T>,
    found: crate::store::Page<T>,
    budget_bytes: usize,
    view: impl Fn(&T) -> ApiResult<Value>,
) -> ApiResult<Value> {
    let backwards = matches!(request.page().cursor, crate::store::Cursor::Prev(_));
    let nearest_first: Box<dyn Iterator<Item = &T>> = if backwards {
        Box::new(found.items.iter().rev())
    } else {
        Box::new(found.items.iter())
    };
    let (mut models, mut used, mut end) = (Vec::new(), 0, None);
    for record in nearest_first {
        if !models.is_empty() && used > budget_bytes {
            break;
        }
        let model = view(record)?;
        used += serialized_len(&model);
        models.push(model);
        end = Some(record);
    }
    let cut_short = models.len() < found.items.len();
    if backwards {
        models.reverse();
    }
    let end_cursor = || end.map(|record| request.cursor_of(record));
    let (next, prev) = match (cut_short, backwards) {
        (false, _) => (found.next, found.prev),
        (true, false) => (end_cursor(), found.prev),
        (true, true) => (found.next, end_cursor()),
    };
    let page = &request.sorted;
    Ok(listed(&page.sort, page.page.limit, next, prev, models))
}

/// How many bytes `value` takes as JSON, without building the text.
fn serialized_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("a JSON value serializes");
    counter.0
}

/// Refuses (422 naming `field`) a URL whose address the address policy refuses
/// before any DNS look-up: an early, helpful answer for an object made through
/// the API. Names are checked when connecting, after resolution.
fn reachable(state: &ApiState, field: &str, url: &url::Url) -> ApiResult<()> {
    let policy = state.config.load().delivery.address_policy();
    policy
        .check_url(url)
        .map_err(|blocked| ApiError::invalid(field, blocked.to_string()))
}

/// `view` as a JSON answer, its bytes written once: into a buffer sized for
/// `large_bytes` (what the view holds of the largest field, e.g. a payload)
/// and the rest, not the small one axum's `Json` starts with and grows.
fn json_answer(status: StatusCode, view: &impl serde::Serialize, large_bytes: usize) -> Response {
    /// Room for the fields of a typical object besides its large one.
    const SMALL_FIELDS_BYTES: usize = 1024;
    let mut bytes = Vec::with_capacity(large_bytes + SMALL_FIELDS_BYTES);
    match serde_json::to_writer(&mut bytes, view) {
        Ok(()) => {
            let json = HeaderValue::from_static("application/json");
            (status, [(header::CONTENT_TYPE, json)], bytes).into_response()
        }
        Err(error) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

/// Runs store work off the reactor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await?
}

/// Hookdeck's list shape: `{pagination, count, models}`, for a list sorted
/// by `sort`: its `order_by` and `dir` are one value each, or arrays when
/// there are several keys. A cursor there is none for is left out, as the
/// reference does.
fn listed(
    sort: &[(String, Direction)],
    limit: usize,
    next: Option<String>,
    prev: Option<String>,
    models: Vec<Value>,
) -> Value {
    let name = |dir: &Direction| match dir {
        Direction::Asc => "asc".to_string(),
        Direction::Desc => "desc".to_string(),
    };
    let keys = sort.iter().map(|(key, _)| key.clone()).collect();
    let dirs = sort.iter().map(|(_, dir)| name(dir)).collect();
    let listing = schema::Listing {
        pagination: schema::Pagination {
            order_by: schema::OneOrMore::of(keys),
            dir: schema::OneOrMore::of(dirs),
            limit,
            next,
            prev,
        },
        count: models.len(),
        models,
    };
    schema::value_of(listing)
}
