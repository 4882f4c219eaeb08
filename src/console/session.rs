//! Server-side sessions: a random id in a cookie, everything else in memory.
//! Generic over who signed in (`P`), so that a console scoped to something
//! else than the whole gateway (the customer portal) reuses it as is.

use axum::http::{header, HeaderMap, HeaderValue};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The cookie naming a session.
pub const COOKIE: &str = "hookgate_console";

/// At most this many sessions are kept: signing in past it ends the one
/// closest to expiry, so a flood of sign-ins cannot grow memory unbounded.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Clone)]
pub struct Session<P> {
    pub id: String,
    /// Who signed in (the console: the index of the API key used).
    pub principal: P,
    /// Every form and htmx call that changes something must echo it.
    pub csrf: String,
    expires: Instant,
}

/// The sessions of one console, each valid for `idle` since its last use.
pub struct Sessions<P> {
    live: Mutex<HashMap<String, Session<P>>>,
    idle: Duration,
}

impl<P: Clone> Sessions<P> {
    pub fn new(idle: Duration) -> Sessions<P> {
        Sessions {
            live: Mutex::default(),
            idle,
        }
    }

    /// Starts a session for `principal`.
    pub fn start(&self, principal: P) -> Session<P> {
        let now = Instant::now();
        let session = Session {
            id: random_token(),
            principal,
            csrf: random_token(),
            expires: now + self.idle,
        };
        let mut live = self.live.lock();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            let soonest = live
                .values()
                .min_by_key(|s| s.expires)
                .map(|s| s.id.clone());
            soonest.map(|id| live.remove(&id));
        }
        live.insert(session.id.clone(), session.clone());
        session
    }

    /// The session the request's cookie names, if it has not expired; using
    /// it keeps it alive for another `idle`.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session<P>> {
        let id = cookie_value(headers, COOKIE)?;
        let now = Instant::now();
        let mut live = self.live.lock();
        let session = live.get_mut(id)?;
        if session.expires <= now {
            live.remove(id);
            return None;
        }
        session.expires = now + self.idle;
        Some(session.clone())
    }

    pub fn end(&self, id: &str) {
        self.live.lock().remove(id);
    }

    /// The `Set-Cookie` value for `session`: unreadable to scripts, never sent
    /// from another site, only to the console, and only over TLS when the
    /// browser reached us over TLS (through a proxy that says so).
    pub fn cookie(&self, session: &Session<P>, secure: bool) -> HeaderValue {
        let max_age = self.idle.as_secs();
        set_cookie((COOKIE, "/console"), &session.id, max_age, secure)
    }
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn expired_cookie(secure: bool) -> HeaderValue {
    set_cookie((COOKIE, "/console"), "", 0, secure)
}

/// A cookie `(name, path)` unreadable to scripts and never sent from another site.
pub fn set_cookie(
    (name, path): (&str, &str),
    value: &str,
    max_age: u64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure}"
    );
    HeaderValue::try_from(text).expect("a cookie of hex digits is a valid header")
}

/// Whether the browser reached us over TLS: we serve plain HTTP, so only a
/// TLS-terminating proxy in front can tell (`X-Forwarded-Proto: https`).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// 256 random bits as hex: unguessable session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::try_from(value).unwrap());
        headers
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let session = sessions.start(7usize);
        let headers = with_cookie(&format!("other=1; {COOKIE}={}", session.id));
        let found = sessions.find(&headers).expect("the session is live");
        assert_eq!((found.principal, found.csrf), (7, session.csrf));
        sessions.end(&session.id);
        assert!(sessions.find(&headers).is_none());
    }

    #[test]
    fn an_expired_session_is_not_found() {
        let sessions = Sessions::new(Duration::ZERO);
        let session = sessions.start(());
        assert!(sessions
            .find(&with_cookie(&format!("{COOKIE}={}", session.id)))
            .is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_tls() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let session = sessions.start(());
        let plain = sessions.cookie(&session, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("; HttpOnly; SameSite=Strict; Path=/console"));
        assert!(!plain.contains("Secure"));
        assert!(sessions
            .cookie(&session, true)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(over_tls(&proxied) && !over_tls(&HeaderMap::new()));
    }
}
