//! API keys (`Authorization: Bearer KEY`, or Basic with the key as user name and
//! an empty password), compared in constant time, a rate limit per key and
//! one on failed logins per client address.

use super::error::ApiError;
use super::failed_logins::FailedLogins;
use super::ApiState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::{engine::general_purpose::STANDARD, Engine};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::Arc;
use subtle::ConstantTimeEq;

type KeyedLimiter =
    RateLimiter<usize, DefaultKeyedStateStore<usize>, DefaultClock, StateInformationMiddleware>;

/// The configured keys and each key's request budget.
pub struct ApiKeys {
    /// SHA-256 of each key: comparing digests keeps a key's length from leaking through timing.
    digests: Vec<[u8; 32]>,
    limiter: KeyedLimiter,
    per_minute: u32,
    failed_logins: FailedLogins,
}

impl ApiKeys {
    /// `per_minute` calls per key, `failed_logins_per_minute` failed logins per client address.
    pub fn new(keys: &[String], per_minute: u32, failed_logins_per_minute: u32) -> ApiKeys {
        let per_minute = per_minute.max(1);
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).expect("at least 1"));
        ApiKeys {
            digests: keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_minute,
            failed_logins: FailedLogins::new(failed_logins_per_minute),
        }
    }

    /// The index of the key the request presents, if it is one of ours.
    fn identify(&self, headers: &HeaderMap) -> Option<usize> {
        let presented = presented_key(headers)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare with every key, so the time taken does not tell which matched.
        self.digests
            .iter()
            .enumerate()
            .fold(None, |found, (i, known)| {
                if bool::from(known.ct_eq(&digest)) {
                    Some(i)
                } else {
                    found
                }
            })
    }
}

fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(credentials.trim().to_string()),
        "basic" => {
            let decoded = String::from_utf8(STANDARD.decode(credentials.trim()).ok()?).ok()?;
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            // Hookdeck's form: the key as user name, an empty password. A
            // password is refused rather than ignored, so that nobody believes
            // it protects anything.
            password.is_empty().then(|| user.to_string())
        }
        _ => None,
    }
}

/// Rejects calls without a valid key (401) or over the key's budget (429), and
/// tells every caller where it stands in `X-RateLimit-*` headers.
pub async fn require_key(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let keys = &state.keys;
    let client = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let now = std::time::Instant::now();
    if let Some(wait) = client.and_then(|ip| keys.failed_logins.locked_out(ip, now)) {
        let retry_after = wait.as_secs() + 1;
        let message = format!("too many failed logins from this address; retry in {retry_after} s");
        return too_many(message, retry_after);
    }
    let Some(key) = keys.identify(request.headers()) else {
        if let Some(ip) = client {
            keys.failed_logins.record_failure(ip, now);
        }
        let mut error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid API key is required: Authorization: Bearer KEY",
        )
        .into_response();
        error
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return error;
    };
    let limit = keys.per_minute;
    match keys.limiter.check_key(&key) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let mut response = next.run(request).await;
            // Seconds until the budget is whole again.
            let reset = u64::from(limit - remaining.min(limit)) * 60 / u64::from(limit);
            set_rate_headers(response.headers_mut(), limit, remaining, reset.max(1));
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs() + 1;
            let mut error = too_many(
                format!(
                    "rate limit of {limit} calls per minute exceeded; retry in {retry_after} s"
                ),
                retry_after,
            );
            set_rate_headers(error.headers_mut(), limit, 0, retry_after);
            error
        }
    }
}

/// A 429 saying when to come back.
fn too_many(message: String, retry_after_seconds: u64) -> Response {
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    error
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after_seconds.into());
    error
}

/// The rate headers; the reset is an ISO 8601 time, as Hookdeck's API gives it.
fn set_rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_seconds: u64) {
    headers.insert("x-ratelimit-limit", limit.into());
    headers.insert("x-ratelimit-remaining", remaining.into());
    let reset_at = crate::ids::now_ms().saturating_add(reset_seconds.saturating_mul(1000));
    let reset_at = HeaderValue::from_str(&crate::ids::iso8601(reset_at))
        .expect("an ISO 8601 time is a valid header value");
    headers.insert("x-ratelimit-reset", reset_at);
}
