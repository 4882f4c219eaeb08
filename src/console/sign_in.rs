//! Signing in with an API key (a form POST), and out.

use super::session::over_tls;
use super::{layout, Shared, Signed, BRAND, NAV, SIGN_IN};
use crate::api::{locked_out, Refused};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

pub async fn form() -> Html<String> {
    Html(sign_in_page(None).into_string())
}

/// Checks the key as the API does (failed logins count against the
/// client's address alike), then starts a session and sets its cookie.
pub async fn sign_in(
    State(console): Shared,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
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
            let page = sign_in_page(Some("That is not an API key of this gateway."));
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

fn sign_in_page(problem: Option<&str>) -> Markup {
    let content = html! {
        form.sign-in method="post" action=(SIGN_IN) {
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
