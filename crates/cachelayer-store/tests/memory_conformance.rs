//! The store conformance suite on [`MemoryStore`].

use cachelayer_store::MemoryStore;

async fn make_store() -> MemoryStore {
    MemoryStore::new()
}

cachelayer_store::store_conformance_tests!(make_store);
