//! Store health, for logging: a store that fails on every request during an outage is reported
//! when it starts failing, then at most once per interval with a count, and once more when it
//! answers again — never once per request.

use crate::metrics::OpStart;
use cachelayer_store::StoreError;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a store that keeps failing is reported again.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What the cache was doing when the store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    /// A lookup: the request went to the origin.
    Read,
    /// Storing a response: it was served, not stored.
    Write,
    /// Storing a response freshened by a 304: it was served, the store kept the old one.
    Freshen,
    /// Removing what an unsafe request invalidated.
    Invalidate,
}

impl StoreOp {
    fn consequence(self) -> &'static str {
        match self {
            StoreOp::Read => "a read failed: requests go to the origin",
            StoreOp::Write => "a write failed: responses are served but not stored",
            StoreOp::Freshen => "a write failed: freshened responses are served but not stored",
            StoreOp::Invalidate => "a removal failed: an invalidated response may stay stored",
        }
    }
}

impl StoreOp {
    /// A short name for logs and metric labels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreOp::Read => "read",
            StoreOp::Write => "write",
            StoreOp::Freshen => "freshen",
            StoreOp::Invalidate => "invalidate",
        }
    }
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the store is failing, and how often since the last report.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    failing: AtomicBool,
    /// Failures since the last report.
    failures: AtomicU64,
    /// Failures since the store started failing.
    outage_failures: AtomicU64,
    last_report: Mutex<Option<Instant>>,
    interval: Duration,
    /// The store's kind (`Store::kind`), for metric labels and log fields.
    store: &'static str,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth::new(REPORT_INTERVAL)
    }
}

impl StoreHealth {
    pub(crate) fn new(interval: Duration) -> Self {
        StoreHealth {
            failing: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            outage_failures: AtomicU64::new(0),
            last_report: Mutex::new(None),
            interval,
            store: "custom",
        }
    }

    /// The health of a store of kind `store` ([`Store::kind`](cachelayer_store::Store::kind)),
    /// reported every [`REPORT_INTERVAL`].
    pub(crate) fn for_store(store: &'static str) -> Self {
        StoreHealth {
            store,
            ..StoreHealth::new(REPORT_INTERVAL)
        }
    }

    /// The store's kind, as metric labels show it.
    pub(crate) fn store_kind(&self) -> &'static str {
        self.store
    }

    /// A store operation that started at `started` has finished (well or not): its duration
    /// goes to the `cachelayer_store_duration_seconds` histogram and to `span`.
    pub(crate) fn finished(&self, op: StoreOp, started: OpStart, span: &tracing::Span) {
        crate::metrics::store_op(self.store, op, started, span);
    }

    /// A store operation failed. Logs at WARN when the store starts failing, then at most once
    /// per interval; returns whether it logged.
    pub(crate) fn failure(&self, op: StoreOp, error: &StoreError) -> bool {
        crate::metrics::store_error(self.store, op);
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.outage_failures.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self
            .last_report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = !self.failing.swap(true, Ordering::AcqRel);
        let due = last.is_none_or(|at| now.duration_since(at) >= self.interval);
        if !started && !due {
            return false;
        }
        *last = Some(now);
        let failures = self.failures.swap(0, Ordering::Relaxed);
        if started {
            tracing::warn!(
                store = self.store,
                %op,
                %error,
                "cache store failing ({}); further failures are summarized every {:?}",
                op.consequence(),
                self.interval,
            );
        } else {
            tracing::warn!(
                store = self.store,
                %op,
                %error,
                failures,
                "cache store still failing: {failures} failed operations since the last report",
            );
        }
        true
    }

    /// A store operation succeeded. Cheap when the store is healthy (one atomic load); logs once
    /// when a failing store answers again.
    pub(crate) fn success(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        if self.failing.swap(false, Ordering::AcqRel) {
            let failures = self.outage_failures.swap(0, Ordering::Relaxed);
            self.failures.store(0, Ordering::Relaxed);
            if let Ok(mut last) = self.last_report.lock() {
                *last = None;
            }
            tracing::warn!(
                store = self.store,
                failures,
                "cache store answering again after {failures} failed operations"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error() -> StoreError {
        StoreError::backend(std::io::Error::other("down"))
    }

    #[test]
    fn an_outage_is_reported_at_its_start_then_per_interval() {
        let health = StoreHealth::new(Duration::from_secs(3600));
        assert!(
            health.failure(StoreOp::Read, &error()),
            "the first failure is reported"
        );
        let reported = (0..10_000)
            .filter(|_| health.failure(StoreOp::Write, &error()))
            .count();
        assert_eq!(reported, 0, "not again within the interval");
        health.success();
        assert!(
            health.failure(StoreOp::Read, &error()),
            "a new outage is reported"
        );
        let every_time = StoreHealth::new(Duration::ZERO);
        assert!(every_time.failure(StoreOp::Read, &error()));
        assert!(
            every_time.failure(StoreOp::Read, &error()),
            "the interval passed"
        );
    }
}
