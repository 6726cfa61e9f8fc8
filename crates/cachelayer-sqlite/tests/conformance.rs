//! The store conformance suite on [`SqliteStore`] (a file in a temporary directory), including
//! the corrupt-record check, and on a [`TieredStore`] of a [`MemoryStore`] in front of one.

use cachelayer_sqlite::SqliteStore;
use cachelayer_store::{CacheKey, MemoryStore, Store, StoreFuture, StoredResponse, TieredStore};
use std::sync::Arc;
use tempfile::TempDir;

/// A store in a fresh temporary directory, deleted with it.
#[derive(Debug)]
struct TempSqlite {
    store: SqliteStore,
    _dir: TempDir,
}

impl Store for TempSqlite {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        self.store.get(key)
    }
    fn corrupt_records_dropped(&self) -> u64 {
        self.store.corrupt_records_dropped()
    }
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        self.store.put(key, entry)
    }
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        self.store.remove(key)
    }
    fn clear(&self) -> StoreFuture<()> {
        self.store.clear()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        self.store.keys()
    }
    fn len(&self) -> StoreFuture<u64> {
        self.store.len()
    }
}

async fn make_store() -> TempSqlite {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("cache.sqlite")).expect("open the store");
    TempSqlite { store, _dir: dir }
}

/// Writes `record` under `key` straight into the table, as a corrupted file would hold it.
async fn write_raw(store: &TempSqlite, key: CacheKey, record: Vec<u8>) {
    let conn = rusqlite::Connection::open(store.store.path()).expect("open the database");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn.execute(
        "INSERT INTO responses (key, record, size) VALUES (?1, ?2, length(?2))
         ON CONFLICT (key) DO UPDATE SET record = excluded.record, size = excluded.size",
        rusqlite::params![key.to_string(), record],
    )
    .expect("write a raw record");
}

cachelayer_store::store_conformance_tests!(make_store, corrupt = write_raw, counted);

mod memory_over_sqlite {
    use super::*;

    async fn make_tiered() -> TieredStore {
        TieredStore::new(Arc::new(MemoryStore::new()), Arc::new(make_store().await))
    }

    cachelayer_store::store_conformance_tests!(make_tiered);
}
