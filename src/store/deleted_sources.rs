//! The sources deleted through the API, remembered so that their URL answers
//! `410 Gone` as Hookdeck's does ("Hookdeck will return HTTP 410 for any new
//! request to that Source URL") rather than as a URL that never existed. One
//! small key per deleted source in `meta`; only an API key holder adds them.

use super::{Result, Store};
use crate::ids::named_id;

const PREFIX: &str = "deleted_source/";

fn key(source_id: &str) -> String {
    format!("{PREFIX}{source_id}")
}

impl Store {
    /// Remembers that the source with this name was deleted.
    pub fn remember_deleted_source(&self, name: &str) -> Result<()> {
        let id = named_id("src", name);
        self.meta.insert(key(&id), name.as_bytes())?;
        self.meta.flush()?;
        Ok(())
    }

    /// Whether a source of this name or id was deleted (and none took its
    /// place: callers look for a served source first).
    pub fn is_deleted_source(&self, name_or_id: &str) -> Result<bool> {
        let as_name = key(&named_id("src", name_or_id));
        Ok(self.meta.contains_key(key(name_or_id))? || self.meta.contains_key(as_name)?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn a_deleted_source_is_known_by_name_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store.remember_deleted_source("shop").unwrap();
        assert!(store.is_deleted_source("shop").unwrap());
        assert!(store
            .is_deleted_source(&crate::ids::named_id("src", "shop"))
            .unwrap());
        assert!(!store.is_deleted_source("other").unwrap());
    }
}
