//! The counters, histograms and gauges of the `metrics` feature, read back through a recorder.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::store::{StoreFuture, StoredResponse};
use cachelayer::{CacheKey, CacheLayer, CacheSettings, Store, StoreError};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower::{Layer, Service, ServiceExt, service_fn};

/// Counters and gauges (`counts`), and histograms (`histograms`: how many values each
/// recorded), by name and labels (`name{label=value,...}`).
#[derive(Debug, Default)]
struct Counters {
    counts: Mutex<BTreeMap<String, Arc<Count>>>,
    histograms: Mutex<BTreeMap<String, Arc<Count>>>,
}

#[derive(Debug, Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Count {
    fn increment(&self, value: f64) {
        self.0.fetch_add(value as u64, Ordering::Relaxed);
    }
    fn decrement(&self, value: f64) {
        self.0.fetch_sub(value as u64, Ordering::Relaxed);
    }
    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }
}

/// A histogram that counts the values recorded (durations must be finite and non-negative).
impl HistogramFn for Count {
    fn record(&self, value: f64) {
        assert!(value.is_finite() && value >= 0.0, "{value}");
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn key_name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    /// How many values the histogram `name` recorded.
    fn observations(&self, name: &str) -> u64 {
        self.histograms
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    /// The cell that counters and gauges named like `key` share.
    fn count(&self, key: &Key) -> Arc<Count> {
        self.counts
            .lock()
            .unwrap()
            .entry(key_name(key))
            .or_default()
            .clone()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.counts.lock().unwrap().keys().cloned().collect();
        names.extend(self.histograms.lock().unwrap().keys().cloned());
        names
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.count(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.count(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let count = self
            .histograms
            .lock()
            .unwrap()
            .entry(key_name(key))
            .or_default()
            .clone();
        Histogram::from_arc(count)
    }
}

/// An origin that answers `max-age=60` with a 10-byte body (`no-store` on `/private`).
fn origin() -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    service_fn(|request: Request<Empty<Bytes>>| async move {
        let cache_control = if request.uri().path() == "/private" {
            "no-store"
        } else {
            "max-age=60"
        };
        Ok::<_, Infallible>(
            Response::builder()
                .header("cache-control", cache_control)
                .body(Full::new(Bytes::from_static(b"0123456789")))
                .unwrap(),
        )
    })
}

/// Runs `paths` through a cache on `layer`, each body read to its end.
fn run(counters: &Counters, layer: &CacheLayer, paths: &[&str]) {
    metrics::with_local_recorder(counters, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut cache = layer.layer(origin());
            for path in paths {
                let request = Request::get(format!("http://example.test{path}"))
                    .body(Empty::new())
                    .unwrap();
                let response = cache.ready().await.unwrap().call(request).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
}

#[test]
fn outcomes_storage_and_bytes_are_counted() {
    let counters = Counters::default();
    let layer = CacheLayer::new(CacheSettings::default());
    run(&counters, &layer, &["/a", "/a", "/a", "/private"]);
    assert_eq!(counters.get("cachelayer_requests_total{outcome=miss}"), 2);
    assert_eq!(counters.get("cachelayer_requests_total{outcome=hit}"), 2);
    assert_eq!(counters.get("cachelayer_stored_total"), 1);
    assert_eq!(
        counters.get("cachelayer_not_stored_total{reason=no-store}"),
        1
    );
    assert_eq!(counters.get("cachelayer_hit_bytes_total"), 20);
}

#[test]
fn store_operations_are_timed_by_store_kind_and_operation() {
    let counters = Counters::default();
    let layer = CacheLayer::new(CacheSettings::default());
    run(&counters, &layer, &["/a", "/a", "/a", "/b"]);
    assert_eq!(
        counters.observations("cachelayer_store_duration_seconds{store=memory,op=read}"),
        4,
        "every lookup, hit or miss: {:?}",
        counters.names()
    );
    assert_eq!(
        counters.observations("cachelayer_store_duration_seconds{store=memory,op=write}"),
        2
    );
    assert!(
        counters
            .names()
            .iter()
            .all(|name| !name.contains("example.test") && !name.contains("/a")),
        "no URL in a label: {:?}",
        counters.names()
    );
}

#[test]
fn store_size_gauges_follow_the_store() {
    let counters = Counters::default();
    let layer = CacheLayer::new(CacheSettings::default());
    run(&counters, &layer, &["/a", "/b", "/c"]);
    let cache = layer.cache();
    metrics::with_local_recorder(&counters, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            cache.len().await.unwrap();
            cache.record_store_size().await.unwrap();
        });
    });
    assert_eq!(counters.get("cachelayer_store_entries{store=memory}"), 3);
    let bytes = counters.get("cachelayer_store_bytes{store=memory}");
    assert!(bytes >= 30, "three 10-byte bodies and more: {bytes}");
}

/// A store whose every operation fails.
#[derive(Debug)]
struct Down;

fn down<T>() -> StoreFuture<T> {
    Box::pin(async { Err(StoreError::backend(std::io::Error::other("down"))) })
}

impl Store for Down {
    fn get(&self, _: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        down()
    }
    fn put(&self, _: CacheKey, _: Arc<StoredResponse>) -> StoreFuture<()> {
        down()
    }
    fn remove(&self, _: &CacheKey) -> StoreFuture<bool> {
        down()
    }
    fn clear(&self) -> StoreFuture<()> {
        down()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        down()
    }
}

#[test]
fn store_errors_are_counted_by_store_kind_and_operation() {
    let counters = Counters::default();
    let layer = CacheLayer::with_store(Down, CacheSettings::default());
    run(&counters, &layer, &["/a", "/a"]);
    assert_eq!(
        counters.get("cachelayer_store_errors_total{store=custom,op=read}"),
        2
    );
    assert_eq!(
        counters.get("cachelayer_store_errors_total{store=custom,op=write}"),
        2
    );
    assert_eq!(
        counters.observations("cachelayer_store_duration_seconds{store=custom,op=read}"),
        2,
        "failed operations are timed too"
    );
    assert_eq!(counters.get("cachelayer_requests_total{outcome=miss}"), 2);
}
