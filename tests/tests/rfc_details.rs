//! RFC 9111 details against a real origin: `Vary: *`, field-specific `no-cache` / `private`,
//! `must-understand`, clocks that disagree, and an axum `Router` as the inner service.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use cachelayer::{CacheOutcome, CacheSettings, Clock};
use common::{Origin, Reply, cache, cached_client, get, http_date, send};
use std::time::Duration;
use tower::Layer;

/// `Vary: *` never matches a later request (RFC 9111 §4.1): such a response is not stored.
#[tokio::test]
async fn vary_star_is_never_reused() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/star", |_| {
        Reply::ok("varies by everything")
            .header("cache-control", "max-age=60")
            .header("vary", "*")
    });
    let url = origin.url("/star");
    let first = send(&mut cache, get(&url)).await;
    assert!(!first.info.stored);
    assert_eq!(first.info.detail, Some(Detail::VaryStar));
    send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/star"), 2);
}

/// `no-cache="set-cookie"` (RFC 9111 §5.2.2.4) and, in a shared cache, `private="x-user"`
/// (§5.2.2.7): the response is stored and reused without those fields.
#[tokio::test]
async fn field_specific_no_cache_and_private_strip_those_fields() {
    for shared in [false, true] {
        let (mut cache, clock) = cached_client(CacheSettings {
            shared,
            ..CacheSettings::default()
        });
        let origin = Origin::start(&clock).await;
        origin.route("/fields", |_| {
            Reply::ok("page")
                .header(
                    "cache-control",
                    "max-age=60, no-cache=\"set-cookie\", private=\"x-user\"",
                )
                .header("set-cookie", "session=secret")
                .header("x-user", "alice")
                .header("x-kept", "yes")
        });
        let url = origin.url("/fields");
        let first = send(&mut cache, get(&url)).await;
        assert_eq!(
            first.header("set-cookie"),
            Some("session=secret"),
            "the origin's response is passed whole"
        );
        let hit = send(&mut cache, get(&url)).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "shared={shared}");
        assert_eq!(
            hit.header("set-cookie"),
            None,
            "no-cache=\"set-cookie\": never reused"
        );
        assert_eq!(hit.header("x-kept"), Some("yes"));
        let user = hit.header("x-user");
        if shared {
            assert_eq!(
                user, None,
                "a shared cache does not keep private=\"x-user\""
            );
        } else {
            assert_eq!(
                user,
                Some("alice"),
                "a private cache may keep private fields"
            );
        }
        assert_eq!(origin.hits("/fields"), 1);
    }
}

/// `must-understand` with `no-store`: a cache that understands the status ignores `no-store`
/// (RFC 9111 §5.2.2.3).
#[tokio::test]
async fn must_understand_overrides_no_store_for_understood_statuses() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/mu", |_| {
        Reply::ok("understood").header("cache-control", "max-age=60, must-understand, no-store")
    });
    let url = origin.url("/mu");
    assert!(send(&mut cache, get(&url)).await.info.stored);
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/mu"), 1);
}

/// A response whose `Date` is an hour behind the local clock arrives an hour old (apparent age,
/// RFC 9111 §4.2.3): with `max-age=7200` it is fresh for one more hour, and its `Age` says so.
#[tokio::test]
async fn a_date_behind_the_local_clock_ages_the_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let an_hour_ago = http_date(clock.now() - Duration::from_secs(3600));
    origin.route("/old-date", move |_| {
        Reply::ok("aged")
            .header("cache-control", "max-age=7200")
            .header("date", an_hour_ago.clone())
    });
    let url = origin.url("/old-date");
    send(&mut cache, get(&url)).await;
    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    let age = hit.age().unwrap();
    assert!((3600..3605).contains(&age), "Age {age}");
    clock.advance(Duration::from_secs(3590));
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );
    clock.advance(Duration::from_secs(20));
    assert!(
        !send(&mut cache, get(&url)).await.info.from_cache,
        "stale after 2 hours of age"
    );
}

/// An axum `Router` as the inner service (an app's in-process routes behind the cache).
#[tokio::test]
async fn wraps_an_axum_router() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = axum::Router::new().route(
        "/hello",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { ([("cache-control", "max-age=60")], "hello from axum") }
        }),
    );
    let (layer, _clock) = cache(CacheSettings::default());
    let mut service = layer.layer(router);
    let request = || -> http::Request<axum::body::Body> {
        http::Request::get("http://app.local/hello")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    for expected_from_cache in [false, true] {
        use http_body_util::BodyExt;
        use tower::{Service, ServiceExt};
        let response = ServiceExt::<http::Request<axum::body::Body>>::ready(&mut service)
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        let info = response
            .extensions()
            .get::<cachelayer::CacheInfo>()
            .cloned()
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello from axum");
        assert_eq!(info.from_cache, expected_from_cache);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
