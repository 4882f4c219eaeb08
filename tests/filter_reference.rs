//! Differential test: hookgate's filters decide as Hookdeck's engine does.
//!
//! A seeded generator makes webhook-shaped payloads (orders, charges,
//! pushes, batches) and filters drawn from them (the values they hold, near
//! misses, numbers written as strings, nulls, `$ref`s, every operator, and
//! operands of the wrong type), and every case goes through hookgate's filter
//! and through the real reference, the pinned `simple-json-match` package run
//! by Node (tests/filter-reference; `.ci/run` installs it). Every decision
//! must agree.

use hookgate::pipeline::filter;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const CASES: usize = 6000;
const SEED: u64 = 0x5eed_f117;

#[test]
fn generated_webhook_filters_decide_as_the_reference_does() {
    let mut rng = Rng(SEED);
    let cases: Vec<(Value, Value)> = (0..CASES)
        .map(|_| {
            let payload = payload(&mut rng);
            let filter = filter_for(&mut rng, &payload, &payload, 0);
            (filter, payload)
        })
        .collect();
    let reference = reference_decisions(&cases);
    let differing: Vec<String> = cases
        .iter()
        .zip(&reference)
        .filter(|((spec, value), expected)| filter::matches(spec, value) != **expected)
        .map(|((spec, value), expected)| {
            format!("reference says {expected}: filter {spec} on {value}")
        })
        .collect();
    let matched = reference.iter().filter(|m| **m).count();
    assert!(
        differing.is_empty(),
        "{} of {CASES} cases decide differently, e.g.:\n{}",
        differing.len(),
        differing[..differing.len().min(15)].join("\n")
    );
    // The generator makes both outcomes often, or agreeing would prove little.
    assert!(
        matched > CASES / 10 && matched < CASES * 9 / 10,
        "{matched} of {CASES} match"
    );
}

/// What the reference decides for each case, by running it.
fn reference_decisions(cases: &[(Value, Value)]) -> Vec<bool> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filter-reference");
    assert!(
        dir.join("node_modules/simple-json-match").is_dir(),
        "the reference engine is not installed: run `npm ci` in {} (.ci/run does)",
        dir.display()
    );
    let mut node = Command::new("node")
        .arg("decide.js")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (install Node.js; .ci/run does): {e}"));
    let mut input = String::new();
    for (spec, value) in cases {
        input.push_str(&json!({ "filter": spec, "value": value }).to_string());
        input.push('\n');
    }
    let mut stdin = node.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = node.wait_with_output().expect("node runs");
    writer.join().unwrap().expect("node reads the cases");
    assert!(output.status.success(), "node failed: {:?}", output.status);
    let decisions: Vec<bool> = String::from_utf8(output.stdout)
        .expect("text")
        .lines()
        .map(|line| line == "true")
        .collect();
    assert_eq!(decisions.len(), cases.len(), "one decision per case");
    decisions
}

/// SplitMix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn payload(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => order(rng),
        1 => charge(rng),
        2 => push(rng),
        _ => Value::Array((0..1 + rng.below(4)).map(|_| batch_event(rng)).collect()),
    }
}

fn order(rng: &mut Rng) -> Value {
    let items: Vec<Value> = (0..rng.below(4))
        .map(|i| {
            json!({
                "sku": format!("SKU-{}", rng.below(5)),
                "quantity": 1 + rng.below(3),
                "price": *rng.pick(&["9.99", "12.50", "100.00", "0"]),
                "variant_id": if rng.chance(30) { Value::Null } else { json!(1000 + i) },
            })
        })
        .collect();
    let mut order = json!({
        "id": 820_982_911_946_154_508_u64 % 1_000_000 + rng.below(10) as u64,
        "email": *rng.pick(&["a@example.com", "B@Example.com", ""]),
        "total_price": *rng.pick(&["12.50", "100.00", "0.00", "7"]),
        "currency": *rng.pick(&["USD", "EUR", "usd"]),
        "financial_status": *rng.pick(&[json!("paid"), json!("pending"), json!("refunded"), Value::Null]),
        "tags": if rng.chance(50) { json!("vip, wholesale") } else { json!(["vip", "wholesale"]) },
        "line_items": items,
        "customer": { "id": rng.below(3), "tags": ["vip"], "email": "a@example.com" },
        "test": rng.chance(20),
    });
    if rng.chance(50) {
        order["shipping_address"] = if rng.chance(50) {
            Value::Null
        } else {
            json!({ "country": *rng.pick(&["US", "DE"]), "zip": "10001" })
        };
    }
    order
}

fn charge(rng: &mut Rng) -> Value {
    json!({
        "id": format!("evt_{}", rng.below(100)),
        "object": "event",
        "type": *rng.pick(&["charge.succeeded", "charge.failed", "charge.refunded", "invoice.paid"]),
        "livemode": rng.chance(50),
        "data": { "object": {
            "amount": *rng.pick(&[0, 500, 1999, 25000]),
            "amount_refunded": *rng.pick(&[0, 500]),
            "currency": *rng.pick(&["usd", "eur"]),
            "paid": rng.chance(70),
            "metadata": if rng.chance(50) { json!({}) } else { json!({ "order_id": "1001", "tier": 2 }) },
            "outcome": { "risk_level": *rng.pick(&["normal", "elevated", "highest"]), "risk_score": rng.below(100) },
        }},
    })
}

fn push(rng: &mut Rng) -> Value {
    let commits: Vec<Value> = (0..rng.below(3))
        .map(|i| {
            json!({
                "id": format!("c{i}"),
                "message": *rng.pick(&["fix: typo", "feat: add filter", "WIP", "chore(deps): bump"]),
                "author": { "name": *rng.pick(&["ana", "bo"]), "email": "x@y.z" },
                "added": if rng.chance(50) { json!([]) } else { json!(["src/a.rs"]) },
            })
        })
        .collect();
    json!({
        "ref": *rng.pick(&["refs/heads/main", "refs/heads/dev", "refs/tags/v1.0"]),
        "deleted": rng.chance(10),
        "commits": commits,
        "head_commit": if rng.chance(30) { Value::Null } else { json!({ "id": "c0", "distinct": true }) },
        "repository": { "name": "hookgate", "private": rng.chance(50), "stargazers_count": rng.below(50) },
        "sender": { "login": *rng.pick(&["ana", "dependabot[bot]"]), "id": 7 },
    })
}

fn batch_event(rng: &mut Rng) -> Value {
    json!({
        "id": rng.below(5),
        "type": *rng.pick(&["created", "updated", "deleted"]),
        "amount": *rng.pick(&[json!(10), json!("10"), json!(2.5), Value::Null]),
        "next": rng.below(5),
    })
}

/// A filter for `value` (found in `root`), mostly built from what it holds.
fn filter_for(rng: &mut Rng, value: &Value, root: &Value, depth: usize) -> Value {
    if depth < 3 && rng.chance(12) {
        return combination(rng, value, root, depth);
    }
    match value {
        Value::Object(map) if !map.is_empty() && depth < 4 => object_filter(rng, map, root, depth),
        Value::Array(items) if !items.is_empty() && depth < 4 => match rng.below(4) {
            0 => Value::Array(
                (0..1 + rng.below(2))
                    .map(|_| {
                        let item = &items[rng.below(items.len())];
                        filter_for(rng, item, root, depth + 1)
                    })
                    .collect(),
            ),
            1 => condition(rng, value, root),
            _ => {
                let item = &items[rng.below(items.len())];
                filter_for(rng, item, root, depth + 1)
            }
        },
        other => condition(rng, other, root),
    }
}

fn object_filter(rng: &mut Rng, map: &Map<String, Value>, root: &Value, depth: usize) -> Value {
    let keys: Vec<&String> = map.keys().collect();
    let mut filter = Map::new();
    for _ in 0..1 + rng.below(2) {
        let key = *rng.pick(&keys);
        filter.insert(key.clone(), filter_for(rng, &map[key], root, depth + 1));
    }
    if rng.chance(15) {
        let absent = *rng.pick(&["missing", "deleted_at", "note"]);
        filter.insert(absent.into(), condition(rng, &Value::Null, root));
    }
    Value::Object(filter)
}

fn combination(rng: &mut Rng, value: &Value, root: &Value, depth: usize) -> Value {
    let first = filter_for(rng, value, root, depth + 1);
    let second = filter_for(rng, value, root, depth + 1);
    match rng.below(5) {
        0 => json!({ "$or": [first, second] }),
        1 => json!({ "$and": [first, second] }),
        2 => json!({ "$not": first }),
        3 => {
            // `$not` beside other keys: the reference reads it specially.
            let mut with_not = json!({ "$not": first });
            if let (Some(map), Value::Object(extra)) = (with_not.as_object_mut(), second) {
                map.extend(extra);
            }
            with_not
        }
        _ => json!({ "$or": [] }),
    }
}

/// A condition on one value: equal to it or to a near miss, or an operator.
fn condition(rng: &mut Rng, value: &Value, root: &Value) -> Value {
    let near = near_value(rng, value);
    let operand = if rng.chance(12) {
        json!({ "$ref": reference_path(rng, root) })
    } else {
        near.clone()
    };
    match rng.below(16) {
        0 | 1 => near,
        2 => json!({ "$eq": operand }),
        3 => json!({ "$neq": operand }),
        4 => json!({ *rng.pick(&["$gt", "$gte", "$lt", "$lte"]): operand }),
        5 => {
            json!({ *rng.pick(&["$gt", "$lte"]): *rng.pick(&[json!(10), json!("100"), json!([1, 2]), json!(null)]) })
        }
        6 => {
            json!({ "$in": [near, *rng.pick(&[json!("paid"), json!(500), json!(null), json!(true)])] })
        }
        7 => json!({ "$nin": [near, "refunded"] }),
        8 => {
            json!({ *rng.pick(&["$in", "$nin"]): *rng.pick(&[json!("a"), json!("10"), json!(0), json!("refs")]) })
        }
        9 => json!({ *rng.pick(&["$startsWith", "$endsWith"]): affix(rng, value) }),
        10 => json!({ "$exist": *rng.pick(&[json!(true), json!(false), json!("true")]) }),
        11 => json!({ "$ref": reference_path(rng, root) }),
        12 => rng
            .pick(&[json!({}), json!([]), json!(null), json!({ "$and": [] })])
            .clone(),
        13 => json!({ "$exist": true, "$or": [near, "x"] }),
        14 => json!({ "$not": near }),
        _ => json!([near, *rng.pick(&[json!("vip"), json!(null), json!(0)])]),
    }
}

/// The value, or one like it: a number as a string, other case, another number.
fn near_value(rng: &mut Rng, value: &Value) -> Value {
    match (rng.below(6), value) {
        (0, Value::Number(n)) => json!(n.to_string()),
        (1, Value::Number(n)) => json!(n.as_f64().unwrap_or(0.0) + 1.0),
        (0, Value::String(s)) => json!(s.to_uppercase()),
        (1, Value::String(s)) if s.parse::<f64>().is_ok() => json!(s.parse::<f64>().unwrap()),
        (2, Value::Bool(b)) => json!(if *b { 1 } else { 0 }),
        (2, _) => rng
            .pick(&[json!(null), json!("paid"), json!(0), json!(""), json!(true)])
            .clone(),
        _ => value.clone(),
    }
}

fn affix(rng: &mut Rng, value: &Value) -> Value {
    let text = value.as_str().unwrap_or("refs");
    let head: String = text.chars().take(1 + rng.below(4)).collect();
    let tail: String = text
        .chars()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match rng.below(4) {
        0 => json!(head),
        1 => json!(tail),
        2 => json!([head, "zz"]),
        _ => json!(5),
    }
}

/// A `$ref` path into `root`: a field, an element, `[$index]`, or nothing there.
fn reference_path(rng: &mut Rng, root: &Value) -> String {
    let mut path = String::new();
    let mut at = root;
    for _ in 0..1 + rng.below(3) {
        match at {
            Value::Object(map) if !map.is_empty() => {
                let keys: Vec<&String> = map.keys().collect();
                let key = *rng.pick(&keys);
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                at = &map[key];
            }
            Value::Array(items) if !items.is_empty() => {
                let index = rng.below(items.len());
                if rng.chance(40) {
                    path.push_str("[$index]");
                } else {
                    path.push_str(&format!("[{index}]"));
                }
                at = &items[index];
            }
            _ => break,
        }
    }
    if path.is_empty() || rng.chance(10) {
        path.push_str(if path.is_empty() {
            "nothing"
        } else {
            ".nothing"
        });
    }
    path
}
