//! Sources, destinations and connections as Hookdeck's API `2023-07-01`
//! answers them: every field of the reference's objects (its examples are the
//! contract), times kept across restarts for API-created and declared objects
//! alike, absolute source URLs, the lists' filters, and archiving as the
//! reference describes it.

use crate::common::{route, Reply, Sink, TestGateway};
use crate::reference_shape::{assert_shape, Leeway};
use reqwest::Method;
use serde_json::{json, Value};

/// Fields hookgate may leave null where the example has a value:
/// `http_method` (null: the request's own method is kept), `rate_limit` (the
/// reference's other examples have null too) and `rate_limit_period` (null
/// without a rate limit).
const SHAPE: Leeway = Leeway::nullable(&["http_method", "rate_limit", "rate_limit_period"]);

/// The reference's connection object (L431-492), without `ruleset` and
/// `resolved_rules`, which its field list (L362-428) does not have.
fn reference_connection() -> Value {
    json!({
        "id": "web_mNP60lEYInVfnH1EUWbhfUYL",
        "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
        "archived_at": null,
        "updated_at": "2021-08-02T00:26:46.620Z",
        "created_at": "2021-08-02T00:26:47.070Z",
        "paused_at": null,
        "name": "shopify-my-api",
        "full_name": "shopify -> shopify-my-api",
        "rules": [],
        "destination": {
            "id": "des_6MO6QjY7pOotcDaFZfw2hoWF",
            "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
            "url": "https://example.com/webhook",
            "archived_at": null,
            "updated_at": "2021-08-02T00:26:46.827Z",
            "created_at": "2021-08-02T00:25:31.858Z",
            "rate_limit": 5,
            "rate_limit_period": "second",
            "cli_path": null,
            "path_forwarding_disabled": false,
            "name": "my-api",
            "http_method": "POST",
            "auth_method": { "type": "HOOKDECK_SIGNATURE", "config": {} }
        },
        "source": reference_source(),
    })
}

/// The reference's source object (L1577-1598).
fn reference_source() -> Value {
    json!({
        "id": "src_9YmY0SHklrv6zBQz78cKGwSW",
        "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
        "archived_at": null,
        "updated_at": "2021-08-02T14:12:56.674Z",
        "created_at": "2021-08-01T21:29:41.788Z",
        "name": "shopify",
        "url": "https://events.hookdeck.com/e/src_9YmY0SHklrv6zBQz78cKGwSW",
        "allowed_http_methods": ["PUT", "PATCH", "DELETE", "POST"],
        "custom_response": null,
        "verification": null
    })
}

/// The reference's connection create body (L50-60), to a local sink.
fn reference_create(sink: &Sink) -> Value {
    json!({
        "name": "shopify-my-api",
        "source": { "name": "shopify" },
        "destination": { "name": "my-api", "url": sink.url("/webhook") }
    })
}

fn declared_shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

/// Waits until the clock has passed `iso` (an object's time), so that a
/// change made next has a later time.
async fn clock_past(iso: &Value) {
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    while hookgate::ids::iso8601(hookgate::ids::now_ms()).as_str() <= iso.as_str().unwrap() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
}

/// An object's times (a restart moves the ingress, and so a source's `url`, in tests).
fn times(object: &Value) -> [&Value; 3] {
    ["created_at", "updated_at", "archived_at"].map(|key| &object[key])
}

/// `PUT path` with no body (archive, unarchive, pause, unpause).
async fn put(gw: &TestGateway, path: &str) -> (u16, Value) {
    gw.api_send(Method::PUT, path, json!({})).await
}

fn ids(list: &Value) -> Vec<String> {
    list["models"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_connection_example_answers_every_field_of_the_reference() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&declared_shop(&sink)).await;
    let (status, created) = gw
        .api_send(Method::POST, "/connections", reference_create(&sink))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_shape(&created, &reference_connection(), SHAPE);
    assert_eq!(created["full_name"], "shopify -> shopify-my-api -> my-api");
    assert_eq!(
        (
            created["source_id"].clone(),
            created["destination_id"].clone()
        ),
        (
            created["source"]["id"].clone(),
            created["destination"]["id"].clone()
        ),
        "hookgate's extras stay"
    );
    let team_id = created["team_id"].as_str().unwrap();
    assert!(team_id.starts_with("tm_"));
    assert_eq!(created["source"]["team_id"], team_id);
    assert_eq!(created["destination"]["team_id"], team_id);
    assert_eq!(created["read_only"], false);

    let source_id = created["source"]["id"].as_str().unwrap();
    let (_, source) = gw.api_get(&format!("/sources/{source_id}")).await;
    assert_shape(&source, &reference_source(), SHAPE);
    assert_eq!(source, created["source"]);
    let (_, connection) = gw
        .api_get(&format!(
            "/2024-03-01/connections/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(connection, created);

    // A declared connection has the same shape, and stays read-only.
    let declared = hookgate::ids::named_id("web", "shop-to-orders");
    let (_, declared) = gw.api_get(&format!("/connections/{declared}")).await;
    assert_shape(&declared, &reference_connection(), SHAPE);
    assert_eq!(
        (
            declared["read_only"].as_bool(),
            declared["team_id"].as_str()
        ),
        (Some(true), Some(team_id))
    );

    // The lists' example (L580-631): the pagination object, then the models.
    let (_, list) = gw.api_get("/connections?limit=1").await;
    assert_eq!(
        (
            list["pagination"]["order_by"].as_str(),
            list["pagination"]["dir"].as_str()
        ),
        (Some("created_at"), Some("desc"))
    );
    assert_eq!(
        (list["count"].as_u64(), list["pagination"]["limit"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(list["pagination"]["next"].is_string(), "{list}");
    assert_shape(&list["models"][0], &reference_connection(), SHAPE);
}

#[tokio::test(flavor = "multi_thread")]
async fn times_are_kept_across_restarts_and_move_only_when_the_object_changes() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = declared_shop(&sink);
    let gw = TestGateway::start(&config).await;
    let shop = hookgate::ids::named_id("src", "shop");
    let (_, declared) = gw.api_get(&format!("/sources/{shop}")).await;
    assert_eq!(declared["created_at"], declared["updated_at"]);
    let (status, crm) = gw
        .api_send(Method::POST, "/sources", json!({ "name": "crm" }))
        .await;
    assert_eq!(status, 200);
    assert!(crm["created_at"].is_string() && crm["archived_at"].is_null());

    clock_past(&crm["created_at"]).await;
    let gw = gw.restart(&config).await;
    let (_, after_restart) = gw.api_get(&format!("/sources/{shop}")).await;
    assert_eq!(
        times(&after_restart),
        times(&declared),
        "a restart changes no time"
    );
    let crm_path = format!("/sources/{}", crm["id"].as_str().unwrap());
    assert_eq!(times(&gw.api_get(&crm_path).await.1), times(&crm));

    // The declaration changes: the same object, updated.
    clock_past(&declared["created_at"]).await;
    let changed = config.replace(
        "name = \"shop\"\n",
        "name = \"shop\"\nallowed_http_methods = [\"POST\"]\n",
    );
    let gw = gw.restart(&changed).await;
    let (_, updated) = gw.api_get(&format!("/sources/{shop}")).await;
    assert_eq!(updated["created_at"], declared["created_at"]);
    assert!(
        updated["updated_at"].as_str() > declared["updated_at"].as_str(),
        "{updated}"
    );
    // Another object's declaration changing leaves this one alone.
    let (_, orders_before) = gw.api_get("/destinations/orders").await;
    let gw = gw
        .restart(&changed.replace("name = \"shop\"\n", "name = \"shop\"\n# a note\n"))
        .await;
    assert_eq!(
        times(&gw.api_get("/destinations/orders").await.1),
        times(&orders_before)
    );

    // An API change moves updated_at; archiving too, and stamps archived_at.
    let (status, changed_crm) = gw
        .api_send(
            Method::PUT,
            &crm_path,
            json!({ "allowed_http_methods": ["PUT"] }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(changed_crm["created_at"], crm["created_at"]);
    assert!(changed_crm["updated_at"].as_str() > crm["updated_at"].as_str());
    clock_past(&changed_crm["updated_at"]).await;
    let (status, archived) = put(&gw, &format!("{crm_path}/archive")).await;
    assert_eq!(status, 200);
    assert!(archived["archived_at"].is_string());
    assert!(archived["updated_at"].as_str() > changed_crm["updated_at"].as_str());
    let gw = gw.restart(&changed).await;
    assert_eq!(
        times(&gw.api_get(&crm_path).await.1),
        times(&archived),
        "archived, kept as it was"
    );

    // Deleted and made again: a new object.
    assert_eq!(gw.api_delete(&crm_path).await, 200);
    let (_, again) = gw
        .api_send(Method::POST, "/sources", json!({ "name": "crm" }))
        .await;
    assert!(again["created_at"].as_str() > crm["created_at"].as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_url_is_absolute_public_url_first_else_the_ingress_address() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&declared_shop(&sink)).await;
    let shop = hookgate::ids::named_id("src", "shop");
    let (_, source) = gw.api_get(&format!("/sources/{shop}")).await;
    let url = source["url"].as_str().unwrap();
    assert_eq!(url, gw.url(&format!("/e/{shop}")));
    let accepted = gw.http.post(url).body("{}").send().await.unwrap();
    assert_eq!(accepted.status(), 200, "the URL shown is the source's");

    let behind_proxy = TestGateway::start_with(
        "public_url = \"https://hooks.example.com/in/\"\n",
        &declared_shop(&sink),
    )
    .await;
    let (_, source) = behind_proxy.api_get(&format!("/sources/{shop}")).await;
    assert_eq!(
        source["url"].as_str(),
        Some(format!("https://hooks.example.com/in/e/{shop}").as_str())
    );
    let (_, connection) = behind_proxy.api_get("/connections/shop-to-orders").await;
    assert_eq!(connection["source"]["url"], source["url"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_read_the_references_filters_and_order_keys_and_refuse_others() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&declared_shop(&sink)).await;
    let mut made = Vec::new();
    for (name, source) in [("a-link", "alpha"), ("b-link", "beta"), ("c-link", "beta")] {
        let body = json!({
            "name": name,
            "source": { "name": source },
            "destination": { "name": format!("{name}-out"), "url": sink.url(&format!("/{name}")) }
        });
        let (status, created) = gw.api_send(Method::POST, "/connections", body).await;
        assert_eq!(status, 200, "{created}");
        // Each is created after the one before: the default order is certain.
        clock_past(&created["created_at"]).await;
        made.push(created);
    }
    let id = |i: usize| made[i]["id"].as_str().unwrap().to_string();
    let beta = made[1]["source"]["id"].as_str().unwrap().to_string();
    let declared = hookgate::ids::named_id("web", "shop-to-orders");

    let (_, all) = gw.api_get("/connections?order_by=name&dir=asc").await;
    assert_eq!(ids(&all), [id(0), id(1), id(2), declared.clone()]);
    let (_, newest) = gw.api_get("/connections?limit=2").await;
    assert_eq!(ids(&newest), [id(2), id(1)], "created_at desc by default");
    let next = newest["pagination"]["next"].as_str().unwrap();
    let (_, rest) = gw
        .api_get(&format!("/connections?limit=2&next={next}"))
        .await;
    assert_eq!(ids(&rest), [id(0), declared.clone()]);
    assert_eq!(gw.api_get("/connections?order_by=updated_at").await.0, 200);

    for (query, expected) in [
        (format!("source_id={beta}"), vec![id(1), id(2)]),
        (format!("id[]={}&id[]={}", id(0), id(2)), vec![id(0), id(2)]),
        (
            format!(
                "destination_id={}",
                made[2]["destination"]["id"].as_str().unwrap()
            ),
            vec![id(2)],
        ),
        ("name=b-link".into(), vec![id(1)]),
        ("full_name=beta -> c".into(), vec![id(2)]),
        ("full_name=-out".into(), vec![id(0), id(1), id(2)]),
    ] {
        let (status, list) = gw
            .api_get(&format!("/connections?order_by=name&dir=asc&{query}"))
            .await;
        assert_eq!((status, ids(&list)), (200, expected), "{query}");
    }

    // paused_at
    let (_, paused) = put(&gw, &format!("/connections/{}/pause", id(1))).await;
    assert!(paused["paused_at"].is_string() && paused["source"]["id"] == beta.as_str());
    let (_, list) = gw.api_get("/connections?paused_at[any]=true").await;
    assert_eq!(ids(&list), [id(1)]);
    let since = paused["paused_at"].as_str().unwrap();
    let (_, list) = gw
        .api_get(&format!("/connections?paused_at[gte]={since}"))
        .await;
    assert_eq!(ids(&list), [id(1)]);
    let (_, unpaused) = put(&gw, &format!("/connections/{}/unpause", id(1))).await;
    assert!(unpaused["paused_at"].is_null() && unpaused["destination"].is_object());

    // archived objects only when asked for
    let (status, _) = put(&gw, &format!("/connections/{}/archive", id(0))).await;
    assert_eq!(status, 200);
    let (_, live) = gw.api_get("/connections?order_by=name&dir=asc").await;
    assert_eq!(ids(&live), [id(1), id(2), declared.clone()]);
    let (_, every) = gw
        .api_get("/connections?order_by=name&dir=asc&archived=true")
        .await;
    assert_eq!(ids(&every), [id(0), id(1), id(2), declared.clone()]);
    let (_, archived) = gw.api_get("/connections?archived_at[any]=true").await;
    assert_eq!(ids(&archived), [id(0)]);
    assert!(archived["models"][0]["archived_at"].is_string());
    assert_eq!(archived["models"][0]["source"]["name"], "alpha");

    // sources and destinations
    let (_, sources) = gw.api_get(&format!("/sources?id={beta}")).await;
    assert_eq!(ids(&sources), [beta]);
    let (_, sources) = gw
        .api_get("/sources?order_by=name&dir=asc&name[contains]=a")
        .await;
    let names: Vec<_> = sources["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, [json!("alpha"), json!("beta")]);
    let (_, destinations) = gw
        .api_get(&format!("/destinations?url={}", sink.url("/b-link")))
        .await;
    assert_eq!(
        ids(&destinations),
        [made[1]["destination"]["id"].as_str().unwrap()]
    );
    let (_, destinations) = gw
        .api_get("/destinations?order_by=updated_at&dir=asc&limit=1")
        .await;
    assert_eq!(
        ids(&destinations),
        [hookgate::ids::named_id("des", "orders")]
    );
    assert_eq!(gw.api_get("/destinations?cli_path=/x").await.1["count"], 0);

    for (path, field) in [
        ("/connections?order_by=colour", "order_by"),
        ("/connections?full_name=Shop", "full_name"),
        ("/connections?paused=true", "paused"),
        ("/connections?archived=maybe", "archived"),
        ("/connections?paused_at[gte]=yesterday", "paused_at[gte]"),
        ("/sources?url=x", "url"),
        ("/destinations?source_id=x", "source_id"),
    ] {
        let (status, error) = gw.api_get(path).await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field)),
            "{path}: {error}"
        );
    }
}

/// The reference's `order_by` and `dir` as `string[]` ("Sort key(s)"):
/// lists held in memory sort by several keys, each with its `dir` (or one
/// `dir` for all), page through them and echo the keys (so do the lists
/// the store pages: `sorted_pages`).
#[tokio::test(flavor = "multi_thread")]
async fn lists_held_in_memory_sort_by_several_keys() {
    // Declared at one start, these three share their created_at.
    let declared =
        ["c-src", "a-src", "b-src"].map(|name| format!("[[sources]]\nname = \"{name}\"\n"));
    let gw = TestGateway::start(&declared.join("\n")).await;
    let (_, one) = gw.api_get("/sources?name=a-src").await;
    clock_past(&one["models"][0]["created_at"]).await;
    let (status, later) = gw
        .api_send(Method::POST, "/sources", json!({ "name": "later" }))
        .await;
    assert_eq!(status, 200, "{later}");
    let names = |list: &Value| -> Vec<String> {
        let models = list["models"].as_array();
        let models = models.unwrap_or_else(|| panic!("not a list: {list}"));
        models
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };

    let both = "/sources?order_by[]=created_at&order_by[]=name";
    let (status, list) = gw.api_get(&format!("{both}&dir[]=desc&dir[]=asc")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(names(&list), ["later", "a-src", "b-src", "c-src"]);
    assert_eq!(
        (&list["pagination"]["order_by"], &list["pagination"]["dir"]),
        (&json!(["created_at", "name"]), &json!(["desc", "asc"]))
    );
    let (_, first) = gw.api_get(&format!("{both}&dir=asc&limit=2")).await;
    assert_eq!(names(&first), ["a-src", "b-src"]);
    let next = first["pagination"]["next"].as_str().unwrap();
    let (_, second) = gw
        .api_get(&format!("{both}&dir=asc&limit=2&next={next}"))
        .await;
    assert_eq!(names(&second), ["c-src", "later"]);

    for (path, field) in [
        ("/sources?order_by[]=name&order_by[]=name", "order_by"),
        (
            "/sources?order_by[]=name&order_by[]=created_at&dir[]=asc&dir[]=asc&dir[]=asc",
            "dir",
        ),
    ] {
        let (status, error) = gw.api_get(path).await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field)),
            "{path}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn archiving_answers_the_object_and_carries_to_connections_and_ends() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&declared_shop(&sink)).await;
    let (_, connection) = gw
        .api_send(Method::POST, "/connections", reference_create(&sink))
        .await;
    let link = connection["id"].as_str().unwrap().to_string();
    let source = connection["source"]["id"].as_str().unwrap().to_string();

    // Archiving a source archives its connections (L1800).
    let (status, archived) = put(&gw, &format!("/sources/{source}/archive")).await;
    assert_eq!(status, 200, "{archived}");
    assert_shape(&archived, &reference_source(), SHAPE);
    assert!(archived["archived_at"].is_string());
    let (_, link_now) = gw.api_get(&format!("/connections/{link}")).await;
    assert!(link_now["archived_at"].is_string(), "{link_now}");
    assert_eq!(link_now["source"], archived);
    // Its requests are rejected as SOURCE_ARCHIVED (item 5 of issue 17), by name or id.
    let (status, refused) = gw.post(&format!("/e/{source}"), "{}").await;
    assert_eq!(status, 404, "{refused}");
    assert_eq!(gw.post("/e/shopify", "{}").await.0, 404);
    let (_, rejected) = gw
        .api_get("/requests?rejection_cause=SOURCE_ARCHIVED")
        .await;
    assert_eq!(rejected["count"], 2, "{rejected}");
    assert_eq!(
        gw.post("/e/nowhere", "{}").await.0,
        404,
        "unknown stays NO_WEBHOOK"
    );
    assert_eq!(
        gw.api_delete(&format!("/sources/{source}")).await,
        409,
        "an archived connection still uses it"
    );

    // Unarchiving a connection unarchives its source and destination (L1267).
    let (status, unarchived) = put(&gw, &format!("/connections/{link}/unarchive")).await;
    assert_eq!(status, 200);
    assert_shape(&unarchived, &reference_connection(), SHAPE);
    assert!(unarchived["archived_at"].is_null() && unarchived["source"]["archived_at"].is_null());
    assert_eq!(gw.post("/e/shopify", "{}").await.0, 200);
    assert_eq!(sink.wait_for(1).await[0].path, "/webhook");

    // A destination: its own archive answers the full destination; its
    // connection's unarchive brings it back.
    let destination = connection["destination"]["id"].as_str().unwrap();
    let (status, _) = put(&gw, &format!("/connections/{link}/archive")).await;
    assert_eq!(status, 200);
    let (status, archived) = put(&gw, &format!("/destinations/{destination}/archive")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            archived["name"].as_str(),
            archived["archived_at"].is_string()
        ),
        (Some("my-api"), true)
    );
    let (_, shown) = gw.api_get(&format!("/destinations/{destination}")).await;
    assert_eq!(shown, archived, "an archived object is found by id");
    let (_, unarchived) = put(&gw, &format!("/connections/{link}/unarchive")).await;
    assert!(
        unarchived["destination"]["archived_at"].is_null(),
        "{unarchived}"
    );

    // Declared objects stay read-only.
    let shop = hookgate::ids::named_id("src", "shop");
    let (status, refused) = put(&gw, &format!("/sources/{shop}/archive")).await;
    assert_eq!(
        (
            status,
            refused["message"]
                .as_str()
                .map(|m| m.contains("gateway.toml"))
        ),
        (409, Some(true))
    );

    // An archived source is listed only when asked for (L1467-1519).
    let (status, _) = put(&gw, &format!("/sources/{source}/archive")).await;
    assert_eq!(status, 200);
    assert!(!ids(&gw.api_get("/sources").await.1).contains(&source));
    let (_, every) = gw.api_get("/sources?archived=true").await;
    assert!(ids(&every).contains(&source), "{every}");

    // Deleting answers the object's id (L1354, L1886), named by name too.
    for (path, id) in [
        ("/connections/shopify-my-api", &link),
        ("/sources/shopify", &source),
    ] {
        let (status, deleted) = gw.api_send(Method::DELETE, path, json!({})).await;
        assert_eq!((status, deleted), (200, json!({ "id": id })), "{path}");
    }
}
