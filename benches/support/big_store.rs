//! What the benches over a big store share (`job_lists`, `console_lists`):
//! what filling it took, its gateway config, and starting the gateway on it. Kept
//! apart from `support` (every bench's), which would have them unused in
//! the others.

use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The one API key of the benches' gateways.
pub const API_KEY: &str = "bench-api-key";

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

/// The gateway's config in `dir`: listeners on free loopback ports, the
/// store in `dir/data`, `server_extra` added to `[server]` and `rest` after it.
pub fn write_config(dir: &Path, server_extra: &str, rest: &str) -> hookgate::Config {
    let text = format!(
        r#"delivery.signing_secret = "bench-signing-secret"
[server]
ingress_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
api_listen = "127.0.0.1:0"
api_keys = ["{API_KEY}"]
data_dir = "data"
shutdown_timeout_ms = 5000
{server_extra}
{rest}"#
    );
    crate::support::save_config(dir, &text).1
}

/// A time for the tables, in ms.
pub fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
