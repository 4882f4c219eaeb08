//! What the load harnesses share: their tokio runtimes, the local HTTP
//! server that plays the customer's endpoint, and CPU readings by thread.

pub mod sink;
pub mod wire;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::runtime::Runtime;

/// A bench's own folder beside the build output, i.e. on the project's disk
/// (fsync has to be real); removed when dropped.
pub fn bench_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hookgate-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Writes `text` as `dir/gateway.toml` and loads it; its path and the config.
pub fn save_config(dir: &Path, text: &str) -> (PathBuf, hookgate::Config) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).expect("write gateway.toml");
    let config =
        hookgate::Config::load(&path).unwrap_or_else(|e| panic!("bench config is invalid:\n{e}"));
    (path, config)
}

/// A multi-threaded runtime of its own, so that load, servers and sink do not
/// share worker threads.
pub fn runtime(name: &str, threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// CPU time (user + system) this process has used so far, from
/// `/proc/self/stat` (clock ticks of 10 ms). Per unit of work it varies far
/// less than throughput on a shared VM, whose steal time throughput absorbs.
fn process_cpu() -> Duration {
    cpu_of_stat(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU time of this process's threads so far, summed by name with a trailing
/// number dropped (`sled-io-3` → `sled-io`), the main thread as `main`. A
/// thread that ends between two readings takes its time with it; `CpuSplit`
/// shows that part apart.
fn thread_cpu() -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    let main_id = std::process::id().to_string();
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let name = match task.file_name().to_str() == Some(main_id.as_str()) {
            true => "main",
            false => stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("?", |(name, _)| name)
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-'),
        };
        *by_name.entry(name.to_string()).or_default() += cpu_of_stat(&stat);
    }
    by_name
}

/// utime + stime of a `/proc/.../stat` line.
pub fn cpu_of_stat(stat: &str) -> Duration {
    const TICK: Duration = Duration::from_millis(10);
    // Fields after the command name (which may hold spaces) start at `state`.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u32 = after_name
        .split_whitespace()
        .skip(11) // state … cmajflt; then utime, stime
        .take(2)
        .filter_map(|field| field.parse::<u32>().ok())
        .sum();
    TICK * ticks
}

/// This process's CPU time so far, in all and by thread name.
pub struct CpuReading {
    process: Duration,
    threads: BTreeMap<String, Duration>,
}

impl CpuReading {
    pub fn now() -> CpuReading {
        CpuReading {
            process: process_cpu(),
            threads: thread_cpu(),
        }
    }
}

/// The CPU this process used since a reading, by thread name.
pub struct CpuSplit {
    process: Duration,
    by_thread: Vec<(String, Duration)>,
}

impl CpuSplit {
    /// What was used since `start`, busiest thread name first.
    pub fn since(start: &CpuReading) -> CpuSplit {
        let mut by_thread: Vec<(String, Duration)> = thread_cpu()
            .into_iter()
            .map(|(name, now)| {
                let before = start.threads.get(&name).copied().unwrap_or_default();
                (name, now.saturating_sub(before))
            })
            .filter(|(_, used)| !used.is_zero())
            .collect();
        by_thread.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        CpuSplit {
            process: process_cpu().saturating_sub(start.process),
            by_thread,
        }
    }

    /// The whole process's CPU, in µs.
    pub fn process_micros(&self) -> f64 {
        self.process.as_secs_f64() * 1e6
    }

    /// `total µs per unit (name µs, name µs, …)`, per one of `units`.
    pub fn per(&self, units: u64) -> String {
        let micros = |d: Duration| d.as_secs_f64() * 1e6 / units.max(1) as f64;
        let mut parts: Vec<String> = self
            .by_thread
            .iter()
            .filter(|(_, used)| micros(*used) >= 0.05)
            .map(|(name, used)| format!("{name} {:.1}", micros(*used)))
            .collect();
        let in_threads: Duration = self.by_thread.iter().map(|(_, used)| *used).sum();
        let ended = self.process.saturating_sub(in_threads);
        if micros(ended) >= 0.05 {
            parts.push(format!("threads that ended {:.1}", micros(ended)));
        }
        let total = self.process_micros() / units.max(1) as f64;
        format!("{total:.1} µs ({})", parts.join(", "))
    }
}

/// `--flag` among the arguments, or the environment variable set to anything
/// but "" or "0".
pub fn flag(args: &[String], flag: &str, env: &str) -> bool {
    args.iter().any(|arg| arg == flag)
        || std::env::var(env).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `--flag V` or `--flag=V`, else the environment variable, else `default`.
/// Other arguments are ignored: `cargo bench` passes `--bench`.
pub fn setting(args: &[String], flag: &str, env: &str, default: f64) -> f64 {
    let from_args = args
        .iter()
        .enumerate()
        .find_map(|(i, arg)| match arg == flag {
            // A flag without a value fails to parse below, rather than being ignored.
            true => Some(args.get(i + 1).cloned().unwrap_or_default()),
            false => Some(arg.strip_prefix(flag)?.strip_prefix('=')?.to_string()),
        });
    let (name, value) = match from_args {
        Some(value) => (flag, value),
        None => match std::env::var(env) {
            Ok(value) => (env, value),
            Err(_) => return default,
        },
    };
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ => panic!("{name}={value:?} is not a non-negative number"),
    }
}

/// What the numbers were measured on.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    /// The bench disk's flush latency: a durable answer waits for at least
    /// one flush, so its p99 is the floor under a durable ack's p99.
    pub disk_flush: FlushLatency,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or("unknown CPU".to_string(), |(_, model)| {
                model.trim().to_string()
            });
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory_gib: kib_field(&meminfo, "MemTotal") / (1024.0 * 1024.0),
            disk_flush: FlushLatency::probe(),
        }
    }
}

/// `fdatasync` after appending 16 KiB (about a group commit's batch), timed
/// `FLUSH_PROBES` times in a bench folder on the project's disk.
pub struct FlushLatency {
    pub p50: Duration,
    pub p99: Duration,
}

const FLUSH_PROBES: usize = 300;

impl FlushLatency {
    fn probe() -> FlushLatency {
        use std::io::Write;
        let dir = bench_dir();
        let mut file = std::fs::File::create(dir.path().join("flush-probe")).expect("probe file");
        let batch = [b'x'; 16 * 1024];
        let mut took: Vec<Duration> = (0..FLUSH_PROBES)
            .map(|_| {
                file.write_all(&batch).expect("probe write");
                let started = std::time::Instant::now();
                file.sync_data().expect("probe fdatasync");
                started.elapsed()
            })
            .collect();
        took.sort_unstable();
        let at = |share: f64| took[((took.len() as f64 * share) as usize).min(took.len() - 1)];
        FlushLatency {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// E.g. `2 CPUs, AMD EPYC, 24 GiB RAM; load average 0.51 0.60 0.71`.
impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs, {}, {:.0} GiB RAM; load average at the start: {}; disk flush (fdatasync of 16 KiB) p50 {:.2} ms, p99 {:.2} ms",
            self.cpus,
            self.cpu_model,
            self.memory_gib,
            load_average(),
            self.disk_flush.p50.as_secs_f64() * 1e3,
            self.disk_flush.p99.as_secs_f64() * 1e3,
        )
    }
}

/// The 1, 5 and 15 minute load averages: other work on the machine shows here.
pub fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `NAME: N kB` line of a /proc file, in KiB (NaN when missing).
pub fn kib_field(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .unwrap_or(f64::NAN)
}

/// Bytes allocated on disk under `path`, like `du`.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let children: u64 = match meta.is_dir() {
        true => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| disk_usage(&entry.path()))
            .sum(),
        false => 0,
    };
    meta.blocks() * 512 + children
}
