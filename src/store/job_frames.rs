//! The frames of new webhook jobs (`JobFrame`: what a sum-up needs of a
//! job's record), kept in memory from the job's fan-out until a sum-up finds
//! all of its deliveries done: reading and parsing the job's record again
//! for each settled delivery was a third of what summing the job up cost.
//!
//! A frame never changes (the record is written once; its state as created
//! is what a job without a state record has), so a kept one is never stale.
//! With it is kept the state record its job's sum-ups wrote (none at first:
//! a frame is kept only for a new job), so a sum-up reads no state record
//! either; every write of one holds the job's lock and goes through here.
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
use super::kept_by_job::KeptByJob;
use crate::model::JobState;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many jobs' frames are kept at most (a few hundred bytes each).
const KEPT_FRAMES: usize = 16384;

pub(super) struct JobFrames(Mutex<KeptByJob<KeptFrame>>);

/// A job's kept frame, and the state record its sum-ups wrote (None while
/// none has been).
#[derive(Clone)]
pub(super) struct KeptFrame {
    pub frame: Arc<JobFrame>,
    pub state: Option<JobState>,
}

impl Default for JobFrames {
    fn default() -> Self {
        // Bounded by their number alone.
        JobFrames(Mutex::new(KeptByJob::new(KEPT_FRAMES, 0, |_| 0)))
    }
}

impl JobFrames {
    fn kept(&self) -> MutexGuard<'_, KeptByJob<KeptFrame>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a new job's frame; its record and list entries are stored, and
    /// it has no state record yet.
    pub(super) fn keep(&self, id: &str, frame: JobFrame) {
        let frame = Arc::new(frame);
        self.kept().keep(id, KeptFrame { frame, state: None });
    }

    /// A job's kept frame.
    pub(super) fn get(&self, id: &str) -> Option<KeptFrame> {
        self.kept().get(id).cloned()
    }

    /// Notes the state record just written for a job whose frame is kept.
    pub(super) fn wrote_state(&self, id: &str, state: &JobState) {
        if let Some(kept) = self.kept().get_mut(id) {
            kept.state = Some(state.clone());
        }
    }

    /// Forgets a job's frame (its deliveries are done, or it is gone).
    pub(super) fn forget(&self, id: &str) {
        self.kept().forget(id);
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
        assert_eq!(frames.kept().len(), KEPT_FRAMES - 1);
    }
}
