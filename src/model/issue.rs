//! Issues: problems worth a person's attention (deliveries failing, scripts
//! logging errors, destinations falling behind), opened by issue triggers and
//! tracked until resolved. Shapes follow Hookdeck's `2023-07-01` reference.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IssueType {
    Delivery,
    Transformation,
    /// A destination's oldest queued event is later than the trigger's delay.
    Backpressure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueStatus {
    Opened,
    Ignored,
    Acknowledged,
    Resolved,
}

/// When a delivery issue opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStrategy {
    /// On the first failed attempt of an event.
    FirstAttempt,
    /// Only once an event has failed for good (no retries left).
    #[default]
    FinalAttempt,
}

/// A transformation run's level: the highest it logged at, `fatal` when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The level of a `console.<method>` call (`log` is `info`, as in the reference).
    pub fn of_console(method: &str) -> LogLevel {
        match method {
            "debug" => LogLevel::Debug,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// What a trigger watches: a name pattern (`*`, `prod-*`, `*-eu`, `*shop*`),
/// or a list of ids (names are accepted in the list too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Scope {
    Pattern(String),
    Listed(Vec<String>),
}

impl Scope {
    pub fn everything() -> Scope {
        Scope::Pattern("*".into())
    }

    /// Does the scope take the object with this id and name?
    pub fn covers(&self, id: &str, name: &str) -> bool {
        match self {
            Scope::Pattern(pattern) => pattern == id || wildcard_match(pattern, name),
            Scope::Listed(items) => items.iter().any(|item| item == id || item == name),
        }
    }
}

/// The reference's wildcards: `*` all, `x*` starts with, `*x` ends with, `*x*` contains.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (starts, ends) = (pattern.starts_with('*'), pattern.ends_with('*'));
    let inner = pattern.trim_matches('*');
    match (starts, ends) {
        _ if pattern == "*" => true,
        (true, true) => name.contains(inner),
        (false, true) => name.starts_with(inner),
        (true, false) => name.ends_with(inner),
        (false, false) => name == pattern,
    }
}

// The reference requires every configs field; hookgate defaults them, so
// the schemas say `required` (what a client must send to Hookdeck) while
// reading takes less.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfigs {
    #[serde(default)]
    #[schema(required)]
    pub strategy: DeliveryStrategy,
    #[serde(default = "Scope::everything")]
    #[schema(required)]
    pub connections: Scope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformationConfigs {
    #[serde(default = "default_log_level")]
    #[schema(required)]
    pub log_level: LogLevel,
    #[serde(default = "Scope::everything")]
    #[schema(required)]
    pub transformations: Scope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackpressureConfigs {
    /// Milliseconds the oldest queued event may be late before an issue
    /// opens: 60000 to 86400000 when given (a trigger stored by an earlier
    /// version may hold less, so answers are not bound to it).
    #[serde(default = "default_delay")]
    #[schema(required)]
    pub delay: u64,
    #[serde(default = "Scope::everything")]
    #[schema(required)]
    pub destinations: Scope,
}

/// The reference's bounds on a backpressure delay: one minute to one day.
pub const BACKPRESSURE_DELAY_MS: std::ops::RangeInclusive<u64> = 60_000..=86_400_000;

fn default_delay() -> u64 {
    *BACKPRESSURE_DELAY_MS.start()
}

fn default_log_level() -> LogLevel {
    LogLevel::Error
}

/// A trigger's `configs`, one shape per issue type.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TriggerConfigs {
    Delivery(DeliveryConfigs),
    Transformation(TransformationConfigs),
    Backpressure(BackpressureConfigs),
}

impl TriggerConfigs {
    /// The `configs` of a trigger of type `kind` (null: every default).
    pub fn parse(kind: IssueType, configs: Value) -> serde_json::Result<TriggerConfigs> {
        let configs = match configs {
            Value::Null => Value::Object(Default::default()),
            given => given,
        };
        Ok(match kind {
            IssueType::Delivery => TriggerConfigs::Delivery(serde_json::from_value(configs)?),
            IssueType::Transformation => {
                TriggerConfigs::Transformation(serde_json::from_value(configs)?)
            }
            IssueType::Backpressure => {
                TriggerConfigs::Backpressure(serde_json::from_value(configs)?)
            }
        })
    }

    pub fn kind(&self) -> IssueType {
        match self {
            TriggerConfigs::Delivery(_) => IssueType::Delivery,
            TriggerConfigs::Transformation(_) => IssueType::Transformation,
            TriggerConfigs::Backpressure(_) => IssueType::Backpressure,
        }
    }

    fn scope(&self) -> &Scope {
        match self {
            TriggerConfigs::Delivery(c) => &c.connections,
            TriggerConfigs::Transformation(c) => &c.transformations,
            TriggerConfigs::Backpressure(c) => &c.destinations,
        }
    }
}

/// A channel that takes no settings (`"email": {}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// A channel of a workspace integration, by name (Slack, Microsoft Teams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedChannel {
    pub channel_name: String,
}

/// hookgate's own channel: the opening is POSTed to this URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    pub url: String,
}

/// Where a trigger's openings are announced. hookgate reaches only `webhook`;
/// Hookdeck's workspace integrations (Slack, Opsgenie, email, Microsoft
/// Teams) are kept and shown as given, so that an export loads, and named
/// as not reached (`unreachable`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<NamedChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<NoSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<NoSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft_teams: Option<NamedChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
}

impl Channels {
    /// The channels given that hookgate cannot notify: each needs one of
    /// Hookdeck's workspace integrations.
    pub fn unreachable(&self) -> Vec<&'static str> {
        [
            ("slack", self.slack.is_some()),
            ("opsgenie", self.opsgenie.is_some()),
            ("email", self.email.is_some()),
            ("microsoft_teams", self.microsoft_teams.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredTrigger")]
pub struct IssueTrigger {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: IssueType,
    pub configs: TriggerConfigs,
    pub channels: Option<Channels>,
    pub disabled_at: Option<u64>,
    pub updated_at: u64,
    pub created_at: u64,
}

impl IssueTrigger {
    /// Is the trigger enabled and watching the object (connection, transformation
    /// or destination, by its type) with this id and name?
    pub fn watches(&self, id: &str, name: &str) -> bool {
        self.disabled_at.is_none() && self.configs.scope().covers(id, name)
    }

    /// The URL of its webhook channel, if it has one.
    pub fn webhook_url(&self) -> Option<&str> {
        let channels = self.channels.as_ref()?;
        channels.webhook.as_ref().map(|w| w.url.as_str())
    }
}

/// A stored trigger, in today's form or in the form hookgate stored before it
/// spoke the reference's shapes (`connections`, `strategy`, `destinations`,
/// `delay_ms` and `webhook_url` at the top, a required `name`).
#[derive(Deserialize)]
struct StoredTrigger {
    id: String,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: IssueType,
    configs: Option<Value>,
    channels: Option<Channels>,
    disabled_at: Option<u64>,
    updated_at: Option<u64>,
    created_at: u64,
    connections: Option<Vec<String>>,
    strategy: Option<DeliveryStrategy>,
    destinations: Option<Vec<String>>,
    delay_ms: Option<u64>,
    webhook_url: Option<String>,
}

impl TryFrom<StoredTrigger> for IssueTrigger {
    type Error = serde_json::Error;

    fn try_from(stored: StoredTrigger) -> serde_json::Result<IssueTrigger> {
        let configs = match stored.configs {
            Some(configs) => TriggerConfigs::parse(stored.kind, configs)?,
            None => legacy_configs(&stored),
        };
        let channels = stored.channels.or_else(|| {
            let url = stored.webhook_url?;
            Some(Channels {
                webhook: Some(WebhookChannel { url }),
                ..Channels::default()
            })
        });
        Ok(IssueTrigger {
            id: stored.id,
            name: stored.name,
            kind: stored.kind,
            configs,
            channels,
            disabled_at: stored.disabled_at,
            updated_at: stored.updated_at.unwrap_or(stored.created_at),
            created_at: stored.created_at,
        })
    }
}

/// The configs an earlier trigger meant. Its transformation triggers opened on
/// failures only (`fatal`), of any transformation.
fn legacy_configs(stored: &StoredTrigger) -> TriggerConfigs {
    let scope = |ids: &Option<Vec<String>>| match ids.as_deref() {
        None => Scope::everything(),
        Some([all]) if all == "*" => Scope::everything(),
        Some(ids) => Scope::Listed(ids.to_vec()),
    };
    match stored.kind {
        IssueType::Delivery => TriggerConfigs::Delivery(DeliveryConfigs {
            strategy: stored.strategy.unwrap_or_default(),
            connections: scope(&stored.connections),
        }),
        IssueType::Transformation => TriggerConfigs::Transformation(TransformationConfigs {
            log_level: LogLevel::Fatal,
            transformations: Scope::everything(),
        }),
        IssueType::Backpressure => TriggerConfigs::Backpressure(BackpressureConfigs {
            delay: stored.delay_ms.unwrap_or_else(default_delay),
            destinations: scope(&stored.destinations),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: IssueType,
    pub status: IssueStatus,
    pub issue_trigger_id: String,
    /// What groups occurrences into this issue (trigger, object, problem).
    pub aggregation_key: String,
    /// The connection (delivery, transformation) or destination (backpressure).
    pub connection_id: String,
    /// The latest event (and attempt) that showed it.
    pub event_id: String,
    pub attempt_id: Option<String>,
    pub detail: Option<String>,
    /// Occurrences so far.
    pub count: u64,
    /// When it last opened (an issue resolved or dismissed opens again when it recurs).
    pub opened_at: u64,
    pub last_seen_at: u64,
    pub dismissed_at: Option<u64>,
    // Kept since the reference's shapes; issues stored before lack them.
    #[serde(default)]
    pub first_seen_at: Option<u64>,
    #[serde(default)]
    pub updated_at: Option<u64>,
    #[serde(default)]
    pub response_status: Option<u16>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub transformation_id: Option<String>,
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    #[serde(default)]
    pub execution_id: Option<String>,
}

impl Issue {
    /// When it first opened (`opened_at` for issues stored before this was kept).
    pub fn first_seen(&self) -> u64 {
        self.first_seen_at.unwrap_or(self.opened_at)
    }

    pub fn updated(&self) -> u64 {
        self.updated_at.unwrap_or(self.last_seen_at)
    }
}

/// `PUT /notifications/webhooks`: issues and settled attempts announced as
/// requests into a source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotificationSettings {
    /// Whether the topics are announced.
    pub enabled: bool,
    /// The topics announced.
    pub topics: Vec<String>,
    /// The source the announcements are sent into.
    #[schema(required)]
    pub source_id: Option<String>,
}

impl NotificationSettings {
    pub fn announces(&self, topic: &str) -> bool {
        self.enabled && self.topics.iter().any(|t| t == topic)
    }
}

/// The reference's notification topics, each sent (`issues.rs`).
pub const NOTIFICATION_TOPICS: [&str; 4] = [
    "issue.opened",
    "issue.updated",
    "event.successful",
    "deprecated.attempt-failed",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_match_as_the_reference_lists_them() {
        let cases = [
            ("*", "anything", true),
            ("prod-*", "prod-eu", true),
            ("prod-*", "staging", false),
            ("*-eu", "prod-eu", true),
            ("*shop*", "my-shop-1", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, name, expected) in cases {
            let scope = Scope::Pattern(pattern.into());
            assert_eq!(scope.covers("web_x", name), expected, "{pattern} {name}");
        }
        let listed = Scope::Listed(vec!["web_a".into(), "orders".into()]);
        assert!(listed.covers("web_a", "x") && listed.covers("web_b", "orders"));
        assert!(!listed.covers("web_c", "other"));
    }

    #[test]
    fn a_trigger_stored_in_the_earlier_form_loads_with_the_same_meaning() {
        let old = json!({ "id": "itr_1", "name": "lagging", "type": "backpressure",
            "connections": ["*"], "strategy": "final_attempt", "destinations": ["des_a"],
            "delay_ms": 300, "webhook_url": "https://hooks.example.com/x",
            "disabled_at": null, "created_at": 5 });
        let trigger: IssueTrigger = serde_json::from_value(old).unwrap();
        assert_eq!(
            trigger.configs,
            TriggerConfigs::Backpressure(BackpressureConfigs {
                delay: 300,
                destinations: Scope::Listed(vec!["des_a".into()])
            })
        );
        assert_eq!(trigger.webhook_url(), Some("https://hooks.example.com/x"));
        assert_eq!(
            (trigger.name.as_deref(), trigger.updated_at),
            (Some("lagging"), 5)
        );
        let again: IssueTrigger =
            serde_json::from_slice(&serde_json::to_vec(&trigger).unwrap()).unwrap();
        assert_eq!(again, trigger);
    }

    #[test]
    fn configs_are_read_by_the_trigger_type() {
        let configs = json!({ "log_level": "warn", "transformations": ["trs_a"] });
        let parsed = TriggerConfigs::parse(IssueType::Transformation, configs.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), configs);
        assert!(TriggerConfigs::parse(IssueType::Delivery, configs).is_err());
    }
}
