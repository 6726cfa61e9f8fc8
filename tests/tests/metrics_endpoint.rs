//! `reverse_proxy --metrics ADDR`: the proxy's Prometheus endpoint serves the cache's metrics
//! after real requests through a real proxy and origin.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::{CacheSettings, ManualClock, MemoryStore};
use common::{Origin, Reply};
use examples::proxy::{Proxy, ProxyConfig};
use http::Request;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A GET of `url` with the test client; the status and the body as text.
async fn get(url: &str) -> (u16, String) {
    let request = Request::get(url).body(Full::<Bytes>::default()).unwrap();
    let exchange = async {
        let response = common::client().request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    };
    tokio::time::timeout(common::EXCHANGE_TIMEOUT, exchange)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_the_cache_metrics() {
    // A free port for the exporter's listener.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    examples::metrics::serve_prometheus(metrics_addr).unwrap();

    let origin = Origin::start(&ManualClock::starting_now()).await;
    origin.route("/page", |_| {
        Reply::ok("hello").header("cache-control", "max-age=60")
    });
    let config = ProxyConfig {
        shutdown_grace: Duration::from_millis(200),
        connection_threads: 1,
        ..ProxyConfig::new(
            origin.url("/").parse().unwrap(),
            CacheSettings::shared(),
            Arc::new(MemoryStore::new()),
        )
    };
    let proxy = Proxy::new(config).unwrap();
    let cache = proxy.cache_layer().cache();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));

    for _ in 0..3 {
        let (status, body) = get(&format!("http://{proxy_addr}/page")).await;
        assert_eq!((status, body.as_str()), (200, "hello"));
    }
    assert_eq!(origin.hits("/page"), 1);
    cache.record_store_size().await.unwrap();

    // The exporter's listener starts in the background: wait until it answers.
    let mut scrape = None;
    for _ in 0..100 {
        let request = Request::get(format!("http://{metrics_addr}/metrics"))
            .body(Full::<Bytes>::default())
            .unwrap();
        if let Ok(response) = common::client().request(request).await {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            scrape = Some(String::from_utf8(body.to_vec()).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scrape = scrape.expect("the metrics endpoint answers");
    for line in [
        "cachelayer_requests_total{outcome=\"miss\"} 1",
        "cachelayer_requests_total{outcome=\"hit\"} 2",
        "cachelayer_stored_total 1",
        "cachelayer_store_entries{store=\"memory\"} 1",
        "cachelayer_store_duration_seconds_count{store=\"memory\",op=\"read\"} 3",
        "cachelayer_store_duration_seconds_count{store=\"memory\",op=\"write\"} 1",
    ] {
        assert!(
            scrape.lines().any(|l| l == line),
            "{line} is not in the scrape:\n{scrape}"
        );
    }
    assert!(!scrape.contains("/page"), "no URL in any label:\n{scrape}");
}
