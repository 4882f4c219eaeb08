//! `hookgate listen` end to end: a gateway, `listen` as a real child process
//! delivering to a local sink, provider requests into `/e/shop`, and the
//! local answers recorded as the events' attempts.

use crate::common::{Reply, Sink, TestGateway, API_KEY, PATIENCE};
use hookgate::model::{Event, EventStatus};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const SOURCE: &str = "[[sources]]\nname = \"shop\"\n";

/// A running `hookgate listen` and the lines it prints (stdout and stderr).
struct Listener {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    printed: Vec<String>,
}

impl Listener {
    /// `hookgate listen` for the source `shop` as `name`, delivering to `sink`
    /// under `/webhooks`; returns once it says it is connected.
    async fn start(gateway: &TestGateway, name: &str, sink: &Sink) -> Listener {
        let api = format!("http://{}", gateway.gateway.api_addr.unwrap());
        Listener::start_to(&api, name, &sink.url("")).await
    }

    /// `hookgate listen` through the API at `api`, delivering to `to`.
    async fn start_to(api: &str, name: &str, to: &str) -> Listener {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command.args(listen_args(api, name, to));
        Listener::spawn(command).await
    }

    /// `hookgate listen --destination destination`, delivering to `to`.
    async fn start_on_destination(gateway: &TestGateway, destination: &str, to: &str) -> Listener {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command.args(destination_args(gateway, destination, to));
        Listener::spawn(command).await
    }

    /// `hookgate listen` with a terminal as its stdout (util-linux's
    /// `script` runs it on a pseudo-terminal and copies what it shows).
    async fn start_on_a_terminal(api: &str, name: &str, to: &str) -> Listener {
        let line = std::iter::once(env!("CARGO_BIN_EXE_hookgate").to_string())
            .chain(listen_args(api, name, to))
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new("script");
        command.args(["-qfec", &line, "/dev/null"]);
        Listener::spawn(command).await
    }

    /// Starts `command`, reading what it prints; returns once it says it is connected.
    async fn spawn(mut command: Command) -> Listener {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        tokio::spawn(forward_lines(stderr, sender.clone()));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        tokio::spawn(forward_lines(stdout, sender));
        let mut listener = Listener {
            child,
            lines,
            printed: Vec::new(),
        };
        listener.wait_line("connected").await;
        listener
    }

    /// Waits for a printed line containing `text`; returns it.
    async fn wait_line(&mut self, text: &str) -> String {
        self.wait_lines(text, 1).await
    }

    /// Waits until `n` printed lines contain `text`; returns the last.
    async fn wait_lines(&mut self, text: &str, n: usize) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let matching: Vec<&String> =
                    self.printed.iter().filter(|l| l.contains(text)).collect();
                if matching.len() >= n {
                    return matching[n - 1].clone();
                }
                match self.lines.recv().await {
                    Some(line) => self.printed.push(line),
                    None => panic!("hookgate listen exited; it printed {:?}", self.printed),
                }
            }
        });
        found
            .await
            .expect("hookgate listen did not print it in time")
    }

    /// Kills the process (as an interrupted laptop would go) and reaps it.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// `hookgate listen`'s arguments for the source `shop`, under `/webhooks`.
fn listen_args(api: &str, name: &str, to: &str) -> Vec<String> {
    let args = ["listen", "--api", api, "--key", API_KEY, "--source", "shop"];
    let more = ["--to", to, "--path", "/webhooks", "--name", name];
    args.iter().chain(&more).map(|a| a.to_string()).collect()
}

/// `hookgate listen`'s arguments for an existing destination.
fn destination_args(gateway: &TestGateway, destination: &str, to: &str) -> Vec<String> {
    let api = format!("http://{}", gateway.gateway.api_addr.unwrap());
    let args = ["listen", "--api", &api, "--key", API_KEY];
    let more = ["--destination", destination, "--to", to];
    args.iter().chain(&more).map(|a| a.to_string()).collect()
}

async fn forward_lines(
    from: impl tokio::io::AsyncBufRead + Unpin,
    to: mpsc::UnboundedSender<String>,
) {
    let mut lines = from.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = to.send(line);
    }
}

async fn post_order(gateway: &TestGateway, n: u32) {
    let (status, _) = gateway
        .post("/e/shop/orders", &json!({ "order": n }).to_string())
        .await;
    assert_eq!(status, 200);
}

fn successful(event: &Event) -> bool {
    event.status == EventStatus::Successful
}

/// The order number of a request the sink received.
fn order_of(received: &crate::common::Received) -> u64 {
    let body: Value = serde_json::from_slice(&received.body).unwrap();
    body["order"].as_u64().unwrap()
}

#[tokio::test]
async fn the_local_answer_is_recorded_as_the_events_attempt() {
    let gateway = TestGateway::start(SOURCE).await;
    let sink = Sink::start(Reply::StatusWithBody(201, "made locally".into())).await;
    let mut listener = Listener::start(&gateway, "dev", &sink).await;
    post_order(&gateway, 7).await;

    let received = sink.wait_for(1).await;
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/webhooks/orders");
    assert_eq!(order_of(&received[0]), 7);
    let event = gateway.wait_event(successful).await;
    assert_eq!(received[0].header("x-hookgate-event-id"), Some(&*event.id));

    let (status, attempts) = gateway
        .api_get(&format!("/attempts?event_id={}", event.id))
        .await;
    assert_eq!(status, 200);
    let attempt = &attempts["models"][0];
    assert_eq!(attempts["count"], 1);
    assert_eq!(attempt["response_status"], 201);
    assert_eq!(attempt["body"], "made locally");
    assert_eq!(attempt["status"], "SUCCESSFUL");
    assert_eq!(attempt["requested_url"], sink.url("/webhooks/orders"));
    let (_, shown) = gateway.api_get(&format!("/events/{}", event.id)).await;
    assert_eq!(shown["status"], "SUCCESSFUL");
    assert_eq!(shown["response_status"], 201);

    // The session that delivered it names itself on connecting.
    let connected = listener.wait_line("connected as ").await;
    let session = connected.split("connected as ").nth(1).unwrap();
    let session = session.split(';').next().unwrap();
    assert!(session.starts_with("cli_"), "{connected}");
    assert_eq!(
        (&attempt["cli_id"], &shown["cli_id"]),
        (&json!(session), &json!(session))
    );
    for (filter, count) in [
        (format!("cli_id={session}"), 1),
        ("cli_id=cli_other".into(), 0),
        ("cli_id[any]=true".into(), 1),
        ("cli_id[any]=false".into(), 0),
    ] {
        let (_, found) = gateway.api_get(&format!("/events?{filter}")).await;
        assert_eq!(found["count"], count, "{filter}: {found}");
    }

    let console = crate::console::Visitor::signed_in(&gateway).await;
    let page = console.get(&format!("/events/{}", event.id)).await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains("made locally"),
        "the console shows the local answer"
    );

    let line = listener.wait_line(&event.id).await;
    assert!(line.contains("  201  POST /webhooks/orders  "), "{line}");
    assert!(
        !line.contains('\x1b'),
        "no colour when not a terminal: {line}"
    );
    let (_, destinations) = gateway.api_get("/destinations?name=cli-dev").await;
    let destination = &destinations["models"][0];
    assert_eq!(destination["cli_path"], "/webhooks");
    assert_eq!(destination["url"], Value::Null);
}

/// A config with a CLI destination `laptop` behind `shop` and a URL
/// destination `orders-api`.
fn declared_cli_destination(url: &str) -> String {
    format!(
        "{SOURCE}\n[[destinations]]\nname = \"laptop\"\ncli_path = \"/hooks\"\n\n\
         [[destinations]]\nname = \"orders-api\"\nurl = \"{url}\"\n\n\
         [[connections]]\nname = \"shop-to-laptop\"\nsource = \"shop\"\ndestination = \"laptop\"\n"
    )
}

#[tokio::test]
async fn a_cli_destination_of_the_config_is_listened_on_by_name_without_a_new_connection() {
    let unused = Sink::start(Reply::Status(200)).await;
    let gateway = TestGateway::start(&declared_cli_destination(&unused.url(""))).await;
    let sink = Sink::start(Reply::Status(202)).await;
    let mut listener = Listener::start_on_destination(&gateway, "laptop", &sink.url("")).await;
    post_order(&gateway, 3).await;

    let received = sink.wait_for(1).await;
    assert_eq!(received[0].path, "/hooks/orders");
    assert_eq!(order_of(&received[0]), 3);
    let event = gateway.wait_event(successful).await;
    let line = listener.wait_line(&event.id).await;
    assert!(line.contains("  202  POST /hooks/orders  "), "{line}");
    let (_, connections) = gateway.api_get("/connections").await;
    assert_eq!(connections["count"], 1, "no connection made: {connections}");
    assert_eq!(connections["models"][0]["name"], "shop-to-laptop");
}

#[tokio::test]
async fn a_url_destination_an_unknown_one_or_both_flags_are_refused() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gateway = TestGateway::start(&declared_cli_destination(&sink.url(""))).await;
    for (destination, why) in [("orders-api", "not a CLI destination"), ("nowhere", "404")] {
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(destination_args(&gateway, destination, &sink.url("")))
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{destination}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(why), "{destination}: {stderr}");
    }
    let both = [
        "listen",
        "--source",
        "shop",
        "--destination",
        "laptop",
        "--to",
        "http://x",
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(both)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "--source and --destination clash"
    );
}

#[tokio::test]
async fn a_bookmark_triggered_with_target_cli_goes_to_the_sources_listeners() {
    let url_sink = Sink::start(Reply::Status(200)).await;
    let to_orders = "\n[[connections]]\nname = \"shop-to-orders\"\nsource = \"shop\"\ndestination = \"orders-api\"\n";
    let config = declared_cli_destination(&url_sink.url("")) + to_orders;
    let gateway = TestGateway::start(&config).await;
    let local = Sink::start(Reply::Status(200)).await;
    let mut listener = Listener::start_on_destination(&gateway, "laptop", &local.url("")).await;
    post_order(&gateway, 9).await;
    url_sink.wait_for(1).await;
    local.wait_for(1).await;
    let laptop = laptop_id(&gateway).await;
    let to_url = (gateway.wait_event(|e| successful(e) && e.destination_id != laptop)).await;

    // A bookmark of the URL connection's event, replayed to the CLI clients.
    let bookmark = json!({ "event_id": to_url.id, "label": "order 9" });
    let (status, bookmark) = gateway.api_send(Method::POST, "/bookmarks", bookmark).await;
    assert_eq!(status, 200, "{bookmark}");
    let trigger = format!("/bookmarks/{}/trigger", bookmark["id"].as_str().unwrap());
    let (status, made) = gateway
        .api_send(Method::POST, &trigger, json!({ "target": "cli" }))
        .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        made.as_array().unwrap().len(),
        1,
        "one CLI connection: {made}"
    );
    assert_eq!(made[0]["destination_id"], laptop);
    let replayed = made[0]["id"].as_str().unwrap();
    let received = local.wait_for(2).await;
    assert_eq!(received[1].header("x-hookgate-event-id"), Some(replayed));
    assert_eq!(order_of(&received[1]), 9);
    listener.wait_line(replayed).await;
    assert_eq!(
        url_sink.received().len(),
        1,
        "http's destination not sent again"
    );
}

/// The id of the CLI destination `laptop`.
async fn laptop_id(gateway: &TestGateway) -> String {
    let (_, laptop) = gateway.api_get("/destinations/laptop").await;
    laptop["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn on_a_terminal_the_status_is_coloured() {
    let gateway = TestGateway::start(SOURCE).await;
    let sink = Sink::start(Reply::Status(200)).await;
    let api = format!("http://{}", gateway.gateway.api_addr.unwrap());
    let mut listener = Listener::start_on_a_terminal(&api, "dev", &sink.url("")).await;
    post_order(&gateway, 1).await;
    let event = gateway.wait_event(successful).await;
    let line = listener.wait_line(&event.id).await;
    assert!(
        line.contains("\x1b[32m200\x1b[0m  POST /webhooks/orders  "),
        "{line:?}"
    );
}

fn held(event: &Event) -> bool {
    event.status == EventStatus::Hold
}

#[tokio::test]
async fn events_are_held_without_a_listener_and_go_to_the_one_that_connects() {
    let gateway = TestGateway::start(SOURCE).await;
    // What `hookgate listen --name dev --path /webhooks` makes, made beforehand.
    let connection = json!({
        "name": "shop-cli-dev",
        "source": "shop",
        "destination": { "name": "cli-dev", "cli_path": "/webhooks" },
    });
    let (status, made) = gateway
        .api_send(Method::PUT, "/connections", connection)
        .await;
    assert_eq!(status, 200, "{made}");
    for n in 1..=2 {
        post_order(&gateway, n).await;
    }
    gateway.wait_events(2, held).await;
    let (_, waiting) = gateway.api_get("/events?status=HOLD").await;
    assert_eq!(waiting["count"], 2, "{waiting}");
    let some_event = waiting["models"][0]["id"].as_str().unwrap();
    let console = crate::console::Visitor::signed_in(&gateway).await;
    let page = console.get(&format!("/events/{some_event}")).await;
    assert!(
        page.text().await.unwrap().contains("HOLD"),
        "the console shows it held"
    );

    let sink = Sink::start(Reply::Status(200)).await;
    let _listener = Listener::start(&gateway, "dev", &sink).await;
    let mut orders: Vec<u64> = sink.wait_for(2).await.iter().map(order_of).collect();
    orders.sort_unstable();
    assert_eq!(orders, [1, 2]);
    gateway.wait_events(2, successful).await;
    let (_, attempts) = gateway.api_get("/attempts").await;
    assert_eq!(attempts["count"], 2, "{attempts}");
    assert_eq!(attempts["models"][0]["trigger"], "INITIAL");
    let (_, connections) = gateway.api_get("/connections?name=shop-cli-dev").await;
    assert_eq!(
        connections["count"], 1,
        "listening again makes no second one"
    );
    assert_eq!(connections["models"][0]["id"], made["id"]);
}

#[tokio::test]
async fn held_events_stay_held_over_a_restart_until_a_listener_connects() {
    let unused = Sink::start(Reply::Status(200)).await;
    let config = declared_cli_destination(&unused.url(""));
    let gateway = TestGateway::start(&config).await;
    post_order(&gateway, 1).await;
    let before = gateway.wait_event(held).await;

    let gateway = gateway.restart(&config).await;
    let (_, waiting) = gateway.api_get("/events?status=HOLD").await;
    assert_eq!(waiting["models"][0]["id"], before.id, "{waiting}");
    let sink = Sink::start(Reply::Status(200)).await;
    let _listener = Listener::start_on_destination(&gateway, "laptop", &sink.url("")).await;
    assert_eq!(order_of(&sink.wait_for(1).await[0]), 1);
    let delivered = gateway.wait_event(successful).await;
    assert_eq!(delivered.id, before.id);
}

#[tokio::test]
async fn a_cli_destination_given_a_url_by_a_reload_sends_its_held_events_there() {
    let unused = Sink::start(Reply::Status(200)).await;
    let config = declared_cli_destination(&unused.url(""));
    let gateway = TestGateway::start(&config).await;
    post_order(&gateway, 4).await;
    gateway.wait_event(held).await;

    let url = Sink::start(Reply::Status(200)).await;
    let given_a_url = config.replace(
        "cli_path = \"/hooks\"",
        &format!("url = \"{}\"", url.url("/now")),
    );
    let reloaded = crate::common::config_in(gateway.dir.path(), &given_a_url);
    gateway.gateway.reload(reloaded).await.unwrap();
    let received = url.wait_for(1).await;
    assert_eq!(
        (received[0].path.as_str(), order_of(&received[0])),
        ("/now/orders", 4)
    );
    gateway.wait_event(successful).await;
}

#[tokio::test]
async fn a_paused_connections_events_stay_held_when_a_listener_connects() {
    let unused = Sink::start(Reply::Status(200)).await;
    let other = "\n[[sources]]\nname = \"other\"\n\n[[connections]]\nname = \"other-to-laptop\"\nsource = \"other\"\ndestination = \"laptop\"\n";
    let gateway = TestGateway::start(&(declared_cli_destination(&unused.url("")) + other)).await;
    let (_, paused) = gateway.api_get("/connections?name=shop-to-laptop").await;
    let paused = paused["models"][0]["id"].as_str().unwrap().to_string();
    let pause = format!("/connections/{paused}/pause");
    let (status, _) = gateway.api_send(Method::PUT, &pause, json!({})).await;
    assert_eq!(status, 200);
    post_order(&gateway, 1).await;
    let (status, _) = gateway.post("/e/other/orders", r#"{"order": 2}"#).await;
    assert_eq!(status, 200);
    gateway.wait_events(2, held).await;

    // The listener gets the other connection's event, released in the same
    // pass that left the paused one's held.
    let sink = Sink::start(Reply::Status(200)).await;
    let _listener = Listener::start_on_destination(&gateway, "laptop", &sink.url("")).await;
    assert_eq!(order_of(&sink.wait_for(1).await[0]), 2);
    gateway.wait_event(successful).await;
    let (_, waiting) = gateway.api_get("/events?status=HOLD").await;
    assert_eq!(
        waiting["count"], 1,
        "the paused one's is still held: {waiting}"
    );

    let unpause = format!("/connections/{paused}/unpause");
    let (status, _) = gateway.api_send(Method::PUT, &unpause, json!({})).await;
    assert_eq!(status, 200);
    let received = sink.wait_for(2).await;
    assert_eq!(order_of(&received[1]), 1);
}

#[tokio::test]
async fn listeners_share_events_and_a_killed_ones_event_goes_to_the_other() {
    let gateway = TestGateway::start(SOURCE).await;
    // The first listener's server never answers: it holds its one event.
    let stuck = Sink::start(Reply::Hang).await;
    let first = Listener::start(&gateway, "team", &stuck).await;
    post_order(&gateway, 1).await;
    stuck.wait_for(1).await;

    let sink = Sink::start(Reply::Status(200)).await;
    let _second = Listener::start(&gateway, "team", &sink).await;
    for n in 2..=4 {
        post_order(&gateway, n).await;
    }
    let mut orders: Vec<u64> = sink.wait_for(3).await.iter().map(order_of).collect();
    orders.sort_unstable();
    assert_eq!(
        orders,
        [2, 3, 4],
        "the busy listener is handed nothing more"
    );

    first.kill().await;
    let received = sink.wait_for(4).await;
    let mut orders: Vec<u64> = received.iter().map(order_of).collect();
    orders.sort_unstable();
    assert_eq!(
        orders,
        [1, 2, 3, 4],
        "each event delivered once by the second"
    );
    assert_eq!(stuck.received().len(), 1);
    gateway.wait_events(4, successful).await;
    let (_, attempts) = gateway.api_get("/attempts").await;
    assert_eq!(
        attempts["count"], 4,
        "the killed listener's event has one attempt: the second's"
    );
}

#[tokio::test]
async fn an_unreachable_local_server_is_recorded_as_a_failed_attempt() {
    let gateway = TestGateway::start(SOURCE).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let api = format!("http://{}", gateway.gateway.api_addr.unwrap());
    let mut listener = Listener::start_to(&api, "dev", &to).await;
    post_order(&gateway, 1).await;

    let event = gateway
        .wait_event(|e| e.status == EventStatus::Failed)
        .await;
    let (_, attempts) = gateway
        .api_get(&format!("/attempts?event_id={}", event.id))
        .await;
    let attempt = &attempts["models"][0];
    assert_eq!(attempt["status"], "FAILED");
    assert_eq!(attempt["error_code"], "CONNECTION_REFUSED");
    assert_eq!(attempt["response_status"], Value::Null);
    let line = listener.wait_line(&event.id).await;
    assert!(
        line.contains("  CONNECTION_REFUSED  POST /webhooks/orders  "),
        "{line}"
    );
}

/// A TCP relay to the API whose connections can be cut, as a network drops
/// them (it keeps accepting new ones).
struct Relay {
    addr: std::net::SocketAddr,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(to: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<Mutex<Vec<_>>> = Arc::default();
        let kept = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(to).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                kept.lock().unwrap().push(relayed);
            }
        });
        Relay { addr, connections }
    }

    /// Drops every connection relayed so far.
    fn cut(&self) {
        self.connections
            .lock()
            .unwrap()
            .drain(..)
            .for_each(|c| c.abort());
    }
}

#[tokio::test]
async fn a_listener_whose_stream_drops_connects_again_and_gets_what_waited() {
    let gateway = TestGateway::start(SOURCE).await;
    let relay = Relay::start(gateway.gateway.api_addr.unwrap()).await;
    let sink = Sink::start(Reply::Status(200)).await;
    let api = format!("http://{}", relay.addr);
    let mut listener = Listener::start_to(&api, "dev", &sink.url("")).await;
    post_order(&gateway, 1).await;
    // Reported (a delivery cut off before its report is delivered again).
    gateway.wait_events(1, successful).await;

    relay.cut();
    post_order(&gateway, 2).await;
    listener.wait_lines("connected", 2).await;
    let received = sink.wait_for(2).await;
    assert_eq!(received.iter().map(order_of).collect::<Vec<_>>(), [1, 2]);
    gateway.wait_events(2, successful).await;
}

#[tokio::test]
async fn reports_spend_none_of_the_keys_api_budget() {
    let limited = "api_rate_limit_per_minute = 60\n";
    let gateway = TestGateway::start_with(limited, SOURCE).await;
    let connection = json!({
        "name": "shop-cli-dev", "source": "shop",
        "destination": { "name": "cli-dev", "cli_path": "/webhooks" },
    });
    let (status, made) = gateway
        .api_send(Method::PUT, "/connections", connection)
        .await;
    assert_eq!(status, 200, "{made}");
    let destination = made["destination"]["id"].as_str().unwrap();

    // Five times the budget of reports in a minute (for no delivery: refused
    // as such, not as over the budget), and the API still answers.
    let path = format!("/destinations/{destination}/listen/dlv_none");
    let outcome = json!({ "status": 200, "body": null, "error_code": null, "latency_ms": 1, "url": "http://localhost/" });
    for _ in 0..300 {
        let (status, _) = gateway.api_send(Method::POST, &path, outcome.clone()).await;
        assert_eq!(status, 404);
    }
    assert_eq!(gateway.api_get("/sources").await.0, 200);
    // The rest of the API spends it.
    while gateway.api_get("/sources").await.0 != 429 {}
    let (status, _) = gateway.api_send(Method::POST, &path, outcome).await;
    assert_eq!(status, 404, "a report is taken even then");
}

/// The first `delivery` message of a raw stream.
async fn first_delivery(stream: &mut reqwest::Response) -> Value {
    let mut text = String::new();
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            let delivery = text.split("\n\n").find_map(|message| {
                let data = message.strip_prefix("event: delivery\ndata: ")?;
                serde_json::from_str(data).ok()
            });
            if let Some(delivery) = delivery {
                return delivery;
            }
        }
    });
    read.await.expect("no delivery came")
}

#[tokio::test]
async fn the_stream_and_reports_are_served_as_described() {
    let rest = format!(
        "{SOURCE}{}",
        crate::common::route("shop", "web", "http://127.0.0.1:9/", "")
    );
    let gateway = TestGateway::start(&rest).await;
    let answer = gateway.api(Method::GET, "/destinations/web/listen").send();
    assert_eq!(
        answer.await.unwrap().status(),
        422,
        "a URL destination has no listeners"
    );
    let connection = json!({
        "name": "shop-cli-raw", "source": "shop",
        "destination": { "name": "cli-raw", "cli_path": "/in" },
    });
    let (status, made) = gateway
        .api_send(Method::PUT, "/connections", connection)
        .await;
    assert_eq!(status, 200, "{made}");
    let destination = made["destination"]["id"].as_str().unwrap();
    for unsafe_path in ["hooks", "/a/../b", ""] {
        let change = json!({ "cli_path": unsafe_path });
        let path = format!("/destinations/{destination}");
        let (status, refused) = gateway.api_send(Method::PUT, &path, change).await;
        assert_eq!(status, 422, "{unsafe_path:?}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("cli_path"),
            "{refused}"
        );
    }

    let api = gateway.gateway.api_addr.unwrap();
    let listen = format!("http://{api}/destinations/{destination}/listen");
    let mut stream = gateway
        .http
        .get(listen)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    gateway.post("/e/shop/a?b=1", r#"{"order": 1}"#).await;
    let delivery = first_delivery(&mut stream).await;
    assert_eq!(delivery["path"], "/in/a?b=1");
    assert_eq!(delivery["method"], "POST");
    assert_eq!(delivery["body_base64"], "eyJvcmRlciI6IDF9");
    let outcome = json!({ "status": 200, "body": "ok", "error_code": null, "latency_ms": 3, "url": "http://localhost:3000/in/a?b=1" });
    let report = format!(
        "/destinations/{destination}/listen/{}",
        delivery["id"].as_str().unwrap()
    );
    let (status, taken) = gateway
        .api_send(Method::POST, &report, outcome.clone())
        .await;
    assert_eq!((status, &taken["delivery_id"]), (202, &delivery["id"]));
    let (status, _) = gateway.api_send(Method::POST, &report, outcome).await;
    assert_eq!(status, 404, "a delivery is reported once");
    let event = gateway.wait_event(successful).await;
    assert_eq!(delivery["event_id"], event.id);

    let document = gateway.http.get(format!("http://{api}/openapi.json"));
    let document: Value = document.send().await.unwrap().json().await.unwrap();
    let paths = &document["paths"];
    let stream = &paths["/2023-07-01/destinations/{id}/listen"]["get"];
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object());
    let report = &paths["/2023-07-01/destinations/{id}/listen/{delivery_id}"]["post"];
    assert!(report["requestBody"].is_object(), "{report}");
}
