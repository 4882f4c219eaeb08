//! `/issue-triggers` and `/issues`: what opens issues, and the issues themselves,
//! in the reference's shapes.

use super::error::{checked_name, json_body, refuse_environment, ApiError, ApiResult};
use super::listing::SortedPage;
use super::query::{iso, Query};
use super::schema::{value_of, Count, Deleted, ErrorBody, Listing};
use super::transformations::{execution_view, ExecutionView};
use super::{blocking, listing, reachable, views, ApiState, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{
    Channels, Issue, IssueStatus, IssueTrigger, IssueType, LogLevel, Scope, TriggerConfigs,
    BACKPRESSURE_DELAY_MS,
};
use crate::store::Store;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::ToSchema;

/// The body of `POST /issue-triggers` and `PUT /issue-triggers` (by name).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssueTriggerInput)]
pub struct TriggerInput {
    #[serde(rename = "type")]
    kind: IssueType,
    /// By type: delivery `{strategy, connections}`, transformation
    /// `{log_level, transformations}`, backpressure `{delay, destinations}`.
    #[serde(default)]
    #[schema(value_type = TriggerConfigs)]
    configs: Value,
    /// Where openings are announced: `{webhook: {url}}` (slack, opsgenie,
    /// email, microsoft_teams kept, not reached).
    channels: Option<Channels>,
    /// A unique name.
    name: Option<String>,
}

/// The body of `PUT /issue-triggers/{id}` (and `POST`): what it names changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IssueTriggerChange)]
pub struct TriggerChange {
    /// The reference's example sends the type along; a new type needs new configs.
    #[serde(rename = "type")]
    kind: Option<IssueType>,
    /// As for creating, by type.
    #[schema(value_type = Option<TriggerConfigs>)]
    configs: Option<Value>,
    channels: Option<Channels>,
    /// A date disables, `null` enables; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    disabled_at: Option<Value>,
    /// A unique name.
    name: Option<String>,
}

/// Tells `"disabled_at": null` (given) from no `disabled_at` at all.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn checked_configs(kind: IssueType, configs: Value) -> ApiResult<TriggerConfigs> {
    let configs = TriggerConfigs::parse(kind, configs)
        .map_err(|e| ApiError::invalid("configs", e.to_string()))?;
    let (field, scope) = match &configs {
        TriggerConfigs::Delivery(c) => ("configs.connections", &c.connections),
        TriggerConfigs::Transformation(c) => ("configs.transformations", &c.transformations),
        TriggerConfigs::Backpressure(c) => {
            if !BACKPRESSURE_DELAY_MS.contains(&c.delay) {
                return Err(ApiError::invalid(
                    "configs.delay",
                    "milliseconds from 60000 (one minute) to 86400000 (one day)",
                ));
            }
            ("configs.destinations", &c.destinations)
        }
    };
    let empty = match scope {
        Scope::Pattern(pattern) => pattern.is_empty(),
        Scope::Listed(items) => items.is_empty() || items.iter().any(String::is_empty),
    };
    if empty {
        return Err(ApiError::invalid(field, "a pattern (\"*\" for all) or ids"));
    }
    Ok(configs)
}

/// The webhook channel's URL must be one hookgate may post to.
fn checked_channels(state: &ApiState, channels: &Option<Channels>) -> ApiResult<()> {
    let Some(url) = channels.as_ref().and_then(|c| c.webhook.as_ref()) else {
        return Ok(());
    };
    let field = "channels.webhook.url";
    refuse_environment(field, [&url.url])?;
    let parsed = url::Url::parse(&url.url).map_err(|e| ApiError::invalid(field, e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::invalid(field, "must be an http or https URL"));
    }
    reachable(state, field, &parsed)
}

fn checked_name_of(name: &Option<String>) -> ApiResult<()> {
    name.as_deref()
        .map_or(Ok(()), |name| checked_name("name", name))
}

/// A 409 when another trigger has this name (names are unique references).
fn name_is_free(store: &Store, name: &Option<String>, own_id: &str) -> ApiResult<()> {
    let Some(name) = name else { return Ok(()) };
    let taken = store
        .issue_triggers()?
        .iter()
        .any(|t| t.id != own_id && t.name.as_ref() == Some(name));
    if taken {
        return Err(ApiError::conflict(format!(
            "an issue trigger named \"{name}\" exists"
        )));
    }
    Ok(())
}

/// An issue trigger as the reference shows it.
#[derive(Serialize, ToSchema)]
pub struct IssueTriggerView {
    /// `it_…`.
    id: String,
    team_id: String,
    /// A unique name.
    #[schema(required)]
    name: Option<String>,
    #[serde(rename = "type")]
    kind: IssueType,
    /// What it watches and when it opens, by type.
    configs: TriggerConfigs,
    /// Where openings are announced.
    channels: Option<Channels>,
    /// hookgate's addition: the channels given that it cannot notify
    /// (`slack`, `opsgenie`, `email`, `microsoft_teams` need Hookdeck's
    /// workspace integrations); openings reach `webhook` and the workspace's
    /// webhook notifications only.
    unreachable_channels: Vec<&'static str>,
    /// Set while it opens no issues.
    #[schema(required)]
    disabled_at: Option<String>,
    updated_at: String,
    created_at: String,
    /// Always null: a deleted trigger is gone.
    deleted_at: Option<String>,
}

fn trigger_view(team_id: &str, trigger: &IssueTrigger) -> IssueTriggerView {
    IssueTriggerView {
        id: trigger.id.clone(),
        team_id: team_id.to_string(),
        name: trigger.name.clone(),
        kind: trigger.kind,
        configs: trigger.configs.clone(),
        channels: trigger.channels.clone(),
        unreachable_channels: trigger
            .channels
            .as_ref()
            .map(Channels::unreachable)
            .unwrap_or_default(),
        disabled_at: trigger.disabled_at.map(iso),
        updated_at: iso(trigger.updated_at),
        created_at: iso(trigger.created_at),
        deleted_at: None,
    }
}

#[utoipa::path(get, path = "/2023-07-01/issue-triggers", tag = "issues", summary = "Issue triggers", params(("name" = Option<String>, Query, description = "name, name[]=… or name[contains]=…"), ("type" = Option<String>, Query, description = "delivery, transformation, backpressure"), ("disabled_at" = Option<String>, Query, description = "disabled_at[gte]=…, [lte], [gt], [lt], [any]=true|false"), ("order_by" = Option<String>, Query, description = "created_at, updated_at, name; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key"), ("dir" = Option<String>, Query, description = "asc or desc"), ("limit" = Option<u32>, Query, description = "1-255"), ("next" = Option<String>, Query, description = "cursor"), ("prev" = Option<String>, Query, description = "cursor")), responses((status = 200, description = "a page of triggers", body = Listing<IssueTriggerView>), (status = 422, description = "unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_triggers(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let (name, kind) = (query.matcher("name"), query.matcher("type"));
    let disabled = query.date_range("disabled_at")?;
    let page = query.page_sorted(&["created_at", "updated_at", "name"])?;
    query.refuse_unread()?;
    blocking(move || {
        let models = state
            .store
            .issue_triggers()?
            .iter()
            .filter(|t| {
                name(t.name.as_deref().unwrap_or_default())
                    && kind(&api_name(&t.kind))
                    && disabled.contains(t.disabled_at)
            })
            .map(|t| value_of(trigger_view(&state.team_id, t)))
            .collect();
        listing::answer(models, &page)
    })
    .await
}

#[utoipa::path(post, path = "/2023-07-01/issue-triggers", tag = "issues", summary = "Create an issue trigger: type, configs, channels, name", request_body = TriggerInput, responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, description = "invalid", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_trigger(
    State(state): Shared,
    body: Result<Json<TriggerInput>, JsonRejection>,
) -> ApiResult<Json<IssueTriggerView>> {
    let input = json_body(body)?;
    let trigger = new_trigger(&state, input)?;
    blocking(move || {
        let _one_writer = state.object_updates.lock();
        name_is_free(&state.store, &trigger.name, &trigger.id)?;
        state.store.save_issue_trigger(&trigger)?;
        Ok(Json(trigger_view(&state.team_id, &trigger)))
    })
    .await
}

/// A trigger made of a create body, checked.
fn new_trigger(state: &ApiState, input: TriggerInput) -> ApiResult<IssueTrigger> {
    checked_name_of(&input.name)?;
    checked_channels(state, &input.channels)?;
    let now = now_ms();
    Ok(IssueTrigger {
        id: new_id("it"),
        name: input.name,
        kind: input.kind,
        configs: checked_configs(input.kind, input.configs)?,
        channels: input.channels,
        disabled_at: None,
        updated_at: now,
        created_at: now,
    })
}

/// `PUT /issue-triggers`: creates the trigger named in the body, or updates
/// the one of that name (its type, configs, and channels if given).
#[utoipa::path(put, path = "/2023-07-01/issue-triggers", tag = "issues", summary = "Create or update an issue trigger by name", request_body = TriggerInput, responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 422, description = "invalid, or no name", body = ErrorBody)), security(("api_key" = [])))]
pub async fn upsert_trigger(
    State(state): Shared,
    body: Result<Json<TriggerInput>, JsonRejection>,
) -> ApiResult<Json<IssueTriggerView>> {
    let input = json_body(body)?;
    if input.name.is_none() {
        return Err(ApiError::invalid("name", "is required for this endpoint"));
    }
    let mut trigger = new_trigger(&state, input)?;
    blocking(move || {
        let _one_writer = state.object_updates.lock();
        let existing = state
            .store
            .issue_triggers()?
            .into_iter()
            .find(|t| t.name == trigger.name);
        if let Some(existing) = existing {
            trigger.id = existing.id;
            trigger.disabled_at = existing.disabled_at;
            trigger.created_at = existing.created_at;
            // Channels left out of the body stay as they were.
            trigger.channels = trigger.channels.or(existing.channels);
        }
        state.store.save_issue_trigger(&trigger)?;
        Ok(Json(trigger_view(&state.team_id, &trigger)))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "An issue trigger", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<IssueTriggerView>> {
    change_trigger(state, id, |_| Ok(())).await
}

/// `PUT /issue-triggers/{id}`: changes what the body names.
#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "Update an issue trigger: configs, channels, disabled_at, name", params(("id" = String, Path, description = "the id")), request_body = TriggerChange, responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, description = "invalid", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_trigger(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<TriggerChange>, JsonRejection>,
) -> ApiResult<Json<IssueTriggerView>> {
    let change = json_body(body)?;
    checked_name_of(&change.name)?;
    checked_channels(&state, &change.channels)?;
    let disabled_at = match &change.disabled_at {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(date)) => {
            Some(Some(super::query::parse_date(date).ok_or_else(|| {
                ApiError::invalid("disabled_at", "an ISO 8601 date, or null")
            })?))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "disabled_at",
                "an ISO 8601 date, or null",
            ))
        }
    };
    let writer = state.clone();
    change_trigger(state, id, move |trigger| {
        let _one_writer = writer.object_updates.lock();
        let kind = change.kind.unwrap_or(trigger.kind);
        if kind != trigger.kind || change.configs.is_some() {
            trigger.configs = checked_configs(kind, change.configs.unwrap_or_default())?;
            trigger.kind = kind;
        }
        if change.name.is_some() {
            name_is_free(&writer.store, &change.name, &trigger.id)?;
            trigger.name = change.name;
        }
        if let Some(channels) = change.channels {
            trigger.channels = Some(channels);
        }
        if let Some(disabled_at) = disabled_at {
            trigger.disabled_at = disabled_at;
        }
        Ok(())
    })
    .await
}

/// `POST /issue-triggers/{id}`: the reference lists it beside `PUT` without
/// describing it; it updates the same way.
#[utoipa::path(post, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "Update an issue trigger (as PUT)", params(("id" = String, Path, description = "the id")), request_body = TriggerChange, responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, description = "invalid", body = ErrorBody)), security(("api_key" = [])))]
pub async fn post_update_trigger(
    state: Shared,
    id: Path<String>,
    body: Result<Json<TriggerChange>, JsonRejection>,
) -> ApiResult<Json<IssueTriggerView>> {
    update_trigger(state, id, body).await
}

#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}/disable", tag = "issues", summary = "Stop a trigger opening issues", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn disable_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<IssueTriggerView>> {
    change_trigger(state, id, |trigger| {
        trigger.disabled_at.get_or_insert(now_ms());
        Ok(())
    })
    .await
}

#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}/enable", tag = "issues", summary = "Let a trigger open issues again", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger", body = IssueTriggerView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn enable_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<IssueTriggerView>> {
    change_trigger(state, id, |trigger| {
        trigger.disabled_at = None;
        Ok(())
    })
    .await
}

#[utoipa::path(delete, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "Delete an issue trigger and the issues it opened", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "{id}", body = Deleted), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    blocking(move || {
        if !state.router.issues().delete_trigger(&id)? {
            return Err(ApiError::not_found("issue trigger", &id));
        }
        Ok(Json(Deleted { id }))
    })
    .await
}

/// Applies `change` to the trigger (`updated_at` moves when it changes) and answers it.
async fn change_trigger(
    state: Arc<ApiState>,
    id: String,
    change: impl FnOnce(&mut IssueTrigger) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Json<IssueTriggerView>> {
    blocking(move || {
        let mut trigger = state
            .store
            .issue_trigger(&id)?
            .ok_or_else(|| ApiError::not_found("issue trigger", &id))?;
        let before = trigger.clone();
        change(&mut trigger)?;
        if trigger != before {
            trigger.updated_at = now_ms();
            state.store.save_issue_trigger(&trigger)?;
        }
        Ok(Json(trigger_view(&state.team_id, &trigger)))
    })
    .await
}

/// An issue as the reference shows it, plus hookgate's `issue_trigger_id`,
/// `detail` and `count`.
#[derive(Serialize, ToSchema)]
pub struct IssueView {
    /// `iss_…`.
    id: String,
    team_id: String,
    #[serde(rename = "type")]
    kind: IssueType,
    status: IssueStatus,
    /// What occurrences it collects, by type: delivery `{webhook_id,
    /// response_status, error_code}`, transformation `{transformation_id,
    /// log_level}`, backpressure `{destination_id}`.
    #[schema(value_type = Object)]
    aggregation_keys: Value,
    /// The records of its latest occurrence: `event_id`, `attempt_id`, or
    /// `transformation_execution_id`.
    #[schema(value_type = Object)]
    reference: Value,
    /// Always null: the API has no users.
    #[schema(required)]
    last_updated_by: Option<String>,
    /// Always null: hookgate never merges issues.
    #[schema(required)]
    merged_with: Option<String>,
    opened_at: String,
    first_seen_at: String,
    last_seen_at: String,
    /// Set while dismissed: it leaves lists and counts.
    #[schema(required)]
    dismissed_at: Option<String>,
    updated_at: String,
    created_at: String,
    /// The trigger that opened it.
    issue_trigger_id: String,
    /// What went wrong, in a line.
    detail: Option<String>,
    /// Occurrences collected.
    count: u64,
}

/// One issue asked for by id: the issue and what opened it (lists leave
/// `data` out).
#[derive(Serialize, ToSchema)]
pub struct IssueDetailView {
    #[serde(flatten)]
    issue: IssueView,
    data: IssueData,
}

/// What opened an issue, as far as it is still stored (null once forgotten).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IssueData {
    // Each variant requires the field only it has: a validator tells them apart.
    /// A transformation issue's: the run.
    Transformation {
        #[schema(required = true)]
        transformation_execution: Option<Box<ExecutionView>>,
        /// Always null.
        #[schema(value_type = Option<Object>, required = true)]
        trigger_attempt: Option<Value>,
    },
    /// A delivery or backpressure issue's: the event and its attempt (views
    /// as `GET /events/{id}` and `GET /attempts/{id}` answer).
    Delivery {
        #[schema(required = true)]
        trigger_event: Option<Box<TriggerEventView>>,
        #[schema(value_type = Option<super::views::AttemptView>, required = true)]
        trigger_attempt: Value,
    },
}

/// An issue as a JSON value, for the tracker's notifications and the lists'
/// filters (see `issue_view`).
pub fn issue_object(store: &Store, team_id: &str, issue: &Issue, with_data: bool) -> Value {
    if with_data {
        value_of(issue_detail(store, team_id, issue))
    } else {
        value_of(issue_view(team_id, issue))
    }
}

/// An issue with `data`: the event and attempt, or the transformation run,
/// that opened it.
fn issue_detail(store: &Store, team_id: &str, issue: &Issue) -> IssueDetailView {
    IssueDetailView {
        issue: issue_view(team_id, issue),
        data: issue_data(store, team_id, issue),
    }
}

/// An issue's view, as lists show it.
fn issue_view(team_id: &str, issue: &Issue) -> IssueView {
    let connection = [&issue.connection_id];
    let (aggregation_keys, reference) = match issue.kind {
        IssueType::Delivery => (
            json!({
                "webhook_id": connection,
                "response_status": issue.response_status.as_slice(),
                "error_code": issue.error_code.as_slice(),
            }),
            json!({ "event_id": issue.event_id, "attempt_id": issue.attempt_id }),
        ),
        IssueType::Transformation => (
            json!({
                "transformation_id": issue.transformation_id.as_slice(),
                // Issues stored before levels were kept opened on failures.
                "log_level": issue.log_level.unwrap_or(LogLevel::Fatal),
            }),
            json!({
                "transformation_execution_id": issue.execution_id,
                "trigger_event_request_transformation_id": null,
                "event_id": issue.event_id,
            }),
        ),
        IssueType::Backpressure => (
            json!({ "destination_id": connection }),
            json!({ "event_id": issue.event_id }),
        ),
    };
    IssueView {
        id: issue.id.clone(),
        team_id: team_id.to_string(),
        kind: issue.kind,
        status: issue.status,
        aggregation_keys,
        reference,
        last_updated_by: None,
        merged_with: None,
        opened_at: iso(issue.opened_at),
        first_seen_at: iso(issue.first_seen()),
        last_seen_at: iso(issue.last_seen_at),
        dismissed_at: issue.dismissed_at.map(iso),
        updated_at: iso(issue.updated()),
        created_at: iso(issue.first_seen()),
        issue_trigger_id: issue.issue_trigger_id.clone(),
        detail: issue.detail.clone(),
        count: issue.count,
    }
}

/// The event that opened an issue: the event, with the data it delivers
/// also under `request`, as the reference shows it there (L6150).
#[derive(Serialize, ToSchema)]
pub struct TriggerEventView {
    #[serde(flatten)]
    event: views::EventView,
    #[schema(value_type = Option<Object>, required)]
    request: Option<Value>,
}

fn issue_data(store: &Store, team_id: &str, issue: &Issue) -> IssueData {
    let trigger_event = || {
        let event = store.event(&issue.event_id).ok().flatten()?;
        let payload = store.event_payload(&event).ok().flatten();
        let event = views::event_view(team_id, &event, payload.as_ref());
        let request = event.data.clone();
        Some(Box::new(TriggerEventView { event, request }))
    };
    match issue.kind {
        IssueType::Transformation => {
            let execution = issue
                .transformation_id
                .as_ref()
                .zip(issue.execution_id.as_ref());
            let execution = execution.and_then(|(trs, id)| store.execution(trs, id).ok().flatten());
            IssueData::Transformation {
                transformation_execution: execution.map(|e| Box::new(execution_view(team_id, &e))),
                trigger_attempt: None,
            }
        }
        _ => {
            let attempt = issue.attempt_id.as_ref();
            let attempt = attempt
                .and_then(|id| store.attempt(id).ok().flatten())
                .map_or(Value::Null, |a| views::attempt(team_id, &a));
            IssueData::Delivery {
                trigger_event: trigger_event(),
                trigger_attempt: attempt,
            }
        }
    }
}

/// The issues a query selects (its filters, and no dismissed issue unless a
/// `dismissed_at` filter asks for them), and the page asked for.
fn selected(state: &ApiState, raw: Option<&str>) -> ApiResult<(Vec<Value>, SortedPage)> {
    let query = Query::parse(raw);
    let (id, status, kind, trigger, merged_asked) = (
        query.matcher("id"),
        query.matcher("status"),
        query.matcher("type"),
        query.matcher("issue_trigger_id"),
        !query.all("merged_with").is_empty(),
    );
    let wanted_keys = aggregation_keys_filter(&query)?;
    let dismissed_asked = !query.bracketed("dismissed_at").is_empty();
    let ranges = [
        query.date_range("created_at")?,
        query.date_range("first_seen_at")?,
        query.date_range("last_seen_at")?,
        query.date_range("dismissed_at")?,
    ];
    let page = query.page_sorted(&[
        "created_at",
        "first_seen_at",
        "last_seen_at",
        "opened_at",
        "updated_at",
    ])?;
    query.refuse_unread()?;
    let mut models = Vec::new();
    for issue in state.store.issues() {
        let issue = issue?;
        let times = [
            Some(issue.first_seen()),
            Some(issue.first_seen()),
            Some(issue.last_seen_at),
            issue.dismissed_at,
        ];
        let chosen = (dismissed_asked || issue.dismissed_at.is_none())
            && !merged_asked // hookgate never merges issues
            && id(&issue.id)
            && status(&api_name(&issue.status))
            && kind(&api_name(&issue.kind))
            && trigger(&issue.issue_trigger_id)
            && ranges.iter().zip(times).all(|(range, t)| range.contains(t));
        if !chosen {
            continue;
        }
        let object = issue_object(&state.store, &state.team_id, &issue, false);
        if keys_match(&wanted_keys, &object["aggregation_keys"]) {
            models.push(object);
        }
    }
    Ok((models, page))
}

/// `aggregation_keys={"webhook_id": ["web_…"], "response_status": [500]}` (JSON):
/// each key names the values (one, or a list) an issue's key must share.
fn aggregation_keys_filter(query: &Query) -> ApiResult<serde_json::Map<String, Value>> {
    let Some(text) = query.one("aggregation_keys") else {
        return Ok(Default::default());
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(keys)) => Ok(keys),
        _ => Err(ApiError::invalid(
            "aggregation_keys",
            "a JSON object of aggregation keys and their values",
        )),
    }
}

fn keys_match(wanted: &serde_json::Map<String, Value>, keys: &Value) -> bool {
    let as_list = |value: &Value| match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    wanted.iter().all(|(key, values)| {
        let have = as_list(&keys[key]);
        as_list(values).iter().any(|v| have.contains(v))
    })
}

#[utoipa::path(get, path = "/2023-07-01/issues", tag = "issues", summary = "Issues (dismissed ones only when a dismissed_at filter asks)", params(("id" = Option<String>, Query, description = "issue ids"), ("issue_trigger_id" = Option<String>, Query, description = "trigger ids"), ("type" = Option<String>, Query, description = "delivery, transformation, backpressure"), ("status" = Option<String>, Query, description = "OPENED, IGNORED, ACKNOWLEDGED, RESOLVED"), ("merged_with" = Option<String>, Query, description = "merged issue ids"), ("aggregation_keys" = Option<String>, Query, description = "JSON object of aggregation keys"), ("created_at" = Option<String>, Query, description = "date, or [gte] [gt] [lte] [lt]"), ("first_seen_at" = Option<String>, Query, description = "date operators"), ("last_seen_at" = Option<String>, Query, description = "date operators"), ("dismissed_at" = Option<String>, Query, description = "date operators, [any]=true: brings dismissed issues back"), ("order_by" = Option<String>, Query, description = "created_at, first_seen_at, last_seen_at, opened_at, updated_at; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key"), ("dir" = Option<String>, Query, description = "asc or desc"), ("limit" = Option<u32>, Query, description = "1-255"), ("next" = Option<String>, Query, description = "cursor"), ("prev" = Option<String>, Query, description = "cursor")), responses((status = 200, description = "a page of issues", body = Listing<IssueView>), (status = 422, description = "unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_issues(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    blocking(move || {
        let (models, page) = selected(&state, raw.as_deref())?;
        listing::answer(models, &page)
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issues/count", tag = "issues", summary = "How many issues match (the filters of GET /issues)", params(("status" = Option<String>, Query, description = "OPENED, IGNORED, ACKNOWLEDGED, RESOLVED"), ("dismissed_at" = Option<String>, Query, description = "date operators; dismissed issues count only when asked for")), responses((status = 200, description = "{count}", body = Count), (status = 422, description = "unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn count_issues(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Count>> {
    blocking(move || {
        let (models, _) = selected(&state, raw.as_deref())?;
        Ok(Json(Count {
            count: models.len(),
        }))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "An issue, with the event and attempt (or transformation run) that opened it", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the issue", body = IssueDetailView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_issue(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<IssueDetailView>> {
    change_issue(state, id, |_| {}).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueUpdate {
    status: IssueStatus,
}

/// `PUT /issues/{id}` with `{"status": "ACKNOWLEDGED"}` (or IGNORED, RESOLVED, OPENED).
#[utoipa::path(put, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "Set an issue status", params(("id" = String, Path, description = "the id")), request_body = IssueUpdate, responses((status = 200, description = "the issue", body = IssueDetailView), (status = 404, description = "unknown", body = ErrorBody), (status = 422, description = "unknown status", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update_issue(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<IssueUpdate>, JsonRejection>,
) -> ApiResult<Json<IssueDetailView>> {
    let Json(update) = body.map_err(|e| ApiError::invalid("status", e.body_text()))?;
    change_issue(state, id, move |issue| issue.status = update.status).await
}

/// `DELETE /issues/{id}`: dismisses it (it leaves lists and counts, and opens
/// again when it recurs, unless IGNORED).
#[utoipa::path(delete, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "Dismiss an issue", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the issue", body = IssueDetailView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn dismiss_issue(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<IssueDetailView>> {
    change_issue(state, id, |issue| {
        issue.dismissed_at.get_or_insert(now_ms());
    })
    .await
}

/// Applies `change` (through the tracker, which stamps and announces it) and
/// answers the issue.
async fn change_issue(
    state: Arc<ApiState>,
    id: String,
    change: impl FnOnce(&mut Issue) + Send + 'static,
) -> ApiResult<Json<IssueDetailView>> {
    blocking(move || {
        let issue = state
            .router
            .issues()
            .change(&id, change)?
            .ok_or_else(|| ApiError::not_found("issue", &id))?;
        Ok(Json(issue_detail(&state.store, &state.team_id, &issue)))
    })
    .await
}

/// An enum's name as the API shows it (its serde name).
fn api_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
