//! The checks on what users send to the outbound API, each with a message that
//! says what to send instead.

use crate::model::PortalSettings;
use serde_json::Value;
use std::collections::BTreeMap;
use url::Url;

/// `resource.action`: two or more lower-case segments of letters, digits and
/// `_`, each starting with a letter (`invoice.paid`, `invoice.payment.failed`).
pub fn event_type_name(name: &str) -> Result<(), String> {
    crate::names::check_length(name)?;
    let segment_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let segments: Vec<&str> = name.split('.').collect();
    if segments.len() >= 2 && segments.iter().all(|s| segment_ok(s)) {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not an event type name: use lower-case \"resource.action\" \
             (segments of a-z, 0-9 and _ joined by dots, each starting with a letter), \
             e.g. \"invoice.paid\""
        ))
    }
}

/// An event type named by a job or a subscription. Declaring types is
/// optional (the references send and subscribe to types they never
/// declare), so any non-empty name of bounded length will do; only declared
/// ones are held to `event_type_name`.
pub fn event_type_used(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an event type name is needed, e.g. \"invoice.paid\"".to_string());
    }
    crate::names::check_length(name)
}

/// An endpoint URL: absolute http(s), and https unless insecure ones are allowed.
pub fn endpoint_url(text: &str, allow_insecure: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure => Ok(url),
        "http" => Err(format!(
            "\"{text}\" must use https (set server.allow_insecure_endpoints = true to allow http)"
        )),
        other => Err(format!("\"{text}\": the scheme must be https, not {other}")),
    }
}

/// An application's portal settings: an http(s) logo, a `#rgb`/`#rrggbb`
/// colour (it goes into the portal's CSS), and frame ancestors that are bare
/// http(s) origins (each goes into a `Content-Security-Policy` header, so
/// nothing else may pass). On error: the field and what to send instead.
pub fn portal_settings(settings: &PortalSettings) -> Result<(), (&'static str, String)> {
    if let Some(logo) = &settings.logo_url {
        http_url(logo).map_err(|e| ("portal.logo_url", e))?;
    }
    if let Some(colour) = &settings.primary_color {
        hex_colour(colour).map_err(|e| ("portal.primary_color", e))?;
    }
    if let Some(name) = &settings.name {
        crate::names::check_length(name).map_err(|e| ("portal.name", e))?;
    }
    for origin in &settings.frame_ancestors {
        bare_origin(origin).map_err(|e| ("portal.frame_ancestors", e))?;
    }
    Ok(())
}

fn http_url(text: &str) -> Result<(), String> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(()),
        _ => Err(format!("\"{text}\" is not an http(s) URL")),
    }
}

fn hex_colour(text: &str) -> Result<(), String> {
    let digits = text.strip_prefix('#').unwrap_or_default();
    if matches!(digits.len(), 3 | 6) && digits.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "\"{text}\" is not a colour: use #rgb or #rrggbb, e.g. \"#0b7285\""
        ))
    }
}

/// `scheme://host[:port]` with nothing after it, exactly as written.
fn bare_origin(text: &str) -> Result<(), String> {
    let origin = Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http") && url.host().is_some())
        .map(|url| url.origin().ascii_serialization());
    match origin {
        Some(origin) if origin == text => Ok(()),
        _ => Err(format!(
            "\"{text}\" is not an origin: use scheme://host[:port], e.g. \"https://app.example.com\""
        )),
    }
}

/// Checks that a value is a usable JSON Schema.
pub fn schema(schema: &Value) -> Result<(), String> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| format!("not a valid JSON Schema: {e}"))
}

/// Every way `payload` breaks `schema`, each as `"/path: message"`.
pub fn schema_violations(schema: &Value, payload: &Value) -> Vec<String> {
    match jsonschema::validator_for(schema) {
        Ok(validator) => validator
            .iter_errors(payload)
            .map(|e| {
                let path = e.instance_path().to_string();
                let at = if path.is_empty() { "/" } else { &path };
                format!("{at}: {e}")
            })
            .collect(),
        // Stored schemas were checked when saved.
        Err(e) => vec![format!("the event type's schema is invalid: {e}")],
    }
}

/// Headers a job may add to its deliveries: valid names, kept as given (the
/// job shows them so, as the reference's job object does), each name once
/// whatever its case, none of those the gateway sets itself or that describe
/// one HTTP hop.
pub fn job_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "content-type",
        "content-length",
        "host",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
    ];
    let mut lower_names = std::collections::BTreeSet::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(format!("\"{name}\" is not a valid header name"));
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "the value of \"{name}\" is not a valid header value"
            ));
        }
        if RESERVED.contains(&lower.as_str())
            || lower.starts_with("webhook-")
            || lower.starts_with("x-hookgate-")
        {
            return Err(format!(
                "\"{name}\" is set by the gateway and cannot be given"
            ));
        }
        if !lower_names.insert(lower) {
            return Err(format!(
                "\"{name}\" is given twice (header names ignore case)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_type_names() {
        // The reference's versioned names too (payloads L173-175).
        for good in [
            "invoice.paid",
            "invoice.payment_failed",
            "a1.b2.c3",
            "user.created.v1",
        ] {
            assert!(event_type_name(good).is_ok(), "{good}");
        }
        for bad in [
            "invoice",
            "Invoice.paid",
            "invoice..paid",
            "invoice.paid.",
            "1nvoice.paid",
            "invoice-paid",
            "invoice.pa id",
            "USER_CREATED",
        ] {
            let error = event_type_name(bad).unwrap_err();
            assert!(error.contains("resource.action"), "{error}");
        }
    }

    #[test]
    fn urls_need_https_unless_allowed() {
        assert!(endpoint_url("https://example.com/hooks", false).is_ok());
        assert!(endpoint_url("http://example.com/hooks", false)
            .unwrap_err()
            .contains("allow_insecure_endpoints"));
        assert!(endpoint_url("http://127.0.0.1:9/hooks", true).is_ok());
        assert!(endpoint_url("ftp://example.com", true).is_err());
        assert!(endpoint_url("not a url", true).is_err());
    }

    #[test]
    fn schema_violations_name_the_path() {
        let schema = json!({
            "type": "object",
            "required": ["amount"],
            "properties": { "amount": { "type": "integer", "minimum": 0 } }
        });
        assert!(schema_violations(&schema, &json!({"amount": 5})).is_empty());
        let violations = schema_violations(&schema, &json!({"amount": -1}));
        assert_eq!(violations.len(), 1);
        assert!(violations[0].starts_with("/amount: "), "{violations:?}");
        assert_eq!(schema_violations(&schema, &json!({})).len(), 1);
        assert!(super::schema(&json!({"type": "no-such-type"})).is_err());
    }

    #[test]
    fn headers_the_gateway_sets_are_refused() {
        let given = |name: &str| BTreeMap::from([(name.to_string(), "v".to_string())]);
        assert!(job_headers(&given("X-Tenant")).is_ok());
        let twice = BTreeMap::from([
            ("X-Tenant".to_string(), "a".to_string()),
            ("x-tenant".to_string(), "b".to_string()),
        ]);
        assert!(job_headers(&twice).unwrap_err().contains("twice"));
        for reserved in [
            "webhook-id",
            "Content-Type",
            "x-hookgate-event-id",
            "bad name",
        ] {
            assert!(job_headers(&given(reserved)).is_err(), "{reserved}");
        }
    }

    #[test]
    fn portal_settings_take_origins_colours_and_http_logos_only() {
        let good = PortalSettings {
            logo_url: Some("https://cdn.example.com/logo.svg".into()),
            primary_color: Some("#0B7285".into()),
            frame_ancestors: vec![
                "https://app.example.com".into(),
                "http://localhost:8080".into(),
            ],
            ..PortalSettings::default()
        };
        assert_eq!(portal_settings(&good), Ok(()));
        let field_of = |change: fn(&mut PortalSettings)| {
            let mut settings = good.clone();
            change(&mut settings);
            portal_settings(&settings).unwrap_err().0
        };
        assert_eq!(
            field_of(|s| s.logo_url = Some("javascript:alert(1)".into())),
            "portal.logo_url"
        );
        assert_eq!(
            field_of(|s| s.primary_color = Some("red; x: y".into())),
            "portal.primary_color"
        );
        assert_eq!(
            field_of(|s| s.primary_color = Some("#12345".into())),
            "portal.primary_color"
        );
        for origin in [
            "https://a.example.com/path",
            "https://a.example.com; script-src *",
            "*",
            "'self'",
        ] {
            let mut settings = good.clone();
            settings.frame_ancestors = vec![origin.into()];
            assert_eq!(
                portal_settings(&settings).unwrap_err().0,
                "portal.frame_ancestors",
                "{origin}"
            );
        }
    }
}
