//! Wiring: starts the store, router, delivery lanes and the pingora ingress for a
//! config, and shuts them down in the order that loses nothing.

use crate::api::{ApiKeys, ApiState, Budget, KeyBudgets};
use crate::cluster::{Cluster, Node};
use crate::config::Config;
use crate::delivery::{
    Circuits, DeliveryClient, HookdeckHeaders, Scheduler, Sending, SharedPolicy,
};
use crate::health::Readiness;
use crate::ingress::{InFlight, Ingress, IngressApp};
use crate::issues::IssueTracker;
use crate::metrics::{Metrics, Watched};
use crate::model::Catalog;
use crate::pipeline::transform::WorkerPool;
use crate::pipeline::Router;
use crate::retention::Sweeper;
use crate::signing::workspace_secret::{Home, WorkspaceSecret};
use crate::store::{Backlog, CommitLog, Store};
use crate::telemetry::Telemetry;
use anyhow::Context;
use arc_swap::ArcSwap;
use pingora::server::{Fds, ListenFds};
use pingora::services::listening::Service as ListeningService;
use pingora::services::Service;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// Accepted requests waiting for the router before the commit writer waits too.
const ROUTER_QUEUE: usize = 65_536;

/// A running gateway.
pub struct Gateway {
    pub ingress_addr: SocketAddr,
    /// The management API's address; None when no API key is configured.
    pub api_addr: Option<SocketAddr>,
    api_task: Option<tokio::task::JoinHandle<()>>,
    /// `/metrics`' address; None when `server.metrics_listen` is off.
    pub metrics_addr: Option<SocketAddr>,
    metrics_task: Option<tokio::task::JoinHandle<()>>,
    pub store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    /// Shared with the API: the served config and the lock on catalog changes.
    api_state: Arc<ApiState>,
    commit: CommitLog,
    scheduler: Arc<Scheduler>,
    in_flight: Arc<InFlight>,
    /// `/readyz`'s checks; a graceful stop starts by failing them.
    readiness: Arc<Readiness>,
    /// Where API-created objects may send requests (`[delivery]`, reloaded with it).
    address_policy: SharedPolicy,
    stop_ingress: watch::Sender<bool>,
    ingress_task: tokio::task::JoinHandle<()>,
    threads: Vec<JoinHandle<()>>,
    sweeper: Option<Sweeper>,
    /// Which lanes and periodic work this node runs (all, on the embedded store).
    cluster: Cluster,
    shutdown_timeout: Duration,
    /// `server.shutdown_drain_ms`.
    drain_time: Duration,
    /// Exports what spans are left when the gateway stops.
    telemetry: Telemetry,
}

impl Gateway {
    /// Starts everything; must run inside a multi-threaded tokio runtime.
    /// Work left by an earlier run (unrouted requests, queued events) resumes.
    pub async fn start(config: &Config) -> anyhow::Result<Gateway> {
        let store = open_store(config).await?;
        let catalog = {
            let (config, store) = (config.clone(), store.clone());
            tokio::task::spawn_blocking(move || served_catalog(&config, &store)).await??
        };
        let catalog = Arc::new(ArcSwap::from_pointee(catalog));
        let address_policy = Arc::new(ArcSwap::from_pointee(config.delivery.address_policy()));
        let client = DeliveryClient::new(
            Duration::from_millis(config.limits.delivery_timeout_ms),
            config.limits.max_response_bytes,
            address_policy.clone(),
        );
        let notifications = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.notification_settings()).await??
        };
        let issues = IssueTracker::new(
            store.clone(),
            catalog.clone(),
            client.clone(),
            notifications,
        );
        let signing_secret = open_signing_secret(config, &store).await?;
        let circuits = Arc::new(Circuits::new(
            config.outbound.circuit_failure_threshold,
            config.outbound.circuit_cooldown_ms,
        ));
        let metrics = Metrics::new(
            Watched {
                store: store.clone(),
                catalog: catalog.clone(),
                circuits: circuits.clone(),
                data_dir: &config.server.data_dir,
            },
            // Nothing reads them without the listener.
            config.server.metrics_listen.is_some(),
        );
        store.observe_ended_events(metrics.ended_events());
        let telemetry = Telemetry::start(config.otlp_endpoint.as_ref())?;
        let mut cluster = Cluster::for_backend(&config.store);
        let scheduler = Scheduler::start(
            store.clone(),
            catalog.clone(),
            issues.clone(),
            Sending {
                client,
                circuits,
                hookdeck: HookdeckHeaders::new(signing_secret.clone(), config.server.api_url()),
                metrics: metrics.clone(),
                telemetry: telemetry.clone(),
            },
            cluster.leases().clone(),
            Duration::from_millis(config.delivery.backlog_check_ms.max(10)),
        );
        let router = Router::new(
            store.clone(),
            catalog.clone(),
            scheduler.waker(),
            issues.clone(),
            metrics.clone(),
            telemetry.clone(),
        );
        let resumed = {
            let router = router.clone();
            tokio::task::spawn_blocking(move || router.route_unrouted()).await??
        };
        let fanned_out = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || crate::outbound::resume_fan_outs(&store)).await??
        };
        fanned_out
            .iter()
            .for_each(|endpoint| scheduler.wake(endpoint));
        if resumed > 0 {
            tracing::info!(
                requests = resumed,
                "routed requests left unrouted by the last run"
            );
        }
        let (to_router, router_inbox) = std::sync::mpsc::sync_channel(ROUTER_QUEUE);
        // The API re-routes requests on demand; its state is made once the ingress listens.
        let api_router = router.clone();
        let router_thread = router.start(router_inbox);
        let (commit, commit_thread) = CommitLog::start(
            store.clone(),
            config.limits.commit_batch.max(1),
            config.limits.commit_queue.max(1),
            to_router,
            Backlog::new(config.limits.router_backlog_bytes),
            metrics.journal_batches(),
        );
        issues.ingest_notifications_through(commit.clone());
        let readiness = Arc::new(Readiness::new(
            store.clone(),
            cluster.leases().clone(),
            &config.limits,
            config.server.data_dir.clone(),
        ));
        let ingress = Ingress::new(
            catalog.clone(),
            commit.clone(),
            store.clone(),
            config,
            readiness.clone(),
            metrics.clone(),
            telemetry.clone(),
        );
        let in_flight = ingress.in_flight();
        let ingress = IngressApp::new(
            ingress,
            Duration::from_millis(config.limits.header_read_timeout_ms),
        );
        let (stop_ingress, ingress_stopped) = watch::channel(false);
        let (ingress_addr, ingress_task) =
            start_ingress(ingress, config.server.ingress_listen, ingress_stopped)?;
        tracing::info!(%ingress_addr, "ingress listening");
        let api_state = Arc::new(ApiState {
            store: store.clone(),
            team_id: store.team_id()?,
            ingress_url: config.server.ingress_url(ingress_addr),
            signing_secret,
            catalog: catalog.clone(),
            scheduler: scheduler.clone(),
            router: api_router,
            commit: commit.clone(),
            keys: ApiKeys::new(
                &config.api_keys,
                KeyBudgets {
                    management_per_minute: config.server.api_rate_limit_per_minute,
                    jobs_api_per_second: config.outbound.api_calls_per_second_per_key,
                    failed_logins_per_minute: config.server.api_failed_logins_per_minute,
                },
            ),
            jobs_per_application: Budget::per_second(
                config.outbound.jobs_per_second_per_application,
                "jobs per second of this application",
            ),
            transform_limits: config.limits.transform_limits(),
            leases: cluster.leases().clone(),
            endpoint_updates: std::sync::Mutex::default(),
            config: ArcSwap::from_pointee(config.clone()),
            object_updates: std::sync::Mutex::default(),
            job_creation: std::sync::Mutex::default(),
            background: Default::default(),
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            telemetry: telemetry.clone(),
            stopped: stop_ingress.subscribe(),
            portal_links: Default::default(),
        });
        let api = start_api(config, api_state.clone(), stop_ingress.subscribe()).await?;
        let (api_addr, api_task) = api.unzip();
        let metrics_listener = match config.server.metrics_listen {
            Some(listen) => {
                Some(crate::metrics::serve(metrics, listen, stop_ingress.subscribe()).await?)
            }
            None => None,
        };
        let (metrics_addr, metrics_task) = metrics_listener.unzip();
        let sweeper = {
            // `[retention]` keeps the start's values; the windows it stays
            // clear of are read as they are at each sweep.
            let (state, retention) = (api_state.clone(), config.retention.clone());
            let leases = cluster.leases().clone();
            Sweeper::start(store.clone(), leases, &config.retention, move |now| {
                let (config, catalog) = (state.config.load(), state.catalog.load());
                crate::retention::cutoffs(now, &retention, &config.outbound, &catalog)
            })
        };
        let node = Arc::new(GatewayNode {
            state: api_state.clone(),
            address_policy: address_policy.clone(),
        });
        cluster.join(&config.store, config.lease, node);
        Ok(Gateway {
            ingress_addr,
            api_addr,
            api_task,
            metrics_addr,
            metrics_task,
            store,
            catalog,
            api_state,
            commit,
            scheduler,
            in_flight,
            readiness,
            address_policy,
            stop_ingress,
            ingress_task,
            threads: vec![commit_thread, router_thread],
            sweeper,
            cluster,
            shutdown_timeout: Duration::from_millis(config.server.shutdown_timeout_ms),
            drain_time: Duration::from_millis(config.server.shutdown_drain_ms),
            telemetry,
        })
    }

    /// The catalog being served (replace it to apply a config change).
    pub fn catalog(&self) -> &Arc<ArcSwap<Catalog>> {
        &self.catalog
    }

    /// The worker processes running the served config's transformations.
    pub fn transform_pool(&self) -> Arc<WorkerPool> {
        self.api_state.config.load().transform_pool.clone()
    }

    /// Serves a new version of the config file: its sources, destinations,
    /// connections and rules (with the API-created objects and endpoints, which
    /// must still fit it) replace the old ones at once; lanes pick up new rate
    /// limits and concurrency at once, and queued events stay queued.
    /// `[delivery]`'s address policy applies from then on, to requests not yet
    /// connected. `[server]` and `[limits]` keep the values the gateway started with. On an
    /// error nothing changes.
    pub async fn reload(&self, config: Config) -> anyhow::Result<()> {
        let state = self.api_state.clone();
        let address_policy = self.address_policy.clone();
        tokio::task::spawn_blocking(move || serve(&state, &address_policy, config)).await?
    }

    /// Whether this node leads its cluster (always, on the embedded store).
    pub fn leads(&self) -> bool {
        self.cluster.leases().leads()
    }

    /// Whether this node runs the destination's lane now (always, on the embedded store).
    pub fn runs_lane(&self, destination_id: &str) -> bool {
        self.cluster.leases().runs_lane(destination_id)
    }

    /// Graceful stop: `/readyz` fails, both listeners still serving for
    /// `server.shutdown_drain_ms`; then no new connections, answer the
    /// requests being received, store and route what was acknowledged, stop
    /// bulk retries after their current batch and a retention sweep at its
    /// next record, let attempts in flight finish (each up to the shutdown
    /// timeout), flush. Anything unfinished resumes on the next start.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.readiness.drain();
        // Load balancers see /readyz fail and move traffic away while both
        // listeners still serve. (Not even a timer tick without a drain
        // time: work under way would run on meanwhile.)
        if !self.drain_time.is_zero() {
            tokio::time::sleep(self.drain_time).await;
        }
        let _ = self.stop_ingress.send(true);
        if tokio::time::timeout(self.shutdown_timeout, self.in_flight.idle())
            .await
            .is_err()
        {
            tracing::warn!("requests still being received after the shutdown timeout");
        }
        self.commit.close().await;
        let threads = self.threads;
        tokio::task::spawn_blocking(move || {
            threads.into_iter().for_each(|t| t.join().unwrap_or(()))
        })
        .await?;
        // API calls being answered may still queue events or start bulk
        // retries: they end before the bulk retries are stopped, and those
        // before the lanes drain.
        if let Some(api) = self.api_task {
            if tokio::time::timeout(self.shutdown_timeout, api)
                .await
                .is_err()
            {
                tracing::warn!("API calls still running after the shutdown timeout");
            }
        }
        if let Some(metrics) = self.metrics_task {
            // Its Metrics hold a store handle, which the checkpoint waits for.
            metrics.abort();
            let _ = metrics.await;
        }
        if !self.api_state.background.stop(self.shutdown_timeout).await {
            tracing::warn!("bulk retries still running after the shutdown timeout");
        }
        if let Some(sweeper) = self.sweeper {
            tokio::task::spawn_blocking(move || sweeper.stop()).await?;
        }
        self.scheduler.shutdown(self.shutdown_timeout).await;
        // Only now that no attempt is in flight may another node run the lanes.
        self.cluster.leave().await;
        // Every span is ended once the lanes are: the last batch goes out.
        let telemetry = self.telemetry;
        tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        self.ingress_task.abort();
        // Awaited so that the listening service, and the store handle its app
        // holds, are gone (an abort only asks).
        let _ = self.ingress_task.await;
        // The other handles go with the rest of the gateway.
        drop((self.api_state, self.scheduler, self.readiness));
        let (store, grace) = (self.store, self.shutdown_timeout);
        tokio::task::spawn_blocking(move || close(store, grace)).await??;
        Ok(())
    }
}

/// Serves `config` (see `Gateway::reload`). Blocks on the store.
fn serve(state: &ApiState, address_policy: &SharedPolicy, config: Config) -> anyhow::Result<()> {
    let _one_writer = one_writer(state);
    serve_locked(state, address_policy, config)
}

/// Serves the config served now again (objects changed on another node).
/// It is read under the lock: a reload serving a new one meanwhile (whose
/// own writes may be what was announced) is not undone.
fn serve_again(state: &ApiState, address_policy: &SharedPolicy) -> anyhow::Result<()> {
    let _one_writer = one_writer(state);
    serve_locked(state, address_policy, Config::clone(&state.config.load()))
}

/// The lock API changes to the catalog take, so that neither undoes the other.
fn one_writer(state: &ApiState) -> std::sync::MutexGuard<'_, ()> {
    state
        .object_updates
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn serve_locked(
    state: &ApiState,
    address_policy: &SharedPolicy,
    config: Config,
) -> anyhow::Result<()> {
    let catalog = served_catalog(&config, &state.store)?;
    state.scheduler.replace_catalog(catalog);
    address_policy.store(Arc::new(config.delivery.address_policy()));
    state
        .signing_secret
        .configure(config.signing_secret.clone());
    state.config.store(Arc::new(config));
    anyhow::Ok(())
}

/// The gateway as its cluster sees it.
struct GatewayNode {
    state: Arc<ApiState>,
    address_policy: SharedPolicy,
}

impl Node for GatewayNode {
    fn lanes(&self) -> Vec<String> {
        self.state.catalog.load().target_ids()
    }

    fn wake(&self, destination_id: &str) {
        self.state.scheduler.wake(destination_id);
    }

    fn refresh_paused(&self) {
        if let Err(error) = self.state.store.refresh_paused() {
            tracing::warn!(%error, "paused connections not read again");
        }
    }

    fn refresh_objects(&self) {
        if let Err(error) = self.state.store.reload_job_catalog() {
            tracing::warn!(%error, "outbound objects changed by another node not read");
        }
        if let Err(error) = serve_again(&self.state, &self.address_policy) {
            tracing::warn!(%error, "objects changed through the API not served");
        }
    }

    fn refresh_signing_secret(&self) {
        if let Err(error) = self.state.signing_secret.refresh() {
            tracing::warn!(%error, "the signing secret changed by another node not read");
        }
    }

    fn lead(&self) {
        if let Err(error) = crate::api::resume(&self.state) {
            tracing::error!(%error, "bulk retries left running not resumed");
        }
    }

    fn bulk_retry_started(&self) {
        // Resuming what runs already changes nothing (`Background::spawn_once`).
        self.lead();
    }

    fn id(&self) -> String {
        let id = self.state.store.node_id();
        id.map_or_else(|| crate::ids::new_id("node"), str::to_string)
    }

    fn route_silent_nodes(&self, lease: Duration) {
        if let Err(error) = self.state.router.route_silent_nodes(lease) {
            tracing::warn!(%error, "what silent nodes left unrouted is not routed yet");
        }
    }
}

/// Flushes the store, then checkpoints it once `store` is its last handle
/// (connections that saw the stop end a moment later, each holding one). A
/// lane or a bulk retry that outlived the shutdown still holds one after
/// `grace`: then there is no checkpoint, and the next start replays sled's
/// log (slower, nothing lost).
fn close(store: Store, grace: Duration) -> crate::store::Result<()> {
    store.flush()?;
    match store.checkpoint_when_last(grace) {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                "the store is still in use: no checkpoint, the next start replays its log"
            )
        }
        Err(error) => {
            tracing::warn!(%error, "no store checkpoint: the next start replays sled's log")
        }
    }
    Ok(())
}

/// The file's objects plus those created through the API, which must still
/// validate with the file (a clear error names the ones that do not), plus the
/// outbound endpoints; records when each object appeared or changed (see
/// `Store::stamp_objects`). Blocks on the store.
fn served_catalog(config: &Config, store: &Store) -> anyhow::Result<Catalog> {
    let stored = store.api_objects()?;
    let objects = crate::api::resolve_transformations(&stored, store)
        .map_err(|e| anyhow::anyhow!("objects created through the API: {}", e.message))?;
    let served = config.with_api_objects(&objects).map_err(|errors| {
        anyhow::anyhow!(
            "objects created through the API no longer fit {}: {}",
            config.file.display(),
            errors.0.join("; ")
        )
    })?;
    store.stamp_objects(
        &crate::config::object_fingerprints(config, &stored),
        crate::ids::now_ms(),
    )?;
    let endpoints =
        crate::outbound::served_endpoints(store, config.delivery.default_concurrency.max(1))?;
    Ok(served.catalog().with_endpoints(endpoints))
}

/// The workspace signing secret, generated on first start: kept in
/// `data_dir`, or in the store when every node shares it (a cluster);
/// overridden by `[delivery] signing_secret`.
async fn open_signing_secret(config: &Config, store: &Store) -> anyhow::Result<WorkspaceSecret> {
    let home = Home::of(store, &config.server.data_dir);
    let configured = config.signing_secret.clone();
    let opening = format!("opening the signing secret in {home}");
    tokio::task::spawn_blocking(move || {
        WorkspaceSecret::open(home, configured, crate::ids::now_ms()).context(opening)
    })
    .await?
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let dir = config.server.data_dir.clone();
    let limits = config.limits.clone();
    let secrets_key = config.secrets_key.clone();
    let backend = config.store.clone();
    tokio::task::spawn_blocking(move || {
        let (cache, segments) = (limits.store_cache_bytes, limits.journal_segment_bytes);
        let store = Store::open_backed(&dir, cache, segments, secrets_key.as_ref(), &backend)
            .with_context(|| format!("opening the store in {}", dir.display()))?;
        store
            .watch_disk(&dir, limits.store_disk_reserve_bytes)
            .with_context(|| format!("reserving disk space in {}", dir.display()))?;
        anyhow::Ok(store)
    })
    .await?
}

/// Serves the management API until the gateway stops, when keys are configured.
async fn start_api(
    config: &Config,
    state: Arc<ApiState>,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>> {
    if config.api_keys.is_empty() {
        tracing::warn!("no server.api_keys: the management API is off");
        return Ok(None);
    }
    let listen = config.server.api_listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the management API to {listen}"))?;
    let addr = listener.local_addr()?;
    // Bulk retries left running resume on the leader only: a node alone
    // leads from the start, a cluster's node once it acquires the leader's
    // lease (`Node::lead`).
    let resumed = state.clone();
    tokio::task::spawn_blocking(move || crate::api::resume(&resumed))
        .await?
        .map_err(anyhow::Error::msg)?;
    // The console shares the API's listener and keys (sign-in), not its
    // key check: it has sessions of its own.
    let console = crate::console::routes(state.clone(), stopped.clone());
    let portal = crate::console::portal::routes(state.clone());
    let app = crate::api::router(state.clone())
        .nest_service("/console", console)
        .nest_service("/portal", portal);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        // Sending a job skips the router (`api::serve`).
        let connections = crate::api::serve::Connections::new(app, state);
        if let Err(error) = axum::serve(listener, connections)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "management API stopped");
        }
    });
    tracing::info!(%addr, "management API listening");
    Ok(Some((addr, task)))
}

/// Binds the ingress socket ourselves (so port 0 works and the real address is
/// known) and hands it to pingora through its fd table.
fn start_ingress(
    ingress: IngressApp,
    listen: SocketAddr,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("binding the ingress to {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let mut fds = Fds::new();
    fds.add(addr.to_string(), listener.into_raw_fd());
    let fds: ListenFds = Arc::new(tokio::sync::Mutex::new(fds));
    let mut service = ListeningService::new("hookgate ingress".to_string(), ingress);
    service.add_tcp(&addr.to_string());
    let task = tokio::spawn(async move {
        service.start_service(Some(fds), stopped, 1).await;
    });
    Ok((addr, task))
}
