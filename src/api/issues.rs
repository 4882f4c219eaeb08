//! `/issue-triggers` and `/issues`: what opens issues, and the issues themselves.

use super::error::{checked_name, json_body, refuse_environment, ApiError, ApiResult};
use super::query::{iso, Query};
use super::{blocking, reachable, ApiState, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{DeliveryStrategy, Issue, IssueStatus, IssueTrigger, IssueType};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The body of `POST /issue-triggers` and `PUT /issue-triggers/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    name: String,
    #[serde(rename = "type")]
    kind: IssueType,
    #[serde(default = "every_connection")]
    connections: Vec<String>,
    #[serde(default)]
    strategy: DeliveryStrategy,
    /// Backpressure triggers: destination ids, or `["*"]`.
    #[serde(default = "every_connection")]
    destinations: Vec<String>,
    /// Backpressure triggers: how late the oldest queued event may be (ms).
    delay_ms: Option<u64>,
    webhook_url: Option<String>,
}

fn every_connection() -> Vec<String> {
    vec!["*".into()]
}

fn input(
    state: &ApiState,
    body: Result<Json<TriggerInput>, JsonRejection>,
) -> ApiResult<TriggerInput> {
    let input = json_body(body)?;
    checked_name("name", &input.name)?;
    refuse_environment("webhook_url", &input.webhook_url)?;
    if let Some(url) = &input.webhook_url {
        let parsed =
            url::Url::parse(url).map_err(|e| ApiError::invalid("webhook_url", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::invalid(
                "webhook_url",
                "must be an http or https URL",
            ));
        }
        reachable(state, "webhook_url", &parsed)?;
    }
    if input.connections.is_empty() {
        return Err(ApiError::invalid(
            "connections",
            "list connection ids, or \"*\" for all",
        ));
    }
    Ok(input)
}

fn trigger_view(trigger: &IssueTrigger) -> Value {
    json!({
        "id": trigger.id,
        "name": trigger.name,
        "type": trigger.kind,
        "configs": {
            "connections": trigger.connections,
            "strategy": trigger.strategy,
            "destinations": trigger.destinations,
            "delay_ms": trigger.delay_ms,
        },
        "channels": { "webhook": trigger.webhook_url.as_ref().map(|url| json!({ "url": url })) },
        "disabled_at": trigger.disabled_at.map(iso),
        "created_at": iso(trigger.created_at),
    })
}

fn issue_view(issue: &Issue) -> Value {
    json!({
        "id": issue.id,
        "type": issue.kind,
        "status": issue.status,
        "issue_trigger_id": issue.issue_trigger_id,
        "aggregation_keys": { "webhook_id": issue.connection_id, "key": issue.aggregation_key },
        "reference": { "event_id": issue.event_id, "attempt_id": issue.attempt_id },
        "detail": issue.detail,
        "count": issue.count,
        "opened_at": iso(issue.opened_at),
        "first_seen_at": iso(issue.opened_at),
        "last_seen_at": iso(issue.last_seen_at),
        "dismissed_at": issue.dismissed_at.map(iso),
    })
}

#[utoipa::path(get, path = "/2023-07-01/issue-triggers", tag = "issues", summary = "Issue triggers", responses((status = 200, description = "every trigger")), security(("api_key" = [])))]
pub async fn list_triggers(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    Query::parse(raw.as_deref()).refuse_unread()?;
    let store = state.store.clone();
    blocking(move || {
        let models: Vec<Value> = store.issue_triggers()?.iter().map(trigger_view).collect();
        Ok(Json(json!({ "count": models.len(), "models": models })))
    })
    .await
}

#[utoipa::path(post, path = "/2023-07-01/issue-triggers", tag = "issues", summary = "Create an issue trigger: name, type (delivery or transformation), connections, strategy, webhook_url", responses((status = 200, description = "the trigger"), (status = 422, description = "invalid")), security(("api_key" = [])))]
pub async fn create_trigger(
    State(state): Shared,
    body: Result<Json<TriggerInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = input(&state, body)?;
    let store = state.store.clone();
    blocking(move || {
        let trigger = IssueTrigger {
            id: new_id("itr"),
            name: input.name,
            kind: input.kind,
            connections: input.connections,
            strategy: input.strategy,
            destinations: input.destinations,
            delay_ms: input.delay_ms,
            webhook_url: input.webhook_url,
            disabled_at: None,
            created_at: now_ms(),
        };
        store.save_issue_trigger(&trigger)?;
        Ok(Json(trigger_view(&trigger)))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "An issue trigger", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get_trigger(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    change_trigger(state, id, |_| {}).await
}

#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "Replace an issue trigger", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger"), (status = 404, description = "unknown"), (status = 422, description = "invalid")), security(("api_key" = [])))]
pub async fn update_trigger(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<TriggerInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = input(&state, body)?;
    change_trigger(state, id, move |trigger| {
        trigger.name = input.name;
        trigger.kind = input.kind;
        trigger.connections = input.connections;
        trigger.strategy = input.strategy;
        trigger.destinations = input.destinations;
        trigger.delay_ms = input.delay_ms;
        trigger.webhook_url = input.webhook_url;
    })
    .await
}

#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}/disable", tag = "issues", summary = "Stop a trigger opening issues", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn disable_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    change_trigger(state, id, |trigger| {
        trigger.disabled_at.get_or_insert(now_ms());
    })
    .await
}

#[utoipa::path(put, path = "/2023-07-01/issue-triggers/{id}/enable", tag = "issues", summary = "Let a trigger open issues again", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the trigger"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn enable_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    change_trigger(state, id, |trigger| trigger.disabled_at = None).await
}

#[utoipa::path(delete, path = "/2023-07-01/issue-triggers/{id}", tag = "issues", summary = "Delete an issue trigger", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "deleted"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn delete_trigger(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        if !store.delete_issue_trigger(&id)? {
            return Err(ApiError::not_found("issue trigger", &id));
        }
        Ok(Json(json!({ "id": id })))
    })
    .await
}

async fn change_trigger(
    state: std::sync::Arc<super::ApiState>,
    id: String,
    change: impl FnOnce(&mut IssueTrigger) + Send + 'static,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let mut trigger = store
            .issue_trigger(&id)?
            .ok_or_else(|| ApiError::not_found("issue trigger", &id))?;
        change(&mut trigger);
        store.save_issue_trigger(&trigger)?;
        Ok(Json(trigger_view(&trigger)))
    })
    .await
}

/// The issues a query selects: `status`, `type`, `issue_trigger_id`, newest first.
fn selected(state: &super::ApiState, raw: Option<&str>) -> ApiResult<Vec<Issue>> {
    let query = Query::parse(raw);
    let (status, kind, trigger) = (
        query.matcher("status"),
        query.matcher("type"),
        query.matcher("issue_trigger_id"),
    );
    query.refuse_unread()?;
    let mut issues = Vec::new();
    for issue in state.store.issues() {
        let issue = issue?;
        if status(&api_name(&issue.status))
            && kind(&api_name(&issue.kind))
            && trigger(&issue.issue_trigger_id)
        {
            issues.push(issue);
        }
    }
    issues.reverse();
    Ok(issues)
}

#[utoipa::path(get, path = "/2023-07-01/issues", tag = "issues", summary = "Issues, newest first", params(("status" = Option<String>, Query, description = "OPENED, IGNORED, ACKNOWLEDGED, RESOLVED"), ("type" = Option<String>, Query, description = "delivery or transformation"), ("issue_trigger_id" = Option<String>, Query, description = "trigger id")), responses((status = 200, description = "the issues")), security(("api_key" = [])))]
pub async fn list_issues(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    blocking(move || {
        let models: Vec<Value> = selected(&state, raw.as_deref())?
            .iter()
            .map(issue_view)
            .collect();
        Ok(Json(json!({ "count": models.len(), "models": models })))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issues/count", tag = "issues", summary = "How many issues match", params(("status" = Option<String>, Query, description = "OPENED, IGNORED, ACKNOWLEDGED, RESOLVED")), responses((status = 200, description = "the count")), security(("api_key" = [])))]
pub async fn count_issues(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    blocking(move || {
        Ok(Json(
            json!({ "count": selected(&state, raw.as_deref())?.len() }),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "An issue", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the issue"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get_issue(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    change_issue(state, id, |_| Ok(())).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueUpdate {
    status: IssueStatus,
}

/// `PUT /issues/{id}` with `{"status": "ACKNOWLEDGED"}` (or IGNORED, RESOLVED, OPENED).
#[utoipa::path(put, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "Set an issue status", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the issue"), (status = 404, description = "unknown"), (status = 422, description = "unknown status")), security(("api_key" = [])))]
pub async fn update_issue(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<IssueUpdate>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(update) = body.map_err(|e| ApiError::invalid("status", e.body_text()))?;
    change_issue(state, id, move |issue| {
        issue.status = update.status;
        Ok(())
    })
    .await
}

/// `DELETE /issues/{id}`: dismisses it; the next occurrence opens a new one.
#[utoipa::path(delete, path = "/2023-07-01/issues/{id}", tag = "issues", summary = "Dismiss an issue", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the issue"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn dismiss_issue(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    change_issue(state, id, |issue| {
        issue.dismissed_at.get_or_insert(now_ms());
        Ok(())
    })
    .await
}

async fn change_issue(
    state: std::sync::Arc<super::ApiState>,
    id: String,
    change: impl FnOnce(&mut Issue) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let mut issue = store
            .issue(&id)?
            .ok_or_else(|| ApiError::not_found("issue", &id))?;
        change(&mut issue)?;
        store.save_issue(&issue)?;
        Ok(Json(issue_view(&issue)))
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
