//! Optional OTLP export of spans (`[telemetry] otlp_endpoint`): a request's
//! receipt up to its durable ack, its routing through each connection, each
//! delivery attempt, and the creation of a webhook job. The ids are those of
//! `trace_context` (the ones sent in `traceparent`), so the exported spans and
//! the receivers' own join up. Spans are built once the work is done, from its
//! start and end, so nothing lives across an await; when export is off every
//! call returns at once. Attributes are config names and ids, gateway ids and
//! outcomes: never bodies, headers or secrets.

use crate::forwarded_path::percent_decoded;
use crate::model::{Attempt, AttemptStatus, Connection, Destination, Source, WebhookJob};
use crate::trace_context::TraceContext;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use opentelemetry::trace::{
    Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use url::Url;

/// Where spans go; a `Telemetry::default()` exports nothing.
#[derive(Clone, Default)]
pub struct Telemetry {
    export: Option<(SdkTracerProvider, SdkTracer)>,
}

/// What an exported span is: its name and kind, its ids and its parent's.
struct SpanOf<'a> {
    name: &'static str,
    kind: SpanKind,
    own: &'a TraceContext,
    parent: Option<&'a TraceContext>,
    started: SystemTime,
}

impl Telemetry {
    /// Exports to the OTLP/HTTP collector at `endpoint` (its `/v1/traces`),
    /// batched by a task on the current tokio runtime; None: no export.
    pub fn start(endpoint: Option<&Url>) -> anyhow::Result<Telemetry> {
        let Some(endpoint) = endpoint else {
            return Ok(Telemetry::default());
        };
        let (endpoint, headers) = credentials_as_header(endpoint);
        let traces = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(traces)
            .with_headers(headers)
            .build()?;
        let exporter = Reported::new(exporter);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(Resource::builder().with_service_name("hookgate").build())
            .build();
        let tracer = provider.tracer("hookgate");
        Ok(Telemetry {
            export: Some((provider, tracer)),
        })
    }

    /// Whether spans are exported at all.
    pub fn exports(&self) -> bool {
        self.export.is_some()
    }

    /// A request from its receipt until it was durable and acknowledged.
    pub fn request_acknowledged(
        &self,
        span: &TraceContext,
        sent: Option<&TraceContext>,
        received_at_ms: u64,
        source: &Source,
        request_id: &str,
    ) {
        let of = SpanOf {
            name: "ingress",
            kind: SpanKind::Server,
            own: span,
            parent: sent,
            started: at_ms(received_at_ms),
        };
        self.export(of, Status::Unset, || {
            vec![
                KeyValue::new("hookgate.source.id", source.id.clone()),
                KeyValue::new("hookgate.source.name", source.name.clone()),
                KeyValue::new("hookgate.request.id", request_id.to_string()),
            ]
        });
    }

    /// A request routed through one connection: an event, or why none.
    pub fn routed(
        &self,
        request_span: &TraceContext,
        started: SystemTime,
        connection: &Connection,
        event_id: &str,
        ignored_cause: Option<&str>,
    ) {
        if !self.exports() {
            return; // not even the span's ids
        }
        let of = SpanOf {
            name: "route",
            kind: SpanKind::Internal,
            own: &request_span.child(),
            parent: Some(request_span),
            started,
        };
        self.export(of, Status::Unset, || {
            vec![
                KeyValue::new("hookgate.source.id", connection.source_id.clone()),
                KeyValue::new("hookgate.connection.id", connection.id.clone()),
                KeyValue::new("hookgate.connection.name", connection.name.clone()),
                KeyValue::new("hookgate.destination.id", connection.destination_id.clone()),
                KeyValue::new("hookgate.event.id", event_id.to_string()),
                KeyValue::new(
                    "hookgate.ignored.cause",
                    ignored_cause.unwrap_or("").to_string(),
                ),
            ]
        });
    }

    /// One delivery attempt, whose span `own` was sent in its `traceparent`.
    pub fn attempted(
        &self,
        own: &TraceContext,
        parent: Option<&TraceContext>,
        destination: &Destination,
        attempt: &Attempt,
    ) {
        let of = SpanOf {
            name: "attempt",
            kind: SpanKind::Client,
            own,
            parent,
            started: at_ms(attempt.created_at),
        };
        let status = match attempt.status {
            AttemptStatus::Successful => Status::Ok,
            AttemptStatus::Failed => Status::error(attempt.error_code.clone().unwrap_or_default()),
        };
        self.export(of, status, || {
            let mut attributes = vec![
                KeyValue::new("hookgate.destination.id", destination.id.clone()),
                KeyValue::new("hookgate.destination.name", destination.name.clone()),
                KeyValue::new("hookgate.event.id", attempt.event_id.clone()),
                KeyValue::new("hookgate.attempt.number", i64::from(attempt.attempt_number)),
            ];
            if let Some(status) = attempt.response_status {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
            }
            attributes
        });
    }

    /// A webhook job created through the API (its deliveries' parent span).
    pub fn job_created(&self, job: &WebhookJob, sent: Option<&TraceContext>) {
        let Some(span) = &job.trace else { return };
        let of = SpanOf {
            name: "webhook job",
            kind: SpanKind::Server,
            own: span,
            parent: sent,
            started: at_ms(job.created_at),
        };
        self.export(of, Status::Unset, || {
            vec![
                KeyValue::new("hookgate.application.id", job.application_id.clone()),
                KeyValue::new("hookgate.job.id", job.id.clone()),
                KeyValue::new("hookgate.event_type", job.event_type.clone()),
            ]
        });
    }

    /// Exports what is still batched and stops (blocks: call it off the
    /// runtime's workers).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.export {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "spans could not all be exported");
            }
        }
    }

    /// Builds and ends the span now; its attributes are made only when exported.
    fn export(&self, of: SpanOf<'_>, status: Status, attributes: impl FnOnce() -> Vec<KeyValue>) {
        let Some((_, tracer)) = &self.export else {
            return;
        };
        // A trace not sampled upstream stays unsampled here (the sampler
        // decides from the parent); one the gateway starts is sampled.
        if of.parent.is_none() && !of.own.sampled() {
            return;
        }
        let parent = match of.parent {
            Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(parent.trace_id),
                SpanId::from_bytes(parent.span_id),
                TraceFlags::new(parent.flags),
                true,
                TraceState::NONE,
            )),
            None => Context::new(),
        };
        let mut builder = tracer
            .span_builder(of.name)
            .with_kind(of.kind)
            .with_start_time(of.started)
            .with_attributes(attributes())
            .with_status(status);
        builder.trace_id = Some(TraceId::from_bytes(of.own.trace_id));
        builder.span_id = Some(SpanId::from_bytes(of.own.span_id));
        builder.start_with_context(tracer, &parent).end();
    }
}

/// The endpoint without its user name and password, which go in an
/// `authorization: Basic` header instead: an export error names the URL it
/// was sent to, and a logged error must not hold the collector's password.
fn credentials_as_header(endpoint: &Url) -> (Url, HashMap<String, String>) {
    let mut headers = HashMap::new();
    if endpoint.username().is_empty() && endpoint.password().is_none() {
        return (endpoint.clone(), headers);
    }
    let user = percent_decoded(endpoint.username());
    let password = percent_decoded(endpoint.password().unwrap_or(""));
    let credentials = BASE64.encode(format!("{user}:{password}"));
    headers.insert("authorization".into(), format!("Basic {credentials}"));
    let mut bare = endpoint.clone();
    // Cannot fail: the URL is http(s) with a host (checked with the config).
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    (bare, headers)
}

/// The OTLP exporter, whose failures are logged here: once when exports
/// start failing (not for every batch, nor every span), once when they work
/// again. The SDK is told every export went well, or it would log each
/// failed batch itself.
#[derive(Debug)]
struct Reported<E> {
    exporter: E,
    failing: AtomicBool,
}

impl<E> Reported<E> {
    fn new(exporter: E) -> Reported<E> {
        Reported {
            exporter,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        match self.exporter.export(batch).await {
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("spans are exported to the OTLP endpoint again");
            }
            Ok(()) => {}
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    %error,
                    spans,
                    "spans could not be exported to the OTLP endpoint; they are dropped, and \
                     further failures are not logged until an export succeeds"
                );
            }
            Err(_) => {}
        }
        Ok(())
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.exporter.set_resource(resource);
    }
}

fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collectors_credentials_go_in_a_header_not_the_url() {
        let endpoint = Url::parse("https://otel:p%40ss@collector:4318/base").unwrap();
        let (bare, headers) = credentials_as_header(&endpoint);
        assert_eq!(bare.as_str(), "https://collector:4318/base");
        // base64("otel:p@ss")
        assert_eq!(headers["authorization"], "Basic b3RlbDpwQHNz");
        let plain = Url::parse("http://collector:4318").unwrap();
        assert_eq!(credentials_as_header(&plain), (plain, HashMap::new()));
    }
}
