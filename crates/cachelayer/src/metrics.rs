//! Metrics on the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): counters a
//! recorder installed by the application (Prometheus, StatsD, ...) exports. Without the feature,
//! or without a recorder, every call here costs nothing or next to nothing.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `cachelayer_requests_total` | counter | `outcome`: `hit`, `stale-hit`, `stale-while-revalidate`, `revalidated`, `stale-if-error`, `miss`, `refreshed`, `forwarded-by-request`, `bypass`, `not-cached` | responses the cache answered, by what it did |
//! | `cachelayer_hit_bytes_total` | counter | | body bytes served from the store (hits, stale, revalidated) |
//! | `cachelayer_stored_total` | counter | | responses from the origin that are being stored |
//! | `cachelayer_not_stored_total` | counter | `reason`: `no-store`, `private`, `set-cookie`, `no-freshness-information`, ... (the `CacheInfo::detail` tokens) | responses from the origin not stored, by why |
//! | `cachelayer_store_errors_total` | counter | `op`: `read`, `write`, `freshen`, `invalidate` | store operations that failed (each is a miss or an unstored response) |
//!
//! Labels are fixed sets of short tokens: no URL, key or host is ever a label.

#[cfg(feature = "metrics")]
mod enabled {
    use crate::info::CacheOutcome;

    pub(crate) fn request(outcome: CacheOutcome) {
        metrics::counter!("cachelayer_requests_total", "outcome" => outcome.as_str()).increment(1);
    }

    pub(crate) fn hit_bytes(bytes: usize) {
        metrics::counter!("cachelayer_hit_bytes_total").increment(bytes as u64);
    }

    pub(crate) fn stored() {
        metrics::counter!("cachelayer_stored_total").increment(1);
    }

    pub(crate) fn not_stored(reason: &'static str) {
        metrics::counter!("cachelayer_not_stored_total", "reason" => reason).increment(1);
    }

    pub(crate) fn store_error(op: &'static str) {
        metrics::counter!("cachelayer_store_errors_total", "op" => op).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use crate::info::CacheOutcome;

    pub(crate) fn request(_: CacheOutcome) {}
    pub(crate) fn hit_bytes(_: usize) {}
    pub(crate) fn stored() {}
    pub(crate) fn not_stored(_: &'static str) {}
    pub(crate) fn store_error(_: &'static str) {}
}

pub(crate) use enabled::{hit_bytes, not_stored, request, store_error, stored};
