//! Endpoints as the delivery lanes see them.

use crate::model::{Destination, Endpoint, EndpointStatus, Origin, RateLimit, RatePeriod};
use crate::signing::destination_auth::DestinationAuth;
use crate::signing::standard_webhooks::{SecretSet, WebhookSecret};
use crate::store::{Result, Store};
use std::sync::Arc;

/// The destination a lane delivers an endpoint's events to: a POST to its URL,
/// signed the Standard Webhooks way with every secret still active, within its
/// rate limit, behind a circuit breaker.
pub fn destination_of(
    endpoint: &Endpoint,
    concurrency: usize,
) -> std::result::Result<Destination, String> {
    let url = url::Url::parse(&endpoint.url).map_err(|e| format!("url: {e}"))?;
    let mut secrets = SecretSet::new(WebhookSecret::parse(&endpoint.secret)?);
    for (previous, expires_at) in &endpoint.previous_secrets {
        secrets
            .previous
            .push((WebhookSecret::parse(previous)?, *expires_at));
    }
    Ok(Destination {
        id: endpoint.id.clone(),
        name: endpoint.id.clone(),
        description: None,
        url: Some(url),
        cli_path: None,
        http_method: Some("POST".into()),
        path_forwarding_disabled: true,
        rate_limit: endpoint.rate_limit.map(|count| RateLimit {
            count,
            period: RatePeriod::Second,
        }),
        concurrency,
        concurrency_is_rate_limit: false,
        auth: Arc::new(DestinationAuth::standard_webhooks(secrets)),
        circuit_breaker: true,
        origin: Origin::Api,
    })
}

/// Every endpoint that gets deliveries (disabled ones do not: their lanes stop
/// and their queues wait on disk).
pub fn served_endpoints(store: &Store, concurrency: usize) -> Result<Vec<Destination>> {
    let mut served = Vec::new();
    for endpoint in store.endpoints()? {
        if endpoint.status == EndpointStatus::Disabled {
            continue;
        }
        match destination_of(&endpoint, concurrency) {
            Ok(destination) => served.push(destination),
            // Stored endpoints were validated; this only happens to a damaged record.
            Err(error) => tracing::error!(endpoint = %endpoint.id, %error, "endpoint not served"),
        }
    }
    Ok(served)
}
