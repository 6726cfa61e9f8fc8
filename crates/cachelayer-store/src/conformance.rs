//! The conformance suite: the behaviour every [`Store`] must have (feature `conformance`).
//!
//! Each function takes an empty store and panics (with a message) on a violation of the
//! [`Store`] contract. [`store_conformance_tests!`](crate::store_conformance_tests) turns them
//! into one `#[tokio::test]` each for a store-making async function:
//!
//! ```text
//! async fn make_store() -> MyStore { MyStore::connect_to_an_empty_namespace().await }
//! cachelayer_store::store_conformance_tests!(make_store);
//! ```
//!
//! A store that serializes its entries also runs [`corrupt_record_is_a_miss`], given a function
//! that writes raw bytes under a key through the store's backend, bypassing
//! [`StoredResponse::encode`]:
//!
//! ```text
//! async fn write_raw(store: &MyStore, key: CacheKey, record: Vec<u8>) { /* SET / UPDATE ... */ }
//! cachelayer_store::store_conformance_tests!(make_store, corrupt = write_raw);
//! ```
//!
//! and, once it counts the corrupt records it drops ([`Store::corrupt_records_dropped`]),
//! [`corrupt_records_are_counted`] too: `store_conformance_tests!(make_store, corrupt = write_raw,
//! counted)`.
#![allow(clippy::unwrap_used)]

use crate::entry::FORMAT_VERSION;
use crate::{
    CacheKey, EntryFilter, EntryInfo, PutNow, StalePolicy, Store, StoredRequest, StoredResponse,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A stored response for `url` with `body`, fresh for an hour from now and retained until
/// `retain_until`.
pub fn sample_entry(url: &str, body: impl Into<Bytes>) -> StoredResponse {
    let now = SystemTime::now();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("etag", HeaderValue::from_static("\"v1\""));
    headers.append("set-cookie", HeaderValue::from_static("a=1"));
    headers.append("set-cookie", HeaderValue::from_static("b=2"));
    let mut request_headers = HeaderMap::new();
    request_headers.insert("accept", HeaderValue::from_static("*/*"));
    StoredResponse {
        request: StoredRequest {
            method: Method::GET,
            url: url.to_owned(),
            headers: request_headers,
        },
        status: StatusCode::OK,
        version: Version::HTTP_11,
        headers,
        body: body.into(),
        request_time: now,
        created_at: now,
        initial_age: Duration::from_secs(1),
        expires: Some(now + Duration::from_secs(3600)),
        stale: StalePolicy {
            must_revalidate: false,
            stale_while_revalidate: Some(Duration::from_secs(30)),
            stale_if_error: None,
        },
        retain_until: Some(now + Duration::from_secs(7200)),
    }
}

fn key(n: usize) -> CacheKey {
    CacheKey::custom(format!("conformance-key-{n}"))
}

fn assert_same(found: &StoredResponse, expected: &StoredResponse) {
    assert_eq!(
        found.request, expected.request,
        "stored request metadata differs"
    );
    assert_eq!(found.status, expected.status);
    assert_eq!(
        found.headers, expected.headers,
        "stored header fields differ"
    );
    assert_eq!(found.body, expected.body, "stored body differs");
    assert_eq!(found.expires, expected.expires);
    assert_eq!(found.created_at, expected.created_at);
    assert_eq!(found.initial_age, expected.initial_age);
    assert_eq!(found.stale, expected.stale);
}

/// A key never stored is a miss.
pub async fn get_missing_is_none(store: &dyn Store) {
    assert!(store.get(&key(1)).await.unwrap().is_none());
}

/// What `put` stores, `get` returns, field for field.
pub async fn put_then_get(store: &dyn Store) {
    let entry = sample_entry("http://example.com/a", &b"body a"[..]);
    store.put(key(1), Arc::new(entry.clone())).await.unwrap();
    let found = store
        .get(&key(1))
        .await
        .unwrap()
        .expect("the entry just stored");
    assert_same(&found, &entry);
    assert!(
        store.get(&key(2)).await.unwrap().is_none(),
        "another key stays a miss"
    );
    // `put_now` has the effect of `put`: done at once, or the entry given back for `put`.
    let now = sample_entry("http://example.com/now", &b"body now"[..]);
    match store.put_now(key(3), Arc::new(now.clone())) {
        PutNow::Done(done) => done.unwrap(),
        PutNow::Later(given_back, entry) => {
            assert_eq!(given_back, key(3));
            assert_same(&entry, &now);
            store.put(given_back, entry).await.unwrap();
        }
    }
    let found = store.get(&key(3)).await.unwrap().expect("put_now's entry");
    assert_same(&found, &now);
}

/// A second `put` for a key replaces the first.
pub async fn put_overwrites(store: &dyn Store) {
    store
        .put(
            key(1),
            Arc::new(sample_entry("http://example.com/a", &b"first"[..])),
        )
        .await
        .unwrap();
    store
        .put(
            key(1),
            Arc::new(sample_entry("http://example.com/a", &b"second"[..])),
        )
        .await
        .unwrap();
    let found = store.get(&key(1)).await.unwrap().unwrap();
    assert_eq!(found.body, Bytes::from_static(b"second"));
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

/// `remove` deletes one entry and says whether there was one.
pub async fn remove(store: &dyn Store) {
    store
        .put(
            key(1),
            Arc::new(sample_entry("http://example.com/a", &b"a"[..])),
        )
        .await
        .unwrap();
    store
        .put(
            key(2),
            Arc::new(sample_entry("http://example.com/b", &b"b"[..])),
        )
        .await
        .unwrap();
    assert!(store.remove(&key(1)).await.unwrap());
    assert!(
        !store.remove(&key(1)).await.unwrap(),
        "a second remove finds nothing"
    );
    assert!(store.get(&key(1)).await.unwrap().is_none());
    assert!(
        store.get(&key(2)).await.unwrap().is_some(),
        "other entries stay"
    );
}

/// `clear` deletes every entry.
pub async fn clear(store: &dyn Store) {
    for n in 0..10 {
        store
            .put(
                key(n),
                Arc::new(sample_entry("http://example.com/", vec![n as u8; 10])),
            )
            .await
            .unwrap();
    }
    store.clear().await.unwrap();
    for n in 0..10 {
        assert!(store.get(&key(n)).await.unwrap().is_none());
    }
    assert_eq!(store.keys().await.unwrap().len(), 0);
    assert_eq!(store.len().await.unwrap(), 0);
}

/// `keys` and `len` list every entry once.
pub async fn keys_and_len(store: &dyn Store) {
    for n in 0..25 {
        store
            .put(
                key(n),
                Arc::new(sample_entry("http://example.com/", vec![n as u8; 10])),
            )
            .await
            .unwrap();
    }
    let keys: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
    let expected: HashSet<CacheKey> = (0..25).map(key).collect();
    assert_eq!(keys, expected);
    assert_eq!(store.len().await.unwrap(), 25);
}

/// An entry past its `retain_until` is never returned.
pub async fn past_retention_is_a_miss(store: &dyn Store) {
    let mut gone = sample_entry("http://example.com/gone", &b"gone"[..]);
    gone.retain_until = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(key(1), Arc::new(gone)).await.unwrap();
    let mut kept = sample_entry("http://example.com/kept", &b"kept"[..]);
    kept.retain_until = None;
    store.put(key(2), Arc::new(kept)).await.unwrap();
    assert!(
        store.get(&key(1)).await.unwrap().is_none(),
        "past retention"
    );
    assert!(
        store.get(&key(2)).await.unwrap().is_some(),
        "retained until evicted"
    );
}

/// A 4 MiB body round-trips byte for byte.
pub async fn large_body(store: &dyn Store) {
    let body: Vec<u8> = (0..4 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let entry = sample_entry("http://example.com/large", body.clone());
    store.put(key(1), Arc::new(entry)).await.unwrap();
    let found = store.get(&key(1)).await.unwrap().unwrap();
    assert_eq!(found.body.len(), body.len());
    assert!(found.body == body[..], "large body differs");
}

/// Many tasks writing and reading at once: every distinct key is readable afterwards, and a key
/// written by several tasks holds one whole entry.
pub async fn concurrent_writers(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..32usize {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![n as u8; 1000 + n];
            store
                .put(
                    key(n),
                    Arc::new(sample_entry("http://example.com/own", body.clone())),
                )
                .await
                .unwrap();
            store
                .put(
                    key(1000),
                    Arc::new(sample_entry("http://example.com/shared", body)),
                )
                .await
                .unwrap();
            let _ = store.get(&key(1000)).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for n in 0..32usize {
        let found = store.get(&key(n)).await.unwrap().unwrap();
        assert_eq!(found.body.len(), 1000 + n);
        assert!(found.body.iter().all(|&b| b == n as u8));
    }
    let shared = store.get(&key(1000)).await.unwrap().unwrap();
    let n = shared.body.len() - 1000;
    assert!(
        n < 32 && shared.body.iter().all(|&b| b == n as u8),
        "the shared key holds one whole entry"
    );
}

/// An entry with every optional field empty (no expiry, no retention limit, no stale windows,
/// no header fields, an empty body), another method, status and version round-trips whole.
pub async fn optional_fields_round_trip(store: &dyn Store) {
    let mut entry = sample_entry("http://example.com/empty?q=%C3%A9", Bytes::new());
    entry.request.method = Method::HEAD;
    entry.request.headers = HeaderMap::new();
    entry.headers = HeaderMap::new();
    entry.status = StatusCode::NOT_FOUND;
    entry.version = Version::HTTP_2;
    entry.expires = None;
    entry.retain_until = None;
    entry.initial_age = Duration::ZERO;
    entry.stale = StalePolicy::default();
    store.put(key(1), Arc::new(entry.clone())).await.unwrap();
    let found = store
        .get(&key(1))
        .await
        .unwrap()
        .expect("the entry just stored");
    assert_eq!(*found, entry, "every field round-trips");
}

/// A partial entry (status 206, one `Content-Range` line per part, the parts' bytes as its body;
/// see [`partial`](crate::partial)) round-trips whole, its parts read back, and a listing shows
/// its 206; a complete entry put over it replaces it.
pub async fn partial_entry_round_trips(store: Arc<dyn Store>) {
    use crate::partial::{ByteRange, Parts};
    let mut entry = sample_entry("http://example.com/video", &b"0189"[..]);
    entry.status = StatusCode::PARTIAL_CONTENT;
    for value in ["bytes 0-1/10", "bytes 8-9/10"] {
        entry
            .headers
            .append(http::header::CONTENT_RANGE, HeaderValue::from_static(value));
    }
    store.put(key(1), Arc::new(entry.clone())).await.unwrap();
    let found = store
        .get(&key(1))
        .await
        .unwrap()
        .expect("the partial entry just stored");
    assert_same(&found, &entry);
    assert!(found.is_partial());
    let parts = Parts::of(&found).expect("its parts read back");
    let ranges: Vec<_> = parts
        .ranges()
        .iter()
        .map(|r| (r.first(), r.last()))
        .collect();
    assert_eq!(ranges, [(0, 1), (8, 9)], "parts in order");
    assert_eq!(
        parts.body_offsets(&ByteRange::new(8, 9).unwrap()),
        Some(2..4)
    );
    let listed = store.clone().entries().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, StatusCode::PARTIAL_CONTENT);

    let complete = sample_entry("http://example.com/video", &b"0123456789"[..]);
    store.put(key(1), Arc::new(complete.clone())).await.unwrap();
    let found = store.get(&key(1)).await.unwrap().unwrap();
    assert!(!found.is_partial());
    assert_same(&found, &complete);
}

/// Storing an entry already past its `retain_until` replaces (removes) the previous entry for
/// the key: `get` never returns the older one.
pub async fn put_past_retention_replaces(store: &dyn Store) {
    store
        .put(
            key(1),
            Arc::new(sample_entry("http://example.com/a", &b"kept"[..])),
        )
        .await
        .unwrap();
    let mut gone = sample_entry("http://example.com/a", &b"gone"[..]);
    gone.retain_until = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(key(1), Arc::new(gone)).await.unwrap();
    assert!(
        store.get(&key(1)).await.unwrap().is_none(),
        "neither the entry past retention nor the one it replaced is returned"
    );
}

/// Records that a store must treat as a miss and remove, each with whether it is corrupt
/// ([`DecodeError::is_corrupt`](crate::DecodeError::is_corrupt): failed its integrity check):
/// empty; of an unknown format version; of version 1 (before the digest); truncated; garbage;
/// one byte of the body, of the digest, or the last byte flipped; too short for a digest.
pub fn corrupt_records() -> Vec<(&'static str, Vec<u8>, bool)> {
    let good = sample_entry("http://example.com/good", &b"<<the good body>>"[..]);
    let encoded = good.encode();
    let flipped = |at: usize| {
        let mut record = encoded.clone();
        record[at] ^= 0x01;
        record
    };
    let body_at = encoded
        .windows(good.body.len())
        .position(|w| w == &good.body[..])
        .expect("the body is in the record");
    let mut unknown_version = encoded.clone();
    unknown_version[0] = FORMAT_VERSION.wrapping_add(1);
    let version_1 = postcard::to_extend(&good, vec![1u8]).expect("a version 1 record");
    vec![
        ("empty", Vec::new(), false),
        ("unknown version", unknown_version, false),
        ("version 1", version_1, false),
        ("garbage", b"not a cache record at all".to_vec(), false),
        ("truncated", encoded[..encoded.len() / 2].to_vec(), true),
        (
            "too short for a digest",
            vec![FORMAT_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff],
            true,
        ),
        ("a body byte flipped", flipped(body_at + 3), true),
        ("a digest byte flipped", flipped(1), true),
        ("the last byte flipped", flipped(encoded.len() - 1), true),
    ]
}

/// A record that cannot be decoded is a miss (`Ok(None)`, never an error) and is removed.
///
/// For stores that serialize entries. `write_raw(store, key, record)` must store `record` under
/// `key` through the store's backend as if it were an encoded entry (an SQL `UPDATE`, a Redis
/// `SET`, ...). Checked records: [`corrupt_records`] (empty, unknown versions, truncated,
/// garbage, one byte changed); each first over an entry the store wrote, and for a key it never
/// saw. Afterwards none of them is listed by `keys` or counted by `len`, and the other entries
/// are intact.
pub async fn corrupt_record_is_a_miss<S, F>(store: &S, write_raw: F)
where
    S: Store + ?Sized,
    F: AsyncFn(&S, CacheKey, Vec<u8>),
{
    let good = sample_entry("http://example.com/good", &b"good"[..]);
    let corrupt = corrupt_records();
    store.put(key(0), Arc::new(good.clone())).await.unwrap();
    for (n, (_, record, _)) in corrupt.iter().enumerate() {
        let over_entry = key(10 + n);
        store
            .put(over_entry.clone(), Arc::new(good.clone()))
            .await
            .unwrap();
        write_raw(store, over_entry, record.clone()).await;
        write_raw(store, key(100 + n), record.clone()).await;
    }
    for (n, (what, _, _)) in corrupt.iter().enumerate() {
        for k in [key(10 + n), key(100 + n)] {
            let found = store.get(&k).await;
            assert!(
                matches!(found, Ok(None)),
                "corrupt record {n} ({what}) under {k:?} must be a miss, got {found:?}"
            );
            assert!(
                matches!(store.get(&k).await, Ok(None)),
                "corrupt record {n} ({what}) under {k:?} stays a miss"
            );
        }
    }
    let keys: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
    assert_eq!(
        keys,
        HashSet::from([key(0)]),
        "the corrupt records are removed, the good entry stays"
    );
    assert_eq!(store.len().await.unwrap(), 1);
    let found = store.get(&key(0)).await.unwrap().expect("the good entry");
    assert_same(&found, &good);
}

/// A store counts the records it drops because they failed their integrity check
/// ([`Store::corrupt_records_dropped`]), once each, and not the ones it drops for another reason
/// (empty, another format version, garbage). `write_raw` as for [`corrupt_record_is_a_miss`].
pub async fn corrupt_records_are_counted<S, F>(store: &S, write_raw: F)
where
    S: Store + ?Sized,
    F: AsyncFn(&S, CacheKey, Vec<u8>),
{
    for (n, (what, record, corrupt)) in corrupt_records().into_iter().enumerate() {
        let before = store.corrupt_records_dropped();
        write_raw(store, key(200 + n), record).await;
        assert!(matches!(store.get(&key(200 + n)).await, Ok(None)), "{what}");
        assert!(matches!(store.get(&key(200 + n)).await, Ok(None)), "{what}");
        assert_eq!(
            store.corrupt_records_dropped(),
            before + u64::from(corrupt),
            "{what}: counted once if corrupt, else not"
        );
    }
}

/// A time `secs` seconds into the inspection fixture, off the whole millisecond (to catch stores
/// that round times).
fn fixture_time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000 + secs, 123_456_789)
}

fn fixture_key(n: u8) -> CacheKey {
    CacheKey::from_digest([n; 16])
}

/// The entries `entries` and `delete` are checked on, retained until evicted: (1) GET /a
/// received at 0, stale at 10; (2) HEAD /a received at 5, stale at 100; (3) GET /b received at
/// 20, never stale; (4) GET /c received at 30, stale at 50; (5) a 404 for GET /d received at 40,
/// stale at 1000.
fn inspection_fixture() -> Vec<(CacheKey, StoredResponse)> {
    let entry = |method: Method, url: &str, created: u64, expires: Option<u64>| {
        let mut entry = sample_entry(url, &b"fixture body"[..]);
        entry.request.method = method;
        entry.request_time = fixture_time(created);
        entry.created_at = fixture_time(created);
        entry.expires = expires.map(fixture_time);
        entry.retain_until = None;
        entry
    };
    let mut not_found = entry(Method::GET, "http://x.test/d", 40, Some(1000));
    not_found.status = StatusCode::NOT_FOUND;
    vec![
        (
            fixture_key(1),
            entry(Method::GET, "http://x.test/a", 0, Some(10)),
        ),
        (
            fixture_key(2),
            entry(Method::HEAD, "http://x.test/a", 5, Some(100)),
        ),
        (
            fixture_key(3),
            entry(Method::GET, "http://x.test/b", 20, None),
        ),
        (
            fixture_key(4),
            entry(Method::GET, "http://x.test/c", 30, Some(50)),
        ),
        (fixture_key(5), not_found),
    ]
}

/// Stores the fixture, and an entry past retention (which `entries` and `delete` must ignore).
async fn fill_inspection_fixture(store: &dyn Store) {
    for (key, entry) in inspection_fixture() {
        store.put(key, Arc::new(entry)).await.unwrap();
    }
    let mut gone = sample_entry("http://x.test/a", &b"gone"[..]);
    gone.retain_until = Some(SystemTime::now() - Duration::from_secs(1));
    store.put(fixture_key(6), Arc::new(gone)).await.unwrap();
}

/// `entries` summarizes every entry ([`EntryInfo::new`]) and leaves out entries past retention.
pub async fn entries_list_every_entry(store: Arc<dyn Store>) {
    fill_inspection_fixture(&*store).await;
    let mut entries = store.clone().entries().await.unwrap();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let expected: Vec<EntryInfo> = inspection_fixture()
        .iter()
        .map(|(key, entry)| EntryInfo::new(key, entry))
        .collect();
    assert_eq!(entries, expected);
}

/// `delete` removes exactly the entries each [`EntryFilter`] matches (to the nanosecond at the
/// bounds of `Expired` and `OlderThan`), counts them (not counting entries past retention), and
/// leaves the others.
pub async fn delete_removes_what_the_filter_matches(store: Arc<dyn Store>) {
    let t = fixture_time;
    let nano = Duration::from_nanos(1);
    let cases: Vec<(EntryFilter, Vec<u8>)> = vec![
        (EntryFilter::All, vec![1, 2, 3, 4, 5]),
        (EntryFilter::Expired { now: t(10) - nano }, vec![]),
        (EntryFilter::Expired { now: t(10) }, vec![1]),
        (EntryFilter::Expired { now: t(50) }, vec![1, 4]),
        (EntryFilter::Expired { now: t(5000) }, vec![1, 2, 4, 5]),
        (EntryFilter::OlderThan(t(0)), vec![]),
        (EntryFilter::OlderThan(t(20)), vec![1, 2]),
        (EntryFilter::OlderThan(t(20) + nano), vec![1, 2, 3]),
        (EntryFilter::Keys(vec![]), vec![]),
        (
            EntryFilter::Keys(vec![fixture_key(3), fixture_key(9), fixture_key(3)]),
            vec![3],
        ),
        (
            EntryFilter::Urls(vec!["http://x.test/a".into()]),
            vec![1, 2],
        ),
        (
            EntryFilter::Urls(vec!["http://x.test/b".into(), "http://x.test/A".into()]),
            vec![3],
        ),
        (
            EntryFilter::custom(|info| info.status == StatusCode::NOT_FOUND),
            vec![5],
        ),
        (
            EntryFilter::custom(|info| info.method == Method::HEAD || info.expires.is_none()),
            vec![2, 3],
        ),
    ];
    for (filter, expected) in cases {
        store.clear().await.unwrap();
        fill_inspection_fixture(&*store).await;
        let removed = store.clone().delete(filter.clone()).await.unwrap();
        assert_eq!(removed, expected.len() as u64, "count for {filter:?}");
        let left: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
        let expected_left: HashSet<CacheKey> = (1..=5)
            .filter(|n| !expected.contains(n))
            .map(fixture_key)
            .collect();
        assert_eq!(left, expected_left, "left after {filter:?}");
        for n in &expected {
            assert!(
                store.get(&fixture_key(*n)).await.unwrap().is_none(),
                "{n} after {filter:?}"
            );
        }
        assert_eq!(
            store.clone().delete(filter.clone()).await.unwrap(),
            0,
            "nothing left to delete for {filter:?}"
        );
    }
}

/// Generates one `#[tokio::test]` per conformance check, each on a store from `$make().await`
/// (an async function returning an empty store), in a module `store_conformance`.
///
/// `store_conformance_tests!(make_store, corrupt = write_raw)` adds
/// [`corrupt_record_is_a_miss`](crate::conformance::corrupt_record_is_a_miss), with `write_raw`
/// an `async fn(&Store, CacheKey, Vec<u8>)` writing a raw record through the store's backend;
/// `store_conformance_tests!(make_store, corrupt = write_raw, counted)` also
/// [`corrupt_records_are_counted`](crate::conformance::corrupt_records_are_counted), for stores
/// that implement [`Store::corrupt_records_dropped`](crate::Store::corrupt_records_dropped).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:path) => {
        mod store_conformance {
            use super::*;
            $crate::store_conformance_tests!(@checks $make);
        }
    };
    ($make:path, corrupt = $write_raw:path, counted) => {
        mod store_conformance {
            use super::*;
            $crate::store_conformance_tests!(@checks $make);

            #[tokio::test]
            async fn corrupt_record_is_a_miss() {
                $crate::conformance::corrupt_record_is_a_miss(&$make().await, $write_raw).await
            }

            #[tokio::test]
            async fn corrupt_records_are_counted() {
                $crate::conformance::corrupt_records_are_counted(&$make().await, $write_raw).await
            }
        }
    };
    ($make:path, corrupt = $write_raw:path) => {
        mod store_conformance {
            use super::*;
            $crate::store_conformance_tests!(@checks $make);

            #[tokio::test]
            async fn corrupt_record_is_a_miss() {
                $crate::conformance::corrupt_record_is_a_miss(&$make().await, $write_raw).await
            }
        }
    };
    (@checks $make:path) => {
        #[tokio::test]
        async fn get_missing_is_none() {
            $crate::conformance::get_missing_is_none(&$make().await).await
        }
        #[tokio::test]
        async fn put_then_get() {
            $crate::conformance::put_then_get(&$make().await).await
        }
        #[tokio::test]
        async fn put_overwrites() {
            $crate::conformance::put_overwrites(&$make().await).await
        }
        #[tokio::test]
        async fn remove() {
            $crate::conformance::remove(&$make().await).await
        }
        #[tokio::test]
        async fn clear() {
            $crate::conformance::clear(&$make().await).await
        }
        #[tokio::test]
        async fn keys_and_len() {
            $crate::conformance::keys_and_len(&$make().await).await
        }
        #[tokio::test]
        async fn past_retention_is_a_miss() {
            $crate::conformance::past_retention_is_a_miss(&$make().await).await
        }
        #[tokio::test]
        async fn put_past_retention_replaces() {
            $crate::conformance::put_past_retention_replaces(&$make().await).await
        }
        #[tokio::test]
        async fn optional_fields_round_trip() {
            $crate::conformance::optional_fields_round_trip(&$make().await).await
        }
        #[tokio::test]
        async fn partial_entry_round_trips() {
            $crate::conformance::partial_entry_round_trips(::std::sync::Arc::new($make().await))
                .await
        }
        #[tokio::test]
        async fn large_body() {
            $crate::conformance::large_body(&$make().await).await
        }
        #[tokio::test]
        async fn entries_list_every_entry() {
            $crate::conformance::entries_list_every_entry(::std::sync::Arc::new($make().await))
                .await
        }
        #[tokio::test]
        async fn delete_removes_what_the_filter_matches() {
            $crate::conformance::delete_removes_what_the_filter_matches(::std::sync::Arc::new(
                $make().await,
            ))
            .await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers() {
            $crate::conformance::concurrent_writers(::std::sync::Arc::new($make().await)).await
        }
    };
}
