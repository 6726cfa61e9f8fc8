//! A store that never answers does not hold requests: reads become misses and writes are given
//! up after `store_timeout`.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::store::StoreFuture;
use cachelayer::{CacheKey, CacheLayer, CacheOutcome, CacheSettings, Store, StoredResponse};
use common::{Origin, Reply, client, get, send};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::Layer;

/// Every operation stays pending forever.
#[derive(Debug)]
struct HangingStore;

fn never<T: Send + 'static>() -> StoreFuture<T> {
    Box::pin(std::future::pending())
}

impl Store for HangingStore {
    fn get(&self, _: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        never()
    }
    fn put(&self, _: CacheKey, _: Arc<StoredResponse>) -> StoreFuture<()> {
        never()
    }
    fn remove(&self, _: &CacheKey) -> StoreFuture<bool> {
        never()
    }
    fn clear(&self) -> StoreFuture<()> {
        never()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        never()
    }
}

#[tokio::test]
async fn a_hanging_store_costs_at_most_the_store_timeout() {
    let settings = CacheSettings {
        store_timeout: Duration::from_millis(50),
        ..CacheSettings::default()
    };
    let mut cache = CacheLayer::with_store(HangingStore, settings).layer(client());
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route("/data", |_| {
        Reply::ok("from the origin").header("cache-control", "max-age=60")
    });
    let url = origin.url("/data");

    for _ in 0..3 {
        let started = Instant::now();
        let got = send(&mut cache, get(&url)).await;
        assert_eq!(got.text(), "from the origin");
        assert_eq!(got.info.outcome, CacheOutcome::Miss);
        // The read and the write each wait at most the timeout: far below the 10 s the harness
        // allows an exchange.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(origin.hits("/data"), 3);

    // Unsafe requests invalidate through the store too: also bounded.
    let started = Instant::now();
    let post = send(&mut cache, common::request(http::Method::POST, &url, &[])).await;
    assert_eq!(post.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}
