//! Restarts: queued and retrying events resume with their state.

use crate::common::{config_in, route, store_snapshots, Reply, Sink, TestGateway, PATIENCE};
use hookgate::ids::{derived_id, named_id, now_ms};
use hookgate::model::{Event, EventStatus, Payload, Request, Route};
use hookgate::store::{Backlog, CommitLog, Store};
use hookgate::Gateway;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread")]
async fn queued_events_resume_after_a_restart() {
    let sink = Sink::start(Reply::Status(503)).await;
    let rule =
        r#"rules = [ { type = "retry", strategy = "linear", count = 1000, interval = 200 } ]"#;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), rule)
    );
    let gw = TestGateway::start(&config).await;
    let mut request_ids = HashSet::new();
    for i in 0..5 {
        let (_, body) = gw.post("/e/shop", &format!("{{\"n\":{i}}}")).await;
        request_ids.insert(body["request_id"].as_str().unwrap().to_string());
    }
    sink.wait_for(5).await;
    let gw = gw.restart(&config).await;
    sink.set_reply(Reply::Status(200));
    let mut delivered = HashSet::new();
    while delivered.len() < 5 {
        let event = gw
            .wait_event(|e| {
                e.status == EventStatus::Successful && !delivered.contains(&e.request_id)
            })
            .await;
        assert!(
            event.attempts >= 2,
            "the attempt count survives the restart"
        );
        delivered.insert(event.request_id);
    }
    assert_eq!(delivered, request_ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn successful_events_are_not_sent_again_after_a_restart() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = shop_to(&sink);
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let gw = gw.restart(&config).await;
    // A second request is delivered after the restart; the first is not redelivered.
    gw.post("/e/shop", "{}").await;
    sink.wait_for(2).await;
    let second = gw
        .wait_event(|e| {
            e.status == EventStatus::Successful
                && e.attempts == 1
                && e.request_id != sink.received()[0].header("x-hookgate-request-id").unwrap()
        })
        .await;
    assert_eq!(
        sink.received()[1].header("x-hookgate-event-id"),
        Some(second.id.as_str())
    );
    // The event is stored successful a moment before its queue entry goes
    // (that order never loses an event to a crash): the entry must go too.
    let deadline = std::time::Instant::now() + PATIENCE;
    while gw
        .gateway
        .store
        .queue_depth(&second.destination_id)
        .unwrap()
        != 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a delivered event stays queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Source `shop`, routed to `sink` without rules.
fn shop_to(sink: &Sink) -> String {
    shop_with_rules(sink, "")
}

/// Source `shop`, routed to `sink` through `rules` (a connection's TOML line).
fn shop_with_rules(sink: &Sink, rules: &str) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), rules)
    )
}

/// An accepted request for source `shop`, as the ingress builds it.
fn accepted(body: &str) -> (Request, Payload) {
    let payload = Payload {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    };
    let request = Request::received(Some(&named_id("src", "shop")), "shop", &payload);
    (request, payload)
}

/// A stopped gateway's data dir, its config, and a sink for its one connection.
async fn stopped_gateway() -> (Sink, tempfile::TempDir, hookgate::Config) {
    stopped_gateway_with_rules("").await
}

/// `stopped_gateway` with `rules` on its connection.
async fn stopped_gateway_with_rules(rules: &str) -> (Sink, tempfile::TempDir, hookgate::Config) {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = shop_with_rules(&sink, rules);
    let gw = TestGateway::start(&config).await;
    gw.gateway.shutdown().await.unwrap();
    let loaded = config_in(gw.dir.path(), &config);
    (sink, gw.dir, loaded)
}

/// Stores `n` accepted requests as the ingress does, while the router is
/// gone (as in a crash): they are journaled and indexed, never routed.
async fn journal_without_routing(store: &Store, n: usize) -> HashSet<String> {
    let requests = (0..n).map(|n| accepted(&format!("{{\"n\":{n}}}")));
    journal_unrouted(store, requests.collect()).await
}

/// `journal_without_routing` for the given requests.
async fn journal_unrouted(store: &Store, requests: Vec<(Request, Payload)>) -> HashSet<String> {
    let (to_router, router_inbox) = std::sync::mpsc::sync_channel(1);
    drop(router_inbox);
    let (commit, writer) = CommitLog::start(
        store.clone(),
        16,
        16,
        to_router,
        Backlog::new(u64::MAX),
        Box::new(|_, _| {}),
    );
    let mut journaled = HashSet::new();
    for (request, payload) in requests {
        journaled.insert(request.id.clone());
        commit.commit(request, payload).await.unwrap();
    }
    commit.close().await;
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    journaled
}

/// The request ids of the first `n` deliveries.
async fn delivered_requests(sink: &Sink, n: usize) -> HashSet<String> {
    let received = sink.wait_for(n).await;
    received
        .iter()
        .map(|r| r.header("x-hookgate-request-id").unwrap().to_string())
        .collect()
}

/// A crash between the acknowledgement and the router: the requests are in
/// the journal (and maybe indexed), but no event exists. The next start must
/// find them past the router's watermark and route them.
#[tokio::test(flavor = "multi_thread")]
async fn requests_acknowledged_but_not_routed_before_a_crash_are_routed_on_the_next_start() {
    let (sink, _dir, loaded) = stopped_gateway().await;
    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    let journaled = journal_without_routing(&store, 3).await;
    assert_eq!(store.unrouted_requests().unwrap().len(), 3);
    drop(store);

    let gateway = Gateway::start(&loaded).await.unwrap();
    assert_eq!(delivered_requests(&sink, 3).await, journaled);
    let indexed: HashSet<String> = gateway.store.requests().map(|r| r.unwrap().id).collect();
    assert_eq!(indexed, journaled);
    assert!(gateway.store.unrouted_requests().unwrap().is_empty());
    gateway.shutdown().await.unwrap();
}

/// A crash after routing but before the router's watermark was recorded:
/// the next start replays the request, and the event it already has (here
/// delivered) is kept as it is, not made anew and sent again.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_request_keeps_the_event_it_already_has() {
    let (sink, _dir, loaded) = stopped_gateway().await;
    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    let (routed, unrouted) = (accepted(r#"{"n":1}"#), accepted(r#"{"n":2}"#));
    let routed_id = routed.0.id.clone();
    let unrouted_id = unrouted.0.id.clone();
    journal_unrouted(&store, vec![routed, unrouted]).await;
    let route = Route {
        source_id: &named_id("src", "shop"),
        connection_id: &named_id("web", "shop-to-orders"),
        destination_id: &named_id("des", "orders"),
    };
    let event_id = derived_id("evt", &routed_id, route.connection_id);
    let mut delivered = Event::new(event_id.clone(), &routed_id, route, now_ms(), false);
    delivered.status = EventStatus::Successful;
    delivered.next_attempt_at = None;
    store.save_event(&delivered).unwrap();
    store.flush().unwrap();
    drop(store);

    let gateway = Gateway::start(&loaded).await.unwrap();
    // The start routed the whole journal before it returned.
    let kept = gateway.store.event(&event_id).unwrap().unwrap();
    assert_eq!(kept, delivered);
    assert_eq!(
        delivered_requests(&sink, 1).await,
        HashSet::from([unrouted_id])
    );
    assert!(gateway
        .store
        .oldest_entry(route.destination_id)
        .unwrap()
        .is_none());
    gateway.shutdown().await.unwrap();
}

/// A deduplicate window runs between the requests' arrivals, not their
/// routing: requests routed together after a crash are judged as they came.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_a_crash_deduplicates_by_arrival_time() {
    let dedup =
        r#"rules = [ { type = "deduplicate", window = 60000, include_fields = ["body.id"] } ]"#;
    let (sink, _dir, loaded) = stopped_gateway_with_rules(dedup).await;
    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    let arrived = |body: &str, minutes_ago: u64| {
        let (mut request, payload) = accepted(body);
        request.received_at = now_ms() - minutes_ago * 60_000;
        (request, payload)
    };
    let journaled = vec![
        arrived(r#"{"id":1,"at":"a"}"#, 5),
        arrived(r#"{"id":1,"at":"b"}"#, 2), // 3 minutes after a: new again
        arrived(r#"{"id":1,"at":"c"}"#, 2), // with b: a repeat
    ];
    let (a, b) = (journaled[0].0.id.clone(), journaled[1].0.id.clone());
    journal_unrouted(&store, journaled).await;
    drop(store);

    let gateway = Gateway::start(&loaded).await.unwrap();
    assert_eq!(delivered_requests(&sink, 2).await, HashSet::from([a, b]));
    // The start routed the whole journal before it returned.
    let ignored: Vec<String> = gateway
        .store
        .ignored_events()
        .map(|ignored| ignored.unwrap().cause)
        .collect();
    assert_eq!(ignored, ["DEDUPLICATED"]);
    gateway.shutdown().await.unwrap();
}

/// A request the router could not route is marked with its journal location,
/// and the router's watermark moves on past it: the next start still routes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_set_aside_by_a_failed_routing_is_routed_on_the_next_start() {
    let (sink, _dir, loaded) = stopped_gateway().await;
    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    journal_without_routing(&store, 2).await;
    let mut journaled = Vec::new();
    store
        .each_unrouted_journaled(|committed| {
            journaled.push(committed);
            Ok(())
        })
        .unwrap();
    // What the router does when routing the first fails and the second works.
    let (failed, routed) = (&journaled[0], &journaled[1]);
    store.mark_unrouted(failed.id(), failed.location()).unwrap();
    store.set_routed_through(routed.location()).unwrap();
    store.flush().unwrap();
    drop(store);

    let gateway = Gateway::start(&loaded).await.unwrap();
    let delivered = delivered_requests(&sink, 1).await;
    assert_eq!(delivered, HashSet::from([failed.id().to_string()]));
    assert!(gateway.store.marked_unrouted().unwrap().is_empty());
    gateway.shutdown().await.unwrap();
}

/// sled writes its snapshot only when a store is opened, and replays its whole
/// log since the last one on the next open (seconds for a large store on a
/// cold disk). A clean stop reopens the store once to leave a snapshot behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_a_store_snapshot_for_a_quick_next_start() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = shop_to(&sink);
    let gw = TestGateway::start(&config).await;
    for n in 0..3 {
        assert_eq!(gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await.0, 200);
    }
    sink.wait_for(3).await;
    assert_eq!(
        store_snapshots(gw.dir.path()),
        0,
        "a new store has no snapshot yet"
    );
    let dir = gw.stopped().await;
    assert_eq!(store_snapshots(dir.path()), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_entry_left_behind_by_a_crash_is_dropped_not_attempted() {
    let sink = Sink::start_answering(vec![Reply::Status(500)], Reply::Status(200)).await;
    // One attempt at a time, so the lane meets the leftover before the event
    // queued after it; a failed attempt is retried a minute later.
    let retry =
        r#"rules = [ { type = "retry", strategy = "linear", count = 3, interval = 60000 } ]"#;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n[[destinations]]\nname = \"orders\"\nurl = \"{}\"\nconcurrent = 1\n[[connections]]\nname = \"shop-to-orders\"\nsource = \"shop\"\ndestination = \"orders\"\n{retry}\n",
        sink.url("/")
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    let failed = gw
        .wait_event(|e| e.status == EventStatus::Scheduled && e.attempts == 1)
        .await;
    // The state a crash between the event's change and its queue move leaves:
    // an entry at its old due time (already past), besides the new one.
    let dir = gw.stopped().await;
    let store = Store::open(&dir.path().join("data"), 1 << 20).unwrap();
    let left_behind = now_ms() - 1000;
    store
        .enqueue(&failed.destination_id, left_behind, &failed.id)
        .unwrap();
    drop(store);

    let gw = TestGateway::start_in(dir, &config).await;
    let (_, later) = gw.post("/e/shop", "{}").await;
    let later = later["request_id"].as_str().unwrap().to_string();
    let second = &sink.wait_for(2).await[1];
    assert_eq!(
        second.header("x-hookgate-request-id"),
        Some(later.as_str()),
        "the leftover entry was not attempted"
    );
    let store = &gw.gateway.store;
    let kept = store.event(&failed.id).unwrap().unwrap();
    assert_eq!(kept.attempts, 1);
    assert_eq!(
        kept.next_attempt_at, failed.next_attempt_at,
        "its own retry kept"
    );
    gw.wait_event(|e| e.request_id == later && e.status == EventStatus::Successful)
        .await;
    assert_eq!(store.queue_depth(&failed.destination_id).unwrap(), 1);
}

/// Paths stored before the ingress refused traversal (or replayed from a
/// bookmark) are checked again where they are joined to the destination URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_path_leaving_the_destination_is_refused_where_it_is_joined() {
    let sink = Sink::start(Reply::Status(200)).await;
    let retry = r#"rules = [ { type = "retry", strategy = "linear", count = 3, interval = 50 } ]"#;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/hooks"), retry)
    );
    let dir = TestGateway::start(&config).await.stopped().await;
    let loaded = config_in(dir.path(), &config);
    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    let with_path = |path: &str| {
        let (mut request, mut payload) = accepted("{}");
        (request.path, payload.path) = (path.to_string(), path.to_string());
        (request, payload)
    };
    let (escaping, inside) = (with_path("/../../outside"), with_path("/inside"));
    let (escaping_id, inside_id) = (escaping.0.id.clone(), inside.0.id.clone());
    journal_unrouted(&store, vec![escaping, inside]).await;
    drop(store);

    let gw = TestGateway::start_in(dir, &config).await;
    let failed = gw
        .wait_event(|e| e.request_id == escaping_id && e.status == EventStatus::Failed)
        .await;
    assert_eq!(failed.error_code.as_deref(), Some("UNSAFE_PATH"));
    assert_eq!(failed.attempts, 1, "a refused path is not retried");
    gw.wait_event(|e| e.request_id == inside_id && e.status == EventStatus::Successful)
        .await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hooks/inside");
}

/// Flips a byte in the record of the `n`th frame of a journal segment (frames:
/// `length (u32 LE) ++ crc32 ++ record`); returns the frame's offset.
fn damage_frame(segment: &std::path::Path, n: usize) -> u64 {
    let mut bytes = std::fs::read(segment).unwrap();
    let mut offset = 0;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
        offset += 8 + len as usize;
    }
    bytes[offset + 8 + 3] ^= 0xff;
    std::fs::write(segment, bytes).unwrap();
    offset as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn damage_amid_the_journal_stops_the_start_and_repair_keeps_every_whole_request() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = shop_to(&sink);
    let gw = TestGateway::start(&config).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
        assert_eq!(status, 200);
        ids.push(body["request_id"].as_str().unwrap().to_string());
    }
    sink.wait_for(3).await;
    let dir = gw.stopped().await;
    let segment = dir.path().join("data/journal/0000000000.journal");
    let damaged_at = damage_frame(&segment, 1);

    let error = match Gateway::start(&config_in(dir.path(), &config)).await {
        Ok(_) => panic!("started on a damaged journal"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains(&segment.display().to_string()), "{error}");
    assert!(
        error.contains(&format!("damaged at byte {damaged_at}")),
        "{error}"
    );

    let repair = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["repair", "--config"])
        .arg(dir.path().join("gateway.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&repair.stdout);
    assert!(
        repair.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&repair.stderr)
    );
    assert!(
        said.contains(&format!("at byte {damaged_at} set aside")),
        "{said}"
    );
    let set_aside: Vec<_> = std::fs::read_dir(dir.path().join("data/journal"))
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().contains(".journal.damaged-at-")
        })
        .collect();
    assert_eq!(set_aside.len(), 1);

    let gw = TestGateway::start_in(dir, &config).await;
    let store = &gw.gateway.store;
    for (n, id) in [(0, &ids[0]), (2, &ids[2])] {
        let payload = store.request_payload(id).unwrap().unwrap();
        assert_eq!(payload.body, format!("{{\"n\":{n}}}").as_bytes());
    }
    // New requests are taken and delivered after the repair.
    assert_eq!(gw.post("/e/shop", "{\"n\":3}").await.0, 200);
    sink.wait_for(4).await;
}
