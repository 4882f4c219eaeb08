//! How sources, destinations and connections are shown: the catalog's objects
//! with what is kept beside them — when they were created and changed
//! (`Store::object_times`), whether they are archived or declared in
//! gateway.toml, where a source is reached, a connection's pause and ends.
//!
//! Archived objects are kept but not served, so the served catalog lacks
//! them; to show them, `Showing::load` validates every API object as if none
//! were archived into a catalog of its own (only when they are asked for).

use super::error::ApiResult;
use super::views::{self, Stamp};
use super::ApiState;
use crate::config::ObjectKind;
use crate::ids::now_ms;
use crate::model::{Catalog, Connection, Destination, Source};
use crate::store::{ObjectTimes, Store};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What showing configured objects takes, read once per call. Blocks on the store.
pub struct Showing {
    team_id: String,
    ingress_url: String,
    times: HashMap<String, ObjectTimes>,
    /// API object id → when it was archived.
    archived: HashMap<String, u64>,
    declared: BTreeSet<String>,
    store: Store,
    /// The served objects, and the archived ones when asked for.
    pub catalog: Arc<Catalog>,
}

impl Showing {
    /// `with_archived`: archived objects are shown too.
    pub fn load(state: &ApiState, with_archived: bool) -> ApiResult<Showing> {
        let objects = state.store.api_objects()?;
        let archived: HashMap<String, u64> = objects
            .iter()
            .filter_map(|o| Some((o.id(), o.archived_at?)))
            .collect();
        let catalog = if with_archived && !archived.is_empty() {
            every_object(state, objects)
        } else {
            state.catalog.load_full()
        };
        Ok(Showing {
            team_id: state.team_id.clone(),
            ingress_url: state.ingress_url.clone(),
            times: state.store.object_times()?,
            archived,
            declared: state.config.load().declared.clone(),
            store: state.store.clone(),
            catalog,
        })
    }

    fn stamp(&self, id: &str) -> Stamp<'_> {
        // Every object is stamped before it is served; `now` is for a race with that.
        let now = now_ms();
        let times = self.times.get(id).copied().unwrap_or(ObjectTimes {
            created_at: now,
            updated_at: now,
        });
        Stamp {
            team_id: &self.team_id,
            times,
            archived_at: self.archived.get(id).copied(),
            read_only: self.declared.contains(id),
        }
    }

    pub fn source(&self, source: &Source) -> Value {
        let url = format!("{}/e/{}", self.ingress_url, source.id);
        views::source(source, &self.stamp(&source.id), &url)
    }

    pub fn destination(&self, destination: &Destination) -> Value {
        views::destination(destination, &self.stamp(&destination.id))
    }

    pub fn connection(&self, connection: &Connection) -> ApiResult<Value> {
        let source = self.catalog.source(&connection.source_id);
        let destination = self.catalog.destination(&connection.destination_id);
        Ok(views::connection(
            connection,
            &self.stamp(&connection.id),
            self.store.paused_at(&connection.id)?,
            source.map_or(Value::Null, |s| self.source(s)),
            destination.map_or(Value::Null, |d| self.destination(d)),
        ))
    }

    /// The view of the object of `kind` with that id (or name), if there is one.
    pub fn object(&self, kind: ObjectKind, id: &str) -> ApiResult<Option<Value>> {
        let catalog = &self.catalog;
        Ok(match kind {
            ObjectKind::Source => catalog.source(id).map(|s| self.source(s)),
            ObjectKind::Destination => catalog
                .destination_by_id_or_name(id)
                .map(|d| self.destination(d)),
            ObjectKind::Connection => catalog
                .connections()
                .into_iter()
                .find(|c| c.id == id || c.name == id)
                .map(|c| self.connection(c))
                .transpose()?,
        })
    }
}

/// The file's objects and every API object, archived ones as if they were
/// not. Should that not validate (a file reloaded since took an archived
/// object's name), the served objects alone: archived ones are then not
/// shown, rather than nothing.
fn every_object(state: &ApiState, mut objects: Vec<crate::config::ApiObject>) -> Arc<Catalog> {
    objects.iter_mut().for_each(|o| o.archived_at = None);
    let every = super::resolve_transformations(&objects, &state.store)
        .map_err(|error| vec![error.message])
        .and_then(|resolved| {
            let config = state.config.load();
            config
                .with_api_objects(&resolved)
                .map_err(|errors| errors.0)
        });
    match every {
        Ok(config) => Arc::new(config.catalog()),
        Err(errors) => {
            tracing::warn!(
                ?errors,
                "archived objects no longer fit the config: not shown"
            );
            state.catalog.load_full()
        }
    }
}
