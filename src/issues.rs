//! Opening issues: each failed delivery or transformation is an occurrence;
//! the enabled triggers that watch its connection group occurrences by an
//! aggregation key into one issue, and post a notification when an issue opens.

use crate::delivery::{DeliveryClient, Outgoing};
use crate::ids::{new_id, now_ms};
use crate::model::{
    Attempt, DeliveryStrategy, Event, EventStatus, IgnoredEvent, Issue, IssueStatus, IssueTrigger,
    IssueType, Origin, DEFAULT_BACKPRESSURE_DELAY_MS,
};
use crate::store::{Result, Store};
use std::sync::{Arc, Mutex};
use url::Url;

/// One thing that went wrong, before triggers decide what it means.
struct Occurrence<'a> {
    kind: IssueType,
    connection_id: &'a str,
    event_id: &'a str,
    attempt_id: Option<&'a str>,
    /// What distinguishes one problem from another on a connection.
    signature: String,
    detail: Option<String>,
    /// For delivery triggers: is this the event's last attempt?
    is_final: bool,
    /// For backpressure triggers: how late the oldest queued event is.
    late_ms: u64,
}

/// Shared by the delivery lanes and the router; cheap to clone.
#[derive(Clone)]
pub struct IssueTracker {
    store: Store,
    /// Notifications go through the delivery client: no redirects, and the
    /// address policy (triggers are made through the API).
    client: DeliveryClient,
    runtime: tokio::runtime::Handle,
    /// One occurrence at a time, so two failures never open two issues for one key.
    serial: Arc<Mutex<()>>,
}

impl IssueTracker {
    /// Must be created inside the runtime that will post notifications.
    pub fn new(store: Store, client: DeliveryClient) -> IssueTracker {
        IssueTracker {
            store,
            client,
            runtime: tokio::runtime::Handle::current(),
            serial: Arc::default(),
        }
    }

    /// A failed attempt (blocking: call off the reactor).
    pub fn delivery_failed(&self, event: &Event, attempt: &Attempt) {
        let signature = match (attempt.response_status, &attempt.error_code) {
            (Some(status), _) => format!("status {status}"),
            (None, Some(code)) => code.clone(),
            (None, None) => "failure".into(),
        };
        self.record(Occurrence {
            kind: IssueType::Delivery,
            connection_id: &event.connection_id,
            event_id: &event.id,
            attempt_id: Some(&attempt.id),
            detail: Some(format!("{signature} from {}", attempt.requested_url)),
            signature,
            is_final: event.status == EventStatus::Failed,
            late_ms: 0,
        });
    }

    /// A transformation that failed on an event (blocking).
    pub fn transformation_failed(&self, ignored: &IgnoredEvent) {
        self.record(Occurrence {
            kind: IssueType::Transformation,
            connection_id: &ignored.connection_id,
            event_id: &ignored.id,
            attempt_id: None,
            signature: "TRANSFORMATION_FAILED".into(),
            detail: ignored.detail.clone(),
            is_final: true,
            late_ms: 0,
        });
    }

    /// A destination whose oldest queued event is `late_ms` late (blocking).
    pub fn backpressure(&self, destination_id: &str, oldest_event_id: &str, late_ms: u64) {
        self.record(Occurrence {
            kind: IssueType::Backpressure,
            connection_id: destination_id,
            event_id: oldest_event_id,
            attempt_id: None,
            signature: "backlog".into(),
            detail: Some(format!("the oldest queued event is {late_ms} ms late")),
            is_final: true,
            late_ms,
        });
    }

    fn record(&self, occurrence: Occurrence) {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = self.open_or_count(&occurrence) {
            tracing::error!(%error, event = occurrence.event_id, "could not record an issue");
        }
    }

    fn open_or_count(&self, occurrence: &Occurrence) -> Result<()> {
        for trigger in self.store.issue_triggers()? {
            if trigger.kind != occurrence.kind || !trigger.watches(occurrence.connection_id) {
                continue;
            }
            if occurrence.kind == IssueType::Delivery
                && trigger.strategy == DeliveryStrategy::FinalAttempt
                && !occurrence.is_final
            {
                continue;
            }
            let threshold = trigger.delay_ms.unwrap_or(DEFAULT_BACKPRESSURE_DELAY_MS);
            if occurrence.kind == IssueType::Backpressure && occurrence.late_ms < threshold {
                continue;
            }
            let key = format!(
                "{}|{}|{}",
                trigger.id, occurrence.connection_id, occurrence.signature
            );
            let now = now_ms();
            match self
                .store
                .issue_for_key(&key)?
                .filter(|i| i.status != IssueStatus::Resolved && i.dismissed_at.is_none())
            {
                Some(mut issue) => {
                    issue.count += 1;
                    issue.last_seen_at = now;
                    issue.event_id = occurrence.event_id.to_string();
                    issue.attempt_id = occurrence.attempt_id.map(str::to_string);
                    self.store.save_issue(&issue)?;
                }
                None => {
                    let issue = open(&trigger, occurrence, key, now);
                    self.store.save_issue(&issue)?;
                    self.notify(&trigger, &issue);
                }
            }
        }
        Ok(())
    }

    /// Posts the new issue to the trigger's webhook, without holding anyone up.
    fn notify(&self, trigger: &IssueTrigger, issue: &Issue) {
        let Some(url) = trigger
            .webhook_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
        else {
            return;
        };
        let body = serde_json::json!({ "topic": "issue.opened", "issue": issue, "issue_trigger": { "id": trigger.id, "name": trigger.name } });
        let notification = Outgoing {
            method: "POST".into(),
            url,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into(),
            origin: Origin::Api,
        };
        let client = self.client.clone();
        self.runtime.spawn(async move {
            let response = client.send(&notification).await;
            if !response.is_success() {
                let (url, status, error) =
                    (&notification.url, response.status, response.error_code);
                tracing::warn!(%url, ?status, ?error, "could not notify an issue opening");
            }
        });
    }
}

fn open(trigger: &IssueTrigger, occurrence: &Occurrence, key: String, now: u64) -> Issue {
    Issue {
        id: new_id("iss"),
        kind: occurrence.kind,
        status: IssueStatus::Opened,
        issue_trigger_id: trigger.id.clone(),
        aggregation_key: key,
        connection_id: occurrence.connection_id.to_string(),
        event_id: occurrence.event_id.to_string(),
        attempt_id: occurrence.attempt_id.map(str::to_string),
        detail: occurrence.detail.clone(),
        count: 1,
        opened_at: now,
        last_seen_at: now,
        dismissed_at: None,
    }
}
