//! Range requests and 206 responses (RFC 9110 §14, RFC 9111 §3.3), against a real origin.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::Detail;
use cachelayer::{CacheOutcome, CacheService, CacheSettings, StaleWindow};
use common::{Client, Got, Origin, Reply, Seen, cached_client, get, get_with, request, secs, send};
use http::Method;

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

/// A 206 from the origin passes through as it came, and a full request never gets its part: it
/// goes to the origin.
#[tokio::test]
async fn partial_responses_pass_through_and_never_answer_a_full_request() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranged_origin_reply(seen.header("range")));
    let url = origin.url("/file");

    let part = send(&mut cache, get_with(&url, &[("range", "bytes=0-3")])).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "0123");
    assert_eq!(part.header("content-range"), Some("bytes 0-3/10"));

    let full = send(&mut cache, get(&url)).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.text(), "0123456789", "never the partial body");
    assert_eq!(full.info.outcome, CacheOutcome::Refreshed);
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

// ===== stored partial content (RFC 9111 §3.3, §3.4) =====

const REPRESENTATION: &str = "0123456789";

/// `bytes=a-b` of a request, when it asks for one closed range.
fn one_range(seen: &Seen) -> Option<(usize, usize)> {
    let spec = seen.header("range")?.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// An origin of [`REPRESENTATION`] with the header fields `fields`: a 206 for one closed range
/// (with `Content-Range: bytes a-b/10`), a 200 for anything else.
fn ranges_of(seen: &Seen, fields: &[(&str, &str)]) -> Reply {
    let reply = match one_range(seen) {
        Some((first, last)) => Reply::status(206)
            .body(&REPRESENTATION[first..=last])
            .header("content-range", format!("bytes {first}-{last}/10")),
        None => Reply::ok(REPRESENTATION),
    };
    fields
        .iter()
        .fold(reply, |reply, (name, value)| reply.header(name, value))
}

const STRONG: &[(&str, &str)] = &[("etag", "\"r1\""), ("cache-control", "max-age=60")];

fn range(spec: &str) -> (&'static str, String) {
    ("range", format!("bytes={spec}"))
}

async fn get_range(cache: &mut CacheService<Client>, url: &str, spec: &str) -> Got {
    let (name, value) = range(spec);
    send(cache, get_with(url, &[(name, &value)])).await
}

async fn statuses(cache: &CacheService<Client>) -> Vec<u16> {
    let mut statuses: Vec<u16> = cache
        .cache()
        .entries()
        .await
        .unwrap()
        .iter()
        .map(|e| e.status.as_u16())
        .collect();
    statuses.sort();
    statuses
}

/// 1. A single-range 206 with a known complete length and a strong ETag is stored as a partial
/// entry (listed as a 206); multipart, unknown-length and weakly validated 206s are not.
#[tokio::test]
async fn a_206_with_a_strong_validator_is_stored_as_a_partial_entry() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/strong", |seen| ranges_of(seen, STRONG));
    origin.route("/weak", |seen| {
        ranges_of(
            seen,
            &[("etag", "W/\"r1\""), ("cache-control", "max-age=60")],
        )
    });
    origin.route("/dated", |seen| {
        ranges_of(
            seen,
            &[
                ("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("cache-control", "max-age=60"),
            ],
        )
    });
    origin.route("/unknown-length", |_| {
        Reply::status(206)
            .body("0123")
            .header("content-range", "bytes 0-3/*")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60")
    });
    origin.route("/multipart", |_| {
        let body = "--b\r\ncontent-range: bytes 0-0/10\r\n\r\n0\r\n--b\r\ncontent-range: bytes 5-5/10\r\n\r\n5\r\n--b--\r\n";
        Reply::status(206)
            .body(body)
            .header("content-type", "multipart/byteranges; boundary=b")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60")
    });

    let part = get_range(&mut cache, &origin.url("/strong"), "0-3").await;
    assert_eq!((part.status.as_u16(), part.text()), (206, "0123"));
    assert!(part.info.stored, "{:?}", part.info);
    assert_eq!(statuses(&cache).await, [206], "listed honestly, as a 206");

    for (path, spec, detail) in [
        ("/weak", "0-3", "partial-weak-validator"),
        ("/dated", "0-3", "partial-weak-validator"),
        ("/unknown-length", "0-3", "partial-unknown-length"),
        ("/multipart", "0-0,5-5", "partial-multipart"),
    ] {
        let url = origin.url(path);
        let first = get_range(&mut cache, &url, spec).await;
        assert_eq!(first.status, 206, "{path}");
        assert!(!first.info.stored, "{path}: {:?}", first.info);
        assert_eq!(
            first.info.detail.map(Detail::as_str),
            Some(detail),
            "{path}"
        );
        let again = get_range(&mut cache, &url, spec).await;
        assert_eq!(again.info.outcome, CacheOutcome::Miss, "{path}");
        assert_eq!(
            origin.hits(path),
            2,
            "{path}: never answered from the cache"
        );
    }
    assert_eq!(statuses(&cache).await, [206]);
}

/// 2. A fresh partial entry answers the ranges its parts hold (206, Content-Range,
/// Content-Length, Age, a hit) without the origin; a full request is a miss that goes to the
/// origin, and its 200 replaces the partial entry. HEAD, `only-if-cached` and stale-if-error
/// never take the parts for the response.
#[tokio::test]
async fn covered_ranges_are_served_from_the_stored_parts_and_full_requests_go_to_the_origin() {
    let (mut cache, clock) = cached_client(CacheSettings {
        stale_if_error: StaleWindow::Any,
        ..CacheSettings::default()
    });
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranges_of(seen, STRONG));
    let url = origin.url("/file");

    get_range(&mut cache, &url, "2-7").await;
    clock.advance(secs(5));
    let hit = get_range(&mut cache, &url, "3-5").await;
    assert_eq!((hit.status.as_u16(), hit.text()), (206, "345"));
    assert_eq!(hit.header("content-range"), Some("bytes 3-5/10"));
    assert_eq!(hit.header("content-length"), Some("3"));
    assert_eq!(hit.age(), Some(5));
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert!(
        hit.cache_status().contains("; hit"),
        "{}",
        hit.cache_status()
    );
    let suffix = get_range(&mut cache, &url, "2-7").await;
    assert_eq!((suffix.status.as_u16(), suffix.text()), (206, "234567"));
    assert_eq!(origin.hits("/file"), 1, "both ranges came from the cache");

    let outside = get_range(&mut cache, &url, "6-9").await;
    assert_eq!((outside.status.as_u16(), outside.text()), (206, "6789"));
    assert_eq!(
        origin.hits("/file"),
        2,
        "bytes 8-9 are not stored: the origin answers"
    );

    let offline = send(
        &mut cache,
        get_with(&url, &[("cache-control", "only-if-cached")]),
    )
    .await;
    assert_eq!(offline.status, 504, "the parts are not the response");
    let head = send(&mut cache, request(Method::HEAD, &url, &[])).await;
    assert_eq!(head.status, 200);
    assert_eq!(origin.hits("/file"), 3, "HEAD went to the origin");

    origin.route("/file", |_| Reply::status(500).body("down"));
    let failed = send(&mut cache, get(&url)).await;
    assert_eq!(
        (failed.status.as_u16(), failed.text()),
        (500, "down"),
        "never the parts"
    );
    origin.route("/file", |seen| ranges_of(seen, STRONG));

    let full = send(&mut cache, get(&url)).await;
    assert_eq!((full.status.as_u16(), full.text()), (200, REPRESENTATION));
    assert_eq!(full.info.outcome, CacheOutcome::Refreshed);
    assert!(
        full.cache_status().contains("fwd=partial"),
        "{}",
        full.cache_status()
    );
    assert!(full.info.stored);
    assert_eq!(
        statuses(&cache).await,
        [200],
        "the 200 replaced the partial entry"
    );
    let again = send(&mut cache, get(&url)).await;
    assert_eq!(
        (again.info.outcome, again.text()),
        (CacheOutcome::Hit, REPRESENTATION)
    );
    assert_eq!(origin.hits("/file"), 5);
}

/// 3. 206s of one representation (the same strong ETag) are combined; once the parts join, the
/// entry is the complete 200, served to full requests with the newest response's header fields.
/// A 206 with another ETag replaces the stored parts.
#[tokio::test]
async fn parts_of_one_representation_combine_into_the_complete_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let url = origin.url("/file");
    for (n, spec) in ["0-3", "7-9", "3-7"].into_iter().enumerate() {
        let tag = format!("part-{n}");
        origin.route("/file", move |seen| {
            ranges_of(seen, STRONG).header("x-part", &tag)
        });
        let part = get_range(&mut cache, &url, spec).await;
        assert_eq!(part.status, 206);
        assert!(part.info.stored, "{spec}: {:?}", part.info);
    }
    assert_eq!(origin.hits("/file"), 3);
    assert_eq!(
        statuses(&cache).await,
        [200],
        "the parts joined into the complete response"
    );

    let full = send(&mut cache, get(&url)).await;
    assert_eq!((full.status.as_u16(), full.text()), (200, REPRESENTATION));
    assert_eq!(full.info.outcome, CacheOutcome::Hit);
    assert_eq!(full.header("content-length"), Some("10"));
    assert_eq!(full.header("content-range"), None);
    assert_eq!(
        full.header("x-part"),
        Some("part-2"),
        "the newest response's fields"
    );
    let part = get_range(&mut cache, &url, "4-5").await;
    assert_eq!(
        (part.status.as_u16(), part.text(), part.info.outcome),
        (206, "45", CacheOutcome::Hit)
    );
    assert_eq!(origin.hits("/file"), 3);

    // Another representation: its part replaces the stored parts instead of joining them.
    let other = origin.url("/other");
    origin.route("/other", |seen| ranges_of(seen, STRONG));
    get_range(&mut cache, &other, "0-4").await;
    origin.route("/other", |seen| {
        ranges_of(seen, &[("etag", "\"r2\""), ("cache-control", "max-age=60")])
    });
    get_range(&mut cache, &other, "5-9").await;
    let first_half = get_range(&mut cache, &other, "0-1").await;
    assert_eq!(
        first_half.info.outcome,
        CacheOutcome::Refreshed,
        "r1's part was replaced"
    );
    let second_half = get_range(&mut cache, &other, "6-7").await;
    assert_eq!(second_half.info.outcome, CacheOutcome::Hit);
    let full = send(&mut cache, get(&other)).await;
    assert_eq!(
        full.info.outcome,
        CacheOutcome::Refreshed,
        "never joined across ETags"
    );
}

/// 4. The stored parts stay within `max_body_size` (a part that would pass it replaces them);
/// touching parts merge; a 206 whose Content-Range ends past its complete length, or whose
/// length is not its body's, is passed through untouched and not stored.
#[tokio::test]
async fn parts_are_bounded_and_bad_content_ranges_are_not_stored() {
    let (mut cache, clock) = cached_client(CacheSettings {
        max_body_size: 6,
        ..CacheSettings::default()
    });
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranges_of(seen, STRONG));
    let url = origin.url("/file");
    get_range(&mut cache, &url, "0-1").await;
    get_range(&mut cache, &url, "2-3").await;
    let merged = get_range(&mut cache, &url, "1-2").await;
    assert_eq!(
        merged.info.outcome,
        CacheOutcome::Hit,
        "touching parts merged"
    );
    get_range(&mut cache, &url, "5-8").await;
    assert_eq!(
        get_range(&mut cache, &url, "6-7").await.info.outcome,
        CacheOutcome::Hit
    );
    let dropped = get_range(&mut cache, &url, "0-1").await;
    assert_eq!(
        dropped.info.outcome,
        CacheOutcome::Refreshed,
        "4 + 4 bytes pass the bound of 6: the newer part replaced the older ones"
    );
    assert_eq!(origin.hits("/file"), 4);

    origin.route("/beyond", |_| {
        Reply::status(206)
            .body("0123")
            .header("content-range", "bytes 0-3/3")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60")
    });
    origin.route("/short", |_| {
        Reply::status(206)
            .body("012")
            .header("content-range", "bytes 0-3/10")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60")
    });
    let chunked = Bytes::from_static(b"012");
    origin.route("/short-chunked", move |_| {
        Reply::status(206)
            .streamed(&chunked, 1, false)
            .header("content-range", "bytes 0-3/10")
            .header("etag", "\"r1\"")
            .header("cache-control", "max-age=60")
    });
    for (path, detail) in [
        ("/beyond", Some("partial-bad-content-range")),
        ("/short", Some("partial-length-mismatch")),
        ("/short-chunked", None),
    ] {
        let url = origin.url(path);
        let first = get_range(&mut cache, &url, "0-3").await;
        assert_eq!(first.status, 206, "{path}");
        assert_eq!(
            first.header("content-range"),
            Some(if path == "/beyond" {
                "bytes 0-3/3"
            } else {
                "bytes 0-3/10"
            }),
            "{path}: untouched"
        );
        if detail.is_some() {
            assert_eq!(first.info.detail.map(Detail::as_str), detail, "{path}");
        }
        let again = get_range(&mut cache, &url, "0-1").await;
        assert_eq!(
            again.info.outcome,
            CacheOutcome::Miss,
            "{path}: nothing was stored"
        );
        assert_eq!(origin.hits(path), 2, "{path}");
    }
}

/// 5. Ranges with `If-Range` and requests for several ranges go to the origin even when the
/// stored parts hold every byte they ask for; the plain range is a hit.
#[tokio::test]
async fn if_range_and_several_ranges_go_to_the_origin() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/file", |seen| ranges_of(seen, STRONG));
    let url = origin.url("/file");
    get_range(&mut cache, &url, "0-5").await;

    let plain = get_range(&mut cache, &url, "1-2").await;
    assert_eq!(
        (plain.text(), plain.info.outcome),
        ("12", CacheOutcome::Hit)
    );
    assert_eq!(origin.hits("/file"), 1);

    let conditional = send(
        &mut cache,
        get_with(&url, &[("range", "bytes=1-2"), ("if-range", "\"r1\"")]),
    )
    .await;
    assert_eq!(
        (conditional.status.as_u16(), conditional.text()),
        (206, "12")
    );
    assert_eq!(origin.hits("/file"), 2, "If-Range: the origin decides");
    assert_eq!(
        origin.last_request("/file").header("if-range"),
        Some("\"r1\""),
        "forwarded as sent"
    );

    let several = get_range(&mut cache, &url, "0-1,3-4").await;
    assert_eq!(
        several.status, 200,
        "this origin answers several ranges in full"
    );
    assert_eq!(several.info.outcome, CacheOutcome::Refreshed);
    assert_eq!(origin.hits("/file"), 3);
    assert_eq!(
        origin.last_request("/file").header("range"),
        Some("bytes=0-1,3-4")
    );
}

/// Shared mode: a 206 is stored by the shared rules of its 200 (`private`, `Authorization`,
/// `Set-Cookie` keep it out) and, once stored, answers every client.
#[tokio::test]
async fn a_shared_cache_stores_parts_by_the_shared_rules() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    origin.route("/private", |seen| {
        ranges_of(
            seen,
            &[("etag", "\"r1\""), ("cache-control", "private, max-age=60")],
        )
    });
    origin.route("/cookie", |seen| {
        ranges_of(seen, STRONG).header("set-cookie", "id=1")
    });
    origin.route("/auth", |seen| ranges_of(seen, STRONG));
    origin.route("/public", |seen| {
        ranges_of(
            seen,
            &[("etag", "\"r1\""), ("cache-control", "s-maxage=60")],
        )
    });

    for (path, detail, credentials) in [
        ("/private", "private", None),
        ("/cookie", "set-cookie", None),
        ("/auth", "authorization", Some("Bearer alice")),
    ] {
        let url = origin.url(path);
        let mut fields = vec![("range", "bytes=0-3")];
        fields.extend(credentials.map(|c| ("authorization", c)));
        let first = send(&mut cache, get_with(&url, &fields)).await;
        assert_eq!(
            (first.status.as_u16(), first.info.stored),
            (206, false),
            "{path}"
        );
        assert_eq!(
            first.info.detail.map(Detail::as_str),
            Some(detail),
            "{path}"
        );
        send(&mut cache, get_with(&url, &fields)).await;
        assert_eq!(origin.hits(path), 2, "{path}");
    }

    let url = origin.url("/public");
    let alice = send(
        &mut cache,
        get_with(&url, &[("range", "bytes=0-5"), ("cookie", "user=alice")]),
    )
    .await;
    assert!(alice.info.stored, "{:?}", alice.info);
    let bob = get_range(&mut cache, &url, "2-4").await;
    assert_eq!((bob.text(), bob.info.outcome), ("234", CacheOutcome::Hit));
    assert_eq!(origin.hits("/public"), 1);
}

/// With `Vary`, a partial entry answers only requests of its variant, and is never the stored
/// variant a request of another variant revalidates with (a 304 would make the parts its
/// response).
#[tokio::test]
async fn a_partial_variant_is_never_the_response_of_another_variant() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/v", |seen| {
        if seen.header("if-none-match") == Some("\"r1\"") {
            return Reply::not_modified()
                .header("etag", "\"r1\"")
                .header("vary", "accept-language");
        }
        ranges_of(seen, STRONG).header("vary", "accept-language")
    });
    let url = origin.url("/v");
    let en = [("accept-language", "en"), ("range", "bytes=0-3")];
    let first = send(&mut cache, get_with(&url, &en)).await;
    assert!(first.info.stored, "{:?}", first.info);
    let again = send(&mut cache, get_with(&url, &en)).await;
    assert_eq!(
        (again.text(), again.info.outcome),
        ("0123", CacheOutcome::Hit)
    );

    let fr = send(
        &mut cache,
        get_with(&url, &[("accept-language", "fr"), ("range", "bytes=0-3")]),
    )
    .await;
    assert_eq!(fr.info.outcome, CacheOutcome::Refreshed, "another variant");
    let full = send(&mut cache, get_with(&url, &[("accept-language", "de")])).await;
    assert_eq!((full.status.as_u16(), full.text()), (200, REPRESENTATION));
    assert_eq!(
        origin.last_request("/v").header("if-none-match"),
        None,
        "not revalidated with the parts' ETag"
    );
}
