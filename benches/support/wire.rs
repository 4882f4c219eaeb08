//! HTTP/1.1 over a raw keep-alive TCP stream, as much of it as the benches
//! need: heads parsed with `httparse`, bodies skipped by `Content-Length`.
//!
//! Why not hyper or reqwest: on this 2-core machine the load client and the
//! sink share the CPU with the gateway under test. Their per-request work
//! (header maps, routing, body streams) is not the gateway's, and the less
//! they take, the more the numbers say about the gateway.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Heads longer than this are refused (ours are a few hundred bytes).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A stream and what was read from it past the current message's head.
pub struct Wire {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Wire {
    pub fn new(stream: TcpStream) -> io::Result<Wire> {
        stream.set_nodelay(true)?;
        Ok(Wire {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads until `parse` finds a whole head at the start of the buffer and
    /// returns what it made of it with the head's length, or None at a clean
    /// end of the stream (before any byte of a next message).
    pub async fn read_head<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> io::Result<Option<(T, usize)>>,
    ) -> io::Result<Option<(T, usize)>> {
        loop {
            if let Some(parsed) = parse(&self.buffer)? {
                return Ok(Some(parsed));
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(invalid("head too long"));
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(io::ErrorKind::UnexpectedEof.into()),
                };
            }
        }
    }

    /// Drops the first `bytes` of the buffer, reading them first if needed.
    pub async fn skip(&mut self, bytes: usize) -> io::Result<()> {
        while self.buffer.len() < bytes {
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.buffer.drain(..bytes);
        Ok(())
    }
}

/// A message's body length. Keep-alive needs one: every server and client
/// measured here sends `Content-Length` (none means no body).
pub fn content_length(headers: &[httparse::Header]) -> io::Result<usize> {
    if headers
        .iter()
        .any(|header| header.name.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(invalid("chunked bodies are not supported here"));
    }
    let Some(header) = headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
    else {
        return Ok(0);
    };
    std::str::from_utf8(header.value)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| invalid("unreadable Content-Length"))
}

pub fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}
