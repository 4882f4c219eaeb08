//! Watches every destination's backlog and reports how late its oldest queued
//! event is to the issue tracker, so that a backpressure issue opens when a
//! destination falls too far behind.

use super::Shared;
use crate::ids::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub(super) async fn watch(shared: Arc<Shared>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        if !shared.leases.leads() {
            continue; // the cluster's leader checks
        }
        let shared = shared.clone();
        // A failed check is logged inside; the next tick tries again.
        let _ = tokio::task::spawn_blocking(move || check(&shared)).await;
    }
}

fn check(shared: &Shared) {
    let now = now_ms();
    for destination in shared.catalog.load().destinations() {
        match shared.store.oldest_entry(&destination.id) {
            Ok(Some(oldest)) if oldest.due_ms < now => {
                shared
                    .issues
                    .backpressure(&destination.id, &oldest.event_id, now - oldest.due_ms);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, destination = %destination.id, "backlog check failed")
            }
        }
    }
}
