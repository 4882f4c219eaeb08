//! The message a webhook job's deliveries send (`WebhookJob::delivery_payload`),
//! kept in memory from the job's fan-out until each of its deliveries took
//! it for its first attempt: reading and parsing the whole job record again
//! for each attempt was most of what preparing one cost.
//!
//! A job's message never changes (its payload, headers, ids and creation time
//! are fixed when it is created), so a kept one is never stale. One not kept
//! (a retry, a delivery taken before its fan-out was done, a message pushed
//! out by newer ones, another node's job, after a restart) is made from the
//! job's record, as before. What is kept is bounded: the oldest messages go
//! first past `KEPT_JOBS` jobs or `KEPT_BYTES` bytes of bodies (deliveries
//! that are never attempted, to a paused or deleted endpoint, never take
//! theirs).

use super::kept_by_job::KeptByJob;
use crate::model::{Payload, WebhookJob};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many jobs' messages are kept at most: a lane takes a new job's
/// message within moments, unless its endpoint is far behind (then reading
/// the job again is the least of its costs).
const KEPT_JOBS: usize = 4096;
/// How many bytes of bodies they hold at most.
const KEPT_BYTES: usize = 16 << 20;

pub(super) struct JobMessages(Mutex<KeptByJob<KeptMessage>>);

impl Default for JobMessages {
    fn default() -> Self {
        let weigh = |kept: &KeptMessage| kept.message.body.len();
        JobMessages(Mutex::new(KeptByJob::new(KEPT_JOBS, KEPT_BYTES, weigh)))
    }
}

struct KeptMessage {
    message: Payload,
    /// Deliveries yet to take it.
    takers: usize,
}

impl JobMessages {
    fn kept(&self) -> MutexGuard<'_, KeptByJob<KeptMessage>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a job's message for its deliveries (one per endpoint).
    pub(super) fn keep(&self, job: &WebhookJob) {
        let takers = job.endpoint_ids.len();
        if takers == 0 {
            return;
        }
        let message = job.delivery_payload();
        self.kept().keep(&job.id, KeptMessage { message, takers });
    }

    /// A delivery's share of its job's kept message (None when not kept).
    pub(super) fn take(&self, job_id: &str) -> Option<Payload> {
        let mut kept = self.kept();
        let entry = kept.get_mut(job_id)?;
        entry.takers -= 1;
        if entry.takers > 0 {
            return Some(entry.message.clone());
        }
        kept.forget(job_id).map(|gone| gone.message)
    }

    /// Forgets a job's message (the job is gone).
    pub(super) fn forget(&self, job_id: &str) {
        self.kept().forget(job_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobStatus;

    fn job(id: &str, endpoints: &[&str]) -> WebhookJob {
        serde_json::from_value(serde_json::json!({
            "id": id, "application_id": "app_a", "event_type": "order.paid",
            "event_id": id, "payload": {"total": 10.00}, "headers": {"x-shop": "a"},
            "metadata": {}, "endpoint_ids": endpoints, "status": JobStatus::Created,
            "attempt_count": 0, "max_retries": 0, "created_at": 1000, "updated_at": 1000,
            "expires_at": 2000, "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap()
    }

    #[test]
    fn each_delivery_takes_the_message_once_then_it_is_gone() {
        let messages = JobMessages::default();
        let job = job("job_1", &["end_a", "end_b"]);
        messages.keep(&job);
        for _ in 0..2 {
            let taken = messages.take("job_1").expect("kept");
            assert_eq!(taken, job.delivery_payload());
        }
        assert_eq!(messages.take("job_1"), None);
        assert_eq!(messages.kept().weight(), 0);
    }

    #[test]
    fn the_oldest_messages_go_first_past_the_bound() {
        let messages = JobMessages::default();
        for n in 0..=KEPT_JOBS {
            messages.keep(&job(&format!("job_{n}"), &["end_a"]));
        }
        assert_eq!(messages.take("job_0"), None, "pushed out");
        assert!(messages.take("job_1").is_some());
        messages.forget(&format!("job_{KEPT_JOBS}"));
        let kept = messages.kept();
        assert_eq!(kept.len(), KEPT_JOBS - 2);
        let bytes: usize = kept.values().map(|k| k.message.body.len()).sum();
        assert_eq!(kept.weight(), bytes);
    }
}
