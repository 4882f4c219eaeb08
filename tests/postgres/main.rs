//! The behaviour suite of `tests/gateway/` again, on the PostgreSQL store:
//! the same test functions (the modules are included from there, not
//! copied), each gateway on a database of its own on this process's
//! throwaway server (`hookgate::store::test_postgres`).
//!
//! Left out, and run on the embedded store only:
//! - what is about the embedded store itself: `restart` (journal files and
//!   sled restart details), `disk` and `health` (a full disk, the sled
//!   reserve), `retention` (journal segments), `jobs_indexes` (an index built
//!   over a sled store written before it), `process` (the binary killed on
//!   its data dir);
//! - what does not touch the store's backend: the console and portal pages
//!   (`console*`, `portal`, through Chromium), the CLI and the binary's
//!   commands (`cli`, `listen`, `logs`, `rule_tests`), the config (`scale`,
//!   `address_policy`, `filter_budget`), HTTP parsing (`ingress_hostile`,
//!   `api_safety`), the transformation sandbox, the published documents and
//!   reference libraries (`openapi_*`, `reference_responses`, `hookdeck_sdk`,
//!   `standard_webhooks_libraries`, `monitoring`);
//! - `cluster`, which runs on PostgreSQL in `tests/gateway/` already.

// Some helpers of the included modules serve only modules left out here.
#![allow(dead_code)]

#[path = "../gateway/api.rs"]
mod api;
#[path = "../gateway/auth.rs"]
mod auth;
mod backend;
#[path = "../gateway/common.rs"]
mod common;
#[path = "../gateway/delivery.rs"]
mod delivery;
#[path = "../gateway/filters.rs"]
mod filters;
#[path = "../gateway/hookdeck_api.rs"]
mod hookdeck_api;
#[path = "../gateway/hookdeck_config_bodies.rs"]
mod hookdeck_config_bodies;
#[path = "../gateway/hookdeck_config_objects.rs"]
mod hookdeck_config_objects;
#[path = "../gateway/hookdeck_delivery.rs"]
mod hookdeck_delivery;
#[path = "../gateway/hookdeck_events.rs"]
mod hookdeck_events;
#[path = "../gateway/hookdeck_issues.rs"]
mod hookdeck_issues;
#[path = "../gateway/hookdeck_tr_bk_bulk.rs"]
mod hookdeck_tr_bk_bulk;
#[path = "../gateway/ingress.rs"]
mod ingress;
#[path = "../gateway/issues.rs"]
mod issues;
#[path = "../gateway/metrics.rs"]
mod metrics;
#[path = "../gateway/openapi_check.rs"]
mod openapi_check;
#[path = "../gateway/outbound.rs"]
mod outbound;
#[path = "../gateway/outbound_limits.rs"]
mod outbound_limits;
#[path = "../gateway/outbound_lists.rs"]
mod outbound_lists;
#[path = "../gateway/reference_examples.rs"]
mod reference_examples;
#[path = "../gateway/reference_requests.rs"]
mod reference_requests;
#[path = "../gateway/reference_shape.rs"]
mod reference_shape;
#[path = "../gateway/retries.rs"]
mod retries;
#[path = "../gateway/rules.rs"]
mod rules;
#[path = "../gateway/trace_context.rs"]
mod trace_context;
