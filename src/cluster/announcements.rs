//! Changes every node must see: the database announces them on the channel
//! `hookgate` (triggers on the keyspace, migrations/0002_cluster.sql, 0005
//! and 0006: the signing secret, a bulk retry started), and
//! each node LISTENs on one connection of its own. Announcements coalesce:
//! a burst of them costs one refresh. After the connection broke (and every
//! `FULL_REFRESH`), everything is refreshed: announcements may have been missed.

use super::Node;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};

/// The safety net: everything is refreshed this often whatever was announced.
const FULL_REFRESH: Duration = Duration::from_secs(30);

/// Lanes are rung for newly queued events at most this often: a ring makes
/// a lane waiting on its rate limit scan again, and a burst of events
/// queued elsewhere (an unpause) would keep it scanning instead of sending.
const QUEUE_RINGS_EVERY: Duration = Duration::from_millis(100);

/// How long a node waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What is to be refreshed, each a coalescing signal.
#[derive(Default)]
struct Pending {
    queue: Notify,
    paused: Notify,
    objects: Notify,
    signing_secret: Notify,
    bulk_retries: Notify,
}

impl Pending {
    fn announced(&self, what: &str) {
        match what {
            "queue" => self.queue.notify_one(),
            "paused" => self.paused.notify_one(),
            "signing_secret" => self.signing_secret.notify_one(),
            "bulk_retries" => self.bulk_retries.notify_one(),
            _ => self.objects.notify_one(),
        }
    }

    fn everything(&self) {
        for what in [
            "queue",
            "paused",
            "objects",
            "signing_secret",
            "bulk_retries",
        ] {
            self.announced(what);
        }
    }
}

pub(super) async fn listen(
    config: tokio_postgres::Config,
    node: Arc<dyn Node>,
    mut stop: watch::Receiver<bool>,
) {
    let pending = Arc::new(Pending::default());
    // Dropped (aborted) with this task, however it ends.
    let mut refreshers = tokio::task::JoinSet::new();
    for what in [
        Refresh::Queue,
        Refresh::Paused,
        Refresh::Objects,
        Refresh::SigningSecret,
        Refresh::BulkRetries,
    ] {
        refreshers.spawn(refresh(pending.clone(), node.clone(), what));
    }
    while !*stop.borrow() {
        if let Err(error) = listen_once(&config, &pending, &mut stop).await {
            tracing::warn!(%error, "not listening for the cluster's changes; connecting again");
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_AFTER) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Listens on one connection until it breaks or the node stops.
async fn listen_once(
    config: &tokio_postgres::Config,
    pending: &Pending,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection is driven here; its notifications come out on a channel.
    let (announce, mut announced) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message {
                let _ = announce.send(notification.payload().to_string());
            }
        }
    });
    let listening = client.batch_execute("LISTEN hookgate").await;
    if listening.is_ok() {
        pending.everything();
        let mut full = tokio::time::interval(FULL_REFRESH);
        loop {
            tokio::select! {
                what = announced.recv() => match what {
                    Some(what) => pending.announced(&what),
                    None => break,
                },
                _ = full.tick() => pending.everything(),
                _ = stop.changed() => break,
            }
        }
    }
    driver.abort();
    listening
}

#[derive(Clone, Copy)]
enum Refresh {
    Queue,
    Paused,
    Objects,
    SigningSecret,
    BulkRetries,
}

/// Refreshes one kind of thing each time it is announced (once for a burst).
async fn refresh(pending: Arc<Pending>, node: Arc<dyn Node>, what: Refresh) {
    loop {
        let signal = match what {
            Refresh::Queue => &pending.queue,
            Refresh::Paused => &pending.paused,
            Refresh::Objects => &pending.objects,
            Refresh::SigningSecret => &pending.signing_secret,
            Refresh::BulkRetries => &pending.bulk_retries,
        };
        signal.notified().await;
        let node = node.clone();
        // The store is read in blocking calls; a failed refresh is logged there.
        let _ = tokio::task::spawn_blocking(move || match what {
            Refresh::Queue => node.lanes().iter().for_each(|lane| node.wake(lane)),
            Refresh::Paused => node.refresh_paused(),
            Refresh::Objects => node.refresh_objects(),
            Refresh::SigningSecret => node.refresh_signing_secret(),
            Refresh::BulkRetries => node.bulk_retry_started(),
        })
        .await;
        if let Refresh::Queue = what {
            tokio::time::sleep(QUEUE_RINGS_EVERY).await;
        }
    }
}
