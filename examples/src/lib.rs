//! Library code of the cachelayer examples, shared by the runnable examples and the integration
//! tests.
//!
//! - [`proxy`]: the caching reverse proxy behind `cargo run -p examples --example reverse_proxy`,
//!   as a library so that tests can start a real one on `127.0.0.1:0`;
//! - [`metrics`]: the proxy's Prometheus endpoint (`reverse_proxy --metrics ADDR`).

pub mod metrics;
pub mod proxy;
