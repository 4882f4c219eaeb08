//! The reference engine's own test suite (`simple-json-match`,
//! src/tests/index.test.ts), its cases kept as data in
//! tests/filter-reference/reference-cases.json and run as it runs them: each
//! case of `tests` as written and wrapped in `$not` (expecting the opposite),
//! each case of `not_tests` as written. A failure names the case as the
//! reference's suite does.

use super::js::stringify;
use serde_json::{json, Value};

const CASES: &str = include_str!("../../../tests/filter-reference/reference-cases.json");

struct Case {
    input: Value,
    filter: Value,
    expected: bool,
}

impl Case {
    /// The name the reference's suite gives the test.
    fn name(&self) -> String {
        format!(
            "Correctly matches {} with {} expect {}",
            stringify(&self.input),
            stringify(&self.filter),
            self.expected
        )
    }

    fn negated(&self) -> Case {
        Case {
            input: self.input.clone(),
            filter: json!({ "$not": self.filter }),
            expected: !self.expected,
        }
    }
}

fn cases(group: &str) -> Vec<Case> {
    let all: Value = serde_json::from_str(CASES).expect("the cases are JSON");
    all[group]
        .as_array()
        .expect("a list of cases")
        .iter()
        .map(|case| Case {
            input: case["input"].clone(),
            filter: case["filter"].clone(),
            expected: case["match"].as_bool().expect("match is a boolean"),
        })
        .collect()
}

/// Runs every case, then fails naming each that decided otherwise.
fn run(cases: impl IntoIterator<Item = Case>) {
    let failed: Vec<String> = cases
        .into_iter()
        .filter(|case| super::matches(&case.filter, &case.input) != case.expected)
        .map(|case| case.name())
        .collect();
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

#[test]
fn the_reference_suite_cases_decide_as_there() {
    let cases = cases("tests");
    assert_eq!(cases.len(), 121, "the whole suite is ported");
    run(cases);
}

#[test]
fn the_reference_suite_cases_wrapped_in_not_decide_the_opposite() {
    run(cases("tests").iter().map(Case::negated));
}

#[test]
fn the_reference_not_cases_decide_as_there() {
    let cases = cases("not_tests");
    assert_eq!(cases.len(), 12);
    run(cases);
}
