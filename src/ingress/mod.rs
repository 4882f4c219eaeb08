//! The public webhook ingress, a pingora service: `/{e}/{source}/{rest…}`.
//!
//! Checks route, path, framing, method and size, stores the request durably
//! (group commit), and only then answers 2xx. Rejected requests are recorded
//! too, with their cause, in a bounded way (`rejection_record`).
//!
//! Senders are untrusted: every limit here is a config key (`[limits]`) and
//! the threat model is in the notes on ingress security.

mod connection;
mod rejection_record;
mod response;

pub use connection::IngressApp;

use crate::config::Config;
use crate::health::Readiness;
use crate::ids::now_ms;
use crate::metrics::{self, Metrics};
use crate::model::{Catalog, Payload, Refusal, RejectionCause, Request, RequestStatus, Source};
use crate::store::{CommitLog, RejectionBudget, Store};
use crate::telemetry::Telemetry;
use crate::trace_context::TraceContext;
use arc_swap::ArcSwap;
use http::{Response, StatusCode};
use pingora::protocols::http::ServerSession;
use response::{accepted, error, ErrorReply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use url::Url;

/// The URL prefix of source endpoints.
const SOURCE_PREFIX: &str = "/e/";

/// The address the request came from, added to its headers as Hookdeck does.
pub const ORIGINAL_IP_HEADER: &str = "x-hookdeck-original-ip";
pub use crate::verify::VERIFIED_HEADER;
/// The headers the ingress sets on requests; a sender's own of these names
/// are dropped (they could claim anything).
pub const SET_BY_INGRESS: [&str; 2] = [ORIGINAL_IP_HEADER, VERIFIED_HEADER];

pub struct Ingress {
    catalog: Arc<ArcSwap<Catalog>>,
    commit: CommitLog,
    /// Where rejected requests are recorded (accepted ones go through `commit`).
    store: Store,
    limits: IngressLimits,
    /// See `server.public_url`.
    public_url: Option<Url>,
    in_flight: Arc<InFlight>,
    /// Answers `/healthz` and `/readyz`.
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    telemetry: Telemetry,
}

/// The `[limits]` the ingress enforces.
struct IngressLimits {
    max_body_bytes: usize,
    body_read_timeout: Duration,
    rejection_body_bytes: usize,
    rejection_budget: RejectionBudget,
}

/// Counts requests being handled, so that shutdown can wait for their answers.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Resolves once no request is being handled.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A request as read off the wire, before it is accepted or rejected.
struct Received {
    source_name: String,
    /// The path and query as called, for signatures over the URL.
    path_and_query: String,
    host: Option<String>,
    payload: Payload,
    /// When its head was read: where its span starts. (The stored request
    /// is received when it is accepted, at its id's time.)
    received_at: u64,
    verified: Option<bool>,
}

/// Why a request is turned away, and how to answer it.
struct Rejection {
    cause: RejectionCause,
    status: StatusCode,
    message: String,
    allow: Option<String>,
}

impl Rejection {
    fn new(cause: RejectionCause, status: StatusCode, message: String) -> Rejection {
        Rejection {
            cause,
            status,
            message,
            allow: None,
        }
    }
}

impl Ingress {
    /// An ingress under `config`'s `[limits]` and `server.public_url`.
    pub fn new(
        catalog: Arc<ArcSwap<Catalog>>,
        commit: CommitLog,
        store: Store,
        config: &Config,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
        telemetry: Telemetry,
    ) -> Ingress {
        let limits = &config.limits;
        Ingress {
            catalog,
            commit,
            store,
            limits: IngressLimits {
                max_body_bytes: limits.max_body_bytes,
                body_read_timeout: Duration::from_millis(limits.body_read_timeout_ms),
                rejection_body_bytes: limits.rejection_body_bytes,
                rejection_budget: limits.rejection_budget(),
            },
            public_url: config.server.public_url.clone(),
            in_flight: Arc::default(),
            readiness,
            metrics,
            telemetry,
        }
    }

    pub fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// Answers one request whose head pingora has read.
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let _guard = self.in_flight.enter();
        match self.handle(session).await {
            Ok(response) => response,
            Err(reply) => {
                // Whatever of the body is left is not worth reading (pingora
                // would, to reuse the connection).
                if !session.is_body_done() {
                    session.set_keepalive(None);
                }
                error(reply)
            }
        }
    }

    async fn handle(&self, session: &mut ServerSession) -> Result<Response<Vec<u8>>, ErrorReply> {
        if let Err(message) = check_framing(session.req_header()) {
            // Where this request's body ends is unknown: so is where the next
            // request on the connection begins.
            session.set_keepalive(None);
            self.metrics.request_refused(None, metrics::MALFORMED);
            return Err(ErrorReply::new(StatusCode::BAD_REQUEST, message));
        }
        if let Some((status, body)) = self.readiness.probe(session.req_header().uri.path()) {
            return Ok(response::probe(status, &body));
        }
        let head_read = Instant::now();
        let mut received = read_head(session).inspect_err(|_| {
            self.metrics
                .request_refused(None, metrics::NOT_A_SOURCE_URL)
        })?;
        let catalog = self.catalog.load();
        let Some(source) = catalog.source(&received.source_name).cloned() else {
            let archived = catalog.archived_source(&received.source_name).cloned();
            let rejection = self
                .not_served(&received.source_name, archived.is_some())
                .await;
            return Err(self.reject(received, archived.as_deref(), rejection).await);
        };
        if let Err(rejection) = self.admit(session, &source, &mut received).await {
            return Err(self.reject(received, Some(&source), rejection).await);
        }
        let mut request = new_request(&received, Some(&source), RequestStatus::Accepted, None);
        let request_id = request.id.clone();
        // The sender's span (or none: a new trace) and the ingress's under it,
        // which the request's events' attempts will be children of.
        let sent = TraceContext::sent_in(&received.payload.headers);
        let span = TraceContext::opened_for(sent.as_ref());
        let exported = self.telemetry.exports().then(|| span.clone());
        request.trace = Some(span);
        self.commit
            .commit(request, received.payload)
            .await
            .map_err(|e| {
                self.metrics
                    .request_refused(Some(&source), metrics::UNAVAILABLE);
                ErrorReply::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            })?;
        tracing::debug!(request_id, source = source.name, "request accepted");
        self.metrics.request_accepted(&source, head_read);
        if let Some(span) = &exported {
            let telemetry = &self.telemetry;
            let received_at = received.received_at;
            telemetry.request_acknowledged(span, sent.as_ref(), received_at, &source, &request_id);
        }
        Ok(accepted(&request_id, source.custom_response.as_ref()))
    }

    /// Why a source URL is not served: the source is archived (`404`, as
    /// it may be restored and the sender should keep retrying), was deleted
    /// (`410`, as Hookdeck answers: the sender may stop), or never was (`404`).
    async fn not_served(&self, name_or_id: &str, archived: bool) -> Rejection {
        if archived {
            let message = format!("source \"{name_or_id}\" is archived");
            return Rejection::new(
                RejectionCause::SourceArchived,
                StatusCode::NOT_FOUND,
                message,
            );
        }
        let store = self.store.clone();
        let name = name_or_id.to_string();
        let deleted = tokio::task::spawn_blocking(move || store.is_deleted_source(&name)).await;
        if matches!(deleted, Ok(Ok(true))) {
            let message = format!("source \"{name_or_id}\" was deleted");
            return Rejection::new(RejectionCause::NoWebhook, StatusCode::GONE, message);
        }
        let message = format!("no source named \"{name_or_id}\"");
        Rejection::new(RejectionCause::NoWebhook, StatusCode::NOT_FOUND, message)
    }

    /// The source's checks (`Source::admit_head`, then its `verify`), with
    /// the body read, within the size limit, between the two.
    async fn admit(
        &self,
        session: &mut ServerSession,
        source: &Source,
        received: &mut Received,
    ) -> Result<(), Rejection> {
        let head = source
            .admit_head(&received.payload)
            .map_err(|refusal| refused(source, &received.payload, refusal))?;
        // On failure the rest of the body is left unread: `response` closes
        // the connection.
        self.read_body(session, &mut received.payload.body).await?;
        let url = self.public_url_of(received);
        let verifies = head.verifies();
        let verified = head.verify(&mut received.payload, &url, SystemTime::now());
        received.verified = verifies.then_some(verified.is_ok());
        verified.map_err(|refusal| refused(source, &received.payload, refusal))
    }

    /// The URL the provider called, as it saw it.
    fn public_url_of(&self, received: &Received) -> String {
        match &self.public_url {
            Some(base) => format!(
                "{}{}",
                base.as_str().trim_end_matches('/'),
                received.path_and_query
            ),
            None => format!(
                "http://{}{}",
                received.host.as_deref().unwrap_or("localhost"),
                received.path_and_query
            ),
        }
    }

    /// Reads the body up to the limit; over it, or when it cannot be read
    /// whole, says why without reading further.
    async fn read_body(
        &self,
        session: &mut ServerSession,
        body: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        let max_body_bytes = self.limits.max_body_bytes;
        let too_large = || {
            let message = format!("body exceeds the limit of {max_body_bytes} bytes");
            Rejection::new(
                RejectionCause::PayloadTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                message,
            )
        };
        let unreadable = |error: pingora::BError| {
            let message = format!("could not read the body: {error}");
            Rejection::new(
                RejectionCause::BodyUnreadable,
                StatusCode::BAD_REQUEST,
                message,
            )
        };
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > max_body_bytes) {
            return Err(too_large());
        }
        let read_all = async {
            while let Some(chunk) = session.read_request_body().await.map_err(unreadable)? {
                if body.len() + chunk.len() > max_body_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(())
        };
        let timeout = self.limits.body_read_timeout;
        match tokio::time::timeout(timeout, read_all).await {
            Ok(read) => read,
            Err(_) => Err(Rejection::new(
                RejectionCause::BodyUnreadable,
                StatusCode::BAD_REQUEST,
                format!(
                    "the body did not arrive within {} ms (limits.body_read_timeout_ms)",
                    timeout.as_millis()
                ),
            )),
        }
    }

    /// Records a rejected request, cut down (see `rejection_record`), and
    /// builds its error reply.
    async fn reject(
        &self,
        received: Received,
        source: Option<&Source>,
        rejection: Rejection,
    ) -> ErrorReply {
        self.metrics.request_rejected(source, rejection.cause);
        let mut request = new_request(
            &received,
            source,
            RequestStatus::Rejected,
            Some(rejection.cause),
        );
        let proof_header = source
            .and_then(|source| source.verifier.as_ref())
            .and_then(|verifier| verifier.proof_header());
        let (payload, truncated) = rejection_record::cut_down(
            received.payload,
            self.limits.rejection_body_bytes,
            proof_header,
        );
        request.body_truncated = truncated;
        let request_id = request.id.clone();
        let mut reply = ErrorReply::new(rejection.status, rejection.message);
        let (store, budget) = (self.store.clone(), self.limits.rejection_budget);
        let recorded =
            tokio::task::spawn_blocking(move || store.record_rejection(&request, &payload, budget))
                .await;
        match recorded {
            Ok(Ok(true)) => reply = reply.recorded_as(request_id),
            // Larger than a whole budget: counted as dropped.
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not record a rejected request"),
            Err(error) => tracing::warn!(%error, "could not record a rejected request"),
        }
        match rejection.allow {
            Some(allowed) => reply.with_header("allow", allowed),
            None => reply,
        }
    }
}

/// How the ingress answers a source's refusal.
fn refused(source: &Source, payload: &Payload, refusal: Refusal) -> Rejection {
    let cause = refusal.cause();
    match refusal {
        Refusal::UnsafePath(unsafe_path) => Rejection::new(
            cause,
            StatusCode::BAD_REQUEST,
            format!("forwarded path {unsafe_path}"),
        ),
        Refusal::MethodNotAllowed => {
            let allowed = source.allowed_http_methods.join(", ");
            let message = format!(
                "method {} is not allowed on source \"{}\" (allowed: {allowed})",
                payload.method, source.name
            );
            Rejection {
                allow: Some(allowed),
                ..Rejection::new(cause, StatusCode::METHOD_NOT_ALLOWED, message)
            }
        }
        Refusal::VerificationFailed(error) => Rejection::new(
            cause,
            StatusCode::UNAUTHORIZED,
            format!("verification failed: {error}"),
        ),
    }
}

/// Reads the request line and headers; only source URLs go further.
fn read_head(session: &ServerSession) -> Result<Received, ErrorReply> {
    let header = session.req_header();
    let Some((source_name, path)) = split_source_path(header.uri.path()) else {
        return Err(ErrorReply::new(
            StatusCode::NOT_FOUND,
            "not a source URL: webhooks go to /e/{source}",
        ));
    };
    let mut headers: Vec<(String, String)> = header
        .headers
        .iter()
        .filter(|(name, _)| !SET_BY_INGRESS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(peer) = session.client_addr().and_then(|addr| addr.as_inet()) {
        let ip = peer.ip().to_canonical().to_string();
        headers.push((ORIGINAL_IP_HEADER.to_string(), ip));
    }
    let host = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.clone());
    Ok(Received {
        source_name: source_name.to_string(),
        path_and_query: header
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string(),
        host,
        payload: Payload {
            method: header.method.as_str().to_string(),
            path: path.to_string(),
            query: header.uri.query().unwrap_or_default().to_string(),
            headers,
            body: Vec::new(),
        },
        received_at: now_ms(),
        verified: None,
    })
}

fn new_request(
    received: &Received,
    source: Option<&Source>,
    status: RequestStatus,
    cause: Option<RejectionCause>,
) -> Request {
    let (source_id, source_name) = match source {
        Some(source) => (Some(source.id.as_str()), source.name.as_str()),
        None => (None, received.source_name.as_str()),
    };
    Request {
        status,
        rejection_cause: cause,
        verified: received.verified,
        ..Request::received(source_id, source_name, &received.payload)
    }
}

/// `/e/shop/extra/path` → `("shop", "/extra/path")`.
fn split_source_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(SOURCE_PREFIX)?;
    let (source, forwarded) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    (!source.is_empty()).then_some((source, forwarded))
}

/// Refuses a head whose Content-Length is not one plain number (`-5`, `abc`,
/// 2^64+1, two different values): pingora would take its body as empty, and
/// the body's bytes as the next request. (Beside Transfer-Encoding, pingora
/// drops Content-Length and reads the chunks.)
fn check_framing(header: &pingora::http::RequestHeader) -> Result<(), String> {
    let mut lengths = header.headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else {
        return Ok(());
    };
    // `u64::from_str` alone would take `+5`.
    let is_number = first.to_str().is_ok_and(|text| {
        text.bytes().all(|byte| byte.is_ascii_digit()) && text.parse::<u64>().is_ok()
    });
    if !is_number || lengths.any(|other| other != first) {
        let shown = String::from_utf8_lossy(first.as_bytes());
        return Err(format!("invalid Content-Length: {shown:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_framing, split_source_path};
    use crate::forwarded_path;
    use pingora::http::RequestHeader;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the request target, reading it never panics, and a
        /// forwarded path the ingress accepts stays under the destination's.
        #[test]
        fn any_target_is_read_without_panic_and_kept_under_the_destination(
            target in "/e/[a-z.%2Ee5cC;/\\?]{0,24}",
        ) {
            if let Some((_, forwarded)) = split_source_path(&target) {
                if forwarded_path::check(forwarded).is_ok() {
                    let base = url::Url::parse("http://sink.test/hooks").unwrap();
                    let joined = forwarded_path::join(&base, forwarded).unwrap();
                    prop_assert!(joined.path().starts_with("/hooks"));
                }
            }
        }

        /// Only one plain number is a Content-Length; nothing panics.
        #[test]
        fn content_length_is_a_plain_number_or_refused(length in "[-+0-9a-z ,]{0,24}") {
            let mut header = RequestHeader::build("POST", b"/e/shop", None).unwrap();
            if header.insert_header("content-length", &length).is_ok() {
                let plain = !length.is_empty()
                    && length.bytes().all(|b| b.is_ascii_digit())
                    && length.parse::<u64>().is_ok();
                prop_assert_eq!(check_framing(&header).is_ok(), plain);
            }
        }
    }

    #[test]
    fn source_and_forwarded_path_are_split() {
        assert_eq!(split_source_path("/e/shop"), Some(("shop", "")));
        assert_eq!(split_source_path("/e/shop/"), Some(("shop", "/")));
        assert_eq!(split_source_path("/e/shop/a/b"), Some(("shop", "/a/b")));
        assert_eq!(split_source_path("/e/"), None);
        assert_eq!(split_source_path("/x/shop"), None);
    }
}
