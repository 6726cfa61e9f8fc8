//! Property tests for the stored-entry format (the `entry_decode` fuzz target's invariants, on
//! every `cargo test`): decoding any bytes returns an entry or an error and never panics, a
//! damaged record never decodes, and every entry reads back as it was written.
//!
//! A record is the version byte, a BLAKE3 digest of the version byte and the payload, and the
//! payload (see `cachelayer_store::entry`). Random or damaged records stop at the digest check,
//! so the payload decoder is tested with records [`sealed`] around random or damaged payloads.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use cachelayer_store::entry::FORMAT_VERSION;
use cachelayer_store::{StalePolicy, StoredRequest, StoredResponse};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Few cases each: the whole file runs in well under a second. Failures are not persisted to
/// files: a failing case found here becomes a regression test below.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        Just("content-type".to_owned()),
        Just("set-cookie".to_owned()),
        Just("vary".to_owned()),
        "[a-z0-9-]{1,12}",
    ];
    let value = prop_oneof![
        "[ -~]{0,20}".prop_map(String::into_bytes),
        // obs-text and tabs: anything HeaderValue accepts.
        proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..20),
    ];
    proptest::collection::vec((name, value), 0..6).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(&value).unwrap(),
            );
        }
        map
    })
}

/// A time the format keeps exactly: not before the epoch, nanosecond precision.
fn time() -> impl Strategy<Value = SystemTime> {
    (0u64..=(1 << 40), 0u32..1_000_000_000).prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n))
}

fn duration() -> impl Strategy<Value = Duration> {
    (0u64..=(1 << 40), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n))
}

fn entry() -> impl Strategy<Value = StoredResponse> {
    let request =
        (method(), any::<String>(), headers()).prop_map(|(method, url, headers)| StoredRequest {
            method,
            url,
            headers,
        });
    let response = (
        100u16..=999,
        prop_oneof![
            Just(Version::HTTP_09),
            Just(Version::HTTP_10),
            Just(Version::HTTP_11),
            Just(Version::HTTP_2),
            Just(Version::HTTP_3),
        ],
        headers(),
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let times = (
        time(),
        time(),
        duration(),
        proptest::option::of(time()),
        proptest::option::of(time()),
    );
    let stale = (
        any::<bool>(),
        proptest::option::of(duration()),
        proptest::option::of(duration()),
    )
        .prop_map(
            |(must_revalidate, stale_while_revalidate, stale_if_error)| StalePolicy {
                must_revalidate,
                stale_while_revalidate,
                stale_if_error,
            },
        );
    (request, response, times, stale).prop_map(
        |(
            request,
            (status, version, headers, body),
            (request_time, created_at, initial_age, expires, retain_until),
            stale,
        )| StoredResponse {
            request,
            status: StatusCode::from_u16(status).unwrap(),
            version,
            headers,
            body: Bytes::from(body),
            request_time,
            created_at,
            initial_age,
            expires,
            stale,
            retain_until,
        },
    )
}

/// The length of a record's digest, after the version byte.
const DIGEST_LEN: usize = blake3::OUT_LEN;

/// A record around `payload`, with the digest that lets it reach the payload decoder.
fn sealed(payload: &[u8]) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[FORMAT_VERSION]);
    hasher.update(payload);
    let mut record = vec![FORMAT_VERSION];
    record.extend_from_slice(hasher.finalize().as_bytes());
    record.extend_from_slice(payload);
    record
}

/// Decodes `record`; an entry it returns must write and read back as itself, and its time
/// helpers must not panic.
fn decode_checked(record: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(entry) = StoredResponse::decode(record) {
        prop_assert_eq!(
            StoredResponse::decode(&entry.encode()).unwrap(),
            entry.clone()
        );
        for now in [UNIX_EPOCH, entry.created_at, SystemTime::now()] {
            let _ = entry.age(now);
            let _ = entry.time_to_live(now);
            let _ = entry.is_expired(now);
            let _ = entry.is_past_retention(now);
        }
        let _ = entry.size();
    }
    Ok(())
}

/// A change to a valid record: a byte replaced, inserted or removed, or the record cut short.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(record: &mut Vec<u8>, mutation: &Mutation) {
    if record.is_empty() {
        return;
    }
    let len = record.len();
    match *mutation {
        Mutation::Replace(at, b) => record[at % len] = b,
        Mutation::Insert(at, b) => record.insert(at % (len + 1), b),
        Mutation::Remove(at) => {
            record.remove(at % len);
        }
        Mutation::Truncate(at) => record.truncate(at % len),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        decode_checked(&bytes)?;
        // The same bytes behind the current version byte.
        let mut record = vec![FORMAT_VERSION];
        record.extend_from_slice(&bytes);
        decode_checked(&record)?;
        // As a payload with the right digest, so that the payload decoder reads them.
        decode_checked(&sealed(&bytes))?;
    }

    #[test]
    fn a_damaged_record_is_an_error(
        entry in entry(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let good = entry.encode();
        let mut record = good.clone();
        for m in &mutations {
            apply(&mut record, m);
        }
        if record != good {
            prop_assert!(StoredResponse::decode(&record).is_err());
        }
    }

    #[test]
    fn decoding_a_damaged_payload_never_panics(
        entry in entry(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let record = entry.encode();
        let mut payload = record.get(1 + DIGEST_LEN..).unwrap_or_default().to_vec();
        for m in &mutations {
            apply(&mut payload, m);
        }
        decode_checked(&sealed(&payload))?;
    }

    #[test]
    fn entries_read_back_as_written(entry in entry()) {
        let record = entry.encode();
        prop_assert_eq!(record.first(), Some(&FORMAT_VERSION));
        prop_assert_eq!(StoredResponse::decode(&record).unwrap(), entry);
    }
}

/// Payloads the fuzz target found: a time past what `SystemTime` holds panicked in
/// `UNIX_EPOCH + Duration` (format version 1); it must be an error.
#[test]
fn found_by_fuzzing() {
    let payload = |request_time: &[u8]| {
        let mut payload = vec![3, b'G', b'E', b'T', 0, 0, 0xc8, 0x01, 11, 0, 0];
        payload.extend_from_slice(request_time);
        // created_at, initial_age, expires, must_revalidate, the two windows, retain_until
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
        payload
    };
    // The payload is well formed: with a small request time, it reads.
    assert!(StoredResponse::decode(&sealed(&payload(&[0, 0]))).is_ok());
    // request_time = (u64::MAX seconds, 0)
    let far = payload(&[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
    ]);
    assert!(StoredResponse::decode(&sealed(&far)).is_err());
}
