//! Request budgets (governor, one bucket per key of a kind) and how the API
//! tells callers where they stand: `X-RateLimit-Limit/-Remaining/-Reset` on
//! every answer, a 429 with `Retry-After` past the budget.

use super::error::ApiError;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::num::NonZeroU32;

// Named once: every answer of the API carries them (a name given as text is
// parsed again on each use).
const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

type KeyedLimiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// `limit` calls per `period` for each key, all of which may come at once.
pub struct Budget<K: Hash + Eq + Clone> {
    limiter: KeyedLimiter<K>,
    limit: u32,
    period_seconds: u64,
    /// What is counted, for the 429's message ("calls per minute of this key").
    what: &'static str,
}

/// A call past its budget: answered 429, saying when to come back.
pub struct Refusal {
    limit: u32,
    retry_after_seconds: u64,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut refusal = too_many(self.message, self.retry_after_seconds);
        Standing {
            limit: self.limit,
            remaining: 0,
            reset_seconds: self.retry_after_seconds,
        }
        .tell(refusal.headers_mut());
        refusal
    }
}

/// Where a caller stands after a call within its budget.
pub struct Standing {
    limit: u32,
    remaining: u32,
    reset_seconds: u64,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    pub fn per_minute(limit: u32, what: &'static str) -> Budget<K> {
        Budget::new(limit, 60, what)
    }

    pub fn per_second(limit: u32, what: &'static str) -> Budget<K> {
        Budget::new(limit, 1, what)
    }

    fn new(limit: u32, period_seconds: u64, what: &'static str) -> Budget<K> {
        let limit = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
        let quota = if period_seconds == 1 {
            Quota::per_second(limit)
        } else {
            Quota::per_minute(limit)
        };
        Budget {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            limit: limit.get(),
            period_seconds,
            what,
        }
    }

    /// Spends one call of `key`'s budget, or answers the 429 that refuses it.
    pub fn spend(&self, key: &K) -> Result<Standing, Refusal> {
        let limit = self.limit;
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(limit);
                // Seconds until the budget is whole again.
                let spent = u64::from(limit - remaining);
                let reset_seconds = (spent * self.period_seconds).div_ceil(u64::from(limit));
                Ok(Standing {
                    limit,
                    remaining,
                    reset_seconds: reset_seconds.max(1),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry_after_seconds = wait.as_secs() + 1;
                Err(Refusal {
                    limit,
                    retry_after_seconds,
                    message: format!(
                        "rate limit of {limit} {} exceeded; retry in {retry_after_seconds} s",
                        self.what
                    ),
                })
            }
        }
    }
}

impl Standing {
    /// Sets the `X-RateLimit-*` headers, unless a narrower budget (one the
    /// handler checked) already did: the caller hears of the tighter one.
    pub fn tell(&self, headers: &mut HeaderMap) {
        if headers.contains_key(&LIMIT) {
            return;
        }
        headers.insert(LIMIT, self.limit.into());
        headers.insert(REMAINING, self.remaining.into());
        // An ISO 8601 time, as Hookdeck's API gives it.
        let reset_at = crate::ids::now_ms().saturating_add(self.reset_seconds.saturating_mul(1000));
        let reset_at = HeaderValue::try_from(crate::ids::iso8601(reset_at))
            .expect("an ISO 8601 time is a valid header value");
        headers.insert(RESET, reset_at);
    }
}

/// A 429 saying when to come back.
pub fn too_many(message: String, retry_after_seconds: u64) -> Response {
    let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
    come_back_after(error, retry_after_seconds)
}

/// `error`'s answer, with `Retry-After`: when (seconds) to send the call again.
pub fn come_back_after(error: ApiError, retry_after_seconds: u64) -> Response {
    let mut answer = error.into_response();
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after_seconds.into());
    answer
}
