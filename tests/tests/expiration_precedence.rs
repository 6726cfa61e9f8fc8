//! requests-cache parity, "Expiration" → "Expiration Precedence": when several expirations are
//! given for one request, which one decides, checked on the response a real origin sends.
//!
//! > 1. Cache-Control response headers (if enabled)
//! > 2. Cache-Control request headers
//! > 3. Per-request expiration (expire_after argument for CachedSession.request())
//! > 4. Per-URL expiration (urls_expire_after argument for CachedSession)
//! > 5. Per-session expiration (expire_after argument for CachedSession)
//!
//! and below them heuristic freshness (with `cache_control`) or "never expire" (without). Each
//! level gets a distinct lifetime, so the winner is read off `CacheInfo::expires`, then checked
//! by advancing the `ManualClock` (set to a whole second, so that the origin's `Date` equals the
//! response time and expirations are exact).

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use common::{exact_cache, secs};

use cachelayer::{
    CacheOptions, CacheOutcome, CacheSettings, Clock, DO_NOT_CACHE, ExpireAfter, UrlPattern,
};
use common::{Origin, Reply, client, get, get_with, http_date, send};
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::Layer;

/// One precedence level, and the lifetime this test gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// 1. The response's `Cache-Control: max-age=10`.
    ResponseHeader,
    /// 2. The request's `Cache-Control: max-age=20`.
    RequestHeader,
    /// 3. `CacheOptions { expire_after: 30 s }` on the request.
    PerRequest,
    /// 4. A matching `urls_expire_after` rule of 40 s (after a rule that does not match).
    PerUrl,
    /// 5. `expire_after: 50 s`.
    Session,
    /// Heuristic freshness: `Last-Modified` 1000 s before `Date`, 10%: 100 s.
    Heuristic,
}

impl Level {
    fn lifetime(self) -> u64 {
        match self {
            Level::ResponseHeader => 10,
            Level::RequestHeader => 20,
            Level::PerRequest => 30,
            Level::PerUrl => 40,
            Level::Session => 50,
            Level::Heuristic => 100,
        }
    }
}

/// What a row expects.
#[derive(Debug, Clone, Copy)]
enum Wins {
    /// This level's lifetime.
    Level(Level),
    /// Stored, never expiring (requests-cache's default without `cache_control`).
    Never,
    /// Not stored: no freshness information, and no validator to revalidate it with.
    NotStored,
}

struct Row {
    cache_control: bool,
    levels: &'static [Level],
    wins: Wins,
}

use Level::{Heuristic, PerRequest, PerUrl, RequestHeader, ResponseHeader, Session};

const ALL: &[Level] = &[
    ResponseHeader,
    RequestHeader,
    PerRequest,
    PerUrl,
    Session,
    Heuristic,
];

const ROWS: &[Row] = &[
    // Level 1 beats everything, when enabled.
    Row {
        cache_control: true,
        levels: ALL,
        wins: Wins::Level(ResponseHeader),
    },
    Row {
        cache_control: true,
        levels: &[ResponseHeader, Session],
        wins: Wins::Level(ResponseHeader),
    },
    // With cache_control off, response headers are ignored: the next level down decides.
    Row {
        cache_control: false,
        levels: ALL,
        wins: Wins::Level(RequestHeader),
    },
    Row {
        cache_control: false,
        levels: &[ResponseHeader, Session],
        wins: Wins::Level(Session),
    },
    Row {
        cache_control: false,
        levels: &[ResponseHeader],
        wins: Wins::Never,
    },
    // Level 2.
    Row {
        cache_control: true,
        levels: &[RequestHeader, PerRequest, PerUrl, Session, Heuristic],
        wins: Wins::Level(RequestHeader),
    },
    Row {
        cache_control: true,
        levels: &[RequestHeader, Session],
        wins: Wins::Level(RequestHeader),
    },
    // Level 3.
    Row {
        cache_control: true,
        levels: &[PerRequest, PerUrl, Session, Heuristic],
        wins: Wins::Level(PerRequest),
    },
    Row {
        cache_control: false,
        levels: &[PerRequest, Session],
        wins: Wins::Level(PerRequest),
    },
    // Level 4.
    Row {
        cache_control: true,
        levels: &[PerUrl, Session, Heuristic],
        wins: Wins::Level(PerUrl),
    },
    Row {
        cache_control: false,
        levels: &[PerUrl, Session],
        wins: Wins::Level(PerUrl),
    },
    // Level 5.
    Row {
        cache_control: true,
        levels: &[Session, Heuristic],
        wins: Wins::Level(Session),
    },
    Row {
        cache_control: false,
        levels: &[Session],
        wins: Wins::Level(Session),
    },
    // Nothing set: heuristic freshness with cache_control, never expire without.
    Row {
        cache_control: true,
        levels: &[Heuristic],
        wins: Wins::Level(Heuristic),
    },
    Row {
        cache_control: false,
        levels: &[Heuristic],
        wins: Wins::Never,
    },
    Row {
        cache_control: false,
        levels: &[],
        wins: Wins::Never,
    },
    Row {
        cache_control: true,
        levels: &[],
        wins: Wins::NotStored,
    },
];

/// The precedence table: every row enables some levels (each with its own lifetime) and states
/// which one must decide the expiration of the response.
#[tokio::test]
async fn expiration_precedence_table() {
    for (i, row) in ROWS.iter().enumerate() {
        let on = |level| row.levels.contains(&level);
        let name = format!(
            "row {i}: cache_control={} levels={:?} wins={:?}",
            row.cache_control, row.levels, row.wins
        );

        let mut settings = CacheSettings {
            cache_control: row.cache_control,
            ..CacheSettings::default()
        };
        if on(PerUrl) {
            settings = settings
                .url_expire_after("elsewhere.example/", secs(1))
                .unwrap()
                .url_expire_after("*/precedence", secs(Level::PerUrl.lifetime()))
                .unwrap();
        }
        if on(Session) {
            settings = settings.expire_after(secs(Level::Session.lifetime()));
        }
        let (layer, clock) = exact_cache(settings);
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        let t0 = clock.now();

        let response_header = on(ResponseHeader);
        let last_modified = on(Heuristic).then(|| http_date(t0 - secs(1000)));
        let served = AtomicUsize::new(0);
        origin.route("/precedence", move |_| {
            let n = served.fetch_add(1, Ordering::SeqCst);
            let mut reply = Reply::ok(format!("#{n}"));
            if response_header {
                reply = reply.header("cache-control", "max-age=10");
            }
            if let Some(last_modified) = &last_modified {
                reply = reply.header("last-modified", last_modified);
            }
            reply
        });
        let url = origin.url("/precedence");

        let mut request = if on(RequestHeader) {
            get_with(&url, &[("cache-control", "max-age=20")])
        } else {
            get(&url)
        };
        if on(PerRequest) {
            request.extensions_mut().insert(CacheOptions {
                expire_after: Some(ExpireAfter::After(secs(Level::PerRequest.lifetime()))),
                ..CacheOptions::default()
            });
        }
        let first = send(&mut session, request).await;
        assert_eq!(first.info.outcome, CacheOutcome::Miss, "{name}");

        let lifetime = match row.wins {
            Wins::NotStored => {
                assert!(!first.info.stored, "{name}");
                assert_eq!(
                    first.info.detail,
                    Some(Detail::NoFreshnessInformation),
                    "{name}"
                );
                continue;
            }
            Wins::Never => {
                assert!(first.info.stored, "{name}");
                assert_eq!(first.info.expires, None, "{name}");
                None
            }
            Wins::Level(level) => {
                assert!(first.info.stored, "{name}");
                assert_eq!(
                    first.info.expires,
                    Some(t0 + secs(level.lifetime())),
                    "{name}"
                );
                Some(level.lifetime())
            }
        };

        // The resolved expiration is kept with the response, whatever later requests carry.
        let hit = send(&mut session, get(&url)).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{name}");
        assert_eq!(hit.info.expires, first.info.expires, "{name}");
        match lifetime {
            Some(lifetime) => {
                clock.advance(secs(lifetime - 1));
                let last = send(&mut session, get(&url)).await;
                assert_eq!(last.info.outcome, CacheOutcome::Hit, "{name}");
                assert_eq!(origin.hits("/precedence"), 1, "{name}");
                clock.advance(secs(1));
                let expired = send(&mut session, get(&url)).await;
                assert!(!expired.info.from_cache, "{name}");
                assert_eq!(expired.text(), "#1", "{name}");
                assert_eq!(origin.hits("/precedence"), 2, "{name}");
            }
            None => {
                clock.advance(secs(10 * 365 * 86_400));
                let later = send(&mut session, get(&url)).await;
                assert_eq!(later.info.outcome, CacheOutcome::Hit, "{name}");
                assert_eq!(later.text(), "#0", "{name}");
                assert_eq!(origin.hits("/precedence"), 1, "{name}");
            }
        }
    }
}

/// `DO_NOT_CACHE` is an expiration like any other: the level that wins decides whether the
/// cache is used at all.
///
/// `>>> session = CachedSession(expire_after=DO_NOT_CACHE)` — "Disable caching by default, unless
/// enabled by other settings".
#[tokio::test]
async fn do_not_cache_takes_effect_only_where_its_level_wins() {
    // (name, session, per-URL, per-request, request header, cached?)
    type Case = (
        &'static str,
        Option<ExpireAfter>,
        Option<ExpireAfter>,
        Option<ExpireAfter>,
        Option<&'static str>,
        bool,
    );
    let sixty = Some(ExpireAfter::After(secs(60)));
    let cases: [Case; 6] = [
        (
            "session DO_NOT_CACHE",
            Some(DO_NOT_CACHE),
            None,
            None,
            None,
            false,
        ),
        (
            "per-URL 60 s over session DO_NOT_CACHE",
            Some(DO_NOT_CACHE),
            sixty,
            None,
            None,
            true,
        ),
        (
            "per-request 60 s over session DO_NOT_CACHE",
            Some(DO_NOT_CACHE),
            None,
            sixty,
            None,
            true,
        ),
        (
            "request max-age=60 over per-request DO_NOT_CACHE",
            None,
            None,
            Some(DO_NOT_CACHE),
            Some("max-age=60"),
            true,
        ),
        (
            "per-request DO_NOT_CACHE over per-URL 60 s",
            None,
            sixty,
            Some(DO_NOT_CACHE),
            None,
            false,
        ),
        (
            "per-URL DO_NOT_CACHE over session 60 s",
            sixty,
            Some(DO_NOT_CACHE),
            None,
            None,
            false,
        ),
    ];
    for (name, session_exp, url_exp, request_exp, header, cached) in cases {
        let mut settings = CacheSettings {
            cache_control: false,
            expire_after: session_exp,
            ..CacheSettings::default()
        };
        if let Some(url_exp) = url_exp {
            settings
                .urls_expire_after
                .push((UrlPattern::glob("*/dnc").unwrap(), url_exp));
        }
        let (layer, clock) = exact_cache(settings);
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        origin.route("/dnc", |_| Reply::ok("body"));
        let url = origin.url("/dnc");
        for _ in 0..2 {
            let mut request = match header {
                Some(value) => get_with(&url, &[("cache-control", value)]),
                None => get(&url),
            };
            request.extensions_mut().insert(CacheOptions {
                expire_after: request_exp,
                ..CacheOptions::default()
            });
            let got = send(&mut session, request).await;
            if cached {
                assert_ne!(got.info.outcome, CacheOutcome::Bypass, "{name}");
            } else {
                assert_eq!(got.info.outcome, CacheOutcome::Bypass, "{name}");
                assert_eq!(got.info.detail, Some(Detail::DoNotCache), "{name}");
                assert!(!got.info.stored, "{name}");
            }
        }
        assert_eq!(
            origin.hits("/dnc"),
            if cached { 1 } else { 2 },
            "{name}: origin hits"
        );
    }
}

/// Level 2 with `max-age=0`: the request's own `Cache-Control` beats a per-request and a session
/// expiration, and `max-age=0` means EXPIRE_IMMEDIATELY: stored only with a validator, then
/// revalidated.
#[tokio::test]
async fn request_max_age_0_beats_per_request_and_session_expiration() {
    let (layer, clock) = exact_cache(CacheSettings {
        cache_control: false,
        expire_after: Some(ExpireAfter::After(secs(300))),
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route("/v", |seen| {
        if seen.header("if-none-match") == Some("\"v\"") {
            Reply::not_modified().header("etag", "\"v\"")
        } else {
            Reply::ok("validated").header("etag", "\"v\"")
        }
    });
    origin.route("/plain", |_| Reply::ok("plain"));
    let t0 = clock.now();

    for path in ["/v", "/plain"] {
        let mut request = get_with(&origin.url(path), &[("cache-control", "max-age=0")]);
        request.extensions_mut().insert(CacheOptions {
            expire_after: Some(ExpireAfter::After(secs(60))),
            ..CacheOptions::default()
        });
        let got = send(&mut session, request).await;
        if path == "/v" {
            assert!(got.info.stored);
            assert_eq!(got.info.expires, Some(t0), "max-age=0, not 60 s or 300 s");
        } else {
            assert!(!got.info.stored);
            assert_eq!(got.info.detail, Some(Detail::StaleWithoutValidator));
        }
    }
    let revalidated = send(&mut session, get(&origin.url("/v"))).await;
    assert_eq!(revalidated.info.outcome, CacheOutcome::Revalidated);
    assert_eq!(revalidated.text(), "validated");
    assert_eq!(origin.hits("/v"), 2);
    // Once revalidated, the 304 is stored under the levels of that request: the session's 300 s.
    assert_eq!(revalidated.info.expires, Some(t0 + secs(300)));
    assert_eq!(
        send(&mut session, get(&origin.url("/v")))
            .await
            .info
            .outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/v"), 2);
}
