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
mod hookdeck_config_bodies;
mod hookdeck_config_objects;
mod hookdeck_delivery;
mod hookdeck_events;
mod hookdeck_issues;
mod hookdeck_sdk;
mod hookdeck_tr_bk_bulk;
mod ingress;
mod ingress_hostile;
mod issues;
mod openapi_schema_b;
mod outbound;
mod outbound_limits;
mod outbound_lists;
mod outbound_reference;
mod process;
mod reference_shape;
mod restart;
mod retention;
mod retries;
mod rules;
mod scale;
mod standard_webhooks_libraries;
mod transform_sandbox;
