//! What each source, destination and connection is declared as, boiled down
//! to a fingerprint, so that the store can tell a new object from a changed one
//! and from one merely read again after a restart (see `Store::stamp_objects`).
//! The fingerprint is a SHA-256 of the declaration's canonical JSON (keys
//! sorted): declarations may hold secrets, which the store must not keep.

use super::{ApiObject, Config, ObjectKind};
use crate::ids::named_id;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const KINDS: [ObjectKind; 3] = [
    ObjectKind::Source,
    ObjectKind::Destination,
    ObjectKind::Connection,
];

/// Object id → fingerprint, for the objects of the file and `api_objects`
/// (archived ones too: archiving is a change).
pub fn object_fingerprints(config: &Config, api_objects: &[ApiObject]) -> BTreeMap<String, String> {
    let mut fingerprints = file_fingerprints(&config.text);
    for object in api_objects {
        let declaration = serde_json::json!({
            "name": object.name,
            "fields": object.fields,
            "archived_at": object.archived_at,
        });
        fingerprints.insert(object.id(), fingerprint(&declaration));
    }
    fingerprints
}

/// The tables of the file's `[[sources]]`, `[[destinations]]`, `[[connections]]`,
/// by the id their name gives. `text` has been validated.
fn file_fingerprints(text: &str) -> BTreeMap<String, String> {
    let file: toml::Table = toml::from_str(text).unwrap_or_default();
    let mut fingerprints = BTreeMap::new();
    for kind in KINDS {
        let tables = file.get(kind.table()).and_then(toml::Value::as_array);
        for table in tables.into_iter().flatten() {
            let Some(name) = table.get("name").and_then(toml::Value::as_str) else {
                continue;
            };
            let declaration = serde_json::to_value(table).unwrap_or_default();
            fingerprints.insert(named_id(kind.id_prefix(), name), fingerprint(&declaration));
        }
    }
    fingerprints
}

fn fingerprint(declaration: &Value) -> String {
    let canonical = serde_json::to_vec(&sorted(declaration)).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

/// `value` with every object's keys in order (maps keep insertion order here).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Value> = keys
                .into_iter()
                .map(|key| (key.clone(), sorted(&map[key])))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_keeps_its_fingerprint_through_reordering_and_other_edits() {
        let before = file_fingerprints(
            "[[sources]]\nname = \"a\"\nallowed_http_methods = [\"POST\"]\n\n[[sources]]\nname = \"b\"\n",
        );
        let after = file_fingerprints(
            "# a comment\n[[sources]]\nname = \"b\"\ncustom_response = { content_type = \"text/plain\", body = \"ok\" }\n\n[[sources]]\nallowed_http_methods = [\"POST\"]\nname = \"a\"\n",
        );
        let (a, b) = (named_id("src", "a"), named_id("src", "b"));
        assert_eq!(before[&a], after[&a]);
        assert_ne!(before[&b], after[&b]);
    }
}
