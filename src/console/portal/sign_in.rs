//! Signing in by a portal link (once), and out.

use super::{answer, frame_ancestors, framed_by, layout, Failed, Shared, Visiting, NAV};
use crate::api::applications;
use crate::api::error::ApiError;
use crate::console::session::over_tls;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;

/// A page nobody may frame: no application is known to say who may.
const FRAMED_BY_NONE: HeaderValue = HeaderValue::from_static("frame-ancestors 'none'");

/// Spends the link and starts a session of its application.
pub async fn sign_in(
    State(portal): Shared,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(grant) = portal.api.portal_links.redeem(&token) else {
        let gone = ApiError::new(
            StatusCode::GONE,
            "this portal link was used already or has expired: ask for a new one",
        );
        return framed_by(Failed::from(gone).into_response(), FRAMED_BY_NONE);
    };
    let id = Path(grant.application_id.clone());
    let application = match answer(applications::get(portal.api(), id).await) {
        Ok(application) => application,
        Err(error) => return framed_by(Failed::from(error).into_response(), FRAMED_BY_NONE),
    };
    let session = portal.sessions.start(grant);
    let cookie = portal.sessions.cookie(&session, over_tls(&headers));
    let mut answer = Redirect::to(NAV[0].0).into_response();
    answer.headers_mut().insert(header::SET_COOKIE, cookie);
    framed_by(answer, frame_ancestors(&application))
}

pub async fn sign_out(
    State(portal): Shared,
    Extension(visit): Visiting,
    headers: HeaderMap,
) -> Response {
    portal.sessions.end(&visit.session.id);
    let cookie = portal.sessions.expired_cookie(over_tls(&headers));
    let content = html! {
        h1 { "Signed out" }
        p { "Open the portal again from where you came." }
    };
    let page = layout::bare("Portal", "Signed out", content);
    ([(header::SET_COOKIE, cookie)], Html(page.into_string())).into_response()
}

/// The answer without a live session: nothing to sign in with here, the
/// product hands out links.
pub fn signed_out() -> Response {
    let ended = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "no portal session (it ended, or this browser has none): open the portal again from where you came",
    );
    framed_by(Failed::from(ended).into_response(), FRAMED_BY_NONE)
}
