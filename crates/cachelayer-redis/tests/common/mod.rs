//! Helpers for the Redis store's tests: the test server's URL, unique namespaces, a store that
//! deletes its namespace when dropped, and raw access to the server.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use cachelayer_redis::RedisStore;
use cachelayer_store::{CacheKey, Store, StoreFuture, StoredResponse};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Redis the tests use: `CACHELAYER_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`
/// (`.ci/run` starts one). Tests fail, never skip, when it is not there.
pub fn redis_url() -> String {
    std::env::var("CACHELAYER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A namespace no other test (in this or another process) uses.
pub fn unique_namespace(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "cachelayer-test:{name}:{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A blocking connection to the test Redis, for checks behind the store's back.
pub fn raw_connection() -> redis::Connection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap_or_else(|e| panic!("the tests need Redis at {}: {e}", redis_url()))
}

/// Deletes every key of `namespace` (`SCAN MATCH`, blocking).
pub fn delete_namespace(namespace: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    let pattern = format!("{}:*", namespace.replace('*', "\\*"));
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query::<(u64, Vec<Vec<u8>>)>(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(keys).exec(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// A [`RedisStore`] on the test server in a fresh namespace, deleted when dropped.
#[derive(Debug)]
pub struct TestRedis {
    pub store: RedisStore,
}

impl TestRedis {
    /// Connects (and so fails when Redis is not running).
    pub async fn new(name: &str) -> TestRedis {
        Self::with(RedisStore::builder(redis_url()).namespace(unique_namespace(name))).await
    }

    /// Connects with `builder` (whose namespace should be unique).
    pub async fn with(builder: cachelayer_redis::RedisStoreBuilder) -> TestRedis {
        let store = builder.build().expect("a valid Redis URL");
        store
            .ping()
            .await
            .unwrap_or_else(|e| panic!("the tests need Redis at {}: {e}", redis_url()));
        TestRedis { store }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        delete_namespace(self.store.namespace());
    }
}

impl Store for TestRedis {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        self.store.get(key)
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
    fn corrupt_records_dropped(&self) -> u64 {
        self.store.corrupt_records_dropped()
    }
}

/// Writes `record` under `key`'s Redis key, bypassing the store.
pub async fn write_raw(store: &TestRedis, key: CacheKey, record: Vec<u8>) {
    redis::cmd("SET")
        .arg(store.store.redis_key(&key))
        .arg(record)
        .exec(&mut raw_connection())
        .unwrap();
}
