//! The Connections page's live rates (requests/min, success rate, p95
//! latency as SVG sparklines) in a real headless Chromium.

use crate::browser::Browser;
use crate::common::*;
use crate::console::{console_url, gateway_to, page_is_clean, shots_dir, sign_in};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_page_shows_live_rates_without_a_reload() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for_text("#connections", "0 in 60 min").await;
    browser.wait_for_text("#connections", "no attempts").await;
    browser
        .client
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();

    for order in 0..3 {
        let (status, _) = tg
            .post("/e/shop/orders", &format!(r#"{{"order": {order}}}"#))
            .await;
        assert_eq!(status, 200);
    }
    sink.wait_for(3).await;

    // The table refreshes itself (htmx polling) with the new counts.
    browser.wait_for_text("#connections", "3 in 60 min").await;
    browser.wait_for_text("#connections", "100 % ok").await;
    browser.wait_for_text("#connections", "3 attempts").await;
    browser.wait_for_text("#connections", "p95 ≤").await;
    let page = browser
        .client
        .execute(
            "return { kept: window.notReloaded === true, \
                      charts: document.querySelectorAll('#connections svg.sparkline polyline').length };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(page, json!({ "kept": true, "charts": 3 }));
    page_is_clean(&browser, "connections-rates").await;
    browser.close().await;
}
