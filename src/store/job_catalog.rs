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
pub(super) struct JobCatalog(RwLock<Catalog>);

impl JobCatalog {
    /// The catalog of what the store holds.
    pub(super) fn load(
        applications: &Tree,
        event_types: &Tree,
        endpoints: &Tree,
    ) -> Result<JobCatalog> {
        let catalog = Catalog::read(applications, event_types, endpoints)?;
        Ok(JobCatalog(RwLock::new(catalog)))
    }

    /// The catalog to change, held while its sled write is made.
    pub(super) fn change(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, read: impl FnOnce(&Catalog) -> T) -> T {
        read(&self.0.read().unwrap_or_else(PoisonError::into_inner))
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
    /// store holds. Read under the change lock, so that no change made here
    /// meanwhile is lost.
    pub fn reload_job_catalog(&self) -> Result<()> {
        let mut catalog = self.job_catalog.change();
        *catalog = Catalog::read(&self.applications, &self.event_types, &self.endpoints)?;
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
}
