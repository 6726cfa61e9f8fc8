//! RFC corners checked against a real origin: targeted cache-control fields parsed as Structured
//! Fields (RFC 9213 §2.1), and `Age` on responses that reach the cache late (RFC 9111 §4.2.3).
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::CacheSettings;
use cachelayer::Detail;
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
        assert_eq!(got.info.detail, Some(Detail::NoStore), "{targeted}");
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
    // The stored response's age counts the delay once: 5 seconds late, then stored for the 5
    // seconds the other request took.
    let hit = send(&mut cache, get(&origin.url("/stored"))).await;
    assert!(hit.info.from_cache);
    assert_eq!(hit.age(), Some(10), "the delay counted once");
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
    assert_eq!(got.info.detail, Some(Detail::ValidatorMismatch));
    // A client that sent its own conditional gets the origin's 304.
    let conditional = send(
        &mut cache,
        common::get_with(&url, &[("if-none-match", "\"from-another-server\"")]),
    )
    .await;
    assert_eq!(conditional.status, 304);
}

/// A stale response without a validator is kept for `stale_retention`: a request's `max-stale`
/// can still use it, and `delete_expired` finds it.
#[tokio::test]
async fn stale_responses_without_validators_are_kept() {
    let (layer, clock) = common::cache(CacheSettings::default());
    let handle = layer.cache();
    let mut cache = tower::Layer::layer(&layer, common::client());
    let origin = Origin::start(&clock).await;
    origin.route("/plain", |_| {
        Reply::ok("plain").header("cache-control", "max-age=60")
    });
    let url = origin.url("/plain");
    send(&mut cache, get(&url)).await;
    clock.advance(std::time::Duration::from_secs(120));
    let stale = send(
        &mut cache,
        common::get_with(&url, &[("cache-control", "max-stale=600")]),
    )
    .await;
    assert_eq!(stale.info.outcome, cachelayer::CacheOutcome::StaleHit);
    assert_eq!(origin.hits("/plain"), 1);
    assert_eq!(handle.delete_expired().await.unwrap(), 1);
}

/// A shared cache serves what it has while the origin cannot be reached at all, unless the
/// response must be revalidated; a private cache does not unless told to; a 5xx answer is
/// not "unreachable".
#[tokio::test]
async fn stale_is_served_while_the_origin_is_unreachable() {
    for (settings, served) in [
        (CacheSettings::shared(), true),
        (CacheSettings::default(), false),
        (
            CacheSettings {
                stale_if_unreachable: true,
                ..CacheSettings::default()
            },
            true,
        ),
    ] {
        // No pooled connection outlives the origin: once it stops, connecting fails.
        let (layer, clock) = common::cache(settings.clone());
        let mut cache = tower::Layer::layer(
            &layer,
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http::<http_body_util::Full<bytes::Bytes>>(),
        );
        let origin = Origin::start(&clock).await;
        origin.route("/plain", |_| {
            Reply::ok("plain").header("cache-control", "public, max-age=60")
        });
        origin.route("/must", |_| {
            Reply::ok("must").header("cache-control", "public, max-age=60, must-revalidate")
        });
        let plain = origin.url("/plain");
        let must = origin.url("/must");
        send(&mut cache, get(&plain)).await;
        send(&mut cache, get(&must)).await;
        clock.advance(std::time::Duration::from_secs(3600));
        drop(origin);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let got = common::try_send(&mut cache, get(&plain)).await;
        match got {
            Ok(got) if served => {
                assert_eq!(got.text(), "plain");
                assert_eq!(got.info.outcome, cachelayer::CacheOutcome::StaleIfError);
            }
            Err(_) if !served => {}
            other => panic!("{settings:?}: {other:?}"),
        }
        assert!(
            common::try_send(&mut cache, get(&must)).await.is_err(),
            "must-revalidate is never served stale"
        );
    }
    // A 5xx is an answer, not an unreachable origin.
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    let first = std::sync::atomic::AtomicBool::new(true);
    origin.route("/busy", move |_| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Reply::ok("ok").header("cache-control", "public, max-age=60")
        } else {
            Reply::status(503)
        }
    });
    send(&mut cache, get(&origin.url("/busy"))).await;
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        send(&mut cache, get(&origin.url("/busy"))).await.status,
        503
    );
}

/// A 200 to a HEAD updates the stored GET response (RFC 9111 §4.3.5): with the same validator
/// it freshens it; with another, it makes it stale.
#[tokio::test]
async fn head_responses_update_the_stored_get() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let etag = std::sync::Arc::new(std::sync::Mutex::new("\"v1\""));
    let current = etag.clone();
    origin.route("/h", move |seen| {
        let tag = *current.lock().unwrap();
        let reply = Reply::ok(if seen.method == http::Method::HEAD {
            ""
        } else {
            "body v1"
        });
        reply
            .header("etag", tag)
            .header("cache-control", "max-age=60")
    });
    let url = origin.url("/h");
    let head = |extra: &[(&str, &str)]| common::request(http::Method::HEAD, &url, extra);

    send(&mut cache, get(&url)).await;
    clock.advance(std::time::Duration::from_secs(120));
    let got = send(&mut cache, head(&[])).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        origin.hits("/h"),
        2,
        "the stale GET made the HEAD go to the origin"
    );
    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(
        hit.info.outcome,
        cachelayer::CacheOutcome::Hit,
        "freshened by the HEAD"
    );
    assert_eq!(hit.text(), "body v1");
    assert_eq!(origin.hits("/h"), 2);

    // The origin now has another representation: a HEAD shows it, the stored GET is stale.
    *etag.lock().unwrap() = "\"v2\"";
    send(&mut cache, head(&[("cache-control", "no-cache")])).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let after = send(&mut cache, get(&url)).await;
    assert_ne!(after.info.outcome, cachelayer::CacheOutcome::Hit);
    assert_eq!(origin.hits("/h"), 4);
}
