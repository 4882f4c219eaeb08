//! Secret values in configuration.
//!
//! Any secret-bearing config field may either hold the secret literally or
//! point at an environment variable with `env:NAME`, so that `gateway.toml`
//! can be committed without credentials in it.

/// Prefix marking a config value as a reference to an environment variable.
pub const ENV_PREFIX: &str = "env:";

/// Whether a value would read the environment, in any spelling an attacker
/// might try (`ENV:`, leading spaces): values given through the API must not,
/// since an API key holder is not the operator (see `config::api_objects`).
pub fn names_environment(value: &str) -> bool {
    value
        .trim_start()
        .get(..ENV_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
}

/// Why an API value that names the environment is refused. The same words
/// whether the variable exists or not, so the answer tells nothing about it.
pub const ENVIRONMENT_REFUSED: &str =
    "`env:` references are for gateway.toml only: give the value itself";

/// How API answers show a secret: never in full. A long one keeps its
/// first 4 characters (to tell secrets apart: `whsec_…` shows its kind), a
/// short one nothing at all.
pub fn masked(secret: &str) -> String {
    const SHOWN: usize = 4;
    const LONG_ENOUGH_TO_SHOW: usize = 16;
    if secret.chars().count() < LONG_ENOUGH_TO_SHOW {
        return "****".into();
    }
    let shown: String = secret.chars().take(SHOWN).collect();
    format!("{shown}…")
}

/// Resolves a config value: `env:NAME` → the value of environment variable
/// `NAME`; anything else is returned unchanged (a literal secret).
///
/// Errors name the variable but never include any secret material.
pub fn resolve(value: &str) -> Result<String, String> {
    let Some(name) = value.strip_prefix(ENV_PREFIX) else {
        return Ok(value.to_owned());
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "`{value}` names no environment variable (expected `env:NAME`)"
        ));
    }
    match std::env::var(name) {
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("environment variable `{name}` is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable `{name}` does not contain valid UTF-8"
        )),
    }
}

/// Like [`resolve`], but rejects an empty result. An empty HMAC key or
/// password would make every request (or a forged one) verify, so it is
/// always a configuration mistake. `field` is used to prefix the error.
pub fn resolve_required(field: &str, value: &str) -> Result<String, String> {
    let resolved = resolve(value).map_err(|e| format!("{field}: {e}"))?;
    if resolved.is_empty() {
        return Err(format!("{field}: secret is empty"));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_values_pass_through() {
        assert_eq!(resolve("s3cret").unwrap(), "s3cret");
        assert_eq!(resolve("").unwrap(), "");
        // Only the exact lowercase prefix is special.
        assert_eq!(resolve("ENV:FOO").unwrap(), "ENV:FOO");
    }

    #[test]
    fn every_spelling_of_an_env_reference_names_the_environment() {
        for value in ["env:X", "ENV:X", "Env:X", "  env:X", "\tENV:"] {
            assert!(names_environment(value), "{value:?}");
        }
        for value in ["", "en", "envy", "x env:X", "whsec_abc"] {
            assert!(!names_environment(value), "{value:?}");
        }
    }

    #[test]
    fn masked_secrets_show_at_most_their_first_four_characters() {
        assert_eq!(masked("short"), "****");
        assert_eq!(masked("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "whse…");
    }

    #[test]
    fn env_reference_is_resolved() {
        std::env::set_var("HOOKGATE_SECRET_TEST_SET", "from-env");
        assert_eq!(resolve("env:HOOKGATE_SECRET_TEST_SET").unwrap(), "from-env");
    }

    #[test]
    fn missing_env_var_error_names_the_variable() {
        let err = resolve("env:HOOKGATE_SECRET_TEST_DEFINITELY_UNSET").unwrap_err();
        assert!(
            err.contains("HOOKGATE_SECRET_TEST_DEFINITELY_UNSET"),
            "{err}"
        );
        assert!(err.contains("not set"), "{err}");
    }

    #[test]
    fn empty_env_name_is_rejected() {
        assert!(resolve("env:").is_err());
        assert!(resolve("env:  ").is_err());
    }

    #[test]
    fn required_rejects_empty_and_prefixes_field() {
        std::env::set_var("HOOKGATE_SECRET_TEST_EMPTY", "");
        let err =
            resolve_required("webhook_secret_key", "env:HOOKGATE_SECRET_TEST_EMPTY").unwrap_err();
        assert_eq!(err, "webhook_secret_key: secret is empty");
        let err = resolve_required("password", "env:HOOKGATE_SECRET_TEST_NOPE").unwrap_err();
        assert!(err.starts_with("password: "), "{err}");
        assert_eq!(resolve_required("f", "x").unwrap(), "x");
    }
}
