//! Opening issues: each failed delivery, transformation run that logs or fails,
//! and late backlog is an occurrence; the enabled triggers that watch its
//! object group occurrences by an aggregation key into one issue, and announce
//! openings (the trigger's webhook channel, and the workspace's webhook
//! notifications: a request into a source, delivered by its connections).
//! Those notifications also announce settled attempts, when asked to
//! (`event.successful`, `deprecated.attempt-failed`).

use crate::delivery::{DeliveryClient, Outgoing};
use crate::ids::{new_id, now_ms};
use crate::model::{
    Attempt, AttemptStatus, Catalog, DeliveryStrategy, Event, EventStatus, Execution, Issue,
    IssueStatus, IssueTrigger, IssueType, LogLevel, NotificationSettings, Origin, Payload, Request,
    TriggerConfigs,
};
use crate::store::{CommitLog, Result, Store};
use arc_swap::ArcSwap;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};
use url::Url;

/// One thing that went wrong, before triggers decide what it means.
struct Occurrence<'a> {
    /// The object triggers scope on: a connection (delivery), a transformation,
    /// a destination (backpressure).
    scoped_id: &'a str,
    scoped_name: String,
    /// The connection (or, for backpressure, destination) it happened on.
    connection_id: &'a str,
    event_id: &'a str,
    attempt_id: Option<&'a str>,
    detail: Option<String>,
    problem: Problem,
}

enum Problem {
    Delivery {
        response_status: Option<u16>,
        error_code: Option<String>,
        /// Is this the event's last attempt?
        is_final: bool,
    },
    Transformation {
        transformation_id: String,
        level: LogLevel,
        execution_id: String,
    },
    Backpressure {
        /// How late the oldest queued event is.
        late_ms: u64,
    },
}

impl Problem {
    fn kind(&self) -> IssueType {
        match self {
            Problem::Delivery { .. } => IssueType::Delivery,
            Problem::Transformation { .. } => IssueType::Transformation,
            Problem::Backpressure { .. } => IssueType::Backpressure,
        }
    }

    /// What distinguishes one problem from another on the same object.
    fn signature(&self) -> String {
        match self {
            Problem::Delivery {
                response_status: Some(status),
                ..
            } => format!("status {status}"),
            Problem::Delivery {
                error_code: Some(code),
                ..
            } => code.clone(),
            Problem::Delivery { .. } => "failure".into(),
            Problem::Transformation { level, .. } => format!("{level:?}").to_lowercase(),
            Problem::Backpressure { .. } => "backlog".into(),
        }
    }

    /// Does a trigger's configs make this an issue?
    fn meets(&self, configs: &TriggerConfigs) -> bool {
        match (self, configs) {
            (Problem::Delivery { is_final, .. }, TriggerConfigs::Delivery(c)) => {
                c.strategy == DeliveryStrategy::FirstAttempt || *is_final
            }
            (Problem::Transformation { level, .. }, TriggerConfigs::Transformation(c)) => {
                *level >= c.log_level
            }
            (Problem::Backpressure { late_ms }, TriggerConfigs::Backpressure(c)) => {
                *late_ms >= c.delay
            }
            _ => false,
        }
    }
}

/// Shared by the delivery lanes, the router and the API; cheap to clone.
#[derive(Clone)]
pub struct IssueTracker {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    /// Webhook channels are posted through the delivery client: no redirects,
    /// and the address policy (triggers are made through the API).
    client: DeliveryClient,
    /// Where workspace notifications are ingested (set once the commit log runs).
    ingest: Arc<OnceLock<CommitLog>>,
    runtime: tokio::runtime::Handle,
    /// One occurrence at a time, so two failures never open two issues for one key.
    serial: Arc<Mutex<()>>,
    /// The workspace's notification settings as last saved: every settled
    /// attempt looks at them, most often on a runtime thread, where the
    /// store is not read.
    notifications: Arc<ArcSwap<NotificationSettings>>,
}

impl IssueTracker {
    /// Must be created inside the runtime that will post notifications.
    /// `notifications`: the settings the store holds.
    pub fn new(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        client: DeliveryClient,
        notifications: NotificationSettings,
    ) -> Self {
        IssueTracker {
            store,
            catalog,
            client,
            ingest: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
            serial: Arc::default(),
            notifications: Arc::new(ArcSwap::from_pointee(notifications)),
        }
    }

    /// Saves the workspace's notification settings and applies them.
    pub fn set_notifications(&self, settings: NotificationSettings) -> Result<()> {
        self.store.save_notification_settings(&settings)?;
        self.notifications.store(Arc::new(settings));
        Ok(())
    }

    /// A settled attempt of a connection's event, announced as
    /// `event.successful` when it delivered the event and as
    /// `deprecated.attempt-failed` when it failed, if the workspace asked
    /// for that topic. Cheap unless asked: it runs where attempts settle.
    pub fn attempt_settled(&self, event: &Event, attempt: &Attempt) {
        let topic = match attempt.status {
            AttemptStatus::Successful => "event.successful",
            AttemptStatus::Failed => "deprecated.attempt-failed",
        };
        let settings = self.notifications.load();
        // The notification source's own events are not announced: each
        // announcement is delivered, and would be announced again, forever.
        // A webhook job's deliveries are no connection's events.
        if !settings.announces(topic)
            || settings.source_id.as_deref() == Some(event.source_id.as_str())
            || event.window.is_some()
        {
            return;
        }
        let (tracker, event, attempt) = (self.clone(), event.clone(), attempt.clone());
        self.runtime.spawn_blocking(move || {
            let team_id = tracker.store.team_id().unwrap_or_default();
            let body = json!({
                "event": crate::api::event_object(&team_id, &event, None),
                "attempt": crate::api::attempt_object(&team_id, &attempt),
            });
            tracker.announce(topic, body);
        });
    }

    /// Workspace notifications become requests committed through `commit`,
    /// routed like any other.
    pub fn ingest_notifications_through(&self, commit: CommitLog) {
        let _ = self.ingest.set(commit);
    }

    /// A failed attempt (blocking: call off the reactor).
    pub fn delivery_failed(&self, event: &Event, attempt: &Attempt) {
        let problem = Problem::Delivery {
            response_status: attempt.response_status,
            error_code: attempt.error_code.clone(),
            is_final: event.status == EventStatus::Failed,
        };
        let connection = self
            .catalog
            .load()
            .connection(&event.connection_id)
            .cloned();
        self.record(Occurrence {
            scoped_id: &event.connection_id,
            scoped_name: connection.map(|c| c.name.clone()).unwrap_or_default(),
            connection_id: &event.connection_id,
            event_id: &event.id,
            attempt_id: Some(&attempt.id),
            detail: Some(format!(
                "{} from {}",
                problem.signature(),
                attempt.requested_url
            )),
            problem,
        });
    }

    /// A transformation run on an event (blocking): an occurrence at the highest
    /// level it logged at, or `fatal` if it failed.
    pub fn transformation_ran(&self, execution: &Execution) {
        let logged = execution
            .logs
            .iter()
            .max_by_key(|log| LogLevel::of_console(&log.level));
        let level = match (&execution.error, logged) {
            (Some(_), _) => LogLevel::Fatal,
            (None, Some(log)) => LogLevel::of_console(&log.level),
            (None, None) => return,
        };
        let detail = execution
            .error
            .clone()
            .or_else(|| logged.map(|l| l.message.clone()));
        self.record(Occurrence {
            scoped_id: &execution.transformation_id,
            scoped_name: execution.transformation_name.clone(),
            connection_id: &execution.connection_id,
            event_id: &execution.event_id,
            attempt_id: None,
            detail,
            problem: Problem::Transformation {
                transformation_id: execution.transformation_id.clone(),
                level,
                execution_id: execution.id.clone(),
            },
        });
    }

    /// A destination whose oldest queued event is `late_ms` late (blocking).
    pub fn backpressure(&self, destination_id: &str, oldest_event_id: &str, late_ms: u64) {
        let destination = self.catalog.load().destination(destination_id).cloned();
        self.record(Occurrence {
            scoped_id: destination_id,
            scoped_name: destination.map(|d| d.name.clone()).unwrap_or_default(),
            connection_id: destination_id,
            event_id: oldest_event_id,
            attempt_id: None,
            detail: Some(format!("the oldest queued event is {late_ms} ms late")),
            problem: Problem::Backpressure { late_ms },
        });
    }

    /// Changes an issue (a status, a dismissal) under the lock occurrences take,
    /// so that neither undoes the other; a change is stamped and announced as
    /// `issue.updated`. None when there is no such issue.
    pub fn change(&self, id: &str, change: impl FnOnce(&mut Issue)) -> Result<Option<Issue>> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut issue) = self.store.issue(id)? else {
            return Ok(None);
        };
        let before = issue.clone();
        change(&mut issue);
        if issue != before {
            issue.updated_at = Some(now_ms());
            self.store.save_issue(&issue)?;
            self.announce("issue.updated", self.issue_object(&issue));
        }
        Ok(Some(issue))
    }

    /// Deletes a trigger and its issues, between occurrences (none of its
    /// issues is saved after). False when there is no such trigger.
    pub fn delete_trigger(&self, id: &str) -> Result<bool> {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        self.store.delete_issue_trigger(id)
    }

    fn record(&self, occurrence: Occurrence) {
        let _serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = self.open_or_count(&occurrence) {
            tracing::error!(%error, event = occurrence.event_id, "could not record an issue");
        }
    }

    fn open_or_count(&self, occurrence: &Occurrence) -> Result<()> {
        let kind = occurrence.problem.kind();
        for trigger in self.store.issue_triggers()? {
            if trigger.kind != kind
                || !trigger.watches(occurrence.scoped_id, &occurrence.scoped_name)
                || !occurrence.problem.meets(&trigger.configs)
            {
                continue;
            }
            let key = format!(
                "{}|{}|{}",
                trigger.id,
                occurrence.scoped_id,
                occurrence.problem.signature()
            );
            let now = now_ms();
            let Some(mut issue) = self.store.issue_for_key(&key)? else {
                let issue = open(&trigger, occurrence, key, now);
                self.store.save_issue(&issue)?;
                self.notify(&trigger, &issue);
                continue;
            };
            seen_again(&mut issue, occurrence, now);
            // Resolved or dismissed issues open again when they recur, unless ignored.
            let reopens = issue.status != IssueStatus::Ignored
                && (issue.status == IssueStatus::Resolved || issue.dismissed_at.is_some());
            if reopens {
                issue.status = IssueStatus::Opened;
                issue.dismissed_at = None;
                issue.opened_at = now;
            }
            self.store.save_issue(&issue)?;
            if reopens {
                self.notify(&trigger, &issue);
            }
        }
        Ok(())
    }

    /// Announces an opening on the trigger's webhook channel and to the
    /// workspace's notification source, without holding anyone up.
    fn notify(&self, trigger: &IssueTrigger, issue: &Issue) {
        self.announce("issue.opened", self.issue_object(issue));
        let Some(url) = trigger.webhook_url().and_then(|u| Url::parse(u).ok()) else {
            return;
        };
        let body = json!({
            "topic": "issue.opened",
            "issue": self.issue_object(issue),
            "issue_trigger": { "id": trigger.id, "name": trigger.name },
        });
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

    /// The issue, as `GET /issues/{id}` shows it.
    fn issue_object(&self, issue: &Issue) -> Value {
        let team_id = self.store.team_id().unwrap_or_default();
        crate::api::issue_object(&self.store, &team_id, issue, true)
    }

    /// A request into the workspace's notification source, when notifications
    /// are enabled for `topic`: `body` is its body, the topic its
    /// `x-notification-topic` header.
    fn announce(&self, topic: &str, body: Value) {
        let settings = self.notifications.load();
        if !settings.announces(topic) {
            return;
        }
        let catalog = self.catalog.load();
        let (Some(source), Some(commit)) = (
            settings
                .source_id
                .as_deref()
                .and_then(|id| catalog.source(id)),
            self.ingest.get().cloned(),
        ) else {
            return tracing::warn!(source = ?settings.source_id, "no source for notifications");
        };
        let payload = Payload {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-notification-topic".into(), topic.into()),
            ],
            body: body.to_string().into_bytes(),
        };
        let request = Request::received(Some(&source.id), &source.name, &payload);
        self.runtime.spawn(async move {
            if let Err(error) = commit.commit(request, payload).await {
                tracing::warn!(%error, "could not ingest a notification");
            }
        });
    }
}

/// Another occurrence of an existing issue.
fn seen_again(issue: &mut Issue, occurrence: &Occurrence, now: u64) {
    issue.count += 1;
    issue.last_seen_at = now;
    issue.updated_at = Some(now);
    issue.event_id = occurrence.event_id.to_string();
    issue.attempt_id = occurrence.attempt_id.map(str::to_string);
    if let Problem::Transformation { execution_id, .. } = &occurrence.problem {
        issue.execution_id = Some(execution_id.clone());
    }
}

fn open(trigger: &IssueTrigger, occurrence: &Occurrence, key: String, now: u64) -> Issue {
    let mut issue = Issue {
        id: new_id("iss"),
        kind: occurrence.problem.kind(),
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
        first_seen_at: Some(now),
        updated_at: Some(now),
        response_status: None,
        error_code: None,
        transformation_id: None,
        log_level: None,
        execution_id: None,
    };
    match &occurrence.problem {
        Problem::Delivery {
            response_status,
            error_code,
            ..
        } => {
            issue.response_status = *response_status;
            issue.error_code = error_code.clone();
        }
        Problem::Transformation {
            transformation_id,
            level,
            execution_id,
        } => {
            issue.transformation_id = Some(transformation_id.clone());
            issue.log_level = Some(*level);
            issue.execution_id = Some(execution_id.clone());
        }
        Problem::Backpressure { .. } => {}
    }
    issue
}
