//! The web console at `/console` on the API listener: server-rendered pages
//! (maud) with a little htmx, signed in with an API key. Every page gets its
//! data by calling the API's own handlers, so filters, paging and masking
//! are the API's and there is no second path to the data.

mod assets;
mod choices;
mod connections;
mod csrf;
mod diff;
mod events;
mod issues;
mod layout;
mod outbound;
mod outbound_jobs;
pub mod portal;
mod rates;
mod requests;
mod session;
mod show;
mod sign_in;
mod transformations;

use crate::api::error::ApiError;
use crate::api::ApiState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::{html, Markup};
pub use portal::Links as PortalLinks;
use serde_json::Value;
pub use session::over_tls;
use session::{Session, Sessions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A session ends after this long unused.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);

const BRAND: &str = "hookgate";
const SIGN_IN: &str = "/console/sign-in";
const NAV: [(&str, &str); 6] = [
    ("/console/requests", "Requests"),
    ("/console/events", "Events"),
    ("/console/connections", "Connections"),
    ("/console/issues", "Issues"),
    ("/console/transformations", "Transformations"),
    ("/console/outbound", "Outbound"),
];

/// What the console's handlers reach.
pub struct Console {
    api: Arc<ApiState>,
    /// Signed in with an API key: the key's index.
    sessions: Sessions<usize>,
    /// Becomes true when the gateway stops, ending live streams so the
    /// listener's graceful stop is not held open by them.
    stopped: watch::Receiver<bool>,
}

type Shared = State<Arc<Console>>;
/// The session of a signed-in page (put there by `guard`).
type Signed = Extension<Session<usize>>;

/// The console's routes, to be nested at `/console`.
pub fn routes(api: Arc<ApiState>, stopped: watch::Receiver<bool>) -> Router {
    let console = Arc::new(Console {
        api,
        sessions: Sessions::new(SESSION_IDLE, session::CONSOLE_COOKIE),
        stopped,
    });
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to(NAV[0].0) }))
        .route("/sign-out", post(sign_in::sign_out))
        .merge(requests::routes())
        .merge(choices::routes())
        .merge(events::routes())
        .merge(connections::routes())
        .merge(issues::routes())
        .merge(transformations::routes())
        .merge(outbound::routes())
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard));
    Router::new()
        .route("/sign-in", get(sign_in::form).post(sign_in::sign_in))
        .route("/assets/{file}", get(assets::serve))
        .merge(signed_in)
        .with_state(console)
}

/// Lets only signed-in browsers through (others go to the sign-in page), and
/// only with the session's CSRF token when they change something.
async fn guard(State(console): Shared, request: Request, next: Next) -> Response {
    let Some(session) = console.sessions.find(request.headers()) else {
        return to_sign_in(&request);
    };
    if let Err(too_many) = console.api.keys.spend_management(session.principal) {
        return too_many.into_response();
    }
    let mut request = match request.method() == Method::POST {
        true => match csrf::checked(request, &session.csrf).await {
            Ok(request) => request,
            Err(refused) => return refused,
        },
        false => request,
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// To the sign-in page: a redirect, or for an htmx call, htmx's instruction
/// to load it as a whole page rather than swap it into a fragment.
fn to_sign_in(request: &Request) -> Response {
    if request.headers().contains_key("hx-request") {
        let mut answer = StatusCode::UNAUTHORIZED.into_response();
        answer
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static(SIGN_IN));
        return answer;
    }
    Redirect::to(SIGN_IN).into_response()
}

impl Console {
    /// A signed-in page of `section` (a `NAV` href).
    fn page(
        &self,
        session: &Session<usize>,
        section: &str,
        title: &str,
        content: Markup,
    ) -> Html<String> {
        let chrome = layout::Chrome {
            brand: BRAND,
            nav: &NAV,
            sign_out: "/console/sign-out",
            csrf: &session.csrf,
            look: layout::Look::default(),
        };
        Html(layout::page(&chrome, section, title, content).into_string())
    }

    fn api(&self) -> State<Arc<ApiState>> {
        State(self.api.clone())
    }
}

/// An API handler's answer as JSON, or its error.
fn answer<T: serde::Serialize>(result: Result<Json<T>, ApiError>) -> Result<Value, ApiError> {
    let Json(value) = result?;
    Ok(serde_json::to_value(value).expect("API answers serialize"))
}

/// An API handler's answer written as JSON bytes (`api::json_answer`), as
/// JSON, or its error.
async fn written_answer(result: Result<Response, ApiError>) -> Result<Value, ApiError> {
    let unreadable = |error: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error);
    let body = axum::body::to_bytes(result?.into_body(), usize::MAX)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))
}

/// The page's query string as the API takes it (`api_query`).
struct Filter(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Filter {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Filter, Self::Rejection> {
        Ok(Filter(api_query(parts.uri.query())))
    }
}

/// The console's filter forms use the API's own parameter names, and leave
/// empty fields and the console's own (what was typed to find a choice) out.
fn api_query(raw: Option<&str>) -> String {
    let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(key, value)| !value.trim().is_empty() && !key.starts_with(choices::FIND_PREFIX));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The status a list page answers with: the API's, when its list failed.
fn status_of(listing: &Result<Value, ApiError>) -> StatusCode {
    listing
        .as_ref()
        .err()
        .map_or(StatusCode::OK, |error| error.status)
}

/// An API error in a page: its message, and its status for the answer.
fn error_notice(error: &ApiError) -> Markup {
    html! { p.notice.error role="alert" { (error.message) } }
}

/// Where a failed page leads back to: the brand of the pages (the console,
/// a customer portal) and their home with the link's words.
trait Home {
    const BRAND: &'static str;
    const HOME: (&'static str, &'static str);
}

/// The console's pages.
struct ConsoleHome;

impl Home for ConsoleHome {
    const BRAND: &'static str = BRAND;
    const HOME: (&'static str, &'static str) = (NAV[0].0, "Back to the console");
}

/// A failed page: the API's error shown with its status, then a way home.
struct FailedPage<H>(ApiError, std::marker::PhantomData<H>);

impl<H> From<ApiError> for FailedPage<H> {
    fn from(error: ApiError) -> FailedPage<H> {
        FailedPage(error, std::marker::PhantomData)
    }
}

impl<H: Home> IntoResponse for FailedPage<H> {
    fn into_response(self) -> Response {
        failed_page(H::BRAND, H::HOME, &self.0)
    }
}

/// A failed console page.
type Failed = FailedPage<ConsoleHome>;

/// The page of a failed call: the error's status, its message and a way back.
fn failed_page(brand: &str, (home, back): (&str, &str), error: &ApiError) -> Response {
    let content = html! {
        h1 { (error.status.canonical_reason().unwrap_or("Error")) }
        (error_notice(error))
        p { a href=(home) { (back) } }
    };
    let page = layout::bare(brand, "Error", content);
    (error.status, Html(page.into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filter_fields_are_left_out_of_the_api_query() {
        let query = api_query(Some(
            "status=&source_id=src_1&search_term=+&created_at%5Bgte%5D=2026-01-01&find_source_id=sh",
        ));
        assert_eq!(query, "source_id=src_1&created_at%5Bgte%5D=2026-01-01");
    }
}
