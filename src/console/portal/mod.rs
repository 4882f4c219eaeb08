//! The customer portal at `/portal`: the console's pages (same layout,
//! handlers and templates) scoped to one application, for that
//! application's customers. A browser signs in by a single-use link the
//! product asks for (`POST /v1/applications/{id}/portal-sessions`), and can
//! be shown inside the product's own site: every answer carries
//! `Content-Security-Policy: frame-ancestors` with the application's list.
//!
//! Scoping: every object a page names by id is read through the API first
//! and must belong to the session's application, else the page is a 404
//! (as if it did not exist), before anything is shown or changed.
//!
//! Budget: each application's pages may be asked for
//! `outbound.portal_requests_per_minute_per_application` times a minute over
//! all its sessions (the API's `Budget`, a 429 with `Retry-After` past it), so
//! a customer's script can neither hammer the gateway nor spend the
//! management API's budget.

mod deliveries;
mod endpoints;
mod event_types;
mod links;
mod sign_in;

pub use links::{Grant, Links};

use super::session::{Cookie, Session, Sessions};
use super::{answer, csrf, layout, written_answer, FailedPage, Home};
use crate::api::error::{ApiError, ApiResult};
use crate::api::{applications, ApiState, Budget};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;
use serde_json::Value;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// Where a sign-in link points (followed by its token).
pub const SIGN_IN_PATH: &str = "/portal/sign-in";

/// A portal session ends after this long unused.
const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);

const COOKIE: Cookie = Cookie {
    name: "hookgate_portal",
    path: "/portal",
    framed: true,
};

const NAV: [(&str, &str); 3] = [
    ("/portal/endpoints", "Endpoints"),
    ("/portal/event-types", "Event types"),
    ("/portal/deliveries", "Deliveries"),
];

/// What the portal's handlers reach.
pub struct Portal {
    api: Arc<ApiState>,
    sessions: Sessions<Grant>,
    /// Requests per application id.
    budget: Budget<String>,
}

type Shared = State<Arc<Portal>>;

/// A signed-in request: the session and its application (the API's view),
/// put there by `guard`.
#[derive(Clone)]
struct Visit {
    session: Session<Grant>,
    application: Value,
}

type Visiting = Extension<Visit>;

impl Visit {
    fn application_id(&self) -> &str {
        &self.session.principal.application_id
    }

    /// `object` (an API view with `field` naming its application) when it is
    /// this application's, else the 404 an unknown one gets.
    fn owns(&self, object: Value, field: &str, kind: &str, id: &str) -> Result<Value, Failed> {
        match object[field].as_str() == Some(self.application_id()) {
            true => Ok(object),
            false => Err(Failed::from(ApiError::not_found(kind, id))),
        }
    }

    /// The CSRF token for forms, or none when the session may change nothing
    /// (read-only pages show no forms).
    fn may_change(&self) -> Option<&str> {
        (!self.session.principal.read_only).then_some(self.session.csrf.as_str())
    }
}

/// The portal's routes, to be nested at `/portal`.
pub fn routes(api: Arc<ApiState>) -> Router {
    // Kept from the start, as the API's budgets are.
    let per_minute = api
        .config
        .load()
        .outbound
        .portal_requests_per_minute_per_application;
    let portal = Arc::new(Portal {
        api,
        sessions: Sessions::new(SESSION_IDLE, COOKIE),
        budget: Budget::per_minute(per_minute, "portal requests per minute of this application"),
    });
    let signed_in = Router::new()
        .route("/", get(|| async { Redirect::to(NAV[0].0) }))
        .route("/sign-out", post(sign_in::sign_out))
        .merge(endpoints::routes())
        .merge(event_types::routes())
        .merge(deliveries::routes())
        .layer(axum::middleware::from_fn_with_state(portal.clone(), guard));
    Router::new()
        .route("/sign-in/{token}", get(sign_in::sign_in))
        .merge(signed_in)
        .with_state(portal)
}

/// Lets through only signed-in browsers, with their application, within its
/// budget; a change only with the session's CSRF token and not in a read-only
/// session. Every answer may be framed by the application's sites only.
async fn guard(State(portal): Shared, request: Request, next: Next) -> Response {
    let Some(session) = portal.sessions.find(request.headers()) else {
        return sign_in::signed_out();
    };
    let id = session.principal.application_id.clone();
    let application = match answer(applications::get(portal.api(), Path(id)).await) {
        Ok(application) => application,
        Err(error) => return Failed::from(error).into_response(),
    };
    let ancestors = frame_ancestors(&application);
    // Spent once the application is known, so that the refusal may be shown
    // in the application's frame.
    if let Err(refusal) = portal.budget.spend(&session.principal.application_id) {
        return framed_by(refusal.into_response(), ancestors);
    }
    let mut request = request;
    if request.method() == Method::POST {
        if session.principal.read_only {
            let refused = ApiError::new(StatusCode::FORBIDDEN, "this portal is read-only");
            return framed_by(Failed::from(refused).into_response(), ancestors);
        }
        request = match csrf::checked(request, &session.csrf).await {
            Ok(request) => request,
            Err(refused) => return framed_by(refused, ancestors),
        };
    }
    request.extensions_mut().insert(Visit {
        session,
        application,
    });
    framed_by(next.run(request).await, ancestors)
}

/// The `frame-ancestors` directive of an application (its API view): the
/// origins it lists (validated when saved), or `'none'`.
fn frame_ancestors(application: &Value) -> HeaderValue {
    let origins: Vec<&str> = application["portal"]["frame_ancestors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let sources = match origins.is_empty() {
        true => "'none'".to_string(),
        false => origins.join(" "),
    };
    HeaderValue::try_from(format!("frame-ancestors {sources}"))
        .unwrap_or(HeaderValue::from_static("frame-ancestors 'none'"))
}

fn framed_by(mut response: Response, ancestors: HeaderValue) -> Response {
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, ancestors);
    response
}

impl Portal {
    /// A signed-in page of `section` (a `NAV` href), in the application's brand.
    fn page(&self, visit: &Visit, section: &str, title: &str, content: Markup) -> Html<String> {
        let portal = &visit.application["portal"];
        let brand = portal["name"]
            .as_str()
            .or(visit.application["name"].as_str())
            .unwrap_or_default();
        let chrome = layout::Chrome {
            brand,
            nav: &NAV,
            sign_out: "/portal/sign-out",
            csrf: &visit.session.csrf,
            look: layout::Look {
                logo_url: portal["logo_url"].as_str(),
                accent: portal["primary_color"].as_str(),
                theme: portal["theme"].as_str(),
            },
        };
        Html(layout::page(&chrome, section, title, content).into_string())
    }

    fn api(&self) -> State<Arc<ApiState>> {
        State(self.api.clone())
    }
}

/// An object a route names (`{id}`), read through the API and checked to be
/// the session's application's (else a 404), before the handler runs: a
/// handler taking one cannot skip the check.
struct Mine<K> {
    id: String,
    /// The API's view of it.
    object: Value,
    kind: PhantomData<K>,
}

/// A kind of object a portal route may name.
trait Kind {
    /// As the 404 names it.
    const NAME: &'static str;
    /// The field of its API view that names its application.
    const APPLICATION: &'static str;

    fn read(api: State<Arc<ApiState>>, id: String)
        -> impl Future<Output = ApiResult<Value>> + Send;
}

impl<K: Kind> FromRequestParts<Arc<Portal>> for Mine<K> {
    type Rejection = Failed;

    async fn from_request_parts(parts: &mut Parts, portal: &Arc<Portal>) -> Result<Self, Failed> {
        let Path(id) = Path::<String>::from_request_parts(parts, portal)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        let visit = parts.extensions.get::<Visit>().cloned();
        let visit = visit.expect("portal routes are behind the guard");
        let object = K::read(portal.api(), id.clone()).await?;
        let object = visit.owns(object, K::APPLICATION, K::NAME, &id)?;
        Ok(Mine {
            id,
            object,
            kind: PhantomData,
        })
    }
}

/// The portal's pages.
struct PortalHome;

impl Home for PortalHome {
    const BRAND: &'static str = "Portal";
    const HOME: (&'static str, &'static str) = (NAV[0].0, "Back to the portal");
}

/// A failed portal page.
type Failed = FailedPage<PortalHome>;

/// A posted form's fields, repeated names kept (a list of checkboxes).
struct Posted(Vec<(String, String)>);

impl Posted {
    fn of(body: &[u8]) -> Posted {
        Posted(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's value, unless absent or blank.
    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim())
    }

    fn all(&self, name: &str) -> Vec<String> {
        let named = self.0.iter().filter(|(key, _)| key == name);
        named.map(|(_, value)| value.clone()).collect()
    }
}
