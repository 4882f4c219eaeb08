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
