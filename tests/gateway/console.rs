//! The web console (`/console`) in a real headless Chromium against a real
//! gateway, and its session and CSRF checks over plain HTTP.

use crate::browser::Browser;
use crate::common::*;
use fantoccini::Locator;
use serde_json::{json, Value};
use std::path::PathBuf;

const SHOP: &str = "[[sources]]\nname = \"shop\"\n";

pub(crate) async fn gateway_to(sink: &Sink) -> TestGateway {
    TestGateway::start(&format!(
        "{SHOP}{}",
        route("shop", "orders", &sink.url("/hook"), "")
    ))
    .await
}

pub(crate) fn console_url(tg: &TestGateway, path: &str) -> String {
    format!("http://{}/console{path}", tg.gateway.api_addr.unwrap())
}

/// Where a test's screenshots go: its temp dir, and also
/// `$CONSOLE_SCREENSHOTS` when set (how docs/ gets its pictures).
pub(crate) fn shots_dir(tg: &TestGateway) -> PathBuf {
    let dir = std::env::var_os("CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tg.dir.path().join("screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Takes a screenshot of the page and checks it logged no error.
pub(crate) async fn page_is_clean(browser: &Browser, name: &str) {
    browser.screenshot(name).await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "{name}: the browser logged {errors:?}");
}

pub(crate) async fn sign_in(browser: &Browser, tg: &TestGateway, key: &str) {
    browser.goto(&console_url(tg, "/sign-in")).await;
    let field = browser.wait_for("input[name=key]").await;
    field.send_keys(key).await.unwrap();
    browser.click("Sign in").await;
    // The answer has arrived when a signed-in page (its sign-out form) or the
    // form's refusal shows; a page opened before that would find no session.
    browser
        .wait_for("form[action$='/sign-out'], form.sign-in [role=alert]")
        .await;
}

/// POSTs from inside the page (the session's cookie goes along), with the
/// headers given; answers the status.
pub(crate) async fn post_from_page(browser: &Browser, path: &str, headers: Value) -> u16 {
    let script = "const [path, headers, done] = arguments; \
                  fetch(path, {method: 'POST', headers, redirect: 'manual'}).then(r => done(r.status));";
    let status = browser
        .client
        .execute_async(script, vec![json!(path), headers])
        .await
        .unwrap();
    status.as_u64().expect("a status") as u16
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_sees_a_request_arrive_retries_its_event_and_pauses_its_connection() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;

    // No session: every page leads to the sign-in form.
    browser.goto(&console_url(&tg, "/events")).await;
    browser.wait_for("input[name=key]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    page_is_clean(&browser, "sign-in").await;

    sign_in(&browser, &tg, "not-the-key").await;
    browser
        .wait_for_text("[role=alert]", "not an API key")
        .await;
    browser.screenshot("sign-in-refused").await;
    // The refusal is a 401, which the browser logs; nothing else is.
    let logged = browser.console_errors().await;
    assert!(
        logged.len() == 1 && logged[0].contains("/console/sign-in"),
        "{logged:?}"
    );
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    assert_eq!(browser.path().await, "/console/requests");

    // A request sent now shows up in the open list, without a reload: a
    // mark left in the page survives.
    browser
        .client
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    let (status, _) = tg.post("/e/shop/orders", r#"{"order": 42}"#).await;
    assert_eq!(status, 200);
    browser.wait_for_text("#request-rows", "shop").await;
    let kept = browser
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        kept,
        json!(true),
        "the list was reloaded instead of updated"
    );
    page_is_clean(&browser, "requests").await;

    // The request: its body pretty-printed, and the event it became.
    let delivered = tg
        .wait_event(|e| e.status == hookgate::model::EventStatus::Successful)
        .await;
    browser
        .client
        .find(Locator::Css("#request-rows a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_text("main", "\"order\": 42").await;
    page_is_clean(&browser, "request").await;
    browser
        .client
        .find(Locator::Css(&format!(
            "a[href='/console/events/{}']",
            delivered.id
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for_text("#attempts", "#1").await;
    page_is_clean(&browser, "event").await;
    // Its source, connection and destination by name, each a link, ids beside.
    let (_, connections) = tg.api_get("/connections").await;
    let connection = &connections["models"][0];
    let named = [
        (
            "shop",
            &connection["source"]["id"],
            "/console/requests?source_id=",
        ),
        (
            "shop-to-orders",
            &connection["id"],
            "/console/connections?id=",
        ),
        (
            "orders",
            &connection["destination"]["id"],
            "/console/events?destination_id=",
        ),
    ];
    let facts = browser.wait_for("dl.facts").await.text().await.unwrap();
    for (name, id, link) in named {
        let id = id.as_str().unwrap();
        let anchor = browser.client.find(Locator::LinkText(name)).await.unwrap();
        let href = anchor.attr("href").await.unwrap().unwrap();
        assert_eq!(href, format!("{link}{id}"));
        assert!(facts.contains(&format!("{name} {id}")), "{facts}");
    }

    // Retry: the page comes back with a second attempt, made by hand.
    browser.click("Retry").await;
    browser.wait_for_text("#attempts", "#2").await;
    browser.wait_for_text("#attempts", "MANUAL").await;
    sink.wait_for(2).await;

    // Mute: no more automatic retries; the button goes.
    browser.click_to_next_page("Mute").await;
    browser.wait_for_text("main", "muted").await;
    let (_, event) = tg.api_get(&format!("/events/{}", delivered.id)).await;
    assert_eq!(event["muted"], true);
    let mute = browser
        .client
        .find(Locator::XPath("//button[normalize-space()='Mute']"))
        .await;
    assert!(mute.is_err(), "a muted event offers Mute again");

    // Pause and unpause the connection from its page.
    browser.goto(&console_url(&tg, "/connections")).await;
    browser.wait_for_text("#connections", "active").await;
    browser.click("Pause").await;
    browser.wait_for_text("#connections", "paused").await;
    let (_, connections) = tg.api_get("/connections").await;
    assert!(
        !connections["models"][0]["paused_at"].is_null(),
        "{connections}"
    );
    page_is_clean(&browser, "connections").await;
    browser.click("Unpause").await;
    browser.wait_for_text("#connections", "active").await;
    let (_, connections) = tg.api_get("/connections").await;
    assert!(
        connections["models"][0]["paused_at"].is_null(),
        "{connections}"
    );

    // A change without the session's CSRF token is refused, also from the page itself.
    let connection = connections["models"][0]["id"].as_str().unwrap().to_string();
    let pause = format!("/console/connections/{connection}/pause");
    assert_eq!(post_from_page(&browser, &pause, json!({})).await, 403);
    let wrong = json!({"X-CSRF-Token": "0000"});
    assert_eq!(post_from_page(&browser, &pause, wrong).await, 403);
    let (_, connections) = tg.api_get("/connections").await;
    assert!(
        connections["models"][0]["paused_at"].is_null(),
        "{connections}"
    );
    // (The refused fetches are logged as failed loads; start the log afresh.)
    browser.console_errors().await;

    // Bulk retry of the events page's filter: the plan's count first, then progress.
    browser
        .goto(&console_url(&tg, "/events?status=SUCCESSFUL"))
        .await;
    browser.wait_for_text("main table", "SUCCESSFUL").await;
    // Rows name their connection and destination.
    let row = browser
        .wait_for("main table tbody tr")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("shop-to-orders") && row.contains("orders"),
        "{row}"
    );
    assert!(!row.contains("web_") && !row.contains("des_"), "{row}");
    page_is_clean(&browser, "events").await;
    browser
        .click("Bulk retry every event of this filter…")
        .await;
    browser
        .wait_for_text("#bulk-plan", "selects 1 events")
        .await;
    page_is_clean(&browser, "bulk-retry-plan").await;
    browser.click("Retry them").await;
    browser.wait_for_text("#bulk-progress", "completed").await;
    sink.wait_for(3).await;
    page_is_clean(&browser, "bulk-retry-progress").await;

    // Signed out, the pages are closed again.
    browser.click("Sign out").await;
    browser.wait_for("input[name=key]").await;
    browser.goto(&console_url(&tg, "/requests")).await;
    browser.wait_for("input[name=key]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_fits_a_phone_screen() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let (status, _) = tg.post("/e/shop/orders", r#"{"order": 1}"#).await;
    assert_eq!(status, 200);
    let browser = Browser::start(&shots_dir(&tg), 390, 844).await;
    sign_in(&browser, &tg, API_KEY).await;
    for page in ["requests", "events", "connections"] {
        browser.goto(&console_url(&tg, &format!("/{page}"))).await;
        browser.wait_for("main h1").await;
        // The page itself never scrolls sideways (wide tables scroll in their own box).
        let fits = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "{page} is wider than a phone");
        let width = browser
            .client
            .execute("return window.innerWidth;", vec![])
            .await
            .unwrap();
        assert_eq!(width, json!(390));
        page_is_clean(&browser, &format!("phone-{page}")).await;
    }
    browser.close().await;
}

/// Waits (polling the API, up to `PATIENCE`) until `path` lists something.
async fn wait_listed(tg: &TestGateway, path: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, listing) = tg.api_get(path).await;
        if listing["count"].as_u64().unwrap_or(0) > 0 {
            return listing;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} stayed empty"
        );
        // Issues open in the background after the attempt is settled.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_acknowledges_and_resolves_an_issue_and_finds_its_events() {
    let sink = Sink::start(Reply::Status(500)).await;
    let tg = gateway_to(&sink).await;
    let trigger = json!({ "name": "orders failing", "type": "delivery",
        "configs": { "strategy": "first_attempt", "connections": "*" } });
    let (status, _) = tg
        .api_send(reqwest::Method::POST, "/issue-triggers", trigger)
        .await;
    assert_eq!(status, 200);
    tg.post("/e/shop/orders", r#"{"order": 7}"#).await;
    let issues = wait_listed(&tg, "/issues").await;
    let issue = issues["models"][0]["id"].as_str().unwrap().to_string();

    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.click("Issues").await;
    browser.wait_for_text("#issues", "OPENED").await;
    page_is_clean(&browser, "issues").await;

    browser.click("Acknowledge").await;
    browser.wait_for_text("#issues", "ACKNOWLEDGED").await;
    let (_, shown) = tg.api_get(&format!("/issues/{issue}")).await;
    assert_eq!(shown["status"], "ACKNOWLEDGED");
    browser.click("Resolve").await;
    browser.wait_for_text("#issues", "RESOLVED").await;
    let (_, shown) = tg.api_get(&format!("/issues/{issue}")).await;
    assert_eq!(shown["status"], "RESOLVED");

    // Its events: every event of its connection that got its response status.
    browser.click("all").await;
    browser.wait_for_text("main table", "FAILED").await;
    let path = browser.client.current_url().await.unwrap();
    assert!(path.as_str().contains("response_status=500"), "{path}");
    page_is_clean(&browser, "issue-events").await;
    browser.close().await;
}

/// Puts `code` in the transformation editor.
async fn type_code(browser: &Browser, code: &str) {
    let script = "document.getElementById('code').value = arguments[0];";
    browser
        .client
        .execute(script, vec![json!(code)])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_tests_a_transformation_on_a_stored_request_and_saves_only_code_that_compiles() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let original = r#"addHandler("transform", (request, context) => request);"#;
    let created = json!({ "name": "stamp", "code": original });
    let (status, transformation) = tg
        .api_send(reqwest::Method::POST, "/transformations", created)
        .await;
    assert_eq!(status, 200, "{transformation}");
    let id = transformation["id"].as_str().unwrap().to_string();
    let (status, received) = tg.post("/e/shop/orders", r#"{"order": 5}"#).await;
    assert_eq!(status, 200);
    let request = received["request_id"].as_str().map(String::from);

    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.click("Transformations").await;
    browser.click("stamp").await;
    browser.wait_for("#code").await;

    // Test the code being edited on the stored request.
    let edited = r#"addHandler("transform", (request, context) => {
  console.log("stamping", request.body.order);
  request.headers["x-stamped"] = "yes";
  return request;
});"#;
    type_code(&browser, edited).await;
    let stored = tg.stored_requests().await;
    let chosen = request.unwrap_or_else(|| stored[0].id.clone());
    browser
        .client
        .find(Locator::Css("select[name=request_id]"))
        .await
        .unwrap()
        .select_by_value(&chosen)
        .await
        .unwrap();
    browser.click("Run test").await;
    browser
        .wait_for_text("#test-diff", "\"x-stamped\": \"yes\"")
        .await;
    let lines =
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);";
    let marked = |css: &str| browser.client.execute(lines, vec![json!(css)]);
    let added = marked("#test-diff ins").await.unwrap();
    let removed = marked("#test-diff del").await.unwrap();
    // The header is new; the line before it only gained a comma (a line diff of JSON).
    assert_eq!(added[1], "+     \"x-stamped\": \"yes\"", "{added}");
    assert_eq!(removed.as_array().unwrap().len(), 1, "{removed}");
    browser
        .wait_for_text("#test-console", "log: stamping 5")
        .await;
    page_is_clean(&browser, "transformation").await;

    // Code that does not compile is refused, shown with the error, not saved.
    type_code(&browser, "addHandler(\"transform\", (request) => {").await;
    browser.click("Save").await;
    browser.wait_for("[role=alert]").await;
    let (_, kept) = tg.api_get(&format!("/transformations/{id}")).await;
    assert_eq!(kept["code"], original);
    // (The refusal is a 422 the browser logs.)
    let logged = browser.console_errors().await;
    assert!(logged.len() == 1 && logged[0].contains("422"), "{logged:?}");

    type_code(&browser, edited).await;
    browser.click_to_next_page("Save").await;
    let (_, saved) = tg.api_get(&format!("/transformations/{id}")).await;
    assert_eq!(saved["code"], edited);
    page_is_clean(&browser, "transformation-saved").await;
    browser.close().await;
}

/// A client of the console (or the portal) over plain HTTP that follows no
/// redirect, with the session cookie once it has one.
pub(crate) struct Visitor {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: String,
}

impl Visitor {
    fn new(tg: &TestGateway) -> Visitor {
        Visitor::at(console_url(tg, ""))
    }

    /// A visitor of the pages under `base`.
    pub(crate) fn at(base: String) -> Visitor {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Visitor {
            http,
            base,
            cookie: String::new(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        let request = self.http.get(format!("{}{path}", self.base));
        request.header("cookie", &self.cookie).send().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        request.header("cookie", &self.cookie).send().await.unwrap()
    }

    /// A visitor signed in with the test key.
    pub(crate) async fn signed_in(tg: &TestGateway) -> Visitor {
        let mut visitor = Visitor::new(tg);
        assert_eq!(visitor.sign_in(API_KEY).await.status(), 303);
        visitor
    }

    /// Opens the sign-in form: answers its token, and keeps its cookie for the post.
    async fn sign_in_token(&mut self) -> String {
        let form = self.get("/sign-in").await;
        self.keep_cookie(&form);
        let page = form.text().await.unwrap();
        attribute_after(&page, "name=\"csrf\" value=\"").to_string()
    }

    /// Signs in with `key` through the form, as a browser does.
    async fn sign_in(&mut self, key: &str) -> reqwest::Response {
        let token = self.sign_in_token().await;
        let answer = self
            .post("/sign-in", &[("key", key), ("csrf", &token)])
            .await;
        self.keep_cookie(&answer);
        answer
    }

    /// Keeps the cookie `answer` sets, if any, for the next calls.
    fn keep_cookie(&mut self, answer: &reqwest::Response) {
        if let Some(set) = answer.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            self.cookie = pair.to_string();
        }
    }
}

/// The value of `attribute="…"` right after the first `before` in `page`.
pub(crate) fn attribute_after<'a>(page: &'a str, before: &str) -> &'a str {
    let rest = page
        .split(before)
        .nth(1)
        .unwrap_or_else(|| panic!("no {before} in the page"));
    rest.split('"').next().unwrap()
}

/// The console's own HTTP answers: where a browser without a session goes,
/// the session cookie's attributes, CSRF refusals, long-cached assets.
#[tokio::test]
async fn sessions_cookies_and_csrf_over_plain_http() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let mut visitor = Visitor::new(&tg);

    let answer = visitor.get("/requests").await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/console/sign-in");

    assert_eq!(visitor.sign_in("wrong").await.status(), 401);
    let token = visitor.sign_in_token().await;
    let over_tls = visitor
        .http
        .post(format!("{}/sign-in", visitor.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", &visitor.cookie)
        .form(&[("key", API_KEY), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert!(over_tls.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
    let answer = visitor.sign_in(API_KEY).await;
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; HttpOnly; SameSite=Strict; Path=/console;"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");

    let page = visitor.get("/connections").await.text().await.unwrap();
    let token = attribute_after(&page, "name=\"csrf\" value=\"").to_string();
    // The masked API views only: the key never appears in a page.
    assert!(!page.contains(API_KEY));

    let (_, connections) = tg.api_get("/connections").await;
    let id = connections["models"][0]["id"].as_str().unwrap();
    let pause = format!("/connections/{id}/pause");
    let refused = visitor.post(&pause, &[]).await;
    assert_eq!(refused.status(), 403);
    let error: Value = refused.json().await.unwrap();
    let shape = [&error["handled"], &error["status"], &error["code"]];
    assert_eq!(shape, [&json!(true), &json!(403), &json!("FORBIDDEN")]);
    assert_eq!(
        visitor.post(&pause, &[("csrf", "0000")]).await.status(),
        403
    );
    let (_, connections) = tg.api_get("/connections").await;
    assert!(connections["models"][0]["paused_at"].is_null());

    assert_eq!(
        visitor.post(&pause, &[("csrf", &token)]).await.status(),
        303
    );
    let (_, connections) = tg.api_get("/connections").await;
    assert!(!connections["models"][0]["paused_at"].is_null());

    // Assets: named by their content, cached for a year; other names are not served.
    let css = attribute_after(&page, "href=\"/console/assets/");
    let asset = visitor.get(&format!("/assets/{css}")).await;
    assert_eq!(asset.status(), 200);
    let cached = &asset.headers()["cache-control"];
    assert_eq!(cached, "public, max-age=31536000, immutable");
    assert_eq!(visitor.get("/assets/console.css").await.status(), 404);

    // The list's filters are the API's: rejected requests only, and a bad value is the API's 422.
    tg.post("/e/nowhere", "{}").await;
    tg.post("/e/shop", "{}").await;
    let rejected = visitor.get("/requests?status=rejected&source_id=").await;
    assert_eq!(rejected.status(), 200);
    let rows = rejected.text().await.unwrap();
    assert!(
        rows.contains("NO_WEBHOOK") && !rows.contains("status good"),
        "{rows}"
    );
    let bad = visitor.get("/requests?status=lost").await;
    assert_eq!(bad.status(), 422);
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("is not accepted or rejected"));

    // Signing out ends the session on the server, whatever the browser keeps.
    assert_eq!(
        visitor
            .post("/sign-out", &[("csrf", &token)])
            .await
            .status(),
        303
    );
    assert_eq!(visitor.get("/requests").await.status(), 303);
}

/// The sign-in form carries its own CSRF token (there is no session yet, so
/// a double-submit one: a cookie and a field, equal). A post from another
/// site cannot read or set the cookie: refused, even with the right key,
/// and no session starts.
#[tokio::test]
async fn a_sign_in_without_the_forms_token_is_refused() {
    let tg = TestGateway::start(SHOP).await;
    let mut visitor = Visitor::new(&tg);
    let form = visitor.get("/sign-in").await;
    let cookie = form.headers()["set-cookie"].to_str().unwrap();
    let attributes = "; HttpOnly; SameSite=Strict; Path=/console/sign-in;";
    assert!(cookie.contains(attributes), "{cookie}");

    let cross_site = [
        vec![("key", API_KEY)],
        vec![("key", API_KEY), ("csrf", "0000")],
    ];
    for form in cross_site {
        let post = visitor.http.post(format!("{}/sign-in", visitor.base));
        let answer = post
            .header("origin", "https://elsewhere.example")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.headers().get("set-cookie").is_none());
        let error: Value = answer.json().await.unwrap();
        assert_eq!(error["code"], "FORBIDDEN");
    }
    // This form's cookie with another form's token.
    visitor.sign_in_token().await;
    let theirs = Visitor::new(&tg).sign_in_token().await;
    let mixed = [("key", API_KEY), ("csrf", theirs.as_str())];
    assert_eq!(visitor.post("/sign-in", &mixed).await.status(), 403);
    assert_eq!(visitor.get("/requests").await.status(), 303);

    assert_eq!(visitor.sign_in(API_KEY).await.status(), 303);
    assert_eq!(visitor.get("/requests").await.status(), 200);
}

/// Sign-in failures count with the API's failed logins (one limit per client
/// address for both doors), and console pages spend the key's API budget.
#[tokio::test]
async fn console_sign_ins_and_pages_share_the_apis_limits() {
    let limits = "api_failed_logins_per_minute = 2\napi_rate_limit_per_minute = 5\n";
    let tg = TestGateway::start_with(limits, SHOP).await;
    let mut visitor = Visitor::new(&tg);
    visitor.sign_in(API_KEY).await;
    // The sign-in spent nothing; five pages spend the key's five calls a minute.
    for _ in 0..5 {
        assert_eq!(visitor.get("/connections").await.status(), 200);
    }
    assert_eq!(visitor.get("/connections").await.status(), 429);
    let over = tg
        .api(reqwest::Method::GET, "/sources")
        .send()
        .await
        .unwrap();
    assert_eq!(
        over.status(),
        429,
        "the API and the console share the key's budget"
    );

    for _ in 0..2 {
        assert_eq!(visitor.sign_in("wrong").await.status(), 401);
    }
    let locked = visitor.sign_in(API_KEY).await;
    assert_eq!(locked.status(), 429, "the right key too, once locked out");
    assert!(locked.headers().contains_key("retry-after"));
    let bearer = tg
        .http
        .get(format!("http://{}/sources", tg.gateway.api_addr.unwrap()));
    let api = bearer.bearer_auth("still-wrong").send().await.unwrap();
    assert_eq!(
        api.status(),
        429,
        "the API's door is locked for that address too"
    );
}

/// Only the first page of the live list takes new rows: on a later page the
/// rows stay still and a banner counts the new requests, linking to the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_page_of_requests_counts_new_ones_instead_of_moving() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    for order in [1, 2] {
        let (status, _) = tg
            .post("/e/shop/orders", &format!("{{\"order\": {order}}}"))
            .await;
        assert_eq!(status, 200);
    }
    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.goto(&console_url(&tg, "/requests?limit=1")).await;
    browser.wait_for("#request-rows a").await;
    browser.click_to_next_page("Older →").await;
    let rows = browser
        .wait_for("#request-rows")
        .await
        .html(true)
        .await
        .unwrap();
    let banner = browser.wait_for("#news[data-listening]").await;
    assert!(!banner.is_displayed().await.unwrap());

    let (_, received) = tg.post("/e/shop/orders", r#"{"order": 3}"#).await;
    let newest = received["request_id"].as_str().unwrap().to_string();
    browser
        .wait_for_text("#news", "1 new request arrived")
        .await;
    page_is_clean(&browser, "requests-later-page-news").await;
    let still = browser
        .wait_for("#request-rows")
        .await
        .html(true)
        .await
        .unwrap();
    assert_eq!(rows, still, "a later page's rows moved");

    browser.click_to_next_page("Show the newest").await;
    assert_eq!(browser.path().await, "/console/requests");
    let link = format!("#request-rows a[href='/console/requests/{newest}']");
    browser.wait_for(&link).await;
    browser.close().await;
}

/// The live stream announces each request, and ends when the gateway stops
/// (else a graceful stop would wait on every open console).
#[tokio::test]
async fn the_live_stream_announces_requests_and_ends_with_the_gateway() {
    use futures_util::StreamExt;
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = gateway_to(&sink).await;
    let mut visitor = Visitor::new(&tg);
    visitor.sign_in(API_KEY).await;
    let live = visitor.get("/requests/live").await;
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let mut stream = live.bytes_stream();

    let (_, received) = tg.post("/e/shop/orders", "{}").await;
    let id = received["request_id"].as_str().unwrap().to_string();
    let mut seen = String::new();
    while !seen.contains(&format!("event: new\ndata: {id}")) {
        let chunk = tokio::time::timeout(PATIENCE, stream.next()).await;
        let chunk = chunk
            .expect("announced in time")
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }

    let stopping = tokio::spawn(tg.stopped());
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(_)) = stream.next().await {}
    });
    ended.await.expect("the stream ends when the gateway stops");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_applications_and_their_endpoints_with_secrets_masked() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with("allow_insecure_endpoints = true\n", SHOP).await;
    let app = crate::outbound::application(&tg, "billing").await;
    let endpoint = crate::outbound::endpoint(&tg, &app, &sink, json!({})).await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();

    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.click("Outbound").await;
    browser.wait_for_text("main", "billing").await;
    browser
        .wait_for_text("table.endpoints", &sink.url("/hooks"))
        .await;
    browser.wait_for_text("table.endpoints", "closed").await;
    let page = browser.client.source().await.unwrap();
    assert!(
        !page.contains(&secret),
        "the endpoint's secret is shown whole"
    );
    page_is_clean(&browser, "outbound").await;
    browser.close().await;
}

/// Polls the API until the delivery has `n` attempts.
pub(crate) async fn wait_attempts(tg: &TestGateway, delivery: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, shown) = tg
            .api_get(&format!("/api/webhook-deliveries/{delivery}"))
            .await;
        if shown["attempts"].as_array().map_or(0, Vec::len) == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {n} attempts: {shown}"
        );
        // Polling the store through the API: an attempt signals nothing else.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_rotates_a_secret_sees_it_once_and_retries_a_jobs_delivery() {
    use crate::outbound::{assert_signed, job_id_of, one_endpoint, wait_job, INSECURE};
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(INSECURE, SHOP).await;
    let (app, endpoint) = one_endpoint(&tg, &sink, json!({})).await;
    let first_secret = endpoint["secret"].as_str().unwrap().to_string();

    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    sign_in(&browser, &tg, API_KEY).await;
    browser.wait_for("#request-rows").await;
    browser.click_to_next_page("Outbound").await;

    // Without the CSRF token, no rotation.
    let rotation = format!(
        "/console/outbound/endpoints/{}/rotate-secret",
        endpoint["id"].as_str().unwrap()
    );
    assert_eq!(post_from_page(&browser, &rotation, json!({})).await, 403);
    let (_, unchanged) = tg
        .api_get(&format!(
            "/v1/endpoints/{}",
            endpoint["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(unchanged["updated_at"], endpoint["updated_at"]);
    // (The refused fetch is logged as a failed load; start the log afresh.)
    browser.console_errors().await;

    // Rotating asks first, then shows the new secret whole, this once.
    browser.click_to_next_page("Rotate secret…").await;
    browser.wait_for_text("main", "shown once").await;
    page_is_clean(&browser, "outbound-rotate-confirm").await;
    browser.click_to_next_page("Rotate the secret").await;
    let shown = browser.wait_for("#new-secret").await.text().await.unwrap();
    let new_secret = shown.trim().to_string();
    assert!(
        new_secret.starts_with("whsec_") && new_secret != first_secret,
        "{new_secret}"
    );
    page_is_clean(&browser, "outbound-new-secret").await;
    browser.click_to_next_page("Back to outbound").await;
    browser.client.refresh().await.unwrap();
    browser.wait_for("table.endpoints").await;
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(&new_secret), "the new secret is shown again");
    page_is_clean(&browser, "outbound-secret-masked").await;

    // The shown secret is the one deliveries are signed with.
    let job = job_id_of(&tg, &app).await;
    let job_shown = wait_job(&tg, &job, "succeeded").await;
    assert_signed(&sink.wait_for(1).await[0], &new_secret);
    let delivery = job_shown["deliveries"][0]["id"].as_str().unwrap();

    // The application's jobs, filtered, and the job with its delivery's attempt.
    browser.click_to_next_page("Jobs").await;
    browser.wait_for_text("#jobs", "order.created").await;
    page_is_clean(&browser, "outbound-jobs").await;
    let jobs = console_url(&tg, &format!("/outbound/applications/{app}/jobs"));
    browser.goto(&format!("{jobs}?status=discarded")).await;
    let none = browser.wait_for("#jobs").await.text().await.unwrap();
    assert!(!none.contains("order.created"), "{none}");
    browser
        .goto(&format!("{jobs}?event_type=order.created"))
        .await;
    browser.wait_for_text("#jobs", "order.created").await;
    let link = browser.wait_for("#jobs a").await;
    link.click().await.unwrap();
    browser.wait_for_text("table.attempts", "200").await;
    assert_eq!(
        browser.path().await,
        format!("/console/outbound/jobs/{job}")
    );
    page_is_clean(&browser, "outbound-job").await;

    // Retry sends the delivery again: a second attempt shows.
    browser.click_to_next_page("Retry").await;
    wait_attempts(&tg, delivery, 2).await;
    browser.client.refresh().await.unwrap();
    let rows = browser
        .client
        .find_all(Locator::Css("table.attempts tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    page_is_clean(&browser, "outbound-job-retried").await;
    browser.close().await;
}

/// The page showing a rotated secret is never cached, so going back to it
/// does not show the secret again.
#[tokio::test]
async fn the_page_showing_a_rotated_secret_is_not_cached() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(INSECURE, SHOP).await;
    let (_, endpoint) = crate::outbound::one_endpoint(&tg, &sink, json!({})).await;
    let mut visitor = Visitor::new(&tg);
    visitor.sign_in(API_KEY).await;
    let page = visitor.get("/outbound").await.text().await.unwrap();
    let token = attribute_after(&page, "name=\"csrf\" value=\"").to_string();

    let rotation = format!(
        "/outbound/endpoints/{}/rotate-secret",
        endpoint["id"].as_str().unwrap()
    );
    let answer = visitor.post(&rotation, &[("csrf", &token)]).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let shown = answer.text().await.unwrap();
    let secret = attribute_after(&shown, "id=\"new-secret\" tabindex=\"0\">");
    let secret = secret.split('<').next().unwrap();
    assert!(secret.starts_with("whsec_"), "{shown}");
    let listed = visitor.get("/outbound").await.text().await.unwrap();
    assert!(
        !listed.contains(secret),
        "the rotated secret is shown again"
    );
}
