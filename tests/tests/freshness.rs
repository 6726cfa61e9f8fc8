//! Freshness (RFC 9111 §4.2): fresh hits, expiry, `Age`, heuristic freshness, and the
//! request directives `no-cache`, `Pragma: no-cache`, `no-store` and `only-if-cached`.
//! Time moves with a `ManualClock`: nothing here sleeps.

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use cachelayer::{CacheInfo, CacheOutcome, CacheSettings};
use common::{Origin, Reply, cached_client, get, get_with, http_date, send, try_send_parts};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn fresh_response_is_served_from_the_cache() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    origin.route("/fresh", move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("body #{n}"))
            .header("cache-control", "max-age=60")
            .header("content-type", "text/plain")
    });

    let first = send(&mut cache, get(&origin.url("/fresh"))).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "body #0");
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    assert!(!first.info.from_cache);
    assert!(first.info.stored, "a max-age=60 response is stored");
    assert!(first.info.cache_key.is_some());
    assert!(
        first.cache_status().contains("fwd=uri-miss"),
        "{}",
        first.cache_status()
    );
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );

    let second = send(&mut cache, get(&origin.url("/fresh"))).await;
    assert_eq!(
        origin.hits("/fresh"),
        1,
        "the second request never reaches the origin"
    );
    assert_eq!(second.status, 200);
    assert_eq!(
        second.body, first.body,
        "the stored body is the origin's body, byte for byte"
    );
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert!(second.info.from_cache);
    assert!(!second.info.revalidated);
    assert!(!second.info.is_expired);
    assert_eq!(second.info.cache_key, first.info.cache_key);
    assert!(second.info.created_at.is_some());
    assert!(second.info.expires.is_some());
    assert!(
        second.cache_status().contains("hit"),
        "{}",
        second.cache_status()
    );
    assert!(
        second.cache_status().contains("ttl=60") || second.cache_status().contains("ttl=59"),
        "{}",
        second.cache_status()
    );
    assert_eq!(second.header("content-type"), Some("text/plain"));
    assert_eq!(second.header("cache-control"), Some("max-age=60"));
}

#[tokio::test]
async fn expired_response_goes_back_to_the_origin() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    origin.route("/expiring", move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("version {n}")).header("cache-control", "max-age=60")
    });

    let first = send(&mut cache, get(&origin.url("/expiring"))).await;
    assert_eq!(first.text(), "version 0");

    clock.advance(Duration::from_secs(59));
    let still_fresh = send(&mut cache, get(&origin.url("/expiring"))).await;
    assert_eq!(still_fresh.info.outcome, CacheOutcome::Hit);
    assert_eq!(still_fresh.text(), "version 0");
    assert_eq!(origin.hits("/expiring"), 1);

    clock.advance(Duration::from_secs(2));
    let expired = send(&mut cache, get(&origin.url("/expiring"))).await;
    assert_eq!(
        origin.hits("/expiring"),
        2,
        "an expired response is not served"
    );
    assert_eq!(expired.text(), "version 1");
    assert!(!expired.info.from_cache);
    // Without a validator and without a stale window the store drops the entry when it expires
    // (its retain_until): a miss. A store that still returned it would make it `Refreshed`.
    assert!(
        matches!(
            expired.info.outcome,
            CacheOutcome::Miss | CacheOutcome::Refreshed
        ),
        "{:?}",
        expired.info
    );
    assert!(
        origin
            .last_request("/expiring")
            .header("if-none-match")
            .is_none(),
        "nothing to revalidate with"
    );
    assert!(
        expired.info.stored,
        "the new response is stored in its place"
    );

    let again = send(&mut cache, get(&origin.url("/expiring"))).await;
    assert_eq!(again.info.outcome, CacheOutcome::Hit);
    assert_eq!(again.text(), "version 1");
    assert_eq!(origin.hits("/expiring"), 2);
}

#[tokio::test]
async fn expired_entry_still_in_the_store_is_refreshed_as_stale() {
    // The store keeps entries by the system clock here, while the cache reads the manual clock:
    // the stale entry is still found, and must not be served.
    let clock = cachelayer::ManualClock::starting_now();
    let layer =
        cachelayer::CacheLayer::new(CacheSettings::default()).with_clock(Arc::new(clock.clone()));
    let mut cache = tower::Layer::layer(&layer, common::client());
    let origin = Origin::start(&clock).await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    origin.route("/stale", move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("version {n}")).header("cache-control", "max-age=60")
    });

    assert_eq!(
        send(&mut cache, get(&origin.url("/stale"))).await.text(),
        "version 0"
    );
    clock.advance(Duration::from_secs(61));
    let refreshed = send(&mut cache, get(&origin.url("/stale"))).await;
    assert_eq!(origin.hits("/stale"), 2);
    assert_eq!(refreshed.text(), "version 1");
    assert_eq!(refreshed.info.outcome, CacheOutcome::Refreshed);
    assert_eq!(refreshed.info.detail, Some(Detail::Stale));
    assert!(!refreshed.info.from_cache);
    assert!(refreshed.info.stored);
    assert!(
        refreshed.cache_status().contains("fwd=stale"),
        "{}",
        refreshed.cache_status()
    );
}

#[tokio::test]
async fn age_header_grows_with_the_clock() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/age", |_| {
        Reply::ok("aging").header("cache-control", "max-age=600")
    });
    origin.route("/aged", |_| {
        Reply::ok("already old")
            .header("cache-control", "max-age=600")
            .header("age", "30")
    });

    send(&mut cache, get(&origin.url("/age"))).await;
    let hit = send(&mut cache, get(&origin.url("/age"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.age(), Some(0));

    let first = send(&mut cache, get(&origin.url("/aged"))).await;
    assert_eq!(
        first.age(),
        Some(30),
        "a miss passes the origin's Age through"
    );
    let hit = send(&mut cache, get(&origin.url("/aged"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    let age = hit.age().unwrap();
    assert!(
        (30..32).contains(&age),
        "Age {age}: the age the response arrived with counts"
    );

    clock.advance(Duration::from_secs(100));
    let later = send(&mut cache, get(&origin.url("/age"))).await;
    assert_eq!(later.info.outcome, CacheOutcome::Hit);
    assert_eq!(later.age(), Some(100));
    let status = later.cache_status();
    assert!(
        status.contains("ttl=500") || status.contains("ttl=499"),
        "{status}"
    );
    assert_eq!(origin.hits("/age"), 1);

    let aged = send(&mut cache, get(&origin.url("/aged"))).await;
    assert_eq!(aged.info.outcome, CacheOutcome::Hit);
    assert_eq!(aged.age(), Some(130));
    // The age it arrived with shortens its freshness: 600 - 30 seconds in the cache.
    clock.advance(Duration::from_secs(471));
    let stale = send(&mut cache, get(&origin.url("/aged"))).await;
    assert_eq!(
        origin.hits("/aged"),
        2,
        "stale after 571 s in the cache: {:?}",
        stale.info
    );
    let age = send(&mut cache, get(&origin.url("/age"))).await;
    assert_eq!(
        age.info.outcome,
        CacheOutcome::Hit,
        "/age is fresh for 600 s: {:?}",
        age.info
    );
    assert_eq!(age.age(), Some(571));
}

#[tokio::test]
async fn repeated_hits_on_one_entry_follow_the_clock_and_the_settings() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/hot", |_| {
        Reply::ok("hot").header("cache-control", "max-age=600")
    });
    send(&mut cache, get(&origin.url("/hot"))).await;
    // Hit many times within a second, then a second later, and so on: every hit has the `Age`
    // and `ttl` of its own time, whatever hits came before it.
    for step in 0..4u64 {
        for _ in 0..3 {
            let hit = send(&mut cache, get(&origin.url("/hot"))).await;
            assert_eq!(hit.info.outcome, CacheOutcome::Hit);
            assert_eq!(hit.age(), Some(step * 7), "step {step}");
            let status = hit.cache_status();
            let ttl = 600 - step * 7;
            assert!(
                status.starts_with("cachelayer; hit; ttl=")
                    && (status.contains(&format!("ttl={ttl};"))
                        || status.contains(&format!("ttl={};", ttl - 1))),
                "step {step}: {status}"
            );
        }
        clock.advance(Duration::from_secs(7));
    }
    // New settings name the cache differently from the next hit on.
    cache.set_settings(CacheSettings::default().cache_status_name("edge"));
    for _ in 0..3 {
        let hit = send(&mut cache, get(&origin.url("/hot"))).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit);
        assert!(
            hit.cache_status().starts_with("edge; hit;"),
            "{}",
            hit.cache_status()
        );
    }
    cache.set_settings(CacheSettings::default().cache_status(false));
    let hit = send(&mut cache, get(&origin.url("/hot"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert!(hit.headers.get("cache-status").is_none());
    assert_eq!(origin.hits("/hot"), 1);
}

#[tokio::test]
async fn cache_info_off_leaves_the_extension_out_and_caches_as_before() {
    let (mut cache, clock) = cached_client(CacheSettings::default().cache_info(false));
    let origin = Origin::start(&clock).await;
    origin.route("/quiet", |_| {
        Reply::ok("quiet body").header("cache-control", "max-age=600")
    });
    // A miss that stores, then two hits: none carries the extension, all carry `Cache-Status`.
    let expected: [&[&str]; 3] = [&["fwd=uri-miss", "stored"], &["; hit"], &["; hit"]];
    for fragments in expected {
        let (head, body) = try_send_parts(&mut cache, get(&origin.url("/quiet")))
            .await
            .unwrap();
        let info = head.extensions.get::<CacheInfo>();
        assert!(info.is_none(), "{fragments:?}: carried {info:?}");
        assert_eq!(body, "quiet body");
        let status = head.headers.get("cache-status").unwrap().to_str().unwrap();
        assert!(
            fragments.iter().all(|fragment| status.contains(fragment)),
            "{fragments:?}: {status}"
        );
    }
    assert_eq!(origin.hits("/quiet"), 1);
    // Turned back on, the next response carries it again.
    cache.set_settings(CacheSettings::default());
    let hit = send(&mut cache, get(&origin.url("/quiet"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert!(hit.info.from_cache);
    assert_eq!(origin.hits("/quiet"), 1);
}

#[tokio::test]
async fn heuristic_freshness_from_last_modified() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    // Ten days old at the first response: heuristically fresh for 10% of that, at most a day.
    let last_modified = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    let lm = http_date(last_modified);
    let origin_clock = clock.clone();
    let lm_route = lm.clone();
    origin.route("/heuristic", move |seen| {
        let date = http_date(cachelayer::Clock::now(&origin_clock));
        if seen.header("if-modified-since") == Some(lm_route.as_str()) {
            Reply::not_modified()
                .header("date", &date)
                .header("last-modified", &lm_route)
        } else {
            Reply::ok("heuristic body")
                .header("date", &date)
                .header("last-modified", &lm_route)
        }
    });

    let first = send(&mut cache, get(&origin.url("/heuristic"))).await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    assert!(
        first.info.stored,
        "Last-Modified gives a heuristic lifetime: {:?}",
        first.info
    );
    let expires = first.info.expires.expect("a heuristic expiration");
    let lifetime = expires
        .duration_since(cachelayer::Clock::now(&clock))
        .unwrap();
    assert!(
        lifetime > Duration::from_secs(23 * 3600) && lifetime <= Duration::from_secs(24 * 3600),
        "heuristic lifetime {lifetime:?} is 10% of 10 days, capped at 24 h"
    );

    clock.advance(Duration::from_secs(3600));
    let hit = send(&mut cache, get(&origin.url("/heuristic"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.text(), "heuristic body");
    assert_eq!(origin.hits("/heuristic"), 1);

    clock.advance(Duration::from_secs(24 * 3600));
    let revalidated = send(&mut cache, get(&origin.url("/heuristic"))).await;
    assert_eq!(origin.hits("/heuristic"), 2, "stale after a day");
    assert_eq!(
        origin
            .last_request("/heuristic")
            .header("if-modified-since"),
        Some(lm.as_str()),
        "revalidated with the stored Last-Modified"
    );
    assert_eq!(revalidated.info.outcome, CacheOutcome::Revalidated);
    assert!(revalidated.info.revalidated);
    assert_eq!(revalidated.status, 200);
    assert_eq!(revalidated.text(), "heuristic body");
}

#[tokio::test]
async fn no_heuristic_freshness_without_last_modified() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/plain", |_| Reply::ok("no freshness information"));

    let first = send(&mut cache, get(&origin.url("/plain"))).await;
    assert!(
        !first.info.stored,
        "stale at once and no validator: never reusable"
    );
    let second = send(&mut cache, get(&origin.url("/plain"))).await;
    assert_eq!(second.info.outcome, CacheOutcome::Miss);
    assert_eq!(origin.hits("/plain"), 2);
}

#[tokio::test]
async fn request_no_cache_and_pragma_go_to_the_origin_even_when_fresh() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    origin.route("/nocache", move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("version {n}")).header("cache-control", "max-age=60")
    });
    let url = origin.url("/nocache");

    assert_eq!(send(&mut cache, get(&url)).await.text(), "version 0");
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );

    let forced = send(&mut cache, get_with(&url, &[("cache-control", "no-cache")])).await;
    assert_eq!(origin.hits("/nocache"), 2, "no-cache reaches the origin");
    assert_eq!(forced.text(), "version 1");
    assert!(!forced.info.from_cache);
    assert!(
        forced.info.stored,
        "the new response replaces the stored one"
    );

    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(
        hit.text(),
        "version 1",
        "the stored response is the new one"
    );

    let pragma = send(&mut cache, get_with(&url, &[("pragma", "no-cache")])).await;
    assert_eq!(
        origin.hits("/nocache"),
        3,
        "Pragma: no-cache reaches the origin"
    );
    assert_eq!(pragma.text(), "version 2");
    assert!(!pragma.info.from_cache);
    assert!(pragma.info.stored);

    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.text(), "version 2");
    assert_eq!(origin.hits("/nocache"), 3);
}

/// `CacheOutcome::ForwardedByRequest` is documented as "the request's own directives sent it to
/// the origin (`no-cache`; `fwd=request`)": a fresh stored response skipped because of the
/// request's `no-cache` (or `Pragma: no-cache`) is not a stale one.
#[tokio::test]
async fn request_no_cache_on_a_fresh_response_is_labelled_forwarded_by_request() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/label", |_| {
        Reply::ok("labelled").header("cache-control", "max-age=60")
    });
    let url = origin.url("/label");
    send(&mut cache, get(&url)).await;

    for directive in [("cache-control", "no-cache"), ("pragma", "no-cache")] {
        let forced = send(&mut cache, get_with(&url, &[directive])).await;
        assert_eq!(forced.text(), "labelled");
        assert_eq!(
            forced.info.outcome,
            CacheOutcome::ForwardedByRequest,
            "{directive:?}: {:?}",
            forced.info
        );
        assert_eq!(
            forced.info.detail, None,
            "{directive:?}: the stored response was fresh"
        );
        let status = forced.cache_status();
        assert!(status.contains("fwd=request"), "{directive:?}: {status}");
    }
    assert_eq!(origin.hits("/label"), 3);
}

#[tokio::test]
async fn no_store_response_and_request_are_never_stored() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/nostore", |_| {
        Reply::ok("secret").header("cache-control", "no-store")
    });
    origin.route("/cacheable", |_| {
        Reply::ok("cacheable").header("cache-control", "max-age=60")
    });

    for round in 1..=2 {
        let got = send(&mut cache, get(&origin.url("/nostore"))).await;
        assert_eq!(got.text(), "secret");
        assert_eq!(got.info.outcome, CacheOutcome::Miss);
        assert!(!got.info.stored);
        assert_eq!(got.info.detail, Some(Detail::NoStore));
        assert!(
            got.cache_status().contains("detail=no-store"),
            "{}",
            got.cache_status()
        );
        assert_eq!(origin.hits("/nostore"), round);
    }

    let url = origin.url("/cacheable");
    let got = send(&mut cache, get_with(&url, &[("cache-control", "no-store")])).await;
    assert_eq!(got.text(), "cacheable");
    assert!(
        !got.info.stored,
        "the request's no-store forbids storing its response"
    );
    assert_eq!(got.info.detail, Some(Detail::RequestNoStore));
    let next = send(&mut cache, get(&url)).await;
    assert_eq!(next.info.outcome, CacheOutcome::Miss, "nothing was stored");
    assert_eq!(origin.hits("/cacheable"), 2);
    assert!(next.info.stored);
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/cacheable"), 2);
}

#[tokio::test]
async fn only_if_cached_with_nothing_stored_is_a_504_without_the_origin() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/offline", |_| {
        Reply::ok("online").header("cache-control", "max-age=60")
    });
    let url = origin.url("/offline");

    let got = send(
        &mut cache,
        get_with(&url, &[("cache-control", "only-if-cached")]),
    )
    .await;
    assert_eq!(got.status, 504);
    assert_eq!(got.info.outcome, CacheOutcome::NotCached);
    assert!(!got.info.from_cache);
    assert_eq!(
        origin.hits("/offline"),
        0,
        "only-if-cached never contacts the origin"
    );
    assert!(
        got.cache_status().contains("fwd-status=504"),
        "{}",
        got.cache_status()
    );

    // Once stored, only-if-cached is answered from the cache.
    send(&mut cache, get(&url)).await;
    let got = send(
        &mut cache,
        get_with(&url, &[("cache-control", "only-if-cached")]),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "online");
    assert_eq!(got.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/offline"), 1);
}

/// A fresh stored response that the request's `max-age` / `min-fresh` does not accept is
/// revalidated, and labelled as forwarded by the request, not as stale (RFC 9111 §5.2.1.1,
/// §5.2.1.3).
#[tokio::test]
async fn request_max_age_and_min_fresh_revalidate_a_fresh_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/strict", |seen| {
        if seen.header("if-none-match") == Some("\"s1\"") {
            Reply::not_modified()
                .header("etag", "\"s1\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::ok("strict")
                .header("etag", "\"s1\"")
                .header("cache-control", "max-age=60")
        }
    });
    let url = origin.url("/strict");
    send(&mut cache, get(&url)).await;
    clock.advance(Duration::from_secs(10));

    let accepted = send(
        &mut cache,
        get_with(&url, &[("cache-control", "max-age=30")]),
    )
    .await;
    assert_eq!(
        accepted.info.outcome,
        CacheOutcome::Hit,
        "age 10 <= max-age 30"
    );
    assert_eq!(origin.hits("/strict"), 1);

    for directive in ["max-age=5", "min-fresh=61"] {
        let forced = send(&mut cache, get_with(&url, &[("cache-control", directive)])).await;
        assert_eq!(forced.text(), "strict", "{directive}");
        assert_eq!(
            forced.info.outcome,
            CacheOutcome::Revalidated,
            "{directive}: {:?}",
            forced.info
        );
        assert_eq!(
            origin.last_request("/strict").header("if-none-match"),
            Some("\"s1\""),
            "{directive}: revalidated with the stored validator"
        );
    }
    assert_eq!(origin.hits("/strict"), 3);
}
