//! The console by keyboard alone, and its dark theme following the system
//! setting, in a real headless Chromium.

use crate::browser::Browser;
use crate::common::*;
use crate::console::{console_url, gateway_to, page_is_clean, shots_dir, sign_in};
use fantoccini::key::Key;
use serde_json::{json, Value};

/// Presses Tab once per entry of `expected`, checking each lands where
/// it says.
async fn tab_through(browser: &Browser, expected: &[&str]) {
    let mut reached = Vec::new();
    for _ in expected {
        browser.press(Key::Tab).await;
        reached.push(browser.focused().await);
    }
    assert_eq!(reached, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_usable_by_keyboard_alone() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;

    // Sign-in: the key field has the focus; Tab reaches the button, Enter on it signs in.
    browser.goto(&console_url(&tg, "/sign-in")).await;
    browser.wait_for("input[name=key]").await;
    assert_eq!(browser.focused().await, "key");
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys(API_KEY)
        .await
        .unwrap();
    tab_through(&browser, &["Sign in"]).await;
    browser.press(Key::Enter).await;
    browser.wait_for("#request-rows").await;
    assert_eq!(browser.path().await, "/console/requests");

    // A list page: Tab goes skip link → sections → sign-out → the search →
    // the row's action.
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for_text("#connections", "active").await;
    tab_through(
        &browser,
        &[
            "Skip to content",
            "Requests",
            "Events",
            "Connections",
            "Issues",
            "Transformations",
            "Outbound",
            "Sign out",
            "name[contains]",
            "Search",
            "Pause",
        ],
    )
    .await;
    browser.press(Key::Enter).await;
    browser.wait_for_text("#connections", "paused").await;
    let (_, connections) = tg.api_get("/connections").await;
    assert!(
        !connections["models"][0]["paused_at"].is_null(),
        "{connections}"
    );

    // Enter on a focused section link opens it.
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for("#connections").await;
    tab_through(&browser, &["Skip to content", "Requests", "Events"]).await;
    browser.press(Key::Enter).await;
    browser.wait_for("main h1").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser.path().await != "/console/events" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Enter on Events led nowhere"
        );
        // Polling the page: nothing in it signals the navigation to the test.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    page_is_clean(&browser, "keyboard-events").await;
    browser.close().await;
}

/// The page's background colour, as `[r, g, b]`.
async fn background(browser: &Browser) -> Vec<u64> {
    let script =
        "return getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);";
    let rgb: Value = browser.client.execute(script, vec![]).await.unwrap();
    rgb.as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|c| c.as_u64().unwrap())
        .collect()
}

/// Checks the page's background is dark, and saves its screenshot as `name`.
pub(crate) async fn is_dark(browser: &Browser, name: &str) {
    let dark = background(browser).await;
    assert!(dark.iter().all(|c| *c < 60), "{name}: background {dark:?}");
    page_is_clean(browser, name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_turns_dark_when_the_system_prefers_it() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    browser.goto(&console_url(&tg, "/sign-in")).await;
    browser.wait_for("input[name=key]").await;
    let light = background(&browser).await;
    assert!(light.iter().all(|c| *c > 200), "light background {light:?}");

    let scheme =
        |value| json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] });
    browser
        .cdp("Emulation.setEmulatedMedia", scheme("dark"))
        .await;
    is_dark(&browser, "sign-in-dark").await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for("#connections").await;
    is_dark(&browser, "connections-dark").await;
    browser.close().await;
}
