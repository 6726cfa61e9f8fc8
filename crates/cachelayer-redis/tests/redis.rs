//! RedisStore's own behaviour: keys and native expiry, namespaces, batched clearing, and failing
//! fast and recovering when Redis is down, unresponsive or restarted.
//!
//! Needs `redis-server` and the Redis at `CACHELAYER_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`); fails without them.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer_redis::RedisStore;
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{
    CacheKey, Clock, EntryFilter, IntegrityKey, ManualClock, Store, StoreError,
};
use common::{TestRedis, delete_namespace, raw_connection, redis_url, unique_namespace};
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn k(name: &str) -> CacheKey {
    CacheKey::custom(name)
}

fn pttl(redis_key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(redis_key)
        .query(&mut raw_connection())
        .unwrap()
}

fn exists(redis_key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(redis_key)
        .query::<i64>(&mut raw_connection())
        .unwrap()
        == 1
}

#[tokio::test]
async fn entries_live_under_namespace_keys_with_a_native_expiry() {
    let test = TestRedis::new("ttl").await;
    let store = &test.store;
    assert!(store.namespace().starts_with("cachelayer-test:ttl:"));
    let key = CacheKey::from_digest([0x5d; 16]);
    let redis_key = store.redis_key(&key);
    assert_eq!(
        redis_key,
        format!("{}:5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d", store.namespace())
    );

    let mut entry = sample_entry("http://example.com/ttl", &b"ttl"[..]);
    entry.retain_until = Some(SystemTime::now() + Duration::from_secs(10));
    store
        .put(key.clone(), Arc::new(entry.clone()))
        .await
        .unwrap();
    let ttl = pttl(&redis_key);
    assert!((9_000..=10_000).contains(&ttl), "PTTL {ttl}");
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(&redis_key)
        .query(&mut raw_connection())
        .unwrap();
    assert_eq!(raw, entry.encode(), "the value is the encoded record");

    // No retain_until: no expiry (and the previous one is gone).
    entry.retain_until = None;
    store
        .put(key.clone(), Arc::new(entry.clone()))
        .await
        .unwrap();
    assert_eq!(pttl(&redis_key), -1);

    // Already past retention: not written, and the previous entry is deleted.
    entry.retain_until = Some(SystemTime::now() - Duration::from_millis(1));
    store.put(key.clone(), Arc::new(entry)).await.unwrap();
    assert!(!exists(&redis_key));
    assert_eq!(store.errors(), 0);
}

#[tokio::test]
async fn retention_follows_the_store_clock() {
    let namespace = unique_namespace("clock");
    let clock = ManualClock::starting_now();
    let store = RedisStore::builder(redis_url())
        .namespace(&namespace)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let mut entry = sample_entry("http://example.com/clock", &b"clock"[..]);
    entry.retain_until = Some(clock.now() + Duration::from_secs(60));
    store.put(k("a"), Arc::new(entry.clone())).await.unwrap();
    let ttl = pttl(&store.redis_key(&k("a")));
    assert!((59_000..=60_000).contains(&ttl), "PTTL {ttl}");

    clock.advance(Duration::from_secs(61));
    assert!(
        store.get(&k("a")).await.unwrap().is_none(),
        "past retention"
    );
    assert!(!exists(&store.redis_key(&k("a"))), "and deleted when read");
    store.put(k("b"), Arc::new(entry)).await.unwrap();
    assert!(
        !exists(&store.redis_key(&k("b"))),
        "past retention by the store's clock: not written"
    );
    delete_namespace(&namespace);
}

#[tokio::test]
async fn namespaces_are_separate_even_with_glob_characters() {
    let base = unique_namespace("glob");
    let star = RedisStore::builder(redis_url())
        .namespace(format!("{base}*"))
        .build()
        .unwrap();
    let plain = RedisStore::builder(redis_url())
        .namespace(&base)
        .build()
        .unwrap();
    let nested = RedisStore::builder(redis_url())
        .namespace(format!("{base}:x"))
        .build()
        .unwrap();
    for (n, store) in [&star, &plain, &nested].into_iter().enumerate() {
        for i in 0..3 {
            let entry = sample_entry("http://example.com/ns", vec![n as u8; 4]);
            store
                .put(k(&format!("{n}-{i}")), Arc::new(entry))
                .await
                .unwrap();
        }
    }
    assert_eq!(star.len().await.unwrap(), 3);
    star.clear().await.unwrap();
    assert_eq!(star.len().await.unwrap(), 0);
    // `{base}:*` also matches `{base}:x:*`: a namespace nested in another is seen by it.
    assert_eq!(plain.len().await.unwrap(), 6);
    assert_eq!(nested.len().await.unwrap(), 3);
    nested.clear().await.unwrap();
    let keys: HashSet<CacheKey> = plain.keys().await.unwrap().into_iter().collect();
    assert_eq!(keys, (0..3).map(|i| k(&format!("1-{i}"))).collect());
    plain.clear().await.unwrap();
    assert_eq!(plain.len().await.unwrap(), 0);
}

#[tokio::test]
async fn clear_and_keys_walk_more_than_one_batch() {
    let test = TestRedis::new("batches").await;
    let store = &test.store;
    let mut pipe = redis::pipe();
    let record = sample_entry("http://example.com/many", &b"m"[..]).encode();
    for n in 0..1_234 {
        pipe.cmd("SET")
            .arg(store.redis_key(&k(&format!("many-{n}"))))
            .arg(&record)
            .ignore();
    }
    pipe.exec(&mut raw_connection()).unwrap();
    assert_eq!(store.keys().await.unwrap().len(), 1_234);
    assert_eq!(store.len().await.unwrap(), 1_234);
    assert!(store.get(&k("many-1000")).await.unwrap().is_some());
    let store = Arc::new(store.clone());
    assert_eq!(store.clone().entries().await.unwrap().len(), 1_234);
    let keys = vec![k("many-1"), k("many-2"), k("many-2"), k("absent")];
    assert_eq!(
        store.clone().delete(EntryFilter::Keys(keys)).await.unwrap(),
        2
    );
    let removed = store
        .clone()
        .delete(EntryFilter::custom(|info| {
            info.key.to_string().ends_with('7')
        }))
        .await
        .unwrap();
    assert_eq!(removed, 123, "many-7, many-17, ..., many-1227");
    assert_eq!(
        store.clone().delete(EntryFilter::All).await.unwrap(),
        1_234 - 2 - 123
    );
    store.clear().await.unwrap();
    assert_eq!(store.len().await.unwrap(), 0);
}

fn raw_get(redis_key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(redis_key)
        .query(&mut raw_connection())
        .unwrap()
}

fn raw_set(redis_key: &str, record: &[u8]) {
    redis::cmd("SET")
        .arg(redis_key)
        .arg(record)
        .exec(&mut raw_connection())
        .unwrap();
}

#[tokio::test]
async fn a_tampered_value_is_a_miss_deleted_and_counted() {
    let test = TestRedis::new("tampered").await;
    let store = &test.store;
    let key = CacheKey::from_digest([0x7a; 16]);
    let redis_key = store.redis_key(&key);
    let body = b"the body the origin sent, byte for byte";
    let entry = sample_entry("http://example.com/tampered", &body[..]);
    store.put(key.clone(), Arc::new(entry)).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_some());

    // One byte of the body changed in Redis, behind the store's back.
    let mut record = raw_get(&redis_key).unwrap();
    let at = record
        .windows(body.len())
        .position(|w| w == body)
        .expect("the body is in the record");
    record[at + 4] ^= 0x20;
    raw_set(&redis_key, &record);

    assert!(store.get(&key).await.unwrap().is_none(), "a miss");
    assert!(!exists(&redis_key), "deleted");
    assert_eq!(store.corrupt_records_dropped(), 1);
    assert!(store.get(&key).await.unwrap().is_none());
    assert_eq!(store.corrupt_records_dropped(), 1, "counted once");
    assert_eq!(store.errors(), 0, "a corrupt record is not a store error");

    // Listings drop them too.
    let other = k("listed");
    store
        .put(
            other.clone(),
            Arc::new(sample_entry("http://example.com/l", &b"l"[..])),
        )
        .await
        .unwrap();
    let mut record = raw_get(&store.redis_key(&other)).unwrap();
    let last = record.len() - 1;
    record[last] ^= 1;
    raw_set(&store.redis_key(&other), &record);
    let listed = Arc::new(store.clone()).entries().await.unwrap();
    assert!(listed.is_empty(), "left out of the listing");
    assert!(!exists(&store.redis_key(&other)), "and deleted");
    assert_eq!(store.corrupt_records_dropped(), 2);
}

#[tokio::test]
async fn with_an_integrity_key_only_its_holders_can_write_entries() {
    let namespace = unique_namespace("keyed");
    let key = IntegrityKey::derive(b"the caches' shared secret");
    let keyed = TestRedis::with(
        RedisStore::builder(redis_url())
            .namespace(&namespace)
            .integrity_key(key.clone()),
    )
    .await;
    let store = &keyed.store;
    assert!(store.has_integrity_key());
    assert!(format!("{store:?}").contains("integrity_key: true"));
    let entry = sample_entry("http://example.com/keyed", &b"genuine"[..]);
    store.put(k("a"), Arc::new(entry.clone())).await.unwrap();
    let record = raw_get(&store.redis_key(&k("a"))).unwrap();
    assert_eq!(record, entry.encode_keyed(&key));
    assert_eq!(record, store.encode(&entry));
    assert_ne!(record, entry.encode(), "not the plain digest");
    assert!(store.get(&k("a")).await.unwrap().is_some());

    // A writer without the key forges a record with a valid plain digest.
    let mut forged = sample_entry("http://example.com/keyed", &b"injected"[..]);
    forged.retain_until = None;
    raw_set(&store.redis_key(&k("a")), &forged.encode());
    assert!(store.get(&k("a")).await.unwrap().is_none(), "refused");
    assert!(!exists(&store.redis_key(&k("a"))), "and deleted");
    assert_eq!(store.corrupt_records_dropped(), 1);

    // Another key, or none, cannot read (or overwrite unnoticed) the keyed store's records.
    store.put(k("b"), Arc::new(entry.clone())).await.unwrap();
    let other_key = RedisStore::builder(redis_url())
        .namespace(&namespace)
        .integrity_key([9u8; 32])
        .build()
        .unwrap();
    assert!(other_key.get(&k("b")).await.unwrap().is_none());
    assert_eq!(other_key.corrupt_records_dropped(), 1);
    store.put(k("c"), Arc::new(entry.clone())).await.unwrap();
    let unkeyed = RedisStore::builder(redis_url())
        .namespace(&namespace)
        .build()
        .unwrap();
    assert!(!unkeyed.has_integrity_key());
    assert!(unkeyed.get(&k("c")).await.unwrap().is_none());
    assert_eq!(unkeyed.corrupt_records_dropped(), 1);
    assert_eq!(store.errors() + other_key.errors() + unkeyed.errors(), 0);
}

/// A port on 127.0.0.1 where nothing listens (just released by the OS).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs every operation once, checking each fails within `limit`; returns the errors.
async fn every_operation_fails(store: &RedisStore, limit: Duration) -> Vec<StoreError> {
    let entry = Arc::new(sample_entry("http://example.com/down", &b"down"[..]));
    let mut errors = Vec::new();
    macro_rules! op {
        ($name:literal, $call:expr) => {{
            let started = Instant::now();
            let result = $call.await;
            let took = started.elapsed();
            assert!(took < limit, "{} took {took:?}", $name);
            eprintln!("{}: {took:?} {:?}", $name, result.as_ref().err());
            errors.push(
                result
                    .err()
                    .unwrap_or_else(|| panic!("{} must fail", $name)),
            );
        }};
    }
    op!("get", store.get(&k("a")));
    op!("put", store.put(k("a"), entry.clone()));
    op!("remove", store.remove(&k("a")));
    op!("clear", store.clear());
    op!("keys", store.keys());
    op!("len", store.len());
    op!("ping", store.ping());
    errors
}

#[tokio::test]
async fn nothing_listening_fails_within_the_timeout() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let store = RedisStore::builder(&url)
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let errors = every_operation_fails(&store, Duration::from_millis(300 + 500)).await;
    assert_eq!(
        store.errors(),
        errors.len() as u64,
        "every failure is counted"
    );
    for error in &errors {
        assert!(error.is_backend() || error.is_timeout(), "{error}");
    }
    let started = Instant::now();
    let error = RedisStore::builder(&url)
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(300 + 500));
    assert!(error.is_backend() || error.is_timeout(), "{error}");
}

/// A server that accepts connections and never answers: every operation times out.
#[tokio::test]
async fn unresponsive_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let store = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .operation_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let errors = every_operation_fails(&store, Duration::from_millis(200 + 500)).await;
    for error in &errors {
        assert!(error.is_timeout(), "{error}");
    }
    assert_eq!(store.errors(), errors.len() as u64);
}

#[tokio::test]
async fn invalid_url_is_an_error() {
    let error = RedisStore::builder("http://127.0.0.1:6379")
        .build()
        .unwrap_err();
    assert!(error.is_backend(), "{error}");
}

/// A `redis-server` of the test's own on a spare port, shut down when dropped.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let own = OwnRedis { port, dir };
        own.start_again();
        own
    }

    fn start_again(&self) {
        let dir: &Path = self.dir.path();
        let status = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
            .arg("--dir")
            .arg(dir)
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .status()
            .unwrap_or_else(|e| panic!("the tests need redis-server on the PATH: {e}"));
        assert!(status.success(), "redis-server failed to start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    fn stop(&self) {
        if let Ok(mut conn) = redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        {
            // The server closes the connection instead of answering.
            let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").exec(&mut conn);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Redis stops and starts again on the same port: while it is down every operation fails
/// within the timeout; afterwards the same store works again without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_recovers_after_redis_restarts() {
    let server = OwnRedis::start();
    let store = RedisStore::builder(server.url())
        .namespace(unique_namespace("restart"))
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let entry = Arc::new(sample_entry("http://example.com/restart", &b"up"[..]));
    store.put(k("a"), entry.clone()).await.unwrap();
    assert!(store.get(&k("a")).await.unwrap().is_some());

    server.stop();
    let errors = every_operation_fails(&store, Duration::from_millis(300 + 500)).await;
    let down_errors = store.errors();
    assert!(down_errors >= errors.len() as u64);

    server.start_again();
    let started = Instant::now();
    loop {
        match store.put(k("b"), entry.clone()).await {
            Ok(()) => break,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "still failing after Redis came back: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    eprintln!(
        "the store worked again {:?} after Redis came back",
        started.elapsed()
    );
    assert!(store.get(&k("b")).await.unwrap().is_some());
    assert!(
        store.get(&k("a")).await.unwrap().is_none(),
        "the restarted server kept nothing"
    );
    assert_eq!(store.len().await.unwrap(), 1);
    store.clear().await.unwrap();
}
