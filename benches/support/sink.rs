//! The local HTTP server that plays the customer's endpoint: answers every
//! request `200` with an empty body and tells the bench what it received.

use super::wire::{content_length, invalid, Wire};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The answer to every request.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

/// Told each request's headers as soon as its head has arrived (the body is
/// not needed to count a delivery; the answer waits for it).
pub type Observer = dyn Fn(&[httparse::Header]) + Send + Sync;

/// Serves the sink on an ephemeral 127.0.0.1 port on `rt`; returns the address.
pub fn serve(rt: &Runtime, on_request: Arc<Observer>) -> SocketAddr {
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind sink");
    let addr = listener.local_addr().expect("sink addr");
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let on_request = on_request.clone();
            tokio::spawn(async move {
                if let Err(error) = answer_all(stream, &*on_request).await {
                    eprintln!("bench sink: connection failed: {error}");
                }
            });
        }
    });
    addr
}

/// Answers the requests of one keep-alive connection until the client closes it.
async fn answer_all(stream: tokio::net::TcpStream, on_request: &Observer) -> io::Result<()> {
    let mut wire = Wire::new(stream)?;
    while let Some((body_bytes, head_bytes)) = wire
        .read_head(|buffer| read_request(buffer, on_request))
        .await?
    {
        wire.skip(head_bytes + body_bytes).await?;
        wire.write_all(OK).await?;
    }
    Ok(())
}

/// A whole request head at the start of `buffer`, told to `on_request`:
/// (body length, head length).
fn read_request(buffer: &[u8], on_request: &Observer) -> io::Result<Option<(usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer).map_err(invalid)? {
        httparse::Status::Complete(head_bytes) => {
            on_request(request.headers);
            Ok(Some((content_length(request.headers)?, head_bytes)))
        }
        httparse::Status::Partial => Ok(None),
    }
}
