//! The ingress's HTTP/1 connections: pingora parses each request and writes
//! each answer; this loop bounds how long a sender may take, and serves
//! pipelined requests in order.
//!
//! pingora's own loop gives every request a fresh read buffer, so requests a
//! client pipelined (sent before the answer to the previous one) were read
//! into the old buffer and lost, the connection then idling until its
//! keep-alive ran out. Here the connection's reads go through `Replaying`,
//! which remembers the last chunk read: whatever of it lies beyond the
//! request just answered (its head plus its body's length) is read again by
//! the next request. A request whose end cannot be told (a chunked body) is
//! answered with `Connection: close`.

use super::Ingress;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a connection may wait for its next request (pingora's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The ingress as pingora's listening service runs it.
pub struct IngressApp {
    ingress: Ingress,
    /// How long a connection may wait for its next request.
    idle_timeout: Duration,
    /// How long a request's head may take from its first byte.
    header_timeout: Duration,
}

impl IngressApp {
    pub fn new(ingress: Ingress, header_timeout: Duration) -> IngressApp {
        IngressApp {
            ingress,
            idle_timeout: IDLE_TIMEOUT,
            header_timeout,
        }
    }
}

#[async_trait]
impl ServerApp for IngressApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut stream = Box::new(Replaying::new(stream));
        loop {
            if !self.next_request_arrives(&mut stream, shutdown).await {
                return None;
            }
            stream.start_request();
            let (session, framed_len) = self.serve_one(stream, shutdown).await?;
            let reused = session.finish().await.ok()??;
            stream = reused.into_any().downcast::<Replaying>().ok()?;
            // Unknown (chunked) framing was answered with `Connection: close`.
            if !stream.keep_unread(framed_len?) {
                return None;
            }
        }
    }
}

impl IngressApp {
    /// Waits for the first byte of the next request, up to the idle timeout
    /// or until the gateway stops.
    async fn next_request_arrives(&self, stream: &mut Replaying, shutdown: &ShutdownWatch) -> bool {
        let mut shutdown = shutdown.clone();
        if *shutdown.borrow_and_update() {
            return false;
        }
        let mut first = [0u8; 1];
        tokio::select! {
            peeked = tokio::time::timeout(self.idle_timeout, stream.try_peek(&mut first)) => {
                matches!(peeked, Ok(Ok(true)))
            }
            _ = shutdown.changed() => false,
        }
    }

    /// Reads one request (within the header timeout), answers it, and says
    /// how many bytes it took on the wire (None: unknown, so the connection
    /// closes after it). None when no request could be read.
    async fn serve_one(
        &self,
        stream: Box<Replaying>,
        shutdown: &ShutdownWatch,
    ) -> Option<(ServerSession, Option<usize>)> {
        let mut session = ServerSession::new_http1(stream);
        let read = tokio::time::timeout(self.header_timeout, session.read_request()).await;
        if !matches!(read, Ok(Ok(true))) {
            // Timed out, malformed or gone: dropping the session closes it.
            return None;
        }
        let framed_len = framed_len(&mut session);
        let keepalive = !*shutdown.borrow() && framed_len.is_some();
        session.set_keepalive(keepalive.then_some(self.idle_timeout.as_secs().max(1)));
        let response = self.ingress.response(&mut session).await;
        let (parts, body) = response.into_parts();
        let header: ResponseHeader = parts.into();
        if session
            .write_response_header(Box::new(header))
            .await
            .is_err()
        {
            return None;
        }
        if !body.is_empty()
            && session
                .write_response_body(body.into(), true)
                .await
                .is_err()
        {
            return None;
        }
        Some((session, framed_len))
    }
}

/// How many bytes a request takes on the wire, head and body, when its
/// headers say (a Content-Length, or no body in HTTP/1.1); None for a
/// chunked body or an HTTP/1.0 one without length (read until the close).
fn framed_len(session: &mut ServerSession) -> Option<usize> {
    let head = session.as_http1()?.get_headers_raw_bytes().len();
    let header = session.req_header();
    if header.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return None;
    }
    let body = match header.headers.get(http::header::CONTENT_LENGTH) {
        Some(length) => length.to_str().ok()?.parse::<usize>().ok()?,
        None if header.version == http::Version::HTTP_11 => 0,
        None => return None,
    };
    head.checked_add(body)
}

/// A connection's stream that remembers its last read, to hand back what a
/// request read beyond its end (`keep_unread`).
#[derive(Debug)]
pub struct Replaying {
    inner: Stream,
    /// Bytes read again before the stream is read further.
    replay: Vec<u8>,
    /// The bytes the last read returned.
    last_read: Vec<u8>,
    /// Bytes read since the current request began.
    read_since_start: usize,
}

impl Replaying {
    fn new(inner: Stream) -> Replaying {
        Replaying {
            inner,
            replay: Vec::new(),
            last_read: Vec::new(),
            read_since_start: 0,
        }
    }

    fn start_request(&mut self) {
        self.read_since_start = 0;
    }

    /// The request just answered took `used` bytes of those read since it
    /// began: the rest will be read again. False when the rest is not all in
    /// the last read (never so with pingora, which stops reading once it has
    /// a whole request), then the connection must close.
    fn keep_unread(&mut self, used: usize) -> bool {
        let Some(unread) = self.read_since_start.checked_sub(used) else {
            return false;
        };
        if unread > self.last_read.len() {
            return false;
        }
        let start = self.last_read.len() - unread;
        let mut rest = self.last_read[start..].to_vec();
        rest.append(&mut self.replay);
        self.replay = rest;
        true
    }

    fn note_read(&mut self, bytes: &[u8]) {
        self.last_read.clear();
        self.last_read.extend_from_slice(bytes);
        self.read_since_start += bytes.len();
    }
}

impl AsyncRead for Replaying {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.drain(..n);
        } else {
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        this.note_read(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replaying {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for Replaying {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

#[async_trait]
impl Peek for Replaying {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if self.replay.is_empty() {
            return self.inner.try_peek(buf).await;
        }
        let n = self.replay.len().min(buf.len());
        buf[..n].copy_from_slice(&self.replay[..n]);
        Ok(true)
    }
}

impl UniqueID for Replaying {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Replaying {}

impl GetTimingDigest for Replaying {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for Replaying {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for Replaying {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
}
