//! A memo of recent cache keys, by the exact bytes of the request target, so that a hit does not
//! normalize and hash its URL again.
//!
//! Keys are a pure function of the request target (method, scheme, authority or `Host`, path and
//! query) when the settings derive them from nothing else (no `key_fn`, no `match_headers`, no
//! request body). The memo is direct-mapped: a slot per hash of the target, holding the target's
//! bytes and its key; a lookup compares the bytes exactly, so a hash collision can only cost a
//! recomputation, never a wrong key. A target is memoized the second time in a row its slot
//! sees it: a target seen once (most misses) costs the slot a hash, not a copy of its bytes, and
//! does not push out the target the slot holds. It belongs to one settings version: changing
//! the settings starts an empty memo.

use cachelayer_policy::CacheKey;
use http::header::HOST;
use http::{HeaderMap, Method, Uri};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};

/// Slots in a memo (a power of two).
const SLOTS: usize = 1024;
/// Targets longer than this are not memoized (bounding the memo's memory).
const MAX_TARGET: usize = 512;

/// A slot: a target's bytes ([`Target::write_to`]) and its key, and the hash of the last target
/// the slot saw without holding it (0 for none).
type Slot = Mutex<(u64, Option<(Box<[u8]>, CacheKey)>)>;

/// Recent keys by request target.
pub(crate) struct KeyMemo {
    slots: Box<[Slot]>,
    hasher: foldhash::fast::RandomState,
}

/// A request target, as the parts of the request it is made of (nothing is copied): method,
/// scheme, authority (or `Host`), path and query.
pub(crate) struct Target<'a> {
    parts: [&'a [u8]; 4],
}

impl<'a> Target<'a> {
    /// `None` when the target is too long to memoize.
    pub(crate) fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Option<Self> {
        let authority = match uri.authority() {
            Some(authority) => authority.as_str().as_bytes(),
            // Origin form: the key takes the authority from `Host`.
            None => headers.get(HOST).map_or(&b""[..], |h| h.as_bytes()),
        };
        let target = Target {
            parts: [
                method.as_str().as_bytes(),
                uri.scheme_str().unwrap_or("").as_bytes(),
                authority,
                uri.path_and_query().map_or("", |pq| pq.as_str()).as_bytes(),
            ],
        };
        (target.len() <= MAX_TARGET).then_some(target)
    }

    /// The separators written between the parts. The parts cannot contain them where they
    /// stand (a method has no space, a scheme no `:`, a valid authority or `Host` no space), so
    /// different targets never write the same bytes.
    const SEPARATORS: [&'static [u8]; 3] = [b" ", b"://", b" "];

    fn len(&self) -> usize {
        self.parts.iter().map(|part| part.len()).sum::<usize>() + 5
    }

    /// The target's bytes: `METHOD scheme://authority path?query`.
    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.parts[0]);
        for (separator, part) in Self::SEPARATORS.iter().zip(&self.parts[1..]) {
            out.extend_from_slice(separator);
            out.extend_from_slice(part);
        }
    }

    /// `bytes` are this target's ([`write_to`](Self::write_to)), compared part by part.
    fn is(&self, bytes: &[u8]) -> bool {
        let Some(mut rest) = bytes.strip_prefix(self.parts[0]) else {
            return false;
        };
        for (separator, part) in Self::SEPARATORS.iter().zip(&self.parts[1..]) {
            match rest
                .strip_prefix(*separator)
                .and_then(|rest| rest.strip_prefix(*part))
            {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl KeyMemo {
    pub(crate) fn new() -> Self {
        KeyMemo {
            slots: (0..SLOTS).map(|_| Mutex::new((0, None))).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The slot `target` belongs in: hashed once for a lookup and the insert that may follow.
    pub(crate) fn slot(&self, target: &Target<'_>) -> MemoSlot<'_> {
        let mut hasher = self.hasher.build_hasher();
        for part in target.parts {
            hasher.write(part);
        }
        // Never 0, which marks a slot that has seen nothing.
        let hash = hasher.finish() | 1 << 63;
        let index = (hash as usize) & (SLOTS - 1);
        // `index < SLOTS == slots.len()`.
        MemoSlot {
            slot: &self.slots[index],
            hash,
        }
    }
}

/// The slot of one target in a [`KeyMemo`], and the target's hash.
pub(crate) struct MemoSlot<'m> {
    slot: &'m Slot,
    hash: u64,
}

impl MemoSlot<'_> {
    /// The key memoized for exactly this target.
    pub(crate) fn get(&self, target: &Target<'_>) -> Option<CacheKey> {
        let slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match &slot.1 {
            Some((bytes, key)) if target.is(bytes) => Some(key.clone()),
            _ => None,
        }
    }

    /// Remembers the key of a target the slot saw last (replacing whatever shared its slot);
    /// of another target, only that it was seen.
    pub(crate) fn insert(&self, target: &Target<'_>, key: &CacheKey) {
        {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.0 != self.hash {
                slot.0 = self.hash;
                return;
            }
        }
        let mut bytes = Vec::with_capacity(target.len());
        target.write_to(&mut bytes);
        let entry = Some((bytes.into_boxed_slice(), key.clone()));
        // The entry it replaces is dropped after the lock is released.
        let _replaced = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.0 = 0;
            std::mem::replace(&mut slot.1, entry)
        };
    }
}

impl std::fmt::Debug for KeyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMemo").field("slots", &SLOTS).finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A request's parts, for a [`Target`] to borrow.
    struct Request(Method, Uri, HeaderMap);

    fn request(method: Method, uri: &str, host: Option<&'static str>) -> Request {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, http::HeaderValue::from_static(host));
        }
        Request(method, uri.parse().unwrap(), headers)
    }

    fn target(request: &Request) -> Option<Target<'_>> {
        Target::new(&request.0, &request.1, &request.2)
    }

    #[test]
    fn only_the_exact_target_finds_its_key() {
        let memo = KeyMemo::new();
        let key = CacheKey::from_digest([1; 16]);
        let a = request(Method::GET, "http://a.test/x?q=1", None);
        let a_target = target(&a).unwrap();
        memo.slot(&a_target).insert(&a_target, &key);
        assert_eq!(
            memo.slot(&a_target).get(&a_target),
            None,
            "seen once: not memoized"
        );
        memo.slot(&a_target).insert(&a_target, &key);
        assert_eq!(memo.slot(&a_target).get(&a_target), Some(key.clone()));
        let others = [
            request(Method::GET, "http://a.test/x?q=2", None),
            request(Method::GET, "http://a.test/x?q=", None),
            request(Method::GET, "http://a.test/x?q=11", None),
            request(Method::POST, "http://a.test/x?q=1", None),
            request(Method::GET, "https://a.test/x?q=1", None),
            request(Method::GET, "http://b.test/x?q=1", None),
            request(Method::GET, "http://a.test:80/x?q=1", None),
            request(Method::GET, "/x?q=1", Some("a.test")),
        ];
        let get = |request: &Request| {
            let target = target(request).unwrap();
            memo.slot(&target).get(&target)
        };
        for other in &others {
            assert_eq!(get(other), None);
        }
        let origin_form = request(Method::GET, "/x?q=1", Some("a.test"));
        let origin_target = target(&origin_form).unwrap();
        for _ in 0..2 {
            memo.slot(&origin_target)
                .insert(&origin_target, &CacheKey::from_digest([2; 16]));
        }
        assert_eq!(
            get(&request(Method::GET, "/x?q=1", Some("b.test"))),
            None,
            "Host counts"
        );
        assert_eq!(get(&origin_form), Some(CacheKey::from_digest([2; 16])));
    }

    #[test]
    fn a_target_reads_back_only_its_own_bytes() {
        let a = request(Method::GET, "http://a.test/x?q=1", None);
        let a = target(&a).unwrap();
        let mut bytes = Vec::new();
        a.write_to(&mut bytes);
        assert_eq!(bytes, b"GET http://a.test /x?q=1");
        assert_eq!(bytes.len(), a.len());
        assert!(a.is(&bytes));
        for other in [
            &b"GET http://a.test /x?q=1 "[..],
            b"GET http://a.test /x?q=",
            b"GET http://a.test/x?q=1",
            b"GET  http://a.test /x?q=1",
            b"",
        ] {
            assert!(!a.is(other), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn a_target_seen_once_does_not_push_out_the_one_held() {
        let memo = KeyMemo::new();
        let (a, b) = (
            request(Method::GET, "http://a.test/hot", None),
            request(Method::GET, "http://a.test/once", None),
        );
        let (a, b) = (target(&a).unwrap(), target(&b).unwrap());
        // Both in one slot, as a hash collision would put them.
        let slot = |hash| MemoSlot {
            slot: &memo.slots[0],
            hash,
        };
        let (key_a, key_b) = (
            CacheKey::from_digest([1; 16]),
            CacheKey::from_digest([2; 16]),
        );
        slot(11).insert(&a, &key_a);
        slot(11).insert(&a, &key_a);
        assert_eq!(slot(11).get(&a), Some(key_a.clone()));
        slot(22).insert(&b, &key_b);
        assert_eq!(slot(11).get(&a), Some(key_a.clone()), "still held");
        assert_eq!(slot(22).get(&b), None);
        // Seen twice in a row, it takes the slot.
        slot(22).insert(&b, &key_b);
        assert_eq!(slot(22).get(&b), Some(key_b));
        assert_eq!(slot(11).get(&a), None);
    }

    #[test]
    fn long_targets_are_not_memoized() {
        let long = request(
            Method::GET,
            &format!("http://a.test/{}", "x".repeat(MAX_TARGET)),
            None,
        );
        assert!(target(&long).is_none());
    }
}
