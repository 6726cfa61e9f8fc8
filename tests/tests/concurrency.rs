//! Request coalescing and stale-while-revalidate under concurrent load, against a real origin.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings, StaleWindow};
use common::{Origin, Reply, cached_client, get, send};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// 1,000 concurrent identical misses reach the origin once; every caller gets the full body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_reach_the_origin_once() {
    let (cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/popular", |_| {
        Reply::ok("the popular resource")
            .header("cache-control", "max-age=60")
            .delayed(Duration::from_millis(300))
    });
    let url = origin.url("/popular");
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let mut cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { send(&mut cache, get(&url)).await },
        ));
    }
    let mut from_cache = 0;
    for task in tasks {
        let got = task.await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), "the popular resource");
        if got.info.from_cache {
            from_cache += 1;
        }
    }
    assert_eq!(origin.hits("/popular"), 1, "one request reached the origin");
    assert_eq!(from_cache, 999, "the others were answered from the cache");
}

/// A response that turns out not storable is not handed to the waiting requests: they go to
/// the origin themselves, and each gets its own response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_responses_are_not_shared_with_waiters() {
    let (cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let counter = Arc::new(AtomicUsize::new(0));
    let served = counter.clone();
    origin.route("/private-data", move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("response {n}"))
            .header("cache-control", "no-store")
            .delayed(Duration::from_millis(200))
    });
    let url = origin.url("/private-data");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { send(&mut cache, get(&url)).await },
        ));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        let got = task.await.unwrap();
        assert!(!got.info.from_cache);
        bodies.push(got.text().to_owned());
    }
    bodies.sort();
    bodies.dedup();
    assert_eq!(
        bodies.len(),
        10,
        "every request got its own origin response"
    );
    assert_eq!(origin.hits("/private-data"), 10);
}

/// A waiting request waits at most `coalesce_timeout`, then goes to the origin itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_slow_request_is_bounded() {
    let settings = CacheSettings {
        coalesce_timeout: Duration::from_millis(100),
        ..CacheSettings::default()
    };
    let (cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    origin.route("/slow", |_| {
        Reply::ok("slow")
            .header("cache-control", "max-age=60")
            .delayed(Duration::from_millis(1500))
    });
    let url = origin.url("/slow");
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let mut cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { send(&mut cache, get(&url)).await },
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().text(), "slow");
    }
    assert_eq!(
        origin.hits("/slow"),
        5,
        "the waiters gave up waiting and went themselves"
    );
}

/// stale-while-revalidate: the caller gets the stale response at once while the origin (which
/// takes 500 ms) is asked in the background; one background revalidation at a time; the next
/// request sees the refreshed response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let settings = CacheSettings {
        stale_while_revalidate: StaleWindow::Any,
        ..CacheSettings::default()
    };
    let (cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    origin.route("/feed", |_| {
        Reply::ok("version 1").header("cache-control", "max-age=60")
    });
    let url = origin.url("/feed");
    send(&mut cache.clone(), get(&url)).await;
    clock.advance(Duration::from_secs(61));
    origin.route("/feed", |_| {
        Reply::ok("version 2")
            .header("cache-control", "max-age=60")
            .delayed(Duration::from_millis(500))
    });

    let started = Instant::now();
    let stale = send(&mut cache.clone(), get(&url)).await;
    let waited = started.elapsed();
    assert_eq!(stale.text(), "version 1");
    assert_eq!(stale.info.outcome, CacheOutcome::StaleWhileRevalidate);
    assert!(stale.info.is_expired && stale.info.from_cache);
    assert!(
        waited < Duration::from_millis(250),
        "the caller did not wait for the 500 ms origin: {waited:?}"
    );

    // While the revalidation runs, other requests get the stale response and start no other.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { send(&mut cache, get(&url)).await },
        ));
    }
    for task in tasks {
        let got = task.await.unwrap();
        assert_eq!(got.text(), "version 1");
        assert_eq!(got.info.outcome, CacheOutcome::StaleWhileRevalidate);
    }

    // The background revalidation stores version 2; the next request is a plain hit.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refreshed = loop {
        let got = send(&mut cache.clone(), get(&url)).await;
        if got.info.outcome == CacheOutcome::Hit || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refreshed.info.outcome, CacheOutcome::Hit);
    assert_eq!(refreshed.text(), "version 2");
    assert_eq!(
        origin.hits("/feed"),
        2,
        "one background revalidation for 21 stale requests"
    );
}

/// The response's own `stale-while-revalidate` window applies without the setting, and only
/// within the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_own_stale_while_revalidate_window() {
    let (cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/swr", |_| {
        Reply::ok("old").header("cache-control", "max-age=10, stale-while-revalidate=30")
    });
    let url = origin.url("/swr");
    send(&mut cache.clone(), get(&url)).await;
    origin.route("/swr", |_| {
        Reply::ok("new").header("cache-control", "max-age=10, stale-while-revalidate=30")
    });

    clock.advance(Duration::from_secs(20));
    let within = send(&mut cache.clone(), get(&url)).await;
    assert_eq!(within.info.outcome, CacheOutcome::StaleWhileRevalidate);
    assert_eq!(within.text(), "old");

    // Let the background revalidation finish, then go past the window of the new response.
    let deadline = Instant::now() + Duration::from_secs(5);
    while origin.hits("/swr") < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    clock.advance(Duration::from_secs(60));
    let beyond = send(&mut cache.clone(), get(&url)).await;
    assert_ne!(
        beyond.info.outcome,
        CacheOutcome::StaleWhileRevalidate,
        "{:?}",
        beyond.info
    );
    assert_eq!(beyond.text(), "new");
    assert!(
        !beyond.info.from_cache,
        "past the window: the caller waits for the origin"
    );
}
