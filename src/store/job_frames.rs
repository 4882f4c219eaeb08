//! The frames of new webhook jobs (`JobFrame`: what a sum-up needs of a
//! job's record), kept in memory from the job's fan-out until a sum-up finds
//! all of its deliveries done: reading and parsing the job's record again
//! for each settled delivery was a third of what summing the job up cost.
//!
//! A frame never changes (the record is written once; its state as created
//! is what a job without a state record has), so a kept one is never stale.
//! A kept frame also says that the job's record and list entries are stored
//! (it is kept only once they are, and a removal forgets it under the job's
//! lock, `remove_job`), so a sum-up asks sled neither for the record nor
//! whether the job is indexed. A frame not kept (a retry of a job done, one
//! pushed out by newer ones, after a restart) is read from the record, as
//! before. Nothing is kept on a remote keyspace: another node may remove the
//! job, and this node's memory would not hear of it. What is kept is
//! bounded: the oldest frames go first past `KEPT_FRAMES` (a job retrying
//! for hours is pushed out by newer ones, then read again).

use super::job_state::JobFrame;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many jobs' frames are kept at most (a few hundred bytes each).
const KEPT_FRAMES: usize = 16384;

#[derive(Default)]
pub(super) struct JobFrames(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    by_job: HashMap<String, Arc<JobFrame>>,
    /// Job ids, oldest kept first (some forgotten since: skipped when they
    /// come up for eviction).
    order: VecDeque<String>,
}

impl JobFrames {
    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a job's frame; its record and list entries are stored.
    pub(super) fn keep(&self, id: &str, frame: JobFrame) {
        let mut kept = self.kept();
        kept.by_job.insert(id.to_string(), Arc::new(frame));
        kept.order.push_back(id.to_string());
        while kept.order.len() > KEPT_FRAMES {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            kept.by_job.remove(&oldest);
        }
    }

    /// A job's kept frame.
    pub(super) fn get(&self, id: &str) -> Option<Arc<JobFrame>> {
        self.kept().by_job.get(id).cloned()
    }

    /// Forgets a job's frame (its deliveries are done, or it is gone).
    pub(super) fn forget(&self, id: &str) {
        self.kept().by_job.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> JobFrame {
        serde_json::from_value(serde_json::json!({
            "application_id": "app_a", "event_type": "order.paid", "endpoint_ids": ["end_a"],
            "created_at": 1000, "status": "created", "attempt_count": 0, "updated_at": 1000,
            "expires_at": 2000, "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap()
    }

    #[test]
    fn the_oldest_frames_go_first_past_the_bound() {
        let frames = JobFrames::default();
        for n in 0..=KEPT_FRAMES {
            frames.keep(&format!("job_{n}"), frame());
        }
        assert!(frames.get("job_0").is_none(), "pushed out");
        assert!(frames.get("job_1").is_some());
        frames.forget("job_1");
        assert!(frames.get("job_1").is_none());
        assert_eq!(frames.kept().by_job.len(), KEPT_FRAMES - 1);
    }
}
