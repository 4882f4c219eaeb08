//! The customer portal (`/portal`): sign-in links, the session cookie,
//! framing, branding, and scoping to one application, over plain HTTP.

use crate::common::*;
use crate::console::{attribute_after, Visitor};
use crate::outbound::{event_types, job_id_of, wait_job, INSECURE};
use reqwest::Method;
use serde_json::{json, Value};

const BRAND: &str = r##"{"name": "Acme Webhooks", "logo_url": "https://cdn.acme.test/logo.svg",
    "primary_color": "#c2410c", "theme": "dark", "frame_ancestors": ["https://app.acme.test"]}"##;

fn portal_url(tg: &TestGateway) -> String {
    format!("http://{}/portal", tg.gateway.api_addr.unwrap())
}

/// Creates an application with the portal settings `portal`; returns its id.
async fn branded_application(tg: &TestGateway, name: &str, portal: Value) -> String {
    let body = json!({ "name": name, "portal": portal });
    let (status, app) = tg.api_send(Method::POST, "/v1/applications", body).await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["portal"], portal);
    app["id"].as_str().unwrap().to_string()
}

/// Asks the API for a sign-in link of `app` with `body`.
async fn new_link(tg: &TestGateway, app: &str, body: Value) -> Value {
    let path = format!("/v1/applications/{app}/portal-sessions");
    let (status, link) = tg.api_send(Method::POST, &path, body).await;
    assert_eq!(status, 201, "{link}");
    link
}

/// A visitor signed in by a fresh link of `app`; also its CSRF token.
async fn signed_in(tg: &TestGateway, app: &str, features: &[&str]) -> (Visitor, String) {
    let link = new_link(tg, app, json!({ "features": features })).await;
    let mut visitor = Visitor::at(portal_url(tg));
    let url = link["url"].as_str().unwrap();
    let opened = visitor.http.get(url).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    visitor.cookie = cookie.split(';').next().unwrap().to_string();
    let page = visitor.get("/endpoints").await.text().await.unwrap();
    let token = attribute_after(&page, "name=\"csrf\" value=\"").to_string();
    (visitor, token)
}

fn header<'a>(answer: &'a reqwest::Response, name: &str) -> &'a str {
    answer.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn a_portal_link_opens_once_into_a_branded_page_framed_only_by_the_applications_sites() {
    let tg = TestGateway::start_with(INSECURE, "").await;
    let portal: Value = serde_json::from_str(BRAND).unwrap();
    let app = branded_application(&tg, "acme", portal).await;

    // The settings are checked: each goes into a header or the page's CSS.
    for (field, bad) in [
        ("primary_color", json!("red; background: url(x)")),
        (
            "frame_ancestors",
            json!(["https://app.acme.test; script-src *"]),
        ),
        ("logo_url", json!("javascript:alert(1)")),
    ] {
        let body = json!({ "portal": { field: bad } });
        let (status, error) = tg
            .api_send(Method::PUT, &format!("/v1/applications/{app}"), body)
            .await;
        assert_eq!(status, 422, "{field}: {error}");
    }
    let path = format!("/v1/applications/{app}/portal-sessions");
    for bad in [json!({"expires_in": 0}), json!({"features": ["admin"]})] {
        let (status, error) = tg.api_send(Method::POST, &path, bad).await;
        assert_eq!(status, 422, "{error}");
    }
    let (status, error) = tg
        .api_send(
            Method::POST,
            "/v1/applications/app_nope/portal-sessions",
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{error}");
    let unauthorized = tg
        .api_without_key(Method::POST, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    // No body: an hour.
    let answer = tg.api(Method::POST, &path).send().await.unwrap();
    assert_eq!(answer.status(), 201);
    let link: Value = answer.json().await.unwrap();
    assert_eq!(link["expires_in"], 3600);
    let url = link["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "{}/sign-in/{}",
            portal_url(&tg),
            link["token"].as_str().unwrap()
        )
    );

    let visitor = Visitor::at(portal_url(&tg));
    let opened = visitor.http.get(url).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(header(&opened, "location"), "/portal/endpoints");
    assert_eq!(
        header(&opened, "content-security-policy"),
        "frame-ancestors https://app.acme.test"
    );
    let cookie = header(&opened, "set-cookie");
    assert!(
        cookie.contains("; HttpOnly; SameSite=Lax; Path=/portal;"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();

    // Used once: never again, and nobody may frame the refusal.
    let again = visitor.http.get(url).send().await.unwrap();
    assert_eq!(again.status(), 410);
    assert_eq!(
        header(&again, "content-security-policy"),
        "frame-ancestors 'none'"
    );

    // The session's pages: the brand, framed by the application's sites only.
    let page = visitor
        .http
        .get(format!("{}/endpoints", portal_url(&tg)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-security-policy"),
        "frame-ancestors https://app.acme.test"
    );
    assert!(page.headers().get("x-frame-options").is_none());
    let page = page.text().await.unwrap();
    for shown in [
        "Acme Webhooks",
        "src=\"https://cdn.acme.test/logo.svg\"",
        "data-theme=\"dark\"",
        "style=\"--accent: #c2410c\"",
    ] {
        assert!(page.contains(shown), "{shown} not in {page}");
    }
    // Without a session: a 401, framed by nobody.
    let stranger = visitor.get("/endpoints").await;
    assert_eq!(stranger.status(), 401);
    assert_eq!(
        header(&stranger, "content-security-policy"),
        "frame-ancestors 'none'"
    );

    // Over TLS (a proxy says so) the cookie may go into the product's iframe.
    let link = new_link(&tg, &app, json!({"expires_in": 60})).await;
    assert_eq!(link["expires_in"], 60);
    let proxied = visitor
        .http
        .get(link["url"].as_str().unwrap())
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = header(&proxied, "set-cookie");
    assert!(
        cookie.contains("; SameSite=None; Path=/portal;") && cookie.ends_with("; Secure"),
        "{cookie}"
    );

    // An application with no sites: nobody may frame it.
    let plain = branded_application(
        &tg,
        "plain",
        json!({"name": null, "logo_url": null,
        "primary_color": null, "theme": "light", "frame_ancestors": []}),
    )
    .await;
    let (visitor, _) = signed_in(&tg, &plain, &[]).await;
    let page = visitor.get("/endpoints").await;
    assert_eq!(
        header(&page, "content-security-policy"),
        "frame-ancestors 'none'"
    );
    assert!(page.text().await.unwrap().contains("plain"));
}

/// Two applications, each with an endpoint on its own sink path, a declared
/// type and a delivered job; returns (app, endpoint id, delivery id) of each.
async fn two_applications(tg: &TestGateway, sink: &Sink) -> [(String, String, String); 2] {
    let mut made = Vec::new();
    for name in ["ours", "theirs"] {
        let app = crate::outbound::application(tg, name).await;
        event_types(tg, &app, &["order.created", &format!("{name}.only")]).await;
        let body = json!({ "application_id": app, "url": sink.url(&format!("/{name}")) });
        let (status, endpoint) = tg.api_send(Method::POST, "/v1/endpoints", body).await;
        assert_eq!(status, 201, "{endpoint}");
        let job = job_id_of(tg, &app).await;
        let job = wait_job(tg, &job, "succeeded").await;
        let delivery = job["deliveries"][0]["id"].as_str().unwrap().to_string();
        made.push((app, endpoint["id"].as_str().unwrap().to_string(), delivery));
    }
    made.try_into().unwrap()
}

/// The management API's `X-RateLimit-Remaining` after one more call.
async fn management_remaining(tg: &TestGateway) -> u32 {
    let answer = tg
        .api(Method::GET, "/v1/applications")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    header(&answer, "x-ratelimit-remaining").parse().unwrap()
}

#[tokio::test]
async fn a_burst_of_portal_pages_past_the_applications_budget_is_told_when_to_come_back() {
    let budget = "[outbound]\nportal_requests_per_minute_per_application = 3\n";
    // The management API's budget grows back one call every 2 s, not 250 ms:
    // a loaded machine's pages take less than that.
    let server = format!("{INSECURE}api_rate_limit_per_minute = 30\n");
    let tg = TestGateway::start_with(&server, budget).await;
    let portal: Value = serde_json::from_str(BRAND).unwrap();
    let ours = branded_application(&tg, "ours", portal.clone()).await;
    let theirs = branded_application(&tg, "theirs", portal).await;
    // Signing in shows a page: one of our 3 requests is left, over all our sessions.
    let (visitor, _) = signed_in(&tg, &ours, &[]).await;
    let (another_session, _) = signed_in(&tg, &ours, &[]).await;
    let (their_visitor, _) = signed_in(&tg, &theirs, &[]).await;
    let management_before = management_remaining(&tg).await;

    assert_eq!(visitor.get("/endpoints").await.status(), 200);
    let refused = another_session.get("/event-types").await;
    assert_eq!(refused.status(), 429);
    assert!(header(&refused, "retry-after").parse::<u64>().unwrap() >= 1);
    // Shown in the application's frame, like its pages.
    assert_eq!(
        header(&refused, "content-security-policy"),
        "frame-ancestors https://app.acme.test"
    );
    let error: Value = refused.json().await.unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("portal requests per minute"), "{message}");

    // Another application's customers and the management API spend their own budgets.
    assert_eq!(their_visitor.get("/deliveries").await.status(), 200);
    // Only the call that asks (had the pages spent it, 3 more would be gone).
    assert!(management_remaining(&tg).await >= management_before - 1);
}

#[tokio::test]
async fn a_link_names_the_apis_public_url_when_one_is_set() {
    // The product may call the API on an internal address; its customers
    // open the link where the API is published.
    let server = format!("{INSECURE}api_public_url = \"https://hooks.acme.test/admin/\"\n");
    let tg = TestGateway::start_with(&server, "").await;
    let portal: Value = serde_json::from_str(BRAND).unwrap();
    let app = branded_application(&tg, "acme", portal).await;
    let link = new_link(&tg, &app, json!({})).await;
    let token = link["token"].as_str().unwrap();
    assert_eq!(
        link["url"],
        format!("https://hooks.acme.test/admin/portal/sign-in/{token}")
    );
}

#[tokio::test]
async fn a_portal_session_sees_and_changes_only_its_applications_objects() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(INSECURE, "").await;
    let [(ours, our_endpoint, our_delivery), (_, endpoint, delivery)] =
        two_applications(&tg, &sink).await;
    let (visitor, token) = signed_in(&tg, &ours, &[]).await;
    let (_, before) = tg.api_get(&format!("/v1/endpoints/{endpoint}")).await;

    // Every route naming an object, with the other application's: 404.
    let reads = [
        format!("/endpoints/{endpoint}"),
        format!("/endpoints/{endpoint}/rotate-secret"),
        format!("/deliveries/{delivery}"),
    ];
    for path in &reads {
        assert_eq!(visitor.get(path).await.status(), 404, "GET {path}");
    }
    let changes: [(String, Vec<(&str, &str)>); 7] = [
        (
            format!("/endpoints/{endpoint}"),
            vec![("url", "http://127.0.0.1:1/x")],
        ),
        (
            format!("/endpoints/{endpoint}/status"),
            vec![("status", "disabled")],
        ),
        (format!("/endpoints/{endpoint}/delete"), vec![]),
        (format!("/endpoints/{endpoint}/rotate-secret"), vec![]),
        (
            format!("/endpoints/{endpoint}/test"),
            vec![("event_type", "order.created")],
        ),
        (format!("/deliveries/{delivery}/retry"), vec![]),
        (
            format!("/endpoints/{our_endpoint}/test"),
            vec![("event_type", "theirs.only")],
        ),
    ];
    for (path, fields) in &changes[..6] {
        let mut form = fields.clone();
        form.push(("csrf", &token));
        assert_eq!(visitor.post(path, &form).await.status(), 404, "POST {path}");
    }
    // The other application's event type does not reach our endpoint.
    let (path, fields) = &changes[6];
    let mut form = fields.clone();
    form.push(("csrf", &token));
    assert_eq!(visitor.post(path, &form).await.status(), 422, "POST {path}");
    let (_, after) = tg.api_get(&format!("/v1/endpoints/{endpoint}")).await;
    assert_eq!(after, before, "the other application's endpoint changed");
    let (_, theirs) = tg
        .api_get(&format!("/api/webhook-deliveries/{delivery}"))
        .await;
    assert_eq!(theirs["attempts"].as_array().unwrap().len(), 1);

    // Lists show ours only, whatever the filter names.
    for path in [
        "/endpoints".to_string(),
        "/event-types".to_string(),
        format!("/deliveries?endpoint={endpoint}"),
        "/deliveries".to_string(),
    ] {
        let page = visitor.get(&path).await.text().await.unwrap();
        assert!(
            !page.contains("/theirs") && !page.contains("theirs.only"),
            "{path}: {page}"
        );
    }
    let page = visitor.get("/deliveries").await.text().await.unwrap();
    assert!(
        page.contains(&our_delivery) && page.contains("/ours"),
        "{page}"
    );

    // Changes need the session's CSRF token.
    let status = format!("/endpoints/{our_endpoint}/status");
    assert_eq!(
        visitor
            .post(&status, &[("status", "paused")])
            .await
            .status(),
        403
    );
    let wrong = [("status", "paused"), ("csrf", "0000")];
    assert_eq!(visitor.post(&status, &wrong).await.status(), 403);
    let (_, ours_now) = tg.api_get(&format!("/v1/endpoints/{our_endpoint}")).await;
    assert_eq!(ours_now["status"], "active");
    let right = [("status", "paused"), ("csrf", token.as_str())];
    assert_eq!(visitor.post(&status, &right).await.status(), 303);
    let (_, ours_now) = tg.api_get(&format!("/v1/endpoints/{our_endpoint}")).await;
    assert_eq!(ours_now["status"], "paused");

    // Signing out ends the session on the server, whatever the browser keeps.
    let out = visitor.post("/sign-out", &[("csrf", &token)]).await;
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    assert_eq!(visitor.get("/endpoints").await.status(), 401);
}

#[tokio::test]
async fn a_read_only_portal_shows_no_change_and_refuses_every_one() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(INSECURE, "").await;
    let [(ours, endpoint, delivery), _] = two_applications(&tg, &sink).await;
    let (visitor, token) = signed_in(&tg, &ours, &["read_only"]).await;
    for path in [
        format!("/endpoints/{endpoint}"),
        format!("/deliveries/{delivery}"),
        "/deliveries".into(),
    ] {
        let page = visitor.get(&path).await.text().await.unwrap();
        // Only the sign-out form is left.
        assert_eq!(page.matches("method=\"post\"").count(), 1, "{path}: {page}");
    }
    let (_, before) = tg.api_get(&format!("/v1/endpoints/{endpoint}")).await;
    for path in [
        format!("/endpoints/{endpoint}/status"),
        format!("/endpoints/{endpoint}/delete"),
        format!("/deliveries/{delivery}/retry"),
        "/endpoints".to_string(),
    ] {
        let form = [
            ("status", "paused"),
            ("url", "http://127.0.0.1:1/x"),
            ("csrf", token.as_str()),
        ];
        assert_eq!(
            visitor.post(&path, &form).await.status(),
            403,
            "POST {path}"
        );
    }
    let (_, after) = tg.api_get(&format!("/v1/endpoints/{endpoint}")).await;
    assert_eq!(after, before);
}

/// The whole round in a real headless Chromium: signed in by the link, an
/// endpoint added on a real sink, a test event delivered, a failed one retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_adds_an_endpoint_sends_a_test_event_and_retries_a_failed_delivery() {
    use crate::browser::Browser;
    use crate::console::{page_is_clean, shots_dir, wait_attempts};
    let sink = Sink::start(Reply::Status(200)).await;
    // No retries: a 500 fails the delivery at once.
    let tg = TestGateway::start_with(INSECURE, "[outbound]\nmax_retries = 0\n").await;
    // The logo: an image the gateway serves itself (the browser has no network).
    let sign_in_page = Visitor::at(crate::console::console_url(&tg, ""));
    let sign_in_page = sign_in_page.get("/sign-in").await.text().await.unwrap();
    let icon = attribute_after(&sign_in_page, "type=\"image/svg+xml\" href=\"");
    let origin = format!("http://{}", tg.gateway.api_addr.unwrap());
    let mut portal: Value = serde_json::from_str(BRAND).unwrap();
    portal["logo_url"] = json!(format!("{origin}{icon}"));
    // The product's site: here, a page of the same origin that embeds the portal.
    portal["frame_ancestors"] = json!([origin]);
    let app = branded_application(&tg, "acme", portal).await;
    let schema = json!({"type": "object", "required": ["amount"], "examples": [{"amount": 42}]});
    let body = json!({"name": "invoice.paid", "description": "An invoice was paid in full", "schema": schema});
    let (status, declared) = tg
        .api_send(
            Method::POST,
            &format!("/v1/applications/{app}/event-types"),
            body,
        )
        .await;
    assert_eq!(status, 201, "{declared}");
    let link = new_link(&tg, &app, json!({})).await;

    let browser = Browser::start(&shots_dir(&tg), 1280, 900).await;
    // Embedded in the product's page, the link signs in inside the iframe.
    browser.goto(&format!("{origin}/console/sign-in")).await;
    let embed = "const frame = document.createElement('iframe'); \
                 frame.src = arguments[0]; frame.width = 1200; frame.height = 600; \
                 document.body.prepend(frame);";
    let url = link["url"].as_str().unwrap();
    browser
        .client
        .execute(embed, vec![json!(url)])
        .await
        .unwrap();
    browser.client.enter_frame(0).await.unwrap();
    browser.wait_for("#endpoints").await;
    browser.client.enter_parent_frame().await.unwrap();
    page_is_clean(&browser, "portal-embedded").await;

    // The same session at the top level.
    browser.goto(&format!("{origin}/portal/endpoints")).await;
    browser.wait_for("#endpoints").await;
    browser.wait_for_text("header.top", "Acme Webhooks").await;
    // The application's dark theme, whatever the system prefers (here: light).
    crate::console_access::is_dark(&browser, "portal-endpoints-empty").await;

    // Add an endpoint on the sink: its secret is shown this once.
    let url = sink.url("/customer");
    browser
        .wait_for("input[name=url]")
        .await
        .send_keys(&url)
        .await
        .unwrap();
    browser.click_to_next_page("Add endpoint").await;
    let secret = browser.wait_for("#new-secret").await.text().await.unwrap();
    assert!(secret.trim().starts_with("whsec_"), "{secret}");
    browser.click_to_next_page("To the endpoint").await;
    browser
        .wait_for_text("main", "An invoice was paid in full")
        .await;
    page_is_clean(&browser, "portal-endpoint").await;

    // A test event of the declared type (its schema's example) is delivered.
    browser.click_to_next_page("Send test event").await;
    browser.wait_for_text("table.attempts", "200").await;
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].path, "/customer");
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(
        (&sent["event_type"], &sent["payload"]),
        (&json!("invoice.paid"), &json!({"amount": 42}))
    );
    page_is_clean(&browser, "portal-delivery").await;

    // One that fails, then succeeds when retried.
    sink.set_reply(Reply::Status(500));
    browser.client.back().await.unwrap();
    browser.click_to_next_page("Send test event").await;
    browser.wait_for_text("section.delivery h3", "failed").await;
    let delivery = browser.path().await.rsplit('/').next().unwrap().to_string();
    sink.set_reply(Reply::Status(200));
    browser.click_to_next_page("Retry").await;
    wait_attempts(&tg, &delivery, 2).await;
    browser.client.refresh().await.unwrap();
    browser
        .wait_for_text("section.delivery h3", "completed")
        .await;
    page_is_clean(&browser, "portal-delivery-retried").await;

    browser.click_to_next_page("Deliveries").await;
    browser.wait_for_text("#deliveries", "invoice.paid").await;
    page_is_clean(&browser, "portal-deliveries").await;
    browser.click_to_next_page("Endpoints").await;
    browser.click_to_next_page(&url).await;
    browser.wait_for_text("#endpoint-rates", "attempts").await;
    page_is_clean(&browser, "portal-endpoint-rates").await;
    browser.close().await;
}

/// Each change a customer makes goes through the API: edit, pause, rotate
/// (the new secret shown once), the deliveries' filters, retrying the failed
/// ones of a range, delete.
#[tokio::test]
async fn the_endpoints_page_through_more_than_a_hundred() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tg = TestGateway::start_with(INSECURE, "").await;
    let app = crate::outbound::application(&tg, "acme").await;
    for _ in 0..105 {
        crate::outbound::endpoint(&tg, &app, &sink, json!({})).await;
    }
    let (visitor, _) = signed_in(&tg, &app, &[]).await;
    let rows = |page: &str| {
        page.matches("<td class=\"mono\"><a href=\"/portal/endpoints/")
            .count()
    };
    let first = visitor.get("/endpoints").await.text().await.unwrap();
    assert_eq!(rows(&first), 100);
    assert!(first.contains("page 1 of 2"), "{first}");
    let second = visitor.get("/endpoints?page=2").await.text().await.unwrap();
    assert_eq!(rows(&second), 5);
}

#[tokio::test]
async fn retrying_the_failed_ones_takes_every_page_of_the_filter_not_only_the_first() {
    let sink = Sink::start(Reply::Status(500)).await;
    // No circuit opening on the endpoint's 130 failures in a row.
    let outbound = "[outbound]\nmax_retries = 0\ncircuit_failure_threshold = 1000\n";
    let tg = TestGateway::start_with(INSECURE, outbound).await;
    let app = crate::outbound::application(&tg, "acme").await;
    event_types(&tg, &app, &["order.created"]).await;
    crate::outbound::endpoint(&tg, &app, &sink, json!({})).await;
    let (visitor, token) = signed_in(&tg, &app, &[]).await;
    // More failed deliveries than one page of the list (100) shows.
    let mut jobs = Vec::new();
    for _ in 0..130 {
        let body = json!({"application_id": app, "event_type": "order.created", "payload": {}});
        jobs.push(crate::outbound::send_job(&tg, body).await.1);
    }
    for job in &jobs {
        wait_job(&tg, job["id"].as_str().unwrap(), "discarded").await;
    }
    // The list pages through them: 100, then the 30 older ones.
    let rows = |page: &str| {
        page.matches("<tr><td><a href=\"/portal/deliveries/")
            .count()
    };
    let first = visitor
        .get("/deliveries?status=failed")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&first), 100);
    let href = first
        .split("<a href=\"")
        .filter(|a| a.contains("rel=\"next\""));
    let href = href
        .last()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let path = href.strip_prefix("/portal").unwrap();
    let second = visitor.get(path).await.text().await.unwrap();
    assert_eq!(rows(&second), 30, "{path}");

    sink.set_reply(Reply::Status(200));
    let retried = visitor
        .post("/deliveries/retry-failed", &[("csrf", token.as_str())])
        .await;
    assert_eq!(retried.status(), 303);
    for job in &jobs {
        wait_job(&tg, job["id"].as_str().unwrap(), "succeeded").await;
    }
    assert_eq!(sink.wait_for(260).await.len(), 260);
}

#[tokio::test]
async fn a_customer_changes_an_endpoint_filters_deliveries_and_retries_the_failed_ones() {
    let sink = Sink::start(Reply::Status(500)).await;
    let tg = TestGateway::start_with(INSECURE, "[outbound]\nmax_retries = 0\n").await;
    let app = crate::outbound::application(&tg, "acme").await;
    event_types(&tg, &app, &["order.created", "order.paid"]).await;
    let endpoint = crate::outbound::endpoint(&tg, &app, &sink, json!({})).await;
    let id = endpoint["id"].as_str().unwrap();
    let (visitor, token) = signed_in(&tg, &app, &[]).await;
    let csrf = ("csrf", token.as_str());

    // Two failed deliveries of different types.
    for event_type in ["order.created", "order.paid"] {
        let body = json!({"application_id": app, "event_type": event_type, "payload": {}});
        let (_, job) = crate::outbound::send_job(&tg, body).await;
        wait_job(&tg, job["id"].as_str().unwrap(), "discarded").await;
    }
    let failed = visitor
        .get("/deliveries?status=failed&event_type=order.paid")
        .await;
    let failed = failed.text().await.unwrap();
    let rows = failed
        .matches("<tr><td><a href=\"/portal/deliveries/")
        .count();
    assert_eq!(rows, 1, "{failed}");
    assert!(
        failed.contains("<td class=\"mono\">order.paid</td>"),
        "{failed}"
    );
    let later = visitor
        .get("/deliveries?from=2999-01-01T00:00")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !later.contains("<tr><td><a href=\"/portal/deliveries/"),
        "{later}"
    );

    // Retry the failed ones of one type: only those are sent again.
    sink.set_reply(Reply::Status(200));
    let retried = visitor
        .post(
            "/deliveries/retry-failed",
            &[("event_type", "order.paid"), csrf],
        )
        .await;
    assert_eq!(retried.status(), 303);
    assert_eq!(
        header(&retried, "location"),
        "/portal/deliveries?event_type=order.paid"
    );
    let received = sink.wait_for(3).await;
    let sent: Value = serde_json::from_slice(&received[2].body).unwrap();
    assert_eq!(sent["event_type"], "order.paid");

    // Edit: description and one event type; pause.
    let edited = visitor
        .post(
            &format!("/endpoints/{id}"),
            &[
                ("url", &sink.url("/moved")),
                ("description", "orders"),
                ("subscribed_events", "order.paid"),
                csrf,
            ],
        )
        .await;
    assert_eq!(edited.status(), 303);
    let paused = visitor
        .post(
            &format!("/endpoints/{id}/status"),
            &[("status", "paused"), csrf],
        )
        .await;
    assert_eq!(paused.status(), 303);
    let (_, shown) = tg.api_get(&format!("/v1/endpoints/{id}")).await;
    let changed = [
        &shown["url"],
        &shown["description"],
        &shown["subscribed_events"],
        &shown["status"],
    ];
    assert_eq!(
        changed,
        [
            &json!(sink.url("/moved")),
            &json!("orders"),
            &json!(["order.paid"]),
            &json!("paused")
        ]
    );
    // A URL the API refuses is the API's 422, shown.
    let refused = visitor
        .post(&format!("/endpoints/{id}"), &[("url", "ftp://x"), csrf])
        .await;
    assert_eq!(refused.status(), 422);

    // Rotate: the new secret once, on a page not cached; masked elsewhere.
    let rotated = visitor
        .post(&format!("/endpoints/{id}/rotate-secret"), &[csrf])
        .await;
    assert_eq!(header(&rotated, "cache-control"), "no-store");
    let page = rotated.text().await.unwrap();
    let secret = attribute_after(&page, "id=\"new-secret\" tabindex=\"0\">");
    let secret = secret.split('<').next().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret != endpoint["secret"],
        "{page}"
    );
    let detail = visitor
        .get(&format!("/endpoints/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!detail.contains(secret));

    let deleted = visitor
        .post(&format!("/endpoints/{id}/delete"), &[csrf])
        .await;
    assert_eq!(header(&deleted, "location"), "/portal/endpoints");
    assert_eq!(tg.api_get(&format!("/v1/endpoints/{id}")).await.0, 404);
}

/// `endpoint_ids` (what a portal test event uses): a job goes to those of
/// the subscribed endpoints only.
#[tokio::test]
async fn a_job_with_endpoint_ids_goes_to_those_subscribed_endpoints_only() {
    let (one, other) = (
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    );
    let tg = TestGateway::start_with(INSECURE, "").await;
    let app = crate::outbound::application(&tg, "acme").await;
    let chosen = crate::outbound::endpoint(&tg, &app, &one, json!({})).await;
    crate::outbound::endpoint(&tg, &app, &other, json!({})).await;
    let unsubscribed =
        crate::outbound::endpoint(&tg, &app, &other, json!({"subscribed_events": ["x.y"]})).await;
    let body = json!({"application_id": app, "event_type": "order.created", "payload": {},
        "endpoint_ids": [chosen["id"], unsubscribed["id"]]});
    let (status, job) = crate::outbound::send_job(&tg, body).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["endpoint_ids"], json!([chosen["id"]]));
    wait_job(&tg, job["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(one.received().len(), 1);
    assert!(other.received().is_empty());
}
