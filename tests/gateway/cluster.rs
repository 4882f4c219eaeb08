//! Cluster mode (preview, issue #23): gateways whose store keeps its records
//! in PostgreSQL, on a throwaway server (see `hookgate::store::test_postgres`).

use crate::common::*;
use axum::http::Method;
use hookgate::model::EventStatus;
use hookgate::store::test_postgres;
use serde_json::json;
use std::time::Duration;

/// A `[store]` section on a new database, and a source routed to `sink`.
fn on_postgres(database: &str, sink: &Sink) -> String {
    format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{database}\"\n\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

/// A node of a test cluster on `config` (its `rest`, see `config_text`).
async fn node(config: &str) -> TestGateway {
    TestGateway::start_with(CLUSTER_SECRETS_KEY, config).await
}

fn new_database() -> String {
    test_postgres::connection_string(&test_postgres::database().config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_on_postgres_accepts_routes_delivers_and_lists_a_request() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = node(&on_postgres(&new_database(), &sink)).await;
    let (status, body) = gw.post("/e/shop", r#"{"n":1}"#).await;
    assert_eq!(status, 200);
    let delivered = sink.wait_for(1).await;
    assert_eq!(&delivered[0].body[..], br#"{"n":1}"#);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    gw.wait_event(|e| e.request_id == request_id && e.status == EventStatus::Successful)
        .await;
    let (status, page) = gw.api_get("/requests").await;
    assert_eq!(status, 200);
    assert_eq!(page["models"][0]["id"], request_id.as_str());
    let (status, events) = gw
        .api_get(&format!("/events?request_id={request_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(events["models"][0]["status"], "SUCCESSFUL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_accepted_by_one_node_is_listed_by_the_other() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let config = on_postgres(&new_database(), &sink);
    let (a, b) = (node(&config).await, node(&config).await);
    let (status, body) = a.post("/e/shop", "{}").await;
    assert_eq!(status, 200);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    a.wait_routed(&request_id).await;
    let (status, page) = b.api_get("/requests").await;
    assert_eq!(status, 200);
    assert_eq!(page["models"][0]["id"], request_id.as_str());
}

/// A lane that starts on a node has its lease taken at once: a destination
/// made through the API delivers before the next renewal (a third of the
/// lease, here longer than a test waits).
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_made_through_the_api_delivers_before_the_next_lease_renewal() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\nlease_ms = {}\n\n[[sources]]\nname = \"shop\"\n",
        new_database(),
        6 * PATIENCE.as_millis()
    );
    let gw = node(&config).await;
    let connection = json!({
        "name": "shop-to-later",
        "source_id": hookgate::ids::named_id("src", "shop"),
        "destination": { "name": "later", "url": sink.url("/") },
    });
    let (status, created) = gw.api_send(Method::POST, "/connections", connection).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    sink.wait_for(1).await;
}

/// Holds the cluster tests to one at a time (see `tests/cluster/main.rs`).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}

/// How long a node holds a lease unrenewed in these tests: a dead node's
/// lanes move within it.
const LEASE_MS: u64 = 1500;

/// `config` with leases held `lease_ms` unrenewed: for the tests where no
/// lease should have to expire, long enough that a renewal slowed by a
/// loaded machine (a round may take a third of the lease) does not drop
/// the lane mid-test, as a production lease (10 s) would not.
fn with_lease(config: &str, lease_ms: u64) -> String {
    config.replace(
        &format!("lease_ms = {LEASE_MS}\n"),
        &format!("lease_ms = {lease_ms}\n"),
    )
}

/// A cluster's config on `database`: the source `shop` routed to `sink`
/// through the destination `orders`, with `destination_extra` keys.
fn cluster_config(database: &str, sink: &Sink, destination_extra: &str) -> String {
    fanned_out_config(database, &[("orders", sink.url("/"))], destination_extra)
}

/// A cluster's config on `database`: the source `shop` routed to each of
/// `destinations` (name, url), each with `destination_extra` keys.
fn fanned_out_config(
    database: &str,
    destinations: &[(&str, String)],
    destination_extra: &str,
) -> String {
    let mut config = format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{database}\"\nlease_ms = {LEASE_MS}\n\n[[sources]]\nname = \"shop\"\n"
    );
    for (name, url) in destinations {
        config.push_str(&format!(
            "\n[[destinations]]\nname = \"{name}\"\nurl = \"{url}\"\n{destination_extra}\n\n[[connections]]\nname = \"shop-to-{name}\"\nsource = \"shop\"\ndestination = \"{name}\"\n"
        ));
    }
    config
}

/// Polls `done` until it holds: what another node does to the database
/// signals nothing here that could be awaited.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many events of the cluster satisfy `done`.
fn events_where(gw: &TestGateway, done: impl Fn(&hookgate::model::Event) -> bool) -> usize {
    let events = gw.gateway.store.events().map(Result::unwrap);
    events.filter(|event| done(event)).count()
}

/// Two nodes on one database, the first running the only lane (it started
/// alone, and a node keeps its lanes while they are within its share).
async fn two_nodes(config: &str) -> (TestGateway, TestGateway, String) {
    let a = node(config).await;
    let lane = a.gateway.catalog().load().target_ids()[0].clone();
    until("node A runs the lane", || a.gateway.runs_lane(&lane)).await;
    let b = node(config).await;
    (a, b, lane)
}

/// `two_nodes` on a new database, delivering to `sink` (see `cluster_config`).
async fn two_new_nodes(sink: &Sink, destination_extra: &str) -> (TestGateway, TestGateway, String) {
    two_nodes(&cluster_config(&new_database(), sink, destination_extra)).await
}

/// Once node A leads, events `0..count` posted through `nodes` and delivered.
async fn delivered_while_a_leads(a: &TestGateway, nodes: &[&TestGateway], count: usize) {
    until("node A leads", || a.gateway.leads()).await;
    post_numbered(nodes, 0..count).await;
    a.wait_events(count, |e| e.status == EventStatus::Successful)
        .await;
}

/// Posts the events `{"n": …}` of `numbers`, each to the next of `nodes` in turn.
async fn post_numbered(nodes: &[&TestGateway], numbers: std::ops::Range<usize>) {
    for n in numbers {
        let node = nodes[n % nodes.len()];
        let (status, _) = node.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
        assert_eq!(status, 200);
    }
}

/// The numbers the sink received, in order, repeats included.
fn delivered_numbers(sink: &Sink) -> Vec<u64> {
    numbers_in(sink.received().iter())
}

/// The numbers of `received`, in order, repeats included.
fn numbers_in<'a>(received: impl Iterator<Item = &'a Received>) -> Vec<u64> {
    let mut numbers: Vec<u64> = received
        .map(|received| {
            let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
            body["n"].as_u64().unwrap()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

async fn toggle(gw: &TestGateway, connection: &str, action: &str) {
    let path = format!("/connections/{connection}/{action}");
    let (status, _) = gw
        .api_send(reqwest::Method::PUT, &path, serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
}

async fn connection_id(gw: &TestGateway) -> String {
    let (status, page) = gw.api_get("/connections").await;
    assert_eq!(status, 200);
    page["models"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_deliver_each_event_once_within_the_destinations_concurrency() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Slowly(200, Duration::from_millis(50))).await;
    let (a, b, lane) = two_new_nodes(&sink, "concurrent = 4").await;
    post_numbered(&[&a, &b], 0..40).await;
    // Node A settles every attempt (it runs the lane).
    a.wait_events(40, |e| e.status == EventStatus::Successful)
        .await;
    assert_eq!(delivered_numbers(&sink), (0..40).collect::<Vec<_>>());
    let most = sink.most_in_flight();
    assert!(most <= 4, "{most} deliveries at once for a cap of 4");
    assert!(
        most >= 2,
        "deliveries overlapped, so the cap was put to the test"
    );
    assert!(a.gateway.runs_lane(&lane) && !b.gateway.runs_lane(&lane));
}

/// 50 a second, at most 4 at once, to a sink that takes a while to answer
/// (so that deliveries overlap and the cap is put to the test).
const PACED: &str = "rate_limit = 50\nrate_limit_period = \"second\"\nconcurrent = 4";
const RATE: usize = 50;
const CAP: usize = 4;

/// `held` events posted through both nodes while the connection is paused,
/// so that they are all due at once when it is unpaused (the pace is the
/// limit's, not the posting's); the connection's id.
async fn held_backlog(a: &TestGateway, b: &TestGateway, held: usize) -> String {
    let connection = connection_id(b).await;
    toggle(b, &connection, "pause").await;
    until("node A sees the pause", || {
        a.gateway.store.is_paused(&connection)
    })
    .await;
    post_numbered(&[a, b], 0..held).await;
    until("every event is held", || {
        events_where(a, |e| e.status == EventStatus::Hold) == held
    })
    .await;
    connection
}

/// How many of `received` arrived in each whole second after `from`.
fn per_second(received: &[Received], from: std::time::Instant, seconds: u32) -> Vec<usize> {
    (0..seconds)
        .map(|second| {
            let start = from + Duration::from_secs(u64::from(second));
            let end = start + Duration::from_secs(1);
            received
                .iter()
                .filter(|r| r.at >= start && r.at < end)
                .count()
        })
        .collect()
}

/// The most of `received` that arrived within any one second.
fn busiest_second(received: &[Received]) -> usize {
    (0..received.len())
        .map(|first| {
            let end = received[first].at + Duration::from_secs(1);
            received[first..].iter().take_while(|r| r.at < end).count()
        })
        .max()
        .unwrap_or(0)
}

/// 50 ± 2 in every second while both nodes queue events (each queued event
/// rings the lane's node), counted after the first second, and the cap.
#[tokio::test(flavor = "multi_thread")]
async fn a_destinations_rate_limit_holds_across_the_cluster() {
    let _alone = one_at_a_time().await;
    const HELD: usize = 150;
    const MORE: usize = 100;
    let sink = Sink::start(Reply::Slowly(200, Duration::from_millis(30))).await;
    let config = with_lease(&cluster_config(&new_database(), &sink, PACED), 9000);
    let (a, b, _) = two_nodes(&config).await;
    let connection = held_backlog(&a, &b, HELD).await;
    toggle(&b, &connection, "unpause").await;
    // Both nodes keep queueing, 25 a second, while the backlog drains.
    let mut tick = tokio::time::interval(Duration::from_millis(40));
    for n in HELD..HELD + MORE {
        tick.tick().await;
        post_numbered(&[&a, &b], n..n + 1).await;
    }
    let received = sink.wait_for(HELD + MORE).await;
    // Three whole seconds while events were still being queued (the
    // posting took four), after the first (it opens the connections).
    let counts = per_second(&received, received[0].at + Duration::from_secs(1), 3);
    assert!(
        counts.iter().all(|count| count.abs_diff(RATE) <= 2),
        "{counts:?} deliveries a second for a limit of {RATE}/s"
    );
    let most = sink.most_in_flight();
    assert!(most <= CAP, "{most} deliveries at once for a cap of {CAP}");
    assert_eq!(
        delivered_numbers(&sink),
        (0..(HELD + MORE) as u64).collect::<Vec<_>>(),
        "each delivered once"
    );
}

/// Settling an attempt (the event's lock, its read and its write: round
/// trips to PostgreSQL) holds none of the destination's slots. Here every
/// settle is 50 ms slower (a trigger on the queue's deletes): counted
/// against `concurrent = 4`, with the 30 ms the sink takes and a scan per
/// freed slot, each slot's turn took over 100 ms, under 40 sends a second
/// for a limit of 50.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_database_does_not_slow_a_paced_lane() {
    let _alone = one_at_a_time().await;
    const HELD: usize = 150;
    let sink = Sink::start(Reply::Slowly(200, Duration::from_millis(30))).await;
    let database = new_database();
    let config = with_lease(&cluster_config(&database, &sink, PACED), 9000);
    // Enough connections that the slow settles, which hold their events'
    // locks, do not make the unpause wait for one.
    let config = config.replace("[store]\n", "[store]\npool_size = 64\n");
    let (a, b, _) = two_nodes(&config).await;
    let connection = held_backlog(&a, &b, HELD).await;
    slow_settles(&database).await;
    toggle(&b, &connection, "unpause").await;
    let received = sink.wait_for(HELD).await;
    let counts = per_second(&received, received[0].at + Duration::from_secs(1), 2);
    assert!(
        counts.iter().all(|count| count.abs_diff(RATE) <= 2),
        "{counts:?} deliveries a second for a limit of {RATE}/s"
    );
    let most = sink.most_in_flight();
    assert!(most <= CAP, "{most} deliveries at once for a cap of {CAP}");
    assert_eq!(
        delivered_numbers(&sink),
        (0..HELD as u64).collect::<Vec<_>>(),
        "each delivered once"
    );
}

/// Makes each delete of a queue entry on `database` (an attempt settling
/// takes its event off the queue) wait 50 ms.
async fn slow_settles(database: &str) {
    slow_deletes(database, "queue").await;
}

/// Makes each delete of an entry of `tree` on `database` wait 50 ms; a
/// client of the database.
async fn slow_deletes(database: &str, tree: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.05); RETURN OLD; END $$;
             CREATE TRIGGER slow_delete BEFORE DELETE ON keyspace FOR EACH ROW
             WHEN (OLD.tree = '{tree}') EXECUTE FUNCTION slow_delete();"
        ))
        .await
        .unwrap();
    client
}

/// An unpause re-queues its connection's held events several at a time:
/// each release is several round trips to PostgreSQL, and one after the
/// other they fed a paced lane slower than its limit on a loaded machine.
/// With each held entry's delete made slow, the database shows two of them
/// under way at once.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpause_releases_held_events_several_at_a_time() {
    let _alone = one_at_a_time().await;
    const HELD: usize = 20;
    let sink = Sink::start(Reply::Status(200)).await;
    let database = new_database();
    let gw = node(&cluster_config(&database, &sink, "")).await;
    let connection = held_backlog(&gw, &gw, HELD).await;
    let client = slow_deletes(&database, "held").await;
    let overlapping = async {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event = 'PgSleep'",
                    &[],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) >= 2 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "held events were released one at a time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::join!(toggle(&gw, &connection, "unpause"), overlapping);
    assert_eq!(sink.wait_for(HELD).await.len(), HELD);
}

/// How many of the cluster's lanes each node runs.
fn lanes_run(nodes: &[&TestGateway]) -> Vec<usize> {
    let lanes = nodes[0].gateway.catalog().load().target_ids();
    nodes
        .iter()
        .map(|node| lanes.iter().filter(|l| node.gateway.runs_lane(l)).count())
        .collect()
}

/// Lanes move under load twice: node B joins (node A, alone until then,
/// gives up the lanes over its share), then node A leaves cleanly. The node
/// giving a lane up starts no attempt from then on, and the next one none
/// before those have finished: each destination's rate and cap hold through
/// the hand-overs, and each event is delivered once.
#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_and_the_cap_hold_while_lanes_move_to_another_node() {
    let _alone = one_at_a_time().await;
    const POSTED: usize = 150;
    let sinks = [
        Sink::start(Reply::Slowly(200, Duration::from_millis(30))).await,
        Sink::start(Reply::Slowly(200, Duration::from_millis(30))).await,
    ];
    let destinations = [
        ("orders", sinks[0].url("/")),
        ("invoices", sinks[1].url("/")),
    ];
    let config = fanned_out_config(&new_database(), &destinations, PACED);
    let a = node(&config).await;
    until("node A runs both lanes", || lanes_run(&[&a]) == [2]).await;
    post_numbered(&[&a], 0..POSTED).await;
    sinks[0].wait_for(POSTED / 4).await;
    let b = node(&config).await;
    until("a lane moves to node B", || lanes_run(&[&a, &b]) == [1, 1]).await;
    sinks[0].wait_for(POSTED / 2).await;
    a.stopped().await;
    until("node B runs both lanes", || lanes_run(&[&b]) == [2]).await;
    for sink in &sinks {
        let received = sink.wait_for(POSTED).await;
        let busiest = busiest_second(&received);
        assert!(
            busiest <= RATE + 2,
            "{busiest} deliveries within a second for a limit of {RATE}/s"
        );
        let most = sink.most_in_flight();
        assert!(most <= CAP, "{most} deliveries at once for a cap of {CAP}");
        assert_eq!(
            delivered_numbers(sink),
            (0..POSTED as u64).collect::<Vec<_>>(),
            "each delivered once"
        );
    }
}

/// A third node joins a cluster running six lanes: they spread (no node
/// runs more than its share, ceil(6 / 3)), and each event queued before,
/// during and after the moves is delivered exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn lanes_spread_to_a_joining_node_and_each_event_is_delivered_once() {
    let _alone = one_at_a_time().await;
    const LANES: usize = 6;
    let sink = Sink::start(Reply::Status(200)).await;
    let names: Vec<String> = (0..LANES).map(|n| format!("d{n}")).collect();
    let destinations: Vec<(&str, String)> = names
        .iter()
        .map(|name| (name.as_str(), sink.url(&format!("/{name}"))))
        .collect();
    let slow = "rate_limit = 20\nrate_limit_period = \"second\"";
    let config = fanned_out_config(&new_database(), &destinations, slow);
    let (a, b) = (node(&config).await, node(&config).await);
    until("the lanes spread over two nodes", || {
        lanes_run(&[&a, &b]) == [3, 3]
    })
    .await;
    post_numbered(&[&a, &b], 0..20).await;
    sink.wait_for(LANES * 5).await;
    let c = node(&config).await;
    post_numbered(&[&a, &b, &c], 20..40).await;
    until("the lanes spread over three nodes", || {
        lanes_run(&[&a, &b, &c]) == [2, 2, 2]
    })
    .await;
    post_numbered(&[&a, &b, &c], 40..60).await;
    sink.wait_for(LANES * 60).await;
    for name in &names {
        let path = format!("/{name}");
        let received = sink.received();
        let numbers = numbers_in(received.iter().filter(|r| r.path == path));
        assert_eq!(numbers, (0..60).collect::<Vec<_>>(), "{name}: each once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_nodes_lane_resumes_on_another_node_and_no_queued_event_is_lost() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let limit = "rate_limit = 10\nrate_limit_period = \"second\"";
    let (a, b, lane) = two_new_nodes(&sink, limit).await;
    post_numbered(&[&a], 0..30).await;
    a.wait_events(30, |_| true).await; // routed: queued in the database
    sink.wait_for(3).await;
    // Dropped without a shutdown, as a kill -9: it releases nothing and
    // starts no attempt from then on (its data stays, as a dead node's disk).
    let TestGateway {
        gateway, dir: _dir, ..
    } = a;
    drop(gateway);
    until("node B runs the lane", || b.gateway.runs_lane(&lane)).await;
    until("every event is delivered", || {
        events_where(&b, |e| e.status == EventStatus::Successful) == 30
    })
    .await;
    let mut numbers = delivered_numbers(&sink);
    let received = numbers.len();
    numbers.dedup();
    assert_eq!(numbers, (0..30).collect::<Vec<_>>(), "each delivered");
    let again = received - 30;
    assert!(
        again <= 1,
        "{again} delivered again: at most the one in flight"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_through_one_node_stops_the_other_nodes_deliveries_until_unpaused() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (a, b, lane) = two_new_nodes(&sink, "").await;
    post_numbered(&[&a], 0..1).await;
    sink.wait_for(1).await;
    let connection = connection_id(&b).await;
    toggle(&b, &connection, "pause").await;
    until("node A sees the pause", || {
        a.gateway.store.is_paused(&connection)
    })
    .await;
    post_numbered(&[&a], 1..4).await;
    a.wait_events(3, |e| e.status == EventStatus::Hold).await;
    assert_eq!(sink.received().len(), 1);
    toggle(&b, &connection, "unpause").await;
    sink.wait_for(4).await;
    assert!(a.gateway.runs_lane(&lane), "node A delivered them");
    assert!(!a.gateway.store.is_paused(&connection));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_node_leads_and_another_takes_over_when_it_stops() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let config = cluster_config(&new_database(), &sink, "");
    let a = node(&config).await;
    until("node A leads", || a.gateway.leads()).await;
    let b = node(&config).await;
    let lane = b.gateway.catalog().load().target_ids()[0].clone();
    assert!(a.gateway.leads() && !b.gateway.leads());
    a.stopped().await;
    until("node B leads", || b.gateway.leads()).await;
    until("node B runs the lane", || b.gateway.runs_lane(&lane)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_taken_by_one_node_for_an_application_made_through_another() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let config = cluster_config(&new_database(), &sink, "");
    let a = TestGateway::start_with(&format!("{}{CLUSTER_SECRETS_KEY}", INSECURE), &config).await;
    let b = TestGateway::start_with(&format!("{}{CLUSTER_SECRETS_KEY}", INSECURE), &config).await;
    let (status, app) =
        (b.api_send(Method::POST, "/v1/applications", json!({ "name": "prod" }))).await;
    assert_eq!(status, 201, "{app}");
    let endpoint = json!({ "application_id": app["id"], "url": sink.url("/hooks") });
    let (status, endpoint) = b.api_send(Method::POST, "/v1/endpoints", endpoint).await;
    assert_eq!(status, 201, "{endpoint}");
    let job =
        json!({ "application_id": app["id"], "event_type": "order.paid", "payload": { "n": 1 } });
    // Node A learns of both through the database's notifications, one after
    // the other: its first answers may still be 404s (no application yet),
    // then 201s with no delivery (the application, not yet its endpoint).
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (status, answer) = a
            .api_send(Method::POST, "/v1/webhook-jobs", job.clone())
            .await;
        let deliveries = answer["deliveries"].as_array().map(Vec::len);
        if status == 201 && deliveries == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node A never took the job for the endpoint: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.wait_for(1).await;
}

/// A bulk retry left running (as a crash leaves it) is worked by the node
/// that acquires the leader's lease, not by every node that starts. (Enough
/// events for three batches: a second node's run would overlap the first.)
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_left_running_is_resumed_by_the_leader_only() {
    let _alone = one_at_a_time().await;
    use hookgate::model::BulkStatus;
    const EVENTS: usize = 250;
    let sink = Sink::start(Reply::Status(500)).await;
    let config = cluster_config(&new_database(), &sink, "");
    let a = node(&config).await;
    until("node A leads", || a.gateway.leads()).await;
    post_numbered(&[&a], 0..EVENTS).await;
    a.wait_events(EVENTS, |e| e.status == EventStatus::Failed)
        .await;
    sink.set_reply(Reply::Status(200));
    let left_running = bulk_retry_left_running("bch_left_running", "status=FAILED", EVENTS as u64);
    a.gateway.store.save_bulk_retry(&left_running).unwrap();
    // Two nodes start after it was left, and the leader that had it stops:
    // one of them takes the lead and resumes it.
    let (b, c) = (node(&config).await, node(&config).await);
    a.stopped().await;
    until("node B or C leads", || {
        b.gateway.leads() || c.gateway.leads()
    })
    .await;
    until("the bulk retry completes", || {
        let job = b.gateway.store.bulk_retry("bch_left_running").unwrap();
        job.is_some_and(|job| job.status == BulkStatus::Completed)
    })
    .await;
    // Node B's event feed misses what node C's lane settles: polled.
    until("every event is delivered again", || {
        events_where(&b, |e| e.status == EventStatus::Successful) == EVENTS
    })
    .await;
    assert_eq!(
        events_where(&b, |e| e.requeues == 1),
        EVENTS,
        "each event retried once"
    );
    assert_eq!(sink.received().len(), 2 * EVENTS);
}

/// Records a bulk retry retries per batch (`api::bulk`'s `BATCH`): a change
/// of leader retries at most the batch under way twice.
const BULK_BATCH: usize = 100;

/// A bulk retry as node `gw`'s API shows it.
async fn bulk_retry(gw: &TestGateway, id: &str) -> serde_json::Value {
    let (status, job) = gw.api_get(&format!("/bulk/events/retry/{id}")).await;
    assert_eq!(status, 200, "{job}");
    job
}

/// Polls node `gw`'s API until bulk retry `id` satisfies `done`.
async fn until_bulk_retry(
    gw: &TestGateway,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let job = bulk_retry(gw, id).await;
        if done(&job) {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain until {what}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a bulk retry of every event through node `gw`'s API; its id.
async fn retry_every_event(gw: &TestGateway) -> String {
    let body = json!({ "query": {} });
    let (status, job) = gw.api_send(Method::POST, "/bulk/events/retry", body).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().unwrap().to_string()
}

/// A change of an event held under way on a node, which holds the event for
/// every node: a bulk retry comes to it and waits.
struct HeldEvent {
    release: std::sync::mpsc::Sender<()>,
    holder: tokio::task::JoinHandle<()>,
}

impl HeldEvent {
    /// Holds, on node `gw`, the event in the middle of a bulk retry's second
    /// batch (the 151st oldest): its first batch can be saved, its second not.
    async fn in_the_second_batch(gw: &TestGateway) -> HeldEvent {
        let (status, page) = gw
            .api_get("/events?order_by=created_at&dir=asc&limit=250")
            .await;
        assert_eq!(status, 200, "{page}");
        let id = page["models"][BULK_BATCH + BULK_BATCH / 2]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (holding, held) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let store = gw.gateway.store.clone();
        let holder = tokio::task::spawn_blocking(move || {
            let changed = store.update_event(&id, |_| {
                holding.send(()).unwrap();
                released.recv().unwrap();
                (hookgate::store::QueueMove::Stay, ())
            });
            assert!(changed.unwrap().is_some());
        });
        held.await.unwrap();
        HeldEvent { release, holder }
    }

    async fn release(self) {
        self.release.send(()).unwrap();
        self.holder.await.unwrap();
    }
}

/// A bulk retry started through the leader's API, which then dies mid-run,
/// is finished by the node that takes the lead over, from the progress saved
/// in the database (which every node's API shows). The leader is stopped
/// with its first batch saved and its second under way: a change of one of
/// that batch's events is held on node B (which holds the event for every
/// node), so node A cannot finish it until node B leads (the test's process
/// keeps node A's run going, where a kill would end it). Only that batch
/// may be retried twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_moves_to_the_new_leader_and_retries_twice_at_most_the_batch_under_way() {
    let _alone = one_at_a_time().await;
    const EVENTS: usize = 3 * BULK_BATCH;
    let sink = Sink::start(Reply::Status(200)).await;
    let (a, b, _lane) = two_new_nodes(&sink, &format!("concurrent = {CAP}")).await;
    delivered_while_a_leads(&a, &[&a, &b], EVENTS).await;
    let held = HeldEvent::in_the_second_batch(&b).await;
    let id = retry_every_event(&a).await;
    let first_batch = until_bulk_retry(&b, &id, "node B shows node A's first batch", |job| {
        job["completed_count"] == BULK_BATCH
    })
    .await;
    assert_eq!(first_batch["status"], "running");
    assert_eq!(first_batch["estimated_count"], EVENTS);
    assert_eq!(
        bulk_retry(&a, &id).await,
        first_batch,
        "one progress, on every node"
    );
    // Dropped without a shutdown, as a kill -9 (see
    // `a_dead_nodes_lane_resumes_on_another_node_and_no_queued_event_is_lost`).
    let TestGateway {
        gateway, dir: _dir, ..
    } = a;
    drop(gateway);
    // Node B resumes the job and comes to the held event too: both nodes'
    // runs of the second batch are under way when it is let go.
    until("node B leads", || b.gateway.leads()).await;
    held.release().await;
    let done = until_bulk_retry(&b, &id, "node B completes it", |job| {
        job["status"] == "completed"
    })
    .await;
    assert_eq!(done["completed_count"], EVENTS, "{done}");
    assert!(done["completed_at"].is_string(), "{done}");
    until("every event is delivered again", || {
        events_where(&b, |e| {
            e.status == EventStatus::Successful && e.requeues >= 1
        }) == EVENTS
    })
    .await;
    let twice = events_where(&b, |e| e.requeues > 1);
    assert!(
        twice <= BULK_BATCH,
        "{twice} events retried twice: at most the batch under way"
    );
    let mut numbers = delivered_numbers(&sink);
    let received = numbers.len();
    numbers.dedup();
    assert_eq!(numbers, (0..EVENTS as u64).collect::<Vec<_>>());
    let again = received - 2 * EVENTS;
    assert!(
        again <= twice + CAP,
        "{again} delivered again: at most those retried twice and those in flight"
    );
}

/// A cancel through a node that does not lead stops the leader's run of a
/// bulk retry after the batch under way.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_through_another_node_stops_the_leaders_bulk_retry_after_its_batch() {
    let _alone = one_at_a_time().await;
    const EVENTS: usize = 3 * BULK_BATCH;
    let sink = Sink::start(Reply::Status(200)).await;
    let (a, b, _lane) = two_new_nodes(&sink, "").await;
    delivered_while_a_leads(&a, &[&a, &b], EVENTS).await;
    let held = HeldEvent::in_the_second_batch(&b).await;
    let id = retry_every_event(&a).await;
    until_bulk_retry(&b, &id, "node A's first batch is saved", |job| {
        job["completed_count"] == BULK_BATCH
    })
    .await;
    let path = format!("/bulk/events/retry/{id}/cancel");
    let (status, cancelled) = b.api_send(Method::POST, &path, json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    held.release().await;
    let over = until_bulk_retry(&a, &id, "node A saves its second batch", |job| {
        job["completed_count"] == 2 * BULK_BATCH
    })
    .await;
    assert_eq!(over["status"], "cancelled", "{over}");
    assert_eq!(over["cancelled_at"], cancelled["cancelled_at"]);
    until("every retry of the two batches is delivered", || {
        events_where(&a, |e| {
            e.status == EventStatus::Successful && e.requeues == 1
        }) == 2 * BULK_BATCH
    })
    .await;
    assert_eq!(
        events_where(&a, |e| e.requeues > 0),
        2 * BULK_BATCH,
        "no third batch"
    );
}

/// A bulk retry started through a node that does not lead is run by the
/// leader, which hears of it from the database at once (not at its next
/// full refresh).
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_started_through_another_node_is_run_by_the_leader_at_once() {
    let _alone = one_at_a_time().await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (a, b, _lane) = two_new_nodes(&sink, "").await;
    delivered_while_a_leads(&a, &[&a], 3).await;
    let started = std::time::Instant::now();
    let id = retry_every_event(&b).await;
    until_bulk_retry(&a, &id, "node A completes it", |job| {
        job["status"] == "completed"
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "completed after {took:?}");
    assert!(!b.gateway.leads());
    sink.wait_for(6).await;
}

/// One answer of the ingress to a load client.
struct Answer {
    n: u64,
    sent: std::time::Instant,
    answered: std::time::Instant,
    status: u16,
}

/// Posts `{"n": …}` to `node` (numbers `worker`, `worker + step`, …) until
/// `stop`; returns every answer.
async fn post_until(
    node: String,
    worker: u64,
    step: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Answer> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for n in (worker..).step_by(step as usize) {
        if *stop.borrow() {
            break;
        }
        let sent = std::time::Instant::now();
        let response = client
            .post(&node)
            .body(format!("{{\"n\":{n}}}"))
            .send()
            .await;
        let status = response.map_or(0, |response| response.status().as_u16());
        let answered = std::time::Instant::now();
        answers.push(Answer {
            n,
            sent,
            answered,
            status,
        });
    }
    answers
}

/// PostgreSQL stopped (as a crash stops it) and started again under load on
/// two nodes: while it is down the API answers 503 with an error object and
/// the ingress 503, never 200 (a request is acknowledged only once its row
/// is committed); the nodes reconnect on their own, and every acknowledged
/// request is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn postgresql_restarted_under_load_acknowledges_nothing_while_down_and_loses_nothing_acknowledged(
) {
    let _alone = one_at_a_time().await;
    const WORKERS: u64 = 4;
    let server = test_postgres::TestServer::start();
    let sink = Sink::start(Reply::Status(200)).await;
    let database = test_postgres::connection_string(&server.database().config);
    let config = cluster_config(&database, &sink, "");
    let (a, b) = (node(&config).await, node(&config).await);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let node = [&a, &b][worker as usize % 2].url("/e/shop");
            tokio::spawn(post_until(node, worker, WORKERS, stopped.clone()))
        })
        .collect();
    sink.wait_for(20).await;
    tokio::task::block_in_place(|| server.stop());
    let down_from = std::time::Instant::now();
    let (status, error) = b.api_get("/requests").await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["status"], 503);
    assert!(error["message"].is_string(), "{error}");
    // Down until each node has answered a request sent while it was.
    until("both nodes answer 503 while the database is down", || {
        a.gateway.store.journal_failure().is_some() && b.gateway.store.journal_failure().is_some()
    })
    .await;
    let down_until = std::time::Instant::now();
    tokio::task::block_in_place(|| server.restart());
    until("both nodes acknowledge requests again", || {
        a.gateway.store.journal_failure().is_none() && b.gateway.store.journal_failure().is_none()
    })
    .await;
    let _ = stop.send(true);
    let mut answers = Vec::new();
    for worker in load {
        answers.extend(worker.await.unwrap());
    }

    let while_down = |answer: &&Answer| answer.sent >= down_from && answer.answered <= down_until;
    let refused = answers
        .iter()
        .filter(while_down)
        .filter(|a| a.status == 503)
        .count();
    let acknowledged_while_down: Vec<u64> = (answers.iter().filter(while_down))
        .filter(|answer| answer.status == 200)
        .map(|answer| answer.n)
        .collect();
    assert!(
        acknowledged_while_down.is_empty(),
        "acknowledged while the database was down: {acknowledged_while_down:?}"
    );
    assert!(refused > 0, "requests were answered while it was down");
    let acknowledged: Vec<u64> = (answers.iter())
        .filter(|answer| answer.status == 200)
        .map(|answer| answer.n)
        .collect();
    until("every acknowledged request is delivered", || {
        let mut delivered = delivered_numbers(&sink);
        delivered.dedup();
        acknowledged
            .iter()
            .all(|n| delivered.binary_search(n).is_ok())
    })
    .await;
    let deliveries = sink.received().len();
    let mut delivered = delivered_numbers(&sink);
    delivered.dedup();
    println!(
        "{} acknowledged ({refused} refused while the database was down); {deliveries} deliveries of {} requests: {} duplicates",
        acknowledged.len(),
        delivered.len(),
        deliveries - delivered.len()
    );
    let (status, _) = a.api_get("/requests").await;
    assert_eq!(status, 200, "the API works again");
}

/// A cluster's config with no `[delivery] signing_secret` (the nodes sign
/// with the workspace secret), the source `shop` routed to both `sinks`,
/// with `secrets_key` (a `[server]` line).
fn unsigned_cluster_config(database: &str, sinks: &[Sink], secrets_key: &str) -> String {
    let destinations = [
        ("orders", sinks[0].url("/")),
        ("invoices", sinks[1].url("/")),
    ];
    let rest = fanned_out_config(database, &destinations, "");
    config_text_unsigned(secrets_key, &rest)
}

async fn signing_secret(gw: &TestGateway) -> serde_json::Value {
    let (status, view) = gw.api_get("/workspace/signing-secret").await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Posts one event through each node and checks what both sinks then
/// receive, each sink from the node running its lane (one lane each): signed
/// with `current`, and with `previous` beside it when given.
async fn each_node_signs_with(
    nodes: [&TestGateway; 2],
    sinks: &[Sink],
    current: &str,
    previous: Option<&str>,
) {
    let delivered = sinks[0].received().len();
    post_numbered(&nodes, delivered..delivered + 2).await;
    for sink in sinks {
        let received = sink.wait_for(delivered + 2).await;
        for made in &received[delivered..] {
            assert_eq!(
                made.hookdeck_signature_made_by(current),
                Some("x-hookdeck-signature")
            );
            let beside = previous.and_then(|previous| made.hookdeck_signature_made_by(previous));
            assert_eq!(beside, previous.map(|_| "x-hookdeck-signature-2"));
        }
    }
}

/// In a cluster the workspace signing secret lives in the database: the
/// first node generates it, every node shows it and signs with it, and a
/// rotation through node B's API signs node A's deliveries within a second
/// (the database announces it), the old secret beside it for the overlap.
#[tokio::test(flavor = "multi_thread")]
async fn every_node_signs_with_the_clusters_secret_and_a_rotation_through_one_reaches_the_other() {
    let _alone = one_at_a_time().await;
    let sinks = [
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    ];
    let config = unsigned_cluster_config(&new_database(), &sinks, CLUSTER_SECRETS_KEY);
    let a = TestGateway::start_text(tempfile::tempdir().unwrap(), &config).await;
    let b = TestGateway::start_text(tempfile::tempdir().unwrap(), &config).await;
    until("each node runs one lane", || lanes_run(&[&a, &b]) == [1, 1]).await;
    let shown = signing_secret(&a).await;
    assert_eq!(shown["set_in"], "database");
    assert_eq!(
        signing_secret(&b).await,
        shown,
        "one secret for the cluster"
    );
    let first = shown["secret"].as_str().unwrap().to_string();
    each_node_signs_with([&a, &b], &sinks, &first, None).await;

    let path = "/workspace/signing-secret/rotate";
    let (status, rotated) = b.api_send(Method::POST, path, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let rotated_at = std::time::Instant::now();
    let second = rotated["secret"].as_str().unwrap().to_string();
    assert_eq!(rotated["previous_secret"], first.as_str());
    while signing_secret(&a).await["secret"] != second.as_str() {
        let waited = rotated_at.elapsed();
        assert!(
            waited < Duration::from_secs(1),
            "node A still signs with the old secret {waited:?} after the rotation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(signing_secret(&a).await, rotated);
    each_node_signs_with([&a, &b], &sinks, &second, Some(&first)).await;
}

/// A node that cannot open the cluster's signing secret (sealed with
/// another `secrets_key`) refuses to start instead of signing with another.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_another_secrets_key_refuses_to_start_naming_it() {
    let _alone = one_at_a_time().await;
    let sinks = [
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    ];
    let database = new_database();
    let _a = TestGateway::start_text(
        tempfile::tempdir().unwrap(),
        &unsigned_cluster_config(&database, &sinks, CLUSTER_SECRETS_KEY),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let another = "secrets_key = \"CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=\"\n";
    let other_key = unsigned_cluster_config(&database, &sinks, another);
    let config = hookgate::Config::load(&write_config_text(dir.path(), &other_key)).unwrap();
    let refused = hookgate::Gateway::start(&config).await.err().unwrap();
    let refused = format!("{refused:#}");
    assert!(
        refused.contains("does not open with this secrets key")
            && refused.contains("server.secrets_key: the same on every node"),
        "{refused}"
    );
}
