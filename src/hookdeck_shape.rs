//! Hookdeck's spelling of a tagged setting, beside hookgate's own.
//!
//! A source's `verification` and a destination's `auth_method` are written
//! either hookgate's way, flat and lower case
//! (`{type = "stripe", webhook_secret_key = "…"}`), or Hookdeck's way, the
//! settings nested under `configs` / `config` and the type in any case
//! (`{"type": "STRIPE", "configs": {"webhook_secret_key": "…"}}`). Both read
//! into the same config (`flat`), and answers show Hookdeck's (`nested`),
//! secrets masked.

use serde_json::{Map, Value};

/// A setting Hookdeck names differently for one type.
pub struct Rename {
    /// The type, as hookgate spells it.
    pub type_name: &'static str,
    pub hookdeck: &'static str,
    pub hookgate: &'static str,
}

/// Fields that hold a secret: answers show them masked (`secret::masked`).
const SECRET_FIELDS: &[&str] = &[
    "webhook_secret_key",
    "password",
    "api_key",
    "token",
    "signing_secret",
];

/// The flat, lower-case shape of `written`: its `type` lower-cased and the
/// settings under `settings_key` moved beside it (renamed for its type).
/// Anything else is left for the config's own checks to describe.
pub fn flat(written: Value, settings_key: &str, renames: &[Rename]) -> Result<Value, String> {
    let Value::Object(mut fields) = written else {
        return Ok(written);
    };
    let type_name = match fields.get("type") {
        Some(Value::String(name)) => name.to_ascii_lowercase(),
        _ => return Ok(Value::Object(fields)),
    };
    fields.insert("type".into(), Value::String(type_name.clone()));
    let settings = match fields.remove(settings_key) {
        None => Map::new(),
        Some(Value::Object(settings)) => settings,
        Some(_) => return Err(format!("{settings_key}: must be an object")),
    };
    for (key, value) in settings {
        let key = renames
            .iter()
            .find(|r| r.type_name == type_name && r.hookdeck == key)
            .map_or(key, |r| r.hookgate.to_string());
        if fields.contains_key(&key) {
            return Err(format!(
                "{key}: given both in {settings_key} and beside type; give it once"
            ));
        }
        fields.insert(key, value);
    }
    Ok(Value::Object(fields))
}

/// What a setting's value must be (a setting not listed is text).
pub enum Expected {
    /// A whole number, at least 0.
    Count,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

/// Checks that every setting of a flat config (but `type`) has its kind, so
/// that a wrong one is refused naming it: the derived reading's own message
/// would not, as it reads the settings through a tagged enum.
pub fn check_kinds(flat: &Value, kinds: &[(&str, Expected)]) -> Result<(), String> {
    let Value::Object(fields) = flat else {
        return Ok(());
    };
    for (key, value) in fields.iter().filter(|(key, _)| *key != "type") {
        let expected = kinds.iter().find(|(name, _)| name == key).map(|(_, e)| e);
        let fits = match expected {
            None => value.is_string(),
            Some(Expected::Count) => value.is_u64(),
            Some(Expected::OneOf(words)) => value.as_str().is_some_and(|v| words.contains(&v)),
        };
        if !fits {
            return Err(match expected {
                None => format!("{key}: must be a string"),
                Some(Expected::Count) => format!("{key}: must be a whole number, at least 0"),
                Some(Expected::OneOf(words)) => {
                    format!("{key}: must be one of {}", words.join(", "))
                }
            });
        }
    }
    Ok(())
}

/// Hookdeck's shape of a flat config (`{type, …}` as serialized):
/// `{type: hookdeck_type, settings_key: {…}}` with Hookdeck's setting names
/// and every secret masked.
pub fn nested(flat: Value, hookdeck_type: &str, settings_key: &str, renames: &[Rename]) -> Value {
    let mut fields = match flat {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    let type_name = match fields.remove("type") {
        Some(Value::String(name)) => name,
        _ => String::new(),
    };
    let settings: Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(secret) if SECRET_FIELDS.contains(&key.as_str()) => {
                    Value::String(crate::secret::masked(&secret))
                }
                other => other,
            };
            let key = renames
                .iter()
                .find(|r| r.type_name == type_name && r.hookgate == key)
                .map_or(key, |r| r.hookdeck.to_string());
            (key, value)
        })
        .collect();
    let mut shown = Map::new();
    shown.insert("type".into(), Value::String(hookdeck_type.to_string()));
    shown.insert(settings_key.into(), Value::Object(settings));
    Value::Object(shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RENAMES: &[Rename] = &[Rename {
        type_name: "gitlab",
        hookdeck: "api_key",
        hookgate: "webhook_secret_key",
    }];

    #[test]
    fn hookdecks_shape_reads_flat_and_answers_nested_with_secrets_masked() {
        let written = json!({"type": "GitLab", "configs": {"api_key": "glpat-0123456789abcdef"}});
        let flat = flat(written, "configs", RENAMES).unwrap();
        assert_eq!(
            flat,
            json!({"type": "gitlab", "webhook_secret_key": "glpat-0123456789abcdef"})
        );
        assert_eq!(
            nested(flat, "GITLAB", "configs", RENAMES),
            json!({"type": "GITLAB", "configs": {"api_key": "glpa…"}})
        );
    }

    #[test]
    fn a_setting_of_the_wrong_kind_is_refused_by_name() {
        let kinds = [
            ("tolerance_seconds", Expected::Count),
            ("to", Expected::OneOf(&["header", "query"])),
        ];
        let fine = json!({"type": "x", "secret": "s", "tolerance_seconds": 5, "to": "query"});
        check_kinds(&fine, &kinds).unwrap();
        for (wrong, named) in [
            (json!({"secret": 5}), "secret: must be a string"),
            (
                json!({"tolerance_seconds": "5"}),
                "tolerance_seconds: must be a whole",
            ),
            (json!({"to": "body"}), "to: must be one of header, query"),
        ] {
            let error = check_kinds(&wrong, &kinds).unwrap_err();
            assert!(error.starts_with(named), "{error}");
        }
    }

    #[test]
    fn hookgates_flat_shape_is_kept_and_a_setting_given_twice_is_refused() {
        let written = json!({"type": "stripe", "webhook_secret_key": "s"});
        assert_eq!(flat(written.clone(), "configs", &[]).unwrap(), written);
        let twice = json!({"type": "stripe", "webhook_secret_key": "s", "configs": {"webhook_secret_key": "t"}});
        let error = flat(twice, "configs", &[]).unwrap_err();
        assert!(error.starts_with("webhook_secret_key:"), "{error}");
    }
}
