//! The lists the store pages (requests, events, attempts, ignored events,
//! bookmarks, transformation runs) sorted by two keys (`order_by[]=…`, one
//! `dir` or one per key), walked with `next` and back with `prev` three at a
//! time, against the order the test computes from the whole list.

use crate::common::{route, Reply, Sink, TestGateway};
use crate::hookdeck_tr_bk_bulk::{get, ok};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::cmp::Ordering;

const REQUESTS: usize = 8;

/// A source whose every request goes to four connections: delivered
/// (`orders`), filtered out unless `keep` (`picky`: ignored events), held
/// for ten minutes (`later`: never attempted), and transformed (`shaped`,
/// made by the API: its runs).
async fn busy_gateway(sink: &Sink) -> (TestGateway, String) {
    let config = [
        "[[sources]]\nname = \"shop\"\n".to_string(),
        route("shop", "orders", &sink.url("/"), ""),
        route(
            "shop",
            "picky",
            &sink.url("/picky"),
            r#"rules = [ { type = "filter", body = { keep = true } } ]"#,
        ),
        route(
            "shop",
            "later",
            &sink.url("/later"),
            r#"rules = [ { type = "delay", delay = 600000 } ]"#,
        ),
    ];
    let gw = TestGateway::start(&config.join("\n")).await;
    let code = "addHandler('transform', (request, context) => request);";
    let made = ok(
        &gw,
        Method::POST,
        "/transformations",
        json!({ "name": "shaper", "code": code }),
    )
    .await;
    let transformation = made["id"].as_str().unwrap().to_string();
    let connection = json!({
        "name": "shaped", "source": "shop",
        "destination": { "name": "shaped-sink", "url": sink.url("/shaped") },
        "rules": [{ "type": "transform", "transformation_id": transformation }],
    });
    ok(&gw, Method::POST, "/connections", connection).await;
    for n in 0..REQUESTS {
        let body = json!({ "n": n, "keep": n % 2 == 0 }).to_string();
        assert_eq!(gw.post("/e/shop", &body).await.0, 200);
    }
    // Delivered: orders and shaped for each, picky for half.
    let delivered = 2 * REQUESTS + REQUESTS / 2;
    gw.wait_events(delivered, |e| e.status == EventStatus::Successful)
        .await;
    let events = get(&gw, "/events?status=SUCCESSFUL&limit=6").await;
    for (i, event) in events["models"].as_array().unwrap().iter().enumerate() {
        let label = ["even", "odd"][i % 2];
        let bookmark = json!({ "event_id": event["id"], "label": label });
        ok(&gw, Method::POST, "/bookmarks", bookmark).await;
    }
    (gw, transformation)
}

/// A list, and the field its models' hookgate id is in.
struct List {
    path: String,
    id_field: &'static str,
    /// Whether it sorts by `created_at` as the store keeps it: the time in
    /// the id (an event's: its request's arrival).
    created_in_id: bool,
}

impl List {
    /// `key`'s value in `model`, as the list sorts by it.
    fn value(&self, model: &Value, key: &str) -> Value {
        if key == "created_at" && self.created_in_id {
            let id = model[self.id_field].as_str().unwrap();
            return json!(hookgate::ids::created_ms(id).unwrap());
        }
        model[key].clone()
    }

    fn ids(&self, page: &Value) -> Vec<String> {
        let models = page["models"].as_array();
        let models = models.unwrap_or_else(|| panic!("not a list: {page}"));
        models
            .iter()
            .map(|model| model[self.id_field].as_str().unwrap().to_string())
            .collect()
    }

    /// Every model by `order` three at a time: by `next` from the first
    /// page, then by `prev` back from the last; the ids met each way.
    async fn walk(&self, gw: &TestGateway, order: &str) -> [Vec<String>; 2] {
        let at = |cursor: &str| format!("{}?{order}&limit=3{cursor}", self.path);
        let mut page = get(gw, &at("")).await;
        let mut forward = self.ids(&page);
        while let Some(next) = page["pagination"]["next"].as_str().map(String::from) {
            page = get(gw, &at(&format!("&next={next}"))).await;
            forward.extend(self.ids(&page));
        }
        let mut backward = self.ids(&page);
        while let Some(prev) = page["pagination"]["prev"].as_str().map(String::from) {
            page = get(gw, &at(&format!("&prev={prev}"))).await;
            backward.splice(0..0, self.ids(&page));
        }
        [forward, backward]
    }

    /// The ids of the whole list sorted by `keys` (each ascending or not),
    /// then by id in the first key's direction.
    async fn sorted(&self, gw: &TestGateway, keys: [(&str, bool); 2]) -> Vec<String> {
        let all = get(gw, &format!("{}?limit=255", self.path)).await;
        let mut models = all["models"].as_array().unwrap().clone();
        let directed = |order: Ordering, ascending: bool| match ascending {
            true => order,
            false => order.reverse(),
        };
        models.sort_by(|a, b| {
            keys.iter()
                .fold(Ordering::Equal, |order, (key, ascending)| {
                    let (a, b) = (self.value(a, key), self.value(b, key));
                    order.then_with(|| directed(compare(&a, &b), *ascending))
                })
                .then_with(|| directed(compare(&a[self.id_field], &b[self.id_field]), keys[0].1))
        });
        models
            .iter()
            .map(|model| model[self.id_field].as_str().unwrap().to_string())
            .collect()
    }
}

/// No value first, then numbers, then text (ISO times sort as times).
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().unwrap().total_cmp(&b.as_f64().unwrap()),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (a, b) => panic!("cannot compare {a} and {b}"),
    }
}

/// Each list with two pairs of keys: one led by its index (`created_at`),
/// one led by a key many records share.
fn lists(transformation: &str) -> Vec<(List, [[&'static str; 2]; 2])> {
    let list = |path: &str, id_field| List {
        path: path.to_string(),
        id_field,
        created_in_id: path != "/attempts",
    };
    vec![
        (
            list("/requests", "id"),
            [["created_at", "ingested_at"], ["ingested_at", "created_at"]],
        ),
        (
            list("/events", "id"),
            [
                ["created_at", "last_attempt_at"],
                ["last_attempt_at", "created_at"],
            ],
        ),
        (
            list("/attempts", "id"),
            [
                ["attempt_number", "created_at"],
                ["response_status", "created_at"],
            ],
        ),
        (
            list("/ignored_events", "ignored_event_id"),
            [["created_at", "cause"], ["cause", "created_at"]],
        ),
        (
            list("/bookmarks", "id"),
            [["created_at", "label"], ["label", "created_at"]],
        ),
        (
            list(
                &format!("/transformations/{transformation}/executions"),
                "id",
            ),
            [["created_at", "webhook_id"], ["webhook_id", "created_at"]],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn store_paged_lists_sort_by_two_keys_and_page_both_ways_without_a_skip() {
    let sink = Sink::start(Reply::Status(200)).await;
    let (gw, transformation) = busy_gateway(&sink).await;
    for (list, orders) in lists(&transformation) {
        for [first, second] in orders {
            let keys = format!("order_by[]={first}&order_by[]={second}");
            for (dirs, ascending) in [
                ("dir=asc", [true, true]),
                ("dir[]=desc&dir[]=asc", [false, true]),
            ] {
                let order = format!("{keys}&{dirs}");
                let expected = list
                    .sorted(&gw, [(first, ascending[0]), (second, ascending[1])])
                    .await;
                assert!(expected.len() > 3, "{}: too few to page", list.path);
                let [forward, backward] = list.walk(&gw, &order).await;
                assert_eq!(forward, expected, "{}?{order} by next", list.path);
                assert_eq!(backward, expected, "{}?{order} by prev", list.path);
            }
            let echoed = get(&gw, &format!("{}?{keys}&dir[]=desc&dir[]=asc", list.path)).await;
            assert_eq!(
                echoed["pagination"]["order_by"],
                json!([first, second]),
                "{}",
                list.path
            );
            assert_eq!(echoed["pagination"]["dir"], json!(["desc", "asc"]));
        }
    }
    // The keys many records share did tie: never attempted, one attempt, one cause.
    let never = get(&gw, "/events?last_attempt_at[any]=false").await;
    assert_eq!(never["count"], REQUESTS, "{never}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_or_foreign_cursor_is_a_422_naming_it() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    for n in 0..3 {
        gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
    }
    gw.wait_events(3, |e| e.status == EventStatus::Successful)
        .await;
    let two = "/events?order_by[]=last_attempt_at&order_by[]=created_at&limit=1";
    let first = get(&gw, two).await;
    let next = first["pagination"]["next"].as_str().unwrap().to_string();
    assert!(get(&gw, &format!("{two}&next={next}")).await["count"] == 1);
    let by_id = get(&gw, "/events?limit=1").await["pagination"]["next"]
        .as_str()
        .unwrap()
        .to_string();
    let ascending = "/events?order_by[]=last_attempt_at&order_by[]=created_at&dir=asc&limit=1";
    let mut tampered = next.clone();
    tampered.insert(3, '!');
    for (path, field) in [
        (format!("{two}&next={tampered}"), "next"),
        (format!("{two}&prev={}", &next[..next.len() - 4]), "prev"),
        (format!("{two}&next={by_id}"), "next"),
        (format!("{ascending}&prev={by_id}"), "prev"),
        (
            format!("/events?order_by=last_attempt_at&next={next}x"),
            "next",
        ),
    ] {
        let (status, error) = gw.api_get(&path).await;
        assert_eq!(
            (status, &error["data"]["field"]),
            (422, &json!(field)),
            "{path}: {error}"
        );
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
}
