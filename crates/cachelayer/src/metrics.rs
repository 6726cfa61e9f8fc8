//! Metrics on the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): counters,
//! histograms and gauges that a recorder installed by the application (Prometheus, StatsD, ...)
//! exports. Without the feature nothing here is compiled in; with it, `set_enabled(false)`
//! turns every call off for a program that runs without a recorder.
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
//! monotonic clock ([`Instant::now`](std::time::Instant::now)), only with metrics on (or
//! while a tracing span records store timings).
//!
//! [`Store::kind`]: cachelayer_store::Store::kind

use crate::health::StoreOp;
use std::time::{Duration, Instant};

/// Whether this process records metrics (see [`set_enabled`]).
#[cfg(feature = "metrics")]
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns the cache's metrics on or off for the whole process (feature `metrics`), as the
/// facade's global recorder they feed is process-wide. Default: on.
///
/// Off, the cache makes no call to the facade and reads no clock to time store operations
/// (unless a tracing span records them). This is for a program built with the feature that runs
/// without a recorder: there every call would go to the facade's no-op recorder, about 400
/// instructions per request in the reverse proxy example, which turns metrics off unless
/// `--metrics` is given.
#[cfg(feature = "metrics")]
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Metrics are compiled in and turned on.
#[inline]
pub(crate) fn on() -> bool {
    #[cfg(feature = "metrics")]
    {
        ENABLED.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "metrics"))]
    {
        false
    }
}

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
        if on() || traced {
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

    // Labels written as literals make static metric keys: no allocation and no hashing of the
    // labels per call (about 780 instructions less per hit than labels from variables).

    /// The `outcome` label values, as literals.
    macro_rules! by_outcome {
        ($outcome:expr, $name:literal, $($variant:ident => $label:literal),* $(,)?) => {
            match $outcome {
                $(CacheOutcome::$variant => metrics::counter!($name, "outcome" => $label),)*
            }
        };
    }

    /// The `store` label values of the stores of this workspace, as literals; any other kind
    /// from its variable.
    macro_rules! by_store {
        ($kind:ident, $store:expr, $name:literal, $op:literal) => {
            match $store {
                "memory" => metrics::$kind!($name, "store" => "memory", "op" => $op),
                "sqlite" => metrics::$kind!($name, "store" => "sqlite", "op" => $op),
                "redis" => metrics::$kind!($name, "store" => "redis", "op" => $op),
                "tiered" => metrics::$kind!($name, "store" => "tiered", "op" => $op),
                other => metrics::$kind!($name, "store" => other, "op" => $op),
            }
        };
    }

    /// `by_store` for each operation.
    macro_rules! by_store_op {
        ($kind:ident, $store:expr, $op:expr, $name:literal) => {
            match $op {
                StoreOp::Read => by_store!($kind, $store, $name, "read"),
                StoreOp::Write => by_store!($kind, $store, $name, "write"),
                StoreOp::Freshen => by_store!($kind, $store, $name, "freshen"),
                StoreOp::Invalidate => by_store!($kind, $store, $name, "invalidate"),
            }
        };
    }

    pub(crate) fn request(outcome: CacheOutcome) {
        if !super::on() {
            return;
        }
        by_outcome!(
            outcome,
            "cachelayer_requests_total",
            Hit => "hit",
            StaleHit => "stale-hit",
            StaleWhileRevalidate => "stale-while-revalidate",
            Revalidated => "revalidated",
            StaleIfError => "stale-if-error",
            Miss => "miss",
            Refreshed => "refreshed",
            ForwardedByRequest => "forwarded-by-request",
            Bypass => "bypass",
            NotCached => "not-cached",
        )
        .increment(1);
    }

    pub(crate) fn hit_bytes(bytes: usize) {
        if !super::on() {
            return;
        }
        metrics::counter!("cachelayer_hit_bytes_total").increment(bytes as u64);
    }

    pub(crate) fn stored() {
        if !super::on() {
            return;
        }
        metrics::counter!("cachelayer_stored_total").increment(1);
    }

    pub(crate) fn not_stored(reason: crate::info::Detail) {
        if !super::on() {
            return;
        }
        metrics::counter!("cachelayer_not_stored_total", "reason" => reason.as_str()).increment(1);
    }

    pub(crate) fn store_error(store: &'static str, op: StoreOp) {
        if !super::on() {
            return;
        }
        by_store_op!(counter, store, op, "cachelayer_store_errors_total").increment(1);
    }

    pub(crate) fn store_time(store: &'static str, op: StoreOp, took: Duration) {
        if !super::on() {
            return;
        }
        by_store_op!(histogram, store, op, "cachelayer_store_duration_seconds")
            .record(took.as_secs_f64());
    }

    pub(crate) fn store_size(store: &'static str, entries: u64, bytes: u64) {
        if !super::on() {
            return;
        }
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
    pub(crate) fn not_stored(_: crate::info::Detail) {}
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

#[cfg(all(test, feature = "metrics"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::info::CacheOutcome;
    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::sync::Mutex;

    /// Keeps the labels of every metric registered.
    #[derive(Debug, Default)]
    struct Labels(Mutex<Vec<String>>);

    impl Labels {
        fn keep(&self, key: &Key) {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            self.0.lock().unwrap().push(labels.join(","));
        }
    }

    impl Recorder for Labels {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.keep(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.keep(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.keep(key);
            Histogram::noop()
        }
    }

    const OUTCOMES: [CacheOutcome; 10] = [
        CacheOutcome::Hit,
        CacheOutcome::StaleHit,
        CacheOutcome::StaleWhileRevalidate,
        CacheOutcome::Revalidated,
        CacheOutcome::StaleIfError,
        CacheOutcome::Miss,
        CacheOutcome::Refreshed,
        CacheOutcome::ForwardedByRequest,
        CacheOutcome::Bypass,
        CacheOutcome::NotCached,
    ];

    #[test]
    fn literal_labels_are_the_names_logs_use() {
        let labels = Labels::default();
        metrics::with_local_recorder(&labels, || {
            for outcome in OUTCOMES {
                request(outcome);
            }
            for store in ["memory", "sqlite", "redis", "tiered", "custom"] {
                for op in [
                    StoreOp::Read,
                    StoreOp::Write,
                    StoreOp::Freshen,
                    StoreOp::Invalidate,
                ] {
                    store_time(store, op, Duration::from_micros(1));
                    store_error(store, op);
                }
            }
        });
        let seen = labels.0.into_inner().unwrap();
        let mut expected: Vec<String> = OUTCOMES
            .iter()
            .map(|o| format!("outcome={}", o.as_str()))
            .collect();
        for store in ["memory", "sqlite", "redis", "tiered", "custom"] {
            for op in [
                StoreOp::Read,
                StoreOp::Write,
                StoreOp::Freshen,
                StoreOp::Invalidate,
            ] {
                let label = format!("store={store},op={}", op.name());
                expected.push(label.clone());
                expected.push(label);
            }
        }
        assert_eq!(seen, expected);
    }
}
