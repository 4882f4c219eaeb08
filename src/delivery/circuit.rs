//! Circuit breakers for outbound endpoints: after enough consecutive failures an
//! endpoint gets no attempts for a cool-down (open), then one trial attempt
//! (half-open) whose outcome closes the circuit or opens it again. Waiting
//! deliveries stay queued meanwhile; none is attempted, so none uses up a retry.
//!
//! The state lives in memory: after a restart every circuit starts closed and
//! the first failures open it again.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed {
        failures: u32,
    },
    Open {
        until_ms: u64,
    },
    /// The trial attempt is in flight.
    HalfOpen,
}

/// What a lane may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// As many attempts as its concurrency allows.
    Any,
    /// One attempt at a time (the half-open trial).
    One,
    /// Nothing before this time (ms).
    WaitUntil(u64),
}

/// The state shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

pub struct Circuits {
    /// Consecutive failures that open a circuit; 0 never opens one.
    threshold: u32,
    cooldown_ms: u64,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Circuits {
    pub fn new(threshold: u32, cooldown_ms: u64) -> Circuits {
        Circuits {
            threshold,
            cooldown_ms,
            breakers: Mutex::default(),
        }
    }

    fn breaker(&self, id: &str) -> Breaker {
        self.lock()
            .get(id)
            .copied()
            .unwrap_or(Breaker::Closed { failures: 0 })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Breaker>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the endpoint's lane may start at `now_ms`; an open circuit whose
    /// cool-down is over turns half-open here.
    pub fn permit(&self, id: &str, now_ms: u64) -> Permit {
        let mut breakers = self.lock();
        match breakers.get(id).copied() {
            None | Some(Breaker::Closed { .. }) => Permit::Any,
            Some(Breaker::HalfOpen) => Permit::One,
            Some(Breaker::Open { until_ms }) if now_ms < until_ms => Permit::WaitUntil(until_ms),
            Some(Breaker::Open { .. }) => {
                breakers.insert(id.to_string(), Breaker::HalfOpen);
                Permit::One
            }
        }
    }

    /// Takes an attempt's outcome into account.
    pub fn record(&self, id: &str, success: bool, now_ms: u64) {
        let next = match (self.breaker(id), success) {
            (_, true) => Breaker::Closed { failures: 0 },
            (Breaker::Closed { failures }, false)
                if self.threshold == 0 || failures + 1 < self.threshold =>
            {
                Breaker::Closed {
                    failures: failures + 1,
                }
            }
            // A late failure of an attempt started before the circuit opened.
            (open @ Breaker::Open { .. }, false) => open,
            (Breaker::Closed { .. } | Breaker::HalfOpen, false) => Breaker::Open {
                until_ms: now_ms + self.cooldown_ms,
            },
        };
        self.lock().insert(id.to_string(), next);
    }

    pub fn state(&self, id: &str, now_ms: u64) -> CircuitState {
        match self.breaker(id) {
            Breaker::Closed { .. } => CircuitState::Closed,
            Breaker::Open { until_ms } if now_ms < until_ms => CircuitState::Open,
            Breaker::Open { .. } | Breaker::HalfOpen => CircuitState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_recovers_through_a_trial() {
        let circuits = Circuits::new(3, 1000);
        for _ in 0..2 {
            circuits.record("ept", false, 0);
        }
        assert_eq!(circuits.state("ept", 0), CircuitState::Closed);
        circuits.record("ept", false, 10);
        assert_eq!(circuits.state("ept", 10), CircuitState::Open);
        assert_eq!(circuits.permit("ept", 500), Permit::WaitUntil(1010));
        assert_eq!(circuits.permit("ept", 1010), Permit::One);
        assert_eq!(circuits.state("ept", 1010), CircuitState::HalfOpen);
        circuits.record("ept", false, 1020);
        assert_eq!(circuits.permit("ept", 1500), Permit::WaitUntil(2020));
        assert_eq!(circuits.permit("ept", 2020), Permit::One);
        circuits.record("ept", true, 2030);
        assert_eq!(circuits.state("ept", 2030), CircuitState::Closed);
        assert_eq!(circuits.permit("ept", 2030), Permit::Any);
    }

    #[test]
    fn a_success_resets_the_count_and_zero_never_opens() {
        let circuits = Circuits::new(2, 1000);
        circuits.record("ept", false, 0);
        circuits.record("ept", true, 0);
        circuits.record("ept", false, 0);
        assert_eq!(circuits.state("ept", 0), CircuitState::Closed);
        let never = Circuits::new(0, 1000);
        (0..100).for_each(|_| never.record("ept", false, 0));
        assert_eq!(never.permit("ept", 0), Permit::Any);
    }
}
