//! requests-cache parity, "Expiration" → "Expiration Values": `expire_after` as a number of
//! seconds, a duration, a date and time, and the special values `NEVER_EXPIRE`,
//! `EXPIRE_IMMEDIATELY` and `DO_NOT_CACHE`, against a real origin.
//!
//! Each test quotes the Python example it mirrors. Expiry is tested by advancing the
//! `ManualClock`, set to a whole second first: the origin's `Date` (whole seconds) then equals the
//! response time, so `CacheInfo::expires` is asserted exactly.

#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::Detail;
use common::{exact_cache, get_opts, secs};

use cachelayer::{
    CacheOptions, CacheOutcome, CacheSettings, Clock, DO_NOT_CACHE, EXPIRE_IMMEDIATELY,
    ExpireAfter, NEVER_EXPIRE,
};
use common::{Origin, Reply, client, get, send};
use http::StatusCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};
use tower::Layer;

const DAY: u64 = 86_400;

/// Routes `path` to numbered bodies (`"{path} #0"`, `"{path} #1"`, ...) with `headers`.
fn numbered(origin: &Origin, path: &'static str, headers: &'static [(&'static str, &'static str)]) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        headers
            .iter()
            .fold(Reply::ok(format!("{path} #{n}")), |reply, (name, value)| {
                reply.header(name, value)
            })
    });
}

/// Routes `path` to a resource with a fixed `ETag` that answers a matching `If-None-Match` with
/// 304, and counts full responses in its body.
fn etag_resource(origin: &Origin, path: &'static str, extra: Option<(&'static str, &'static str)>) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |seen| {
        let reply = if seen.header("if-none-match") == Some("\"v1\"") {
            Reply::not_modified()
        } else {
            let n = served.fetch_add(1, Ordering::SeqCst);
            Reply::ok(format!("{path} #{n}"))
        };
        let reply = reply.header("etag", "\"v1\"");
        match extra {
            Some((name, value)) => reply.header(name, value),
            None => reply,
        }
    });
}

/// `>>> session = CachedSession(expire_after=360)`
/// `>>> session = CachedSession(expire_after=60)`
///
/// "Specify a simple expiration value in seconds": every response is stored for that long, in
/// requests-cache's model (`cache_control: false`) and, for a response whose headers say nothing,
/// in the HTTP model too.
#[tokio::test]
async fn expire_after_in_seconds_applies_to_every_response() {
    for cache_control in [false, true] {
        let (layer, clock) = exact_cache(CacheSettings {
            cache_control,
            expire_after: Some(ExpireAfter::After(secs(60))),
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        numbered(&origin, "/get", &[]);
        let url = origin.url("/get");
        let t0 = clock.now();

        let first = send(&mut session, get(&url)).await;
        assert_eq!(first.info.outcome, CacheOutcome::Miss);
        assert!(first.info.stored, "cache_control={cache_control}");
        assert_eq!(first.info.expires, Some(t0 + secs(60)));

        clock.advance(secs(59));
        let hit = send(&mut session, get(&url)).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit);
        assert!(hit.info.from_cache);
        assert_eq!(hit.text(), "/get #0");
        assert_eq!(hit.age(), Some(59));
        assert_eq!(origin.hits("/get"), 1);

        clock.advance(secs(1));
        let expired = send(&mut session, get(&url)).await;
        assert_eq!(origin.hits("/get"), 2, "expired after exactly 60 s");
        assert_eq!(expired.text(), "/get #1");
        assert!(!expired.info.from_cache);
        assert_eq!(expired.info.expires, Some(t0 + secs(120)));
    }

    // The seed's first example: 360 seconds, written as an integer in a settings file.
    let settings: CacheSettings =
        serde_json::from_str(r#"{"cache_control": false, "expire_after": 360}"#).unwrap();
    assert_eq!(settings.expire_after, Some(ExpireAfter::After(secs(360))));
    let (layer, clock) = exact_cache(settings);
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/get", &[]);
    let t0 = clock.now();
    let first = send(&mut session, get(&origin.url("/get"))).await;
    assert_eq!(first.info.expires, Some(t0 + secs(360)));
    clock.advance(secs(359));
    assert_eq!(
        send(&mut session, get(&origin.url("/get")))
            .await
            .info
            .outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/get"), 1);
}

/// `>>> session = CachedSession(expire_after=timedelta(days=30))`
///
/// "To specify a unit of time other than seconds, use a timedelta": a `Duration`, or `"30days"`
/// in text.
#[tokio::test]
async fn expire_after_as_a_duration() {
    let thirty_days: ExpireAfter = "30days".parse().unwrap();
    assert_eq!(thirty_days, ExpireAfter::After(secs(30 * DAY)));
    assert_eq!(ExpireAfter::from(secs(30 * DAY)), thirty_days);

    let (layer, clock) = exact_cache(
        CacheSettings {
            cache_control: false,
            ..CacheSettings::default()
        }
        .expire_after(secs(30 * DAY)),
    );
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/month", &[]);
    let url = origin.url("/month");
    let t0 = clock.now();

    let first = send(&mut session, get(&url)).await;
    assert_eq!(first.info.expires, Some(t0 + secs(30 * DAY)));
    clock.advance(secs(30 * DAY - 1));
    let hit = send(&mut session, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(hit.text(), "/month #0");
    assert_eq!(origin.hits("/month"), 1);

    clock.advance(secs(1));
    assert_eq!(send(&mut session, get(&url)).await.text(), "/month #1");
    assert_eq!(origin.hits("/month"), 2);
}

/// `>>> session = CachedSession(expire_after=datetime(2023, 1, 1, 0, 0))`
///
/// "Or expire on a specific date and time": every response stored before that instant expires at
/// it, however long before it was received.
#[tokio::test]
async fn expire_at_a_specific_date_and_time() {
    // 2030-01-01T00:00:00Z
    let new_year = UNIX_EPOCH + secs(1_893_456_000);
    let at: ExpireAfter = "2030-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(at, ExpireAfter::At(new_year));
    assert_eq!(ExpireAfter::from(new_year), at);

    let (layer, clock) = exact_cache(
        CacheSettings {
            cache_control: false,
            ..CacheSettings::default()
        }
        .expire_after(at),
    );
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/a", &[]);
    numbered(&origin, "/b", &[]);
    clock.set(new_year - secs(3600));

    let a = send(&mut session, get(&origin.url("/a"))).await;
    assert_eq!(a.info.expires, Some(new_year));
    clock.advance(secs(1800));
    let b = send(&mut session, get(&origin.url("/b"))).await;
    assert_eq!(b.info.expires, Some(new_year), "the same instant");

    clock.advance(secs(1799));
    for path in ["/a", "/b"] {
        let hit = send(&mut session, get(&origin.url(path))).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{path}");
        assert_eq!(hit.text(), format!("{path} #0"));
    }
    clock.advance(secs(1));
    for path in ["/a", "/b"] {
        let after = send(&mut session, get(&origin.url(path))).await;
        assert_eq!(
            after.text(),
            format!("{path} #1"),
            "{path} expired at midnight"
        );
        assert_eq!(origin.hits(path), 2);
        // A response received after the date is already expired: like EXPIRE_IMMEDIATELY, and
        // without a validator it is not stored.
        assert!(!after.info.stored);
        assert_eq!(after.info.detail, Some(Detail::StaleWithoutValidator));
    }
}

/// `>>> session.settings.expire_after = NEVER_EXPIRE`
///
/// "Update an existing session to store new responses indefinitely": the change applies to the
/// responses stored from then on; a response stored before keeps its expiration.
#[tokio::test]
async fn update_an_existing_session_to_never_expire() {
    let (layer, clock) = exact_cache(CacheSettings {
        cache_control: false,
        expire_after: Some(ExpireAfter::After(secs(60))),
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/before", &[]);
    numbered(&origin, "/after", &[]);
    let t0 = clock.now();

    let before = send(&mut session, get(&origin.url("/before"))).await;
    assert_eq!(before.info.expires, Some(t0 + secs(60)));

    layer.set_settings(CacheSettings {
        expire_after: Some(NEVER_EXPIRE),
        ..layer.settings()
    });
    assert_eq!(layer.settings().expire_after, Some(ExpireAfter::Never));

    let after = send(&mut session, get(&origin.url("/after"))).await;
    assert!(after.info.stored);
    assert_eq!(after.info.expires, None, "never expires");

    clock.advance(secs(365 * DAY));
    let still = send(&mut session, get(&origin.url("/after"))).await;
    assert_eq!(still.info.outcome, CacheOutcome::Hit);
    assert!(!still.info.is_expired);
    assert_eq!(still.text(), "/after #0");
    assert_eq!(still.age(), Some(365 * DAY));
    assert_eq!(origin.hits("/after"), 1);

    let refetched = send(&mut session, get(&origin.url("/before"))).await;
    assert_eq!(
        refetched.text(),
        "/before #1",
        "stored under the old setting"
    );
    assert_eq!(origin.hits("/before"), 2);
    assert_eq!(
        refetched.info.expires, None,
        "stored again under the new one"
    );
}

/// `>>> session = CachedSession(expire_after=DO_NOT_CACHE)`
///
/// "Disable caching by default, unless enabled by other settings": DO_NOT_CACHE skips both
/// reading from and writing to the cache, even for a response whose headers allow caching; a
/// per-request expiration enables caching again for that request.
#[tokio::test]
async fn do_not_cache_skips_reading_and_writing() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    numbered(&origin, "/get", &[("cache-control", "max-age=600")]);
    let url = origin.url("/get");

    // Stored while the default settings are in force.
    assert!(send(&mut session, get(&url)).await.info.stored);

    layer.set_settings(CacheSettings {
        expire_after: Some(DO_NOT_CACHE),
        ..CacheSettings::default()
    });
    for n in 1..=2 {
        let skipped = send(&mut session, get(&url)).await;
        assert_eq!(skipped.text(), format!("/get #{n}"), "not read");
        assert_eq!(skipped.info.outcome, CacheOutcome::Bypass);
        assert_eq!(skipped.info.detail, Some(Detail::DoNotCache));
        assert!(!skipped.info.from_cache);
        assert!(!skipped.info.stored, "not written");
        assert!(skipped.cache_status().contains("fwd=bypass"));
    }
    assert_eq!(origin.hits("/get"), 3);

    // Unless enabled by other settings: a per-request expiration.
    numbered(&origin, "/enabled", &[]);
    let enabled = CacheOptions {
        expire_after: Some(ExpireAfter::After(secs(60))),
        ..CacheOptions::default()
    };
    let t0 = clock.now();
    let stored = send(&mut session, get_opts(&origin.url("/enabled"), enabled)).await;
    assert!(stored.info.stored);
    assert_eq!(stored.info.expires, Some(t0 + secs(60)));
    let hit = send(&mut session, get_opts(&origin.url("/enabled"), enabled)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/enabled"), 1);

    // Back to the defaults: the response stored first was neither read nor replaced.
    layer.set_settings(CacheSettings::default());
    let old = send(&mut session, get(&url)).await;
    assert_eq!(old.info.outcome, CacheOutcome::Hit);
    assert_eq!(old.text(), "/get #0");
    assert_eq!(origin.hits("/get"), 3);
}

/// `>>> session.request(expire_after=EXPIRE_IMMEDIATELY)`
///
/// "Override for a single request: cache the response if it can be revalidated": a response with
/// a validator is stored already expired and revalidated on every use; one without is not stored.
#[tokio::test]
async fn expire_immediately_caches_only_what_can_be_revalidated() {
    let (layer, clock) = exact_cache(CacheSettings::default());
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    etag_resource(&origin, "/etag", None);
    numbered(&origin, "/plain", &[]);
    let immediately = CacheOptions {
        expire_after: Some(EXPIRE_IMMEDIATELY),
        ..CacheOptions::default()
    };
    let t0 = clock.now();

    let first = send(&mut session, get_opts(&origin.url("/etag"), immediately)).await;
    assert!(first.info.stored, "it has a validator");
    assert_eq!(first.info.expires, Some(t0), "already expired");
    for n in 2..=3 {
        clock.advance(secs(1));
        let again = send(&mut session, get_opts(&origin.url("/etag"), immediately)).await;
        assert_eq!(origin.hits("/etag"), n, "revalidated on every use");
        assert_eq!(
            origin.last_request("/etag").header("if-none-match"),
            Some("\"v1\"")
        );
        assert_eq!(again.info.outcome, CacheOutcome::Revalidated);
        assert!(again.info.from_cache);
        assert!(again.info.revalidated);
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.text(), "/etag #0", "the stored body");
    }

    for n in 0..2 {
        let plain = send(&mut session, get_opts(&origin.url("/plain"), immediately)).await;
        assert_eq!(plain.text(), format!("/plain #{n}"));
        assert!(!plain.info.stored, "no validator: never usable");
        assert_eq!(plain.info.detail, Some(Detail::StaleWithoutValidator));
        assert_eq!(plain.info.outcome, CacheOutcome::Miss);
    }
    assert_eq!(origin.hits("/plain"), 2);
}

/// "Note: A value of 0 or EXPIRE_IMMEDIATELY will behave the same as `Cache-Control: max-age=0`."
///
/// The three are run side by side against the same resource: stored (it has a validator),
/// already expired, revalidated on each use.
#[tokio::test]
async fn zero_and_expire_immediately_behave_like_max_age_0() {
    let zero: ExpireAfter = "0".parse().unwrap();
    assert_eq!(zero, EXPIRE_IMMEDIATELY);
    assert_eq!(ExpireAfter::from(Duration::ZERO), EXPIRE_IMMEDIATELY);

    /// (name, `expire_after` setting, response header)
    type Case = (
        &'static str,
        Option<ExpireAfter>,
        Option<(&'static str, &'static str)>,
    );
    let cases: [Case; 3] = [
        (
            "expire_after=EXPIRE_IMMEDIATELY",
            Some(EXPIRE_IMMEDIATELY),
            None,
        ),
        ("expire_after=0", Some(zero), None),
        (
            "Cache-Control: max-age=0",
            None,
            Some(("cache-control", "max-age=0")),
        ),
    ];
    for (name, expire_after, header) in cases {
        let (layer, clock) = exact_cache(CacheSettings {
            expire_after,
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        etag_resource(&origin, "/r", header);
        let url = origin.url("/r");
        let t0 = clock.now();

        let first = send(&mut session, get(&url)).await;
        assert!(first.info.stored, "{name}");
        assert_eq!(first.info.expires, Some(t0), "{name}");
        let second = send(&mut session, get(&url)).await;
        assert_eq!(second.info.outcome, CacheOutcome::Revalidated, "{name}");
        assert_eq!(second.text(), "/r #0", "{name}");
        assert_eq!(origin.hits("/r"), 2, "{name}");
        assert_eq!(
            origin.last_request("/r").header("if-none-match"),
            Some("\"v1\""),
            "{name}"
        );
    }
}

/// "expire_after can be any of the following time values ... Or one of the following special
/// values": the text forms a settings file uses, and the constants.
#[test]
fn expiration_values_in_text_and_settings_files() {
    assert_eq!(NEVER_EXPIRE, ExpireAfter::Never);
    assert_eq!(EXPIRE_IMMEDIATELY, ExpireAfter::Immediately);
    assert_eq!(DO_NOT_CACHE, ExpireAfter::DoNotCache);

    let cases: &[(&str, ExpireAfter)] = &[
        ("never", NEVER_EXPIRE),
        ("-1", NEVER_EXPIRE),
        ("immediately", EXPIRE_IMMEDIATELY),
        ("0", EXPIRE_IMMEDIATELY),
        ("do-not-cache", DO_NOT_CACHE),
        ("360", ExpireAfter::After(secs(360))),
        ("60s", ExpireAfter::After(secs(60))),
        ("5m", ExpireAfter::After(secs(300))),
        ("1h 30m", ExpireAfter::After(secs(5400))),
        ("30days", ExpireAfter::After(secs(30 * DAY))),
        (
            "2023-01-01T00:00:00Z",
            ExpireAfter::At(UNIX_EPOCH + secs(1_672_531_200)),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<ExpireAfter>().unwrap(), *expected, "{text:?}");
        // What is written reads back the same.
        assert_eq!(
            expected.to_string().parse::<ExpireAfter>().unwrap(),
            *expected,
            "{text:?}"
        );
    }
    assert!("soon".parse::<ExpireAfter>().is_err());

    let json: &[(&str, ExpireAfter)] = &[
        ("360", ExpireAfter::After(secs(360))),
        ("-1", NEVER_EXPIRE),
        ("0", EXPIRE_IMMEDIATELY),
        (r#""never""#, NEVER_EXPIRE),
        (r#""do-not-cache""#, DO_NOT_CACHE),
        (r#""1h 30m""#, ExpireAfter::After(secs(5400))),
    ];
    for (value, expected) in json {
        let settings: CacheSettings =
            serde_json::from_str(&format!(r#"{{"expire_after": {value}}}"#)).unwrap();
        assert_eq!(settings.expire_after, Some(*expected), "{value}");
    }
    assert!(serde_json::from_str::<CacheSettings>(r#"{"expire_after": "soon"}"#).is_err());
    let none: CacheSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(none.expire_after, None);
}
