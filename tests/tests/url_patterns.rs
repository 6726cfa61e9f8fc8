//! requests-cache parity, "Expiration" → per-URL expiration (`urls_expire_after`): glob patterns
//! matched without the scheme with an implied trailing `*`, regex patterns searched in the whole
//! URL, first match in definition order, `expire_after` as the default, and `urls_expire_after`
//! as an allowlist.
//!
//! The seed's patterns name hosts (`*.site_1.com`, `site_2.com`): the cache sees those URLs as
//! written, and the inner service sends every request to the test origin on 127.0.0.1 (keeping
//! the path and query, and the original host in `Host`), like a resolver that maps every name
//! to the origin. Expiry is tested by advancing a `ManualClock` set to a whole second.

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use common::{exact_cache, secs};

use bytes::Bytes;
use cachelayer::{
    CacheLayer, CacheOutcome, CacheService, CacheSettings, Clock, DO_NOT_CACHE, ExpireAfter,
    ManualClock, NEVER_EXPIRE, UrlPattern,
};
use common::{Client, Origin, Reply, client, get, send};
use http::header::HOST;
use http::{HeaderValue, Request};
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The real hyper client, sending every request to `origin` whatever its host and scheme: the
/// path and query are kept, the original authority goes in `Host`.
#[derive(Clone)]
struct ToOrigin {
    client: Client,
    origin: SocketAddr,
}

impl Service<Request<Full<Bytes>>> for ToOrigin {
    type Response = <Client as Service<Request<Full<Bytes>>>>::Response;
    type Error = <Client as Service<Request<Full<Bytes>>>>::Error;
    type Future = <Client as Service<Request<Full<Bytes>>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, mut request: Request<Full<Bytes>>) -> Self::Future {
        let uri = request.uri().clone();
        if let Some(authority) = uri.authority() {
            let host = HeaderValue::from_str(authority.as_str()).unwrap();
            request.headers_mut().insert(HOST, host);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = format!("http://{}{path}", self.origin).parse().unwrap();
        Service::call(&mut self.client, request)
    }
}

/// A session on `settings` whose requests all reach one origin, with the origin, the clock and
/// the layer.
async fn session(
    settings: CacheSettings,
) -> (CacheService<ToOrigin>, Origin, ManualClock, CacheLayer) {
    let (layer, clock) = exact_cache(settings);
    let origin = Origin::start(&clock).await;
    let service = layer.layer(ToOrigin {
        client: client(),
        origin: origin.addr(),
    });
    (service, origin, clock, layer)
}

/// Routes `path` to numbered bodies naming the host the request was for.
fn numbered(origin: &Origin, path: &'static str) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |seen| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("{}{path} #{n}", seen.header("host").unwrap_or("")))
    });
}

/// The seed's rules, in its order.
///
/// ```python
/// >>> urls_expire_after = {
/// ...     '*.site_1.com': 30,
/// ...     'site_2.com/resource_1': 60 * 2,
/// ...     'site_2.com/resource_2': 60 * 60 * 24,
/// ...     re.compile(r'site_2.com/resource_\d'): 60 * 60 * 24 * 7,
/// ...     'site_2.com/resource_*': 60 * 60,
/// ...     'site_2.com/static': NEVER_EXPIRE,
/// ... }
/// >>> session = CachedSession(urls_expire_after=urls_expire_after)
/// ```
fn seed_rules() -> CacheSettings {
    CacheSettings {
        cache_control: false,
        ..CacheSettings::default()
    }
    .url_expire_after("*.site_1.com", secs(30))
    .unwrap()
    .url_expire_after("site_2.com/resource_1", secs(60 * 2))
    .unwrap()
    .url_expire_after("site_2.com/resource_2", secs(60 * 60 * 24))
    .unwrap()
    .url_expire_after(r"regex:site_2.com/resource_\d", secs(60 * 60 * 24 * 7))
    .unwrap()
    .url_expire_after("site_2.com/resource_*", secs(60 * 60))
    .unwrap()
    .url_expire_after("site_2.com/static", NEVER_EXPIRE)
    .unwrap()
}

/// The seed's `urls_expire_after`: each URL gets the expiration of the first rule that matches
/// it, and a URL no rule matches gets `expire_after` ("If no patterns match a request,
/// CachedSession.settings.expire_after will be used as a default").
#[tokio::test]
async fn seed_urls_expire_after() {
    let settings = seed_rules().expire_after(secs(360));
    let (mut session, origin, clock, _layer) = session(settings).await;
    for path in [
        "/data",
        "/resource_1",
        "/resource_10",
        "/resource_2",
        "/resource_3",
        "/resource_x",
        "/static/app.js",
        "/other",
    ] {
        numbered(&origin, path);
    }
    // (URL, expected expiration in seconds; None: never)
    let cases: &[(&str, Option<u64>)] = &[
        ("http://api.site_1.com/data", Some(30)),
        ("https://www.site_1.com/data?page=2", Some(30)),
        ("http://site_2.com/resource_1", Some(120)),
        // Implied trailing `*`: the first rule matches before the regex.
        ("http://site_2.com/resource_10", Some(120)),
        ("http://site_2.com/resource_2", Some(86_400)),
        ("http://site_2.com/resource_3", Some(604_800)),
        ("http://site_2.com/resource_x", Some(3_600)),
        ("https://site_2.com/static/app.js", None),
        ("http://site_2.com/other", Some(360)),
        // `*.site_1.com` needs a subdomain.
        ("http://site_1.com/other", Some(360)),
    ];
    let t0 = clock.now();
    for (url, expected) in cases {
        let got = send(&mut session, get(url)).await;
        assert!(got.info.stored, "{url}");
        assert_eq!(
            got.info.expires,
            expected.map(|s| t0 + secs(s)),
            "{url}: expires"
        );
        let host = url.split('/').nth(2).unwrap();
        assert!(got.text().starts_with(host), "{url}: {}", got.text());
    }

    // And they expire accordingly: the site_1 response at 30 s, the others later.
    clock.advance(secs(29));
    for (url, _) in cases {
        let hit = send(&mut session, get(url)).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{url} at 29 s");
    }
    clock.advance(secs(1));
    let site_1 = send(&mut session, get("http://api.site_1.com/data")).await;
    assert!(!site_1.info.from_cache, "expired at 30 s");
    assert_eq!(site_1.text(), "api.site_1.com/data #2");
    let resource_1 = send(&mut session, get("http://site_2.com/resource_1")).await;
    assert_eq!(resource_1.info.outcome, CacheOutcome::Hit);
    clock.advance(secs(365 * 86_400));
    let static_file = send(&mut session, get("https://site_2.com/static/app.js")).await;
    assert_eq!(static_file.info.outcome, CacheOutcome::Hit, "never expires");
    assert_eq!(origin.hits("/static/app.js"), 1);
}

/// "Glob patterns will match request base URLs without the protocol, so the pattern
/// `site.com/resource/` is equivalent to `http*://site.com/resource/**`."
#[tokio::test]
async fn glob_patterns_match_without_the_protocol_with_an_implied_trailing_star() {
    let settings = CacheSettings {
        cache_control: false,
        expire_after: Some(ExpireAfter::After(secs(5))),
        ..CacheSettings::default()
    }
    .url_expire_after("site.com/resource/", secs(60))
    .unwrap();
    let (mut session, origin, clock, _layer) = session(settings).await;
    numbered(&origin, "/resource/");
    numbered(&origin, "/resource/a/b");
    numbered(&origin, "/resource");
    let t0 = clock.now();
    let cases: &[(&str, u64)] = &[
        ("http://site.com/resource/", 60),
        ("https://site.com/resource/", 60),
        ("http://site.com/resource/a/b?x=1", 60),
        // Not under `resource/`, or another host: the default.
        ("http://site.com/resource", 5),
        ("http://www.site.com/resource/", 5),
        ("http://othersite.com/resource/", 5),
    ];
    for (url, expected) in cases {
        let got = send(&mut session, get(url)).await;
        assert_eq!(got.info.expires, Some(t0 + secs(*expected)), "{url}");
    }
    // A scheme written in a glob is ignored, as in requests-cache.
    let with_scheme = UrlPattern::glob("https://site.com/resource/").unwrap();
    assert!(with_scheme.matches("http://site.com/resource/x"));
}

/// "For regex patterns, the whole URL will be matched, so you can put restrictions on the
/// protocol, e.g. `re.compile(r'https://site.com/.*')`."
#[tokio::test]
async fn regex_patterns_match_the_whole_url_including_the_protocol() {
    let settings = CacheSettings {
        cache_control: false,
        expire_after: Some(ExpireAfter::After(secs(5))),
        urls_expire_after: vec![(
            UrlPattern::regex(r"^https://site\.com/.*").unwrap(),
            ExpireAfter::After(secs(60)),
        )],
        ..CacheSettings::default()
    };
    let (mut session, origin, clock, _layer) = session(settings).await;
    numbered(&origin, "/page");
    let t0 = clock.now();
    let https = send(&mut session, get("https://site.com/page")).await;
    assert_eq!(https.info.expires, Some(t0 + secs(60)));
    let http = send(&mut session, get("http://site.com/page")).await;
    assert_eq!(http.info.expires, Some(t0 + secs(5)), "http is not matched");
    assert_ne!(https.info.cache_key, http.info.cache_key);
    assert_eq!(origin.hits("/page"), 2);
}

/// "If there is more than one match, the first match will be used in the order they are
/// defined": the same two rules in both orders.
#[tokio::test]
async fn the_first_match_in_definition_order_wins() {
    for (first, second, expected) in [
        ("site_2.com/resource_*", "site_2.com/resource_1", 3_600),
        ("site_2.com/resource_1", "site_2.com/resource_*", 120),
    ] {
        let expiration = |pattern: &str| secs(if pattern.ends_with('*') { 3_600 } else { 120 });
        let settings = CacheSettings {
            cache_control: false,
            ..CacheSettings::default()
        }
        .url_expire_after(first, expiration(first))
        .unwrap()
        .url_expire_after(second, expiration(second))
        .unwrap();
        let (mut session, origin, clock, _layer) = session(settings).await;
        numbered(&origin, "/resource_1");
        let t0 = clock.now();
        let got = send(&mut session, get("http://site_2.com/resource_1")).await;
        assert_eq!(
            got.info.expires,
            Some(t0 + secs(expected)),
            "{first} before {second}"
        );
    }
}

/// Patterns in a settings file (`{pattern: expire_after}`, document order; `regex:` for a
/// regex), and patterns that do not compile are errors, not panics.
#[tokio::test]
async fn urls_expire_after_from_a_settings_file() {
    let settings: CacheSettings = serde_json::from_str(
        r#"{
            "cache_control": false,
            "expire_after": "6m",
            "urls_expire_after": {
                "*.site_1.com": 30,
                "site_2.com/resource_1": "2m",
                "regex:site_2.com/resource_\\d": "7days",
                "site_2.com/static": "never"
            }
        }"#,
    )
    .unwrap();
    let patterns: Vec<String> = settings
        .urls_expire_after
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(
        patterns,
        [
            "*.site_1.com",
            "site_2.com/resource_1",
            r"regex:site_2.com/resource_\d",
            "site_2.com/static"
        ]
    );
    let (mut session, origin, clock, _layer) = session(settings).await;
    for path in ["/a", "/resource_1", "/resource_7", "/static", "/b"] {
        numbered(&origin, path);
    }
    let t0 = clock.now();
    for (url, expected) in [
        ("http://x.site_1.com/a", Some(30)),
        ("http://site_2.com/resource_1", Some(120)),
        ("http://site_2.com/resource_7", Some(7 * 86_400)),
        ("http://site_2.com/static", None),
        ("http://site_3.com/b", Some(360)),
    ] {
        let got = send(&mut session, get(url)).await;
        assert_eq!(got.info.expires, expected.map(|s| t0 + secs(s)), "{url}");
    }

    assert!(
        CacheSettings::default()
            .url_expire_after("site.com/[abc", secs(1))
            .is_err()
    );
    assert!(UrlPattern::regex("site.com/(").is_err());
    assert!(
        serde_json::from_str::<CacheSettings>(r#"{"urls_expire_after": {"regex:(": 1}}"#).is_err()
    );
}

/// "See Filter by URLs for an example of using urls_expire_after as an allowlist":
///
/// ```python
/// >>> urls_expire_after = {'*.site_1.com': 30, 'site_2.com/static': -1}
/// >>> session = CachedSession(urls_expire_after=urls_expire_after, expire_after=DO_NOT_CACHE)
/// ```
#[tokio::test]
async fn urls_expire_after_as_an_allowlist() {
    let settings = CacheSettings {
        cache_control: false,
        expire_after: Some(DO_NOT_CACHE),
        ..CacheSettings::default()
    }
    .url_expire_after("*.site_1.com", secs(30))
    .unwrap()
    .url_expire_after("site_2.com/static", NEVER_EXPIRE)
    .unwrap();
    let (mut session, origin, _clock, _layer) = session(settings).await;
    for path in ["/api", "/static", "/dynamic"] {
        numbered(&origin, path);
    }
    for _ in 0..3 {
        for (url, allowed) in [
            ("http://api.site_1.com/api", true),
            ("http://site_2.com/static", true),
            ("http://site_2.com/dynamic", false),
        ] {
            let got = send(&mut session, get(url)).await;
            if allowed {
                assert_ne!(got.info.outcome, CacheOutcome::Bypass, "{url}");
            } else {
                assert_eq!(got.info.outcome, CacheOutcome::Bypass, "{url}");
                assert_eq!(got.info.detail, Some(Detail::DoNotCache), "{url}");
            }
        }
    }
    assert_eq!(origin.hits("/api"), 1);
    assert_eq!(origin.hits("/static"), 1);
    assert_eq!(origin.hits("/dynamic"), 3, "not on the allowlist");
}

/// Rules can change at run time like every other setting
/// (`session.settings.urls_expire_after = ...`); they apply to responses stored afterwards.
#[tokio::test]
async fn rules_changed_at_run_time_apply_to_new_responses() {
    let (mut session, origin, clock, layer) = session(CacheSettings {
        cache_control: false,
        ..CacheSettings::default()
    })
    .await;
    numbered(&origin, "/one");
    numbered(&origin, "/two");
    let t0 = clock.now();
    let one = send(&mut session, get("http://site.com/one")).await;
    assert_eq!(one.info.expires, None, "no rule: never expires");

    layer.set_settings(
        layer
            .settings()
            .url_expire_after("site.com/", secs(10))
            .unwrap(),
    );
    let two = send(&mut session, get("http://site.com/two")).await;
    assert_eq!(two.info.expires, Some(t0 + secs(10)));
    clock.advance(secs(10));
    assert_eq!(
        send(&mut session, get("http://site.com/one"))
            .await
            .info
            .outcome,
        CacheOutcome::Hit
    );
    assert!(
        !send(&mut session, get("http://site.com/two"))
            .await
            .info
            .from_cache
    );
    assert_eq!(origin.hits("/one"), 1);
    assert_eq!(origin.hits("/two"), 2);
}
