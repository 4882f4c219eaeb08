//! Runs a recorded request through a config's real pipeline, as the ingress
//! and the router would, with no server and no store: the source's checks and
//! verification (`Verifier::admit`), then each connection's rules
//! (`pipeline::decision::decide`), sightings for dedupe kept in memory.

use super::case::{ConnectionOutcome, Delivered, Outcomes, RecordedCase};
use crate::ids::derived_id;
use crate::model::{Catalog, Payload, Refusal, Request, Source};
use crate::pipeline::decision::{decide, Outcome, RuleEffects, TransformationRun};
use crate::pipeline::dedup::{Claim, Sighting};
use crate::pipeline::view::transform_input;
use crate::store::Result as StoreResult;
use crate::verify::{Verifier, VERIFIED_HEADER};
use crate::Config;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

/// One run over many recorded requests: dedupe sightings carry from one to
/// the next, as they would in a gateway receiving them in that order.
pub struct Replay {
    catalog: Catalog,
    /// `server.public_url`, else `http://localhost`: the URL verification
    /// takes the provider to have called (Twilio signs it).
    base_url: String,
    sightings: Sightings,
}

impl Replay {
    pub fn new(config: &Config) -> Replay {
        let base_url = config.server.public_url.as_ref().map_or_else(
            || "http://localhost".to_string(),
            |url| url.as_str().trim_end_matches('/').to_string(),
        );
        Replay {
            catalog: config.catalog(),
            base_url,
            sightings: Sightings::default(),
        }
    }

    /// What the gateway makes of `case`'s request, arriving at `received_ms`.
    pub fn outcomes(&mut self, case: &RecordedCase, received_ms: u64) -> Result<Outcomes, String> {
        let source = self
            .catalog
            .source(&case.source)
            .ok_or_else(|| format!("the config has no source \"{}\"", case.source))?
            .clone();
        let mut payload = case.request.payload()?;
        // The ingress drops a sender's own `x-hookdeck-verified`; a file
        // exported from a verified request has it from the ingress.
        payload
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(VERIFIED_HEADER));
        let verifier = source.verifier.as_deref();
        if let Some(credential) = verifier.and_then(Verifier::credential) {
            if case.request.credential_from_config {
                payload.headers.push(credential);
            }
        }
        if let Err(refusal) = self.admit(&source, &case.source, &mut payload, received_ms) {
            return Ok(Outcomes::Rejected(refusal.cause().as_str().to_string()));
        }
        // Rules see the case's time, not the replay's.
        let request = Request {
            received_at: received_ms,
            ..Request::received(Some(&source.id), &case.source, &payload)
        };
        let mut by_name = BTreeMap::new();
        for connection in self.catalog.connections_of(&source.id) {
            let event_id = derived_id("evt", &request.id, &connection.id);
            let (outcome, _logs) = decide(
                &mut self.sightings,
                &event_id,
                connection,
                &request,
                &payload,
            )
            .map_err(|e| e.to_string())?;
            by_name.insert(
                connection.name.clone(),
                observed(outcome, &payload, received_ms),
            );
        }
        Ok(Outcomes::Connections(by_name))
    }

    /// The ingress's checks of a source (`Source::admit_head`, then its
    /// `verify`), against the URL the provider would have called.
    fn admit(
        &self,
        source: &Source,
        name_in_url: &str,
        payload: &mut Payload,
        received_ms: u64,
    ) -> Result<(), Refusal> {
        let head = source.admit_head(payload)?;
        let query = match payload.query.as_str() {
            "" => String::new(),
            query => format!("?{query}"),
        };
        let url = format!("{}/e/{name_in_url}{}{query}", self.base_url, payload.path);
        let now = UNIX_EPOCH + Duration::from_millis(received_ms);
        head.verify(payload, &url, now)
    }
}

/// A connection's outcome as the file writes it: a delivered event's data
/// in full (an expectation names what it compares).
fn observed(outcome: Outcome, request: &Payload, received_ms: u64) -> ConnectionOutcome {
    match outcome {
        Outcome::Ignore { cause, .. } => ConnectionOutcome::Ignored(cause.to_string()),
        Outcome::Deliver { payload, due_ms } => {
            let delivered = payload.as_ref().unwrap_or(request);
            let data = transform_input(delivered);
            let headers = delivered_headers(&data["headers"]);
            ConnectionOutcome::Delivered(Delivered {
                path: Some(delivered.path.clone()),
                query: Some(delivered.query.clone()),
                headers: Some(headers),
                body: Some(data["body"].clone()),
                delay_ms: Some(due_ms - received_ms),
            })
        }
    }
}

/// The headers object of an event's data as name → value.
pub fn delivered_headers(headers: &serde_json::Value) -> BTreeMap<String, String> {
    headers
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Dedupe sightings in memory: (connection id ‖ fingerprint) → first seen
/// at, by request id; judged by `Sighting::judge`, as the store judges them.
#[derive(Default)]
struct Sightings(HashMap<Vec<u8>, (u64, String)>);

impl RuleEffects for Sightings {
    fn claim_fingerprint(&mut self, sighting: &Sighting) -> StoreResult<bool> {
        let key = sighting.key();
        let earlier = self.0.get(&key).map(|(at, owner)| (*at, owner.as_bytes()));
        Ok(match sighting.judge(earlier) {
            Claim::Duplicate => false,
            Claim::Own => true,
            Claim::Take => {
                let owner = sighting.request_id.to_string();
                self.0.insert(key, (sighting.received_ms, owner));
                true
            }
        })
    }

    /// Runs are not recorded: the outcome tells what they did.
    fn transformation_ran(&mut self, _run: TransformationRun<'_>) -> StoreResult<()> {
        Ok(())
    }
}
