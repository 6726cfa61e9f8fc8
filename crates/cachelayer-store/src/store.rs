use crate::{CacheKey, StoreError, StoredResponse};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`Store`] operation returns: boxed, `Send` and `'static`, so that a cache can hold
/// it across awaits without borrowing the store.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A place to keep stored responses, by [`CacheKey`].
///
/// Object safe: a cache holds its store as `Arc<dyn Store>`, and several caches may share one.
/// Every operation returns a `'static` future; implementations clone the handles they need
/// (connection pools, cache handles) into it.
///
/// Contract (checked by the `conformance` suite):
/// - `get` returns what the last `put` for the key stored, until it is removed, cleared, evicted,
///   or past its [`retain_until`](StoredResponse::retain_until), after which it returns `None`;
/// - a record that cannot be decoded is a miss (`Ok(None)`) and is removed, never an error;
/// - operations on different keys do not interfere; concurrent `put`s for one key leave one of
///   the entries whole.
#[allow(clippy::len_without_is_empty)] // `len` is a future; an `is_empty` would only repeat it.
pub trait Store: Send + Sync + Debug + 'static {
    /// The entry stored under `key`, if any.
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>>;

    /// Stores `entry` under `key`, replacing any previous entry.
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()>;

    /// Removes the entry under `key`; `true` when there was one.
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool>;

    /// Removes every entry.
    fn clear(&self) -> StoreFuture<()>;

    /// The keys of every entry (in no particular order).
    fn keys(&self) -> StoreFuture<Vec<CacheKey>>;

    /// The number of entries. The default counts [`keys`](Store::keys).
    fn len(&self) -> StoreFuture<u64> {
        let keys = self.keys();
        Box::pin(async move { Ok(keys.await?.len() as u64) })
    }
}

// Compile-time check that `Store` stays object safe.
const _: Option<&dyn Store> = None;

impl<T: Store + ?Sized> Store for Arc<T> {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        (**self).get(key)
    }
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        (**self).put(key, entry)
    }
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        (**self).remove(key)
    }
    fn clear(&self) -> StoreFuture<()> {
        (**self).clear()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        (**self).keys()
    }
    fn len(&self) -> StoreFuture<u64> {
        (**self).len()
    }
}
