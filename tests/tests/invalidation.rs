//! Invalidation after unsafe requests (RFC 9111 §4.4) and targeted cache control (RFC 9213),
//! against a real origin.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings};
use common::{Origin, Reply, cached_client, get, request, send};
use http::Method;
use std::time::Duration;

fn item(body: &'static str) -> Reply {
    Reply::ok(body).header("cache-control", "max-age=600")
}

/// A successful POST, PUT, DELETE or PATCH removes the stored response of its target URI and of
/// the same-origin URIs in `Location` / `Content-Location`.
#[tokio::test]
async fn unsafe_requests_invalidate_the_target_and_same_origin_locations() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    for path in ["/items/1", "/items/2", "/items/3"] {
        origin.route(path, |seen| {
            if seen.method == Method::GET {
                item("item")
            } else {
                Reply::status(201)
                    .header("location", "/items/2")
                    .header("content-location", "http://elsewhere.example/items/3")
            }
        });
    }
    for path in ["/items/1", "/items/2", "/items/3"] {
        send(&mut cache, get(&origin.url(path))).await;
        assert_eq!(
            send(&mut cache, get(&origin.url(path))).await.info.outcome,
            CacheOutcome::Hit
        );
    }

    let post = send(
        &mut cache,
        request(Method::POST, &origin.url("/items/1"), &[]),
    )
    .await;
    assert_eq!(post.status, 201);
    assert_eq!(post.info.outcome, CacheOutcome::Bypass);

    let one = send(&mut cache, get(&origin.url("/items/1"))).await;
    assert_eq!(
        one.info.outcome,
        CacheOutcome::Miss,
        "the target URI was invalidated"
    );
    let two = send(&mut cache, get(&origin.url("/items/2"))).await;
    assert_eq!(
        two.info.outcome,
        CacheOutcome::Miss,
        "the same-origin Location was invalidated"
    );
    let three = send(&mut cache, get(&origin.url("/items/3"))).await;
    assert_eq!(
        three.info.outcome,
        CacheOutcome::Hit,
        "another origin's URI is left alone"
    );
    assert_eq!(origin.hits("/items/1"), 3);
    assert_eq!(origin.hits("/items/2"), 2);
}

/// Error responses to unsafe requests invalidate nothing; every unsafe method invalidates.
#[tokio::test]
async fn only_non_error_responses_invalidate() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/doc", |seen| match seen.method {
        Method::GET => item("doc"),
        Method::PATCH => Reply::status(500),
        _ => Reply::status(204),
    });
    let url = origin.url("/doc");
    send(&mut cache, get(&url)).await;

    send(&mut cache, request(Method::PATCH, &url, &[])).await;
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit,
        "a 500 invalidates nothing"
    );

    for method in [Method::PUT, Method::DELETE, Method::POST] {
        send(&mut cache, request(method.clone(), &url, &[])).await;
        let after = send(&mut cache, get(&url)).await;
        assert_eq!(
            after.info.outcome,
            CacheOutcome::Miss,
            "{method} invalidates"
        );
    }
}

/// In a shared cache, `CDN-Cache-Control` takes precedence over `Cache-Control` and `Expires`
/// (RFC 9213); a private cache ignores it.
#[tokio::test]
async fn cdn_cache_control_targets_shared_caches() {
    for shared in [true, false] {
        let settings = CacheSettings {
            shared,
            ..CacheSettings::default()
        };
        let (mut cache, clock) = cached_client(settings);
        let origin = Origin::start(&clock).await;
        origin.route("/cdn-only", |_| {
            Reply::ok("for the CDN")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=60")
        });
        origin.route("/shorter", |_| {
            Reply::ok("shorter at the CDN")
                .header("cache-control", "max-age=600")
                .header("cdn-cache-control", "max-age=10")
        });
        let first = send(&mut cache, get(&origin.url("/cdn-only"))).await;
        assert_eq!(
            first.info.stored, shared,
            "shared={shared}: {:?}",
            first.info
        );
        send(&mut cache, get(&origin.url("/shorter"))).await;
        clock.advance(Duration::from_secs(11));
        let later = send(&mut cache, get(&origin.url("/shorter"))).await;
        if shared {
            assert!(
                !later.info.from_cache,
                "the CDN lifetime of 10 s has passed"
            );
        } else {
            assert_eq!(
                later.info.outcome,
                CacheOutcome::Hit,
                "a private cache reads Cache-Control"
            );
        }
    }
}

/// Invalidating a URL whose responses vary removes every variant, not only the one at the
/// primary key: no response from before the unsafe request is served after it.
#[tokio::test]
async fn invalidation_removes_every_variant() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let version = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let current = version.clone();
    origin.route("/greeting", move |seen| {
        if seen.method == Method::GET {
            let v = current.load(std::sync::atomic::Ordering::SeqCst);
            let lang = seen.header("accept-language").unwrap_or("en").to_owned();
            Reply::ok(format!("{lang} v{v}"))
                .header("cache-control", "max-age=600")
                .header("vary", "accept-language")
        } else {
            current.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Reply::status(204)
        }
    });
    let url = origin.url("/greeting");
    let get_lang = |lang: &'static str| common::get_with(&url, &[("accept-language", lang)]);
    for lang in ["en", "fr", "en", "fr"] {
        send(&mut cache, get_lang(lang)).await;
    }
    assert_eq!(origin.hits("/greeting"), 2, "both variants stored");

    send(&mut cache, request(Method::PUT, &url, &[])).await;

    let en = send(&mut cache, get_lang("en")).await;
    assert_eq!(en.text(), "en v2");
    let fr = send(&mut cache, get_lang("fr")).await;
    assert_eq!(
        fr.text(),
        "fr v2",
        "the older fr variant was invalidated too"
    );
    assert!(!fr.info.from_cache);
}
