//! [`TieredStore`]: a fast store in front of a larger or shared one.

use crate::inspect::{EntryFilter, EntryInfo};
use crate::{CacheKey, Store, StoreError, StoreFuture, StoredResponse};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Two stores as one: a small, fast `front` (typically a [`MemoryStore`](crate::MemoryStore))
/// in front of a `back` that holds everything (an SQLite file, a Redis shared by every instance).
///
/// - `get`: the front; on a miss, the back, and a back hit is copied into the front
///   ("promoted") so the next `get` does not leave the process.
/// - `put`: the front first, then the back. The front write comes first so that this process
///   sees the entry at once even when the back is slow or down.
/// - `remove`, `clear`, [`delete`](Store::delete): the back first, then the front, so that a
///   concurrent `get` cannot promote the entry back from the back after the front lost it (a
///   `get` that read the back just before can still promote it: removal is not atomic across
///   tiers). A [`EntryFilter::Custom`] predicate is called for an entry once per tier holding it.
/// - `keys`, [`entries`](Store::entries): the union of both tiers (for an entry in both, the
///   back's summary).
/// - `len`: the back's, which holds every entry (the front holds a subset: the recently written
///   and promoted ones). An entry the back failed to store is not counted.
/// - [`corrupt_records_dropped`](Store::corrupt_records_dropped): the sum of both tiers'.
///
/// **A failing back tier degrades to the front alone.** Each back failure is logged
/// (`tracing::warn!`) and counted ([`back_errors`](TieredStore::back_errors)):
/// - `get` answers from the front; a back error is a miss, and an error only when the front
///   failed too;
/// - `put` succeeds when the front stored the entry (and when only the back did);
/// - `keys`, `entries` and `len` answer from the front when the back fails;
/// - `remove`, `clear` and `delete` still apply to the front, then return the back's error:
///   the entry may still be in the back, and be promoted again once it answers.
///
/// A failing front is symmetrical for reads and writes (logged, the back answers); both failing
/// is the back's error.
///
/// Each tier keeps its own expiry: both must use the same clock as the cache layer.
///
/// ```
/// use cachelayer_store::{MemoryStore, Store, TieredStore};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cachelayer_store::StoreError> {
/// let front = Arc::new(MemoryStore::builder().max_capacity(16 * 1024 * 1024).build());
/// let back = Arc::new(MemoryStore::new()); // in practice: an SqliteStore or a RedisStore
/// let store = TieredStore::new(front, back);
/// assert_eq!(store.len().await?, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TieredStore {
    front: Arc<dyn Store>,
    back: Arc<dyn Store>,
    back_errors: Arc<AtomicU64>,
}

impl TieredStore {
    /// `front` in front of `back`.
    pub fn new(front: Arc<dyn Store>, back: Arc<dyn Store>) -> Self {
        TieredStore {
            front,
            back,
            back_errors: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The front tier.
    pub fn front(&self) -> &Arc<dyn Store> {
        &self.front
    }

    /// The back tier.
    pub fn back(&self) -> &Arc<dyn Store> {
        &self.back
    }

    /// How many operations of the back tier have failed (and were logged) since this store was
    /// made; clones share the count.
    pub fn back_errors(&self) -> u64 {
        self.back_errors.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("front", &self.front)
            .field("back", &self.back)
            .field("back_errors", &self.back_errors())
            .finish()
    }
}

/// Logs and counts a back-tier failure.
fn back_failed(counter: &AtomicU64, op: &'static str, error: &StoreError) {
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(op, %error, "cache back tier failed; using the front tier alone");
}

fn front_failed(op: &'static str, error: &StoreError) {
    tracing::warn!(op, %error, "cache front tier failed");
}

/// Combines the results of one operation on both tiers: the back's error when the back failed
/// and `back_error_wins`, else the first success.
fn both<T>(
    op: &'static str,
    counter: &AtomicU64,
    front: Result<T, StoreError>,
    back: Result<T, StoreError>,
    combine: impl FnOnce(Option<T>, Option<T>) -> T,
    back_error_wins: bool,
) -> Result<T, StoreError> {
    match (front, back) {
        (Ok(f), Ok(b)) => Ok(combine(Some(f), Some(b))),
        (Ok(f), Err(e)) => {
            back_failed(counter, op, &e);
            if back_error_wins {
                Err(e)
            } else {
                Ok(combine(Some(f), None))
            }
        }
        (Err(e), Ok(b)) => {
            front_failed(op, &e);
            Ok(combine(None, Some(b)))
        }
        (Err(f), Err(b)) => {
            front_failed(op, &f);
            back_failed(counter, op, &b);
            Err(b)
        }
    }
}

impl Store for TieredStore {
    fn kind(&self) -> &'static str {
        "tiered"
    }

    /// A hit in the front tier, at once; anything else goes through [`get`](Store::get).
    fn get_now(&self, key: &CacheKey) -> Option<Result<Option<Arc<StoredResponse>>, StoreError>> {
        match self.front.get_now(key) {
            Some(Ok(Some(entry))) => Some(Ok(Some(entry))),
            _ => None,
        }
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let from_front = self.front.get(key);
        let front = self.front.clone();
        let back = self.back.clone();
        let counter = self.back_errors.clone();
        let key = key.clone();
        Box::pin(async move {
            let front_error = match from_front.await {
                Ok(Some(entry)) => return Ok(Some(entry)),
                Ok(None) => None,
                Err(error) => {
                    front_failed("get", &error);
                    Some(error)
                }
            };
            match back.get(&key).await {
                Ok(Some(entry)) => {
                    if let Err(error) = front.put(key, entry.clone()).await {
                        front_failed("promote", &error);
                    }
                    Ok(Some(entry))
                }
                Ok(None) => Ok(None),
                Err(error) => {
                    back_failed(&counter, "get", &error);
                    match front_error {
                        Some(_) => Err(error),
                        None => Ok(None),
                    }
                }
            }
        })
    }

    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let to_front = self.front.put(key.clone(), entry.clone());
        let back = self.back.clone();
        let counter = self.back_errors.clone();
        Box::pin(async move {
            let front = to_front.await;
            let back = back.put(key, entry).await;
            both("put", &counter, front, back, |_, _| (), false)
        })
    }

    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let from_back = self.back.remove(key);
        let front = self.front.clone();
        let counter = self.back_errors.clone();
        let key = key.clone();
        Box::pin(async move {
            let back = from_back.await;
            let front = front.remove(&key).await;
            both(
                "remove",
                &counter,
                front,
                back,
                |f, b| f.unwrap_or(false) || b.unwrap_or(false),
                true,
            )
        })
    }

    fn clear(&self) -> StoreFuture<()> {
        let back = self.back.clear();
        let front = self.front.clone();
        let counter = self.back_errors.clone();
        Box::pin(async move {
            let back = back.await;
            let front = front.clear().await;
            both("clear", &counter, front, back, |_, _| (), true)
        })
    }

    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        let front = self.front.keys();
        let back = self.back.keys();
        let counter = self.back_errors.clone();
        Box::pin(async move {
            let front = front.await;
            let back = back.await;
            both(
                "keys",
                &counter,
                front,
                back,
                |f, b| {
                    let mut seen = HashSet::new();
                    b.into_iter()
                        .flatten()
                        .chain(f.into_iter().flatten())
                        .filter(|key| seen.insert(key.clone()))
                        .collect()
                },
                false,
            )
        })
    }

    fn len(&self) -> StoreFuture<u64> {
        let back = self.back.len();
        let front = self.front.clone();
        let counter = self.back_errors.clone();
        Box::pin(async move {
            match back.await {
                Ok(n) => Ok(n),
                Err(error) => {
                    back_failed(&counter, "len", &error);
                    front.len().await.map_err(|_| error)
                }
            }
        })
    }

    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        Box::pin(async move {
            let back = self.back.clone().entries().await;
            let front = self.front.clone().entries().await;
            both(
                "entries",
                &self.back_errors,
                front,
                back,
                |f, b| {
                    let mut seen = HashSet::new();
                    b.into_iter()
                        .flatten()
                        .chain(f.into_iter().flatten())
                        .filter(|info| seen.insert(info.key.clone()))
                        .collect()
                },
                false,
            )
        })
    }

    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        Box::pin(async move {
            let back = self.back.clone().delete(filter.clone()).await;
            let front = self.front.clone().delete(filter).await;
            // The back holds every entry: its count is the store's. When only the front
            // answered, the back's error is returned anyway (see `remove`).
            both(
                "delete",
                &self.back_errors,
                front,
                back,
                |f, b| b.or(f).unwrap_or(0),
                true,
            )
        })
    }

    /// The sum of both tiers' counts.
    fn corrupt_records_dropped(&self) -> u64 {
        self.front
            .corrupt_records_dropped()
            .saturating_add(self.back.corrupt_records_dropped())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use bytes::Bytes;
    use http::{HeaderMap, Method, StatusCode, Version};
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, SystemTime};

    /// A store that fails every operation while `down` is set, else delegates to a MemoryStore.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryStore,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                Err(StoreError::backend("the back tier is down"))
            } else {
                Ok(())
            }
        }
    }

    macro_rules! flaky {
        ($self:ident, $call:expr) => {
            match $self.check() {
                Ok(()) => $call,
                Err(e) => Box::pin(async move { Err(e) }),
            }
        };
    }

    impl Store for Flaky {
        fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
            flaky!(self, self.inner.get(key))
        }
        fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
            flaky!(self, self.inner.put(key, entry))
        }
        fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
            flaky!(self, self.inner.remove(key))
        }
        fn clear(&self) -> StoreFuture<()> {
            flaky!(self, self.inner.clear())
        }
        fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
            flaky!(self, self.inner.keys())
        }
        fn len(&self) -> StoreFuture<u64> {
            flaky!(self, self.inner.len())
        }
    }

    fn entry(body: &'static [u8]) -> Arc<StoredResponse> {
        let now = SystemTime::now();
        Arc::new(StoredResponse {
            request: crate::StoredRequest {
                method: Method::GET,
                url: "http://example.com/".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
            request_time: now,
            created_at: now,
            initial_age: Duration::ZERO,
            expires: Some(now + Duration::from_secs(60)),
            stale: crate::StalePolicy::default(),
            retain_until: Some(now + Duration::from_secs(600)),
        })
    }

    fn k(name: &str) -> CacheKey {
        CacheKey::custom(name)
    }

    fn tiers() -> (Arc<MemoryStore>, Arc<Flaky>, TieredStore) {
        let front = Arc::new(MemoryStore::new());
        let back = Arc::new(Flaky::default());
        let store = TieredStore::new(front.clone(), back.clone());
        (front, back, store)
    }

    #[tokio::test]
    async fn put_writes_both_and_a_back_hit_is_promoted() {
        let (front, back, store) = tiers();
        store.put(k("a"), entry(b"a")).await.unwrap();
        assert!(front.get(&k("a")).await.unwrap().is_some());
        assert!(back.get(&k("a")).await.unwrap().is_some());

        back.put(k("b"), entry(b"b")).await.unwrap();
        assert!(front.get(&k("b")).await.unwrap().is_none());
        let found = store.get(&k("b")).await.unwrap().unwrap();
        assert_eq!(found.body, Bytes::from_static(b"b"));
        assert!(
            front.get(&k("b")).await.unwrap().is_some(),
            "promoted into the front"
        );
    }

    #[tokio::test]
    async fn keys_are_the_union_and_len_is_the_back() {
        let (front, back, store) = tiers();
        store.put(k("both"), entry(b"1")).await.unwrap();
        front.put(k("front"), entry(b"2")).await.unwrap();
        back.put(k("back"), entry(b"3")).await.unwrap();
        let keys: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
        assert_eq!(
            keys,
            [k("both"), k("front"), k("back")].into_iter().collect()
        );
        assert_eq!(store.len().await.unwrap(), 2, "the back's count");
        let store = Arc::new(store);
        let entries = store.clone().entries().await.unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(store.clone().delete(EntryFilter::All).await.unwrap(), 2);
        assert!(front.keys().await.unwrap().is_empty());
        assert!(back.keys().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failing_back_degrades_to_the_front() {
        let (front, back, store) = tiers();
        store.put(k("a"), entry(b"a")).await.unwrap();
        back.down.store(true, Ordering::SeqCst);

        // Reads and writes go on with the front alone.
        assert!(store.get(&k("a")).await.unwrap().is_some(), "front hit");
        assert!(
            store.get(&k("missing")).await.unwrap().is_none(),
            "a miss, not an error"
        );
        store.put(k("b"), entry(b"b")).await.unwrap();
        assert!(
            store.get(&k("b")).await.unwrap().is_some(),
            "the front write is kept"
        );
        let keys: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
        assert_eq!(keys, [k("a"), k("b")].into_iter().collect());
        assert_eq!(store.len().await.unwrap(), 2, "the front's count");
        let as_arc = Arc::new(store.clone());
        assert_eq!(as_arc.clone().entries().await.unwrap().len(), 2);

        // Removals apply to the front but report the back's failure.
        assert!(store.remove(&k("a")).await.unwrap_err().is_backend());
        assert!(front.get(&k("a")).await.unwrap().is_none());
        assert!(store.clear().await.is_err());
        assert!(front.keys().await.unwrap().is_empty());
        assert!(as_arc.delete(EntryFilter::All).await.is_err());
        assert_eq!(
            store.back_errors(),
            8,
            "every back failure but the front hit is counted"
        );

        // Back again: the entry written before the outage is still there.
        back.down.store(false, Ordering::SeqCst);
        assert!(store.get(&k("a")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn both_tiers_failing_is_an_error() {
        let front = Arc::new(Flaky::default());
        let back = Arc::new(Flaky::default());
        let store = TieredStore::new(front.clone(), back.clone());
        front.down.store(true, Ordering::SeqCst);
        back.down.store(true, Ordering::SeqCst);
        assert!(store.get(&k("a")).await.is_err());
        assert!(store.put(k("a"), entry(b"a")).await.is_err());
        assert!(store.keys().await.is_err());
        assert!(store.len().await.is_err());

        // A failing front alone: the back answers.
        back.down.store(false, Ordering::SeqCst);
        store.put(k("a"), entry(b"a")).await.unwrap();
        assert!(store.get(&k("a")).await.unwrap().is_some());
        assert_eq!(store.keys().await.unwrap(), vec![k("a")]);
    }
}

/// The conformance suite on a memory store in front of another.
#[cfg(all(test, feature = "conformance"))]
mod memory_over_memory {
    use super::*;
    use crate::MemoryStore;

    async fn make_tiered() -> TieredStore {
        TieredStore::new(Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()))
    }

    crate::store_conformance_tests!(make_tiered);
}
