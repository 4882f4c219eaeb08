//! What a connection's rules decide for one request: the pipeline itself,
//! shared by the router (effects in the store) and `hookgate test` (effects
//! in memory), so a recorded request is judged by the code that routes it.

use super::dedup::Sighting;
use super::filter::Evaluation;
use super::transform::{LogEntry, TransformError};
use super::view::{filter_root, payload_from_transformed, transform_input};
use super::{NamedTransformation, Rule};
use crate::metrics::TransformOutcome;
use crate::model::{Connection, Payload, Request};
use crate::store::Result;
use serde_json::Value;
use std::borrow::Cow;
use std::time::{Duration, Instant};

const TRANSFORMATION_FAILED: &str = "TRANSFORMATION_FAILED";

/// What a connection's rules decided for one request.
#[derive(Debug)]
pub enum Outcome {
    Deliver {
        /// Present when a rule changed the payload.
        payload: Option<Payload>,
        due_ms: u64,
    },
    Ignore {
        cause: &'static str,
        detail: Option<String>,
        /// The transformation that failed (`TRANSFORMATION_FAILED`), by name.
        transformation: Option<String>,
        /// The request part a filter failed on (`FILTERED`).
        failed_part: Option<&'static str>,
    },
}

/// One run of a transformation rule, for whoever records runs.
pub struct TransformationRun<'a> {
    pub transform: &'a NamedTransformation,
    pub connection: &'a Connection,
    pub request: &'a Request,
    pub event_id: &'a str,
    pub logs: &'a [LogEntry],
    pub error: Option<&'a String>,
    /// Ok, failed, or timed out (a failure of its own in the metrics).
    pub outcome: TransformOutcome,
    pub took: Duration,
}

/// What rules remember and report beyond their outcome.
pub trait RuleEffects {
    /// Whether the request may claim the fingerprint (false: a duplicate
    /// within the window); see `Sighting::judge`.
    fn claim_fingerprint(&mut self, sighting: &Sighting) -> Result<bool>;

    /// A transformation rule ran.
    fn transformation_ran(&mut self, run: TransformationRun<'_>) -> Result<()>;
}

/// Runs a connection's rules in the order written. A filter sees the payload
/// as the rules before it left it (so a filter may come before or after a
/// transform). Returns the outcome and what transformations logged.
pub fn decide(
    effects: &mut dyn RuleEffects,
    event_id: &str,
    connection: &Connection,
    request: &Request,
    payload: &Payload,
) -> Result<(Outcome, Vec<LogEntry>)> {
    let mut current = Cow::Borrowed(payload);
    // The JSON view of `current`, built once and only if a rule needs it.
    let mut root: Option<Value> = None;
    let mut due_ms = request.received_at;
    let mut logs = Vec::new();
    for rule in &connection.rules {
        match rule {
            Rule::Filter(filter) => {
                let evaluation = filter.evaluate(root.get_or_insert_with(|| filter_root(&current)));
                if !evaluation.matched {
                    let filtered = Outcome::Ignore {
                        cause: "FILTERED",
                        detail: gave_up(&evaluation),
                        transformation: None,
                        failed_part: evaluation.failed_part,
                    };
                    return Ok((filtered, logs));
                }
            }
            Rule::Transform(transform) => {
                let mut run_logs = Vec::new();
                let started = Instant::now();
                let result = transformed(transform, connection, &current, &mut run_logs);
                effects.transformation_ran(TransformationRun {
                    transform,
                    connection,
                    request,
                    event_id,
                    logs: &run_logs,
                    error: result.as_ref().err().map(|failed| &failed.message),
                    outcome: result
                        .as_ref()
                        .map_or_else(|failed| failed.outcome, |_| TransformOutcome::Ok),
                    took: started.elapsed(),
                })?;
                let result = result.map_err(|failed| failed.message);
                logs.extend(run_logs);
                match result {
                    Ok(changed) => {
                        current = Cow::Owned(changed);
                        root = None;
                    }
                    Err(error) => {
                        let failed = Outcome::Ignore {
                            cause: TRANSFORMATION_FAILED,
                            detail: Some(error),
                            transformation: Some(transform.name.clone()),
                            failed_part: None,
                        };
                        return Ok((failed, logs));
                    }
                }
            }
            Rule::Deduplicate(dedup) => {
                let fingerprint =
                    dedup.fingerprint(root.get_or_insert_with(|| filter_root(&current)));
                if !effects.claim_fingerprint(&Sighting {
                    connection_id: &connection.id,
                    fingerprint: &fingerprint,
                    request_id: &request.id,
                    // Arrival, not routing time: a request routed late (a
                    // busy router, a replay after a crash) is judged as sent.
                    received_ms: request.received_at,
                    window_ms: dedup.window.as_millis() as u64,
                })? {
                    let duplicate = Outcome::Ignore {
                        cause: "DEDUPLICATED",
                        detail: None,
                        transformation: None,
                        failed_part: None,
                    };
                    return Ok((duplicate, logs));
                }
            }
            Rule::Delay(delay) => due_ms = request.received_at + delay.as_millis() as u64,
            // Applied after attempts, by the delivery lanes.
            Rule::Retry(_) => {}
        }
    }
    let changed = match current {
        Cow::Owned(payload) => Some(payload),
        Cow::Borrowed(_) => None,
    };
    Ok((
        Outcome::Deliver {
            payload: changed,
            due_ms,
        },
        logs,
    ))
}

/// The detail of an event a filter ignored because it ran out of steps (it
/// fails closed, and says why).
fn gave_up(evaluation: &Evaluation) -> Option<String> {
    evaluation.gave_up.then(|| {
        "the filter ran out of steps ([limits] filter_max_steps) and counts as not matching".into()
    })
}

/// A transformation run that gave no request.
struct RunFailed {
    outcome: TransformOutcome,
    /// Names the transformation.
    message: String,
}

/// Runs a transformation on a payload.
fn transformed(
    transform: &NamedTransformation,
    connection: &Connection,
    payload: &Payload,
    logs: &mut Vec<LogEntry>,
) -> std::result::Result<Payload, RunFailed> {
    let context =
        serde_json::json!({ "connection": { "id": connection.id, "name": connection.name } });
    let failed = |outcome, error: String| RunFailed {
        outcome,
        message: format!("transformation \"{}\": {error}", transform.name),
    };
    match transform
        .transformation
        .run(&transform_input(payload), &context)
    {
        Ok(output) => {
            logs.extend(output.logs);
            payload_from_transformed(payload, &output.request)
                .map_err(|error| failed(TransformOutcome::Failed, error))
        }
        Err(failure) => {
            logs.extend(failure.logs);
            let outcome = match failure.error {
                TransformError::Timeout(_) => TransformOutcome::TimedOut,
                _ => TransformOutcome::Failed,
            };
            Err(failed(outcome, failure.error.to_string()))
        }
    }
}
