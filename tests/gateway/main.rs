//! Integration tests: the real gateway (pingora ingress, sled store, delivery
//! lanes) against real HTTP sinks on 127.0.0.1.

mod address_policy;
mod api;
mod api_safety;
mod auth;
mod cli;
mod common;
mod delivery;
mod disk;
mod filter_budget;
mod filters;
mod hookdeck_api;
mod ingress;
mod ingress_hostile;
mod issues;
mod jobs_indexes;
mod outbound;
mod outbound_limits;
mod outbound_lists;
mod outbound_reference;
mod process;
mod restart;
mod retention;
mod retries;
mod rules;
mod scale;
mod standard_webhooks_libraries;
mod transform_sandbox;
