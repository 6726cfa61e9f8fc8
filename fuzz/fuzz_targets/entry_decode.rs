//! Stored entries: `StoredResponse::decode` of any bytes returns an entry or an error, never
//! panics; an entry it returns writes and reads back as itself, and its helpers (age, time to
//! live, size) do not panic either.
//!
//! The input is decoded as it is (version byte, digest, payload), and as the payload of a record
//! whose digest is right (BLAKE3 of the version byte and the payload), so that the fuzzer
//! reaches the payload decoder rather than stopping at the digest check.
#![no_main]

use cachelayer_store::StoredResponse;
use cachelayer_store::entry::FORMAT_VERSION;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn check(record: &[u8]) {
    let Ok(entry) = StoredResponse::decode(record) else {
        return;
    };
    let again = StoredResponse::decode(&entry.encode()).expect("a decoded entry reads back");
    assert_eq!(again, entry);
    for now in [
        UNIX_EPOCH,
        entry.created_at,
        SystemTime::now(),
        UNIX_EPOCH + Duration::from_secs(253_402_300_799), // 9999-12-31T23:59:59Z
    ] {
        let _ = entry.is_expired(now);
        let _ = entry.age(now);
        let _ = entry.time_to_live(now);
        let _ = entry.is_past_retention(now);
    }
    let _ = entry.size();
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[FORMAT_VERSION]);
    hasher.update(data);
    let mut record = vec![FORMAT_VERSION];
    record.extend_from_slice(hasher.finalize().as_bytes());
    record.extend_from_slice(data);
    check(&record);
});
