//! The worker process (`hookgate transform-worker`): loads scripts and runs
//! them on request, one at a time, speaking the `wire` protocol on stdin and
//! stdout.
//!
//! # What contains a script
//!
//! * `RLIMIT_AS` (the pool's `max_memory_bytes`): an allocation beyond it
//!   fails, which aborts the worker (`'x'.repeat(1e9)`, quadratic `.bind()`
//!   chains).
//! * `RLIMIT_CPU`, raised before each command to the CPU time used so far
//!   plus the run's timeout and a second: should the gateway fail to kill a
//!   worker that overran, the kernel does (SIGXCPU, then SIGKILL at the hard
//!   limit).
//! * The gateway kills a worker (SIGKILL) whose reply is late, so promise
//!   loops and nested loops that boa's per-frame loop limit does not see end
//!   at the timeout.
//! * A native stack overflow inside boa (`JSON.stringify` or `String()` on
//!   values nested tens of thousands deep) aborts only the worker.
//! * The worker starts with an empty environment in `/`, so the gateway's
//!   secrets are not in its memory, and writes no core files.
//!
//! # Known gaps
//!
//! * No seccomp filter or namespaces: code that escaped boa through an engine
//!   bug would run with the gateway user's rights (files, network).
//! * Scripts loaded into the same worker share its address space: only such
//!   an escape would let one read another's globals or `process.env`.
//! * Killing a worker costs the scripts it held their warm state (globals),
//!   and the next runs load them again (milliseconds each).
//! * A script can make each of its own runs last up to the timeout, holding
//!   a worker meanwhile: many such events delay other connections' runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use super::engine::{forward_logs, Engine};
use super::wire::{self, read_frame, write_frame, Command, Reply};
use super::ScriptKey;

/// Scripts a worker keeps loaded; the least recently used one is dropped
/// for a newcomer (and loaded again when next run).
pub const MAX_LOADED_SCRIPTS: usize = 32;
/// Native stack for the thread running boa, which recurses on the Rust stack
/// when parsing, in `JSON.stringify` and in calls made through built-ins such
/// as `array.map(f)`: the 8 MiB default overflows on code that is still
/// within `max_recursion`. Only touched pages are committed.
const ENGINE_STACK_BYTES: usize = 64 << 20;
/// Largest command accepted: requests are bounded by the ingress body limit,
/// code by the API's; this only stops a garbled stream.
const MAX_COMMAND_BYTES: usize = 256 << 20;
/// CPU seconds a command may use beyond its timeout before the kernel stops
/// the worker.
const CPU_GRACE: Duration = Duration::from_secs(1);

/// Runs the worker until its stdin closes. Errors are the gateway's fault
/// (a garbled stream) or the OS's; the process then exits non-zero.
pub fn serve(max_memory_bytes: u64) -> io::Result<()> {
    // A worker that aborts (out of memory, native stack) leaves no core file:
    // hostile scripts could otherwise fill the disk with them.
    set_limit(libc::RLIMIT_CORE, 0, 0)?;
    set_limit(libc::RLIMIT_AS, max_memory_bytes, max_memory_bytes)?;
    let engine_thread = std::thread::Builder::new()
        .name("transform-worker".into())
        .stack_size(ENGINE_STACK_BYTES)
        .spawn(serve_commands)?;
    engine_thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the engine thread panicked")))
}

fn serve_commands() -> io::Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    let output = Rc::new(RefCell::new(BufWriter::new(io::stdout().lock())));
    let log_output = Rc::clone(&output);
    // A log frame that cannot be written means the gateway is gone; the next
    // reply's write reports it.
    forward_logs(Box::new(move |entry| {
        let _ = write_frame(&mut *log_output.borrow_mut(), &Reply::Log(entry.clone()));
    }));
    write_frame(&mut *output.borrow_mut(), &Reply::Ready)?;
    let mut scripts = LoadedScripts::default();
    loop {
        if input.buffer().is_empty() {
            // Never times out: this only spins a little before sleeping.
            wire::wait_readable(io::stdin().as_fd(), Duration::MAX)?;
        }
        let Some(command) = read_frame::<Command>(&mut input, MAX_COMMAND_BYTES)? else {
            return Ok(());
        };
        let reply = match command {
            Command::Load { key, script } => {
                limit_cpu_time(script.limits.timeout)?;
                let loaded = Engine::load(&script).map(|engine| scripts.insert(key, engine));
                Reply::Loaded(loaded)
            }
            Command::Run {
                key,
                request,
                context,
            } => match scripts.get(&key) {
                None => Reply::NotLoaded,
                Some(engine) => {
                    limit_cpu_time(engine.limits().timeout)?;
                    let ran = engine.run(request.into_owned(), &context);
                    Reply::Ran(ran.map(|output| output.request).map_err(|f| f.error))
                }
            },
        };
        write_frame(&mut *output.borrow_mut(), &reply)?;
    }
}

/// Loaded scripts, least recently used first out.
#[derive(Default)]
struct LoadedScripts {
    engines: HashMap<ScriptKey, (Engine, u64)>,
    clock: u64,
}

impl LoadedScripts {
    fn insert(&mut self, key: ScriptKey, engine: Engine) {
        if self.engines.len() >= MAX_LOADED_SCRIPTS && !self.engines.contains_key(&key) {
            let oldest = self
                .engines
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.engines.remove(&oldest);
            }
        }
        self.clock += 1;
        self.engines.insert(key, (engine, self.clock));
    }

    fn get(&mut self, key: &ScriptKey) -> Option<&mut Engine> {
        self.clock += 1;
        let (engine, used) = self.engines.get_mut(key)?;
        *used = self.clock;
        Some(engine)
    }
}

/// Lets the coming command use `timeout` plus [`CPU_GRACE`] more CPU time
/// (whole seconds, rounded up). The hard limit stays open so that the soft
/// one can be raised again for the next command.
fn limit_cpu_time(timeout: Duration) -> io::Result<()> {
    let budget = (timeout + CPU_GRACE).as_secs_f64().ceil() as u64;
    let soft = cpu_seconds_used()? + budget;
    set_limit(libc::RLIMIT_CPU, soft, libc::RLIM_INFINITY)
}

fn cpu_seconds_used() -> io::Result<u64> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec;
    // Rounded up: a partly used second counts.
    Ok(u64::try_from(seconds).unwrap_or(0) + 1)
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
