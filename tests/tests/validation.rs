//! Validation (RFC 9111 §4.3): revalidation with `If-None-Match` / `If-Modified-Since`, 304
//! freshening, a changed origin replacing the stored response, and the client's own conditional
//! requests answered from the cache.

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings};
use common::{Origin, Reply, cached_client, get, get_with, send};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// An origin resource with an ETag that answers `If-None-Match` with 304.
fn etag_resource(
    origin: &Origin,
    path: &str,
    cache_control: &'static str,
) -> Arc<Mutex<(String, String)>> {
    let current = Arc::new(Mutex::new((
        "\"v1\"".to_owned(),
        "first version".to_owned(),
    )));
    let state = current.clone();
    origin.route(path, move |seen| {
        let (etag, body) = state.lock().unwrap().clone();
        if seen.header("if-none-match") == Some(etag.as_str()) {
            Reply::not_modified()
                .header("etag", &etag)
                .header("cache-control", cache_control)
        } else {
            Reply::ok(body)
                .header("etag", &etag)
                .header("cache-control", cache_control)
                .header("content-type", "text/plain")
        }
    });
    current
}

#[tokio::test]
async fn etag_revalidation_with_304_serves_the_stored_body() {
    for cache_control in ["max-age=0", "no-cache"] {
        let (mut cache, clock) = cached_client(CacheSettings::default());
        let origin = Origin::start(&clock).await;
        let current = etag_resource(&origin, "/etag", cache_control);
        let url = origin.url("/etag");

        let first = send(&mut cache, get(&url)).await;
        assert_eq!(first.text(), "first version");
        assert!(
            first.info.stored,
            "{cache_control}: stored for revalidation"
        );
        assert!(
            origin
                .last_request("/etag")
                .header("if-none-match")
                .is_none()
        );

        let second = send(&mut cache, get(&url)).await;
        assert_eq!(
            origin.hits("/etag"),
            2,
            "{cache_control}: revalidated with the origin"
        );
        assert_eq!(
            origin.last_request("/etag").header("if-none-match"),
            Some("\"v1\""),
            "{cache_control}: the stored ETag is sent"
        );
        assert_eq!(
            second.status, 200,
            "the client gets the full response, not the 304"
        );
        assert_eq!(second.text(), "first version");
        assert_eq!(second.info.outcome, CacheOutcome::Revalidated);
        assert!(second.info.revalidated);
        assert!(second.info.from_cache);
        assert_eq!(second.header("etag"), Some("\"v1\""));
        assert_eq!(second.header("content-type"), Some("text/plain"));
        if let Some(length) = second.header("content-length") {
            assert_eq!(
                length, "13",
                "Content-Length still describes the stored body"
            );
        }
        let status = second.cache_status();
        assert!(
            status.contains("fwd=stale") && status.contains("fwd-status=304"),
            "{status}"
        );

        // The origin changes: the new response replaces the stored one.
        *current.lock().unwrap() = ("\"v2\"".to_owned(), "second version".to_owned());
        let third = send(&mut cache, get(&url)).await;
        assert_eq!(origin.hits("/etag"), 3);
        assert_eq!(
            origin.last_request("/etag").header("if-none-match"),
            Some("\"v1\"")
        );
        assert_eq!(third.status, 200);
        assert_eq!(third.text(), "second version");
        assert!(!third.info.from_cache);
        assert!(!third.info.revalidated);
        assert!(third.info.stored);
        assert_eq!(third.header("etag"), Some("\"v2\""));

        let fourth = send(&mut cache, get(&url)).await;
        assert_eq!(origin.hits("/etag"), 4);
        assert_eq!(
            origin.last_request("/etag").header("if-none-match"),
            Some("\"v2\""),
            "{cache_control}: the new ETag was stored"
        );
        assert_eq!(fourth.info.outcome, CacheOutcome::Revalidated);
        assert_eq!(fourth.text(), "second version", "the new body was stored");
    }
}

#[tokio::test]
async fn last_modified_revalidation_with_304_serves_the_stored_body() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let last_modified = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let lm = last_modified.clone();
    origin.route("/lm", move |seen| {
        if seen.header("if-modified-since") == Some(lm.as_str()) {
            Reply::not_modified().header("cache-control", "max-age=0")
        } else {
            Reply::ok("dated body")
                .header("last-modified", &lm)
                .header("cache-control", "max-age=0")
        }
    });
    let url = origin.url("/lm");

    let first = send(&mut cache, get(&url)).await;
    assert_eq!(first.text(), "dated body");
    assert!(first.info.stored);

    let second = send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/lm"), 2);
    let sent = origin.last_request("/lm");
    assert_eq!(
        sent.header("if-modified-since"),
        Some(last_modified.as_str())
    );
    assert!(sent.header("if-none-match").is_none(), "no ETag was stored");
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "dated body");
    assert_eq!(second.info.outcome, CacheOutcome::Revalidated);
    assert!(second.info.revalidated);
    assert_eq!(second.header("last-modified"), Some(last_modified.as_str()));
}

#[tokio::test]
async fn a_304_with_max_age_freshens_the_stored_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/freshen", |seen| {
        if seen.header("if-none-match") == Some("\"v1\"") {
            Reply::not_modified()
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::ok("freshened body")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=0")
        }
    });
    let url = origin.url("/freshen");

    send(&mut cache, get(&url)).await;
    let revalidated = send(&mut cache, get(&url)).await;
    assert_eq!(revalidated.info.outcome, CacheOutcome::Revalidated);
    assert_eq!(revalidated.text(), "freshened body");
    assert_eq!(
        revalidated.header("cache-control"),
        Some("max-age=60"),
        "the 304's header fields replace the stored ones"
    );
    assert_eq!(origin.hits("/freshen"), 2);

    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/freshen"), 2, "fresh for 60 s after the 304");
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.text(), "freshened body");

    clock.advance(Duration::from_secs(30));
    assert_eq!(
        send(&mut cache, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );
    clock.advance(Duration::from_secs(31));
    let again = send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/freshen"), 3, "stale again 60 s after the 304");
    assert_eq!(again.info.outcome, CacheOutcome::Revalidated);
    assert_eq!(again.text(), "freshened body");
}

#[tokio::test]
async fn client_conditional_request_is_answered_from_a_fresh_stored_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/cond", |_| {
        Reply::ok("conditional body")
            .header("etag", "\"v1\"")
            .header("cache-control", "max-age=60")
    });
    let url = origin.url("/cond");
    send(&mut cache, get(&url)).await;

    let not_modified = send(&mut cache, get_with(&url, &[("if-none-match", "\"v1\"")])).await;
    assert_eq!(origin.hits("/cond"), 1, "answered without the origin");
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some("\"v1\""));
    assert_eq!(not_modified.info.outcome, CacheOutcome::Hit);
    assert!(not_modified.info.from_cache);

    let weak = send(
        &mut cache,
        get_with(&url, &[("if-none-match", "W/\"v1\", \"v0\"")]),
    )
    .await;
    assert_eq!(weak.status, 304, "If-None-Match uses the weak comparison");

    let full = send(
        &mut cache,
        get_with(&url, &[("if-none-match", "\"other\"")]),
    )
    .await;
    assert_eq!(origin.hits("/cond"), 1);
    assert_eq!(full.status, 200);
    assert_eq!(full.text(), "conditional body");
    assert_eq!(full.info.outcome, CacheOutcome::Hit);

    let star = send(&mut cache, get_with(&url, &[("if-none-match", "*")])).await;
    assert_eq!(star.status, 304);
    assert_eq!(origin.hits("/cond"), 1);
}

#[tokio::test]
async fn client_conditional_request_on_a_stale_response_gets_the_origins_304() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/cond-stale", |seen| {
        if seen.header("if-none-match") == Some("\"v1\"") {
            Reply::not_modified()
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::ok("stale conditional body")
                .header("etag", "\"v1\"")
                .header("cache-control", "max-age=60")
        }
    });
    let url = origin.url("/cond-stale");
    send(&mut cache, get(&url)).await;
    clock.advance(Duration::from_secs(61));

    let got = send(&mut cache, get_with(&url, &[("if-none-match", "\"v1\"")])).await;
    assert_eq!(origin.hits("/cond-stale"), 2);
    assert_eq!(
        origin.last_request("/cond-stale").header("if-none-match"),
        Some("\"v1\"")
    );
    assert_eq!(
        got.status, 304,
        "the client asked a conditional question: it gets the 304"
    );
    assert!(got.body.is_empty());

    // The 304 freshened the stored response: an unconditional request is a hit.
    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(origin.hits("/cond-stale"), 2);
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.status, 200);
    assert_eq!(hit.text(), "stale conditional body");
}
