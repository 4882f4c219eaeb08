//! A real headless Chromium for the console's tests, driven over WebDriver:
//! one chromedriver per test on a free port, a fresh profile in a temp dir,
//! the browser's log kept so a test can check no page logged an error.

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::common::PATIENCE;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One Chromium at a time: each takes hundreds of MB and much CPU, and the
/// rest of the suite runs beside it on the same cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Browser {
    pub client: Client,
    driver_url: String,
    /// Killed when the browser is dropped, with its Chromium.
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
    /// Where screenshots go.
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`;
    /// screenshots are saved in `shots`.
    pub async fn start(shots: &Path, width: u32, height: u32) -> Browser {
        let turn = ONE_AT_A_TIME.lock().await;
        let port = free_port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (Debian's chromium-driver)");
        let driver_url = format!("http://127.0.0.1:{port}");
        wait_ready(&driver_url).await;
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // The viewport exactly (a headless window has a minimum width
                // wider than a phone's).
                "mobileEmulation": {
                    "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 }
                }
            },
            // Keep every console message, to read back with `console_errors`.
            "goog:loggingPrefs": { "browser": "ALL" }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a Chromium session starts");
        Browser {
            client,
            driver_url,
            _driver: driver,
            _profile: profile,
            _turn: turn,
            shots: shots.to_path_buf(),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Waits (up to `PATIENCE`) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Waits until the text of the first `css` element contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(text) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never showed {text:?}; it shows {found:?}"
            );
            // Polling the page: nothing in it signals a change to the test.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the button or link whose text is `label`.
    pub async fn click(&self, label: &str) {
        let xpath =
            format!("//button[normalize-space()='{label}'] | //a[normalize-space()='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no {label:?} to click: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks `label` and waits until the page it leads to has loaded (a
    /// mark left in the old page is gone).
    pub async fn click_to_next_page(&self, label: &str) {
        self.client
            .execute("window.oldPage = true;", vec![])
            .await
            .unwrap();
        self.click(label).await;
        let loaded = "return window.oldPage !== true && document.readyState === 'complete';";
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.client.execute(loaded, vec![]).await.ok() != Some(Value::Bool(true)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label} led to no page"
            );
            // Polling the page: nothing in it signals a change to the test.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses `key` on whatever has the focus (the page, when nothing has).
    pub async fn press(&self, key: Key) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(&key).await.unwrap();
    }

    /// What has the focus, as a keyboard user hears it: its text, else its
    /// label or name.
    pub async fn focused(&self) -> String {
        let script = "const e = document.activeElement; \
                      return e.textContent.trim() || e.getAttribute('aria-label') || e.name || e.tagName;";
        let name = self.client.execute(script, vec![]).await.unwrap();
        name.as_str().unwrap_or_default().to_string()
    }

    /// Runs a Chrome DevTools Protocol command (chromedriver's
    /// `goog/cdp/execute`), e.g. to emulate a media feature.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        let session = self.client.session_id().await.unwrap().unwrap();
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver_url
            ))
            .json(&json!({ "cmd": command, "params": params }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{command} failed: {answer:?}");
        answer.json().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Saves a PNG of the viewport as `<name>.png` in the shots folder.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The errors the browser logged since last asked (script errors,
    /// failed loads, CSP refusals), from chromedriver's log endpoint.
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["value"]
            .as_array()
            .expect("chromedriver answers a list of log entries")
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls chromedriver's `/status` until it says it is ready.
async fn wait_ready(driver_url: &str) {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let ready = match http.get(format!("{driver_url}/status")).send().await {
            Ok(answer) => answer
                .json::<Value>()
                .await
                .is_ok_and(|status| status["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
