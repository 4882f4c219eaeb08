//! Outbound webhooks: a product's own events sent to its customers. The API
//! (`/v1/...`, `/api/webhook-deliveries`) stores applications, event types,
//! endpoints and jobs; this module turns them into what the delivery lanes
//! already know: an endpoint is served as a destination, a job fans out into
//! one event per subscribed endpoint, and those events are queued, attempted,
//! retried and recorded like any other.

mod endpoints;
mod jobs;
pub mod validate;

pub use endpoints::{destination_of, served_endpoints};
pub use jobs::{
    cancel_delivery, cancel_job, discard_pending, end_past_window, fan_out, fan_out_journaled,
    new_deliveries, resume_fan_outs, retry_delivery, retry_job, JobError, RetriedJob, CANCELLED,
};
