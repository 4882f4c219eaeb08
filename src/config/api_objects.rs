//! Sources, destinations and connections created through the API. They are
//! validated exactly like declared ones: each is written as a TOML table after
//! the file's own text and the whole is checked by the same validator, so the
//! rules, defaults, references and error messages are the same for both.

use super::{Config, ConfigErrors};
use crate::model::Origin;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Source,
    Destination,
    Connection,
}

impl ObjectKind {
    /// The TOML array the object goes in.
    pub fn table(self) -> &'static str {
        match self {
            ObjectKind::Source => "sources",
            ObjectKind::Destination => "destinations",
            ObjectKind::Connection => "connections",
        }
    }

    /// The prefix of its ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            ObjectKind::Source => "src",
            ObjectKind::Destination => "des",
            ObjectKind::Connection => "web",
        }
    }
}

/// One object as given through the API, in gateway.toml's shape (a connection
/// names its source and destination).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiObject {
    pub kind: ObjectKind,
    pub name: String,
    pub fields: Map<String, Value>,
    /// Archived objects are kept but not served.
    #[serde(default)]
    pub archived_at: Option<u64>,
}

impl ApiObject {
    pub fn id(&self) -> String {
        crate::ids::named_id(self.kind.id_prefix(), &self.name)
    }
}

/// Why a set of API objects does not validate: the messages about them.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectErrors(pub Vec<String>);

impl Config {
    /// This config plus `objects`, validated together. `self` must be the
    /// file's own config (see `Config::text`).
    pub fn with_api_objects(&self, objects: &[ApiObject]) -> Result<Config, ObjectErrors> {
        if objects.is_empty() {
            return Ok(self.clone());
        }
        let mut text = self.text.clone();
        let file_lines = text.lines().count();
        for object in objects.iter().filter(|o| o.archived_at.is_none()) {
            text.push_str(&format!("\n[[{}]]\n", object.kind.table()));
            text.push_str(&format!(
                "name = {}\n",
                inline(&Value::String(object.name.clone()))
            ));
            for (key, value) in object
                .fields
                .iter()
                .filter(|(k, v)| *k != "name" && !v.is_null())
            {
                text.push_str(&format!("{} = {}\n", quoted_key(key), inline(value)));
            }
        }
        let mut combined =
            Config::parse(&self.file, &text).map_err(|errors| about_objects(errors, file_lines))?;
        combined.text = self.text.clone();
        combined.declared = self.declared.clone();
        for destination in &mut combined.destinations {
            if !combined.declared.contains(&destination.id) {
                destination.origin = Origin::Api;
            }
        }
        Ok(combined)
    }
}

/// The messages of errors located after the file's own lines (in the objects),
/// without the synthetic file position.
fn about_objects(errors: ConfigErrors, file_lines: usize) -> ObjectErrors {
    let messages = errors
        .0
        .into_iter()
        .map(|e| {
            let place = if e.line > file_lines || e.line == 0 {
                String::new()
            } else {
                format!("(conflicts with {}:{}) ", e.file.display(), e.line)
            };
            if e.key.is_empty() {
                format!("{place}{}", e.message)
            } else {
                format!("{place}{}: {}", e.key, e.message)
            }
        })
        .collect();
    ObjectErrors(messages)
}

/// A JSON value as an inline TOML value (objects as inline tables, so they
/// stay inside the object's own table).
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(inline)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", quoted_key(k), inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

fn quoted_key(key: &str) -> String {
    toml::Value::String(key.to_string()).to_string()
}

/// The ids of the objects a config file declares (read-only through the API).
pub(super) fn declared_ids(config: &Config) -> BTreeSet<String> {
    let sources = config.sources.iter().map(|s| s.id.clone());
    let destinations = config.destinations.iter().map(|d| d.id.clone());
    let connections = config.connections.iter().map(|c| c.id.clone());
    sources.chain(destinations).chain(connections).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_becomes_inline_toml_that_reads_back_the_same() {
        let value = json!({"a": "x\"y'z", "b": [1, 2.5, true], "c": {"$gt": 4, "d e": null}});
        let text = inline(&value);
        assert!(!text.contains('\n'), "inline: {text}");
        let parsed: toml::Value = toml::from_str(&format!("v = {text}")).unwrap();
        let back = serde_json::to_value(&parsed["v"]).unwrap();
        assert_eq!(
            back,
            json!({"a": "x\"y'z", "b": [1, 2.5, true], "c": {"$gt": 4}})
        );
    }
}
