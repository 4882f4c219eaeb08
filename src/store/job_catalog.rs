//! What creating a webhook job checks and sends to, in memory: which
//! applications exist, the schemas of their declared event types, and which
//! endpoints subscribe to what. A job's creation reads it on the API's
//! runtime thread, with no hop to the blocking pool and no sled read (it read
//! the application, the event type and every endpoint from sled before: the
//! largest cost of a job's `201` after its fsync). Every change of those
//! objects updates it together with its sled write, under its lock, so the
//! two never disagree for longer than that write; a store's open loads it.

use super::keyspace::Tree;
use super::{Result, Store};
use crate::model::{Endpoint, EndpointStatus, EventType};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};

/// An endpoint, as far as a new job is concerned.
struct Subscription {
    /// Not disabled: it gets new deliveries.
    serves: bool,
    /// Event type names; empty means every type.
    events: Vec<String>,
}

impl Subscription {
    fn of(endpoint: &Endpoint) -> Subscription {
        Subscription {
            serves: endpoint.status != EndpointStatus::Disabled,
            events: endpoint.subscribed_events.clone(),
        }
    }

    fn takes(&self, event_type: &str) -> bool {
        self.serves && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

#[derive(Default)]
pub(super) struct Catalog {
    applications: HashSet<String>,
    /// `(application id, name)` → the declared type's schema, if it has one.
    schemas: HashMap<(String, String), Option<Arc<Value>>>,
    /// `(application id, endpoint id)` → what it subscribes to; an
    /// application's endpoints are one key range, in the order of their ids.
    endpoints: BTreeMap<(String, String), Subscription>,
}

/// The catalog, shared by the store's handles.
#[derive(Default)]
pub(super) struct JobCatalog {
    catalog: RwLock<Catalog>,
    /// How many changes were made here (counted as each begins, under the
    /// lock; so one read under the read lock has every counted change done).
    changes: AtomicU64,
}

impl JobCatalog {
    /// The catalog of what the store holds.
    pub(super) fn load(
        applications: &Tree,
        event_types: &Tree,
        endpoints: &Tree,
    ) -> Result<JobCatalog> {
        let catalog = Catalog::read(applications, event_types, endpoints)?;
        Ok(JobCatalog {
            catalog: RwLock::new(catalog),
            changes: AtomicU64::new(0),
        })
    }

    /// The catalog to change, held while its sled write is made.
    pub(super) fn change(&self) -> RwLockWriteGuard<'_, Catalog> {
        let catalog = self.write();
        self.changes.fetch_add(1, Ordering::Relaxed);
        catalog
    }

    fn write(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        read(&self.catalog.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Catalog {
    fn read(applications: &Tree, event_types: &Tree, endpoints: &Tree) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        for id in applications.iter().keys() {
            catalog
                .applications
                .insert(String::from_utf8_lossy(&id?).into_owned());
        }
        for event_type in super::values::<EventType>(event_types) {
            catalog.put_event_type(&event_type?);
        }
        for endpoint in super::values::<Endpoint>(endpoints) {
            catalog.put_endpoint(&endpoint?);
        }
        Ok(catalog)
    }

    pub(super) fn put_application(&mut self, id: &str) {
        self.applications.insert(id.to_string());
    }

    pub(super) fn remove_application(&mut self, id: &str) {
        self.applications.remove(id);
    }

    pub(super) fn put_event_type(&mut self, event_type: &EventType) {
        let key = (event_type.application_id.clone(), event_type.name.clone());
        let schema = event_type.schema.clone().map(Arc::new);
        self.schemas.insert(key, schema);
    }

    pub(super) fn remove_event_type(&mut self, application_id: &str, name: &str) {
        (self.schemas).remove(&(application_id.to_string(), name.to_string()));
    }

    pub(super) fn put_endpoint(&mut self, endpoint: &Endpoint) {
        let key = (endpoint.application_id.clone(), endpoint.id.clone());
        self.endpoints.insert(key, Subscription::of(endpoint));
    }

    pub(super) fn remove_endpoint(&mut self, application_id: &str, id: &str) {
        (self.endpoints).remove(&(application_id.to_string(), id.to_string()));
    }
}

impl Store {
    /// Reads the catalog again: another node of a cluster changed what the
    /// store holds. Read without the lock: a remote read takes round trips,
    /// and a job's creation waits for the lock on the API's runtime thread.
    /// A change made here meanwhile would be lost by the read, which is then
    /// made again under the lock.
    pub fn reload_job_catalog(&self) -> Result<()> {
        let read = || Catalog::read(&self.applications, &self.event_types, &self.endpoints);
        let changes = &self.job_catalog.changes;
        let before = self.job_catalog.read(|_| changes.load(Ordering::Relaxed));
        let fresh = read()?;
        let mut catalog = self.job_catalog.write();
        *catalog = match changes.load(Ordering::Relaxed) == before {
            true => fresh,
            false => read()?,
        };
        Ok(())
    }

    /// Whether the application exists (from memory).
    pub fn application_exists(&self, id: &str) -> bool {
        self.job_catalog
            .read(|catalog| catalog.applications.contains(id))
    }

    /// The schema of the application's event type `name`, when it is
    /// declared with one (from memory).
    pub fn event_type_schema(&self, application_id: &str, name: &str) -> Option<Arc<Value>> {
        let key = (application_id.to_string(), name.to_string());
        self.job_catalog
            .read(|catalog| catalog.schemas.get(&key).cloned().flatten())
    }

    /// Whether the application's endpoint exists: from memory on one node;
    /// a cluster asks its keyspace, since another node's deletion reaches
    /// this node's catalog only with its next reload.
    pub fn endpoint_exists(&self, application_id: &str, id: &str) -> Result<bool> {
        if self.db.is_remote() {
            return self.endpoints.contains_key(id.as_bytes());
        }
        let key = (application_id.to_string(), id.to_string());
        Ok(self
            .job_catalog
            .read(|catalog| catalog.endpoints.contains_key(&key)))
    }

    /// The endpoints a new job of the application's `event_type` goes to,
    /// oldest first (from memory).
    pub fn subscribed_endpoints(&self, application_id: &str, event_type: &str) -> Vec<String> {
        let from = (application_id.to_string(), String::new());
        self.job_catalog.read(|catalog| {
            (catalog.endpoints.range(from..))
                .take_while(|((application, _), _)| application == application_id)
                .filter(|(_, subscription)| subscription.takes(event_type))
                .map(|((_, id), _)| id.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Application, Endpoint, EndpointStatus, EventType};
    use crate::store::{reopen, temp_store};

    fn endpoint(
        id: &str,
        application_id: &str,
        events: &[&str],
        status: EndpointStatus,
    ) -> Endpoint {
        Endpoint {
            id: id.into(),
            application_id: application_id.into(),
            url: "https://example.com/hooks".into(),
            description: None,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous_secrets: Vec::new(),
            subscribed_events: events.iter().map(|e| e.to_string()).collect(),
            status,
            rate_limit: None,
            created_at: 1000,
            updated_at: 1000,
        }
    }

    #[test]
    fn the_catalog_follows_every_change_and_is_loaded_again_on_open() {
        let (dir, store) = temp_store();
        let application = |id: &str| Application {
            id: id.into(),
            name: id.into(),
            description: None,
            portal: Default::default(),
            created_at: 1000,
            updated_at: 1000,
        };
        store.save_application(&application("app_a")).unwrap();
        store.save_application(&application("app_b")).unwrap();
        let schema = serde_json::json!({ "type": "object", "required": ["id"] });
        store
            .save_event_type(&EventType {
                application_id: "app_a".into(),
                name: "order.created".into(),
                description: None,
                schema: Some(schema.clone()),
                created_at: 1000,
                updated_at: 1000,
            })
            .unwrap();
        let endpoints = [
            endpoint("end_1", "app_a", &[], EndpointStatus::Active),
            endpoint("end_2", "app_a", &["order.created"], EndpointStatus::Paused),
            endpoint("end_3", "app_a", &["order.paid"], EndpointStatus::Active),
            endpoint("end_4", "app_a", &[], EndpointStatus::Disabled),
            endpoint("end_5", "app_b", &[], EndpointStatus::Active),
        ];
        endpoints
            .iter()
            .for_each(|e| store.save_endpoint(e).unwrap());

        let (_dir, store) = reopen(dir, store);
        assert!(store.application_exists("app_a") && !store.application_exists("app_c"));
        let created = store.event_type_schema("app_a", "order.created");
        assert_eq!(created.as_deref(), Some(&schema));
        assert_eq!(store.event_type_schema("app_a", "order.paid"), None);
        assert_eq!(
            store.subscribed_endpoints("app_a", "order.created"),
            ["end_1", "end_2"],
            "every type or this one, unless disabled; only the application's"
        );

        store.delete_endpoint("end_1").unwrap();
        store
            .save_endpoint(&endpoint("end_4", "app_a", &[], EndpointStatus::Active))
            .unwrap();
        store.delete_event_type("app_a", "order.created").unwrap();
        store.delete_application("app_b").unwrap();
        assert_eq!(
            store.subscribed_endpoints("app_a", "order.created"),
            ["end_2", "end_4"]
        );
        assert_eq!(store.event_type_schema("app_a", "order.created"), None);
        assert!(!store.application_exists("app_b"));
    }

    /// Reading the catalog again waits for the database without holding
    /// the catalog's lock: a job's creation (on the API's runtime thread)
    /// still reads it meanwhile.
    #[test]
    fn the_catalog_is_read_while_a_slow_database_is_read_for_it_again() {
        use crate::store::keyspace::test_server;
        use std::time::{Duration, Instant};
        let settings = test_server::database();
        let backend = crate::store::Backend::Postgres(Box::new(settings.clone()));
        let (_dir, store) = crate::store::temp_node(&backend);
        let application = Application {
            id: "app_a".into(),
            name: "app_a".into(),
            description: None,
            portal: Default::default(),
            created_at: 1000,
            updated_at: 1000,
        };
        store.save_application(&application).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let locker = runtime.block_on(test_server::client(&settings.config));
        let sql = |sql: &str| runtime.block_on(locker.batch_execute(sql)).unwrap();
        sql("BEGIN; LOCK TABLE keyspace IN ACCESS EXCLUSIVE MODE");
        let store = &store;
        std::thread::scope(|scope| {
            let reload = scope.spawn(|| store.reload_job_catalog());
            let deadline = Instant::now() + Duration::from_secs(5);
            let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted";
            while runtime
                .block_on(locker.query_one(waiting, &[]))
                .unwrap()
                .get::<_, i64>(0)
                == 0
            {
                assert!(Instant::now() < deadline, "the reload never read");
                std::thread::sleep(Duration::from_millis(10));
            }
            let (answer, answered) = std::sync::mpsc::channel();
            scope.spawn(move || answer.send(store.application_exists("app_a")));
            let exists = answered.recv_timeout(Duration::from_secs(2));
            sql("COMMIT");
            assert_eq!(exists, Ok(true), "read while the reload waited");
            reload.join().unwrap().unwrap();
        });
    }
}
