//! Prometheus metrics for the proxy (`reverse_proxy --metrics ADDR`): the cache's counters,
//! store durations and store size gauges (names in `cachelayer::metrics`), served as Prometheus
//! text at `http://ADDR/metrics`.

use cachelayer::Cache;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use std::net::SocketAddr;
use std::time::Duration;

/// How often [`record_store_size_every`] reads the store's size in the proxy.
pub const STORE_SIZE_PERIOD: Duration = Duration::from_secs(10);

/// The histogram buckets of `cachelayer_store_duration_seconds`, in seconds: from 50 µs (a
/// memory store) to a second (a store past its `store_timeout`).
pub const STORE_DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

/// A Prometheus recorder builder with the cache's histograms as Prometheus histograms
/// ([`STORE_DURATION_BUCKETS`]) rather than summaries.
///
/// # Errors
/// Never for these buckets (the builder rejects an empty list).
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Full("cachelayer_store_duration_seconds".to_owned()),
        STORE_DURATION_BUCKETS,
    )
}

/// Installs a Prometheus recorder as the process's `metrics` recorder, with an HTTP listener on
/// `addr` that answers every request (`GET /metrics`) with the current values, in Prometheus'
/// text format. Call it once, inside a Tokio runtime (the listener runs on it).
///
/// # Errors
/// When `addr` cannot be bound, or a recorder is already installed.
pub fn serve_prometheus(addr: SocketAddr) -> Result<(), BuildError> {
    prometheus_builder()?.with_http_listener(addr).install()
}

/// Spawns a task on the current Tokio runtime that sets the store size gauges
/// (`cachelayer_store_entries`, `cachelayer_store_bytes`) from `cache` now and then every
/// `period`; a store error leaves the gauges as they were. The task runs until the runtime ends.
pub fn record_store_size_every(cache: Cache, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = cache.record_store_size().await {
                tracing::debug!(%error, "cannot read the store's size for the metrics");
            }
            tokio::time::sleep(period).await;
        }
    })
}
