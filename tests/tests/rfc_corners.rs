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
