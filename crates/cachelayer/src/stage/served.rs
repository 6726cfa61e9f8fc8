//! Header blocks of hits, kept per thread for the entries served most recently.
//!
//! A hit's header fields are the stored ones plus `Age` (RFC 9111 §5.1) and `Cache-Status`
//! (RFC 9211), and both of those change only once a second. A thread that serves the same
//! entry again within that second clones the block it built last time: one map copy instead of
//! copying every field into a new map and writing `Age` and `Cache-Status` again.
//!
//! A block is reused only for the very entry it was built from (the same allocation, which the
//! memo keeps from being reused while it remembers it), under the same settings snapshot and
//! the same key, and with the same `Age` and `ttl` seconds; anything else builds the block
//! afresh. Only plain hits use it (`Cache-Status: <name>; hit; ttl=..; key=..`): no
//! conditional, range, revalidation or stale-if-error answer. An entry is remembered on its
//! first hit and its block kept from its second, so that a cache serving many entries once
//! does not pay for copies it never reuses.
//!
//! Each thread keeps [`SLOTS`] blocks at most; a block shares the stored field values (it
//! holds references to them, not copies), so the memo's own memory is the maps' tables: a few
//! hundred bytes a slot. A slot whose entry was evicted keeps, until the slot is reused, the
//! entry's header values and its allocation (not its body): at most [`SLOTS`] entries' worth
//! per thread, outside the store's bound.

use crate::info::Ttl;
use crate::settings::ActiveSettings;
use cachelayer_policy::CacheKey;
use cachelayer_store::StoredResponse;
use http::HeaderMap;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

/// Blocks kept per thread (a power of two).
const SLOTS: usize = 64;

/// What a block depends on besides the entry: the whole seconds of `Age`, and `Cache-Status`'s
/// `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seconds {
    pub(crate) age: u64,
    pub(crate) ttl: Option<Ttl>,
}

struct Slot {
    /// The entry the block was built from; a `Weak` keeps its allocation (not its contents)
    /// from being reused for another entry while the slot names it.
    entry: Weak<StoredResponse>,
    settings: Weak<ActiveSettings>,
    key: Option<CacheKey>,
    seconds: Seconds,
    /// `None` until the entry is hit a second time.
    headers: Option<HeaderMap>,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            entry: Weak::new(),
            settings: Weak::new(),
            key: None,
            seconds: Seconds { age: 0, ttl: None },
            headers: None,
        }
    }

    fn is_for(&self, entry: &Arc<StoredResponse>, settings: &Arc<ActiveSettings>) -> bool {
        std::ptr::eq(self.entry.as_ptr(), Arc::as_ptr(entry))
            && std::ptr::eq(self.settings.as_ptr(), Arc::as_ptr(settings))
    }
}

thread_local! {
    static MEMO: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

fn slot_index(entry: &Arc<StoredResponse>) -> usize {
    // Allocations are at least 16-byte aligned; a multiplicative hash spreads the rest.
    let address = Arc::as_ptr(entry) as usize >> 4;
    address.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> (usize::BITS - SLOTS.ilog2())
}

/// What the memo has for a hit.
enum Probe {
    /// The block to clone.
    Block(HeaderMap),
    /// The entry was seen before: build its block and keep it.
    Keep,
    /// Build the block without keeping it (first sight, or no memo on this thread).
    Build,
}

/// The header block of a plain hit on `entry`: the block this thread built for the same entry,
/// settings, key and seconds, or `build()`'s (remembered for the next hit).
pub(crate) fn hit_headers(
    entry: &Arc<StoredResponse>,
    settings: &Arc<ActiveSettings>,
    key: &CacheKey,
    seconds: Seconds,
    build: impl FnOnce() -> HeaderMap,
) -> HeaderMap {
    let index = slot_index(entry);
    let probe = MEMO
        .try_with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return Probe::Build;
            };
            if memo.is_empty() {
                memo.resize_with(SLOTS, Slot::empty);
            }
            let slot = &mut memo[index];
            if slot.is_for(entry, settings) && slot.key.as_ref() == Some(key) {
                return match &slot.headers {
                    Some(headers) if slot.seconds == seconds => Probe::Block(headers.clone()),
                    _ => Probe::Keep,
                };
            }
            *slot = Slot {
                entry: Arc::downgrade(entry),
                settings: Arc::downgrade(settings),
                key: Some(key.clone()),
                seconds,
                headers: None,
            };
            Probe::Build
        })
        .unwrap_or(Probe::Build);
    match probe {
        Probe::Block(headers) => headers,
        Probe::Build => build(),
        Probe::Keep => {
            let headers = build();
            let _ = MEMO.try_with(|memo| {
                if let Ok(mut memo) = memo.try_borrow_mut() {
                    if let Some(slot) = memo
                        .get_mut(index)
                        .filter(|slot| slot.is_for(entry, settings))
                    {
                        slot.seconds = seconds;
                        slot.headers = Some(headers.clone());
                    }
                }
            });
            headers
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::CacheSettings;
    use http::{HeaderValue, StatusCode};
    use std::cell::Cell;

    fn entry() -> Arc<StoredResponse> {
        let now = std::time::SystemTime::UNIX_EPOCH;
        let mut headers = HeaderMap::new();
        headers.insert("x-n", HeaderValue::from_static("1"));
        Arc::new(StoredResponse {
            request: cachelayer_store::StoredRequest {
                method: http::Method::GET,
                url: "http://a.test/".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::OK,
            version: http::Version::HTTP_11,
            headers,
            body: bytes::Bytes::from_static(b"x"),
            request_time: now,
            created_at: now,
            initial_age: std::time::Duration::ZERO,
            expires: None,
            stale: cachelayer_store::StalePolicy::default(),
            retain_until: None,
        })
    }

    fn block<'a>(text: &'static str, builds: &'a Cell<u32>) -> impl FnOnce() -> HeaderMap + 'a {
        move || {
            builds.set(builds.get() + 1);
            let mut headers = HeaderMap::new();
            headers.insert("x-block", HeaderValue::from_static(text));
            headers
        }
    }

    fn x_block(headers: &HeaderMap) -> &str {
        headers["x-block"].to_str().unwrap()
    }

    const SECONDS: Seconds = Seconds {
        age: 3,
        ttl: Some(Ttl {
            stale: false,
            secs: 60,
        }),
    };

    #[test]
    fn a_block_is_kept_from_the_second_hit_and_reused_for_the_same_seconds() {
        let settings = Arc::new(ActiveSettings::new(CacheSettings::default()));
        let entry = entry();
        let key = CacheKey::custom("k");
        let builds = Cell::new(0);
        for expected_builds in [1, 2, 2, 2] {
            let headers = hit_headers(&entry, &settings, &key, SECONDS, block("a", &builds));
            assert_eq!(x_block(&headers), "a");
            assert_eq!(builds.get(), expected_builds);
        }
    }

    #[test]
    fn other_seconds_key_settings_or_entry_build_afresh() {
        let settings = Arc::new(ActiveSettings::new(CacheSettings::default()));
        let entry = entry();
        let key = CacheKey::custom("k");
        let builds = Cell::new(0);
        hit_headers(&entry, &settings, &key, SECONDS, block("a", &builds));
        hit_headers(&entry, &settings, &key, SECONDS, block("a", &builds));
        assert_eq!(builds.get(), 2);

        let later = Seconds {
            age: 4,
            ttl: Some(Ttl {
                stale: false,
                secs: 59,
            }),
        };
        let headers = hit_headers(&entry, &settings, &key, later, block("later", &builds));
        assert_eq!((x_block(&headers), builds.get()), ("later", 3));

        let other_key = CacheKey::custom("other");
        let headers = hit_headers(&entry, &settings, &other_key, later, block("key", &builds));
        assert_eq!((x_block(&headers), builds.get()), ("key", 4));

        let other_settings = Arc::new(ActiveSettings::new(CacheSettings::default()));
        let headers = hit_headers(
            &entry,
            &other_settings,
            &other_key,
            later,
            block("set", &builds),
        );
        assert_eq!((x_block(&headers), builds.get()), ("set", 5));

        // Another entry (even one equal in every field) never gets this one's block.
        let twin = Arc::new((*entry).clone());
        for n in 6..=8 {
            let headers = hit_headers(
                &twin,
                &other_settings,
                &other_key,
                later,
                block("twin", &builds),
            );
            assert_eq!(x_block(&headers), "twin");
            if n == 6 {
                assert_eq!(builds.get(), 6);
            }
        }
    }

    #[test]
    fn a_dropped_entry_is_never_confused_with_a_new_one() {
        let settings = Arc::new(ActiveSettings::new(CacheSettings::default()));
        let key = CacheKey::custom("k");
        let builds = Cell::new(0);
        let mut served = Vec::new();
        // Entries dropped after their hits: a new entry allocated where an old one was must
        // not get the old one's block (the slot's `Weak` keeps the old address taken).
        for n in 0..200 {
            let entry = entry();
            let text: &'static str = Box::leak(n.to_string().into_boxed_str());
            for _ in 0..2 {
                let headers = hit_headers(&entry, &settings, &key, SECONDS, block(text, &builds));
                served.push((text, x_block(&headers).to_owned()));
            }
        }
        for (expected, got) in served {
            assert_eq!(expected, got);
        }
    }
}
