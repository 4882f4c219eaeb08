//! W3C trace context through the real gateway: a provider's `traceparent` (or
//! a new trace) reaches every attempt with a span of its own; webhook jobs
//! likewise; spans exported to a real OTLP/HTTP collector on 127.0.0.1.

use crate::common::{route, write_config, Received, Reply, Sink, TestGateway};
use crate::outbound::{application, endpoint, event_types, gateway as outbound_gateway};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use hookgate::model::EventStatus;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";
const SENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// A `traceparent` as received, split; asserts it is well-formed version 00.
#[derive(Debug, PartialEq)]
struct Parent {
    trace_id: String,
    span_id: String,
    flags: String,
}

fn parent_of(received: &Received) -> Parent {
    let sent: Vec<_> = received.headers.get_all("traceparent").iter().collect();
    assert_eq!(sent.len(), 1, "exactly one traceparent: {sent:?}");
    let value = sent[0].to_str().unwrap();
    let fields: Vec<&str> = value.split('-').collect();
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    assert!(
        fields.len() == 4
            && fields[0] == "00"
            && [32, 16, 2] == [fields[1].len(), fields[2].len(), fields[3].len()]
            && fields.iter().all(|f| lower_hex(f))
            && nonzero(fields[1])
            && nonzero(fields[2]),
        "not a valid traceparent: {value:?}"
    );
    Parent {
        trace_id: fields[1].into(),
        span_id: fields[2].into(),
        flags: fields[3].into(),
    }
}

/// A source whose connection retries once, 10 ms later, to `sink`.
fn retried_once(sink: &Sink) -> String {
    let rule = r#"rules = [ { type = "retry", strategy = "linear", count = 1, interval = 10 } ]"#;
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "api", &sink.url("/hook"), rule)
    )
}

/// Posts to the `shop` source with extra headers; expects it accepted.
async fn post_with(gw: &TestGateway, headers: &[(&str, &str)]) {
    let mut request = gw.http.post(gw.url("/e/shop")).body("{}");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
}

/// A sink that fails the first attempt and takes the second.
async fn failing_once() -> Sink {
    Sink::start_answering(vec![Reply::Status(500)], Reply::Status(200)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_providers_trace_reaches_every_attempt_each_with_a_span_of_its_own() {
    let sink = failing_once().await;
    let gw = TestGateway::start(&retried_once(&sink)).await;
    post_with(&gw, &[("traceparent", SENT), ("tracestate", STATE)]).await;
    let received = sink.wait_for(2).await;
    let (first, retry) = (parent_of(&received[0]), parent_of(&received[1]));
    for attempt in [&first, &retry] {
        assert_eq!(attempt.trace_id, TRACE_ID, "the provider's trace");
        assert_ne!(
            attempt.span_id, SENDER_SPAN,
            "not a copy of the provider's span"
        );
        assert_eq!(attempt.flags, "01");
    }
    assert_ne!(first.span_id, retry.span_id, "a new span per attempt");
    for attempt in &received {
        let states: Vec<_> = attempt.headers.get_all("tracestate").iter().collect();
        assert_eq!(states, [STATE], "tracestate passed on once");
    }
    // Kept with the request: the ingress's span, under the provider's.
    let stored = gw.stored_requests().await;
    let kept = stored[0].trace.as_ref().expect("trace kept");
    assert_eq!(hex(&kept.trace_id), TRACE_ID);
    assert_ne!(hex(&kept.span_id), SENDER_SPAN);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_traceparent_a_new_trace_starts_and_all_attempts_share_it() {
    let sink = failing_once().await;
    let gw = TestGateway::start(&retried_once(&sink)).await;
    post_with(&gw, &[("tracestate", "alone=ignored")]).await;
    let received = sink.wait_for(2).await;
    let (first, retry) = (parent_of(&received[0]), parent_of(&received[1]));
    assert_eq!(first.trace_id, retry.trace_id);
    assert_ne!(first.span_id, retry.span_id);
    assert_eq!(first.flags, "01", "a trace the gateway starts is sampled");
    assert!(
        received[0].header("tracestate").is_none(),
        "no traceparent: tracestate dropped"
    );

    post_with(&gw, &[]).await;
    let another = parent_of(&sink.wait_for(3).await[2]);
    assert_ne!(
        another.trace_id, first.trace_id,
        "each request its own trace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_traceparent_is_replaced_by_a_new_trace() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&retried_once(&sink)).await;
    let upper_case = SENT.to_uppercase();
    let zero_trace = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    for invalid in [
        upper_case.as_str(),
        zero_trace,
        "00-garbage",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        post_with(&gw, &[("traceparent", invalid), ("tracestate", STATE)]).await;
    }
    let received = sink.wait_for(4).await;
    for attempt in &received {
        let parent = parent_of(attempt);
        assert_ne!(parent.trace_id, TRACE_ID);
        assert_ne!(parent.span_id, SENDER_SPAN);
        assert!(
            attempt.header("tracestate").is_none(),
            "its tracestate went with it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_jobs_traceparent_reaches_its_deliveries() {
    let gw = outbound_gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    endpoint(&gw, &app, &sink, json!({})).await;
    let job = json!({ "application_id": app, "event_type": "order.created", "payload": {},
        // A header the job asks for is no way to pick the attempt's span.
        "headers": { "traceparent": "00-11111111111111111111111111111111-2222222222222222-01" } });
    for traced in [true, false] {
        let mut call = gw.api(Method::POST, "/v1/webhook-jobs").json(&job);
        if traced {
            call = call.header("traceparent", SENT).header("tracestate", STATE);
        }
        assert_eq!(call.send().await.unwrap().status(), 201);
    }
    let received = sink.wait_for(2).await;
    let traced = received.iter().find(|r| r.header("tracestate").is_some());
    let traced = traced.expect("the traced job's delivery");
    let untraced = received
        .iter()
        .find(|r| r.header("tracestate").is_none())
        .unwrap();
    let (traced, untraced) = (parent_of(traced), parent_of(untraced));
    assert_eq!(traced.trace_id, TRACE_ID);
    assert_ne!(traced.span_id, SENDER_SPAN);
    for delivery in [&traced, &untraced] {
        assert_ne!(delivery.trace_id, "11111111111111111111111111111111");
    }
    assert_ne!(
        untraced.trace_id, TRACE_ID,
        "a new trace without a traceparent"
    );
}

/// What an OTLP/HTTP collector received: each call's path and body.
#[derive(Clone, Default)]
struct Collector {
    calls: Arc<Mutex<Vec<(String, Bytes)>>>,
}

impl Collector {
    async fn start() -> (Collector, SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(
                |State(collector): State<Collector>, uri: Uri, body: Bytes| async move {
                    collector
                        .calls
                        .lock()
                        .unwrap()
                        .push((uri.path().to_string(), body));
                },
            )
            .with_state(collector.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (collector, addr)
    }

    /// Every span exported to `/v1/traces`, decoded.
    fn spans(&self) -> Vec<Span> {
        let calls = self.calls.lock().unwrap();
        assert!(!calls.is_empty(), "nothing was exported");
        calls
            .iter()
            .inspect(|(path, _)| assert_eq!(path, "/v1/traces"))
            .flat_map(|(_, body)| {
                let export = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
                let resources = export.resource_spans.into_iter();
                resources.flat_map(|r| r.scope_spans.into_iter().flat_map(|s| s.spans))
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let found = span.attributes.iter().find(|a| a.key == key)?;
    match found.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(text) => Some(text.clone()),
        AnyValue::IntValue(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|span| span.name == name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_of_ingress_routing_and_each_attempt_are_exported_over_otlp() {
    let (collector, addr) = Collector::start().await;
    let sink = failing_once().await;
    let telemetry = format!("[telemetry]\notlp_endpoint = \"http://{addr}\"\n");
    let gw = TestGateway::start(&format!("{telemetry}{}", retried_once(&sink))).await;
    let secret_body = r#"{"card":"4242-secret-body"}"#;
    let request = gw.http.post(gw.url("/e/shop")).header("traceparent", SENT);
    let answer = request.body(secret_body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let sent_to_sink: Vec<Parent> = sink.wait_for(2).await.iter().map(parent_of).collect();
    gw.wait_event(|event| event.status == EventStatus::Successful)
        .await;
    // Stopping exports what is still batched.
    gw.stopped().await;

    let spans = collector.spans();
    assert!(
        spans.iter().all(|span| hex(&span.trace_id) == TRACE_ID),
        "{spans:?}"
    );
    let ingress = named(&spans, "ingress");
    assert_eq!(ingress.len(), 1, "{spans:?}");
    let ingress = ingress[0];
    assert_eq!(
        hex(&ingress.parent_span_id),
        SENDER_SPAN,
        "under the provider's span"
    );
    assert_eq!(
        attribute(ingress, "hookgate.source.name").as_deref(),
        Some("shop")
    );
    let ingress_span = hex(&ingress.span_id);

    let routes = named(&spans, "route");
    assert_eq!(routes.len(), 1);
    assert_eq!(hex(&routes[0].parent_span_id), ingress_span);
    assert_eq!(
        attribute(routes[0], "hookgate.connection.name").as_deref(),
        Some("shop-to-api")
    );

    let attempts = named(&spans, "attempt");
    let exported: Vec<String> = attempts.iter().map(|span| hex(&span.span_id)).collect();
    let received: Vec<String> = sent_to_sink.iter().map(|p| p.span_id.clone()).collect();
    assert_eq!(exported.len(), 2);
    assert!(
        received.iter().all(|span| exported.contains(span)),
        "{received:?} {exported:?}"
    );
    for attempt in &attempts {
        assert_eq!(hex(&attempt.parent_span_id), ingress_span);
        assert_eq!(
            attribute(attempt, "hookgate.destination.name").as_deref(),
            Some("api")
        );
    }
    let statuses: Vec<_> = attempts
        .iter()
        .map(|span| attribute(span, "http.response.status_code"))
        .collect();
    assert!(statuses.contains(&Some("500".into())) && statuses.contains(&Some("200".into())));
    // Attributes are names and ids: the body never leaves in a span.
    let exported_bytes = collector
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect::<Vec<_>>();
    let secret = b"4242-secret-body";
    assert!(exported_bytes
        .iter()
        .all(|body| !body.windows(secret.len()).any(|w| w == secret)));
}

#[test]
fn a_bad_otlp_endpoint_is_an_error_naming_file_and_key() {
    for bad in [
        "not a url",
        "ftp://collector:4318",
        "http://collector:4318/?q=1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(
            dir.path(),
            &format!("[telemetry]\notlp_endpoint = \"{bad}\"\n"),
        );
        let error = hookgate::Config::load(&path).unwrap_err().to_string();
        assert!(error.contains("gateway.toml:"), "{error}");
        assert!(error.contains("telemetry.otlp_endpoint"), "{error}");
    }
    let dir = tempfile::tempdir().unwrap();
    let off = write_config(dir.path(), "[telemetry]\notlp_endpoint = \"\"\n");
    assert_eq!(hookgate::Config::load(&off).unwrap().otlp_endpoint, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_jobs_span_is_exported_with_its_deliveries_under_it() {
    let (collector, addr) = Collector::start().await;
    let gw = outbound_gateway(&format!(
        "\n[telemetry]\notlp_endpoint = \"http://{addr}/\""
    ))
    .await;
    let sink = Sink::start(Reply::Status(200)).await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    endpoint(&gw, &app, &sink, json!({})).await;
    let job = json!({ "application_id": app, "event_type": "order.created", "payload": {} });
    let call = gw
        .api(Method::POST, "/v1/webhook-jobs")
        .header("traceparent", SENT);
    assert_eq!(call.json(&job).send().await.unwrap().status(), 201);
    let delivered = parent_of(&sink.wait_for(1).await[0]);
    gw.stopped().await;

    let spans = collector.spans();
    let jobs = named(&spans, "webhook job");
    assert_eq!(jobs.len(), 1, "{spans:?}");
    assert_eq!(hex(&jobs[0].trace_id), TRACE_ID);
    assert_eq!(hex(&jobs[0].parent_span_id), SENDER_SPAN);
    let attempts = named(&spans, "attempt");
    assert_eq!(attempts.len(), 1);
    assert_eq!(hex(&attempts[0].span_id), delivered.span_id);
    assert_eq!(attempts[0].parent_span_id, jobs[0].span_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsampled_trace_is_forwarded_unsampled_and_exports_no_span() {
    let (collector, addr) = Collector::start().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let telemetry = format!("[telemetry]\notlp_endpoint = \"http://{addr}\"\n");
    let gw = TestGateway::start(&format!("{telemetry}{}", retried_once(&sink))).await;
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    post_with(&gw, &[("traceparent", unsampled)]).await;
    let forwarded = parent_of(&sink.wait_for(1).await[0]);
    assert_eq!(forwarded.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(forwarded.flags, "00", "not sampled downstream either");
    // A sampled one after it: what export does happen is seen.
    post_with(&gw, &[("traceparent", SENT)]).await;
    sink.wait_for(2).await;
    gw.wait_events(2, |event| event.status == EventStatus::Successful)
        .await;
    gw.stopped().await;

    let spans = collector.spans();
    assert_eq!(named(&spans, "attempt").len(), 1, "{spans:?}");
    assert!(
        spans.iter().all(|span| hex(&span.trace_id) == TRACE_ID),
        "only the sampled trace is exported: {spans:?}"
    );
}
