//! requests-cache parity, "General Usage": a cached client as a drop-in replacement (sessions),
//! caching disabled for a request or for a while, `clear()`, `install_cache(...)` settings such
//! as `allowable_methods`, settings changed at run time through `session.settings`, one backend
//! shared by several sessions; and the settings the page points to (`read_only`,
//! `allowable_codes`, `match_headers`, `ignored_parameters`, `filter_fn`, `key_fn`).
//!
//! A requests-cache session is a cachelayer `CacheLayer` (its settings and store) and the
//! services it wraps around clients: every clone and service of a layer shares both. Time moves
//! with a `ManualClock` set to a whole second; nothing sleeps.

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use common::{exact_cache, secs};

use cachelayer::{
    CacheKey, CacheLayer, CacheOptions, CacheOutcome, CacheSettings, Clock, ExpireAfter, FilterFn,
    KeyFn, ManualClock, MatchHeaders, MemoryStore, StaleWindow, Store,
};
use common::{Origin, Reply, client, get, get_with, request, send};
use http::{HeaderName, Method};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;
use tower::Layer;

/// A manual clock at a whole second.
fn whole_second_clock() -> ManualClock {
    let clock = ManualClock::starting_now();
    let whole = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    clock.set(UNIX_EPOCH + secs(whole));
    clock
}

/// Routes `path` to numbered bodies (`"#0"`, `"#1"`, ...) with `headers`.
fn numbered(origin: &Origin, path: &str, headers: &'static [(&'static str, &'static str)]) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        headers
            .iter()
            .fold(Reply::ok(format!("#{n}")), |reply, (name, value)| {
                reply.header(name, value)
            })
    });
}

const MAX_AGE_60: &[(&str, &str)] = &[("cache-control", "max-age=60")];

/// ```python
/// >>> from requests_cache import CachedSession
/// >>> session = CachedSession()
/// >>> session.get('https://httpbin.org/get')
/// >>> session.request('GET', 'https://httpbin.org/get')
/// >>> session.head('https://httpbin.org/get')
/// ```
#[tokio::test]
async fn a_cached_session_is_a_drop_in_replacement() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/get", MAX_AGE_60);
    let url = origin.url("/get");

    let got = send(&mut session, get(&url)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "#0");
    assert!(!got.info.from_cache);
    let requested = send(&mut session, request(Method::GET, &url, &[])).await;
    assert!(requested.info.from_cache);
    assert_eq!(requested.text(), "#0");

    // A HEAD is answered from the stored GET response, headers only (RFC 9111 §4.3.5).
    let head = send(&mut session, request(Method::HEAD, &url, &[])).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.info.outcome, CacheOutcome::Hit);
    assert_eq!(head.header("content-length"), Some("2"));

    let methods: Vec<Method> = origin
        .requests("/get")
        .into_iter()
        .map(|seen| seen.method)
        .collect();
    assert_eq!(methods, [Method::GET], "one request reached the origin");
}

/// ```python
/// >>> with session.cache_disabled():
/// ...     session.get('https://httpbin.org/get')
/// ```
///
/// and `requests_cache.disabled()` / `enabled()`: for one request (`CacheOptions::disabled`) or
/// for the whole session for a while (the `disabled` setting). Nothing is read or written; what
/// was stored before is there again afterwards.
#[tokio::test]
async fn caching_disabled_for_a_request_or_for_a_while() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/get", MAX_AGE_60);
    let url = origin.url("/get");
    send(&mut session, get(&url)).await;

    let mut disabled = get(&url);
    disabled.extensions_mut().insert(CacheOptions {
        disabled: true,
        ..CacheOptions::default()
    });
    let bypassed = send(&mut session, disabled).await;
    assert_eq!(bypassed.text(), "#1", "not read");
    assert_eq!(bypassed.info.outcome, CacheOutcome::Bypass);
    assert_eq!(bypassed.info.detail, Some(Detail::Disabled));
    assert!(!bypassed.info.stored, "not written");

    layer.set_settings(CacheSettings {
        disabled: true,
        ..layer.settings()
    });
    for n in 2..=3 {
        let bypassed = send(&mut session, get(&url)).await;
        assert_eq!(bypassed.text(), format!("#{n}"));
        assert_eq!(bypassed.info.outcome, CacheOutcome::Bypass);
        assert!(bypassed.cache_status().contains("fwd=bypass"));
    }

    layer.set_settings(CacheSettings {
        disabled: false,
        ..layer.settings()
    });
    let enabled = send(&mut session, get(&url)).await;
    assert_eq!(enabled.info.outcome, CacheOutcome::Hit);
    assert_eq!(enabled.text(), "#0", "the response stored before");
    assert_eq!(origin.hits("/get"), 4);
}

/// "You can also clear out everything at once with BaseCache.clear()":
/// `>>> session.cache.clear()`
#[tokio::test]
async fn clear_removes_every_response() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/a", MAX_AGE_60);
    numbered(&origin, "/b", MAX_AGE_60);
    for path in ["/a", "/b", "/a", "/b"] {
        send(&mut session, get(&origin.url(path))).await;
    }
    assert_eq!(layer.store().keys().await.unwrap().len(), 2);

    layer.store().clear().await.unwrap();
    assert!(layer.store().keys().await.unwrap().is_empty());
    for path in ["/a", "/b"] {
        let got = send(&mut session, get(&origin.url(path))).await;
        assert_eq!(got.info.outcome, CacheOutcome::Miss, "{path}");
        assert_eq!(got.text(), "#1");
    }
}

/// `>>> requests_cache.install_cache(expire_after=360, allowable_methods=('GET', 'POST'))`
///
/// POST responses are stored and reused (the method and the body are part of the key, with
/// `KeyRequestBodyLayer` in front); without POST in `allowable_methods` they pass through, and
/// without the body layer a POST is never answered from the cache.
#[tokio::test]
async fn allowable_methods_get_and_post() {
    let (layer, clock) = exact_cache(CacheSettings {
        expire_after: Some(ExpireAfter::After(secs(360))),
        allowable_methods: vec![Method::GET, Method::POST],
        ..CacheSettings::default()
    });
    let mut session = cachelayer::KeyRequestBodyLayer::new().layer(layer.layer(client()));
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/post", &[]);
    let url = origin.url("/post");
    let t0 = clock.now();

    let first = send(&mut session, request(Method::POST, &url, &[])).await;
    assert!(first.info.stored);
    assert_eq!(first.info.expires, Some(t0 + secs(360)));
    let second = send(&mut session, request(Method::POST, &url, &[])).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(second.text(), "#0");
    let get_response = send(&mut session, get(&url)).await;
    assert_eq!(get_response.text(), "#1", "GET is another key");
    assert_ne!(get_response.info.cache_key, first.info.cache_key);
    assert_eq!(origin.hits("/post"), 2);

    layer.set_settings(CacheSettings {
        allowable_methods: vec![Method::GET, Method::HEAD],
        ..layer.settings()
    });
    let passed = send(&mut session, request(Method::POST, &url, &[])).await;
    assert_eq!(passed.info.outcome, CacheOutcome::Bypass);
    assert_eq!(passed.info.detail, Some(Detail::Method));
    assert_eq!(origin.hits("/post"), 3);

    // Without its body in the key, a POST bypasses the cache rather than get another body's
    // response.
    layer.set_settings(CacheSettings {
        allowable_methods: vec![Method::GET, Method::POST],
        ..layer.settings()
    });
    let mut unkeyed = layer.layer(client());
    let post = send(&mut unkeyed, request(Method::POST, &url, &[])).await;
    assert_eq!(post.info.outcome, CacheOutcome::Bypass);
    assert_eq!(post.info.detail, Some(Detail::NoKeyBody));
    assert_eq!(origin.hits("/post"), 4);
}

/// ```python
/// >>> session = CachedSession()
/// >>> session.settings.expire_after = 360
/// >>> session.settings.stale_if_error = True
/// ```
///
/// "These can also be safely modified at any time via CachedSession.settings": the change
/// reaches every clone of the layer and every service made before it.
#[tokio::test]
async fn settings_can_be_modified_at_any_time() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session_a = layer.layer(client());
    let mut session_b = layer.clone().layer(client());
    let origin = Origin::start(&clock).await;
    let served = AtomicUsize::new(0);
    origin.route("/get", move |_| {
        match served.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Reply::ok("good data"),
            _ => Reply::status(503),
        }
    });
    let url = origin.url("/get");

    // Default settings: no freshness information and no validator, so not stored.
    let before = send(&mut session_a, get(&url)).await;
    assert!(!before.info.stored);

    let settings = layer.clone();
    settings.set_settings(CacheSettings {
        expire_after: Some(ExpireAfter::After(secs(360))),
        stale_if_error: StaleWindow::Any,
        ..settings.settings()
    });
    assert_eq!(
        layer.settings().expire_after,
        Some(ExpireAfter::After(secs(360)))
    );
    assert_eq!(layer.settings().stale_if_error, StaleWindow::Any);

    let t0 = clock.now();
    let stored = send(&mut session_b, get(&url)).await;
    assert!(stored.info.stored);
    assert_eq!(stored.info.expires, Some(t0 + secs(360)));
    assert_eq!(
        send(&mut session_a, get(&url)).await.info.outcome,
        CacheOutcome::Hit
    );

    clock.advance(secs(360));
    let stale = send(&mut session_a, get(&url)).await;
    assert_eq!(stale.info.outcome, CacheOutcome::StaleIfError);
    assert_eq!(stale.text(), "good data");
    assert_eq!(origin.hits("/get"), 3);
}

/// ```python
/// >>> backend = RedisCache()
/// >>> session1 = CachedSession(backend=backend, autoclose=False)
/// >>> session2 = CachedSession(backend=backend, autoclose=False)
/// ```
///
/// Two layers with their own settings over one store serve each other's responses, and one
/// going away does not affect the other ("closing one session does not disconnect the
/// others").
#[tokio::test]
async fn one_backend_shared_by_several_sessions() {
    let clock = whole_second_clock();
    let backend: Arc<dyn Store> = Arc::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let layer1 = CacheLayer::with_shared_store(backend.clone(), CacheSettings::default())
        .with_clock(Arc::new(clock.clone()));
    let layer2 = CacheLayer::with_shared_store(
        backend.clone(),
        CacheSettings {
            cache_control: false,
            expire_after: Some(ExpireAfter::After(secs(30))),
            ..CacheSettings::default()
        },
    )
    .with_clock(Arc::new(clock.clone()));
    let mut session1 = layer1.layer(client());
    let mut session2 = layer2.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/one", MAX_AGE_60);
    numbered(&origin, "/two", &[]);
    let t0 = clock.now();

    assert!(
        send(&mut session1, get(&origin.url("/one")))
            .await
            .info
            .stored
    );
    let from_1 = send(&mut session2, get(&origin.url("/one"))).await;
    assert_eq!(from_1.info.outcome, CacheOutcome::Hit);
    assert_eq!(
        from_1.info.expires,
        Some(t0 + secs(60)),
        "session1's expiry"
    );

    let two = send(&mut session2, get(&origin.url("/two"))).await;
    assert_eq!(two.info.expires, Some(t0 + secs(30)), "session2's settings");
    let from_2 = send(&mut session1, get(&origin.url("/two"))).await;
    assert_eq!(from_2.info.outcome, CacheOutcome::Hit);
    assert_eq!(from_2.text(), "#0");

    drop(session1);
    drop(layer1);
    let still = send(&mut session2, get(&origin.url("/one"))).await;
    assert_eq!(still.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/one"), 1);
    assert_eq!(origin.hits("/two"), 1);
    assert_eq!(backend.keys().await.unwrap().len(), 2);
}

/// `read_only` (requests-cache's backend option): stored responses are read, new ones are never
/// written; as a second session over the same store, and as a setting switched at run time.
#[tokio::test]
async fn read_only_reads_but_never_writes() {
    let clock = whole_second_clock();
    let store: Arc<dyn Store> = Arc::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let writer = CacheLayer::with_shared_store(store.clone(), CacheSettings::default())
        .with_clock(Arc::new(clock.clone()));
    let reader = CacheLayer::with_shared_store(
        store.clone(),
        CacheSettings {
            read_only: true,
            ..CacheSettings::default()
        },
    )
    .with_clock(Arc::new(clock.clone()));
    let mut writing = writer.layer(client());
    let mut reading = reader.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/shared", MAX_AGE_60);
    numbered(&origin, "/new", MAX_AGE_60);

    send(&mut writing, get(&origin.url("/shared"))).await;
    let read = send(&mut reading, get(&origin.url("/shared"))).await;
    assert_eq!(read.info.outcome, CacheOutcome::Hit);
    assert_eq!(read.text(), "#0");

    for n in 0..2 {
        let not_written = send(&mut reading, get(&origin.url("/new"))).await;
        assert_eq!(not_written.text(), format!("#{n}"));
        assert!(!not_written.info.stored);
        assert_eq!(not_written.info.detail, Some(Detail::ReadOnly));
    }
    assert_eq!(store.keys().await.unwrap().len(), 1);

    // Switched at run time on the writer.
    writer.set_settings(CacheSettings {
        read_only: true,
        ..CacheSettings::default()
    });
    assert!(
        !send(&mut writing, get(&origin.url("/new")))
            .await
            .info
            .stored
    );
    assert_eq!(
        send(&mut writing, get(&origin.url("/shared")))
            .await
            .info
            .outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/new"), 3);
    assert_eq!(origin.hits("/shared"), 1);
}

/// `allowable_codes=(200,)`: only those statuses are stored, whatever their headers allow.
#[tokio::test]
async fn allowable_codes_restrict_what_is_stored() {
    for (codes, stored_404) in [(None, true), (Some(vec![200]), false)] {
        let (layer, clock) = exact_cache(CacheSettings {
            allowable_codes: codes.clone(),
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        numbered(&origin, "/ok", MAX_AGE_60);
        origin.route("/missing", |_| {
            Reply::status(404)
                .body("not here")
                .header("cache-control", "max-age=60")
        });

        for _ in 0..2 {
            send(&mut session, get(&origin.url("/ok"))).await;
            let missing = send(&mut session, get(&origin.url("/missing"))).await;
            assert_eq!(missing.status, 404);
            if !stored_404 {
                assert!(!missing.info.stored, "{codes:?}");
                assert_eq!(missing.info.detail, Some(Detail::StatusNotAllowed));
            }
        }
        assert_eq!(origin.hits("/ok"), 1, "{codes:?}");
        assert_eq!(
            origin.hits("/missing"),
            if stored_404 { 1 } else { 2 },
            "{codes:?}"
        );
    }
}

/// Routes `path` to a body echoing the request's `Accept-Language` and `User-Agent`.
fn echo_headers(origin: &Origin, path: &str) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |seen| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!(
            "#{n} {} {}",
            seen.header("accept-language").unwrap_or("-"),
            seen.header("user-agent").unwrap_or("-")
        ))
        .header("cache-control", "max-age=60")
    });
}

/// `match_headers=['Accept-Language']` and `match_headers=True`: the headers named (or all
/// headers) are part of the key, so different values are different entries; by default
/// (`False`) they are not.
#[tokio::test]
async fn match_headers_make_request_headers_part_of_the_key() {
    let accept_language = HeaderName::from_static("accept-language");
    /// (Accept-Language, User-Agent, the body the request gets: `#n` is the origin's response
    /// number)
    type Exchange = (&'static str, &'static str, &'static str);
    let cases: [(MatchHeaders, [Exchange; 4]); 3] = [
        (
            MatchHeaders::None,
            [
                ("en", "a", "#0 en a"),
                ("fr", "a", "#0 en a"),
                ("en", "b", "#0 en a"),
                ("fr", "b", "#0 en a"),
            ],
        ),
        (
            MatchHeaders::List(vec![accept_language]),
            [
                ("en", "a", "#0 en a"),
                ("fr", "a", "#1 fr a"),
                ("en", "b", "#0 en a"),
                ("fr", "b", "#1 fr a"),
            ],
        ),
        (
            MatchHeaders::All,
            [
                ("en", "a", "#0 en a"),
                ("fr", "a", "#1 fr a"),
                ("en", "b", "#2 en b"),
                ("en", "a", "#0 en a"),
            ],
        ),
    ];
    for (match_headers, requests) in cases {
        let (layer, clock) = exact_cache(CacheSettings {
            match_headers: match_headers.clone(),
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        echo_headers(&origin, "/page");
        for (language, agent, body) in requests {
            let got = send(
                &mut session,
                get_with(
                    &origin.url("/page"),
                    &[("accept-language", language), ("user-agent", agent)],
                ),
            )
            .await;
            assert_eq!(got.text(), body, "{match_headers:?} {language} {agent}");
        }
    }
}

/// `ignored_parameters` (default: credentials such as `api_key` and `Authorization`): left out
/// of the key, so requests that differ only by them share an entry, and never written to the
/// store.
#[tokio::test]
async fn ignored_parameters_are_left_out_of_keys_and_stored_requests() {
    let (layer, clock) = exact_cache(CacheSettings {
        match_headers: MatchHeaders::All,
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/data", MAX_AGE_60);

    let first = send(
        &mut session,
        get_with(
            &origin.url("/data?q=1&api_key=secret-1"),
            &[("authorization", "Bearer token-1")],
        ),
    )
    .await;
    assert!(first.info.stored);
    let second = send(
        &mut session,
        get_with(
            &origin.url("/data?api_key=secret-2&q=1"),
            &[("authorization", "Bearer token-2")],
        ),
    )
    .await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(second.info.cache_key, first.info.cache_key);
    assert_eq!(origin.hits("/data"), 1);
    let other_query = send(&mut session, get(&origin.url("/data?q=2&api_key=secret-1"))).await;
    assert_eq!(other_query.text(), "#1", "q is not ignored");

    let key = first.info.cache_key.unwrap();
    let entry = layer.store().get(&key).await.unwrap().unwrap();
    assert!(
        entry.request.url.ends_with("/data?q=1"),
        "{}",
        entry.request.url
    );
    assert!(!entry.request.url.contains("secret"));
    assert!(entry.request.headers.get("authorization").is_none());

    // A custom list replaces the default one.
    layer.set_settings(CacheSettings {
        ignored_parameters: vec!["session_id".to_owned()],
        ..CacheSettings::default()
    });
    numbered(&origin, "/custom", MAX_AGE_60);
    for (query, body) in [
        ("?session_id=1&api_key=a", "#0"),
        ("?session_id=2&api_key=a", "#0"),
        ("?session_id=1&api_key=b", "#1"),
    ] {
        let got = send(&mut session, get(&origin.url(&format!("/custom{query}")))).await;
        assert_eq!(got.text(), body, "{query}");
    }
}

/// `filter_fn`: a predicate on responses; those it rejects are not stored, and a stored response
/// it rejects is not used.
///
/// ```python
/// >>> def filter_fn(response): return response.headers.get('Content-Type') == 'application/json'
/// >>> session = CachedSession(filter_fn=filter_fn)
/// ```
#[tokio::test]
async fn filter_fn_keeps_responses_out_of_the_cache() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(
        &origin,
        "/json",
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "application/json"),
        ],
    );
    numbered(
        &origin,
        "/html",
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "text/html"),
        ],
    );
    // Stored before the filter is set.
    send(&mut session, get(&origin.url("/html"))).await;

    layer.set_settings(CacheSettings {
        filter_fn: Some(FilterFn::new(|response| {
            response
                .headers
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
        })),
        ..CacheSettings::default()
    });
    for _ in 0..2 {
        send(&mut session, get(&origin.url("/json"))).await;
        let html = send(&mut session, get(&origin.url("/html"))).await;
        assert!(!html.info.from_cache, "the stored response is not used");
        assert!(!html.info.stored);
        assert_eq!(html.info.detail, Some(Detail::Filter));
        assert!(html.cache_status().contains("detail=filter"));
    }
    assert_eq!(origin.hits("/json"), 1);
    assert_eq!(origin.hits("/html"), 3);
}

/// `key_fn`: a custom cache key, here the method and path only, so URLs that differ by their
/// query share one entry; `CacheInfo::cache_key` is the custom key.
#[tokio::test]
async fn key_fn_gives_a_custom_key() {
    let (layer, clock) = exact_cache(CacheSettings {
        key_fn: Some(KeyFn::new(|input, _options| {
            CacheKey::custom(format!("{} {}", input.method, input.uri.path()))
        })),
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/item", MAX_AGE_60);

    let first = send(&mut session, get(&origin.url("/item?page=1"))).await;
    assert_eq!(first.info.cache_key, Some(CacheKey::custom("GET /item")));
    assert!(
        first.cache_status().contains("key=\"GET /item\""),
        "{}",
        first.cache_status()
    );
    let second = send(&mut session, get(&origin.url("/item?page=2"))).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(second.text(), "#0");
    assert_eq!(origin.hits("/item"), 1);
    let stored = layer
        .store()
        .get(&CacheKey::custom("GET /item"))
        .await
        .unwrap();
    assert!(stored.is_some());
}

/// A service made with `CacheService::new` reaches its cache handle and its settings.
#[tokio::test]
async fn a_service_reaches_its_cache_and_settings() {
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route("/s", |_| {
        Reply::ok("s").header("cache-control", "max-age=60")
    });
    let mut service = cachelayer::CacheService::new(client(), CacheSettings::default());
    send(&mut service, get(&origin.url("/s"))).await;
    assert_eq!(service.cache().entries().await.unwrap().len(), 1);
    service.set_settings(CacheSettings {
        disabled: true,
        ..service.settings()
    });
    let got = send(&mut service.clone(), get(&origin.url("/s"))).await;
    assert_eq!(got.info.outcome, CacheOutcome::Bypass);
    assert!(service.settings().disabled);
}
