//! The headers Hookdeck puts on every delivery, which receivers written for
//! Hookdeck read: `idempotency-key` and `x-hookdeck-eventid` (the event id),
//! `x-hookdeck-attempt-count`, `x-hookdeck-source-name` and
//! `x-hookdeck-event-url` (the event in the management API, when its URL is
//! known). The signature (`x-hookdeck-signature`) is the destination's auth
//! method's (`signing::destination_auth`), with the workspace secret held here.

use crate::ingress::SET_BY_INGRESS;
use crate::model::{Catalog, Event};
use crate::signing::workspace_secret::WorkspaceSecret;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What deliveries need to speak as Hookdeck does.
#[derive(Clone)]
pub struct HookdeckHeaders {
    pub secret: WorkspaceSecret,
    /// The management API's base URL (`ServerSection::api_url`).
    api_url: Option<String>,
}

impl HookdeckHeaders {
    pub fn new(secret: WorkspaceSecret, api_url: Option<String>) -> HookdeckHeaders {
        HookdeckHeaders { secret, api_url }
    }

    /// Adds the event's headers to a delivery, in place of the request's own
    /// of these names; `attempt` counts from 1. Only to a connection's event:
    /// a webhook job's delivery speaks Standard Webhooks to a product's
    /// customers, and nothing of Hookdeck.
    pub fn add(
        &self,
        headers: &mut Vec<(String, String)>,
        event: &Event,
        attempt: u32,
        catalog: &Catalog,
    ) {
        if event.window.is_some() {
            return;
        }
        let source = catalog.source_even_archived(&event.source_id);
        let source_name = source.map(|s| s.name.as_str());
        headers.retain(|(name, _)| !is_set_on_delivery(name));
        headers.push((IDEMPOTENCY_KEY.into(), event.id.clone()));
        headers.push(("x-hookdeck-eventid".into(), event.id.clone()));
        headers.push(("x-hookdeck-attempt-count".into(), attempt.to_string()));
        if let Some(name) = source_name {
            headers.push(("x-hookdeck-source-name".into(), name.to_string()));
        }
        if let Some(api_url) = &self.api_url {
            let url = format!("{api_url}/events/{}", event.id);
            headers.push(("x-hookdeck-event-url".into(), url));
        }
    }
}

/// Whether a header of the request is one hookgate sets on deliveries: the
/// request's own is dropped, so that a sender cannot pass its values off as
/// the gateway's (header names are lower case). What the ingress set on the
/// request (`x-hookdeck-original-ip`, `x-hookdeck-verified`) is kept.
fn is_set_on_delivery(name: &str) -> bool {
    let hookdeck = name.starts_with("x-hookdeck-") && !SET_BY_INGRESS.contains(&name);
    name == IDEMPOTENCY_KEY || hookdeck
}
