//! Cluster mode's tests: several gateways on one throwaway PostgreSQL. They
//! run in a test binary of their own, one test at a time (`one_at_a_time`):
//! cargo runs test binaries one after another, so no other test's load
//! skews the seconds the rate tests count (a destination's limit must hold
//! to ±2 a second across the cluster), and each test has the database and
//! both cores to itself.

#![allow(dead_code)]

#[path = "../gateway/backend.rs"]
mod backend;
#[path = "../gateway/cluster.rs"]
mod cluster;
#[path = "../gateway/common.rs"]
mod common;
#[path = "../gateway/openapi_check.rs"]
mod openapi_check;
#[path = "../gateway/reference_shape.rs"]
mod reference_shape;
