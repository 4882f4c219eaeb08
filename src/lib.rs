//! hookgate: a self-hosted webhook gateway. See README.md and ../shared/design.md.

pub mod address_policy;
pub mod api;
pub mod api_client;
pub mod cluster;
pub mod config;
pub mod console;
pub mod delivery;
pub mod forwarded_path;
pub mod gateway;
pub mod health;
pub mod hookdeck_shape;
pub mod ids;
pub mod ingress;
pub mod issues;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod names;
pub mod outbound;
pub mod owner_only_file;
pub mod pipeline;
pub mod retention;
pub mod rule_tests;
pub mod sealing;
pub mod secret;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod trace_context;
pub mod verify;

/// sled allocates for every insert (copy-on-write nodes) and the ingress and
/// lanes for every request; mimalloc halves sled's per-insert cost against
/// glibc's allocator (BENCHMARKS.md, "What limits hookgate").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use config::Config;
pub use gateway::Gateway;
