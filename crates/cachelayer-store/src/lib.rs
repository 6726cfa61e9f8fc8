//! Storage for cachelayer.
//!
//! - [`Store`]: the object-safe async trait every store implements (get / put / remove / clear /
//!   keys), so a cache layer can hold any store as `Arc<dyn Store>`.
//! - [`StoredResponse`]: the stored-entry model, serializable (serde + postcard, versioned, with a
//!   BLAKE3 integrity digest, optionally keyed with an [`IntegrityKey`]) for persistent and shared
//!   stores, and [compactable](StoredResponse::compact) for memory stores.
//! - [`partial`]: partial entries, the stored parts of one response (RFC 9111 §3.3, §3.4).
//! - [`MemoryStore`]: the embedded default, on [`quick_cache`]'s concurrent cache (S3-FIFO
//!   eviction), bounded by bytes.
//! - `conformance` (feature `conformance`): the tests every store must pass.
//!
//! ```
//! use cachelayer_store::{MemoryStore, Store};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cachelayer_store::StoreError> {
//! let store = MemoryStore::builder().max_capacity(64 * 1024 * 1024).build();
//! assert_eq!(store.keys().await?.len(), 0);
//! # Ok(())
//! # }
//! ```

pub mod entry;
mod error;
mod inspect;
mod memory;
pub mod partial;
mod store;
mod tiered;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use cachelayer_policy::{CacheKey, Clock, ManualClock, SystemClock};
pub use entry::{
    COMPACT_BODY_LIMIT, DecodeError, FORMAT_VERSION, IntegrityKey, StalePolicy, StoredRequest,
    StoredResponse, compact_header_values, forget_header_values, join_body,
};
pub use error::StoreError;
pub use inspect::{EntryFilter, EntryInfo, EntryPredicate, default_delete, default_entries};
pub use memory::{DEFAULT_MAX_CAPACITY, MEMORY_ENTRY_OVERHEAD, MemoryStore, MemoryStoreBuilder};
pub use store::{PutNow, Store, StoreFuture};
pub use tiered::TieredStore;
