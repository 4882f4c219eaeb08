//! The gateway's side of the worker processes: a bounded pool of them, a
//! bounded queue of callers waiting for one, and the exchange with a worker
//! under a wall-clock deadline.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{self, Command, Reply, HEADER_BYTES};
use super::{LogEntry, Script, ScriptKey, TransformError, TransformFailure, TransformOutput};

/// How long a new worker may take to start and set its limits.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Room beyond the output limit for a reply's JSON around the request.
const REPLY_OVERHEAD_BYTES: usize = 1 << 20;
/// Bytes read from a worker's stdout per system call.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// How a pool is made; pools with equal settings are one pool (see
/// [`WorkerPool::shared`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    /// The program started as `<worker_exe> transform-worker`: the hookgate
    /// binary.
    pub worker_exe: PathBuf,
    /// Worker processes at most; 0 means one per core.
    pub workers: usize,
    /// Address-space limit of each worker process.
    pub max_memory_bytes: u64,
    /// Callers that may wait for a worker before [`Admission::RejectWhenFull`]
    /// callers are turned away.
    pub queue: usize,
}

/// What a run does when every worker is busy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Admission {
    /// Wait for a worker however long the queue (routing: back-pressure on
    /// the router rather than failed events).
    Wait,
    /// Wait only while fewer than `queue` callers do, else fail with
    /// [`TransformError::Busy`] (API calls: a clear answer to retry later).
    RejectWhenFull,
}

/// Worker processes shared by every transformation that uses the pool.
pub struct WorkerPool {
    settings: PoolSettings,
    size: usize,
    state: Mutex<PoolState>,
    available: Condvar,
}

struct PoolState {
    idle: Vec<WorkerProcess>,
    /// Process ids of the workers that exist, idle or busy.
    live: Vec<u32>,
    /// Slots taken by workers being started.
    starting: usize,
    /// Callers blocked waiting for a worker.
    waiting: usize,
}

/// Pools alive in this process, so that configs loaded again (reloads, API
/// changes) keep using the warm workers of the one before.
static POOLS: Mutex<Vec<Weak<WorkerPool>>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerPool({:?}, size {})", self.settings, self.size)
    }
}

impl WorkerPool {
    /// The pool of this process with these settings, made if there is none.
    /// Workers start when first needed.
    pub fn shared(settings: PoolSettings) -> Arc<WorkerPool> {
        let mut pools = lock(&POOLS);
        pools.retain(|pool| pool.strong_count() > 0);
        if let Some(pool) = pools
            .iter()
            .filter_map(Weak::upgrade)
            .find(|pool| pool.settings == settings)
        {
            return pool;
        }
        let size = match settings.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let pool = Arc::new(WorkerPool {
            settings,
            size,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                live: Vec::new(),
                starting: 0,
                waiting: 0,
            }),
            available: Condvar::new(),
        });
        pools.push(Arc::downgrade(&pool));
        pool
    }

    /// The most worker processes this pool runs at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Process ids of the pool's workers (for operators and tests).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.state).live.clone()
    }

    /// Loads a script into one worker, reporting its load error if any.
    pub(super) fn load(
        &self,
        script: &Script,
        key: &ScriptKey,
        admission: Admission,
    ) -> Result<(), TransformError> {
        self.with_worker(script, admission, |worker| worker.load(script, key))?
    }

    pub(super) fn run(
        &self,
        script: &Script,
        key: &ScriptKey,
        admission: Admission,
        request: &Value,
        context: &Value,
    ) -> Result<TransformOutput, TransformFailure> {
        let mut logs = Vec::new();
        let ran = self.with_worker(script, admission, |worker| {
            worker.run(script, key, request, context, &mut logs)
        });
        match ran {
            Ok(Ok(request)) => Ok(TransformOutput { request, logs }),
            Ok(Err(error)) | Err(error) => Err(TransformFailure { error, logs }),
        }
    }

    /// Lends a worker to `exchange`; a worker lost in it (late or dead) is
    /// killed, and its slot is free for a fresh one.
    fn with_worker<T>(
        &self,
        script: &Script,
        admission: Admission,
        exchange: impl FnOnce(&mut WorkerProcess) -> Result<T, Lost>,
    ) -> Result<T, TransformError> {
        let mut worker = self.checkout(admission)?;
        match exchange(&mut worker) {
            Ok(answer) => {
                self.checkin(worker);
                Ok(answer)
            }
            Err(lost) => {
                let pid = worker.pid();
                let status = self.retire(worker);
                let error = match lost {
                    Lost::Late => TransformError::Timeout(script.limits.timeout),
                    Lost::Died => TransformError::WorkerDied(describe_exit(status)),
                };
                tracing::warn!(transformation = %script.name, pid, %error, "transformation worker killed");
                Err(error)
            }
        }
    }

    fn checkout(&self, admission: Admission) -> Result<WorkerProcess, TransformError> {
        let mut state = lock(&self.state);
        loop {
            while let Some(mut worker) = state.idle.pop() {
                if worker.is_alive() {
                    return Ok(worker);
                }
                // Died while idle (killed from outside): no run is lost.
                state.live.retain(|pid| *pid != worker.pid());
            }
            if state.live.len() + state.starting < self.size {
                state.starting += 1;
                drop(state);
                return self.start_worker();
            }
            if admission == Admission::RejectWhenFull && state.waiting >= self.settings.queue {
                return Err(TransformError::Busy(state.waiting));
            }
            state.waiting += 1;
            state = self
                .available
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
    }

    /// Starts a worker in a slot taken by `checkout`, giving the slot back if
    /// that fails so that waiting callers try again.
    fn start_worker(&self) -> Result<WorkerProcess, TransformError> {
        let started = WorkerProcess::start(&self.settings);
        let mut state = lock(&self.state);
        state.starting -= 1;
        match &started {
            Ok(worker) => state.live.push(worker.pid()),
            Err(_) => self.wake_one(state),
        }
        started
    }

    fn checkin(&self, worker: WorkerProcess) {
        let mut state = lock(&self.state);
        state.idle.push(worker);
        self.wake_one(state);
    }

    /// Kills a worker and frees its slot; returns how it ended.
    fn retire(&self, worker: WorkerProcess) -> io::Result<ExitStatus> {
        let pid = worker.pid();
        let status = worker.kill();
        let mut state = lock(&self.state);
        state.live.retain(|live| *live != pid);
        self.wake_one(state);
        status
    }

    fn wake_one(&self, state: MutexGuard<'_, PoolState>) {
        let someone_waits = state.waiting > 0;
        drop(state);
        if someone_waits {
            self.available.notify_one();
        }
    }
}

/// Why an exchange with a worker was abandoned.
enum Lost {
    /// No reply before the deadline.
    Late,
    /// The worker closed its stdout, or wrote something unreadable.
    Died,
}

impl From<io::Error> for Lost {
    fn from(_: io::Error) -> Self {
        Lost::Died
    }
}

/// A line for the error a run gets when its worker ended under it.
fn describe_exit(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match status.signal() {
            Some(libc::SIGABRT) => {
                "aborted: out of its memory limit or native stack, see the gateway's log".into()
            }
            Some(libc::SIGXCPU) => "stopped at its CPU time limit".into(),
            Some(libc::SIGKILL) => "killed".into(),
            Some(signal) => format!("killed by signal {signal}"),
            None => format!("exited with {status}"),
        },
        Err(error) => format!("its state is unknown: {error}"),
    }
}

/// One worker process and the gateway's ends of its pipes. Dropping it kills
/// the process, so no worker outlives its pool or keeps spinning.
struct WorkerProcess {
    child: Child,
    commands: ChildStdin,
    replies: FrameReader,
}

impl WorkerProcess {
    fn start(settings: &PoolSettings) -> Result<WorkerProcess, TransformError> {
        let unavailable = |what: String| TransformError::WorkerUnavailable(what);
        let exe = settings.worker_exe.display();
        let mut child = Process::new(&settings.worker_exe)
            .arg("transform-worker")
            .arg("--max-memory-bytes")
            .arg(settings.max_memory_bytes.to_string())
            .env_clear()
            // mimalloc otherwise reserves a 1 GiB arena up front, more than
            // the whole address-space limit.
            .env("MIMALLOC_ARENA_RESERVE", "0")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| unavailable(format!("cannot start {exe}: {e}")))?;
        let (Some(commands), Some(replies)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were requested");
        };
        let mut worker = WorkerProcess {
            child,
            commands,
            replies: FrameReader::new(replies),
        };
        match worker.receive(STARTUP_TIMEOUT, REPLY_OVERHEAD_BYTES, None) {
            Ok(Reply::Ready) => Ok(worker),
            _ => Err(unavailable(format!(
                "{exe} did not start as a transformation worker ({})",
                describe_exit(worker.kill())
            ))),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn load(
        &mut self,
        script: &Script,
        key: &ScriptKey,
    ) -> Result<Result<(), TransformError>, Lost> {
        self.send(&Command::Load {
            key: *key,
            script: std::borrow::Cow::Borrowed(script),
        })?;
        // What top-level code logs is not part of any run.
        match self.receive(script.limits.timeout, REPLY_OVERHEAD_BYTES, None)? {
            Reply::Loaded(loaded) => Ok(loaded),
            _ => Err(Lost::Died),
        }
    }

    /// Runs the script, loading it first if this worker does not hold it.
    fn run(
        &mut self,
        script: &Script,
        key: &ScriptKey,
        request: &Value,
        context: &Value,
        logs: &mut Vec<LogEntry>,
    ) -> Result<Result<Value, TransformError>, Lost> {
        let command = wire::encode(&Command::Run {
            key: *key,
            request: std::borrow::Cow::Borrowed(request),
            context: std::borrow::Cow::Borrowed(context),
        });
        let max_reply = script.limits.max_output_bytes + REPLY_OVERHEAD_BYTES;
        self.commands.write_all(&command)?;
        let mut reply = self.receive(script.limits.timeout, max_reply, Some(&mut *logs))?;
        if let Reply::NotLoaded = reply {
            if let Err(error) = self.load(script, key)? {
                return Ok(Err(error));
            }
            self.commands.write_all(&command)?;
            reply = self.receive(script.limits.timeout, max_reply, Some(logs))?;
        }
        match reply {
            Reply::Ran(ran) => Ok(ran),
            _ => Err(Lost::Died),
        }
    }

    fn send(&mut self, command: &Command) -> Result<(), Lost> {
        self.commands.write_all(&wire::encode(command))?;
        Ok(())
    }

    /// The next reply other than a log entry, which goes to `logs`.
    fn receive(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
        mut logs: Option<&mut Vec<LogEntry>>,
    ) -> Result<Reply, Lost> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.replies.next::<Reply>(deadline, max_bytes)? {
                Reply::Log(entry) => logs.iter_mut().for_each(|logs| logs.push(entry.clone())),
                reply => return Ok(reply),
            }
        }
    }

    /// SIGKILL, then reaps the process; returns how it ended (a worker that
    /// had already died keeps its own cause).
    fn kill(mut self) -> io::Result<ExitStatus> {
        let _ = self.child.kill();
        self.child.wait()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads frames from a worker's stdout, giving up at a deadline.
struct FrameReader {
    source: ChildStdout,
    buffer: Vec<u8>,
    /// Start of the unread bytes in `buffer`.
    start: usize,
}

impl FrameReader {
    fn new(source: ChildStdout) -> FrameReader {
        FrameReader {
            source,
            buffer: Vec::new(),
            start: 0,
        }
    }

    fn next<T: DeserializeOwned>(
        &mut self,
        deadline: Instant,
        max_bytes: usize,
    ) -> Result<T, Lost> {
        loop {
            if let Some(payload) = self.complete_frame(max_bytes)? {
                return Ok(wire::decode(&payload)?);
            }
            self.fill(deadline)?;
        }
    }

    /// The next frame's payload if all of it has arrived.
    fn complete_frame(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, Lost> {
        let unread = &self.buffer[self.start..];
        let Some(header) = unread.first_chunk::<HEADER_BYTES>() else {
            return Ok(None);
        };
        let length = wire::announced_length(*header);
        if length > max_bytes {
            return Err(Lost::Died);
        }
        if unread.len() < HEADER_BYTES + length {
            return Ok(None);
        }
        let payload = unread[HEADER_BYTES..HEADER_BYTES + length].to_vec();
        self.start += HEADER_BYTES + length;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        Ok(Some(payload))
    }

    /// Waits until the worker wrote something (or the deadline passed) and
    /// appends it to the buffer.
    fn fill(&mut self, deadline: Instant) -> Result<(), Lost> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if !wire::wait_readable(self.source.as_fd(), remaining)? {
            return Err(Lost::Late);
        }
        let mut chunk = vec![0; READ_CHUNK_BYTES];
        let read = io::Read::read(&mut self.source, &mut chunk)?;
        if read == 0 {
            return Err(Lost::Died);
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}
