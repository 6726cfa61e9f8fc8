//! Request coalescing (nginx `proxy_cache_lock`, Varnish request coalescing): concurrent requests
//! that must go to the origin for one key send one request; the others wait for it to be stored,
//! then look the key up again.
//!
//! A *flight* is the one request in progress for a key. The first request to need the origin
//! leads it and holds a [`FlightGuard`]; requests that arrive meanwhile get a [`Waiter`], which
//! resolves when the guard is dropped (the response has been stored, or turned out not storable,
//! or the leader failed or was cancelled) or after the wait limit. Waiters then look the key up
//! again once, and go to the origin themselves if nothing usable was stored: an uncacheable
//! response is never handed to another request.
//!
//! Background revalidations (stale-while-revalidate) lead a flight too, so that at most one runs
//! per key at a time.

use cachelayer_policy::CacheKey;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// The flights in progress, by key. Shared by every clone of a layer.
#[derive(Default)]
pub(crate) struct Flights {
    /// Keys are digests, uniform already: a fast hasher (with a random seed) suffices. A
    /// flight's end is allocated by its first waiter: a flight nobody waits for (most) costs
    /// no allocation.
    in_progress: Mutex<HashMap<CacheKey, InProgress, foldhash::fast::RandomState>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A flight in progress: its leader's id, and its end once a request waits for it.
type InProgress = (u64, Option<Arc<Flight>>);

/// What joining a flight gives.
pub(crate) enum Join {
    /// No flight was in progress: this request leads one.
    Leader(FlightGuard),
    /// A flight is in progress: wait for it.
    Waiter(Waiter),
}

/// Held by the request that leads a flight; dropping it releases the waiters.
pub(crate) struct FlightGuard {
    flights: Arc<Flights>,
    key: CacheKey,
    id: u64,
}

/// One flight's end: set, then announced, when its guard is dropped.
#[derive(Default)]
struct Flight {
    ended: AtomicBool,
    notify: Notify,
}

/// A request waiting for another's flight.
pub(crate) struct Waiter {
    flight: Arc<Flight>,
}

impl Flights {
    /// Leads the flight for `key`, or waits for the one in progress.
    pub(crate) fn join(self: &Arc<Self>, key: &CacheKey) -> Join {
        let mut in_progress = self
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // One hash of the key for the lookup and the insert that follows it.
        let id = match in_progress.entry(key.clone()) {
            Entry::Occupied(mut entry) => {
                let flight = entry.get_mut().1.get_or_insert_with(Arc::default).clone();
                return Join::Waiter(Waiter { flight });
            }
            Entry::Vacant(entry) => {
                let id = self
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                entry.insert((id, None));
                id
            }
        };
        Join::Leader(FlightGuard {
            flights: self.clone(),
            key: key.clone(),
            id,
        })
    }

    /// The number of flights in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let mut in_progress = self
            .flights
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The entry is this guard's while it lives (a key's entry is replaced only once
        // removed); another flight's entry, should one be found, is put back.
        let flight = match in_progress.remove(&self.key) {
            Some((id, flight)) if id == self.id => flight,
            Some(other) => {
                in_progress.insert(self.key.clone(), other);
                None
            }
            None => None,
        };
        drop(in_progress);
        if let Some(flight) = flight {
            flight.ended.store(true, Ordering::Release);
            flight.notify.notify_waiters();
        }
    }
}

impl Waiter {
    /// Resolves when the flight ends, or after `limit`.
    pub(crate) fn wait(self, limit: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            // Registered before the flag is read: an end announced in between is not missed.
            let ended = self.flight.notify.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if self.flight.ended.load(Ordering::Acquire) {
                return;
            }
            let _ = tokio::time::timeout(limit, ended).await;
        })
    }
}

impl fmt::Debug for Flights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.in_progress.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Flights").field("in_progress", &n).finish()
    }
}

impl fmt::Debug for FlightGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightGuard")
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_per_key_and_waiters_wake_when_it_ends() {
        let flights = Arc::new(Flights::default());
        let key = CacheKey::custom("k");
        let Join::Leader(guard) = flights.join(&key) else {
            panic!("first is the leader")
        };
        let Join::Waiter(waiter) = flights.join(&key) else {
            panic!("second waits")
        };
        let Join::Leader(_other) = flights.join(&CacheKey::custom("other")) else {
            panic!("another key has its own flight")
        };
        let wait = tokio::spawn(waiter.wait(Duration::from_secs(30)));
        tokio::task::yield_now().await;
        assert!(!wait.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(flights.len(), 1, "only the other key's flight is left");
        assert!(
            matches!(flights.join(&key), Join::Leader(_)),
            "the next request leads again"
        );
    }

    /// A flight for one key: its leader's guard and a waiter.
    fn leader_and_waiter() -> (Arc<Flights>, FlightGuard, Waiter) {
        let flights = Arc::new(Flights::default());
        let key = CacheKey::custom("k");
        let Join::Leader(guard) = flights.join(&key) else {
            panic!("leader")
        };
        let Join::Waiter(waiter) = flights.join(&key) else {
            panic!("waiter")
        };
        (flights, guard, waiter)
    }

    #[tokio::test(start_paused = true)]
    async fn a_flight_that_ended_before_the_wait_began_does_not_hold_the_waiter() {
        let (_flights, guard, waiter) = leader_and_waiter();
        drop(guard);
        let started = tokio::time::Instant::now();
        waiter.wait(Duration::from_secs(30)).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "woken at once, not at the limit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded() {
        let (_flights, _guard, waiter) = leader_and_waiter();
        // With the clock paused, tokio jumps to the timeout instead of sleeping.
        tokio::time::timeout(Duration::from_secs(60), waiter.wait(Duration::from_secs(5)))
            .await
            .expect("the wait ends at its limit although the leader is still running");
    }
}
