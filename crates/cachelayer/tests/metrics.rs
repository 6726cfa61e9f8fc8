//! The counters of the `metrics` feature, read back through a recorder.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheSettings};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower::{Layer, Service, ServiceExt, service_fn};

/// Counters by name and labels (`name{label=value,...}`).
#[derive(Debug, Default)]
struct Counters(Mutex<BTreeMap<String, Arc<Count>>>);

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

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        let count = self.0.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(count)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn outcomes_storage_and_bytes_are_counted() {
    let counters = Counters::default();
    metrics::with_local_recorder(&counters, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let origin = service_fn(|request: Request<Empty<Bytes>>| async move {
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
            });
            let mut cache = CacheLayer::new(CacheSettings::default()).layer(origin);
            for path in ["/a", "/a", "/a", "/private"] {
                let request = Request::get(format!("http://example.test{path}"))
                    .body(Empty::new())
                    .unwrap();
                let response = cache.ready().await.unwrap().call(request).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    assert_eq!(counters.get("cachelayer_requests_total{outcome=miss}"), 2);
    assert_eq!(counters.get("cachelayer_requests_total{outcome=hit}"), 2);
    assert_eq!(counters.get("cachelayer_stored_total"), 1);
    assert_eq!(
        counters.get("cachelayer_not_stored_total{reason=no-store}"),
        1
    );
    assert_eq!(counters.get("cachelayer_hit_bytes_total"), 20);
}
