//! How the API's listener serves its calls: sending a webhook job (`POST
//! /v1/webhook-jobs`, the data plane of outbound webhooks, as busy as the
//! ingress) goes straight to its handler; every other call goes through the
//! router, its key checked by `auth::require_key`.
//!
//! The router's way cost a sent job ~9k instructions of the ~104k its call
//! took (callgrind): the route lookup, the middleware's boxed future and the
//! clone of the route it calls next, the handler's extractors (a copy of
//! every header for the `traceparent` alone). Here the same steps run as
//! plain calls: the key and budget check (`auth::check_call`), the body read
//! by the same `Json` extractor (the same limits and errors), the handler.

use super::auth::check_call;
use super::webhook_jobs::{create, sent_trace};
use super::ApiState;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::serve::IncomingStream;
use axum::{Json, Router};
use futures_util::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tower_service::Service;

/// What `axum::serve` asks for each new connection: its `Calls`.
pub struct Connections {
    routes: Router,
    state: Arc<ApiState>,
}

impl Connections {
    /// `routes`: every call but sending a job (the API's router, the console's and
    /// the portal's pages).
    pub fn new(routes: Router, state: Arc<ApiState>) -> Connections {
        Connections { routes, state }
    }
}

impl<'a> Service<IncomingStream<'a, TcpListener>> for Connections {
    type Response = Calls;
    type Error = Infallible;
    type Future = Ready<Result<Calls, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, connection: IncomingStream<'a, TcpListener>) -> Self::Future {
        ready(Ok(Calls {
            routes: self.routes.clone(),
            state: self.state.clone(),
            client: ConnectInfo(*connection.remote_addr()),
        }))
    }
}

/// The calls of one connection.
#[derive(Clone)]
pub struct Calls {
    routes: Router,
    state: Arc<ApiState>,
    /// Told to every call (the limit on failed logins is per client address).
    client: ConnectInfo<SocketAddr>,
}

impl Service<Request> for Calls {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready, and so is sending a job.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(self.client);
        if sends_a_job(&request) {
            Either::Right(Box::pin(send_job(self.state.clone(), request)))
        } else {
            Either::Left(self.routes.call(request))
        }
    }
}

fn sends_a_job(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path() == "/v1/webhook-jobs"
}

/// What the router would do with the call, step by step.
async fn send_job(state: Arc<ApiState>, request: Request) -> Result<Response, Infallible> {
    let standing = match check_call(&state, &request) {
        Ok(standing) => standing,
        Err(refused) => return Ok(refused.into_response()),
    };
    let sent = sent_trace(request.headers());
    let body = Json::from_request(request, &()).await;
    let mut response = create(state, sent, body).await.unwrap_or_else(|e| e);
    if let Some(standing) = standing {
        standing.tell(response.headers_mut());
    }
    Ok(response)
}
