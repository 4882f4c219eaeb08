//! The console's live rates: per connection events created, per destination
//! attempts, successes and latency, in 60 one-minute buckets kept in memory
//! (no store scan). Counted whether or not `/metrics` is served: the console
//! reads them.

use super::LATENCY_BUCKETS;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many minutes a window remembers.
pub const MINUTES: usize = 60;

/// One minute of one connection or destination.
#[derive(Clone, Copy, Default)]
struct Minute {
    /// Minutes since the Unix epoch this bucket counts; older is stale.
    at: u64,
    count: u64,
    successes: u64,
    /// Attempts per `LATENCY_BUCKETS` bound, the last slot above them all.
    latencies: [u64; LATENCY_BUCKETS.len() + 1],
}

/// A ring of one-minute buckets: the bucket of minute `m` is `m % MINUTES`,
/// reused (cleared) when a later minute comes round to it.
pub struct Window {
    minutes: [Minute; MINUTES],
}

/// What a window shows for one minute.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MinuteRates {
    pub count: u64,
    pub successes: u64,
    /// The upper bound of the bucket holding the 95th percentile latency,
    /// in seconds; `None` without attempts.
    pub p95_seconds: Option<f64>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            minutes: [Minute::default(); MINUTES],
        }
    }
}

impl Window {
    fn bucket(&mut self, now: u64) -> &mut Minute {
        let minute = &mut self.minutes[now as usize % MINUTES];
        if minute.at != now {
            *minute = Minute {
                at: now,
                ..Minute::default()
            };
        }
        minute
    }

    /// Counts one event (no outcome, no latency) in minute `now`.
    pub fn count(&mut self, now: u64) {
        self.bucket(now).count += 1;
    }

    /// Counts one attempt in minute `now`.
    pub fn attempt(&mut self, now: u64, success: bool, latency_ms: u64) {
        let minute = self.bucket(now);
        minute.count += 1;
        minute.successes += u64::from(success);
        let seconds = latency_ms as f64 / 1000.0;
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        minute.latencies[slot] += 1;
    }

    /// The last `MINUTES` minutes up to `now`, oldest first.
    pub fn series(&self, now: u64) -> Vec<MinuteRates> {
        (now + 1 - MINUTES as u64..=now)
            .map(|at| {
                let minute = &self.minutes[at as usize % MINUTES];
                if minute.at == at {
                    minute.rates()
                } else {
                    MinuteRates::default()
                }
            })
            .collect()
    }
}

impl Minute {
    fn rates(&self) -> MinuteRates {
        MinuteRates {
            count: self.count,
            successes: self.successes,
            p95_seconds: p95(&self.latencies),
        }
    }
}

/// The bound of the bucket where 95 % of the latencies are reached (the
/// largest bound when above them all).
fn p95(latencies: &[u64]) -> Option<f64> {
    let total: u64 = latencies.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (total * 95).div_ceil(100);
    let mut seen = 0;
    let slot = latencies.iter().position(|n| {
        seen += n;
        seen >= rank
    })?;
    Some(LATENCY_BUCKETS[slot.min(LATENCY_BUCKETS.len() - 1)])
}

/// Every connection's and destination's window, by name (config names:
/// bounded like the metrics' labels).
#[derive(Default)]
pub struct Rates {
    connections: Mutex<HashMap<String, Window>>,
    destinations: Mutex<HashMap<String, Window>>,
}

impl Rates {
    pub fn event_created(&self, connection: &str) {
        with_window(&self.connections, connection, |window| {
            window.count(current_minute())
        });
    }

    pub fn attempt(&self, destination: &str, success: bool, latency_ms: u64) {
        with_window(&self.destinations, destination, |window| {
            window.attempt(current_minute(), success, latency_ms)
        });
    }

    /// The connection's events per minute, oldest first.
    pub fn connection(&self, name: &str) -> Vec<MinuteRates> {
        series(&self.connections, name)
    }

    /// The destination's attempts per minute, oldest first.
    pub fn destination(&self, name: &str) -> Vec<MinuteRates> {
        series(&self.destinations, name)
    }
}

fn with_window(
    windows: &Mutex<HashMap<String, Window>>,
    name: &str,
    change: impl FnOnce(&mut Window),
) {
    let mut windows = windows.lock().expect("no panic while counting");
    match windows.get_mut(name) {
        Some(window) => change(window),
        None => change(windows.entry(name.to_owned()).or_default()),
    }
}

fn series(windows: &Mutex<HashMap<String, Window>>, name: &str) -> Vec<MinuteRates> {
    let windows = windows.lock().expect("no panic while counting");
    // Read under the lock rather than copying the window out.
    match windows.get(name) {
        Some(window) => window.series(current_minute()),
        None => Window::default().series(current_minute()),
    }
}

fn current_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 29_000_000;

    #[test]
    fn counts_land_in_their_minute_oldest_first() {
        let mut window = Window::default();
        window.count(NOW - 2);
        window.count(NOW);
        window.count(NOW);
        let counts: Vec<u64> = window.series(NOW).iter().map(|m| m.count).collect();
        assert_eq!(counts.len(), MINUTES);
        assert_eq!(&counts[MINUTES - 3..], &[1, 0, 2]);
        assert_eq!(counts.iter().sum::<u64>(), 3);
    }

    #[test]
    fn a_bucket_is_cleared_when_its_slot_comes_round_again() {
        let mut window = Window::default();
        window.attempt(NOW, true, 5);
        window.attempt(NOW + MINUTES as u64, false, 5);
        let later = window.series(NOW + MINUTES as u64);
        assert_eq!(later[MINUTES - 1].count, 1);
        assert_eq!(later[MINUTES - 1].successes, 0);
        assert_eq!(later.iter().map(|m| m.count).sum::<u64>(), 1);
    }

    #[test]
    fn minutes_older_than_the_window_are_not_shown() {
        let mut window = Window::default();
        window.count(NOW);
        let series = window.series(NOW + MINUTES as u64 + 5);
        assert!(series.iter().all(|minute| minute.count == 0));
    }

    #[test]
    fn p95_is_the_bound_of_the_bucket_reaching_95_percent() {
        let mut window = Window::default();
        for _ in 0..95 {
            window.attempt(NOW, true, 3);
        }
        window.attempt(NOW, true, 400);
        let minute = window.series(NOW)[MINUTES - 1];
        assert_eq!(minute.p95_seconds, Some(0.005));
        for _ in 0..10 {
            window.attempt(NOW, false, 400);
        }
        let minute = window.series(NOW)[MINUTES - 1];
        assert_eq!(minute.p95_seconds, Some(0.5));
        assert_eq!((minute.count, minute.successes), (106, 96));
    }

    #[test]
    fn latencies_above_every_bound_report_the_largest() {
        let mut window = Window::default();
        window.attempt(NOW, false, 120_000);
        assert_eq!(window.series(NOW)[MINUTES - 1].p95_seconds, Some(60.0));
        assert_eq!(window.series(NOW)[MINUTES - 2].p95_seconds, None);
    }
}
