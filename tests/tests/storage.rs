//! Storability (RFC 9111 §3): private and shared caches, `Authorization`, `s-maxage`, body size
//! limits, HEAD, error statuses, unsafe methods, `Vary`, and a failing store.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::Detail;
use cachelayer::{
    CacheKey, CacheLayer, CacheOutcome, CacheSettings, Store, StoreError, StoredResponse,
};
use common::{Origin, Reply, cached_client, client, get, get_with, request, send};
use http::Method;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};

/// A handler that numbers its responses, so that a test sees which one it got.
fn numbered(
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> impl Fn(&common::Seen) -> Reply + Send + Sync + 'static {
    let served = AtomicUsize::new(0);
    move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        let mut reply = Reply::ok(format!("{body} #{n}"));
        for (name, value) in headers {
            reply = reply.header(name, value);
        }
        reply
    }
}

#[tokio::test]
async fn private_responses_are_cached_by_a_private_cache_only() {
    let headers = &[("cache-control", "private, max-age=60")];

    let (mut private, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/private", numbered("private", headers));
    let url = origin.url("/private");
    let first = send(&mut private, get(&url)).await;
    assert!(first.info.stored, "{:?}", first.info);
    let second = send(&mut private, get(&url)).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(second.text(), "private #0");
    assert_eq!(origin.hits("/private"), 1);

    let (mut shared, _) = cached_client(CacheSettings::shared());
    let first = send(&mut shared, get(&url)).await;
    assert!(
        !first.info.stored,
        "a shared cache never stores a private response"
    );
    assert_eq!(first.info.detail, Some(Detail::Private));
    let second = send(&mut shared, get(&url)).await;
    assert_eq!(second.info.outcome, CacheOutcome::Miss);
    assert_eq!(second.text(), "private #2");
    assert_eq!(origin.hits("/private"), 3);
}

#[tokio::test]
async fn authorization_requests_in_private_and_shared_caches() {
    let (mut private, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route(
        "/auth",
        numbered("auth", &[("cache-control", "max-age=60")]),
    );
    origin.route(
        "/auth-public",
        numbered("public", &[("cache-control", "public, max-age=60")]),
    );
    origin.route(
        "/auth-smaxage",
        numbered("smaxage", &[("cache-control", "s-maxage=60")]),
    );
    let with_auth = |url: &str| get_with(url, &[("authorization", "Bearer secret-token")]);

    // A private cache stores it (it serves one user).
    let url = origin.url("/auth");
    assert!(send(&mut private, with_auth(&url)).await.info.stored);
    let hit = send(&mut private, with_auth(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.text(), "auth #0");
    assert_eq!(origin.hits("/auth"), 1);

    // A shared cache does not (RFC 9111 §3.5)...
    let (mut shared, _) = cached_client(CacheSettings::shared());
    let first = send(&mut shared, with_auth(&url)).await;
    assert!(!first.info.stored);
    assert_eq!(first.info.detail, Some(Detail::Authorization));
    let second = send(&mut shared, with_auth(&url)).await;
    assert_eq!(second.info.outcome, CacheOutcome::Miss);
    assert_eq!(second.text(), "auth #2");
    assert_eq!(origin.hits("/auth"), 3);

    // ...unless the response allows it with `public` or `s-maxage`.
    for path in ["/auth-public", "/auth-smaxage"] {
        let url = origin.url(path);
        let first = send(&mut shared, with_auth(&url)).await;
        assert!(first.info.stored, "{path}: {:?}", first.info);
        let second = send(&mut shared, with_auth(&url)).await;
        assert_eq!(second.info.outcome, CacheOutcome::Hit, "{path}");
        assert!(second.text().ends_with("#0"), "{path}: {}", second.text());
        assert_eq!(origin.hits(path), 1, "{path}");
    }
}

#[tokio::test]
async fn s_maxage_overrides_max_age_in_a_shared_cache_only() {
    let (mut shared, shared_clock) = cached_client(CacheSettings::shared());
    let (mut private, private_clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&shared_clock).await;
    origin.route(
        "/smaxage",
        numbered("smaxage", &[("cache-control", "max-age=10, s-maxage=100")]),
    );
    let url = origin.url("/smaxage");

    send(&mut shared, get(&url)).await;
    send(&mut private, get(&url)).await;
    assert_eq!(origin.hits("/smaxage"), 2);

    shared_clock.advance(Duration::from_secs(50));
    private_clock.advance(Duration::from_secs(50));
    let shared_hit = send(&mut shared, get(&url)).await;
    assert_eq!(
        shared_hit.info.outcome,
        CacheOutcome::Hit,
        "s-maxage=100 in a shared cache"
    );
    assert_eq!(shared_hit.text(), "smaxage #0");
    assert_eq!(origin.hits("/smaxage"), 2);
    let private_miss = send(&mut private, get(&url)).await;
    assert!(
        !private_miss.info.from_cache,
        "max-age=10 in a private cache"
    );
    assert_eq!(origin.hits("/smaxage"), 3);

    shared_clock.advance(Duration::from_secs(51));
    let shared_stale = send(&mut shared, get(&url)).await;
    assert!(!shared_stale.info.from_cache, "stale after 100 s");
    assert_eq!(origin.hits("/smaxage"), 4);
}

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn body_larger_than_max_body_size_streams_through_and_is_not_stored() {
    let settings = CacheSettings {
        max_body_size: 1024,
        ..CacheSettings::default()
    };
    let (mut cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    let big = pattern(64 * 1024);
    for (path, content_length) in [("/big-length", true), ("/big-chunked", false)] {
        let body = big.clone();
        origin.route(path, move |_| {
            Reply::ok(Bytes::new())
                .header("cache-control", "max-age=60")
                .streamed(&body, 4096, content_length)
        });
    }
    origin.route("/small", |_| {
        Reply::ok(Bytes::new())
            .header("cache-control", "max-age=60")
            .streamed(&pattern(1000), 100, false)
    });

    // With Content-Length the cache knows before the body.
    let url = origin.url("/big-length");
    let first = send(&mut cache, get(&url)).await;
    assert_eq!(first.header("content-length"), Some("65536"));
    assert_eq!(first.body.len(), big.len());
    assert!(first.body == big, "every byte passes through intact");
    assert!(!first.info.stored);
    assert_eq!(first.info.detail, Some(Detail::BodyTooLarge));
    assert!(
        first.cache_status().contains("detail=body-too-large"),
        "{}",
        first.cache_status()
    );
    let second = send(&mut cache, get(&url)).await;
    assert!(second.body == big);
    assert_eq!(second.info.outcome, CacheOutcome::Miss);
    assert_eq!(origin.hits("/big-length"), 2);

    // Chunked: the cache finds out while streaming, and stops recording.
    let url = origin.url("/big-chunked");
    let first = send(&mut cache, get(&url)).await;
    assert!(first.header("content-length").is_none());
    assert_eq!(first.body.len(), big.len());
    assert!(first.body == big, "every byte passes through intact");
    let second = send(&mut cache, get(&url)).await;
    assert!(second.body == big);
    assert_eq!(
        second.info.outcome,
        CacheOutcome::Miss,
        "nothing was stored: {:?}",
        second.info
    );
    assert!(!second.info.from_cache);
    assert_eq!(origin.hits("/big-chunked"), 2);

    // A chunked body under the limit is recorded and stored.
    let url = origin.url("/small");
    let first = send(&mut cache, get(&url)).await;
    assert!(first.info.stored);
    let second = send(&mut cache, get(&url)).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert!(second.body == pattern(1000));
    assert_eq!(origin.hits("/small"), 1);
}

#[tokio::test]
async fn max_body_size_is_inclusive() {
    let settings = CacheSettings {
        max_body_size: 1024,
        ..CacheSettings::default()
    };
    let (mut cache, clock) = cached_client(settings);
    let origin = Origin::start(&clock).await;
    for (path, size, content_length) in [
        ("/length-1024", 1024, true),
        ("/length-1025", 1025, true),
        ("/chunked-1024", 1024, false),
        ("/chunked-1025", 1025, false),
    ] {
        origin.route(path, move |_| {
            Reply::ok(Bytes::new())
                .header("cache-control", "max-age=60")
                .streamed(&pattern(size), 300, content_length)
        });
        let url = origin.url(path);
        let first = send(&mut cache, get(&url)).await;
        assert!(first.body == pattern(size), "{path}");
        let second = send(&mut cache, get(&url)).await;
        assert!(second.body == pattern(size), "{path}");
        if size <= 1024 {
            assert_eq!(
                second.info.outcome,
                CacheOutcome::Hit,
                "{path}: at the limit"
            );
            assert_eq!(origin.hits(path), 1, "{path}");
        } else {
            assert_eq!(
                second.info.outcome,
                CacheOutcome::Miss,
                "{path}: past the limit"
            );
            assert_eq!(origin.hits(path), 2, "{path}");
        }
    }
}

#[tokio::test]
async fn a_body_dropped_before_its_end_is_not_stored() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let body = pattern(64 * 1024);
    let served = body.clone();
    origin.route("/dropped", move |_| {
        Reply::ok(Bytes::new())
            .header("cache-control", "max-age=60")
            .streamed(&served, 4096, false)
    });
    let url = origin.url("/dropped");

    let response = tokio::time::timeout(common::EXCHANGE_TIMEOUT, async {
        let response = cache.ready().await.unwrap().call(get(&url)).await.unwrap();
        let info = response
            .extensions()
            .get::<cachelayer::CacheInfo>()
            .cloned()
            .unwrap();
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert!(frame.is_data());
        drop(body);
        info
    })
    .await
    .unwrap();
    assert_eq!(response.outcome, CacheOutcome::Miss);

    let next = send(&mut cache, get(&url)).await;
    assert_eq!(
        next.info.outcome,
        CacheOutcome::Miss,
        "a partial body is never stored"
    );
    assert!(next.body == body);
    assert_eq!(origin.hits("/dropped"), 2);
    let hit = send(&mut cache, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert!(hit.body == body);
}

#[tokio::test]
async fn head_is_answered_from_the_stored_get_response() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/head", |seen| {
        if seen.header("if-none-match") == Some("\"h1\"") {
            Reply::not_modified()
                .header("etag", "\"h1\"")
                .header("cache-control", "max-age=60")
        } else {
            Reply::ok("body of the resource")
                .header("etag", "\"h1\"")
                .header("cache-control", "max-age=60")
        }
    });
    let url = origin.url("/head");

    // Nothing stored: the HEAD goes to the origin, and its (bodiless) response is not stored,
    // so that it can never stand in for the GET response (RFC 9111 §4.3.5).
    let first = send(&mut cache, request(Method::HEAD, &url, &[])).await;
    assert_eq!(first.status, 200);
    assert!(first.body.is_empty());
    assert!(!first.info.stored, "{:?}", first.info);
    assert_eq!(first.info.detail, Some(Detail::Head));
    let second = send(&mut cache, request(Method::HEAD, &url, &[])).await;
    assert!(!second.info.from_cache);
    assert_eq!(origin.hits("/head"), 2);

    // A GET is stored; HEAD requests are then answered from it, headers only.
    let get_first = send(&mut cache, get(&url)).await;
    assert_eq!(get_first.info.outcome, CacheOutcome::Miss);
    assert_eq!(get_first.text(), "body of the resource");
    assert_eq!(
        get_first.info.cache_key, first.info.cache_key,
        "HEAD and GET share the key"
    );
    let head_hit = send(&mut cache, request(Method::HEAD, &url, &[])).await;
    assert_eq!(head_hit.info.outcome, CacheOutcome::Hit);
    assert!(head_hit.body.is_empty(), "a HEAD hit has no body");
    assert_eq!(head_hit.header("content-length"), Some("20"));
    assert_eq!(head_hit.header("etag"), Some("\"h1\""));
    let get_hit = send(&mut cache, get(&url)).await;
    assert_eq!(get_hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(
        get_hit.text(),
        "body of the resource",
        "the GET entry keeps its body"
    );
    assert_eq!(origin.hits("/head"), 3);

    // Stale: a HEAD revalidates the stored GET response, and the 304 freshens it.
    clock.advance(Duration::from_secs(61));
    let head_revalidated = send(&mut cache, request(Method::HEAD, &url, &[])).await;
    assert_eq!(head_revalidated.info.outcome, CacheOutcome::Revalidated);
    assert!(head_revalidated.body.is_empty());
    assert_eq!(
        origin.last_request("/head").header("if-none-match"),
        Some("\"h1\"")
    );
    let get_after = send(&mut cache, get(&url)).await;
    assert_eq!(
        get_after.info.outcome,
        CacheOutcome::Hit,
        "freshened by the HEAD's 304"
    );
    assert_eq!(get_after.text(), "body of the resource");
    assert_eq!(origin.hits("/head"), 4);
    let methods: Vec<Method> = origin
        .requests("/head")
        .into_iter()
        .map(|s| s.method)
        .collect();
    assert_eq!(
        methods,
        [Method::HEAD, Method::HEAD, Method::GET, Method::HEAD]
    );
}

#[tokio::test]
async fn error_statuses_and_unsafe_methods() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/500", |_| Reply::status(500).body("server error"));
    origin.route("/404", |_| {
        Reply::status(404)
            .body("not here")
            .header("cache-control", "max-age=60")
    });
    origin.route(
        "/post",
        numbered("posted", &[("cache-control", "max-age=60")]),
    );

    for round in 1..=2 {
        let got = send(&mut cache, get(&origin.url("/500"))).await;
        assert_eq!(got.status, 500);
        assert_eq!(got.text(), "server error");
        assert!(
            !got.info.stored,
            "a 500 without freshness information is not stored"
        );
        assert_eq!(got.info.detail, Some(Detail::NoFreshnessInformation));
        assert_eq!(got.info.outcome, CacheOutcome::Miss);
        assert_eq!(origin.hits("/500"), round);
    }

    // 404 is cacheable by default (RFC 9110 §15.1): with max-age it is stored.
    let first = send(&mut cache, get(&origin.url("/404"))).await;
    assert_eq!(first.status, 404);
    assert!(first.info.stored);
    let second = send(&mut cache, get(&origin.url("/404"))).await;
    assert_eq!(second.status, 404);
    assert_eq!(second.text(), "not here");
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/404"), 1);

    // POST passes through, whatever its response says.
    let url = origin.url("/post");
    for round in 1..=2 {
        let got = send(&mut cache, request(Method::POST, &url, &[])).await;
        assert_eq!(got.text(), format!("posted #{}", round - 1));
        assert_eq!(got.info.outcome, CacheOutcome::Bypass);
        assert!(!got.info.from_cache);
        assert!(!got.info.stored);
        assert_eq!(got.info.cache_key, None);
        assert!(
            got.cache_status().contains("fwd=bypass"),
            "{}",
            got.cache_status()
        );
        assert_eq!(origin.hits("/post"), round);
    }
    let after = send(&mut cache, get(&url)).await;
    assert_eq!(
        after.info.outcome,
        CacheOutcome::Miss,
        "no POST response was stored"
    );
    assert_eq!(after.text(), "posted #2");
}

#[tokio::test]
async fn vary_never_serves_another_variant() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    origin.route("/greeting", move |seen| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = match seen.header("accept-language") {
            Some("fr") => "bonjour",
            Some("en") => "hello",
            _ => "?",
        };
        Reply::ok(body)
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
            .header(
                "content-language",
                seen.header("accept-language").unwrap_or("none"),
            )
    });
    let url = origin.url("/greeting");

    // Variants live side by side (secondary keys, RFC 9111 §4.1): each language reaches the
    // origin once, and alternating languages are each served from the cache afterwards.
    let mut seen_languages: Vec<&str> = Vec::new();
    for lang in ["en", "en", "fr", "en", "en", "fr", "fr", "", "en", ""] {
        let headers: &[(&str, &str)] = if lang.is_empty() {
            &[]
        } else {
            &[("accept-language", lang)]
        };
        let hits_before = origin.hits("/greeting");
        let got = send(&mut cache, get_with(&url, headers)).await;
        let expected = match lang {
            "en" => "hello",
            "fr" => "bonjour",
            _ => "?",
        };
        assert_eq!(
            got.text(),
            expected,
            "{lang:?}: never another variant's body"
        );
        let expected_language = if lang.is_empty() { "none" } else { lang };
        assert_eq!(got.header("content-language"), Some(expected_language));
        let went_to_origin = origin.hits("/greeting") == hits_before + 1;
        if seen_languages.contains(&lang) {
            assert_eq!(
                got.info.outcome,
                CacheOutcome::Hit,
                "{lang:?} seen before: {:?}",
                got.info
            );
            assert!(!went_to_origin);
        } else {
            assert!(went_to_origin, "{lang:?} first time: {:?}", got.info);
            assert!(!got.info.from_cache);
            assert!(got.info.stored);
            seen_languages.push(lang);
        }
    }
    assert_eq!(origin.hits("/greeting"), 3, "one origin hit per variant");
    let sent: Vec<Option<String>> = origin
        .requests("/greeting")
        .iter()
        .map(|s| s.header("accept-language").map(str::to_owned))
        .collect();
    assert_eq!(sent.first(), Some(&Some("en".to_owned())));
    assert!(
        sent.contains(&None),
        "the header-less request reached the origin"
    );
}

#[tokio::test]
async fn vary_mismatch_is_reported() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/vary", |seen| {
        Reply::ok(seen.header("accept-language").unwrap_or("none").to_owned())
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language")
    });
    let url = origin.url("/vary");
    send(&mut cache, get_with(&url, &[("accept-language", "en")])).await;
    let fr = send(&mut cache, get_with(&url, &[("accept-language", "fr")])).await;
    assert_eq!(fr.text(), "fr");
    assert_eq!(fr.info.outcome, CacheOutcome::Refreshed);
    assert_eq!(fr.info.detail, Some(Detail::VaryMismatch));
    assert!(
        fr.cache_status().contains("fwd=vary-miss"),
        "{}",
        fr.cache_status()
    );
}

/// A store whose every operation fails.
#[derive(Debug, Default)]
struct BrokenStore {
    calls: AtomicUsize,
}

impl BrokenStore {
    fn fail<T: Send + 'static>(&self) -> cachelayer::store::StoreFuture<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(StoreError::backend("the database is on fire")) })
    }
}

impl Store for BrokenStore {
    fn get(&self, _key: &CacheKey) -> cachelayer::store::StoreFuture<Option<Arc<StoredResponse>>> {
        self.fail()
    }
    fn put(
        &self,
        _key: CacheKey,
        _entry: Arc<StoredResponse>,
    ) -> cachelayer::store::StoreFuture<()> {
        self.fail()
    }
    fn remove(&self, _key: &CacheKey) -> cachelayer::store::StoreFuture<bool> {
        self.fail()
    }
    fn clear(&self) -> cachelayer::store::StoreFuture<()> {
        self.fail()
    }
    fn keys(&self) -> cachelayer::store::StoreFuture<Vec<CacheKey>> {
        self.fail()
    }
}

#[tokio::test]
async fn a_failing_store_is_a_miss_and_never_an_error() {
    let store = Arc::new(BrokenStore::default());
    let layer = CacheLayer::with_shared_store(store.clone(), CacheSettings::default());
    let mut cache = layer.layer(client());
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route(
        "/broken",
        numbered("from origin", &[("cache-control", "max-age=60")]),
    );
    let url = origin.url("/broken");

    for round in 1..=3 {
        let got = send(&mut cache, get(&url)).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), format!("from origin #{}", round - 1));
        assert_eq!(got.info.outcome, CacheOutcome::Miss);
        assert!(!got.info.from_cache);
        assert_eq!(origin.hits("/broken"), round);
    }
    assert!(
        store.calls.load(Ordering::SeqCst) >= 6,
        "every request read and wrote the store: {} calls",
        store.calls.load(Ordering::SeqCst)
    );
}
