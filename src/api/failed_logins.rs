//! A bound on failed API logins per client address: without it, anyone who
//! can reach the API listener may guess keys as fast as the server answers.
//! Once a client has failed `limit` times within a minute, every call it
//! makes with a key is refused (429, `Retry-After`) until that minute ends,
//! the right key included: otherwise a guess that hits would still tell
//! itself apart from the misses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Clients remembered at most; beyond it, those whose minute is over are
/// forgotten first (a flood of addresses cannot grow the map without bound).
const MAX_CLIENTS: usize = 10_000;

pub struct FailedLogins {
    limit: u32,
    clients: Mutex<HashMap<IpAddr, Tally>>,
}

/// One client's failures in its current window.
#[derive(Clone, Copy)]
struct Tally {
    since: Instant,
    failures: u32,
}

impl FailedLogins {
    /// At most `limit` failed logins per client per minute (at least 1).
    pub fn new(limit: u32) -> FailedLogins {
        FailedLogins {
            limit: limit.max(1),
            clients: Mutex::default(),
        }
    }

    /// How long `client` must wait before it may try a key again, when it
    /// has used up its failures.
    pub fn locked_out(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let tally = clients.get(&client)?;
        let ends = tally.since + WINDOW;
        (tally.failures >= self.limit && now < ends).then(|| ends - now)
    }

    pub fn record_failure(&self, client: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, tally| now < tally.since + WINDOW);
            if clients.len() >= MAX_CLIENTS {
                // Every remembered client failed within the minute: the
                // oldest tally makes room.
                if let Some(oldest) = clients
                    .iter()
                    .min_by_key(|(_, t)| t.since)
                    .map(|(ip, _)| *ip)
                {
                    clients.remove(&oldest);
                }
            }
        }
        let tally = clients.entry(client).or_insert(Tally {
            since: now,
            failures: 0,
        });
        if now >= tally.since + WINDOW {
            *tally = Tally {
                since: now,
                failures: 0,
            };
        }
        tally.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_locked_out_after_its_failures_until_its_minute_ends() {
        let logins = FailedLogins::new(3);
        let (client, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(logins.locked_out(client, start), None);
            logins.record_failure(client, start);
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            logins.locked_out(client, later),
            Some(Duration::from_secs(40))
        );
        assert_eq!(logins.locked_out(other, later), None, "per client");
        assert_eq!(logins.locked_out(client, start + WINDOW), None);
        logins.record_failure(client, start + WINDOW);
        assert_eq!(
            logins.locked_out(client, start + WINDOW),
            None,
            "a new window"
        );
    }

    #[test]
    fn remembered_clients_stay_bounded() {
        let logins = FailedLogins::new(1);
        let now = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            logins.record_failure(IpAddr::from(i.to_be_bytes()), now);
        }
        assert_eq!(logins.clients.lock().unwrap().len(), MAX_CLIENTS);
    }
}
