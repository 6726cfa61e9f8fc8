//! A disposable cache never takes the service down and never leaks a secret into logs: huge
//! settings saturate instead of panicking, a failing store is logged once per outage (not once
//! per request), and credentials are redacted from every log line.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::store::StoreFuture;
use cachelayer::{
    CacheKey, CacheLayer, CacheOptions, CacheSettings, ExpireAfter, StaleWindow, Store, StoreError,
    StoredResponse,
};
use common::{
    Origin, Reply, cached_client, capture_logs, client, get, get_opts, get_with, request, send,
};
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;
use tracing_subscriber::filter::LevelFilter;

// ===== huge settings =====

/// `expire_after` of `u64::MAX` seconds (as a settings file can give it), and the largest
/// durations in every other time setting and per-request option: stored, served, no panic.
#[tokio::test]
async fn huge_durations_saturate() {
    let settings: CacheSettings = serde_json::from_str(
        r#"{ "shared": true, "cache_control": false, "expire_after": 18446744073709551615 }"#,
    )
    .unwrap();
    let settings = CacheSettings {
        stale_if_error: StaleWindow::AtMost(Duration::MAX),
        stale_while_revalidate: StaleWindow::AtMost(Duration::MAX),
        coalesce_timeout: Duration::MAX,
        store_timeout: Duration::MAX,
        ..settings
    };
    let (mut cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    origin.route("/forever", |_| Reply::ok("forever"));
    origin.route("/per-request", |_| Reply::ok("per request"));
    let first = send(&mut cache, get(&origin.url("/forever"))).await;
    assert!(first.info.stored, "{:?}", first.info);
    assert!(first.info.expires.is_some());
    let again = send(&mut cache, get(&origin.url("/forever"))).await;
    assert!(again.info.from_cache);

    let options = CacheOptions {
        expire_after: Some(ExpireAfter::After(Duration::MAX)),
        stale_if_error: Some(StaleWindow::AtMost(Duration::MAX)),
        ..CacheOptions::default()
    };
    let got = send(&mut cache, get_opts(&origin.url("/per-request"), options)).await;
    assert!(got.info.stored);
    let got = send(&mut cache, get(&origin.url("/per-request"))).await;
    assert!(got.info.from_cache);

    // The same through response headers, in a cache that reads them.
    let (mut reading, clock) = cached_client(CacheSettings {
        stale_if_error: StaleWindow::AtMost(Duration::MAX),
        ..CacheSettings::shared()
    });
    let origin = Origin::start(&clock).await;
    origin.route("/header", |_| {
        Reply::ok("header").header(
            "cache-control",
            "max-age=99999999999999999999999, stale-if-error=99999999999999999999",
        )
    });
    send(&mut reading, get(&origin.url("/header"))).await;
    let got = send(&mut reading, get(&origin.url("/header"))).await;
    assert!(got.info.from_cache);

    // Reset every expiration to the largest lifetime: no panic, every entry still fresh.
    let (layer, clock) = common::cache(CacheSettings::default());
    let handle = layer.cache();
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route("/r", |_| {
        Reply::ok("r").header("cache-control", "max-age=60")
    });
    send(&mut service, get(&origin.url("/r"))).await;
    handle
        .reset_expiration(ExpireAfter::After(Duration::MAX))
        .await
        .unwrap();
    assert!(
        send(&mut service, get(&origin.url("/r")))
            .await
            .info
            .from_cache
    );
}

// ===== logs =====

/// No DEBUG event of the cache shows a credential of the request: not in the query, not in a
/// header field, not in a body.
#[tokio::test]
async fn credentials_never_reach_the_logs() {
    let (logs, _guard) = capture_logs(LevelFilter::TRACE);
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    origin.route("/api", |_| {
        Reply::ok("ok").header("cache-control", "public, max-age=60")
    });
    let url = origin.url("/api?q=1&api_key=SECRET1&access_token=SECRET2");
    send(&mut cache, get_with(&url, &[("x-api-key", "SECRET3")])).await;
    send(&mut cache, get(&url)).await;
    send(&mut cache, request(http::Method::POST, &url, &[])).await;
    send(&mut cache, request(http::Method::DELETE, &url, &[])).await;
    let text = logs.text();
    assert!(
        text.contains("cache bypass"),
        "DEBUG events were captured: {text}"
    );
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

/// Every operation fails at once.
#[derive(Debug)]
struct FailingStore;

fn failed<T: Send + 'static>() -> StoreFuture<T> {
    Box::pin(async { Err(StoreError::backend(std::io::Error::other("store down"))) })
}

impl Store for FailingStore {
    fn get(&self, _: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        failed()
    }
    fn put(&self, _: CacheKey, _: Arc<StoredResponse>) -> StoreFuture<()> {
        failed()
    }
    fn remove(&self, _: &CacheKey) -> StoreFuture<bool> {
        failed()
    }
    fn clear(&self) -> StoreFuture<()> {
        failed()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        failed()
    }
}

/// A store that fails on every read, write and removal during 300 requests is reported once,
/// not 900 times; every request is still answered by the origin.
#[tokio::test]
async fn a_store_outage_is_logged_once_not_per_request() {
    let (logs, _guard) = capture_logs(LevelFilter::WARN);
    let mut cache = CacheLayer::with_store(FailingStore, CacheSettings::default()).layer(client());
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route("/data", |_| {
        Reply::ok("from the origin").header("cache-control", "max-age=60")
    });
    let url = origin.url("/data");
    for i in 0..300 {
        let got = if i % 3 == 2 {
            send(&mut cache, request(http::Method::POST, &url, &[])).await
        } else {
            send(&mut cache, get(&url)).await
        };
        assert_eq!(got.text(), "from the origin");
    }
    let text = logs.text();
    let lines = text.lines().filter(|l| l.contains("WARN")).count();
    assert!(lines >= 1, "the outage is reported: {text}");
    assert!(lines <= 3, "{lines} WARN lines for one outage:\n{text}");
    assert!(text.contains("store down"), "the error is named: {text}");
}
