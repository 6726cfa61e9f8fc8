//! requests-cache parity, "Expiration" → "Request Options": per-request `expire_after`,
//! `refresh`, `force_refresh`, `always_revalidate` and `only_if_cached` (cachelayer's
//! `CacheOptions` in the request's extensions, and settings), and the request headers an
//! article on getting fresh data past caches recommends (`Cache-Control: no-cache, no-store,
//! must-revalidate`, `Pragma: no-cache`, `Cache-Control: max-age=0`, cache-busting query
//! parameters, conditional requests).
//!
//! Time moves with a `ManualClock` set to a whole second; nothing sleeps.

#![allow(clippy::unwrap_used)]

mod common;

use common::{exact_cache, get_opts, secs};

use cachelayer::{CacheOptions, CacheOutcome, CacheSettings, Clock, ExpireAfter};
use common::{Origin, Reply, client, get, get_with, send};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tower::Layer;

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

/// A resource whose version (ETag and body) the test changes; it answers a matching
/// `If-None-Match` with 304. Responses carry `cache_control`.
fn versioned(origin: &Origin, path: &str, cache_control: &'static str) -> Arc<Mutex<u32>> {
    let version = Arc::new(Mutex::new(1));
    let current = version.clone();
    origin.route(path, move |seen| {
        let v = *current.lock().unwrap();
        let etag = format!("\"v{v}\"");
        let reply = if seen.header("if-none-match") == Some(etag.as_str()) {
            Reply::not_modified()
        } else {
            Reply::ok(format!("version {v}"))
        };
        reply
            .header("etag", &etag)
            .header("cache-control", cache_control)
    });
    version
}

/// ```python
/// >>> session = CachedSession(expire_after=300)
/// >>> # This request will be cached for 60 seconds, not 300
/// >>> session.get('https://httpbin.org/get', expire_after=60)
/// ```
#[tokio::test]
async fn per_request_expiration_overrides_the_session() {
    for cache_control in [false, true] {
        let (layer, clock) = exact_cache(CacheSettings {
            cache_control,
            expire_after: Some(ExpireAfter::After(secs(300))),
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        numbered(&origin, "/get", &[]);
        numbered(&origin, "/other", &[]);
        let t0 = clock.now();

        let sixty = CacheOptions {
            expire_after: Some(ExpireAfter::After(secs(60))),
            ..CacheOptions::default()
        };
        let got = send(&mut session, get_opts(&origin.url("/get"), sixty)).await;
        assert_eq!(got.info.expires, Some(t0 + secs(60)), "not 300");
        let other = send(&mut session, get(&origin.url("/other"))).await;
        assert_eq!(other.info.expires, Some(t0 + secs(300)), "the session's");

        clock.advance(secs(59));
        assert_eq!(
            send(&mut session, get(&origin.url("/get")))
                .await
                .info
                .outcome,
            CacheOutcome::Hit
        );
        clock.advance(secs(1));
        let expired = send(&mut session, get(&origin.url("/get"))).await;
        assert_eq!(expired.text(), "#1");
        assert_eq!(origin.hits("/get"), 2);
        // Fetched again without the option: stored for the session's 300 s.
        assert_eq!(expired.info.expires, Some(t0 + secs(360)));
        assert_eq!(
            send(&mut session, get(&origin.url("/other")))
                .await
                .info
                .outcome,
            CacheOutcome::Hit
        );
        assert_eq!(origin.hits("/other"), 1);
    }
}

/// ```python
/// >>> response_1 = session.get('https://httpbin.org/get')
/// >>> response_2 = session.get('https://httpbin.org/get', refresh=True)
/// >>> assert response_2.from_cache is False
/// ```
///
/// "If possible, this will revalidate with the server to potentially avoid re-downloading an
/// unchanged response", and "the response will be saved with a new expiration time".
#[tokio::test]
async fn refresh_revalidates_a_fresh_response() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let version = versioned(&origin, "/get", "max-age=600");
    let url = origin.url("/get");
    let refresh = CacheOptions {
        refresh: true,
        ..CacheOptions::default()
    };
    let t0 = clock.now();

    let response_1 = send(&mut session, get(&url)).await;
    assert_eq!(response_1.text(), "version 1");

    // Changed at the origin: the refresh downloads and stores the new version.
    *version.lock().unwrap() = 2;
    clock.advance(secs(10));
    let response_2 = send(&mut session, get_opts(&url, refresh)).await;
    assert!(!response_2.info.from_cache);
    assert_eq!(response_2.text(), "version 2");
    assert_eq!(
        origin.hits("/get"),
        2,
        "the origin is asked though it was fresh"
    );
    assert_eq!(
        origin.last_request("/get").header("if-none-match"),
        Some("\"v1\""),
        "a conditional request"
    );
    assert!(response_2.info.stored);
    assert_eq!(
        response_2.info.expires,
        Some(t0 + secs(610)),
        "a new expiration"
    );
    let after = send(&mut session, get(&url)).await;
    assert_eq!(after.info.outcome, CacheOutcome::Hit);
    assert_eq!(after.text(), "version 2");

    // Unchanged: a 304, and the stored body is used with a new expiration.
    clock.advance(secs(10));
    let unchanged = send(&mut session, get_opts(&url, refresh)).await;
    assert_eq!(unchanged.info.outcome, CacheOutcome::Revalidated);
    assert!(unchanged.info.revalidated);
    assert_eq!(unchanged.text(), "version 2");
    assert_eq!(unchanged.info.expires, Some(t0 + secs(620)));
    assert_eq!(origin.hits("/get"), 3);
}

/// `refresh` on a response without a validator: nothing to revalidate with, so the request is
/// sent again and the new response stored (as httpbin's `/get`, which has no validator, in the
/// seed's example).
#[tokio::test]
async fn refresh_without_a_validator_fetches_again() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/get", &[("cache-control", "max-age=600")]);
    let url = origin.url("/get");
    let t0 = clock.now();

    send(&mut session, get(&url)).await;
    clock.advance(secs(30));
    let refresh = CacheOptions {
        refresh: true,
        ..CacheOptions::default()
    };
    let response_2 = send(&mut session, get_opts(&url, refresh)).await;
    assert!(!response_2.info.from_cache);
    assert_eq!(response_2.text(), "#1");
    assert!(
        origin
            .last_request("/get")
            .header("if-none-match")
            .is_none()
    );
    assert_eq!(response_2.info.expires, Some(t0 + secs(630)));
    let after = send(&mut session, get(&url)).await;
    assert_eq!(after.info.outcome, CacheOutcome::Hit);
    assert_eq!(after.text(), "#1");
    assert_eq!(origin.hits("/get"), 2);
}

/// "To force a refresh (e.g., skip revalidation and always send a new request), use the
/// force_refresh argument. This is equivalent to Ctrl-F5 in most browsers."
///
/// `>>> session.get('https://httpbin.org/get', force_refresh=True)`
#[tokio::test]
async fn force_refresh_sends_an_unconditional_request() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let version = versioned(&origin, "/get", "max-age=600");
    let url = origin.url("/get");
    let force = CacheOptions {
        force_refresh: true,
        ..CacheOptions::default()
    };

    send(&mut session, get(&url)).await;
    // Unchanged at the origin: still downloaded in full.
    let forced = send(&mut session, get_opts(&url, force)).await;
    assert_eq!(origin.hits("/get"), 2);
    assert!(
        origin
            .last_request("/get")
            .header("if-none-match")
            .is_none(),
        "no revalidation"
    );
    assert_eq!(forced.status, 200);
    assert!(!forced.info.from_cache);
    assert_eq!(forced.info.outcome, CacheOutcome::ForwardedByRequest);
    assert!(forced.info.stored);

    // The new response replaces the stored one.
    *version.lock().unwrap() = 2;
    let forced = send(&mut session, get_opts(&url, force)).await;
    assert_eq!(forced.text(), "version 2");
    let after = send(&mut session, get(&url)).await;
    assert_eq!(after.info.outcome, CacheOutcome::Hit);
    assert_eq!(after.text(), "version 2");
    assert_eq!(after.header("etag"), Some("\"v2\""));
    assert_eq!(origin.hits("/get"), 3);
}

/// `>>> session = CachedSession(always_revalidate=True)`
///
/// "Unlike the refresh option, this only affects cached responses with a validator."
#[tokio::test]
async fn always_revalidate_only_affects_responses_with_a_validator() {
    let (layer, clock) = exact_cache(CacheSettings {
        always_revalidate: true,
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    versioned(&origin, "/validated", "max-age=600");
    numbered(&origin, "/plain", &[("cache-control", "max-age=600")]);

    send(&mut session, get(&origin.url("/validated"))).await;
    send(&mut session, get(&origin.url("/plain"))).await;
    for n in 2..=4 {
        clock.advance(secs(1));
        let validated = send(&mut session, get(&origin.url("/validated"))).await;
        assert_eq!(
            origin.hits("/validated"),
            n,
            "fresh, and revalidated anyway"
        );
        assert_eq!(
            origin.last_request("/validated").header("if-none-match"),
            Some("\"v1\"")
        );
        assert_eq!(validated.info.outcome, CacheOutcome::Revalidated);
        assert_eq!(validated.text(), "version 1");

        let plain = send(&mut session, get(&origin.url("/plain"))).await;
        assert_eq!(plain.info.outcome, CacheOutcome::Hit, "no validator");
        assert_eq!(plain.text(), "#0");
    }
    assert_eq!(origin.hits("/plain"), 1);

    // Expired, a response without a validator is fetched again, as always.
    clock.advance(secs(600));
    assert_eq!(
        send(&mut session, get(&origin.url("/plain"))).await.text(),
        "#1"
    );
}

/// ```python
/// >>> session = CachedSession()
/// >>> session.cache.clear()
/// >>> response = session.get('https://httpbin.org/get', only_if_cached=True)
/// >>> print(response.status_code)
/// 504
/// >>> response.raise_for_status()
/// HTTPError: 504 Server Error: Not Cached for url: https://httpbin.org/get
/// ```
#[tokio::test]
async fn only_if_cached_answers_504_not_cached_without_the_origin() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    versioned(&origin, "/get", "max-age=60");
    let url = origin.url("/get");
    let offline = CacheOptions {
        only_if_cached: true,
        ..CacheOptions::default()
    };

    send(&mut session, get(&url)).await;
    layer.store().clear().await.unwrap();
    let response = send(&mut session, get_opts(&url, offline)).await;
    assert_eq!(response.status, 504);
    assert!(response.status.is_server_error(), "raise_for_status raises");
    assert_eq!(response.text(), "Not Cached");
    assert_eq!(response.info.outcome, CacheOutcome::NotCached);
    assert!(!response.info.from_cache);
    assert_eq!(origin.hits("/get"), 1, "only the request before clear()");

    // Cached: served offline.
    send(&mut session, get(&url)).await;
    let cached = send(&mut session, get_opts(&url, offline)).await;
    assert_eq!(cached.status, 200);
    assert_eq!(cached.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/get"), 2);

    // "If a response isn't cached or is expired, you will get a 504 Not Cached response
    // instead." (The response has a validator, so the expired entry is still stored.)
    clock.advance(secs(60));
    let expired = send(&mut session, get_opts(&url, offline)).await;
    assert_eq!(expired.status, 504);
    assert_eq!(expired.info.outcome, CacheOutcome::NotCached);
    assert_eq!(origin.hits("/get"), 2, "never contacted");
}

/// `only_if_cached` as a setting: the whole cache in "offline mode".
#[tokio::test]
async fn only_if_cached_as_a_setting() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/known", &[("cache-control", "max-age=60")]);
    numbered(&origin, "/unknown", &[("cache-control", "max-age=60")]);
    send(&mut session, get(&origin.url("/known"))).await;

    layer.set_settings(CacheSettings {
        only_if_cached: true,
        ..CacheSettings::default()
    });
    let known = send(&mut session, get(&origin.url("/known"))).await;
    assert_eq!(known.info.outcome, CacheOutcome::Hit);
    assert_eq!(known.text(), "#0");
    let unknown = send(&mut session, get(&origin.url("/unknown"))).await;
    assert_eq!(unknown.status, 504);
    assert_eq!(unknown.text(), "Not Cached");
    assert_eq!(origin.hits("/known"), 1);
    assert_eq!(origin.hits("/unknown"), 0);
}

/// The article's "Using Cache-Control and Pragma Headers":
///
/// ```python
/// headers = {
///     'Cache-Control': 'no-cache, no-store, must-revalidate',
///     'Pragma': 'no-cache',
///     'Expires': '0'  # For HTTP/1.0 proxies
/// }
/// response = requests.get(url, headers=headers)
/// ```
///
/// The request goes to the origin even though a fresh response is stored, the caller gets the
/// origin's current data, and that response is not stored.
#[tokio::test]
async fn the_articles_no_cache_headers_get_fresh_data() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let version = versioned(&origin, "/data", "max-age=600");
    let url = origin.url("/data");
    let headers = [
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
        ("expires", "0"),
    ];

    let first = send(&mut session, get(&url)).await;
    let key = first.info.cache_key.clone().unwrap();
    *version.lock().unwrap() = 2;
    let fresh = send(&mut session, get_with(&url, &headers)).await;
    assert_eq!(
        origin.hits("/data"),
        2,
        "the fresh stored response is not used"
    );
    assert_eq!(fresh.text(), "version 2");
    assert!(!fresh.info.from_cache);
    assert!(!fresh.info.stored, "no-store");
    let stored = layer.store().get(&key).await.unwrap();
    assert!(
        stored.is_none_or(|entry| entry.body == "version 1"),
        "the no-store response is not in the store"
    );
}

/// `Cache-Control: no-cache`, `Pragma: no-cache` and `Cache-Control: max-age=0` on a request:
/// the stored response is revalidated with the origin before use (a conditional request), and
/// a changed response replaces it.
#[tokio::test]
async fn request_no_cache_pragma_and_max_age_0_revalidate() {
    for header in [
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("cache-control", "max-age=0"),
    ] {
        let (layer, clock) = exact_cache(CacheSettings::default());
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        let version = versioned(&origin, "/data", "max-age=600");
        let url = origin.url("/data");
        send(&mut session, get(&url)).await;
        // An age above zero: `max-age=0` accepts a response of age exactly 0.
        clock.advance(secs(1));

        let unchanged = send(&mut session, get_with(&url, &[header])).await;
        assert_eq!(origin.hits("/data"), 2, "{header:?}");
        assert_eq!(
            origin.last_request("/data").header("if-none-match"),
            Some("\"v1\""),
            "{header:?}"
        );
        assert_eq!(
            unchanged.info.outcome,
            CacheOutcome::Revalidated,
            "{header:?}"
        );
        assert_eq!(unchanged.text(), "version 1");

        *version.lock().unwrap() = 2;
        clock.advance(secs(1));
        let changed = send(&mut session, get_with(&url, &[header])).await;
        assert_eq!(changed.text(), "version 2", "{header:?}");
        assert!(!changed.info.from_cache);
        let after = send(&mut session, get(&url)).await;
        assert_eq!(after.info.outcome, CacheOutcome::Hit, "{header:?}");
        assert_eq!(after.text(), "version 2", "{header:?}: replaced");
        assert_eq!(origin.hits("/data"), 3);
    }
}

/// The article's "Appending a Unique Query Parameter": `f"{base_url}?_={int(time.time())}"` is
/// another URL, so another cache entry.
#[tokio::test]
async fn a_cache_busting_query_parameter_is_another_entry() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/data", &[("cache-control", "max-age=600")]);
    let base = origin.url("/data");

    assert_eq!(send(&mut session, get(&base)).await.text(), "#0");
    let busted = send(&mut session, get(&format!("{base}?_=1700000000"))).await;
    assert_eq!(busted.text(), "#1");
    assert_eq!(busted.info.outcome, CacheOutcome::Miss);
    let busted_again = send(&mut session, get(&format!("{base}?_=1700000001"))).await;
    assert_eq!(busted_again.text(), "#2");
    assert_eq!(send(&mut session, get(&base)).await.text(), "#0");
    assert_eq!(origin.hits("/data"), 3);
}

/// The article's "Using Conditional Requests": a request with `If-None-Match` (or
/// `If-Modified-Since`) gets a 304 when the resource has not changed, here straight from the
/// cache; a validator that does not match gets the full response.
#[tokio::test]
async fn conditional_requests_get_304_from_the_cache() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let last_modified = common::http_date(clock.now() - secs(3600));
    let lm = last_modified.clone();
    origin.route("/data", move |_| {
        Reply::ok("data")
            .header("etag", "\"d1\"")
            .header("last-modified", &lm)
            .header("cache-control", "max-age=600")
    });
    let url = origin.url("/data");

    let response = send(&mut session, get(&url)).await;
    let etag = response.header("etag").unwrap().to_owned();
    let conditional = [
        ("if-none-match", etag.as_str()),
        ("if-modified-since", last_modified.as_str()),
    ];
    for header in conditional {
        let not_modified = send(&mut session, get_with(&url, &[header])).await;
        assert_eq!(not_modified.status, 304, "{header:?}");
        assert!(not_modified.body.is_empty());
        assert_eq!(not_modified.info.outcome, CacheOutcome::Hit);
    }
    let other = send(&mut session, get_with(&url, &[("if-none-match", "\"d0\"")])).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.text(), "data");
    assert_eq!(origin.hits("/data"), 1);
}
