//! What the gateway and a transformation worker say to each other over the
//! worker's stdin and stdout: frames of a little-endian `u32` length followed
//! by that many bytes of JSON. One exchange at a time per worker; the worker
//! answers every command with exactly one final reply, after any number of
//! [`Reply::Log`] frames.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LogEntry, Script, ScriptKey, TransformError};

/// From the gateway to a worker. Borrowed when sent, owned when received.
#[derive(Serialize, Deserialize)]
pub(super) enum Command<'a> {
    /// Evaluate the script and keep its handler under `key`.
    Load {
        key: ScriptKey,
        script: Cow<'a, Script>,
    },
    /// Call the handler loaded under `key`.
    Run {
        key: ScriptKey,
        request: Cow<'a, Value>,
        context: Cow<'a, Value>,
    },
}

/// From a worker to the gateway.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Reply {
    /// Sent once at start, after the OS limits are in place.
    Ready,
    /// A console entry of the script running now.
    Log(LogEntry),
    /// The answer to [`Command::Load`].
    Loaded(Result<(), TransformError>),
    /// The answer to [`Command::Run`]: the transformed request.
    Ran(Result<Value, TransformError>),
    /// The answer to [`Command::Run`] for a key this worker does not hold
    /// (never loaded here, or evicted): load it, then run again.
    NotLoaded,
}

/// How long a reader polls a pipe before sleeping on it. Waking a sleeping
/// thread costs tens of microseconds on virtualized hosts (52 µs per round
/// trip measured on the 2-core dev VM), more than a typical run itself; an
/// exchange has two such wake-ups.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(100);

/// Bytes of the length prefix.
pub(super) const HEADER_BYTES: usize = 4;

/// `message` as one frame, ready to be written with a single call.
pub(super) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut frame = vec![0; HEADER_BYTES];
    serde_json::to_writer(&mut frame, message).expect("wire messages serialize");
    let length = u32::try_from(frame.len() - HEADER_BYTES).unwrap_or(u32::MAX);
    frame[..HEADER_BYTES].copy_from_slice(&length.to_le_bytes());
    frame
}

/// The length a frame header announces.
pub(super) fn announced_length(header: [u8; HEADER_BYTES]) -> usize {
    u32::from_le_bytes(header) as usize
}

pub(super) fn decode<T: DeserializeOwned>(payload: &[u8]) -> io::Result<T> {
    serde_json::from_slice(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(super) fn write_frame<T: Serialize>(output: &mut impl Write, message: &T) -> io::Result<()> {
    output.write_all(&encode(message))?;
    output.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of input (between frames).
pub(super) fn read_frame<T: DeserializeOwned>(
    input: &mut impl Read,
    max_bytes: usize,
) -> io::Result<Option<T>> {
    let mut header = [0; HEADER_BYTES];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = announced_length(header);
    if length > max_bytes {
        let message = format!("a {length}-byte frame exceeds the {max_bytes}-byte bound");
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    let mut payload = vec![0; length];
    input.read_exact(&mut payload)?;
    decode(&payload).map(Some)
}

/// Whether `pipe` has data (or end of file) within `timeout`: polled for
/// [`SPIN_BEFORE_SLEEP`] first, yielding the core meanwhile, so that
/// back-to-back frames skip a wake-up.
pub(super) fn wait_readable(pipe: BorrowedFd, timeout: Duration) -> io::Result<bool> {
    let start = Instant::now();
    while start.elapsed() < SPIN_BEFORE_SLEEP.min(timeout) {
        if poll_readable(pipe, 0)? {
            return Ok(true);
        }
        std::thread::yield_now();
    }
    let remaining = timeout.saturating_sub(start.elapsed());
    // Rounded up, so that a deadline a few microseconds away is still waited for.
    let millis = remaining.as_micros().div_ceil(1000);
    poll_readable(
        pipe,
        libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX),
    )
}

fn poll_readable(pipe: BorrowedFd, millis: libc::c_int) -> io::Result<bool> {
    let mut descriptor = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll reads and writes only the one pollfd it is given.
        match unsafe { libc::poll(&mut descriptor, 1, millis) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            ready => return Ok(ready > 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut stream = encode(&Reply::Ran(Ok(json!({ "body": "é" }))));
        stream.extend(encode(&Reply::NotLoaded));
        let mut input = stream.as_slice();
        let first: Option<Reply> = read_frame(&mut input, 1024).unwrap();
        assert!(matches!(first, Some(Reply::Ran(Ok(value))) if value == json!({ "body": "é" })));
        assert!(matches!(
            read_frame(&mut input, 1024).unwrap(),
            Some(Reply::NotLoaded)
        ));
        assert!(read_frame::<Reply>(&mut input, 1024).unwrap().is_none());
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let frame = encode(&Reply::Log(LogEntry {
            level: "log".into(),
            message: "x".repeat(100),
        }));
        let error = read_frame::<Reply>(&mut frame.as_slice(), 50).unwrap_err();
        assert!(
            error.to_string().contains("exceeds the 50-byte bound"),
            "{error}"
        );
        let truncated = &frame[..frame.len() - 1];
        let error = read_frame::<Reply>(&mut &truncated[..], 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
