//! Every `Cache-Status` value [`CacheInfo::cache_status`] writes, parsed back with sfv as an
//! RFC 8941 List: one member, the cache's name, with exactly the RFC 9211 parameters the
//! response calls for. The combinations are enumerated whole (outcome, detail, stored,
//! expiration, origin status, key, name): about 58,000 values.
#![allow(clippy::unwrap_used)]

use super::*;
use sfv::{BareItem, ListEntry, Parser};
use std::time::{Duration, UNIX_EPOCH};

const OUTCOMES: [CacheOutcome; 10] = [
    CacheOutcome::Hit,
    CacheOutcome::StaleHit,
    CacheOutcome::Revalidated,
    CacheOutcome::StaleWhileRevalidate,
    CacheOutcome::StaleIfError,
    CacheOutcome::Miss,
    CacheOutcome::Refreshed,
    CacheOutcome::ForwardedByRequest,
    CacheOutcome::Bypass,
    CacheOutcome::NotCached,
];

/// The `fwd` token RFC 9211 §2.2 gives an outcome (none for a hit).
fn expected_fwd(outcome: CacheOutcome, detail: Option<Detail>) -> Option<&'static str> {
    match outcome {
        CacheOutcome::Hit | CacheOutcome::StaleHit | CacheOutcome::StaleWhileRevalidate => None,
        CacheOutcome::Revalidated | CacheOutcome::StaleIfError => Some("stale"),
        CacheOutcome::Miss => Some("uri-miss"),
        CacheOutcome::Refreshed => Some(match detail.map(Detail::as_str) {
            Some("vary-mismatch") => "vary-miss",
            Some("partial") => "partial",
            Some("stale") => "stale",
            _ => "miss",
        }),
        CacheOutcome::ForwardedByRequest => Some("request"),
        CacheOutcome::Bypass => Some("bypass"),
        CacheOutcome::NotCached => Some("miss"),
    }
}

/// The parameters a value must have, in order, with their values.
fn expected_parameters(
    info: &CacheInfo,
    now: SystemTime,
    origin_status: Option<u16>,
) -> Vec<(&'static str, BareItem)> {
    let mut expected = Vec::new();
    match expected_fwd(info.outcome, info.detail) {
        None => expected.push(("hit", BareItem::Boolean(true))),
        Some(fwd) => expected.push(("fwd", BareItem::Token(fwd.to_owned().try_into().unwrap()))),
    }
    let status = if info.outcome == CacheOutcome::NotCached {
        origin_status.or(Some(504))
    } else {
        origin_status
    };
    if let Some(status) = status {
        expected.push((
            "fwd-status",
            BareItem::Integer(i64::from(status).try_into().unwrap()),
        ));
    }
    if info.stored {
        expected.push(("stored", BareItem::Boolean(true)));
    }
    if let (true, Some(expires)) = (info.from_cache, info.expires) {
        let ttl = match expires.duration_since(now) {
            Ok(left) => left.as_secs() as i64,
            Err(stale) => -(stale.duration().as_secs() as i64),
        };
        expected.push(("ttl", BareItem::Integer(ttl.try_into().unwrap())));
    }
    if let Some(key) = &info.cache_key {
        let text = key.to_string();
        if let Ok(string) = sfv::String::from_string(text) {
            expected.push(("key", BareItem::String(string)));
        }
    }
    if let Some(detail) = info.detail {
        expected.push((
            "detail",
            BareItem::Token(detail.as_str().to_owned().try_into().unwrap()),
        ));
    }
    expected
}

#[test]
fn every_value_parses_as_a_list_with_the_right_member_and_parameters() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let details = [
        None,
        Some(Detail::Stale),
        Some(Detail::VaryMismatch),
        Some(Detail::Partial),
        Some(Detail::NoStore),
    ];
    let expirations = [
        None,
        Some(now + Duration::from_secs(60)),
        Some(now),
        Some(now - Duration::from_secs(30)),
        Some(now - Duration::from_millis(500)),
    ];
    let keys = [
        None,
        Some(CacheKey::from_digest([0xab; 16])),
        Some(CacheKey::custom("plain-key")),
        Some(CacheKey::custom("a \"quoted\" key with a \\ backslash")),
        Some(CacheKey::custom("clé non-ASCII")),
    ];
    let names = ["cachelayer", "edge-1", "my cache", "a\"b", "cachél"];
    let mut checked = 0;
    for outcome in OUTCOMES {
        for detail in details {
            for stored in [false, true] {
                for expires in expirations {
                    for origin_status in [None, Some(304), Some(500)] {
                        for key in &keys {
                            for name in names {
                                let mut info = CacheInfo::new(outcome, key.clone());
                                info.detail = detail;
                                info.stored = stored;
                                info.expires = expires;
                                let value = info.cache_status(name, now, origin_status);
                                check(&info, name, now, origin_status, value);
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 10 * 5 * 2 * 5 * 3 * 5 * 5);
}

fn check(
    info: &CacheInfo,
    name: &str,
    now: SystemTime,
    origin_status: Option<u16>,
    value: Option<HeaderValue>,
) {
    let expected_name = if let Ok(token) = sfv::Token::from_string(name.to_owned()) {
        BareItem::Token(token)
    } else if let Ok(string) = sfv::String::from_string(name.to_owned()) {
        BareItem::String(string)
    } else {
        assert_eq!(
            value, None,
            "a name that is neither token nor string: {name}"
        );
        return;
    };
    let value = value.unwrap_or_else(|| panic!("no value for {info:?} named {name}"));
    let text = value.to_str().unwrap();
    let list: sfv::List = Parser::new(text)
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a List: {e}"));
    let [ListEntry::Item(item)] = list.as_slice() else {
        panic!("{text:?}: not one item: {list:?}");
    };
    assert_eq!(item.bare_item, expected_name, "{text}");
    let parsed: Vec<(&str, &BareItem)> = item.params.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let expected = expected_parameters(info, now, origin_status);
    let expected: Vec<(&str, &BareItem)> = expected.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(parsed, expected, "{text} for {info:?}");
    // No parameter twice (a parser keeps the last one silently).
    assert_eq!(
        text.matches(';').count() - count_in_strings(text),
        parsed.len(),
        "{text}"
    );
}

/// How many `;` are inside quoted strings of `text` (a key may hold one).
fn count_in_strings(text: &str) -> usize {
    let mut inside = false;
    let mut escaped = false;
    let mut count = 0;
    for c in text.chars() {
        match (inside, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, false, '"') => inside = !inside,
            (true, false, ';') => count += 1,
            _ => {}
        }
    }
    count
}

#[test]
fn a_hit_reads_as_rfc_9211_shows_it() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut info = CacheInfo::new(CacheOutcome::Hit, Some(CacheKey::from_digest([0x5d; 16])));
    info.expires = Some(now + Duration::from_secs(57));
    let value = info.cache_status("cachelayer", now, None).unwrap();
    assert_eq!(
        value,
        "cachelayer; hit; ttl=57; key=\"5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d\""
    );
    let mut escaped = CacheInfo::new(CacheOutcome::Miss, Some(CacheKey::custom("a\"b\\c")));
    escaped.stored = true;
    assert_eq!(
        escaped.cache_status("my cache", now, None).unwrap(),
        "\"my cache\"; fwd=uri-miss; stored; key=\"a\\\"b\\\\c\""
    );
}
