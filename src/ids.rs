//! Prefixed, time-sortable identifiers (`req_…`, `evt_…`, `atm_…`).
//!
//! An id is a prefix plus 24 lowercase hex digits: 16 for a strictly increasing
//! 64-bit stamp (milliseconds since the epoch shifted left by 16, plus a
//! per-millisecond sequence) and 8 random ones. Hex sorts like the number it
//! encodes, so the store's key order is creation order and keyset cursors come
//! for free. A record kept inside its parent's (an attempt in its event) has a
//! [`child_id`]: the parent's digits plus one more, sorting with the parent.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Every id has this many bytes, whatever its prefix (prefixes are 3 letters +
/// `_`); a [`child_id`] has one more.
pub const ID_LEN: usize = 28;

static LAST_STAMP: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stamp larger than every stamp handed out before in this process.
fn next_stamp() -> u64 {
    let wall = now_ms() << 16;
    let previous = LAST_STAMP
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            Some(wall.max(last + 1))
        })
        .unwrap_or(0);
    wall.max(previous + 1)
}

/// A new id with the given 3-letter prefix, e.g. `new_id("req")`.
pub fn new_id(prefix: &str) -> String {
    let random: u32 = rand::thread_rng().gen();
    format!("{prefix}_{:016x}{random:08x}", next_stamp())
}

/// A time (ms since the epoch) as RFC 3339 UTC with exactly three fractional
/// digits, so that such strings sort like the times they name. Written digit
/// by digit: every view and delivery envelope has several, and `time`'s
/// formatter cost a few thousand instructions each (it still writes the years
/// past 9999, with their sign).
pub fn iso8601(ms: u64) -> String {
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        return formatted_by_time(ms);
    }
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (ms_of_day / 3_600_000, 2, b':'),
        (ms_of_day / 60_000 % 60, 2, b':'),
        (ms_of_day / 1000 % 60, 2, b'.'),
        (ms_of_day % 1000, 3, b'Z'),
    ];
    let mut text = Vec::with_capacity(24);
    for (value, digits, after) in fields {
        for place in (0..digits).rev() {
            text.push(b'0' + (value / 10u64.pow(place) % 10) as u8);
        }
        text.push(after);
    }
    String::from_utf8(text).expect("ASCII digits")
}

/// `iso8601` as `time` formats it (empty past its range).
fn formatted_by_time(ms: u64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// Year, month and day of the `days`-th day after 1970-01-01 (the proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The creation time (ms) encoded in an id made by [`new_id`] or [`derived_id`].
pub fn created_ms(id: &str) -> Option<u64> {
    let stamp = id.get(4..20)?;
    u64::from_str_radix(stamp, 16).ok().map(|s| s >> 16)
}

/// A deterministic id that sorts with `parent` and is unique per `(parent, salt)`.
/// Events use it so that routing a request twice (after a crash) yields the same
/// event ids instead of duplicates.
pub fn derived_id(prefix: &str, parent: &str, salt: &str) -> String {
    let stamp = parent.get(4..20).unwrap_or("0000000000000000");
    let digest = Sha256::new()
        .chain_update(parent.as_bytes())
        .chain_update([0u8])
        .chain_update(salt.as_bytes())
        .finalize();
    format!("{prefix}_{stamp}{}", hex::encode(&digest[..4]))
}

/// How many children one parent can name with [`child_id`] (one hex digit).
pub const MAX_CHILDREN: usize = 16;

/// The id of `parent`'s `position`-th child (`position` < [`MAX_CHILDREN`]):
/// the parent's stamp and digest under `prefix`, plus the position. A record
/// kept inside its parent's (an attempt in its event) is found from its id
/// alone, with no index of its own.
pub fn child_id(prefix: &str, parent: &str, position: usize) -> String {
    debug_assert!(position < MAX_CHILDREN);
    format!(
        "{prefix}_{}{position:x}",
        parent.get(4..).unwrap_or_default()
    )
}

/// The parent (under `parent_prefix`) and position a [`child_id`] names;
/// None for any other id.
pub fn parent_of_child(id: &str, parent_prefix: &str) -> Option<(String, usize)> {
    if id.len() != ID_LEN + 1 || id.as_bytes().get(3) != Some(&b'_') {
        return None;
    }
    let position = usize::from_str_radix(id.get(ID_LEN..)?, 16).ok()?;
    Some((format!("{parent_prefix}_{}", id.get(4..ID_LEN)?), position))
}

/// The id of an attempt named before it is made (the attempt a held or
/// retried event waits for): its event's digits, then a new stamp. The event
/// is found from the id alone, which shows the attempt until it is made and
/// records it under the id then, and the stamp says when it was named.
pub fn pending_attempt_id(event_id: &str) -> String {
    let digits = event_id.get(4..).unwrap_or_default();
    format!("atm_{digits}{:016x}", next_stamp())
}

/// The event a [`pending_attempt_id`] names, and when (ms) the id was made;
/// None for any other id.
pub fn of_pending_attempt(id: &str) -> Option<(String, u64)> {
    if id.len() != ID_LEN + 16 || !id.starts_with("atm_") {
        return None;
    }
    let stamp = u64::from_str_radix(id.get(ID_LEN..)?, 16).ok()?;
    Some((format!("evt_{}", id.get(4..ID_LEN)?), stamp >> 16))
}

/// A stable id for an object declared by name in gateway.toml, so that it keeps
/// its id across restarts.
pub fn named_id(prefix: &str, name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    format!("{prefix}_{}", hex::encode(&digest[..12]))
}

/// The `event_data_id` of an event (the id Hookdeck gives an event's
/// payload, by which a bookmark names what it replays): the event's own id
/// under the `edt` prefix, so that it leads back to the event with no index.
pub fn event_data_id(event_id: &str) -> String {
    format!("edt_{}", event_id.get(4..).unwrap_or_default())
}

/// The event whose data an [`event_data_id`] names; None for any other id.
pub fn event_of_data(data_id: &str) -> Option<String> {
    data_id
        .strip_prefix("edt_")
        .map(|rest| format!("evt_{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_writes_what_times_formatter_writes() {
        let day = 86_400_000;
        let chosen = [
            0,
            1,
            day - 1,
            951_782_400_000,     // 2000-02-29, a leap day of a year divisible by 400
            1_709_164_800_123,   // 2024-02-29
            4_107_542_400_000,   // 2100-03-01 (2100 is no leap year)
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000, // year 10000: `time`'s own
            u64::MAX,
        ];
        let mut ms = 12_345u64;
        let spread = (0..20_000).map(|_| {
            // Every few days over ten thousand years, at odd hours.
            ms = ms.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 260_000_000_000_000;
            ms
        });
        for ms in chosen.into_iter().chain(spread) {
            assert_eq!(iso8601(ms), formatted_by_time(ms), "{ms}");
        }
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn an_event_data_id_leads_back_to_its_event() {
        let event = derived_id("evt", &new_id("req"), "web_a");
        let data = event_data_id(&event);
        assert!(data.starts_with("edt_"));
        assert_eq!(event_of_data(&data), Some(event.clone()));
        assert_eq!(event_of_data(&event), None, "an event id is not a data id");
    }

    #[test]
    fn a_pending_attempt_id_names_its_event_and_time_and_nothing_else_does() {
        let event = derived_id("evt", &new_id("req"), "web_a");
        let before = now_ms();
        let first = pending_attempt_id(&event);
        let (named, at) = of_pending_attempt(&first).unwrap();
        assert_eq!(named, event);
        assert!((before..=now_ms()).contains(&at), "{at}");
        assert_ne!(pending_attempt_id(&event), first, "each one new");
        assert_eq!(of_pending_attempt(&child_id("atm", &event, 0)), None);
        assert_eq!(of_pending_attempt(&new_id("atm")), None);
        assert_eq!(of_pending_attempt(&first.replacen("atm", "evt", 1)), None);
    }

    #[test]
    fn a_child_id_names_its_parent_and_position_and_nothing_else_does() {
        let event = derived_id("evt", &new_id("req"), "web_a");
        for position in [0, 1, MAX_CHILDREN - 1] {
            let child = child_id("atm", &event, position);
            assert!(child.starts_with("atm_"));
            assert_eq!(
                parent_of_child(&child, "evt"),
                Some((event.clone(), position))
            );
        }
        assert_eq!(parent_of_child(&new_id("atm"), "evt"), None);
        assert_eq!(
            parent_of_child("atm_not-hex-but-long-enough-x", "evt"),
            None
        );
        assert_eq!(parent_of_child("", "evt"), None);
        assert_eq!(parent_of_child("atm_0123456789abcdef0123456é", "evt"), None);
    }

    #[test]
    fn ids_are_fixed_length_and_strictly_increasing() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id("req")).collect();
        assert!(ids.iter().all(|id| id.len() == ID_LEN));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn created_ms_reads_back_the_wall_clock() {
        let before = now_ms();
        let id = new_id("evt");
        let created = created_ms(&id).unwrap();
        assert!(created >= before && created <= now_ms() + 1);
    }

    #[test]
    fn derived_ids_are_deterministic_and_sort_with_their_parent() {
        let request = new_id("req");
        let a = derived_id("evt", &request, "web_a");
        assert_eq!(a, derived_id("evt", &request, "web_a"));
        assert_ne!(a, derived_id("evt", &request, "web_b"));
        assert_eq!(a.len(), ID_LEN);
        assert_eq!(created_ms(&a), created_ms(&request));
    }

    #[test]
    fn named_ids_are_stable() {
        assert_eq!(named_id("src", "shop"), named_id("src", "shop"));
        assert_eq!(named_id("src", "shop").len(), ID_LEN);
    }
}
