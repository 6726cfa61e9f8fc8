//! The cache among tower layers (`timeout`, `retry`, `service_fn`), and stale-if-error
//! (RFC 5861 §4) when the origin answers 5xx, fails, or is too slow.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheOutcome, CacheSettings, ManualClock, MemoryStore, StaleWindow};
use common::{Origin, Reply, cache, client, get, send, try_send};
use http::{Request, Response};
use http_body_util::Full;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tower::{BoxError, Layer, ServiceBuilder, service_fn};

/// A handler that answers 200 with `max-age=60` the first time, then `then`.
fn first_ok_then(
    then: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> impl Fn(&common::Seen) -> Reply + Send + Sync + 'static {
    let served = AtomicUsize::new(0);
    move |_| match served.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::ok("good body").header("cache-control", "max-age=60"),
        n => then(n),
    }
}

#[tokio::test]
async fn works_inside_a_tower_timeout() {
    let (layer, clock) = cache(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/timeout", |_| {
        Reply::ok("in time").header("cache-control", "max-age=60")
    });
    let mut service = ServiceBuilder::new()
        .timeout(Duration::from_secs(5))
        .layer(layer)
        .service(client());
    let url = origin.url("/timeout");

    let first = send(&mut service, get(&url)).await;
    assert_eq!(first.text(), "in time");
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    let second = send(&mut service, get(&url)).await;
    assert_eq!(second.text(), "in time");
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/timeout"), 1);

    // The error type is tower's BoxError now: a closed port still reports the client's error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/nothing", closed.local_addr().unwrap());
    drop(closed);
    let error: BoxError = try_send(&mut service, get(&dead_url)).await.unwrap_err();
    assert!(
        error.is::<hyper_util::client::legacy::Error>(),
        "the client's error passes through the cache: {error:?}"
    );
}

#[tokio::test]
async fn a_timeout_inside_the_cache_is_an_origin_failure() {
    let settings = CacheSettings {
        stale_if_error: StaleWindow::Any,
        ..CacheSettings::default()
    };
    let (layer, clock) = cache(settings);
    let origin = Origin::start(&clock).await;
    origin.route(
        "/slow",
        first_ok_then(|_| Reply::ok("too late").delayed(Duration::from_secs(5))),
    );
    let mut service = ServiceBuilder::new()
        .layer(layer.clone())
        .timeout(Duration::from_millis(200))
        .service(client());
    let url = origin.url("/slow");

    assert_eq!(send(&mut service, get(&url)).await.text(), "good body");
    clock.advance(Duration::from_secs(61));
    let stale = send(&mut service, get(&url)).await;
    assert_eq!(
        origin.hits("/slow"),
        2,
        "the stale response was revalidated first"
    );
    assert_eq!(stale.info.outcome, CacheOutcome::StaleIfError);
    assert_eq!(stale.text(), "good body");
    assert!(stale.info.from_cache);
    assert!(stale.info.is_expired);

    // Without stale-if-error the timeout is the caller's error.
    layer.set_settings(CacheSettings::default());
    let error = try_send(&mut service, get(&url)).await.unwrap_err();
    assert!(
        error.is::<tower::timeout::error::Elapsed>(),
        "the timeout passes through: {error:?}"
    );
}

/// Retries a request once when it fails or answers 5xx.
#[derive(Clone, Debug)]
struct RetryOnce {
    left: usize,
}

impl<B, E> tower::retry::Policy<Request<Full<Bytes>>, Response<B>, E> for RetryOnce {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        if failed && self.left > 0 {
            self.left -= 1;
            Some(std::future::ready(()))
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut clone = Request::new(request.body().clone());
        *clone.method_mut() = request.method().clone();
        *clone.uri_mut() = request.uri().clone();
        *clone.headers_mut() = request.headers().clone();
        Some(clone)
    }
}

#[tokio::test]
async fn works_inside_a_tower_retry() {
    let (layer, clock) = cache(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let served = AtomicUsize::new(0);
    origin.route("/retry", move |_| {
        match served.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(503).body("busy"),
            _ => Reply::ok("second try").header("cache-control", "max-age=60"),
        }
    });
    let mut service = ServiceBuilder::new()
        .retry(RetryOnce { left: 1 })
        .timeout(Duration::from_secs(5))
        .layer(layer)
        .service(client());
    let url = origin.url("/retry");

    let first = send(&mut service, get(&url)).await;
    assert_eq!(origin.hits("/retry"), 2, "the 503 was retried");
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "second try");
    assert!(first.info.stored);
    let second = send(&mut service, get(&url)).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(second.text(), "second try");
    assert_eq!(
        origin.hits("/retry"),
        2,
        "the hit needs no retry and no origin"
    );
}

#[tokio::test]
async fn wraps_a_plain_service_fn() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let inner = service_fn(move |request: Request<Full<Bytes>>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = Response::builder()
                .header("cache-control", "max-age=60")
                .body(Full::new(Bytes::from(format!(
                    "{} #{n}",
                    request.uri().path()
                ))))
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut service = CacheLayer::new(CacheSettings::default()).layer(inner);

    let first = send(&mut service, get("http://service.test/a")).await;
    assert_eq!(first.text(), "/a #0");
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    let hit = send(&mut service, get("http://service.test/a")).await;
    assert_eq!(hit.text(), "/a #0");
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    let other = send(&mut service, get("http://service.test/b")).await;
    assert_eq!(other.text(), "/b #1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stale_if_error_serves_the_stored_response_when_the_origin_answers_500() {
    let settings = CacheSettings {
        stale_if_error: StaleWindow::Any,
        ..CacheSettings::default()
    };
    let (layer, clock) = cache(settings);
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route(
        "/flaky",
        first_ok_then(|_| Reply::status(500).body("broken")),
    );
    let url = origin.url("/flaky");

    assert_eq!(send(&mut service, get(&url)).await.text(), "good body");
    clock.advance(Duration::from_secs(61));
    let stale = send(&mut service, get(&url)).await;
    assert_eq!(origin.hits("/flaky"), 2, "the origin was asked first");
    assert_eq!(stale.status, 200);
    assert_eq!(stale.text(), "good body");
    assert_eq!(stale.info.outcome, CacheOutcome::StaleIfError);
    assert!(stale.info.from_cache);
    assert!(stale.info.is_expired);
    let status = stale.cache_status();
    assert!(
        status.contains("fwd=stale") && status.contains("fwd-status=500"),
        "{status}"
    );
    assert!(stale.age().unwrap() >= 61);

    // The default settings pass the 500 through.
    let (layer, clock) = cache(CacheSettings::default());
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route(
        "/flaky",
        first_ok_then(|_| Reply::status(500).body("broken")),
    );
    let url = origin.url("/flaky");
    assert_eq!(send(&mut service, get(&url)).await.text(), "good body");
    clock.advance(Duration::from_secs(61));
    let error = send(&mut service, get(&url)).await;
    assert_eq!(error.status, 500);
    assert_eq!(error.text(), "broken");
    assert!(!error.info.from_cache);
    assert_eq!(origin.hits("/flaky"), 2);
}

#[tokio::test]
async fn stale_if_error_window_limits_the_staleness() {
    let settings = CacheSettings {
        stale_if_error: StaleWindow::AtMost(Duration::from_secs(30)),
        ..CacheSettings::default()
    };
    let (layer, clock) = cache(settings);
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route(
        "/window",
        first_ok_then(|_| Reply::status(502).body("bad gateway")),
    );
    let url = origin.url("/window");

    send(&mut service, get(&url)).await;
    clock.advance(Duration::from_secs(80));
    let within = send(&mut service, get(&url)).await;
    assert_eq!(
        within.info.outcome,
        CacheOutcome::StaleIfError,
        "20 s stale, window 30 s"
    );
    assert_eq!(within.text(), "good body");

    clock.advance(Duration::from_secs(20));
    let beyond = send(&mut service, get(&url)).await;
    assert_eq!(beyond.status, 502, "40 s stale is past the window");
    assert_eq!(beyond.text(), "bad gateway");
    assert!(!beyond.info.from_cache);
    assert_eq!(origin.hits("/window"), 3);
}

#[tokio::test]
async fn the_responses_own_stale_if_error_and_must_revalidate() {
    let (layer, clock) = cache(CacheSettings::default());
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    for (path, cache_control) in [
        ("/own", "max-age=60, stale-if-error=600"),
        ("/strict", "max-age=60, stale-if-error=600, must-revalidate"),
    ] {
        let served = AtomicUsize::new(0);
        origin.route(path, move |_| match served.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::ok("good body").header("cache-control", cache_control),
            _ => Reply::status(500).body("broken"),
        });
    }

    send(&mut service, get(&origin.url("/own"))).await;
    send(&mut service, get(&origin.url("/strict"))).await;
    clock.advance(Duration::from_secs(120));

    let own = send(&mut service, get(&origin.url("/own"))).await;
    assert_eq!(
        own.info.outcome,
        CacheOutcome::StaleIfError,
        "the response allows it"
    );
    assert_eq!(own.text(), "good body");
    let strict = send(&mut service, get(&origin.url("/strict"))).await;
    assert_eq!(
        strict.status, 500,
        "must-revalidate forbids serving it stale"
    );
    assert!(!strict.info.from_cache);
    assert_eq!(origin.hits("/own"), 2);
    assert_eq!(origin.hits("/strict"), 2);
}

#[tokio::test]
async fn stale_if_error_when_the_inner_service_fails() {
    for stale_if_error in [StaleWindow::Any, StaleWindow::Off] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let inner = service_fn(move |_request: Request<Full<Bytes>>| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Ok(Response::builder()
                        .header("cache-control", "max-age=60")
                        .body(Full::new(Bytes::from_static(b"remembered")))
                        .unwrap())
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "origin down",
                    ))
                }
            }
        });
        let clock = ManualClock::starting_now();
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        let settings = CacheSettings {
            stale_if_error,
            ..CacheSettings::default()
        };
        let mut service = CacheLayer::with_store(store, settings)
            .with_clock(Arc::new(clock.clone()))
            .layer(inner);
        let url = "http://service.test/down";

        assert_eq!(send(&mut service, get(url)).await.text(), "remembered");
        clock.advance(Duration::from_secs(61));
        let result = try_send(&mut service, get(url)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{stale_if_error:?}");
        match stale_if_error {
            StaleWindow::Any => {
                let stale = result.unwrap();
                assert_eq!(stale.info.outcome, CacheOutcome::StaleIfError);
                assert_eq!(stale.text(), "remembered");
                assert!(stale.info.is_expired);
            }
            _ => {
                let error = result.unwrap_err();
                assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_the_service_share_one_store_across_tasks() {
    let (layer, clock) = cache(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/shared", |_| {
        Reply::ok("shared body").header("cache-control", "max-age=60")
    });
    let service = layer.layer(client());
    let url = origin.url("/shared");
    send(&mut service.clone(), get(&url)).await;

    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let mut service = service.clone();
            let url = url.clone();
            tokio::spawn(async move { send(&mut service, get(&url)).await })
        })
        .collect();
    for task in tasks {
        let got = task.await.unwrap();
        assert_eq!(got.info.outcome, CacheOutcome::Hit);
        assert_eq!(got.text(), "shared body");
    }
    assert_eq!(origin.hits("/shared"), 1);

    // Another service made by the same layer sees the same entries.
    let mut other = layer.layer(client());
    assert_eq!(
        send(&mut other, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );
}
