//! What the store keeps in memory for new webhook jobs (their messages,
//! `job_messages`; their frames, `job_frames`), by job id and bounded: the
//! oldest kept go first past a number of jobs or a weight (bytes).

use std::collections::{HashMap, VecDeque};

pub(super) struct KeptByJob<V> {
    by_job: HashMap<String, V>,
    /// Job ids, oldest kept first (some forgotten since: skipped when they
    /// come up for eviction).
    order: VecDeque<String>,
    /// The weight of what `by_job` holds.
    weight: usize,
    max_jobs: usize,
    max_weight: usize,
    weigh: fn(&V) -> usize,
}

impl<V> KeptByJob<V> {
    /// At most `max_jobs` values of at most `max_weight` together, each as
    /// heavy as `weigh` says.
    pub(super) fn new(max_jobs: usize, max_weight: usize, weigh: fn(&V) -> usize) -> Self {
        KeptByJob {
            by_job: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            max_jobs,
            max_weight,
            weigh,
        }
    }

    /// Keeps `value` for job `id`, pushing the oldest out past the bounds.
    pub(super) fn keep(&mut self, id: &str, value: V) {
        self.weight += (self.weigh)(&value);
        if let Some(replaced) = self.by_job.insert(id.to_string(), value) {
            self.weight -= (self.weigh)(&replaced);
        }
        self.order.push_back(id.to_string());
        while self.weight > self.max_weight || self.order.len() > self.max_jobs {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.forget(&oldest);
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<&V> {
        self.by_job.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        self.by_job.get_mut(id)
    }

    /// Forgets job `id`'s value, and gives it back.
    pub(super) fn forget(&mut self, id: &str) -> Option<V> {
        let gone = self.by_job.remove(id)?;
        self.weight -= (self.weigh)(&gone);
        Some(gone)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_job.len()
    }

    #[cfg(test)]
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.by_job.values()
    }

    #[cfg(test)]
    pub(super) fn weight(&self) -> usize {
        self.weight
    }
}
