//! Durable writes for many writers at once: each caller waits for a sled flush
//! that began after its own writes, and one flush serves every writer that
//! came before it (group commit). Without it, concurrent callers each sealed
//! sled's IO buffer early and paid a write and an fsync of their own.

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
pub(super) struct GroupFlush {
    state: Mutex<FlushState>,
    flushed: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// Tickets handed out: one per caller, after its writes.
    issued: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// A flush runs now (its caller will wake the others).
    running: bool,
}

impl GroupFlush {
    /// Returns once everything this thread wrote before the call is on disk:
    /// after a `flush` (sled's) that began after the call, this caller's own
    /// or another's.
    pub(super) fn flush<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.issued += 1;
        let ticket = state.issued;
        while state.durable < ticket {
            if state.running {
                state = (self.flushed.wait(state)).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // This flush covers every ticket issued so far.
            let covers = state.issued;
            state.running = true;
            drop(state);
            let flushed = flush();
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.running = false;
            if flushed.is_ok() {
                state.durable = state.durable.max(covers);
            }
            self.flushed.notify_all();
            // On a failure, every waiter tries a flush of its own and fails too.
            flushed?;
            return Ok(());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn each_caller_waits_for_a_flush_begun_after_it_and_callers_share_flushes() {
        let group = GroupFlush::default();
        // Writes made (one per caller) and the writes each flush covered.
        let written = AtomicU64::new(0);
        let flushes = AtomicU64::new(0);
        let covered = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .flush(|| {
                                let now_written = written.load(Ordering::SeqCst);
                                flushes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                covered.fetch_max(now_written, Ordering::SeqCst);
                                Ok::<(), ()>(())
                            })
                            .unwrap();
                        // Writes are numbered in order: a flush covering a later one covers mine.
                        assert!(covered.load(Ordering::SeqCst) >= mine);
                    }
                });
            }
        });
        let flushes = flushes.into_inner();
        assert!(flushes < 16 * 20, "{flushes} flushes for 320 callers");
    }
}
