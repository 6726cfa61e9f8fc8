//! RFC corners checked against a real origin: targeted cache-control fields parsed as Structured
//! Fields (RFC 9213 §2.1), and `Age` on responses that reach the cache late (RFC 9111 §4.2.3).
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::CacheSettings;
use common::{Origin, Reply, cached_client, get, send};

/// A `CDN-Cache-Control` that is not a valid Structured Field Dictionary, or whose directives
/// have the wrong type, is ignored as a whole: `Cache-Control` decides.
#[tokio::test]
async fn invalid_targeted_fields_are_ignored_as_a_whole() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    let cases = [
        ("/garbage", "max-age=10000, &&&&&"),
        ("/string-max-age", "max-age=\"10000\""),
        ("/negative", "max-age=-5"),
        ("/token-flag", "no-store=yes, max-age=60"),
    ];
    for (path, targeted) in cases {
        origin.route(path, move |_| {
            Reply::ok("x")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", targeted)
        });
        let got = send(&mut cache, get(&origin.url(path))).await;
        assert!(!got.info.stored, "{targeted}: {:?}", got.info);
        assert_eq!(got.info.detail, Some("no-store"), "{targeted}");
    }
    // A valid one decides over Cache-Control, its booleans and integers read as directives.
    origin.route("/valid", |_| {
        Reply::ok("x").header("cache-control", "no-store").header(
            "cdn-cache-control",
            "max-age=600, must-revalidate, ext=(a b)",
        )
    });
    let got = send(&mut cache, get(&origin.url("/valid"))).await;
    assert!(got.info.stored, "{:?}", got.info);
    let hit = send(&mut cache, get(&origin.url("/valid"))).await;
    assert!(hit.info.from_cache);
    // `?0` turns a directive off.
    origin.route("/off", |_| {
        Reply::ok("x")
            .header("cache-control", "max-age=600")
            .header("cdn-cache-control", "no-store=?0, max-age=60")
    });
    let got = send(&mut cache, get(&origin.url("/off"))).await;
    assert!(got.info.stored, "{:?}", got.info);
}

/// A response that reaches the cache long after its request was sent carries that delay as
/// its `Age` (RFC 9111 §4.2.3), stored or not.
#[tokio::test]
async fn late_responses_carry_their_age() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    for (path, cache_control) in [("/stored", "max-age=600"), ("/unstored", "no-store")] {
        let slow = clock.clone();
        origin.route(path, move |_| {
            // The origin answers 5 seconds after the request was sent.
            slow.advance(std::time::Duration::from_secs(5));
            Reply::ok("late").header("cache-control", cache_control)
        });
        let got = send(&mut cache, get(&origin.url(path))).await;
        assert_eq!(got.age(), Some(5), "{path}");
    }
    // A prompt response gets no Age of the cache's making.
    origin.route("/prompt", |_| {
        Reply::ok("prompt").header("cache-control", "max-age=600")
    });
    let got = send(&mut cache, get(&origin.url("/prompt"))).await;
    assert_eq!(got.age(), None);
}

/// The cache revalidates a stale response (`ETag: "abcdef"`) for an unconditional GET and the
/// origin answers 304 with another ETag: the client gets a full response, never a bare 304.
#[tokio::test]
async fn a_304_for_other_validators_never_reaches_an_unconditional_client() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    origin.route("/lb", |seen| {
        if seen.header("if-none-match").is_some() {
            Reply::not_modified().header("etag", "\"from-another-server\"")
        } else {
            Reply::ok("the representation")
                .header("etag", "\"abcdef\"")
                .header("cache-control", "max-age=60")
        }
    });
    let url = origin.url("/lb");
    send(&mut cache, get(&url)).await;
    clock.advance(std::time::Duration::from_secs(120));
    let got = send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/lb"), 2, "revalidated");
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "the representation");
    assert_eq!(got.info.detail, Some("validator-mismatch"));
    // A client that sent its own conditional gets the origin's 304.
    let conditional = send(
        &mut cache,
        common::get_with(&url, &[("if-none-match", "\"from-another-server\"")]),
    )
    .await;
    assert_eq!(conditional.status, 304);
}
