//! The source of the current time.
//!
//! Every time-dependent decision in cachelayer takes "now" from a [`Clock`], so that tests of
//! expiry advance a [`ManualClock`] instead of sleeping.
//!
//! ```
//! use cachelayer_policy::{Clock, ManualClock};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
//! let before = clock.now();
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(60));
//! ```

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest instant cachelayer computes with: 9999-12-31T23:59:59Z, the last second RFC 3339
/// text, HTTP dates and every store's time encoding can hold. Expirations beyond it (a lifetime
/// of `u64::MAX` seconds, say) are clamped to it: "never stale" in practice.
pub fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(LATEST_UNIX_SECONDS)
}

/// [`latest`] in seconds since the Unix epoch.
pub const LATEST_UNIX_SECONDS: u64 = 253_402_300_799;

/// `t + d`, clamped to [`latest`]: time arithmetic on settings, per-request options and header
/// values never overflows (a plain `SystemTime + Duration` panics on overflow).
///
/// ```
/// use cachelayer_policy::clock::{add_saturating, latest};
/// use std::time::{Duration, SystemTime};
///
/// assert_eq!(add_saturating(SystemTime::now(), Duration::MAX), latest());
/// ```
pub fn add_saturating(t: SystemTime, d: Duration) -> SystemTime {
    let latest = latest();
    t.checked_add(d).map_or(latest, |sum| sum.min(latest))
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

// Compile-time check that `Clock` stays object safe.
const _: Option<&dyn Clock> = None;

/// The operating system's clock ([`SystemTime::now`]). The default clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests. Clones share the same time.
///
/// Resolution: nanoseconds; range: the Unix epoch to about the year 2554.
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos_since_epoch: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock that reads `start` until advanced or set. A `start` before the Unix epoch reads as
    /// the epoch.
    pub fn new(start: SystemTime) -> Self {
        let clock = ManualClock {
            nanos_since_epoch: Arc::new(AtomicU64::new(0)),
        };
        clock.set(start);
        clock
    }

    /// A clock that starts at the operating system's current time.
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos_since_epoch
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `to` (it may move backwards).
    pub fn set(&self, to: SystemTime) {
        let nanos = to
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.nanos_since_epoch.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.nanos_since_epoch.load(Ordering::SeqCst))
    }
}
