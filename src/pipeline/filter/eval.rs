//! What one filter evaluation may spend, and what it computes once.
//!
//! The request is untrusted and can be large (megabytes of JSON), and the
//! router evaluates filters on one thread for every source, so one request's
//! evaluation must not run long. Two things keep it short:
//!
//! - Work is counted in steps (a filter node matched against a value, a value
//!   compared, a value hashed or turned into a filter) and an evaluation stops
//!   at its budget; a filter that gave up counts as not matching.
//! - What does not change during one evaluation is computed once: a `$ref`
//!   target turned into a filter, and an `$in` array operand turned into a
//!   hash set, so `$in` with `$ref` against an array input is linear, not
//!   quadratic, and an operator applied to each element of an array resolves
//!   its operand once.

use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::rc::Rc;

/// Steps one evaluation may take unless configured otherwise
/// (`[limits] filter_max_steps`): ample for filters on multi-megabyte bodies
/// evaluated in linear time, and tens of milliseconds at most.
pub const DEFAULT_MAX_STEPS: u64 = 2_000_000;

/// The outcome of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// False when the filter gave up (`gave_up`).
    pub matched: bool,
    /// The work done, in steps; past the budget when the filter gave up (the
    /// steps it took to unwind).
    pub steps: u64,
    /// The budget ran out before the filter was decided.
    pub gave_up: bool,
}

/// One evaluation's state: the request, the budget left and the values
/// computed once.
pub(super) struct Eval<'r> {
    pub root: &'r Value,
    max_steps: u64,
    steps: Cell<u64>,
    /// Keyed by the address of the compiled operand or `$ref` path, which
    /// stays put while the filter is evaluated.
    sets: RefCell<HashMap<usize, Rc<ValueSet>>>,
    ref_filters: RefCell<HashMap<usize, Rc<super::Node>>>,
}

impl<'r> Eval<'r> {
    pub fn new(root: &'r Value, max_steps: u64) -> Eval<'r> {
        Eval {
            root,
            max_steps,
            steps: Cell::new(0),
            sets: RefCell::default(),
            ref_filters: RefCell::default(),
        }
    }

    /// Takes one step; false once the budget is spent, and from then on every
    /// matching function answers false at once, so the evaluation unwinds.
    pub fn step(&self) -> bool {
        self.charge(1)
    }

    /// Takes `steps` steps at once; false once the budget is spent.
    pub fn charge(&self, steps: u64) -> bool {
        let taken = self.steps.get().saturating_add(steps);
        self.steps.set(taken);
        taken <= self.max_steps
    }

    pub fn finish(&self, matched: bool) -> Evaluation {
        let steps = self.steps.get();
        let gave_up = steps > self.max_steps;
        Evaluation {
            matched: matched && !gave_up,
            steps,
            gave_up,
        }
    }

    /// The set of `options`, built once per evaluation for the compiled
    /// operand at `key`.
    pub fn set_of(&self, key: usize, options: &[Value]) -> Rc<ValueSet> {
        if let Some(set) = self.sets.borrow().get(&key) {
            return set.clone();
        }
        let set = Rc::new(ValueSet::new(options, self));
        self.sets.borrow_mut().insert(key, set.clone());
        set
    }

    /// The filter a `$ref` target stands for, built once per evaluation for
    /// the compiled path at `key`.
    pub fn ref_filter(&self, key: usize, build: impl FnOnce() -> super::Node) -> Rc<super::Node> {
        if let Some(node) = self.ref_filters.borrow().get(&key) {
            return node.clone();
        }
        let node = Rc::new(build());
        self.ref_filters.borrow_mut().insert(key, node.clone());
        node
    }
}

/// An `$in` array operand indexed by a hash that agrees with the filter's
/// equality (numbers by value, objects regardless of key order): equal values
/// always share a bucket, and each candidate in it is still compared. The
/// hash is keyed at random, so a request cannot be made of colliding values.
pub(super) struct ValueSet {
    keys: RandomState,
    buckets: HashMap<u64, Vec<usize>>,
}

impl ValueSet {
    fn new(options: &[Value], eval: &Eval) -> ValueSet {
        let keys = RandomState::new();
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::with_capacity(options.len());
        for (index, option) in options.iter().enumerate() {
            let hash = fingerprint(option, &keys, eval);
            buckets.entry(hash).or_default().push(index);
        }
        ValueSet { keys, buckets }
    }

    /// Whether `options` (the values this set was built from) hold one equal to `value`.
    pub fn contains(
        &self,
        options: &[Value],
        value: &Value,
        equal: impl Fn(&Value, &Value) -> bool,
        eval: &Eval,
    ) -> bool {
        let hash = fingerprint(value, &self.keys, eval);
        self.buckets.get(&hash).is_some_and(|candidates| {
            candidates
                .iter()
                .any(|&index| equal(&options[index], value))
        })
    }
}

/// A hash of `value` under the filter's equality, charged one step per node.
fn fingerprint(value: &Value, keys: &RandomState, eval: &Eval) -> u64 {
    let mut nodes = 0;
    let hash = hash_of(value, keys, &mut nodes);
    eval.charge(nodes);
    hash
}

fn hash_of(value: &Value, keys: &RandomState, nodes: &mut u64) -> u64 {
    *nodes += 1;
    let mut hasher = keys.build_hasher();
    match value {
        Value::Null => 0u8.hash(&mut hasher),
        Value::Bool(b) => (1u8, b).hash(&mut hasher),
        // 1 equals 1.0, and two integers equal only if their f64 values are.
        Value::Number(n) => {
            let float = n.as_f64().unwrap_or(f64::NAN);
            let float = if float == 0.0 { 0.0 } else { float };
            (2u8, float.to_bits()).hash(&mut hasher)
        }
        Value::String(s) => (3u8, s).hash(&mut hasher),
        Value::Array(items) => {
            (4u8, items.len()).hash(&mut hasher);
            items
                .iter()
                .for_each(|item| hash_of(item, keys, nodes).hash(&mut hasher));
        }
        // Summed, so that key order does not matter.
        Value::Object(map) => {
            let entries = map.iter().fold(0u64, |sum, (key, item)| {
                sum.wrapping_add(keys.hash_one((key, hash_of(item, keys, nodes))))
            });
            (5u8, map.len(), entries).hash(&mut hasher)
        }
    }
    hasher.finish()
}
