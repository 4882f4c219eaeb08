//! Test harness: a real HTTP sink for destinations, the real gateway on
//! 127.0.0.1 with a temp data directory and the store of the suite's backend
//! (`crate::backend`), and helpers that await signals (sink arrivals, store
//! event changes) instead of sleeping.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hookgate::model::Event;
use hookgate::{Config, Gateway};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Generous upper bound on any wait; a test that hits it has failed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A request as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// The time between the second and the last of `received`: the span a rate
/// limit stretches. The first delivery is left out because it alone also opens
/// the connection, so it arrives late by the connect's time.
pub fn rate_limited_span(received: &[Received]) -> Duration {
    let paced = &received[1..];
    paced.last().unwrap().at - paced[0].at
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A receiver's Hookdeck check: which of the two signature headers the
    /// secret made (None: neither). Written from Hookdeck's documentation
    /// ("Verify the Hookdeck signature": base64 of the HMAC-SHA256 of the raw
    /// body with the signing secret, compared with `x-hookdeck-signature`, or
    /// with `x-hookdeck-signature-2` during a secret rotation), not from
    /// hookgate's code.
    pub fn hookdeck_signature_made_by(&self, secret: &str) -> Option<&'static str> {
        use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
        use hmac::{Hmac, Mac};
        ["x-hookdeck-signature", "x-hookdeck-signature-2"]
            .into_iter()
            .find(|header| {
                let Some(sent) = self.header(header) else {
                    return false;
                };
                let Ok(sent) = BASE64.decode(sent) else {
                    return false;
                };
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(&self.body);
                mac.verify_slice(&sent).is_ok()
            })
    }
}

/// How the sink answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    StatusWithBody(u16, String),
    /// Never answers.
    Hang,
    /// 302 to this URL.
    Redirect(String),
    /// This status, after a while (a destination that takes its time, so
    /// that deliveries overlap: see `Sink::most_in_flight`).
    Slowly(u16, Duration),
}

type Behavior = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct SinkState {
    received: Mutex<Vec<Received>>,
    count: watch::Sender<usize>,
    behavior: Mutex<Behavior>,
    /// Requests being answered, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
}

/// A destination: an HTTP server that records every request.
pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<SinkState>,
}

impl Sink {
    pub async fn start(reply: Reply) -> Sink {
        Sink::start_with(move |_| reply.clone()).await
    }

    /// A sink whose answer depends on the request (e.g. on its attempt header).
    pub async fn start_with(behavior: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Sink {
        Sink::start_on([127, 0, 0, 1], behavior).await
    }

    /// A sink on another loopback address (`[127, 0, 0, 2]`…).
    pub async fn start_on(
        ip: [u8; 4],
        behavior: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Sink {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .unwrap();
        Sink::serve(listener, Arc::new(behavior))
    }

    /// A sink that gives `first` answers in turn, then `then` to every request.
    pub async fn start_answering(first: Vec<Reply>, then: Reply) -> Sink {
        let answered = std::sync::atomic::AtomicUsize::new(0);
        Sink::start_with(move |_| {
            let n = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            first.get(n).unwrap_or(&then).clone()
        })
        .await
    }

    fn serve(listener: tokio::net::TcpListener, behavior: Behavior) -> Sink {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SinkState {
            received: Mutex::default(),
            count: watch::channel(0).0,
            behavior: Mutex::new(behavior),
            in_flight: Default::default(),
            most_in_flight: Default::default(),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Sink { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.state.behavior.lock().unwrap() = Arc::new(move |_| reply.clone());
    }

    /// The most requests the sink was answering at once.
    pub fn most_in_flight(&self) -> usize {
        self.state.most_in_flight.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut count = self.state.count.subscribe();
        let arrived = tokio::time::timeout(PATIENCE, count.wait_for(|c| *c >= n)).await;
        assert!(
            arrived.is_ok(),
            "sink {} got {} of {n} requests",
            self.addr,
            self.received().len()
        );
        self.received()
    }
}

async fn record(
    State(state): State<Arc<SinkState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers,
        body,
        at: Instant::now(),
    };
    let behavior = state.behavior.lock().unwrap().clone();
    let reply = behavior(&received);
    state.received.lock().unwrap().push(received);
    state.count.send_modify(|c| *c += 1);
    let in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
    let answered = answer(reply).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    answered
}

async fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Status(code) => (StatusCode::from_u16(code).unwrap(), String::new()).into_response(),
        Reply::StatusWithBody(code, body) => {
            (StatusCode::from_u16(code).unwrap(), body).into_response()
        }
        Reply::Hang => std::future::pending().await,
        Reply::Redirect(location) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        Reply::Slowly(code, after) => {
            tokio::time::sleep(after).await;
            (StatusCode::from_u16(code).unwrap(), String::new()).into_response()
        }
    }
}

/// The gateway's signing secret in test configs.
pub const SIGNING_SECRET: &str = "test-signing-secret";

/// The `[server]` key every node of a test cluster shares, as a cluster's
/// nodes must (README, "Running a cluster"): each opens what another sealed,
/// the cluster's signing secret first (base64 of 32 bytes of 7).
pub const CLUSTER_SECRETS_KEY: &str =
    "secrets_key = \"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\"\n";

/// The management API key in test configs.
pub const API_KEY: &str = "test-api-key";

/// The `[delivery]` keys of test configs: sinks listen on 127.0.0.1, which
/// objects created through the API may reach only when it is allowed.
pub const LOOPBACK_ALLOWED: &str = "allowed_networks = [\"127.0.0.0/8\"]";

/// A connection's rules that hold the router on a request whose body has
/// `"slow": true` until its transformation times out.
pub const SLOW_WHEN_MARKED: &str = r#"rules = [ { type = "transform", transformation = { name = "slow", code = "addHandler('transform', (r) => { if (r.body.slow) { while (true) {} } return r; })" } } ]"#;

/// The lines every test config starts with: ephemeral ingress and API ports,
/// data in `data/` beside the file. Line numbers in error messages count these 8.
pub fn config_text(rest: &str) -> String {
    config_text_with("", rest)
}

/// `config_text` with more `[server]` keys (`server_extra` ends with a newline).
pub fn config_text_with(server_extra: &str, rest: &str) -> String {
    config_text_full(LOOPBACK_ALLOWED, server_extra, rest)
}

/// `config_text_with` whose `[delivery]` has `delivery_extra` (inline-table
/// keys, e.g. `blocked_networks = […]`) instead of `LOOPBACK_ALLOWED`.
pub fn config_text_full(delivery_extra: &str, server_extra: &str, rest: &str) -> String {
    let delivery_extra = match delivery_extra {
        "" => String::new(),
        keys => format!(", {keys}"),
    };
    let delivery =
        format!("signing_secret = \"{SIGNING_SECRET}\", backlog_check_ms = 100{delivery_extra}");
    preamble(&delivery, server_extra, rest)
}

/// `config_text_with` without `[delivery] signing_secret`: the gateway
/// signs with the workspace secret it generates.
pub fn config_text_unsigned(server_extra: &str, rest: &str) -> String {
    preamble(
        &format!("backlog_check_ms = 100, {LOOPBACK_ALLOWED}"),
        server_extra,
        rest,
    )
}

/// The test preamble, `delivery` the keys of its `[delivery]` inline table.
fn preamble(delivery: &str, server_extra: &str, rest: &str) -> String {
    format!(
        "delivery = {{ {delivery} }}\n[server]\ningress_listen = \"127.0.0.1:0\"\napi_listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\napi_keys = [\"{API_KEY}\"]\ndata_dir = \"data\"\nshutdown_timeout_ms = 5000\ntransform_worker_exe = \"{}\"\n{server_extra}\n{rest}",
        // The test binary cannot serve as a transformation worker.
        env!("CARGO_BIN_EXE_hookgate")
    )
}

/// Writes `gateway.toml` (the test preamble, then `rest`) into `dir`.
pub fn write_config(dir: &Path, rest: &str) -> std::path::PathBuf {
    write_config_text(dir, &config_text(rest))
}

/// Writes `text` as `gateway.toml` into `dir`, with the `[store]` section of
/// the backend this suite runs on (`crate::backend`) after it.
pub fn write_config_text(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    let store = crate::backend::store_section(dir);
    std::fs::write(&path, format!("{text}{store}")).unwrap();
    path
}

fn load_config(path: &Path) -> Config {
    Config::load(path).unwrap_or_else(|e| panic!("test config is invalid:\n{e}"))
}

/// How many sled snapshots the store in a test gateway's `dir` has: one is
/// written when the last handle of a store closes in a graceful stop.
pub fn store_snapshots(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data"))
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("snap.")
        })
        .count()
}

/// The store a stopped gateway left in `dir`, opened as the gateway opens it
/// (from its `gateway.toml`); this fails while anything still holds it.
pub fn reopen_store(dir: &Path) -> hookgate::store::Store {
    let config = load_config(&dir.join("gateway.toml"));
    let limits = &config.limits;
    hookgate::store::Store::open_backed(
        &config.server.data_dir,
        limits.store_cache_bytes,
        limits.journal_segment_bytes,
        config.secrets_key.as_ref(),
        &config.store,
    )
    .unwrap()
}

/// Writes and loads a test config.
pub fn config_in(dir: &Path, rest: &str) -> Config {
    load_config(&write_config(dir, rest))
}

/// A gateway on a fresh temp dir.
/// Events that satisfy a condition, as stored when the watch began and as
/// announced since (`TestGateway::watch_events`).
pub struct EventWatch<'a, F> {
    gateway: &'a TestGateway,
    feed: tokio::sync::broadcast::Receiver<Event>,
    done: F,
    reached: HashSet<String>,
}

impl<F: Fn(&Event) -> bool> EventWatch<'_, F> {
    /// Waits until at least `n` events satisfy the condition.
    pub async fn wait(mut self, n: usize) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.reached.len() < n {
                match self.feed.recv().await {
                    Ok(event) if (self.done)(&event) => _ = self.reached.insert(event.id),
                    Ok(event) => _ = self.reached.remove(&event.id),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.reached = self.gateway.stored_events(&self.done)
                    }
                    Err(e) => panic!("event feed closed: {e}"),
                }
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "only {} of {n} events reached the awaited state",
            self.gateway.stored_events(&self.done).len()
        );
    }
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// After `gateway` (fields drop in order): closes what it left open.
    pub leftovers: crate::backend::Leftovers,
}

impl TestGateway {
    pub async fn start(rest: &str) -> TestGateway {
        TestGateway::start_with("", rest).await
    }

    /// A gateway with more `[server]` keys.
    pub async fn start_with(server_extra: &str, rest: &str) -> TestGateway {
        TestGateway::start_full(LOOPBACK_ALLOWED, server_extra, rest).await
    }

    /// A gateway from `config_text_full`.
    pub async fn start_full(delivery_extra: &str, server_extra: &str, rest: &str) -> TestGateway {
        let text = config_text_full(delivery_extra, server_extra, rest);
        TestGateway::start_text(tempfile::tempdir().unwrap(), &text).await
    }

    /// A gateway on `dir` from the whole config `text` (see `write_config_text`).
    pub async fn start_text(dir: tempfile::TempDir, text: &str) -> TestGateway {
        let config = load_config(&write_config_text(dir.path(), text));
        let gateway = Gateway::start(&config).await.unwrap();
        TestGateway {
            gateway,
            leftovers: crate::backend::leftovers(dir.path()),
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// A management API call with the test key; its answer is checked
    /// against `/openapi.json` when it arrives (see `ApiCall`).
    pub fn api(&self, method: reqwest::Method, path: &str) -> ApiCall {
        self.api_without_key(method, path).bearer_auth(API_KEY)
    }

    /// A management API call without credentials (give some with
    /// `bearer_auth` or `basic_auth`); its answer is checked as `api`'s.
    pub fn api_without_key(&self, method: reqwest::Method, path: &str) -> ApiCall {
        let api = format!(
            "http://{}",
            self.gateway.api_addr.expect("the API is on in tests")
        );
        ApiCall {
            request: self.http.request(method.clone(), format!("{api}{path}")),
            http: self.http.clone(),
            api,
            method,
            path: path.to_string(),
        }
    }

    /// Sends a JSON body to an API path; returns the status and the JSON answer.
    pub async fn api_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self.api(method, path).json(&body).send().await.unwrap();
        status_and_json(response).await
    }

    /// DELETEs an API path and returns the status.
    pub async fn api_delete(&self, path: &str) -> u16 {
        let response = self.api(reqwest::Method::DELETE, path).send().await;
        response.unwrap().status().as_u16()
    }

    /// GETs an API path and returns the status and JSON body.
    pub async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.api(reqwest::Method::GET, path).send().await.unwrap();
        status_and_json(response).await
    }

    /// Stops the gateway and starts it again on the same data, with `rest` as its config.
    pub async fn restart(self, rest: &str) -> TestGateway {
        let dir = self.stopped().await;
        TestGateway::start_in(dir, rest).await
    }

    /// A gateway on the data in `dir` (left by a stopped one), with `rest` as its config.
    pub async fn start_in(dir: tempfile::TempDir, rest: &str) -> TestGateway {
        TestGateway::start_text(dir, &config_text(rest)).await
    }

    /// Stops the gateway gracefully; its data dir stays for inspection.
    pub async fn stopped(self) -> tempfile::TempDir {
        // What the gateway left open is closed as this returns, once it stopped.
        let TestGateway {
            gateway,
            dir,
            leftovers: _closed_after_the_stop,
            ..
        } = self;
        gateway.shutdown().await.unwrap();
        dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway.ingress_addr, path)
    }

    /// POSTs a JSON body and returns the status and the parsed JSON answer.
    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Every stored request, oldest first, including those acknowledged an
    /// instant ago (the index is written just after the answer).
    pub async fn stored_requests(&self) -> Vec<hookgate::model::Request> {
        let store = &self.gateway.store;
        store.wait_indexed().await;
        store.requests().map(Result::unwrap).collect()
    }

    /// Waits until an accepted request has been routed (its events and ignored
    /// events are stored).
    pub async fn wait_routed(&self, request_id: &str) {
        let store = &self.gateway.store;
        let mut feed = store.subscribe_routed();
        let routed = tokio::time::timeout(PATIENCE, async {
            while store.is_unrouted(request_id).unwrap() {
                match feed.recv().await {
                    Ok(id) if id == request_id => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        panic!("routing feed closed")
                    }
                    _ => {}
                }
            }
        })
        .await;
        assert!(
            routed.is_ok(),
            "request {request_id} was not routed in time"
        );
    }

    /// Waits until at least `n` events satisfy `done`, as their changes are
    /// announced: an announcement follows every effect of a change (an
    /// issue it counts, a job it sums up), which the stored event may not
    /// (on PostgreSQL a failed attempt's event is committed before its issue
    /// is). Events already in that state when this starts count too: to wait
    /// for what an action brings, watch before it (`watch_events`).
    pub async fn wait_events(&self, n: usize, done: impl Fn(&Event) -> bool) {
        self.watch_events(done).wait(n).await;
    }

    /// The events that satisfy `done` now, and those announced to from now
    /// on (see `wait_events`). Taken before an action, an event the action
    /// changes counts only once its change is announced, not when its
    /// record is stored ahead of the change's other effects.
    pub fn watch_events<F: Fn(&Event) -> bool>(&self, done: F) -> EventWatch<'_, F> {
        let feed = self.gateway.store.subscribe_events();
        let reached = self.stored_events(&done);
        EventWatch {
            gateway: self,
            feed,
            done,
            reached,
        }
    }

    /// The ids of the stored events that satisfy `done`.
    fn stored_events(&self, done: &impl Fn(&Event) -> bool) -> HashSet<String> {
        let events = self.gateway.store.events().map(Result::unwrap);
        events.filter(|e| done(e)).map(|e| e.id).collect()
    }

    /// The first stored event that satisfies `done`.
    fn stored_event(&self, done: &impl Fn(&Event) -> bool) -> Option<Event> {
        self.gateway
            .store
            .events()
            .map(Result::unwrap)
            .find(|e| done(e))
    }

    /// Waits until the store reports an event that satisfies `done`, then returns it.
    pub async fn wait_event(&self, done: impl Fn(&Event) -> bool) -> Event {
        let mut feed = self.gateway.store.subscribe_events();
        if let Some(event) = self.stored_event(&done) {
            return event;
        }
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                match feed.recv().await {
                    Ok(event) if done(&event) => return event,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(event) = self.stored_event(&done) {
                            return event;
                        }
                    }
                    Err(e) => panic!("event feed closed: {e}"),
                }
            }
        })
        .await;
        found.expect("no event reached the awaited state in time")
    }
}

/// A management API request being built. Every answer, success or error,
/// is checked against what `/openapi.json` says that operation answers
/// (`openapi_check::assert_documented`) before the test sees it.
pub struct ApiCall {
    request: reqwest::RequestBuilder,
    http: reqwest::Client,
    /// The API's base URL, where the document is fetched.
    api: String,
    method: reqwest::Method,
    path: String,
}

impl ApiCall {
    fn with(self, change: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        ApiCall {
            request: change(self.request),
            ..self
        }
    }

    pub fn json(self, body: &(impl serde::Serialize + ?Sized)) -> Self {
        self.with(|request| request.json(body))
    }

    pub fn query(self, query: &(impl serde::Serialize + ?Sized)) -> Self {
        self.with(|request| request.query(query))
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        self.with(|request| request.header(name, value))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.with(|request| request.body(body))
    }

    pub fn bearer_auth(self, token: &str) -> Self {
        self.with(|request| request.bearer_auth(token))
    }

    pub fn basic_auth(self, user: &str, password: Option<&str>) -> Self {
        self.with(|request| request.basic_auth(user, password))
    }

    /// The same call again, to send several times.
    pub fn try_clone(&self) -> Option<ApiCall> {
        Some(ApiCall {
            request: self.request.try_clone()?,
            http: self.http.clone(),
            api: self.api.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
        })
    }

    /// Sends the request; the answer is read, checked, and handed back whole.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let response = self.request.send().await?;
        let (status, version, headers) = (
            response.status(),
            response.version(),
            response.headers().clone(),
        );
        let bytes = response.bytes().await?;
        let document = crate::openapi_check::document(&self.http, &self.api).await;
        let body = answer_value(&bytes);
        let (method, path) = (self.method.as_str(), self.path.as_str());
        crate::openapi_check::assert_documented(document, method, path, status.as_u16(), &body);
        let mut rebuilt = axum::http::Response::new(bytes);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(reqwest::Response::from(rebuilt))
    }
}

/// An API answer's body as JSON: an empty one (a 204) reads as null, one
/// that is no JSON as its text, which no schema of an object accepts.
fn answer_value(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The status and JSON body of an API answer.
async fn status_and_json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    (status, answer_value(&response.bytes().await.unwrap()))
}

/// The `[[destinations]]` + `[[connections]]` TOML for one source → sink pair.
pub fn route(source: &str, destination: &str, url: &str, connection_extra: &str) -> String {
    format!(
        "[[destinations]]\nname = \"{destination}\"\nurl = \"{url}\"\n\n[[connections]]\nname = \"{source}-to-{destination}\"\nsource = \"{source}\"\ndestination = \"{destination}\"\n{connection_extra}\n"
    )
}

/// A bulk retry of events as a crash leaves it: running, nothing done yet,
/// for the store to hold before a gateway resumes it.
pub fn bulk_retry_left_running(
    id: &str,
    query: &str,
    estimated_count: u64,
) -> hookgate::model::BulkRetry {
    hookgate::model::BulkRetry {
        id: id.into(),
        kind: hookgate::model::BulkKind::Events,
        query: hookgate::model::BulkQuery::Encoded(query.into()),
        status: hookgate::model::BulkStatus::Running,
        estimated_count,
        completed_count: 0,
        failed_count: 0,
        cursor: None,
        created_at: hookgate::ids::now_ms(),
        updated_at: None,
        completed_at: None,
        cancelled_at: None,
    }
}

/// `[server]` keys of every test with outbound endpoints: sinks are plain
/// http on 127.0.0.1.
pub const INSECURE: &str = "allow_insecure_endpoints = true\n";
