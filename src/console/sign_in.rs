//! Signing in with an API key (a form POST), and out.
//!
//! The sign-in form has no session yet to hold a CSRF token, so it carries
//! a double-submit one: the form's page sets it as a cookie and as a hidden
//! field, and a sign-in must send both, equal. Another site can make a
//! browser post the form, but cannot read or set our cookie, so it cannot
//! sign a browser in (to a key of its choosing) behind the user's back.

use super::csrf;
use super::session::{cookie_value, over_tls, random_token, set_cookie, Cookie};
use super::{layout, Shared, Signed, BRAND, NAV, SIGN_IN};
use crate::api::{locked_out, Refused};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use std::net::SocketAddr;

/// The cookie holding the sign-in form's token, sent only to the form.
const TOKEN_COOKIE: Cookie = Cookie {
    name: "hookgate_sign_in",
    path: SIGN_IN,
    framed: false,
};

/// How long a sign-in form stays usable.
const TOKEN_MAX_AGE_SECS: u64 = 60 * 60;

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
    #[serde(default)]
    csrf: String,
}

/// The form, with a fresh token in its field and its cookie.
pub async fn form(headers: HeaderMap) -> Response {
    let token = random_token();
    let cookie = set_cookie(
        &TOKEN_COOKIE,
        &token,
        TOKEN_MAX_AGE_SECS,
        over_tls(&headers),
    );
    let page = sign_in_page(&token, None);
    ([(header::SET_COOKIE, cookie)], Html(page.into_string())).into_response()
}

/// Checks the key as the API does (failed logins count against the
/// client's address alike), then starts a session and sets its cookie.
pub async fn sign_in(
    State(console): Shared,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let Some(token) = cookie_value(&headers, TOKEN_COOKIE.name).filter(|t| !t.is_empty()) else {
        return csrf::refused();
    };
    if !csrf::matches(&form.csrf, token) {
        return csrf::refused();
    }
    let client = client.map(|Extension(ConnectInfo(address))| address.ip());
    match console.api.keys.admit(Some(form.key.trim()), client) {
        Ok(key) => {
            let session = console.sessions.start(key);
            let cookie = console.sessions.cookie(&session, over_tls(&headers));
            let mut answer = Redirect::to(NAV[0].0).into_response();
            answer.headers_mut().insert(header::SET_COOKIE, cookie);
            answer
        }
        Err(Refused::LockedOut { retry_after }) => locked_out(retry_after),
        Err(Refused::WrongKey) => {
            let page = sign_in_page(token, Some("That is not an API key of this gateway."));
            (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response()
        }
    }
}

pub async fn sign_out(
    State(console): Shared,
    Extension(session): Signed,
    headers: HeaderMap,
) -> Response {
    console.sessions.end(&session.id);
    let mut answer = Redirect::to(SIGN_IN).into_response();
    answer.headers_mut().insert(
        header::SET_COOKIE,
        console.sessions.expired_cookie(over_tls(&headers)),
    );
    answer
}

fn sign_in_page(token: &str, problem: Option<&str>) -> Markup {
    let content = html! {
        form.sign-in method="post" action=(SIGN_IN) {
            (layout::token_field(token))
            h1 { "Sign in to " (BRAND) }
            @if let Some(problem) = problem {
                p.notice.error role="alert" { (problem) }
            }
            label {
                "API key"
                input #key type="password" name="key" required autocomplete="current-password" autofocus;
            }
            button.primary type="submit" { "Sign in" }
        }
    };
    layout::bare(BRAND, "Sign in", content)
}
