//! Property tests of the loader: whatever a config file holds, loading it
//! never panics, and every problem it reports points at a line of the file.

use super::Config;
use proptest::prelude::*;
use std::path::Path;

/// Lines a gateway.toml is made of, and lines that break it: known and
/// unknown tables, known keys with values of every type, stray text.
fn line() -> impl Strategy<Value = String> {
    let table = prop_oneof![
        "server",
        "limits",
        "delivery",
        "outbound",
        "retention",
        "bogus",
        "sources.x",
    ]
    .prop_map(|name| format!("[{name}]"));
    let array_table = prop_oneof!["sources", "destinations", "connections", "rules"]
        .prop_map(|name| format!("[[{name}]]"));
    let key = prop_oneof![
        "name",
        "url",
        "source",
        "destination",
        "api_keys",
        "ingress_listen",
        "data_dir",
        "max_body_bytes",
        "filter_max_steps",
        "allowed_networks",
        "blocked_networks",
        "signing_secret",
        "http_method",
        "rate_limit",
        "rate_limit_period",
        "rules",
        "rules_file",
        "custom_response",
        "verification",
        "auth_method",
        "description",
        "cli_path",
        "é",
        "\"a b\"",
    ];
    let value = prop_oneof![
        "\"[a-z0-9:/._-]{0,12}\"",
        Just("\"http://127.0.0.1:9/\"".to_string()),
        Just("\"env:NOPE\"".to_string()),
        Just("[\"10.0.0.0/8\", \"::1/128\"]".to_string()),
        Just("[\"10.0.0.0/33\"]".to_string()),
        Just(
            "[{ type = \"filter\", body = { a = { \"$in\" = { \"$ref\" = \"body.b\" } } } }]"
                .to_string()
        ),
        Just("[{ type = \"retry\", strategy = \"linear\", count = 1, interval = 1 }]".to_string()),
        Just("{ type = \"bogus\" }".to_string()),
        Just("{ type = \"STRIPE\", configs = { webhook_secret_key = \"s\" } }".to_string()),
        Just("{ type = \"BEARER_TOKEN\", config = { token = 1 } }".to_string()),
        Just("\"concurrent\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,8}",
    ];
    prop_oneof![
        table,
        array_table,
        (key, value).prop_map(|(key, value)| format!("{key} = {value}")),
        "\\PC{0,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_config_text_loads_or_names_lines(lines in prop::collection::vec(line(), 0..24)) {
        let text = lines.join("\n");
        // No such folder: rule and code files named in the text are never read.
        let path = Path::new("/nonexistent-hookgate-config/gateway.toml");
        let Err(errors) = Config::parse(path, &text) else {
            return Ok(());
        };
        prop_assert!(!errors.0.is_empty());
        let last_line = text.lines().count().max(1);
        for error in &errors.0 {
            let message = error.to_string();
            prop_assert_eq!(&error.file, path);
            prop_assert!(
                (1..=last_line + 1).contains(&error.line),
                "line {}: {}\n{}", error.line, message, text
            );
        }
    }
}
