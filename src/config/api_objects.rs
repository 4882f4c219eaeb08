//! Sources, destinations and connections created through the API. They are
//! validated exactly like declared ones: each is written as a TOML table after
//! the file's own text and the whole is checked by the same validator, so the
//! rules, defaults, references and error messages are the same for both.
//!
//! Filters are the exception: TOML has no null, so they would not read back
//! as given. A filter rule goes through the TOML with each part replaced by
//! `{}` (so the rule's shape is still checked), and the parts as given are put
//! back into the validated config (`restore_filters`): what is matched and
//! what the API shows is exactly the JSON sent.
//!
//! One difference: what only the operator's own file may use. An API key
//! holder is not the operator, so the objects they give may not read files on
//! the server (`rules_file`, `code_file`: any file the gateway could read came
//! back in the error, a named pipe hung every later write) nor its environment
//! (`env:NAME`: the variable went to any URL they chose).

use super::{Config, ConfigErrors};
use crate::model::Origin;
use crate::pipeline::filter::RequestFilter;
use crate::pipeline::{Rule, RuleSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

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
    /// Its id when that is not the one its name gives (`named_id`): the id
    /// it had before it was renamed, or a fresh one when its name's id was
    /// still some renamed object's. Ids never change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_id: Option<String>,
}

impl ApiObject {
    pub fn id(&self) -> String {
        self.kept_id.clone().unwrap_or_else(|| self.named_id())
    }

    /// The id its name gives (what the config built from it has at first).
    fn named_id(&self) -> String {
        crate::ids::named_id(self.kind.id_prefix(), &self.name)
    }
}

/// Keys whose value names a file on the server's disk.
const FILE_KEYS: &[&str] = &["rules_file", "code_file"];

/// A field of an API object that only gateway.toml may use, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorOnly {
    /// Where, as a dotted path (`verification.password`, `rules[0].transformation.code_file`).
    pub field: String,
    pub message: &'static str,
}

/// Refuses API fields that name a file or the environment, at any depth
/// (inline sources and destinations of a connection included), before
/// anything reads them.
pub fn refuse_operator_only(fields: &Map<String, Value>) -> Result<(), OperatorOnly> {
    fields
        .iter()
        .try_for_each(|(key, value)| refuse_in(key, key, value))
}

fn refuse_in(path: &str, key: &str, value: &Value) -> Result<(), OperatorOnly> {
    let refused = |message| OperatorOnly {
        field: path.to_string(),
        message,
    };
    if FILE_KEYS.contains(&key) {
        return Err(refused(
            "files on the server are for gateway.toml only: give the rules or code inline",
        ));
    }
    match value {
        Value::String(text) if crate::secret::names_environment(text) => {
            Err(refused(crate::secret::ENVIRONMENT_REFUSED))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| refuse_in(&format!("{path}[{i}]"), "", item)),
        // A filter's values are matched against requests, never resolved.
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("filter") => Ok(()),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| refuse_in(&format!("{path}.{k}"), k, v)),
        _ => Ok(()),
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
                let value = if key == "rules" {
                    &with_placeholder_filters(value)
                } else {
                    value
                };
                text.push_str(&format!("{} = {}\n", quoted_key(key), inline(value)));
            }
        }
        let mut combined =
            Config::parse(&self.file, &text).map_err(|errors| about_objects(errors, file_lines))?;
        restore_filters(&mut combined, objects);
        restore_ids(&mut combined, objects);
        combined.archived_sources = self.archived_sources_of(objects);
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

impl Config {
    /// The archived sources among `objects`, built as if served: the ingress
    /// answers their requests as `SOURCE_ARCHIVED` and records them with the
    /// source's own redactions (its verification's credential header). One
    /// that no longer validates with the file (which now declares its name)
    /// is left out: its URL then answers as an unknown one.
    fn archived_sources_of(&self, objects: &[ApiObject]) -> Vec<crate::model::Source> {
        let archived: Vec<ApiObject> = objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Source && o.archived_at.is_some())
            .map(|o| ApiObject {
                archived_at: None,
                ..o.clone()
            })
            .collect();
        if archived.is_empty() {
            return Vec::new();
        }
        match self.with_api_objects(&archived) {
            Ok(built) => {
                let ids: BTreeSet<String> = archived.iter().map(ApiObject::id).collect();
                let sources = built.sources.into_iter();
                sources.filter(|s| ids.contains(&s.id)).collect()
            }
            Err(errors) => {
                tracing::warn!(errors = %errors.0.join("; "), "archived sources no longer fit the file: their URLs answer as unknown ones");
                Vec::new()
            }
        }
    }
}

/// The parts a filter rule filters on.
const FILTER_PARTS: [&str; 4] = ["headers", "body", "query", "path"];

fn is_filter_rule(rule: &Value) -> bool {
    rule.get("type").and_then(Value::as_str) == Some("filter")
}

/// `rules` with each given part of each filter rule replaced by `{}`.
fn with_placeholder_filters(rules: &Value) -> Value {
    let mut rules = rules.clone();
    let filters = rules
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter(|r| is_filter_rule(r));
    for rule in filters.filter_map(Value::as_object_mut) {
        for part in FILTER_PARTS {
            if let Some(spec) = rule.get_mut(part).filter(|spec| !spec.is_null()) {
                *spec = Value::Object(Map::new());
            }
        }
    }
    rules
}

/// Puts the filters of the API's connections back as given (see the module
/// documentation); they were validated in their placeholders' place.
fn restore_filters(config: &mut Config, objects: &[ApiObject]) {
    let max_steps = config.limits.filter_max_steps.get();
    let connections = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Connection && o.archived_at.is_none());
    for object in connections {
        let id = object.id();
        let Some(connection) = config.connections.iter_mut().find(|c| c.id == id) else {
            continue;
        };
        let Some(Value::Array(rules)) = object.fields.get("rules") else {
            continue;
        };
        for (j, rule) in rules.iter().enumerate().filter(|(_, r)| is_filter_rule(r)) {
            let [headers, body, query, path] =
                FILTER_PARTS.map(|part| rule.get(part).filter(|spec| !spec.is_null()).cloned());
            let filter = RequestFilter::new(
                headers.as_ref(),
                body.as_ref(),
                query.as_ref(),
                path.as_ref(),
            );
            connection.rules[j] = Rule::Filter(Arc::new(filter.with_max_steps(max_steps)));
            connection.rule_specs[j] = RuleSpec::Filter {
                headers,
                body,
                query,
                path,
            };
        }
    }
}

/// Gives objects that keep an id (see `ApiObject::kept_id`) that id, in
/// place of the one their name gave, and so the connections using them.
fn restore_ids(config: &mut Config, objects: &[ApiObject]) {
    let kept: std::collections::HashMap<String, String> = objects
        .iter()
        .filter_map(|o| Some((o.named_id(), o.kept_id.clone()?)))
        .collect();
    if kept.is_empty() {
        return;
    }
    let restore = |id: &mut String| {
        if let Some(kept) = kept.get(id.as_str()) {
            id.clone_from(kept);
        }
    };
    config.sources.iter_mut().for_each(|s| restore(&mut s.id));
    config
        .destinations
        .iter_mut()
        .for_each(|d| restore(&mut d.id));
    for connection in &mut config.connections {
        restore(&mut connection.id);
        restore(&mut connection.source_id);
        restore(&mut connection.destination_id);
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
    fn files_and_the_environment_are_refused_at_any_depth_but_filters_match_anything() {
        let refused = |fields: Value| {
            refuse_operator_only(fields.as_object().unwrap())
                .err()
                .map(|r| r.field)
        };
        assert_eq!(
            refused(json!({"rules_file": "/etc/passwd"})).as_deref(),
            Some("rules_file")
        );
        assert_eq!(
            refused(json!({"rules": [{"type": "transform", "transformation": {"name": "t", "code_file": "/dev/zero"}}]})).as_deref(),
            Some("rules[0].transformation.code_file")
        );
        assert_eq!(
            refused(json!({"source": {"name": "s", "verification": {"type": "basic_auth", "username": "u", "password": " ENV:HOME"}}})).as_deref(),
            Some("source.verification.password")
        );
        assert_eq!(
            refused(
                json!({"rules": [{"type": "filter", "body": {"k": "env:HOME"}}], "url": "http://x/env:y"})
            ),
            None
        );
    }

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
