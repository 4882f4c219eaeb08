//! The work a filter evaluation does: linear in the request for `$in` and
//! `$ref`, never past its budget, and never a panic, whatever the filter and
//! the request.

use super::{Evaluation, RequestFilter, DEFAULT_MAX_STEPS};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A body like the one in the report: `n` items with ids and a list of `n`
/// allowed ids, sharing one.
fn two_id_lists(n: usize) -> Value {
    let ids: Vec<Value> = (0..n).map(|i| json!(format!("id-{i:07}"))).collect();
    let mut allowed: Vec<Value> = (0..n).map(|i| json!(format!("ok-{i:07}"))).collect();
    allowed[n - 1] = ids[n / 2].clone();
    let items: Vec<Value> = ids.into_iter().map(|id| json!({ "id": id })).collect();
    json!({ "items": items, "allowed": allowed })
}

/// An item's id is (`$in`) or is not (`$nin`) among the allowed ones.
fn item_id(operator: &str) -> Value {
    json!({ "items": { "id": { operator: { "$ref": "allowed" } } } })
}

fn body_filter(spec: Value) -> RequestFilter {
    RequestFilter::new(None, Some(&spec), None, None)
}

fn evaluate(filter: &RequestFilter, body: Value) -> Evaluation {
    filter.evaluate(&json!({ "body": body }))
}

#[test]
fn in_with_ref_on_an_868_kib_body_takes_linear_work() {
    let n = 40_000;
    let body = two_id_lists(n);
    assert!(
        body.to_string().len() > 868 * 1024,
        "the body is report-sized"
    );
    let evaluation = evaluate(&body_filter(item_id("$in")), body);
    assert!(evaluation.matched && !evaluation.gave_up, "{evaluation:?}");
    // Before: one comparison per pair of ids, 1.6 billion.
    assert!(evaluation.steps < 10 * n as u64, "{evaluation:?}");
}

#[test]
fn nin_with_ref_is_decided_by_the_same_set_and_a_list_field_is_not_a_member() {
    let body = json!({ "id": "b", "ids": ["x", "b"], "denied": ["a", "b"] });
    let filter = |spec| evaluate(&body_filter(spec), body.clone()).matched;
    assert!(!filter(json!({ "id": { "$nin": { "$ref": "denied" } } })));
    assert!(filter(json!({ "id": { "$nin": ["x", "y", 2.0] } })));
    // As in the reference: an operator sees a list field whole, and `$in`
    // takes neither a list input nor a list holding objects.
    assert!(!filter(json!({ "ids": { "$nin": { "$ref": "denied" } } })));
    assert!(!filter(json!({ "ids": { "$in": [1, 2.0, "b"] } })));
    assert!(!filter(json!({ "id": { "$nin": ["x", {"b": 1}] } })));
}

#[test]
fn an_operand_used_for_every_element_is_resolved_once() {
    let n = 20_000;
    let items: Vec<Value> = (0..n).map(|i| json!({ "sku": format!("s{i}") })).collect();
    let allowed: Vec<Value> = (0..n).map(|i| json!(format!("a{i}"))).collect();
    let body = json!({ "items": items, "allowed": allowed, "wanted": allowed });
    for spec in [
        json!({ "items": { "sku": { "$in": { "$ref": "allowed" } } } }),
        json!({ "items": { "sku": { "$ref": "wanted" } } }),
    ] {
        let evaluation = evaluate(&body_filter(spec.clone()), body.clone());
        assert!(
            !evaluation.matched && !evaluation.gave_up,
            "{spec}: {evaluation:?}"
        );
        assert!(evaluation.steps < 20 * n as u64, "{spec}: {evaluation:?}");
    }
}

#[test]
fn work_grows_linearly_with_the_request() {
    let filter = body_filter(item_id("$in"));
    let steps = |n| evaluate(&filter, two_id_lists(n)).steps as f64;
    let ratio = steps(8_000) / steps(2_000);
    assert!(
        ratio < 4.5,
        "four times the request took {ratio} times the work"
    );
}

#[test]
fn a_filter_out_of_steps_gives_up_and_does_not_match() {
    let body = two_id_lists(2_000);
    for spec in [
        item_id("$in"),
        // Negation does not turn giving up into a match.
        json!({ "$not": item_id("$in") }),
        item_id("$nin"),
    ] {
        let filter = body_filter(spec.clone()).with_max_steps(500);
        let evaluation = evaluate(&filter, body.clone());
        assert!(
            !evaluation.matched && evaluation.gave_up,
            "{spec}: {evaluation:?}"
        );
    }
    let enough = body_filter(item_id("$in"));
    assert!(evaluate(&enough, body).matched);
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        "[a-c$.0-9]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Filter specs: JSON whose keys are mostly operators and field names of
/// `any_json`, with `$ref` paths into the request.
fn any_filter() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("$eq"),
        Just("$neq"),
        Just("$gt"),
        Just("$gte"),
        Just("$lt"),
        Just("$lte"),
        Just("$in"),
        Just("$nin"),
        Just("$startsWith"),
        Just("$endsWith"),
        Just("$exist"),
        Just("$or"),
        Just("$and"),
        Just("$not"),
        Just("$ref"),
        Just("$bogus"),
        Just("a"),
        Just("b"),
        Just("ab"),
    ];
    let leaf = prop_oneof![
        any_json(),
        prop_oneof![
            Just("a"),
            Just("a.b"),
            Just("a.0"),
            Just("[1].b"),
            Just("a[$index].b"),
            Just("..")
        ]
        .prop_map(|path| json!({ "$ref": path })),
        prop_oneof![
            Just("$.a"),
            Just("$..b"),
            Just("$[*]"),
            Just("$[?(@.a > 1)]"),
            Just("$[")
        ]
        .prop_map(|path| json!(path)),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// Values in a JSON document, counted as the budget counts them.
fn nodes(value: &Value) -> u64 {
    1 + match value {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(map) => map.values().map(nodes).sum(),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Loading never panics; a filter evaluates without panicking,
    /// and the work it does past its budget is bounded by the request's and
    /// the filter's sizes (an evaluation that gave up unwinds, it does not go on).
    #[test]
    fn filters_compile_and_evaluate_within_bounds(spec in any_filter(), body in any_json(), budget in 1u64..400) {
        let filter = RequestFilter::new(None, Some(&spec), None, None);
        let root = json!({ "body": body });
        let bounded = filter.clone().with_max_steps(budget).evaluate(&root);
        let unwinding = (nodes(&spec) + 1) * (nodes(&root) + 1);
        prop_assert!(bounded.steps <= budget + unwinding, "{bounded:?}");
        let full = filter.evaluate(&root);
        prop_assert!(!full.gave_up && full.steps <= DEFAULT_MAX_STEPS);
        // A budget large enough gives the same answer as the default one.
        if !bounded.gave_up {
            prop_assert_eq!(bounded.matched, full.matched);
        } else {
            prop_assert!(!bounded.matched);
        }
    }
}
