//! The ranges numeric keys must lie in. Outside them the gateway could not
//! run: sled panics with a page cache under 256 bytes, a zero period spins a
//! timer, a duration of centuries overflows the clock arithmetic of timers
//! and deadlines. `check` refuses such values with the key's line and the
//! valid range, so `serve` never starts with one.

use super::sections::FileConfig;
use std::ops::RangeInclusive;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
/// Longer than any sensible timeout or period, short enough that adding it
/// to any clock reading cannot overflow.
const TEN_YEARS_MS: u64 = 10 * 365 * 24 * 3_600_000;

/// A key whose value is outside its range.
pub(super) struct OutOfBounds {
    /// The key as written (`store_cache_bytes`), to find its line.
    pub key: &'static str,
    /// The key with its table (`limits.store_cache_bytes`), for the message.
    pub path: &'static str,
    pub message: String,
}

/// Every key of `file` outside its range.
pub(super) fn out_of_bounds(file: &FileConfig) -> Vec<OutOfBounds> {
    let (limits, server, delivery) = (&file.limits, &file.server, &file.delivery);
    let (outbound, retention) = (&file.outbound, &file.retention);
    let size = |value: usize| value as u64;
    // One key a line: a table to read down.
    #[rustfmt::skip]
    let checked: [(&'static str, u64, RangeInclusive<u64>); 24] = [
        ("limits.store_cache_bytes", limits.store_cache_bytes, MIB..=TIB),
        ("limits.journal_segment_bytes", limits.journal_segment_bytes, 1..=TIB),
        ("limits.api_page_bytes", size(limits.api_page_bytes), 1024..=GIB),
        ("limits.commit_batch", size(limits.commit_batch), 1..=MIB),
        ("limits.commit_queue", size(limits.commit_queue), 1..=16 * MIB),
        ("store.pool_size", file.store.pool_size, 1..=1024),
        ("store.statement_timeout_ms", file.store.statement_timeout_ms, 1..=TEN_YEARS_MS),
        ("store.lease_ms", file.store.lease_ms, 300..=TEN_YEARS_MS),
        ("limits.delivery_timeout_ms", limits.delivery_timeout_ms, 1..=TEN_YEARS_MS),
        ("limits.transform_timeout_ms", limits.transform_timeout_ms, 1..=TEN_YEARS_MS),
        ("server.shutdown_timeout_ms", server.shutdown_timeout_ms, 0..=TEN_YEARS_MS),
        ("server.api_failed_logins_per_minute", server.api_failed_logins_per_minute.into(), 1..=1_000_000),
        ("delivery.backlog_check_ms", delivery.backlog_check_ms, 1..=TEN_YEARS_MS),
        ("retention.max_age_ms", retention.max_age_ms, 0..=TEN_YEARS_MS),
        ("retention.sweep_every_ms", retention.sweep_every_ms, 1..=TEN_YEARS_MS),
        ("outbound.max_retries", outbound.max_retries.into(), 0..=30),
        ("outbound.delivery_window_ms", outbound.delivery_window_ms, 1..=TEN_YEARS_MS),
        ("outbound.idempotency_window_ms", outbound.idempotency_window_ms, 0..=TEN_YEARS_MS),
        ("outbound.circuit_cooldown_ms", outbound.circuit_cooldown_ms, 0..=TEN_YEARS_MS),
        ("outbound.secret_rotation_grace_ms", outbound.secret_rotation_grace_ms, 0..=TEN_YEARS_MS),
        ("outbound.max_endpoint_secrets", size(outbound.max_endpoint_secrets), 1..=16),
        ("outbound.api_calls_per_second_per_key", outbound.api_calls_per_second_per_key.into(), 1..=1_000_000),
        ("outbound.jobs_per_second_per_application", outbound.jobs_per_second_per_application.into(), 1..=1_000_000),
        ("outbound.portal_requests_per_minute_per_application", outbound.portal_requests_per_minute_per_application.into(), 1..=1_000_000),
    ];
    checked
        .into_iter()
        .filter(|(_, value, range)| !range.contains(value))
        .map(|(path, value, range)| OutOfBounds {
            key: path.rsplit('.').next().unwrap_or(path),
            path,
            message: format!(
                "{value} is out of range (valid: {} to {})",
                range.start(),
                range.end()
            ),
        })
        .collect()
}
