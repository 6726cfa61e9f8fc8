//! Metrics on the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): counters,
//! histograms and gauges that a recorder installed by the application (Prometheus, StatsD, ...)
//! exports. Without the feature nothing here is compiled in; without a recorder, every call
//! costs next to nothing.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `cachelayer_requests_total` | counter | `outcome`: `hit`, `stale-hit`, `stale-while-revalidate`, `revalidated`, `stale-if-error`, `miss`, `refreshed`, `forwarded-by-request`, `bypass`, `not-cached` | responses the cache answered, by what it did |
//! | `cachelayer_hit_bytes_total` | counter | | body bytes served from the store (hits, stale, revalidated) |
//! | `cachelayer_stored_total` | counter | | responses from the origin that are being stored |
//! | `cachelayer_not_stored_total` | counter | `reason`: `no-store`, `private`, `set-cookie`, `no-freshness-information`, ... (the `CacheInfo::detail` tokens) | responses from the origin not stored, by why |
//! | `cachelayer_store_duration_seconds` | histogram | `store` ([`Store::kind`]: `memory`, `sqlite`, `redis`, `tiered`, ...), `op`: `read`, `write`, `freshen`, `invalidate` | how long store operations took, in seconds, failed ones included |
//! | `cachelayer_store_errors_total` | counter | `store`, `op` | store operations that failed or timed out (each is a miss or an unstored response) |
//! | `cachelayer_store_entries` | gauge | `store` | entries in the store, as of the last `Cache::record_store_size` (feature `metrics`) |
//! | `cachelayer_store_bytes` | gauge | `store` | estimated bytes of the stored entries, as of the last `record_store_size` |
//!
//! Labels are fixed sets of short tokens: no URL, key or host is ever a label.
//!
//! A read that the store answers at once (the memory store) is timed with two reads of the
//! monotonic clock ([`Instant::now`](std::time::Instant::now)), only with the feature on (or
//! while a tracing span records store timings).
//!
//! [`Store::kind`]: cachelayer_store::Store::kind

use crate::health::StoreOp;
use std::time::{Duration, Instant};

/// When a store operation started, kept only when something measures it: the `metrics`
/// feature, or a span that records store timings. Otherwise nothing reads the clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpStart(Option<Instant>);

impl OpStart {
    /// Not timed.
    pub(crate) const UNTIMED: OpStart = OpStart(None);

    /// Now, when the `metrics` feature is on or `traced` (a span records the timing).
    #[inline]
    pub(crate) fn now(traced: bool) -> Self {
        if cfg!(feature = "metrics") || traced {
            OpStart(Some(Instant::now()))
        } else {
            OpStart::UNTIMED
        }
    }

    /// The time since the start; `None` when not timed.
    #[inline]
    pub(crate) fn elapsed(self) -> Option<Duration> {
        self.0.map(|started| started.elapsed())
    }
}

#[cfg(feature = "metrics")]
mod enabled {
    use crate::health::StoreOp;
    use crate::info::CacheOutcome;
    use std::time::Duration;

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

    pub(crate) fn store_error(store: &'static str, op: StoreOp) {
        metrics::counter!("cachelayer_store_errors_total", "store" => store, "op" => op.name())
            .increment(1);
    }

    pub(crate) fn store_time(store: &'static str, op: StoreOp, took: Duration) {
        metrics::histogram!(
            "cachelayer_store_duration_seconds",
            "store" => store,
            "op" => op.name()
        )
        .record(took.as_secs_f64());
    }

    pub(crate) fn store_size(store: &'static str, entries: u64, bytes: u64) {
        metrics::gauge!("cachelayer_store_entries", "store" => store).set(entries as f64);
        metrics::gauge!("cachelayer_store_bytes", "store" => store).set(bytes as f64);
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use crate::health::StoreOp;
    use crate::info::CacheOutcome;
    use std::time::Duration;

    pub(crate) fn request(_: CacheOutcome) {}
    pub(crate) fn hit_bytes(_: usize) {}
    pub(crate) fn stored() {}
    pub(crate) fn not_stored(_: &'static str) {}
    pub(crate) fn store_error(_: &'static str, _: StoreOp) {}
    pub(crate) fn store_time(_: &'static str, _: StoreOp, _: Duration) {}
}

#[cfg(feature = "metrics")]
pub(crate) use enabled::store_size;
pub(crate) use enabled::{hit_bytes, not_stored, request, store_error, store_time, stored};

/// Records a finished store operation: its duration (histogram, and `span`'s `store_*_us`
/// field when it records).
pub(crate) fn store_op(store: &'static str, op: StoreOp, started: OpStart, span: &tracing::Span) {
    if let Some(took) = started.elapsed() {
        store_time(store, op, took);
        crate::trace::record_store_time(span, op, took);
    }
}
