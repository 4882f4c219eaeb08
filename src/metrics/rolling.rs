//! The console's live rates: per connection events created, per destination
//! attempts, successes and latency, in 60 one-minute buckets kept in memory
//! (no store scan). Counted whether or not `/metrics` is served: the console
//! reads them. Counting takes no lock: a lock-free read of the name → window
//! map (written once per new name) and relaxed atomic adds.

use super::LATENCY_BUCKETS;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many minutes a window remembers.
pub const MINUTES: usize = 60;

/// A bucket's minute while one thread clears it for the next.
const CLEARING: u64 = u64::MAX;

/// One minute of one connection or destination.
#[derive(Default)]
struct Minute {
    /// Minutes since the Unix epoch this bucket counts; older is stale.
    at: AtomicU64,
    count: AtomicU64,
    successes: AtomicU64,
    /// Attempts per `LATENCY_BUCKETS` bound, the last slot above them all.
    latencies: [AtomicU64; LATENCY_BUCKETS.len() + 1],
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
            minutes: std::array::from_fn(|_| Minute::default()),
        }
    }
}

impl Window {
    /// The bucket of minute `now`, cleared first if it held an older minute.
    /// None for a minute older than the bucket's (a clock set back).
    fn bucket(&self, now: u64) -> Option<&Minute> {
        let minute = &self.minutes[now as usize % MINUTES];
        loop {
            let at = minute.at.load(Acquire);
            if at == CLEARING {
                // Another thread is clearing it for a new minute: a few stores.
                std::hint::spin_loop();
                continue;
            }
            if at >= now {
                return (at == now).then_some(minute);
            }
            // Whoever moves the bucket on clears it before anyone counts in
            // the new minute: others wait while it reads CLEARING, so no
            // count is lost (three attempts at once in a new window were
            // counted as two when the clear followed the move).
            if minute
                .at
                .compare_exchange(at, CLEARING, Acquire, Relaxed)
                .is_ok()
            {
                minute.clear();
                minute.at.store(now, Release);
                return Some(minute);
            }
        }
    }

    /// Counts one event (no outcome, no latency) in minute `now`.
    pub fn count(&self, now: u64) {
        if let Some(minute) = self.bucket(now) {
            minute.count.fetch_add(1, Relaxed);
        }
    }

    /// Counts one attempt in minute `now`.
    pub fn attempt(&self, now: u64, success: bool, latency_ms: u64) {
        let Some(minute) = self.bucket(now) else {
            return;
        };
        minute.count.fetch_add(1, Relaxed);
        minute.successes.fetch_add(u64::from(success), Relaxed);
        let seconds = latency_ms as f64 / 1000.0;
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        minute.latencies[slot].fetch_add(1, Relaxed);
    }

    /// The last `MINUTES` minutes up to `now`, oldest first.
    pub fn series(&self, now: u64) -> Vec<MinuteRates> {
        (now + 1 - MINUTES as u64..=now)
            .map(|at| {
                let minute = &self.minutes[at as usize % MINUTES];
                if minute.at.load(Relaxed) == at {
                    minute.rates()
                } else {
                    MinuteRates::default()
                }
            })
            .collect()
    }
}

impl Minute {
    fn clear(&self) {
        let counters = [&self.count, &self.successes];
        for counter in counters.into_iter().chain(&self.latencies) {
            counter.store(0, Relaxed);
        }
    }

    fn rates(&self) -> MinuteRates {
        let latencies = self.latencies.each_ref().map(|n| n.load(Relaxed));
        MinuteRates {
            count: self.count.load(Relaxed),
            successes: self.successes.load(Relaxed),
            p95_seconds: p95(&latencies),
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
    connections: Windows,
    destinations: Windows,
}

impl Rates {
    pub fn event_created(&self, connection: &str) {
        self.connections
            .with(connection, |window| window.count(current_minute()));
    }

    pub fn attempt(&self, destination: &str, success: bool, latency_ms: u64) {
        self.destinations.with(destination, |window| {
            window.attempt(current_minute(), success, latency_ms)
        });
    }

    /// The connection's events per minute, oldest first.
    pub fn connection(&self, name: &str) -> Vec<MinuteRates> {
        self.connections.series(name)
    }

    /// The destination's attempts per minute, oldest first.
    pub fn destination(&self, name: &str) -> Vec<MinuteRates> {
        self.destinations.series(name)
    }
}

/// Windows by name: read without a lock; a name seen for the first time
/// copies the map (once per configured name).
#[derive(Default)]
struct Windows(ArcSwap<HashMap<String, Arc<Window>>>);

impl Windows {
    fn with(&self, name: &str, count: impl FnOnce(&Window)) {
        if let Some(window) = self.0.load().get(name) {
            return count(window);
        }
        self.0.rcu(|windows| {
            let mut windows = HashMap::clone(windows);
            windows.entry(name.to_owned()).or_default();
            windows
        });
        count(&self.0.load()[name]);
    }

    fn series(&self, name: &str) -> Vec<MinuteRates> {
        match self.0.load().get(name) {
            Some(window) => window.series(current_minute()),
            None => Window::default().series(current_minute()),
        }
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
        let window = Window::default();
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
        let window = Window::default();
        window.attempt(NOW, true, 5);
        window.attempt(NOW + MINUTES as u64, false, 5);
        let later = window.series(NOW + MINUTES as u64);
        assert_eq!(later[MINUTES - 1].count, 1);
        assert_eq!(later[MINUTES - 1].successes, 0);
        assert_eq!(later.iter().map(|m| m.count).sum::<u64>(), 1);
    }

    #[test]
    fn minutes_older_than_the_window_are_not_shown() {
        let window = Window::default();
        window.count(NOW);
        let series = window.series(NOW + MINUTES as u64 + 5);
        assert!(series.iter().all(|minute| minute.count == 0));
    }

    #[test]
    fn p95_is_the_bound_of_the_bucket_reaching_95_percent() {
        let window = Window::default();
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
        let window = Window::default();
        window.attempt(NOW, false, 120_000);
        assert_eq!(window.series(NOW)[MINUTES - 1].p95_seconds, Some(60.0));
        assert_eq!(window.series(NOW)[MINUTES - 2].p95_seconds, None);
    }

    #[test]
    fn counts_from_many_threads_in_one_minute_are_all_kept() {
        let window = Window::default();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| (0..10_000).for_each(|_| window.attempt(NOW, true, 3)));
            }
        });
        let minute = window.series(NOW)[MINUTES - 1];
        assert_eq!((minute.count, minute.successes), (40_000, 40_000));
    }

    #[test]
    fn the_first_counts_of_a_new_minute_are_all_kept_when_they_come_at_once() {
        // The thread that moves a bucket to a new minute clears it; counts
        // that others add meanwhile must land after the clear, not before.
        for _ in 0..500 {
            let window = Window::default();
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        start.wait();
                        window.attempt(NOW, true, 3);
                    });
                }
            });
            assert_eq!(window.series(NOW)[MINUTES - 1].count, 4);
        }
    }

    #[test]
    fn a_minute_older_than_its_bucket_is_not_counted_into_it() {
        let window = Window::default();
        window.count(NOW + MINUTES as u64);
        window.count(NOW);
        let later = window.series(NOW + MINUTES as u64);
        assert_eq!(later[MINUTES - 1].count, 1);
    }

    #[test]
    fn rates_are_kept_by_name() {
        let rates = Rates::default();
        rates.event_created("a");
        rates.event_created("a");
        rates.event_created("b");
        let last = |series: Vec<MinuteRates>| series[MINUTES - 1].count;
        assert_eq!(
            [
                rates.connection("a"),
                rates.connection("b"),
                rates.connection("c")
            ]
            .map(last),
            [2, 1, 0]
        );
    }
}
