//! `hookgate test`: recorded requests (`case`) run through a config's real
//! pipeline (`replay`), compared with what they expect (`diff`), reported as
//! a pass/fail table; `hookgate requests export` writes such files from a
//! running gateway (`export`).

pub mod case;
pub mod diff;
pub mod export;
pub mod replay;

use case::{ConnectionOutcome, Outcomes, RecordedCase};
use diff::{differences, Difference};
use replay::Replay;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The result of one file.
pub struct Checked {
    pub file: PathBuf,
    /// One row per connection (or one for a rejection): name, what happened, passed.
    pub rows: Vec<Row>,
    /// Why it failed: the differences, or why it could not run.
    pub failure: Option<String>,
}

pub struct Row {
    pub connection: String,
    pub outcome: String,
    pub passed: bool,
}

/// Every `*.json` file under `paths` (files as given, directories walked),
/// in name order.
pub fn case_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() || entry.extension().is_some_and(|ext| ext == "json") {
            collect(&entry, files)?;
        }
    }
    Ok(())
}

/// Runs each file's request in the order they arrived (`received_at`, then
/// file name), as one gateway would have received them.
pub fn run(replay: &mut Replay, files: &[PathBuf], now_ms: u64) -> Vec<Checked> {
    let mut read: Vec<(PathBuf, ReadCase)> = files
        .iter()
        .map(|file| (file.clone(), read_case(file, now_ms)))
        .collect();
    read.sort_by_key(|(file, case)| (case.as_ref().map_or(0, |(_, at)| *at), file.clone()));
    read.into_iter()
        .map(|(file, case)| match case {
            Ok((case, received_ms)) => match replay.outcomes(&case, received_ms) {
                Ok(actual) => checked(file, &case.expect, &actual),
                Err(error) => unrunnable(file, error),
            },
            Err(error) => unrunnable(file, error),
        })
        .collect()
}

/// A file's recorded request and when it arrived (ms), or why it cannot run.
type ReadCase = Result<(RecordedCase, u64), String>;

fn read_case(file: &Path, now_ms: u64) -> ReadCase {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let case: RecordedCase =
        serde_json::from_str(&text).map_err(|e| format!("not a recorded request: {e}"))?;
    let received_ms = match &case.received_at {
        Some(at) => crate::api::query::parse_date(at)
            .ok_or(format!("received_at: \"{at}\" is not RFC 3339"))?,
        None => now_ms,
    };
    Ok((case, received_ms))
}

fn unrunnable(file: PathBuf, error: String) -> Checked {
    Checked {
        file,
        rows: vec![Row {
            connection: "-".into(),
            outcome: "not run".into(),
            passed: false,
        }],
        failure: Some(format!("  {error}")),
    }
}

/// Compares expected and actual outcomes, one row per connection (and one
/// per connection expected that the source does not have).
fn checked(file: PathBuf, expected: &Outcomes, actual: &Outcomes) -> Checked {
    let found = differences(&to_json(expected), &comparable(actual, expected));
    // A difference outside every connection (rejected or not) fails each row.
    let passed = |name: &str| {
        let under = format!("connections.{name}.");
        !found
            .iter()
            .any(|d| !d.at.starts_with("connections.") || format!("{}.", d.at).starts_with(&under))
    };
    let mut rows: Vec<Row> = match actual {
        Outcomes::Rejected(cause) => vec![Row {
            connection: "-".into(),
            outcome: format!("rejected {cause}"),
            passed: found.is_empty(),
        }],
        Outcomes::Connections(by_name) => by_name
            .iter()
            .map(|(name, outcome)| Row {
                connection: name.clone(),
                outcome: summary(outcome),
                passed: passed(name),
            })
            .collect(),
    };
    if let (Outcomes::Connections(wanted), Outcomes::Connections(by_name)) = (expected, actual) {
        let unknown = wanted.keys().filter(|name| !by_name.contains_key(*name));
        rows.extend(unknown.map(|name| Row {
            connection: name.clone(),
            outcome: "not a connection of the source".into(),
            passed: false,
        }));
    }
    let failure = (!found.is_empty()).then(|| {
        found
            .iter()
            .map(Difference::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    });
    Checked {
        file,
        rows,
        failure,
    }
}

fn summary(outcome: &ConnectionOutcome) -> String {
    match outcome {
        ConnectionOutcome::Delivered(_) => "delivered".into(),
        ConnectionOutcome::Ignored(cause) => format!("ignored {cause}"),
    }
}

fn to_json(outcomes: &Outcomes) -> Value {
    serde_json::to_value(outcomes).expect("outcomes serialize")
}

/// `actual` cut down to what `expected` compares: of a delivered event the
/// fields it names, of its headers the names it lists. A connection it does
/// not name stays whole (and shows as unexpected).
fn comparable(actual: &Outcomes, expected: &Outcomes) -> Value {
    let mut actual = to_json(actual);
    let expected = to_json(expected);
    let (Some(actual_connections), Some(expected_connections)) = (
        actual.get_mut("connections").and_then(Value::as_object_mut),
        expected.get("connections").and_then(Value::as_object),
    ) else {
        return actual;
    };
    for (name, outcome) in actual_connections.iter_mut() {
        let wanted = expected_connections
            .get(name)
            .and_then(|o| o.get("delivered"));
        if let (Some(Value::Object(delivered)), Some(Value::Object(wanted))) =
            (outcome.get_mut("delivered"), wanted)
        {
            delivered.retain(|field, _| wanted.contains_key(field));
            if let (Some(Value::Object(headers)), Some(Value::Object(names))) =
                (delivered.get_mut("headers"), wanted.get("headers"))
            {
                headers.retain(|name, _| names.contains_key(name));
            }
        }
    }
    actual
}

/// The pass/fail table, then each failure's differences; returns whether all passed.
pub fn report(results: &[Checked], out: &mut impl std::io::Write) -> std::io::Result<bool> {
    let file_width = results
        .iter()
        .map(|c| c.file.display().to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let rows = results
        .iter()
        .flat_map(|c| c.rows.iter().map(move |row| (c, row)));
    let connection_width = rows
        .clone()
        .map(|(_, row)| row.connection.len())
        .max()
        .unwrap_or(10)
        .max(10);
    writeln!(
        out,
        "{:<6}{:<file_width$}  {:<connection_width$}  OUTCOME",
        "", "FILE", "CONNECTION"
    )?;
    for (checked, row) in rows {
        let verdict = if row.passed { "pass" } else { "FAIL" };
        let file = checked.file.display().to_string();
        writeln!(
            out,
            "{verdict:<6}{file:<file_width$}  {:<connection_width$}  {}",
            row.connection, row.outcome
        )?;
    }
    let failed: Vec<&Checked> = results.iter().filter(|c| c.failure.is_some()).collect();
    for checked in &failed {
        writeln!(
            out,
            "\n{}: expected (-) and actual (+) differ:\n{}",
            checked.file.display(),
            checked.failure.as_deref().unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "\n{} of {} recorded requests passed",
        results.len() - failed.len(),
        results.len()
    )?;
    Ok(failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::case::Delivered;
    use super::*;
    use std::collections::BTreeMap;

    fn delivered(headers: &[(&str, &str)], body: Value) -> ConnectionOutcome {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        ConnectionOutcome::Delivered(Delivered {
            headers: Some(headers.collect()),
            body: Some(body),
            ..Delivered::default()
        })
    }

    fn connections(outcomes: &[(&str, ConnectionOutcome)]) -> Outcomes {
        let by_name: BTreeMap<_, _> = outcomes
            .iter()
            .map(|(n, o)| (n.to_string(), o.clone()))
            .collect();
        Outcomes::Connections(by_name)
    }

    #[test]
    fn only_the_headers_and_fields_expected_are_compared() {
        let actual = connections(&[(
            "a",
            ConnectionOutcome::Delivered(Delivered {
                path: Some("/p".into()),
                headers: Some(BTreeMap::from([
                    ("x-a".into(), "1".into()),
                    ("x-b".into(), "2".into()),
                ])),
                body: Some(serde_json::json!({"k": 1})),
                ..Delivered::default()
            }),
        )]);
        let expected =
            connections(&[("a", delivered(&[("x-a", "1")], serde_json::json!({"k": 1})))]);
        let result = checked("f.json".into(), &expected, &actual);
        assert!(result.failure.is_none(), "{:?}", result.failure);
        let wrong = connections(&[("a", delivered(&[("x-c", "3")], serde_json::json!({"k": 1})))]);
        let result = checked("f.json".into(), &wrong, &actual);
        assert_eq!(
            result.failure.as_deref(),
            Some("  at connections.a.delivered.headers.x-c\n  - \"3\"\n  + (absent)")
        );
        assert!(!result.rows[0].passed);
    }

    #[test]
    fn every_connection_must_be_expected_and_exist() {
        let ignored = || ConnectionOutcome::Ignored("FILTERED".into());
        let actual = connections(&[("a", ignored()), ("b", ignored())]);
        let result = checked(
            "f.json".into(),
            &connections(&[("a", ignored()), ("c", ignored())]),
            &actual,
        );
        let rows: Vec<(&str, bool)> = result
            .rows
            .iter()
            .map(|r| (r.connection.as_str(), r.passed))
            .collect();
        assert_eq!(rows, [("a", true), ("b", false), ("c", false)]);
        let rejected = checked(
            "f.json".into(),
            &Outcomes::Rejected("VERIFICATION_FAILED".into()),
            &actual,
        );
        assert!(rejected.rows.iter().all(|row| !row.passed));
    }
}
