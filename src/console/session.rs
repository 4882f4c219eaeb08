//! Server-side sessions: a random id in a cookie, everything else in memory.
//! Generic over who signed in (`P`), so that a console scoped to something
//! else than the whole gateway (the customer portal) reuses it as is.

use axum::http::{header, HeaderMap, HeaderValue};
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The console's cookie: only ever sent by the console's own pages.
pub const CONSOLE_COOKIE: Cookie = Cookie {
    name: "hookgate_console",
    path: "/console",
    framed: false,
};

/// Which cookie names a session, and where the browser sends it.
pub struct Cookie {
    pub name: &'static str,
    pub path: &'static str,
    /// Whether pages are shown in another site's iframe, where a browser
    /// sends only `SameSite=None` cookies, which it accepts only with
    /// `Secure`, that is over TLS. Over plain HTTP such a session is
    /// `SameSite=Lax` (a top-level page or a same-site frame).
    pub framed: bool,
}

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
    cookie: Cookie,
}

impl<P: Clone> Sessions<P> {
    pub fn new(idle: Duration, cookie: Cookie) -> Sessions<P> {
        Sessions {
            live: Mutex::default(),
            idle,
            cookie,
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
        let id = cookie_value(headers, self.cookie.name)?;
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

    /// The `Set-Cookie` value for `session`: unreadable to scripts, only sent
    /// to its own pages, never from another site unless the pages are
    /// framed, and only over TLS when the browser reached us over TLS
    /// (through a proxy that says so).
    pub fn cookie(&self, session: &Session<P>, secure: bool) -> HeaderValue {
        self.set_cookie(&session.id, self.idle.as_secs(), secure)
    }

    /// The `Set-Cookie` value that makes the browser forget its session.
    pub fn expired_cookie(&self, secure: bool) -> HeaderValue {
        self.set_cookie("", 0, secure)
    }

    fn set_cookie(&self, value: &str, max_age: u64, secure: bool) -> HeaderValue {
        set_cookie(&self.cookie, value, max_age, secure)
    }
}

/// The `Set-Cookie` value of `cookie`: unreadable to scripts, sent from
/// another site only to framed pages, and `Secure` when `secure`.
pub fn set_cookie(cookie: &Cookie, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let Cookie { name, path, framed } = cookie;
    let same_site = match (framed, secure) {
        (false, _) => "Strict",
        (true, true) => "None",
        (true, false) => "Lax",
    };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite={same_site}; Path={path}; Max-Age={max_age}{secure}"
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

/// 256 random bits as hex: unguessable session ids, CSRF tokens and links.
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
        let sessions = Sessions::new(Duration::from_secs(60), CONSOLE_COOKIE);
        let session = sessions.start(7usize);
        let headers = with_cookie(&format!("other=1; hookgate_console={}", session.id));
        let found = sessions.find(&headers).expect("the session is live");
        assert_eq!((found.principal, found.csrf), (7, session.csrf));
        sessions.end(&session.id);
        assert!(sessions.find(&headers).is_none());
    }

    #[test]
    fn an_expired_session_is_not_found() {
        let sessions = Sessions::new(Duration::ZERO, CONSOLE_COOKIE);
        let session = sessions.start(());
        assert!(sessions
            .find(&with_cookie(&format!("hookgate_console={}", session.id)))
            .is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_tls() {
        let sessions = Sessions::new(Duration::from_secs(60), CONSOLE_COOKIE);
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

    #[test]
    fn a_framed_cookie_crosses_sites_only_over_tls() {
        let framed = Cookie {
            name: "portal",
            path: "/portal",
            framed: true,
        };
        let sessions = Sessions::new(Duration::from_secs(60), framed);
        let session = sessions.start(());
        let cookie = |secure| {
            sessions
                .cookie(&session, secure)
                .to_str()
                .unwrap()
                .to_string()
        };
        assert!(cookie(true).contains("; SameSite=None; Path=/portal;"));
        assert!(cookie(true).ends_with("; Secure"));
        assert!(cookie(false).contains("; SameSite=Lax; Path=/portal;"));
    }
}
