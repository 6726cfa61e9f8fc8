//! Entity tags against a real origin: `If-Match` and `If-Unmodified-Since` on stored responses
//! (RFC 9111 §4.3.2; RFC 9110 §13.1.1, §13.1.4, §13.2.2), odd but valid tags and malformed lists
//! in `If-None-Match` (RFC 9110 §8.8.3), and revalidation with the validators of the variant
//! stored at a URL (RFC 9111 §4.3.1, §4.3.4).
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::Detail;
use cachelayer::{CacheOutcome, CacheSettings, StaleWindow};
use common::{Origin, Reply, Seen, cached_client, get, get_with, http_date, send};
use http::{HeaderValue, Request};
use http_body_util::Full;
use std::time::{Duration, SystemTime};

/// An origin's own evaluation of `If-Match` (strong comparison, RFC 9110 §13.1.1) and
/// `If-Unmodified-Since` for a representation tagged `etag`, last modified at `modified`:
/// `true` when a precondition fails. Kept simple: the tests send well-formed values.
fn precondition_fails(seen: &Seen, etag: &str, modified: SystemTime) -> bool {
    if let Some(if_match) = seen.header("if-match") {
        return !if_match
            .split(',')
            .map(str::trim)
            .any(|member| member == "*" || (member == etag && !etag.starts_with("W/")));
    }
    if let Some(since) = seen.header("if-unmodified-since") {
        let since = httpdate::parse_http_date(since).unwrap();
        return modified > since;
    }
    false
}

/// A document tagged `etag` (fresh for 10 minutes) whose origin evaluates the preconditions
/// itself, and answers 412 with `max-age` (which a cache must still not store in its place).
fn document(origin: &Origin, path: &str, etag: &'static str, modified: SystemTime) {
    origin.route(path, move |seen| {
        if precondition_fails(seen, etag, modified) {
            return Reply::status(412)
                .header("cache-control", "max-age=600")
                .body("precondition failed");
        }
        Reply::ok("the document")
            .header("cache-control", "max-age=600")
            .header("etag", etag)
            .header("last-modified", http_date(modified))
    });
}

/// A cache with `settings` in front of an origin serving [`document`] at `path`, the document
/// stored by a first GET.
struct StoredDocument {
    cache: cachelayer::CacheService<common::Client>,
    clock: cachelayer::ManualClock,
    origin: Origin,
    url: String,
    modified: SystemTime,
}

async fn stored_document(
    settings: CacheSettings,
    path: &str,
    etag: &'static str,
) -> StoredDocument {
    let (mut cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    let modified = SystemTime::now() - Duration::from_secs(3600);
    document(&origin, path, etag, modified);
    let url = origin.url(path);
    assert!(send(&mut cache, get(&url)).await.info.stored);
    StoredDocument {
        cache,
        clock,
        origin,
        url,
        modified,
    }
}

/// `If-Match` that the stored response does not satisfy goes to the origin, which answers 412;
/// the cache never answers 412 itself (RFC 9111 §4.3.2: it must not evaluate preconditions that
/// apply to an origin server only), and does not store the 412 over the document.
#[tokio::test]
async fn if_match_not_satisfied_by_the_stored_response_goes_to_the_origin() {
    let StoredDocument {
        mut cache,
        origin,
        url,
        ..
    } = stored_document(CacheSettings::shared(), "/doc", "\"v1\"").await;
    // (If-Match, a weak stored tag never matches: strong comparison, RFC 9110 §13.1.1)
    for if_match in ["\"v2\"", "W/\"v1\"", "\"v1\", junk", "*, \"v1\""] {
        let before = origin.hits("/doc");
        let got = send(&mut cache, get_with(&url, &[("if-match", if_match)])).await;
        assert_eq!(origin.hits("/doc"), before + 1, "{if_match}: forwarded");
        assert_eq!(
            origin.last_request("/doc").header("if-match"),
            Some(if_match),
            "{if_match}: the origin evaluates the client's If-Match"
        );
        let malformed = if_match.contains("junk") || if_match.starts_with('*');
        if !malformed {
            assert_eq!(got.status, 412, "{if_match}: the origin's answer");
            assert_eq!(got.info.outcome, CacheOutcome::ForwardedByRequest);
            assert_eq!(
                got.info.detail,
                Some(Detail::PreconditionFailed),
                "{if_match}"
            );
            assert!(!got.info.stored, "{if_match}: a 412 is not stored");
        }
    }
    // The stored document still answers unconditional requests.
    let hit = send(&mut cache, get(&url)).await;
    assert_eq!((hit.status.as_u16(), hit.text()), (200, "the document"));
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
}

/// `If-Match` that the stored response satisfies (`*`, or its strong tag in the list) is
/// answered from the cache, Range included: what the origin would answer for the same
/// representation.
#[tokio::test]
async fn if_match_satisfied_by_the_stored_response_is_a_hit() {
    let StoredDocument {
        mut cache,
        origin,
        url,
        ..
    } = stored_document(CacheSettings::shared(), "/doc", "\"v1\"").await;
    for if_match in ["\"v1\"", "*", "\"v0\", \"v1\"", " ,\"v1\" , "] {
        let got = send(&mut cache, get_with(&url, &[("if-match", if_match)])).await;
        assert_eq!(got.info.outcome, CacheOutcome::Hit, "{if_match}");
        assert_eq!(got.text(), "the document", "{if_match}");
    }
    let ranged = send(
        &mut cache,
        get_with(&url, &[("if-match", "\"v1\""), ("range", "bytes=0-2")]),
    )
    .await;
    assert_eq!((ranged.status.as_u16(), ranged.text()), (206, "the"));
    assert_eq!(origin.hits("/doc"), 1);
}

/// A weak stored `ETag` never satisfies `If-Match`, `*` aside (RFC 9110 §13.1.1 uses the strong
/// comparison): a range of it could be joined to bytes of another representation.
#[tokio::test]
async fn if_match_against_a_weak_stored_tag_goes_to_the_origin() {
    let StoredDocument {
        mut cache,
        origin,
        url,
        ..
    } = stored_document(CacheSettings::shared(), "/weak", "W/\"w1\"").await;
    let got = send(
        &mut cache,
        get_with(&url, &[("if-match", "W/\"w1\""), ("range", "bytes=0-2")]),
    )
    .await;
    assert_eq!(origin.hits("/weak"), 2);
    assert_eq!(got.status, 412);
    let star = send(&mut cache, get_with(&url, &[("if-match", "*")])).await;
    assert_eq!(star.info.outcome, CacheOutcome::Hit);
}

/// `If-Unmodified-Since` (RFC 9110 §13.1.4): answered from the cache when the stored
/// `Last-Modified` is not after it, forwarded otherwise; an invalid date is ignored as the origin
/// ignores it; with `If-Match`, only `If-Match` counts (§13.2.2).
#[tokio::test]
async fn if_unmodified_since_on_stored_responses() {
    let StoredDocument {
        mut cache,
        origin,
        url,
        modified,
        ..
    } = stored_document(CacheSettings::shared(), "/doc", "\"v1\"").await;
    let later = http_date(modified + Duration::from_secs(60));
    let earlier = http_date(modified - Duration::from_secs(60));
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[("if-unmodified-since", &later)], true),
        (&[("if-unmodified-since", &http_date(modified))], true),
        (&[("if-unmodified-since", "not a date")], true),
        (&[("if-unmodified-since", &earlier)], false),
        (
            &[("if-match", "\"v1\""), ("if-unmodified-since", &earlier)],
            true,
        ),
    ];
    for (headers, hit) in cases {
        let before = origin.hits("/doc");
        let got = send(&mut cache, get_with(&url, headers)).await;
        assert_eq!(
            got.info.outcome == CacheOutcome::Hit,
            *hit,
            "{headers:?}: {:?}",
            got.info
        );
        assert_eq!(
            origin.hits("/doc"),
            before + usize::from(!hit),
            "{headers:?}"
        );
        if !hit {
            assert_eq!(got.status, 412, "{headers:?}");
        }
    }
}

/// A 412 answers the request's preconditions, not an origin failure: stale-if-error, on for
/// 4xx, does not replace it with the stored response.
#[tokio::test]
async fn a_412_is_not_an_error_for_stale_if_error() {
    let settings = CacheSettings {
        stale_if_error: StaleWindow::Any,
        ..CacheSettings::shared()
    };
    let StoredDocument {
        mut cache,
        clock,
        url,
        ..
    } = stored_document(settings, "/doc", "\"v1\"").await;
    clock.advance(Duration::from_secs(900));
    let got = send(&mut cache, get_with(&url, &[("if-match", "\"v2\"")])).await;
    assert_eq!(got.status, 412, "{:?}", got.info);
    assert_ne!(got.info.outcome, CacheOutcome::StaleIfError);
}

/// A GET with raw header bytes (obs-text).
fn get_raw(url: &str, name: &str, value: &[u8]) -> Request<Full<Bytes>> {
    Request::get(url)
        .header(name, HeaderValue::from_bytes(value).unwrap())
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Odd but valid entity tags (RFC 9110 §8.8.3) compare as the RFC says (weak comparison for
/// `If-None-Match`, §8.8.3.2), and a malformed list never gets a 304 (fail closed: the full
/// stored response).
#[tokio::test]
async fn odd_tags_and_malformed_lists_in_if_none_match() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    // (path, stored ETag, If-None-Match, 304 expected)
    let cases: &[(&str, &[u8], &[u8], bool)] = &[
        ("/comma", b"\"a,b\"", b"\"a,b\"", true),
        ("/comma-half", b"\"a,b\"", b"\"a\", \"b\"", false),
        ("/empty", b"\"\"", b"W/\"\"", true),
        ("/empty-strong", b"W/\"\"", b"\"\"", true),
        ("/w-inside", b"\"W/x\"", b"\"W/x\"", true),
        ("/w-inside-not-weak", b"W/\"x\"", b"\"W/x\"", false),
        ("/obs-text", b"\"caf\xe9\"", b"W/\"caf\xe9\"", true),
        ("/obs-text-other", b"\"caf\xe9\"", b"\"caf\xe8\"", false),
        ("/whitespace", b"\"x\"", b" ,\t\"y\" ,,\t\"x\"\t, ", true),
        ("/garbage-after", b"\"x\"", b"\"x\", garbage", false),
        ("/unterminated", b"\"x\"", b"\"x\", \"y", false),
        ("/star-and-tag", b"\"x\"", b"*, \"x\"", false),
        ("/no-comma", b"\"x\"", b"\"x\" \"y\"", false),
    ];
    for &(path, etag, _, _) in cases {
        origin.route(path, move |_| {
            Reply::ok("full")
                .header("cache-control", "max-age=600")
                .raw_header("etag", etag)
        });
        assert!(
            send(&mut cache, get(&origin.url(path))).await.info.stored,
            "{path}"
        );
    }
    for &(path, _, if_none_match, not_modified) in cases {
        let got = send(
            &mut cache,
            get_raw(&origin.url(path), "if-none-match", if_none_match),
        )
        .await;
        assert_eq!(
            got.info.outcome,
            CacheOutcome::Hit,
            "{path}: from the cache"
        );
        let expected: (u16, &[u8]) = if not_modified {
            (304, b"")
        } else {
            (200, b"full")
        };
        assert_eq!((got.status.as_u16(), &got.body[..]), expected, "{path}");
        assert_eq!(origin.hits(path), 1, "{path}");
    }
}

/// A negotiated document: English and French, English for any other language; `etag` of each
/// (`{lang}-1`, strong or weak). The origin answers 304 to an `If-None-Match` naming the tag of
/// the representation it selects, as RFC 9110 §13.1.2 says.
fn negotiated(origin: &Origin, path: &str, weak: bool) {
    origin.route(path, move |seen| {
        let (lang, body) = match seen.header("accept-language") {
            Some("fr") => ("fr", "bonjour"),
            _ => ("en", "hello"),
        };
        let etag = if weak {
            format!("W/\"{lang}-1\"")
        } else {
            format!("\"{lang}-1\"")
        };
        let matched = seen.header("if-none-match").is_some_and(|list| {
            list.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag.trim_start_matches("W/"))
        });
        let reply = if matched {
            Reply::not_modified()
        } else {
            Reply::ok(body).header("content-language", lang)
        };
        reply
            .header("cache-control", "max-age=600")
            .header("vary", "Accept-Language")
            .header("etag", etag)
    });
}

/// A request that selects no stored variant is sent with the `ETag` of the one stored at the
/// URL (RFC 9111 §4.3.1); a 304 naming it freshens that response, which answers the request
/// (its body not fetched again) and is stored for the request's own header fields (§4.3.4).
#[tokio::test]
async fn a_stored_variant_revalidates_for_a_request_that_selects_none() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    negotiated(&origin, "/doc", false);
    let url = origin.url("/doc");
    let lang = |l: &'static str| get_with(&url, &[("accept-language", l)]);
    assert!(send(&mut cache, lang("en")).await.info.stored);

    // German: the origin selects English, whose ETag the cache sent.
    let de = send(&mut cache, lang("de")).await;
    assert_eq!(
        origin.last_request("/doc").header("if-none-match"),
        Some("\"en-1\"")
    );
    assert_eq!((de.status.as_u16(), de.text()), (200, "hello"));
    assert_eq!(de.info.outcome, CacheOutcome::Revalidated, "{:?}", de.info);
    assert_eq!(de.header("content-language"), Some("en"));
    assert_eq!(origin.hits("/doc"), 2);
    // Stored for German requests, English still stored for English ones.
    for l in ["de", "en"] {
        let hit = send(&mut cache, lang(l)).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{l}");
        assert_eq!(hit.text(), "hello", "{l}");
    }
    assert_eq!(origin.hits("/doc"), 2);

    // French: the origin selects another representation and sends it whole.
    let fr = send(&mut cache, lang("fr")).await;
    assert_eq!(
        origin.last_request("/doc").header("if-none-match"),
        Some("\"en-1\"")
    );
    assert_eq!((fr.status.as_u16(), fr.text()), (200, "bonjour"));
    assert!(fr.info.stored);
    let hit = send(&mut cache, lang("fr")).await;
    assert_eq!(
        (hit.info.outcome, hit.text()),
        (CacheOutcome::Hit, "bonjour")
    );

    // A client's own conditional goes as it was sent.
    send(
        &mut cache,
        get_with(
            &url,
            &[("accept-language", "it"), ("if-none-match", "\"x\"")],
        ),
    )
    .await;
    assert_eq!(
        origin.last_request("/doc").header("if-none-match"),
        Some("\"x\"")
    );
}

/// Weak tags may be shared by representations that differ (another content coding): a stored
/// variant with a weak `ETag` is never offered for another request.
#[tokio::test]
async fn weak_tags_of_other_variants_are_not_sent() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    negotiated(&origin, "/weak", true);
    let url = origin.url("/weak");
    send(&mut cache, get_with(&url, &[("accept-language", "en")])).await;
    let de = send(&mut cache, get_with(&url, &[("accept-language", "de")])).await;
    assert_eq!(origin.last_request("/weak").header("if-none-match"), None);
    assert_eq!((de.status.as_u16(), de.text()), (200, "hello"));
}

/// A 304 that names another tag than the one the cache sent is an invalid answer (RFC 9110
/// §13.1.2): the client, who sent no conditional, gets 502 rather than a bare 304 or another
/// variant's body.
#[tokio::test]
async fn a_304_naming_another_tag_is_a_bad_gateway() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    origin.route("/broken", |seen| {
        let reply = if seen.header("if-none-match").is_some() {
            Reply::not_modified().header("etag", "\"elsewhere\"")
        } else {
            Reply::ok("hello").header("etag", "\"en-1\"")
        };
        reply
            .header("cache-control", "max-age=600")
            .header("vary", "Accept-Language")
    });
    let url = origin.url("/broken");
    send(&mut cache, get_with(&url, &[("accept-language", "en")])).await;
    let fr = send(&mut cache, get_with(&url, &[("accept-language", "fr")])).await;
    assert_eq!(fr.status, 502, "{:?}", fr.info);
    assert_eq!(fr.info.detail, Some(Detail::InvalidNotModified));
    assert!(!fr.info.stored);
}

/// In a shared cache, a response that varies on `Cookie` is never offered for another
/// request's cookie: fields stored for one user would survive a 304 for another.
#[tokio::test]
async fn variants_on_cookies_are_not_offered_in_a_shared_cache() {
    let (mut cache, clock) = cached_client(CacheSettings::shared());
    let origin = Origin::start(&clock).await;
    origin.route("/mine", |seen| {
        if seen.header("if-none-match").is_some() {
            return Reply::not_modified().header("etag", "\"same\"");
        }
        Reply::ok("page")
            .header("cache-control", "public, max-age=600")
            .header("vary", "Cookie")
            .header("etag", "\"same\"")
            .header("x-user", seen.header("cookie").unwrap_or("nobody"))
    });
    let url = origin.url("/mine");
    assert!(
        send(&mut cache, get_with(&url, &[("cookie", "u=alice")]))
            .await
            .info
            .stored
    );
    let bob = send(&mut cache, get_with(&url, &[("cookie", "u=bob")])).await;
    assert_eq!(origin.last_request("/mine").header("if-none-match"), None);
    assert_eq!(bob.header("x-user"), Some("u=bob"));
}
