//! `cachelayer::metrics::set_enabled(false)`: the cache makes no call to the metrics facade.
//! Alone in its test binary: the switch is process-wide.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheSettings};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::{Layer, Service, ServiceExt, service_fn};

/// Counts the metrics the cache registers (each call of the facade registers one).
#[derive(Debug, Default)]
struct Registrations(AtomicU64);

impl Recorder for Registrations {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        self.0.fetch_add(1, Ordering::Relaxed);
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        self.0.fetch_add(1, Ordering::Relaxed);
        Histogram::noop()
    }
}

/// How many metrics the cache registers for a miss and a hit.
fn registrations_for_a_miss_and_a_hit() -> u64 {
    let recorder = Registrations::default();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let origin = service_fn(|_: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("cache-control", "max-age=60")
                        .body(Full::new(Bytes::from_static(b"0123456789")))
                        .unwrap(),
                )
            });
            let mut cache = CacheLayer::new(CacheSettings::default()).layer(origin);
            for _ in 0..2 {
                let request = Request::get("http://example.test/a")
                    .body(Empty::new())
                    .unwrap();
                let response = cache.ready().await.unwrap().call(request).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    recorder.0.load(Ordering::Relaxed)
}

#[test]
fn turned_off_the_cache_makes_no_metrics_call() {
    assert!(registrations_for_a_miss_and_a_hit() > 0, "on by default");
    cachelayer::metrics::set_enabled(false);
    assert_eq!(registrations_for_a_miss_and_a_hit(), 0);
    cachelayer::metrics::set_enabled(true);
    assert!(registrations_for_a_miss_and_a_hit() > 0, "on again");
}
