//! W3C Trace Context (`traceparent`, `tracestate`): the trace a request joins
//! at the ingress (the sender's, or a new one) is kept with the request and
//! its events, and every delivery attempt is a new span of it, so a
//! receiver's traces join the provider's.

use serde::{Deserialize, Serialize};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The version of `traceparent` sent (and the only one whose length is fixed).
const VERSION: &str = "00";
/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;
/// The spec's limits: members and length past which a `tracestate` may be dropped.
const MAX_TRACESTATE_MEMBERS: usize = 32;
const MAX_TRACESTATE_LEN: usize = 512;
/// The `sampled` bit of the trace flags; set on traces the gateway starts.
const SAMPLED: u8 = 0x01;

/// A span of a trace: ids as in `traceparent`, plus the vendors' `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Stored")]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
    pub state: Option<String>,
}

impl TraceContext {
    /// The sender's span, from its headers: None unless exactly one valid
    /// `traceparent` came (an invalid one is as good as none, and takes its
    /// `tracestate` with it); an invalid `tracestate` alone is dropped.
    pub fn sent_in(headers: &[(String, String)]) -> Option<TraceContext> {
        let mut parents = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(TRACEPARENT));
        let (_, value) = parents.next()?;
        if parents.next().is_some() {
            return None;
        }
        let mut context = parse_traceparent(value.trim())?;
        context.state = tracestate_of(headers);
        Some(context)
    }

    /// The first span of a new trace (sampled: nobody decided otherwise).
    pub fn new_trace() -> TraceContext {
        TraceContext {
            trace_id: nonzero_random(),
            span_id: nonzero_random(),
            flags: SAMPLED,
            state: None,
        }
    }

    /// A new span of the same trace, whose parent is this one.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: nonzero_random(),
            ..self.clone()
        }
    }

    /// The span the gateway opens for a request or job: a child of the
    /// sender's span, or the root of a new trace.
    pub fn opened_for(sent: Option<&TraceContext>) -> TraceContext {
        sent.map_or_else(TraceContext::new_trace, TraceContext::child)
    }

    /// `00-{trace id}-{span id}-{flags}`.
    pub fn traceparent(&self) -> String {
        self.write_traceparent(&mut [0; TRACEPARENT_LEN])
            .to_string()
    }

    /// `traceparent` written into `buffer` (storing a request's context
    /// allocates nothing for it).
    fn write_traceparent<'b>(&self, buffer: &'b mut [u8; TRACEPARENT_LEN]) -> &'b str {
        let flags = [self.flags];
        let fields: [&[u8]; 3] = [&self.trace_id, &self.span_id, &flags];
        buffer[..2].copy_from_slice(VERSION.as_bytes());
        let mut at = 2;
        for field in fields {
            buffer[at] = b'-';
            let hex_len = 2 * field.len();
            let out = &mut buffer[at + 1..at + 1 + hex_len];
            hex::encode_to_slice(field, out).expect("sized to fit");
            at += 1 + hex_len;
        }
        std::str::from_utf8(buffer).expect("hex is ASCII")
    }

    /// Whether the trace is sampled (its spans are worth exporting).
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }
}

/// Reads `version-traceid-parentid-flags`. Versions after `00` may append
/// fields (after a `-`); `ff` is invalid, as are all-zero ids and upper case.
fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let version = value.get(..2)?;
    let fixed_length = match version {
        VERSION => value.len() == TRACEPARENT_LEN,
        "ff" => false,
        _ => value.len() == TRACEPARENT_LEN || value.as_bytes().get(TRACEPARENT_LEN) == Some(&b'-'),
    };
    if !fixed_length || !is_lower_hex(version) {
        return None;
    }
    let mut fields = value[..TRACEPARENT_LEN].split('-').skip(1);
    let trace_id = hex_bytes::<16>(fields.next()?)?;
    let span_id = hex_bytes::<8>(fields.next()?)?;
    let [flags] = hex_bytes::<1>(fields.next()?)?;
    let nonzero = trace_id != [0; 16] && span_id != [0; 8];
    nonzero.then_some(TraceContext {
        trace_id,
        span_id,
        flags,
        state: None,
    })
}

/// The `tracestate` headers joined (the spec allows it split over several),
/// or None when absent, empty or malformed.
fn tracestate_of(headers: &[(String, String)]) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(TRACESTATE))
        .map(|(_, value)| value.trim())
        .collect();
    let joined = values.join(",");
    let members: Vec<&str> = joined
        .split(',')
        .map(str::trim)
        .filter(|member| !member.is_empty())
        .collect();
    let valid = !members.is_empty()
        && members.len() <= MAX_TRACESTATE_MEMBERS
        && joined.len() <= MAX_TRACESTATE_LEN
        && members.iter().all(|member| is_tracestate_member(member));
    valid.then(|| members.join(","))
}

/// `key=value`: a key of `a-z 0-9 _ - * / @`, starting with a letter or
/// digit; a value of printable ASCII but `,` and `=`, not ending in a space.
fn is_tracestate_member(member: &str) -> bool {
    let Some((key, value)) = member.split_once('=') else {
        return false;
    };
    let key_ok = key.len() <= 256
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-*/@".contains(c));
    let value_ok = !value.is_empty()
        && value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=');
    key_ok && value_ok
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !is_lower_hex(text) {
        return None;
    }
    let mut bytes = [0; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// Random ids; all zeros is the spec's "invalid", so never handed out.
fn nonzero_random<const N: usize>() -> [u8; N]
where
    [u8; N]: rand::Fill,
{
    let mut bytes = [0; N];
    while bytes == [0; N] {
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
    }
    bytes
}

/// How a context is stored in a request's, event's or job's record: the two
/// headers as they would be sent.
#[derive(Deserialize)]
struct Stored {
    traceparent: String,
    #[serde(default)]
    tracestate: Option<String>,
}

impl Serialize for TraceContext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = 1 + usize::from(self.state.is_some());
        let mut stored = serializer.serialize_struct("TraceContext", fields)?;
        let mut buffer = [0; TRACEPARENT_LEN];
        stored.serialize_field(TRACEPARENT, self.write_traceparent(&mut buffer))?;
        if let Some(state) = &self.state {
            stored.serialize_field(TRACESTATE, state)?;
        }
        stored.end()
    }
}

impl TryFrom<Stored> for TraceContext {
    type Error = String;

    fn try_from(stored: Stored) -> Result<TraceContext, String> {
        let mut context = parse_traceparent(&stored.traceparent)
            .ok_or_else(|| format!("invalid traceparent {:?}", stored.traceparent))?;
        context.state = stored.tracestate;
        Ok(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn sent(pairs: &[(&str, &str)]) -> Option<TraceContext> {
        TraceContext::sent_in(&headers(pairs))
    }

    #[test]
    fn a_valid_traceparent_is_read_and_written_back_the_same() {
        let context = sent(&[("traceparent", VALID)]).expect("valid");
        assert_eq!(
            hex::encode(context.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hex::encode(context.span_id), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(context.traceparent(), VALID);
    }

    #[test]
    fn malformed_traceparents_count_as_absent() {
        let invalid = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ];
        for value in invalid {
            assert_eq!(sent(&[("traceparent", value)]), None, "{value:?}");
        }
        // Two are one too many: which one is meant is unknown.
        assert_eq!(
            sent(&[("traceparent", VALID), ("traceparent", VALID)]),
            None
        );
    }

    #[test]
    fn a_later_version_may_append_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        let context = sent(&[("traceparent", later)]).expect("valid");
        assert_eq!(context.traceparent(), VALID);
    }

    #[test]
    fn tracestate_is_kept_joined_and_dropped_when_malformed() {
        let split = sent(&[
            ("traceparent", VALID),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("TraceState", "rojo=00f067aa0ba902b7, "),
        ]);
        let state = split.and_then(|context| context.state);
        assert_eq!(
            state.as_deref(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
        for bad in ["no-equals", "Upper=1", "k=v=w", "=v"] {
            let context = sent(&[("traceparent", VALID), ("tracestate", bad)]).expect("valid");
            assert_eq!(context.state, None, "{bad:?}");
        }
        let too_many = vec!["k=v"; MAX_TRACESTATE_MEMBERS + 1].join(",");
        let context = sent(&[("traceparent", VALID), ("tracestate", &too_many)]);
        assert_eq!(context.expect("valid").state, None);
        // Without a valid traceparent, its tracestate means nothing.
        assert_eq!(sent(&[("tracestate", "congo=t61rcWkgMzE")]), None);
    }

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_new_span() {
        let parent = sent(&[("traceparent", VALID), ("tracestate", "a=b")]).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(
            (child.flags, child.state.as_deref()),
            (parent.flags, Some("a=b"))
        );
        assert_ne!(child.span_id, parent.span_id);
        let opened = TraceContext::opened_for(None);
        assert!(opened.sampled());
        assert_ne!(opened.trace_id, TraceContext::new_trace().trace_id);
    }

    #[test]
    fn a_stored_context_reads_back_as_written() {
        let context = TraceContext {
            state: Some("a=b".into()),
            ..TraceContext::new_trace()
        };
        let json = serde_json::to_value(&context).unwrap();
        assert_eq!(json["traceparent"], context.traceparent());
        assert_eq!(
            serde_json::from_value::<TraceContext>(json).unwrap(),
            context
        );
    }
}
