//! The load client: one keep-alive HTTP/1.1 connection that sends the same
//! prepared POST over and over (`support::wire` says why not reqwest).

use crate::support::wire::{content_length, invalid, Wire};
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A `POST {path}` to `addr` with a JSON body, as bytes on the wire;
/// `extra_headers`: more header lines, each ending in `\r\n`.
pub fn json_post(addr: SocketAddr, path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra_headers}content-length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

pub struct Connection {
    wire: Wire,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Connection> {
        let wire = Wire::new(TcpStream::connect(addr).await?)?;
        Ok(Connection { wire })
    }

    /// Sends `request` and reads the whole answer; returns its status. After
    /// an error the connection is not fit for another request.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.wire.write_all(request).await?;
        let ((status, body_bytes), head_bytes) = self
            .wire
            .read_head(read_response)
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        self.wire.skip(head_bytes + body_bytes).await?;
        Ok(status)
    }
}

/// A whole response head at the start of `buffer`: ((status, body length), head length).
fn read_response(buffer: &[u8]) -> io::Result<Option<((u16, usize), usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buffer).map_err(invalid)? {
        httparse::Status::Complete(head_bytes) => {
            let status = response.code.unwrap_or_default();
            Ok(Some((
                (status, content_length(response.headers)?),
                head_bytes,
            )))
        }
        httparse::Status::Partial => Ok(None),
    }
}
