//! Range requests and 206 responses (RFC 9110 §14, RFC 9111 §3.3), against a real origin.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings};
use common::{Origin, Reply, cached_client, get, get_with, send};

fn ranged_origin_reply(range: Option<&str>) -> Reply {
    match range {
        Some("bytes=0-3") => Reply::status(206)
            .body("0123")
            .header("content-range", "bytes 0-3/10")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60"),
        _ => Reply::ok("0123456789")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60"),
    }
}

/// A 206 from the origin passes through and is never stored as the full response.
#[tokio::test]
async fn partial_responses_pass_through_and_are_not_stored() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranged_origin_reply(seen.header("range")));
    let url = origin.url("/file");

    let part = send(&mut cache, get_with(&url, &[("range", "bytes=0-3")])).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "0123");
    assert!(!part.info.stored, "{:?}", part.info);

    let full = send(&mut cache, get(&url)).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.text(), "0123456789", "never the partial body");
    assert_eq!(full.info.outcome, CacheOutcome::Miss);
    assert_eq!(origin.hits("/file"), 2);
}

/// With the full response stored, single ranges are answered from it without the origin.
#[tokio::test]
async fn ranges_are_served_from_a_stored_full_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranged_origin_reply(seen.header("range")));
    let url = origin.url("/file");
    send(&mut cache, get(&url)).await;

    let part = send(&mut cache, get_with(&url, &[("range", "bytes=2-5")])).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "2345");
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    assert_eq!(part.header("content-length"), Some("4"));
    assert_eq!(part.info.outcome, CacheOutcome::Hit);

    let suffix = send(&mut cache, get_with(&url, &[("range", "bytes=-2")])).await;
    assert_eq!((suffix.status.as_u16(), suffix.text()), (206, "89"));

    let beyond = send(&mut cache, get_with(&url, &[("range", "bytes=50-")])).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */10"));

    let stale_validator = send(
        &mut cache,
        get_with(&url, &[("range", "bytes=0-1"), ("if-range", "\"old\"")]),
    )
    .await;
    assert_eq!(
        (stale_validator.status.as_u16(), stale_validator.text()),
        (200, "0123456789")
    );

    let several = send(&mut cache, get_with(&url, &[("range", "bytes=0-1,5-6")])).await;
    assert_eq!(
        (several.status.as_u16(), several.text()),
        (200, "0123456789")
    );
    assert_eq!(origin.hits("/file"), 1, "every range came from the cache");
}
