//! The metrics listener: `GET /metrics`, no key (bind it where only the
//! scraper reaches it; the default is loopback).

use super::Metrics;
use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// The content type of the text exposition format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `/metrics` on `listen` until `stopped` turns true.
pub async fn serve(
    metrics: Arc<Metrics>,
    listen: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics listener to {listen}"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/metrics", get(move || scrape(metrics.clone())));
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "metrics listener stopped");
        }
    });
    tracing::info!(%addr, "metrics listening");
    Ok((addr, task))
}

async fn scrape(metrics: Arc<Metrics>) -> impl IntoResponse {
    // Queue depths are read from the store: off the runtime threads.
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => ([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
