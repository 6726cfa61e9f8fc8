//! Redirects: permanent redirects are cacheable (RFC 9110 §15.1), and a response reached through
//! redirects followed below the cache is also found under the final URL (alias keys).
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings};
use common::{Origin, Reply, cache, client, get, send};
use tower::{Layer, ServiceBuilder};
use tower_http::follow_redirect::FollowRedirectLayer;

/// A client that follows redirects itself (above the cache) finds each hop in the cache: 301 and
/// 308 are stored without explicit freshness; a 302 is not.
#[tokio::test]
async fn permanent_redirects_are_cached_hop_by_hop() {
    let (layer, clock) = cache(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let mut service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(layer)
        .service(client());
    origin.route("/old", |_| Reply::status(301).header("location", "/newer"));
    origin.route("/newer", |_| {
        Reply::status(308).header("location", "/temporary")
    });
    origin.route("/temporary", |_| {
        Reply::status(302).header("location", "/final")
    });
    origin.route("/final", |_| {
        Reply::ok("final").header("cache-control", "max-age=60")
    });
    let url = origin.url("/old");

    for round in 0..2 {
        let got = send(&mut service, get(&url)).await;
        assert_eq!(got.text(), "final", "round {round}");
    }
    assert_eq!(origin.hits("/old"), 1, "301 stored");
    assert_eq!(origin.hits("/newer"), 1, "308 stored");
    assert_eq!(
        origin.hits("/temporary"),
        2,
        "a 302 without freshness is not stored"
    );
    assert_eq!(origin.hits("/final"), 1);
}

/// With a redirect-following layer below the cache, the final response is stored under the
/// requested URL and under the final URL.
#[tokio::test]
async fn redirects_followed_below_the_cache_store_an_alias_for_the_final_url() {
    let (layer, clock) = cache(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let mut service = layer.layer(FollowRedirectLayer::new().layer(client()));
    origin.route("/short", |_| {
        Reply::status(302).header("location", "/the-article")
    });
    origin.route("/the-article", |_| {
        Reply::ok("article").header("cache-control", "max-age=60")
    });

    let first = send(&mut service, get(&origin.url("/short"))).await;
    assert_eq!(first.text(), "article");
    assert!(first.info.stored);

    let again = send(&mut service, get(&origin.url("/short"))).await;
    assert_eq!(again.info.outcome, CacheOutcome::Hit);
    let direct = send(&mut service, get(&origin.url("/the-article"))).await;
    assert_eq!(
        direct.info.outcome,
        CacheOutcome::Hit,
        "the final URL finds the response"
    );
    assert_eq!(direct.text(), "article");
    assert_eq!(origin.hits("/short"), 1);
    assert_eq!(origin.hits("/the-article"), 1);
}
