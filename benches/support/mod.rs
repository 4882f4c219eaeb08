//! What the load harnesses share: their tokio runtimes and the local HTTP
//! server that plays the customer's endpoint.

use std::net::SocketAddr;
use tokio::runtime::Runtime;

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

/// Serves `app` on an ephemeral 127.0.0.1 port on `rt`; returns the address.
pub fn serve(rt: &Runtime, app: axum::Router) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind sink");
    let addr = listener.local_addr().expect("sink addr");
    rt.spawn(async move { axum::serve(listener, app).await.expect("sink server") });
    addr
}

/// CPU time (user + system) this process has used so far, from
/// `/proc/self/stat` (clock ticks of 10 ms). Per unit of work it varies far
/// less than throughput on a shared VM, whose steal time throughput absorbs.
pub fn process_cpu() -> std::time::Duration {
    const TICK: std::time::Duration = std::time::Duration::from_millis(10);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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
