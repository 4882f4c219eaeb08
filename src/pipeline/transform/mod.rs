//! Hookdeck-style JavaScript transformations running on `boa_engine`.
//!
//! User code registers a handler with
//! `addHandler('transform', (request, context) => { ...; return request; })`.
//!
//! # Execution model
//!
//! boa can be neither interrupted nor memory-limited, and some of its
//! built-ins overflow the native stack (which aborts the whole process), so
//! user code never runs in the gateway's process. It runs in worker
//! processes: the gateway's own binary started as `hookgate transform-worker`,
//! under OS limits (address space, CPU time), talking length-prefixed JSON
//! over its stdin and stdout (see `wire`). One [`WorkerPool`] per process
//! and pool settings serves every transformation: routing, `PUT
//! /transformations/run`, compile checks and `hookgate transform run`.
//!
//! Creating a boa context costs milliseconds and evaluating the source
//! hundreds of microseconds, so a worker keeps the scripts it loaded (the
//! most recently used [`worker::MAX_LOADED_SCRIPTS`], keyed by a hash of the
//! name, code, env and limits); a warm run only ships the request and the
//! result through the pipes. Consequences worth knowing:
//!
//! * Globals created by user code persist across events handled by the same
//!   worker (like Hookdeck's warm lambdas); nothing is shared between workers.
//! * Captured logs are reset for every run.
//! * `async` handlers are supported: returned promises are settled by running
//!   the job queue (there are no timers, so a promise awaiting nothing that
//!   settles only later is reported as never settled).
//! * A run that times out, or whose worker dies (memory limit, native stack
//!   overflow), fails alone: the worker is killed and a fresh one takes its
//!   slot when next needed. Logs made before are kept: workers stream them.
//!
//! # Request shape
//!
//! `request` is `{ headers, body, query, parsed_query, path }`: header names are
//! lower-cased, `body` is whatever JSON value the caller passed (a parsed
//! document or a raw string), `parsed_query` is derived from `query`
//! (repeated keys become arrays). From the returned object:
//!
//! * fields that are missing (or `undefined`) keep their inbound value; set
//!   `body = null` or `headers = {}` to clear them, and unknown fields are ignored;
//! * header names are lower-cased, numbers and booleans are stringified and
//!   `null` values drop the header;
//! * a changed `query` string always wins; `parsed_query` is only
//!   re-serialized into `query` when `query` itself was left untouched. The
//!   output `parsed_query` is always re-derived from the final `query`.
//!
//! The returned value is converted with `JSON.stringify` rules (`toJSON`
//! honoured, `undefined`/functions dropped, non-finite numbers become `null`),
//! except that `String`/`Number`/`Boolean` wrapper objects are not unwrapped.
//!
//! # Sandbox and limits
//!
//! boa exposes no file, network or process APIs; the only host objects added
//! are `addHandler`, `console` and `process.env` (frozen). The default module
//! loader is replaced because it would let `import()` read files.
//! Loop iterations (counted per function call), call depth, the VM stack and
//! the serialized output size are bounded inside the engine. Around it, the
//! worker process has an address-space limit, a CPU-time limit per run (a
//! backstop should the gateway not kill it) and an empty environment; the
//! wall-clock timeout is enforced by the gateway killing the worker (SIGKILL).
//! What is left is described in the worker module.

mod engine;
mod pool;
mod wire;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use pool::{Admission, PoolSettings, WorkerPool};

/// Bounds applied to loading the code and to every run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformLimits {
    /// Wall-clock budget of one run, from hand-off to a worker until its reply
    /// (time spent waiting for a free worker is not counted).
    pub timeout: Duration,
    /// Loop iterations allowed within one function call. Exceeding it aborts
    /// the whole run; `try/catch` cannot intercept it.
    pub max_loop_iterations: u64,
    /// Maximum JavaScript call depth.
    pub max_recursion: usize,
    /// Maximum size of the transformed request serialized as compact JSON.
    pub max_output_bytes: usize,
}

impl Default for TransformLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(1000),
            max_loop_iterations: 10_000_000,
            max_recursion: 256,
            max_output_bytes: 5 << 20,
        }
    }
}

/// One captured `console` call.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    /// `log`, `info`, `warn`, `error` or `debug`.
    pub level: String,
    /// Arguments joined with spaces; objects are JSON-stringified.
    pub message: String,
}

/// Why loading or running a transformation failed.
#[derive(Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TransformError {
    /// The code does not parse.
    #[error("compile error: {0}")]
    Compile(String),
    /// The code parsed but could not be loaded (top-level code threw).
    #[error("load error: {0}")]
    Load(String),
    /// Loading finished without `addHandler('transform', fn)`.
    #[error("no handler registered: call addHandler('transform', (request, context) => request)")]
    MissingHandler,
    /// The handler (or the promise it returned) threw.
    #[error("handler threw: {0}")]
    Threw(String),
    /// A single function call ran more loop iterations than allowed.
    #[error("loop iteration limit exceeded ({0} iterations in one function call)")]
    LoopLimit(u64),
    /// Call depth or VM stack exhausted.
    #[error("recursion limit exceeded: {0}")]
    StackLimit(String),
    /// The run did not finish in time; its worker was killed.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The handler returned something that is not a usable request.
    #[error("{0}")]
    InvalidResult(String),
    /// The transformed request serializes to more than the allowed bytes.
    #[error("transformed request exceeds the {0}-byte output limit")]
    OutputTooLarge(usize),
    /// The request handed to [`Transformation::run`] has the wrong shape.
    #[error("invalid input request: {0}")]
    InvalidInput(String),
    /// The worker process died during the run (address-space or CPU limit,
    /// native stack overflow, a bug in the engine); the text says how.
    #[error("the transformation's worker process died ({0}); the run was abandoned")]
    WorkerDied(String),
    /// No worker process could be started or talked to.
    #[error("no transformation worker available: {0}")]
    WorkerUnavailable(String),
    /// Every worker is busy and the queue in front of them is full.
    #[error(
        "all transformation workers are busy and {0} runs are already queued; try again later"
    )]
    Busy(usize),
}

/// A successful run.
#[derive(Debug)]
pub struct TransformOutput {
    /// `{ headers, body, query, parsed_query, path }`.
    pub request: Value,
    /// Console output of the run, in call order.
    pub logs: Vec<LogEntry>,
}

/// A failed run, with the console output captured before the failure.
#[derive(Debug)]
pub struct TransformFailure {
    /// What went wrong.
    pub error: TransformError,
    /// Console output before the failure (also for timeouts).
    pub logs: Vec<LogEntry>,
}

impl From<TransformError> for TransformFailure {
    fn from(error: TransformError) -> Self {
        Self {
            error,
            logs: Vec::new(),
        }
    }
}

/// What a worker needs to load a transformation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Script {
    name: String,
    code: String,
    env: BTreeMap<String, String>,
    limits: TransformLimits,
}

/// Identifies a script's loaded copy in the workers: a SHA-256 of everything
/// the script is made of, so that different code can never be taken for it.
type ScriptKey = [u8; 32];

impl Script {
    fn key(&self) -> ScriptKey {
        let encoded = serde_json::to_vec(self).expect("scripts serialize");
        Sha256::digest(encoded).into()
    }
}

/// A transformation loaded into a [`WorkerPool`]. Send + Sync; cheap to share
/// in an `Arc`.
pub struct Transformation {
    pool: Arc<WorkerPool>,
    script: Arc<Script>,
    key: ScriptKey,
    admission: Admission,
}

impl Transformation {
    /// Loads `code` into one worker, so that syntax errors, top-level throws,
    /// a missing `addHandler` and code that does not finish loading in time
    /// are reported now. Other workers load it when they first run it.
    /// `admission` says what runs do when every worker is busy.
    pub fn new(
        pool: &Arc<WorkerPool>,
        name: &str,
        code: &str,
        env: BTreeMap<String, String>,
        limits: TransformLimits,
        admission: Admission,
    ) -> Result<Transformation, TransformError> {
        let script = Arc::new(Script {
            name: name.to_owned(),
            code: code.to_owned(),
            env,
            limits,
        });
        let transformation = Transformation {
            pool: Arc::clone(pool),
            key: script.key(),
            script,
            admission,
        };
        transformation
            .pool
            .load(&transformation.script, &transformation.key, admission)?;
        Ok(transformation)
    }

    /// Blocking call (callers are on plain threads, not async reactors). Runs
    /// the handler on a free worker, waiting for one or answering
    /// [`TransformError::Busy`] as the admission says.
    pub fn run(
        &self,
        request: &Value,
        context: &Value,
    ) -> Result<TransformOutput, TransformFailure> {
        self.pool
            .run(&self.script, &self.key, self.admission, request, context)
    }
}
