//! A memo of recent cache keys, by the exact bytes of the request target, so that a hit does not
//! normalize and hash its URL again.
//!
//! Keys are a pure function of the request target (method, scheme, authority or `Host`, path and
//! query) when the settings derive them from nothing else (no `key_fn`, no `match_headers`, no
//! request body). The memo is direct-mapped: a slot per hash of the target, holding the target's
//! bytes and its key; a lookup compares the bytes exactly, so a hash collision can only cost a
//! recomputation, never a wrong key. It belongs to one settings version: changing the settings
//! starts an empty memo.

use cachelayer_policy::CacheKey;
use http::header::HOST;
use http::{HeaderMap, Method, Uri};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};

/// Slots in a memo (a power of two).
const SLOTS: usize = 1024;
/// Targets longer than this are not memoized (their bytes are assembled on the stack).
const MAX_TARGET: usize = 512;

/// A slot: a target's bytes and its key.
type Slot = Mutex<Option<(Box<[u8]>, CacheKey)>>;

/// Recent keys by request target.
pub(crate) struct KeyMemo {
    slots: Box<[Slot]>,
    hasher: foldhash::fast::RandomState,
}

/// A request target's exact bytes, assembled on the stack.
pub(crate) struct Target {
    bytes: [u8; MAX_TARGET],
    len: usize,
}

impl Target {
    /// `None` when the target is too long to memoize.
    pub(crate) fn new(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Target> {
        let mut target = Target {
            bytes: [0; MAX_TARGET],
            len: 0,
        };
        target.push(method.as_str().as_bytes())?;
        target.push(b" ")?;
        target.push(uri.scheme_str().unwrap_or("").as_bytes())?;
        target.push(b"://")?;
        match uri.authority() {
            Some(authority) => target.push(authority.as_str().as_bytes())?,
            // Origin form: the key takes the authority from `Host`.
            None => target.push(headers.get(HOST).map_or(&b""[..], |h| h.as_bytes()))?,
        }
        target.push(b" ")?;
        target.push(uri.path_and_query().map_or("", |pq| pq.as_str()).as_bytes())?;
        Some(target)
    }

    fn push(&mut self, part: &[u8]) -> Option<()> {
        let end = self
            .len
            .checked_add(part.len())
            .filter(|&end| end <= MAX_TARGET)?;
        self.bytes.get_mut(self.len..end)?.copy_from_slice(part);
        self.len = end;
        Some(())
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl KeyMemo {
    pub(crate) fn new() -> Self {
        KeyMemo {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, target: &Target) -> &Slot {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(target.as_bytes());
        let index = (hasher.finish() as usize) & (SLOTS - 1);
        // `index < SLOTS == slots.len()`.
        &self.slots[index]
    }

    /// The key memoized for exactly this target.
    pub(crate) fn get(&self, target: &Target) -> Option<CacheKey> {
        let slot = self
            .slot(target)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some((bytes, key)) if **bytes == *target.as_bytes() => Some(key.clone()),
            _ => None,
        }
    }

    /// Remembers the key of a target (replacing whatever shared its slot).
    pub(crate) fn insert(&self, target: &Target, key: &CacheKey) {
        let mut slot = self
            .slot(target)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some((Box::from(target.as_bytes()), key.clone()));
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

    fn target(method: Method, uri: &str, host: Option<&'static str>) -> Option<Target> {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, http::HeaderValue::from_static(host));
        }
        Target::new(&method, &uri.parse().unwrap(), &headers)
    }

    #[test]
    fn only_the_exact_target_finds_its_key() {
        let memo = KeyMemo::new();
        let key = CacheKey::from_digest([1; 16]);
        let a = target(Method::GET, "http://a.test/x?q=1", None).unwrap();
        memo.insert(&a, &key);
        assert_eq!(memo.get(&a), Some(key.clone()));
        for other in [
            target(Method::GET, "http://a.test/x?q=2", None),
            target(Method::POST, "http://a.test/x?q=1", None),
            target(Method::GET, "https://a.test/x?q=1", None),
            target(Method::GET, "http://b.test/x?q=1", None),
            target(Method::GET, "/x?q=1", Some("a.test")),
        ] {
            assert_eq!(memo.get(&other.unwrap()), None);
        }
        let origin_form = target(Method::GET, "/x?q=1", Some("a.test")).unwrap();
        memo.insert(&origin_form, &CacheKey::from_digest([2; 16]));
        assert_eq!(
            memo.get(&target(Method::GET, "/x?q=1", Some("b.test")).unwrap()),
            None,
            "Host counts"
        );
    }

    #[test]
    fn long_targets_are_not_memoized() {
        let long = format!("http://a.test/{}", "x".repeat(MAX_TARGET));
        assert!(target(Method::GET, &long, None).is_none());
    }
}
