//! Sign-in links of the customer portal: a random token bound to one
//! application and its features, kept in memory until it is opened once or
//! expires (a restart forgets them: the product asks for a new one).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// At most this many unopened links are kept: issuing past it drops the one
/// closest to expiry, so a flood of requests cannot grow memory unbounded.
const MAX_LINKS: usize = 10_000;

/// What a portal session may reach: one application, maybe read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub application_id: String,
    pub read_only: bool,
}

#[derive(Default)]
pub struct Links {
    unopened: Mutex<HashMap<String, (Grant, Instant)>>,
}

impl Links {
    /// A new link's token, valid for `lifetime`.
    pub fn issue(&self, grant: Grant, lifetime: Duration) -> String {
        let token = super::super::session::random_token();
        let now = Instant::now();
        let mut unopened = self.unopened.lock();
        unopened.retain(|_, (_, expires)| *expires > now);
        if unopened.len() >= MAX_LINKS {
            let soonest = unopened
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(token, _)| token.clone());
            soonest.map(|token| unopened.remove(&token));
        }
        unopened.insert(token.clone(), (grant, now + lifetime));
        token
    }

    /// The grant of `token`, once: the link is spent whether or not it had expired.
    pub fn redeem(&self, token: &str) -> Option<Grant> {
        let (grant, expires) = self.unopened.lock().remove(token)?;
        (expires > Instant::now()).then_some(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            application_id: "app_1".into(),
            read_only: true,
        }
    }

    #[test]
    fn a_link_opens_once() {
        let links = Links::default();
        let token = links.issue(grant(), Duration::from_secs(60));
        assert_eq!(links.redeem(&token), Some(grant()));
        assert_eq!(links.redeem(&token), None);
        assert_eq!(links.redeem("unknown"), None);
    }

    #[test]
    fn an_expired_link_does_not_open() {
        let links = Links::default();
        let token = links.issue(grant(), Duration::ZERO);
        assert_eq!(links.redeem(&token), None);
    }
}
