//! What the benches over a big store share (`job_lists`, `console_lists`):
//! its folder, what filling it took, and starting the gateway on it. Kept
//! apart from `support` (every bench's), which would have them unused in
//! the others.

use std::path::Path;
use std::time::Instant;
use tokio::runtime::Runtime;

/// A bench's own folder under `target/tmp`, removed when dropped.
pub fn bench_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hookgate-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Says what was stored (`what`) since `started`, and the store's size on disk.
pub fn report_stored(what: &str, started: Instant, data_dir: &Path) {
    println!(
        "stored {what} in {:.1} s ({:.0} MiB on disk)",
        started.elapsed().as_secs_f64(),
        crate::support::disk_usage(data_dir) as f64 / (1 << 20) as f64
    );
}

/// Starts the gateway on `config`, saying how long that took.
pub fn start_gateway(rt: &Runtime, config: &hookgate::Config) -> hookgate::Gateway {
    let started = Instant::now();
    let gateway = rt
        .block_on(hookgate::Gateway::start(config))
        .expect("hookgate starts");
    println!("Gateway::start: {:.2} s", started.elapsed().as_secs_f64());
    gateway
}
