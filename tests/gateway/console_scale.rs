//! The console with more objects than one page or one drop-down holds: its
//! lists page with the API's cursors, and a filter's object is found by a
//! part of its name.

use crate::browser::Browser;
use crate::common::*;
use crate::console::{console_url, page_is_clean, shots_dir, sign_in};
use fantoccini::Locator;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// More than the 255 a list answers at most, so more than any one page.
const MANY: usize = 300;

/// Enough API calls a minute to create them all.
const UNLIMITED: &str = "api_rate_limit_per_minute = 100000\n";

/// `MANY` connections `conn-NNN`, each from its own source `src-NNN` to its
/// own destination `dst-NNN`, created through the API.
async fn many_connections(tg: &TestGateway, sink: &Sink) -> Vec<Value> {
    let create = |i: usize| {
        let body = json!({
            "name": format!("conn-{i:03}"),
            "source": { "name": format!("src-{i:03}") },
            "destination": { "name": format!("dst-{i:03}"), "url": sink.url("/hook") },
        });
        async move {
            let (status, created) = tg.api_send(Method::POST, "/connections", body).await;
            assert_eq!(status, 200, "{created}");
            created
        }
    };
    futures_util::stream::iter(0..MANY)
        .map(create)
        .buffer_unordered(8)
        .collect()
        .await
}

/// The texts of the elements matching `css` (also options of a closed select).
async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0]), \
                  e => e.textContent.trim());";
    let found = browser.client.execute(script, vec![json!(css)]).await;
    serde_json::from_value(found.unwrap()).unwrap()
}

/// Waits until an element matching `css` has the text `text`.
async fn wait_for_one(browser: &Browser, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !texts(browser, css).await.iter().any(|t| t == text) {
        assert!(tokio::time::Instant::now() < deadline, "no {text} in {css}");
        // Polling the page: nothing in it signals a change to the test.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Walks a list from its first page through every "Older →" link,
/// collecting the texts of `css` on each page.
async fn every_page(browser: &Browser, css: &str) -> Vec<String> {
    let mut seen = texts(browser, css).await;
    let older = Locator::Css("a[rel=next]");
    while browser.client.find(older).await.is_ok() {
        browser.click_to_next_page("Older →").await;
        seen.extend(texts(browser, css).await);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_pages_through_hundreds_of_connections_and_finds_one_by_name() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(UNLIMITED, "[[sources]]\nname = \"shop\"\n").await;
    let made = many_connections(&tg, &sink).await;
    let id_of = |name: &str| {
        let found = made.iter().find(|c| c["name"] == name).unwrap();
        found["id"].as_str().unwrap().to_string()
    };
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;

    // Every connection, a page at a time, each once.
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for("#connections").await;
    page_is_clean(&browser, "connections-first-page").await;
    let names = every_page(&browser, "#connections tbody tr td:first-child").await;
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!((names.len(), unique.len()), (MANY, MANY), "{names:?}");
    assert!(names.contains(&"conn-000".to_string()));
    page_is_clean(&browser, "connections-last-page").await;

    // One connection found by a part of its name.
    browser.goto(&console_url(&tg, "/connections")).await;
    let search = browser.wait_for("input[name='name[contains]']").await;
    search.send_keys("conn-123").await.unwrap();
    browser.click_to_next_page("Search").await;
    let found = texts(&browser, "#connections tbody tr td:first-child").await;
    assert_eq!(found, ["conn-123"]);

    // The events filter offers the first connections by name, says there
    // are more, and finds any other by a part of its name.
    browser.goto(&console_url(&tg, "/events")).await;
    let offered = texts(&browser, "#choice-webhook_id option").await;
    assert!(offered.contains(&"conn-000".to_string()), "{offered:?}");
    assert!(!offered.contains(&"conn-250".to_string()), "{offered:?}");
    assert!(offered.last().unwrap().contains("more"), "{offered:?}");
    let find = browser.wait_for("input[name=find_webhook_id]").await;
    find.send_keys("conn-25").await.unwrap();
    wait_for_one(&browser, "#choice-webhook_id option", "conn-250").await;
    let wanted = id_of("conn-250");
    let option = format!("#choice-webhook_id option[value='{wanted}']");
    browser.wait_for(&option).await.click().await.unwrap();
    page_is_clean(&browser, "events-choice-found").await;
    browser.click_to_next_page("Filter").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(url
        .query()
        .unwrap()
        .contains(&format!("webhook_id={wanted}")));
    let selected = texts(&browser, "#choice-webhook_id option:checked").await;
    assert_eq!(selected, ["conn-250"]);

    // A chosen source stays shown even when it is not among the first.
    let source = made.iter().find(|c| c["name"] == "conn-260").unwrap();
    let source = source["source"]["id"].as_str().unwrap();
    let chosen = format!("/requests?source_id={source}");
    browser.goto(&console_url(&tg, &chosen)).await;
    let selected = texts(&browser, "#choice-source_id option:checked").await;
    assert_eq!(selected, ["src-260"]);
    page_is_clean(&browser, "requests-chosen-source").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_pages_through_transformations() {
    let tg = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    for name in ["one", "two", "three"] {
        let code = "addHandler('transform', (r) => r)";
        let body = json!({ "name": name, "code": code });
        let (status, created) = tg.api_send(Method::POST, "/transformations", body).await;
        assert_eq!(status, 200, "{created}");
    }
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser
        .goto(&console_url(&tg, "/transformations?limit=2"))
        .await;
    browser.wait_for("#transformations").await;
    let mut names = every_page(&browser, "#transformations li").await;
    names.sort();
    assert_eq!(names, ["one", "three", "two"]);
    page_is_clean(&browser, "transformations-last-page").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_pages_through_applications_and_their_endpoints() {
    use crate::outbound::{application, endpoint, INSECURE};
    let sink = Sink::start(Reply::Status(200)).await;
    let limits = format!("{INSECURE}{UNLIMITED}");
    let tg = TestGateway::start_with(&limits, "[[sources]]\nname = \"shop\"\n").await;
    let mut apps = Vec::new();
    for name in ["app-0", "app-1", "app-2"] {
        apps.push(application(&tg, name).await);
    }
    let urls: Vec<String> = (0..22).map(|i| sink.url(&format!("/hooks/{i}"))).collect();
    for url in &urls {
        endpoint(&tg, &apps[0], &sink, json!({ "url": url })).await;
    }
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;

    browser
        .goto(&console_url(&tg, "/outbound?per_page=2"))
        .await;
    browser.wait_for("main h2").await;
    let names = every_page(&browser, "main h2").await;
    let names: Vec<&str> = names.iter().map(|n| n.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["app-0", "app-1", "app-2"]);
    page_is_clean(&browser, "outbound-last-page").await;

    // The first endpoints under their application, then all of them.
    browser.goto(&console_url(&tg, "/outbound")).await;
    let cells = "table.endpoints tbody tr td:first-child";
    browser.wait_for(cells).await;
    assert_eq!(texts(&browser, cells).await.len(), 20);
    browser
        .click_to_next_page("All 22 endpoints of app-0")
        .await;
    let mut shown = every_page(&browser, cells).await;
    shown.sort();
    let mut expected = urls.clone();
    expected.sort();
    assert_eq!(shown, expected);
    page_is_clean(&browser, "outbound-endpoints-last-page").await;
    browser.close().await;
}
