//! The objects hookgate stores and serves: what came in (requests), what goes out
//! (events and their attempts), and the configured catalog that connects them.

mod admission;
mod bookmark;
mod bulk;
mod catalog;
mod event;
mod issue;
mod outbound;
mod request;
mod transformation;

pub use admission::{HeadAdmitted, Refusal};
pub use bookmark::Bookmark;
pub use bulk::{BulkKind, BulkQuery, BulkRetry, BulkStatus};
pub use catalog::{
    Catalog, Connection, CustomResponse, Destination, Origin, RateLimit, RatePeriod, Source,
};
pub use event::{
    Attempt, AttemptEntry, AttemptStatus, AttemptTrigger, Event, EventStatus, IgnoredEvent, Route,
};
pub use issue::{
    BackpressureConfigs, Channels, DeliveryConfigs, DeliveryStrategy, Issue, IssueStatus,
    IssueTrigger, IssueType, LogLevel, NotificationSettings, Scope, TransformationConfigs,
    TriggerConfigs, WebhookChannel, BACKPRESSURE_DELAY_MS, NOTIFICATION_TOPICS,
};
pub use outbound::{
    delivery_status, Application, DeliveryTally, DeliveryWindow, Endpoint, EndpointStatus,
    EventType, JobMessage, JobPayload, JobState, JobStatus, PortalSettings, PortalTheme,
    WebhookJob, WORKSPACE_ID,
};
pub use request::{Payload, RejectionCause, Request, RequestStatus};
pub use transformation::{Execution, TransformationObject};
