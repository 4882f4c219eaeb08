//! The load client: one keep-alive HTTP/1.1 connection that sends the same
//! prepared POST over and over, reads each answer's head with `httparse` and
//! skips its body by `Content-Length`.
//!
//! Why not reqwest: on this 2-core machine the load shares the CPU with the
//! server under test, and reqwest's per-request work (URL, header map, pool,
//! body streams) cost 1.4× what a bare pingora server spends answering. A
//! webhook provider's CPU is not the gateway's; the less the client takes,
//! the more the numbers say about the server.

use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Response heads longer than this are refused (ours are ~200 bytes).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A `POST {path}` to `addr` with a JSON body, as bytes on the wire.
pub fn json_post(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

pub struct Connection {
    stream: TcpStream,
    /// What was read past the current answer's head.
    buffer: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads the whole answer; returns its status. After
    /// an error the connection is not fit for another request.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        let (status, head_bytes, body_bytes) = self.read_head().await?;
        self.skip(head_bytes + body_bytes).await?;
        Ok(status)
    }

    /// Reads until a whole response head is buffered: (status, head length,
    /// body length).
    async fn read_head(&mut self) -> io::Result<(u16, usize, usize)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response.parse(&self.buffer).map_err(invalid)?;
            if let httparse::Status::Complete(head_bytes) = parsed {
                let status = response.code.unwrap_or_default();
                let body_bytes = content_length(response.headers)?;
                return Ok((status, head_bytes, body_bytes));
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(invalid("response head too long"));
            }
            self.read_more().await?;
        }
    }

    /// Drops the first `bytes` of the answer, reading them first if needed.
    async fn skip(&mut self, bytes: usize) -> io::Result<()> {
        while self.buffer.len() < bytes {
            self.read_more().await?;
        }
        self.buffer.drain(..bytes);
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buffer).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Keep-alive needs a length: every server measured here sends one.
fn content_length(headers: &[httparse::Header]) -> io::Result<usize> {
    let header = headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| invalid("response without Content-Length"))?;
    std::str::from_utf8(header.value)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| invalid("unreadable Content-Length"))
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}
