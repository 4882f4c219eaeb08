//! API keys (`Authorization: Bearer KEY`, or Basic with the key as user name and
//! an empty password), compared in constant time, a rate limit per key and
//! one on failed logins per client address.

use super::error::ApiError;
use super::failed_logins::FailedLogins;
use super::rate::{too_many, Budget, Refusal, Standing};
use super::ApiState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The jobs API (the data plane of outbound webhooks) has its own budget, so
/// that sending events is neither held to the management API's pace nor
/// able to use up the management budget.
const JOBS_API_PREFIX: &str = "/v1/webhook-jobs";

/// The configured keys and each key's request budget.
pub struct ApiKeys {
    /// SHA-256 of each key: comparing digests keeps a key's length from leaking through timing.
    digests: Vec<[u8; 32]>,
    management: Budget<usize>,
    jobs_api: Budget<usize>,
    failed_logins: FailedLogins,
}

/// The per-key budgets: calls per minute to the management API, calls per
/// second to the jobs API, and failed logins per minute per client address.
pub struct KeyBudgets {
    pub management_per_minute: u32,
    pub jobs_api_per_second: u32,
    pub failed_logins_per_minute: u32,
}

impl ApiKeys {
    pub fn new(keys: &[String], budgets: KeyBudgets) -> ApiKeys {
        ApiKeys {
            digests: keys
                .iter()
                .map(|k| Sha256::digest(k.as_bytes()).into())
                .collect(),
            management: Budget::per_minute(
                budgets.management_per_minute,
                "calls per minute of this key",
            ),
            jobs_api: Budget::per_second(
                budgets.jobs_api_per_second,
                "webhook-jobs calls per second of this key",
            ),
            failed_logins: FailedLogins::new(budgets.failed_logins_per_minute),
        }
    }

    /// The budget a call to `path` spends, if any.
    fn budget_for(&self, path: &str) -> Option<&Budget<usize>> {
        if path.starts_with(JOBS_API_PREFIX) {
            Some(&self.jobs_api)
        } else if is_listener_report(path) {
            None
        } else {
            Some(&self.management)
        }
    }

    /// Spends one call of `key`'s management budget: the console's pages
    /// count as the API calls they are made of.
    pub(crate) fn spend_management(&self, key: usize) -> Result<(), Refusal> {
        self.management.spend(&key).map(|_| ())
    }

    /// The index of `presented` among our keys.
    fn key_index(&self, presented: &str) -> Option<usize> {
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

    /// The index of the key `presented`, for a client at `client`: an
    /// address past its failed logins is refused whatever it presents, and a
    /// wrong key counts against it. Shared by the API's header and the
    /// console's sign-in form, so neither is a way around the other's limit.
    pub(crate) fn admit(
        &self,
        presented: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<usize, Refused> {
        let now = std::time::Instant::now();
        if let Some(wait) = client.and_then(|ip| self.failed_logins.locked_out(ip, now)) {
            return Err(Refused::LockedOut {
                retry_after: wait.as_secs() + 1,
            });
        }
        let key = presented.and_then(|key| self.key_index(key));
        if let (None, Some(ip)) = (key, client) {
            self.failed_logins.record_failure(ip, now);
        }
        key.ok_or(Refused::WrongKey)
    }
}

/// Why `ApiKeys::admit` refused a key.
pub(crate) enum Refused {
    /// The client's address is locked out for this many more seconds.
    LockedOut {
        retry_after: u64,
    },
    WrongKey,
}

/// The `429` for an address locked out after failed logins.
pub(crate) fn locked_out(retry_after: u64) -> Response {
    let message = format!("too many failed logins from this address; retry in {retry_after} s");
    too_many(message, retry_after)
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
    match check_call(&state, &request) {
        Ok(standing) => {
            let mut response = next.run(request).await;
            if let Some(standing) = standing {
                standing.tell(response.headers_mut());
            }
            response
        }
        Err(refused) => refused.into_response(),
    }
}

/// Why `check_call` refused a call.
pub(crate) enum CallRefused {
    Key(Refused),
    OverBudget(Refusal),
}

impl IntoResponse for CallRefused {
    fn into_response(self) -> Response {
        match self {
            CallRefused::Key(Refused::LockedOut { retry_after }) => locked_out(retry_after),
            CallRefused::Key(Refused::WrongKey) => {
                let mut error = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "a valid API key is required: Authorization: Bearer KEY",
                )
                .into_response();
                error
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                error
            }
            CallRefused::OverBudget(refusal) => refusal.into_response(),
        }
    }
}

/// A call's key and budget (see `require_key`): where the caller stands
/// (None for a call that spends no budget), or why it is refused.
pub(crate) fn check_call(
    state: &ApiState,
    request: &Request,
) -> Result<Option<Standing>, CallRefused> {
    let keys = &state.keys;
    let client = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let key = keys
        .admit(presented_key(request.headers()).as_deref(), client)
        .map_err(CallRefused::Key)?;
    let Some(budget) = keys.budget_for(request.uri().path()) else {
        return Ok(None);
    };
    budget
        .spend(&key)
        .map(Some)
        .map_err(CallRefused::OverBudget)
}

/// Whether `path` is a `hookgate listen` report (`…/destinations/{id}/listen/{delivery_id}`).
/// Reports spend no budget: there is one per event the gateway handed the
/// listener, so they come as fast as events do, and a busy listener would
/// otherwise lock its user out of the API (and its own reports behind them).
fn is_listener_report(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    matches!(segments.as_slice(), [.., "destinations", _, "listen", _])
}
