//! What one filter evaluation may spend, and what it computes once.
//!
//! The request is untrusted and can be large (megabytes of JSON), and the
//! router evaluates filters on one thread for every source, so one request's
//! evaluation must not run long. Three things keep it short:
//!
//! - Work is counted in steps (a filter value matched against a value, a
//!   value compared or written out) and an evaluation stops at its budget; a
//!   filter that gave up counts as not matching.
//! - Nesting is bounded: a `$ref` may name a value holding a `$ref` to itself,
//!   which would otherwise recurse until the stack overflows.
//! - An `$in` list is turned into a hash set once per evaluation, so `$in`
//!   with a `$ref` to a list, applied to each element of another, is linear,
//!   not quadratic.

use super::js;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::RandomState;
use std::rc::Rc;

/// Steps one evaluation may take unless configured otherwise
/// (`[limits] filter_max_steps`): ample for filters on multi-megabyte bodies
/// evaluated in linear time, and tens of milliseconds at most.
pub const DEFAULT_MAX_STEPS: u64 = 2_000_000;

/// How deeply filter matching may nest (filter depth plus value depth, or a
/// `$ref` chain): well past any real filter, well within the stack.
const MAX_DEPTH: u32 = 512;

/// `$in` lists shorter than this are scanned: a set would cost more.
const SET_THRESHOLD: usize = 16;

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
    /// The request part (`headers`, `body`, `query`, `path`) whose filter did
    /// not match or ran out of steps; the parts after it are not evaluated.
    pub failed_part: Option<&'static str>,
}

/// The budget ran out, or matching nested too deeply: the evaluation unwinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp;

/// One evaluation's state: the budget left, the nesting and the `$in` sets
/// built so far.
pub(super) struct Eval {
    max_steps: u64,
    steps: Cell<u64>,
    depth: Cell<u32>,
    /// Keyed by the address of the `$in` list, in the filter or the request,
    /// which both stay put while the filter is evaluated.
    sets: RefCell<HashMap<usize, Rc<InSet>>>,
}

impl Eval {
    pub fn new(max_steps: u64) -> Eval {
        Eval {
            max_steps,
            steps: Cell::new(0),
            depth: Cell::new(0),
            sets: RefCell::default(),
        }
    }

    /// Takes `steps` steps; `GaveUp` once the budget is spent.
    pub fn charge(&self, steps: u64) -> Result<(), GaveUp> {
        let taken = self.steps.get().saturating_add(steps);
        self.steps.set(taken);
        if taken <= self.max_steps {
            Ok(())
        } else {
            Err(GaveUp)
        }
    }

    /// Runs `nested` one level deeper, taking a step; `GaveUp` past the
    /// budget or the depth limit.
    pub fn nest<T, E: From<GaveUp>>(&self, nested: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.charge(1)?;
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            // Counted as work so that the evaluation reports giving up.
            self.steps.set(self.max_steps.saturating_add(1));
            return Err(GaveUp.into());
        }
        self.depth.set(depth + 1);
        let result = nested();
        self.depth.set(depth);
        result
    }

    /// The outcome of `matched`; `failed_part` names the request part that
    /// decided a failure, when there is one.
    pub fn finish(
        &self,
        matched: Result<bool, GaveUp>,
        failed_part: Option<&'static str>,
    ) -> Evaluation {
        let steps = self.steps.get();
        let gave_up = matched.is_err() || steps > self.max_steps;
        Evaluation {
            matched: matched == Ok(true) && !gave_up,
            steps,
            gave_up,
            failed_part,
        }
    }

    /// Whether `list` (an `$in` operand) holds `value` as
    /// `Array.prototype.includes` decides; `None` when the list holds a value
    /// `$in` does not accept (not a string or number). Long lists are looked
    /// up in a set built once per evaluation.
    pub fn list_holds(&self, list: &[Value], value: &Value) -> Result<Option<bool>, GaveUp> {
        if list.len() < SET_THRESHOLD {
            self.charge(list.len() as u64)?;
            if !list.iter().all(InSet::accepts) {
                return Ok(None);
            }
            return Ok(Some(
                list.iter().any(|item| js::same_value_zero(item, value)),
            ));
        }
        let set = self.set_of(list)?;
        self.charge(1)?;
        Ok(set.valid.then(|| set.holds(value)))
    }

    fn set_of(&self, list: &[Value]) -> Result<Rc<InSet>, GaveUp> {
        let key = list.as_ptr() as usize;
        if let Some(set) = self.sets.borrow().get(&key) {
            return Ok(set.clone());
        }
        self.charge(list.len() as u64)?;
        let set = Rc::new(InSet::new(list));
        self.sets.borrow_mut().insert(key, set.clone());
        Ok(set)
    }
}

/// The strings and numbers of an `$in` list. Hashed with random keys, so a
/// request cannot be made of colliding values.
struct InSet {
    valid: bool,
    members: HashSet<Member, RandomState>,
}

/// A string, or a number by its value (`1` and `1.0` are one member).
#[derive(PartialEq, Eq, Hash)]
enum Member {
    Text(String),
    Number(u64),
}

impl InSet {
    fn new(list: &[Value]) -> InSet {
        let valid = list.iter().all(InSet::accepts);
        let members = if valid {
            list.iter().filter_map(Member::of).collect()
        } else {
            HashSet::default()
        };
        InSet { valid, members }
    }

    fn accepts(item: &Value) -> bool {
        item.is_string() || item.is_number()
    }

    fn holds(&self, value: &Value) -> bool {
        Member::of(value).is_some_and(|member| self.members.contains(&member))
    }
}

impl Member {
    fn of(value: &Value) -> Option<Member> {
        match value {
            Value::String(s) => Some(Member::Text(s.clone())),
            Value::Number(n) => {
                let n = js::number(n);
                // -0 is 0, and NaN is in no list.
                let n = if n == 0.0 { 0.0 } else { n };
                (!n.is_nan()).then(|| Member::Number(n.to_bits()))
            }
            _ => None,
        }
    }
}
