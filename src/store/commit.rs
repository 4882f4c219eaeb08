//! Group commit: the ingress answers only after a request is fsync'ed, and many
//! concurrent requests share one fsync.
//!
//! One writer thread takes whatever is pending (never waiting for a batch to
//! fill, so a lone request pays one sync), appends it all to the request
//! journal, syncs once, then wakes every waiter. An indexer thread then
//! records the batch in sled (so that lists see it, whatever the routing
//! backlog) and hands the accepted requests to the router.

use super::{EncodedRequest, Location, Store};
use crate::model::{Payload, Request};
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("the gateway is shutting down")]
    Closed,
    #[error("could not store the request: {0}")]
    Store(String),
}

/// A durable request on its way to the indexer, then the router.
pub struct Committed {
    pub request: Request,
    pub payload: Payload,
    /// Where the journal holds it.
    pub location: Location,
    /// Accepted (route it), or rejected (only record it: journals written
    /// before rejections were kept apart hold some).
    pub route: bool,
    /// Whether the indexer recorded it in sled (the router tries again if not).
    pub indexed: bool,
}

/// Batches waiting for the indexer; the commit thread waits beyond this.
const INDEX_QUEUE: usize = 64;

struct Pending {
    request: Request,
    payload: Payload,
    encoded: EncodedRequest,
    done: oneshot::Sender<Result<(), CommitError>>,
}

enum Message {
    Commit(Box<Pending>),
    Close,
}

/// The sending side of the writer thread; clone it freely.
#[derive(Clone)]
pub struct CommitLog {
    tx: mpsc::Sender<Message>,
}

impl CommitLog {
    /// Starts the writer and indexer threads (the handle joins both). Accepted
    /// requests go to `router` once durable and indexed.
    /// `queue_capacity` bounds the requests waiting for the writer, so that an
    /// overloaded disk slows senders down instead of filling memory.
    pub fn start(
        store: Store,
        max_batch: usize,
        queue_capacity: usize,
        router: SyncSender<Committed>,
    ) -> (CommitLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let (to_indexer, indexer_inbox) = std::sync::mpsc::sync_channel(INDEX_QUEUE);
        let indexer = {
            let store = store.clone();
            std::thread::Builder::new()
                .name("hookgate-index".into())
                .spawn(move || index_loop(store, indexer_inbox, router))
                .expect("spawn index thread")
        };
        let writer = std::thread::Builder::new()
            .name("hookgate-commit".into())
            .spawn(move || {
                write_loop(store, rx, max_batch, to_indexer);
                let _ = indexer.join();
            })
            .expect("spawn commit thread");
        (CommitLog { tx }, writer)
    }

    /// Stores an accepted request durably; the router routes it afterwards.
    pub async fn commit(&self, request: Request, payload: Payload) -> Result<(), CommitError> {
        let (done, result) = oneshot::channel();
        let encoded = EncodedRequest::new(&request, &payload)
            .map_err(|e| CommitError::Store(e.to_string()))?;
        let pending = Pending {
            request,
            payload,
            encoded,
            done,
        };
        self.tx
            .send(Message::Commit(Box::new(pending)))
            .await
            .map_err(|_| CommitError::Closed)?;
        result.await.map_err(|_| CommitError::Closed)?
    }

    /// Asks the writer to finish what is pending and stop.
    pub async fn close(&self) {
        // Already closed is fine.
        let _ = self.tx.send(Message::Close).await;
    }
}

fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    indexer: SyncSender<Vec<Committed>>,
) {
    let mut closing = false;
    while !closing {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch = Vec::new();
        for message in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match message {
                Message::Commit(pending) => batch.push(*pending),
                Message::Close => closing = true,
            }
            if batch.len() >= max_batch {
                break;
            }
        }
        commit_batch(&store, batch, &indexer);
    }
}

fn commit_batch(store: &Store, batch: Vec<Pending>, indexer: &SyncSender<Vec<Committed>>) {
    let encoded: Vec<&EncodedRequest> = batch.iter().map(|pending| &pending.encoded).collect();
    let locations = match store.journal_requests(&encoded) {
        Ok(locations) => locations,
        Err(error) => {
            tracing::error!(%error, requests = batch.len(), "group commit failed");
            let error = CommitError::Store(error.to_string());
            for pending in batch {
                let _ = pending.done.send(Err(error.clone()));
            }
            return;
        }
    };
    let mut journaled = Vec::with_capacity(batch.len());
    for (pending, location) in batch.into_iter().zip(locations) {
        // The ingress may have given up waiting (client gone); the request is
        // stored and routed all the same.
        let _ = pending.done.send(Ok(()));
        journaled.push(Committed {
            request: pending.request,
            payload: pending.payload,
            location,
            route: true,
            indexed: false,
        });
    }
    // A stopped indexer (shutdown) leaves the batch past the router's
    // watermark in the journal: the next start indexes and routes it.
    let _ = indexer.send(journaled);
}

fn index_loop(store: Store, batches: Receiver<Vec<Committed>>, router: SyncSender<Committed>) {
    for mut batch in batches {
        for committed in &mut batch {
            match store.index_request(&committed.request, committed.location) {
                Ok(()) => committed.indexed = true,
                Err(error) => {
                    tracing::error!(%error, request = %committed.request.id, "could not index a request");
                }
            }
        }
        store.note_indexed(batch.len());
        for committed in batch {
            // A stopped router (shutdown): see commit_batch.
            let _ = router.send(committed);
        }
    }
}
