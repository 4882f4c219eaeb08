//! The outbound-webhook API under `/v1`: applications and their event types,
//! endpoints, webhook jobs. Lists are paged by number (`page`, `per_page`) and
//! answer `{data, pagination: {page, per_page, total, total_pages}}`.

use super::error::{ApiError, ApiResult};
use super::query::Query;
use super::{applications, endpoints, portal_sessions, webhook_jobs, ApiState};
use crate::outbound::JobError;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router as Routes;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

const DEFAULT_PER_PAGE: usize = 25;
const MAX_PER_PAGE: usize = 100;

/// `/v1`'s routes but `/v1/webhook-jobs` (`api::router` routes that one).
pub fn routes() -> Routes<Arc<ApiState>> {
    Routes::new()
        .route(
            "/applications",
            get(applications::list).post(applications::create),
        )
        .route(
            "/applications/{id}",
            get(applications::get)
                .put(applications::update)
                .patch(applications::update)
                .delete(applications::delete),
        )
        .route(
            "/applications/{id}/event-types",
            get(applications::list_event_types).post(applications::create_event_type),
        )
        .route(
            "/applications/{id}/event-types/{name}",
            get(applications::get_event_type)
                .put(applications::update_event_type)
                .patch(applications::update_event_type)
                .delete(applications::delete_event_type),
        )
        .route(
            "/applications/{id}/portal-sessions",
            post(portal_sessions::create),
        )
        .route("/endpoints", get(endpoints::list).post(endpoints::create))
        .route(
            "/endpoints/{id}",
            get(endpoints::get)
                .put(endpoints::update)
                .patch(endpoints::update)
                .delete(endpoints::delete),
        )
        .route(
            "/endpoints/{id}/rotate-secret",
            post(endpoints::rotate_secret),
        )
        .route("/webhook-jobs/{id}", get(webhook_jobs::get))
        .route("/webhook-jobs/{id}/retry", post(webhook_jobs::retry))
        .route("/webhook-jobs/{id}/cancel", post(webhook_jobs::cancel))
}

/// `page` (from 1) and `per_page` (1–100, default 25, as the jobs reference says).
pub struct PageNumber {
    page: usize,
    per_page: usize,
}

impl PageNumber {
    pub fn from_query(query: &Query) -> ApiResult<PageNumber> {
        let page = query.number("page")?.unwrap_or(1);
        let per_page = query.number("per_page")?.unwrap_or(DEFAULT_PER_PAGE as u64);
        if page == 0 {
            return Err(ApiError::invalid("page", "pages are numbered from 1"));
        }
        if !(1..=MAX_PER_PAGE as u64).contains(&per_page) {
            return Err(ApiError::invalid(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        Ok(PageNumber {
            page: page as usize,
            per_page: per_page as usize,
        })
    }

    /// One page of `items` (all that matched, in order), with the totals.
    pub fn answer<T, V>(&self, items: Vec<T>, view: impl Fn(&T) -> V) -> V1Page<V> {
        let (skip, take) = self.window();
        let page: Vec<&T> = items.iter().skip(skip).take(take).collect();
        self.answer_page(&page, items.len(), |item| view(item))
    }

    /// How many matching items come before this page, and how many it holds.
    pub fn window(&self) -> (usize, usize) {
        ((self.page - 1).saturating_mul(self.per_page), self.per_page)
    }

    /// This page's `items`, out of `total` that matched.
    pub fn answer_page<'a, T, V>(
        &self,
        items: &'a [T],
        total: usize,
        view: impl Fn(&'a T) -> V,
    ) -> V1Page<V> {
        V1Page {
            data: items.iter().map(view).collect(),
            pagination: PageNumbers {
                page: self.page,
                per_page: self.per_page,
                total,
                total_pages: total.div_ceil(self.per_page),
            },
        }
    }
}

/// A `/v1` list's answer: one page of `data`.
#[derive(Serialize, ToSchema)]
pub struct V1Page<T> {
    pub data: Vec<T>,
    pub pagination: PageNumbers,
}

/// Where a `/v1` page is among all that matched.
#[derive(Serialize, ToSchema)]
pub struct PageNumbers {
    /// From 1.
    pub page: usize,
    pub per_page: usize,
    /// How many matched, on every page.
    pub total: usize,
    pub total_pages: usize,
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> ApiError {
        match error {
            JobError::Store(error) => error.into(),
            JobError::NotFound(..) => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
            JobError::Conflict(message) => ApiError::conflict(message),
        }
    }
}

/// For optional fields where `null` means "remove": a field given (even as
/// `null`) is `Some`, a field left out is `None` (with `#[serde(default)]`).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What `DELETE` answers.
#[derive(Serialize, ToSchema)]
pub struct V1Deleted {
    pub id: String,
    /// Always true.
    pub deleted: bool,
}

pub fn deleted(id: &str) -> V1Deleted {
    V1Deleted {
        id: id.to_string(),
        deleted: true,
    }
}
