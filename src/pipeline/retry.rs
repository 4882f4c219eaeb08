//! The retry rule: when a failed attempt is tried again, and how long to wait.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryStrategy {
    /// Wait `interval` before every retry.
    Linear,
    /// Wait `interval`, then twice that, then four times, …
    Exponential,
}

/// One entry of `response_status_codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StatusPattern {
    Exact(u16),
    Range(u16, u16),
    Above(u16, bool),
    Below(u16, bool),
}

impl StatusPattern {
    fn matches(&self, status: u16) -> bool {
        match *self {
            StatusPattern::Exact(code) => status == code,
            StatusPattern::Range(low, high) => (low..=high).contains(&status),
            StatusPattern::Above(code, inclusive) => status > code || (inclusive && status == code),
            StatusPattern::Below(code, inclusive) => status < code || (inclusive && status == code),
        }
    }
}

/// Which response statuses a retry applies to: Hookdeck's `"500-599"`, `"429"`,
/// `"!404"`, `">400"`, `">=500"`, `"<300"`, `"<=299"`.
/// A status matches when it matches any positive pattern (or there are none) and
/// no negated one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusMatcher {
    include: Vec<StatusPattern>,
    exclude: Vec<StatusPattern>,
}

impl StatusMatcher {
    pub fn parse(patterns: &[String]) -> Result<StatusMatcher, String> {
        let mut matcher = StatusMatcher::default();
        for raw in patterns {
            let text = raw.trim();
            match text.strip_prefix('!') {
                Some(rest) => matcher.exclude.push(parse_pattern(rest, raw)?),
                None => matcher.include.push(parse_pattern(text, raw)?),
            }
        }
        Ok(matcher)
    }

    pub fn matches(&self, status: u16) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|p| p.matches(status));
        included && !self.exclude.iter().any(|p| p.matches(status))
    }
}

fn parse_pattern(text: &str, raw: &str) -> Result<StatusPattern, String> {
    let code = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("\"{raw}\" is not a status code, range (\"500-599\"), negation (\"!404\") or comparison (\">400\")"))
    };
    if let Some(rest) = text.strip_prefix(">=") {
        return Ok(StatusPattern::Above(code(rest)?, true));
    }
    if let Some(rest) = text.strip_prefix("<=") {
        return Ok(StatusPattern::Below(code(rest)?, true));
    }
    if let Some(rest) = text.strip_prefix('>') {
        return Ok(StatusPattern::Above(code(rest)?, false));
    }
    if let Some(rest) = text.strip_prefix('<') {
        return Ok(StatusPattern::Below(code(rest)?, false));
    }
    if let Some((low, high)) = text.split_once('-') {
        let (low, high) = (code(low)?, code(high)?);
        if low > high {
            return Err(format!("\"{raw}\": the range is empty ({low} > {high})"));
        }
        return Ok(StatusPattern::Range(low, high));
    }
    Ok(StatusPattern::Exact(code(text)?))
}

/// A connection's retry rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub strategy: RetryStrategy,
    /// Most automatic retries after the first attempt.
    pub count: u32,
    pub interval: Duration,
    pub statuses: StatusMatcher,
}

/// The most a single wait may grow to, so that exponential backoff with a large
/// count never overflows or schedules an event for next century.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

impl RetryPolicy {
    /// How long to wait before the next try, after `attempts_made` attempts of
    /// which the last ended with `status` (None: no response, e.g. a timeout or a
    /// refused connection — always worth retrying). None: give up.
    pub fn next_wait(&self, attempts_made: u32, status: Option<u16>) -> Option<Duration> {
        let retries_made = attempts_made.saturating_sub(1);
        if retries_made >= self.count {
            return None;
        }
        if let Some(code) = status {
            if !self.statuses.matches(code) {
                return None;
            }
        }
        let wait = match self.strategy {
            RetryStrategy::Linear => self.interval,
            RetryStrategy::Exponential => self
                .interval
                .saturating_mul(2u32.saturating_pow(retries_made.min(31))),
        };
        Some(wait.min(MAX_RETRY_WAIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> StatusMatcher {
        StatusMatcher::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn ranges_exact_and_comparisons() {
        let m = matcher(&["500-599", "429"]);
        assert!(m.matches(500) && m.matches(503) && m.matches(599) && m.matches(429));
        assert!(!m.matches(404) && !m.matches(499));
        let m = matcher(&[">400"]);
        assert!(m.matches(401) && !m.matches(400));
        let m = matcher(&[">=500", "<=299"]);
        assert!(m.matches(500) && m.matches(200) && !m.matches(404));
        let m = matcher(&["<300"]);
        assert!(m.matches(299) && !m.matches(300));
    }

    #[test]
    fn negation_excludes_and_alone_means_everything_else() {
        let m = matcher(&["!404"]);
        assert!(m.matches(500) && m.matches(400) && !m.matches(404));
        let m = matcher(&["400-599", "!404"]);
        assert!(m.matches(400) && !m.matches(404) && !m.matches(302));
    }

    #[test]
    fn empty_list_matches_every_status() {
        assert!(StatusMatcher::default().matches(418));
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_pattern() {
        for bad in ["abc", "99", "600", "599-500", ">x", ""] {
            let err = StatusMatcher::parse(&[bad.to_string()]).unwrap_err();
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
    }

    fn policy(strategy: RetryStrategy, count: u32) -> RetryPolicy {
        RetryPolicy {
            strategy,
            count,
            interval: Duration::from_millis(100),
            statuses: matcher(&["500-599"]),
        }
    }

    #[test]
    fn linear_waits_the_same_each_time() {
        let p = policy(RetryStrategy::Linear, 3);
        let waits: Vec<_> = (1..=4).map(|n| p.next_wait(n, Some(500))).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            waits,
            vec![Some(ms(100)), Some(ms(100)), Some(ms(100)), None]
        );
    }

    #[test]
    fn exponential_doubles() {
        let p = policy(RetryStrategy::Exponential, 3);
        let waits: Vec<_> = (1..=4).map(|n| p.next_wait(n, None)).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            waits,
            vec![Some(ms(100)), Some(ms(200)), Some(ms(400)), None]
        );
    }

    #[test]
    fn unmatched_status_is_not_retried() {
        assert_eq!(
            policy(RetryStrategy::Linear, 3).next_wait(1, Some(404)),
            None
        );
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let p = policy(RetryStrategy::Exponential, u32::MAX);
        assert_eq!(p.next_wait(1000, None), Some(MAX_RETRY_WAIT));
    }
}
