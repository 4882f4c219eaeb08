//! Outbound signing.
//!
//! * [`destination_auth`] — how hookgate authenticates itself to a destination
//!   (`auth_method` on a destination).
//! * [`standard_webhooks`] — a Standard Webhooks (`webhook-id` /
//!   `webhook-timestamp` / `webhook-signature`) signer with secret rotation;
//!   its `verify` is also what the inbound `svix` / `standard_webhooks`
//!   verifier uses.
//! * [`workspace_secret`] — the secret `hookgate_signature` signs with:
//!   generated and kept in `data_dir`, or set in gateway.toml; rotatable.
//! * [`mac`] — the HMAC / constant-time helpers everything else builds on.

pub mod destination_auth;
pub mod mac;
pub mod standard_webhooks;
pub mod workspace_secret;
