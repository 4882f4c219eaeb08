//! `PUT /notifications/webhooks`: the workspace's webhook notifications. When
//! enabled, each topic's change (an issue opening or updating, an event
//! delivered, an attempt failed) becomes a request into the chosen source,
//! delivered by its connections like any other.

use super::error::{json_body, ApiError, ApiResult};
use super::schema::ErrorBody;
use super::{blocking, Shared};
use crate::model::{NotificationSettings, NOTIFICATION_TOPICS};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

/// What the body names changes; the rest stays as it was.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// Whether issues are announced (a source is then required).
    enabled: Option<bool>,
    /// issue.opened, issue.updated, event.successful, deprecated.attempt-failed.
    topics: Option<Vec<String>>,
    /// The source (id or name) the announcements are sent into.
    source_id: Option<String>,
}

#[utoipa::path(put, path = "/2023-07-01/notifications/webhooks", tag = "issues", summary = "Enable or disable webhook notifications: enabled, topics (issue.opened, issue.updated, …), source_id", request_body = SettingsChange, responses((status = 200, description = "{enabled, topics, source_id}", body = NotificationSettings), (status = 422, description = "unknown topic or source", body = ErrorBody)), security(("api_key" = [])))]
pub async fn put_webhooks(
    State(state): Shared,
    body: Result<Json<SettingsChange>, JsonRejection>,
) -> ApiResult<Json<NotificationSettings>> {
    let change = json_body(body)?;
    if let Some(topic) = change
        .topics
        .iter()
        .flatten()
        .find(|t| !NOTIFICATION_TOPICS.contains(&t.as_str()))
    {
        return Err(ApiError::invalid(
            "topics",
            format!(
                "unknown topic \"{topic}\" ({})",
                NOTIFICATION_TOPICS.join(", ")
            ),
        ));
    }
    // The source's id is kept, whether the body named it by id or by name.
    let source_id = match &change.source_id {
        Some(id) => Some(
            state
                .catalog
                .load()
                .source(id)
                .map(|source| source.id.clone())
                .ok_or_else(|| ApiError::invalid("source_id", format!("no source \"{id}\"")))?,
        ),
        None => None,
    };
    blocking(move || {
        let _one_writer = state.object_updates.lock();
        let mut settings = state.store.notification_settings()?;
        settings.enabled = change.enabled.unwrap_or(settings.enabled);
        settings.topics = change.topics.unwrap_or(settings.topics);
        settings.source_id = source_id.or(settings.source_id);
        if settings.enabled && settings.source_id.is_none() {
            return Err(ApiError::invalid(
                "source_id",
                "the source notifications are sent to is required to enable them",
            ));
        }
        state.router.issues().set_notifications(settings.clone())?;
        Ok(Json(settings))
    })
    .await
}
