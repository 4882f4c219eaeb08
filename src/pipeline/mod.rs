//! What happens to a request between its ack and the delivery queue: each
//! connection of its source runs its rules and yields an event or an ignored event.

pub mod decision;
pub(crate) mod dedup;
pub mod filter;
mod retry;
mod router;
mod rules;
pub mod sample;
pub mod transform;
pub mod view;

pub use retry::{RetryPolicy, RetryStrategy, StatusMatcher};
pub use router::{Router, WakeLane};
pub use rules::{CompileContext, NamedTransformation, Rule, RuleSpec, TransformationSpec};
