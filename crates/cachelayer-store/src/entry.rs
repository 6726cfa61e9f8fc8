//! The stored-entry model: a response as a cache keeps it, with the request metadata and the
//! times that decide its freshness.
//!
//! Stores that keep entries in memory hold them as `Arc<StoredResponse>`, ideally
//! [compacted](StoredResponse::compact) (the memory store does it on `put`). Stores that
//! serialize use [`StoredResponse::encode`] / [`StoredResponse::decode`] (or their keyed forms,
//! [`encode_keyed`](StoredResponse::encode_keyed) / [`decode_keyed`](StoredResponse::decode_keyed)).
//!
//! # The record format (version [`FORMAT_VERSION`] = 2)
//!
//! ```text
//! offset 0    1 byte    format version (2)
//! offset 1    32 bytes  digest: BLAKE3(version byte ‖ payload), or with an integrity key,
//!                       BLAKE3 keyed hash (blake3::keyed_hash) of the same bytes
//! offset 33   ...       payload: the postcard encoding of the entry (serde): request method,
//!                       URL and header fields, status, version, header fields, body, times
//! ```
//!
//! The digest covers every byte of the record after it and the version byte, so one changed,
//! missing or added byte anywhere (a bad disk sector, a truncated write, a stray `SET`) makes
//! the record fail its check: [`decode`](StoredResponse::decode) returns
//! [`DecodeError::Corrupt`] ([`DecodeError::is_corrupt`]) without reading the payload. A record
//! of another format version (version 1 records, written before the digest, included) is
//! [`DecodeError::UnknownVersion`]. Either way the store treats the record as a miss and removes
//! it; stores count the corrupt ones they drop ([`Store::corrupt_records_dropped`]).
//!
//! **The plain digest detects corruption; it does not authenticate.** Anyone who can write to
//! the store's backend (a Redis namespace, the SQLite file) can compute BLAKE3 too, and so write
//! a record that passes the check: a response of their choosing, served to every client of the
//! cache. Protecting against such a writer needs a secret: with an [`IntegrityKey`] (the Redis
//! store's `integrity_key` setting) the digest is a keyed BLAKE3 MAC, which only holders of the
//! key can compute; records written without the key, or with another key, fail the check.
//!
//! # Partial entries
//!
//! A stored `206 Partial Content` is a *partial entry*: parts of one complete response (RFC 9111
//! §3.3), kept in this same record format (status 206, one `Content-Range` line per part, the
//! parts' bytes as the body; see [`partial`](crate::partial)). It is never served as it is:
//! [`StoredResponse::is_partial`] tells it apart, [`Parts::of`](crate::partial::Parts::of) reads
//! its parts. Records written before partial entries existed never have status 206, so they
//! read as before.
//!
//! [`Store::corrupt_records_dropped`]: crate::Store::corrupt_records_dropped

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::mem::size_of;
use std::ops::Range;
use std::thread::LocalKey;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version of the serialized entry format written by [`StoredResponse::encode`]: 2 (a
/// BLAKE3 digest after the version byte; see the [module documentation](self)). Version 1
/// records (no digest) are no longer read: they decode as [`DecodeError::UnknownVersion`],
/// which stores treat as a miss.
pub const FORMAT_VERSION: u8 = 2;

/// The length of the digest that follows the version byte in a record, in bytes (a full
/// BLAKE3 output).
const DIGEST_LEN: usize = blake3::OUT_LEN;

/// Where the payload of a record starts: after the version byte and the digest.
const PAYLOAD_START: usize = 1 + DIGEST_LEN;

/// Bodies up to this many bytes (64 KiB) are copied into a fresh allocation by
/// [`StoredResponse::compact`]; larger bodies are kept as they are.
pub const COMPACT_BODY_LIMIT: usize = 64 * 1024;

/// A secret key for the integrity check of serialized entries: with it, a record's digest is a
/// keyed BLAKE3 hash (a MAC) that only holders of the key can compute, so a writer of the
/// store's backend who lacks the key cannot make a record the cache accepts.
///
/// 32 bytes, as [`blake3::keyed_hash`] takes. Make one from 32 random bytes
/// ([`IntegrityKey::new`], `From<[u8; 32]>`), or derive one from a secret of any length
/// ([`IntegrityKey::derive`]). Every process that shares the store must use the same key.
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct IntegrityKey([u8; blake3::KEY_LEN]);

impl IntegrityKey {
    /// A key of 32 bytes; they should be random (from a secret store, `openssl rand 32`).
    pub fn new(key: [u8; 32]) -> Self {
        IntegrityKey(key)
    }

    /// A key derived from `secret` (a passphrase or token of any length, ideally long and
    /// random) with BLAKE3's key derivation (`blake3::derive_key`, context
    /// `"cachelayer 2025-06 stored entry integrity key"`). The same secret gives the same key.
    pub fn derive(secret: &[u8]) -> Self {
        IntegrityKey(blake3::derive_key(
            "cachelayer 2025-06 stored entry integrity key",
            secret,
        ))
    }
}

impl From<[u8; 32]> for IntegrityKey {
    fn from(key: [u8; 32]) -> Self {
        IntegrityKey::new(key)
    }
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// The request a stored response answered: what listings show, what `Vary` compares against.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    /// The request method.
    pub method: Method,
    /// The normalized request URL (see `cachelayer_policy::key::normalize_url`), with ignored
    /// parameters left out.
    pub url: String,
    /// The request header fields the response's `Vary` nominates, as the cache compares them:
    /// normalized values for content negotiation fields (`Accept-Encoding`, ...), a digest
    /// (`blake3:...`) for every other field, so secrets such as cookies are never kept.
    pub headers: HeaderMap,
}

/// What the response's directives (and the cache's settings) said about serving it stale, fixed
/// when it was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StalePolicy {
    /// Never serve stale without revalidation (`must-revalidate`, `no-cache`, or in a shared cache
    /// `proxy-revalidate` / `s-maxage`), RFC 9111 §4.2.4.
    pub must_revalidate: bool,
    /// The response's `stale-while-revalidate` window (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// The response's `stale-if-error` window (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

/// A stored response: status, header fields and the complete body, with the request it
/// answered and its timing; or, with status 206, a partial entry
/// ([`is_partial`](Self::is_partial)): stored parts of one complete response.
///
/// Cloning copies the header maps but not the body ([`Bytes`] is reference counted).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The request this response answered.
    pub request: StoredRequest,
    /// The response status; 206 for a partial entry.
    pub status: StatusCode,
    /// The HTTP version the response arrived with.
    pub version: Version,
    /// The response header fields, without hop-by-hop fields (RFC 9111 §3.1).
    pub headers: HeaderMap,
    /// The complete response body (for a partial entry, the bytes of its parts in order).
    pub body: Bytes,
    /// When the request that produced the response was sent (RFC 9111 §4.2.3 `request_time`).
    pub request_time: SystemTime,
    /// When the response was received (RFC 9111 §4.2.3 `response_time`; requests-cache
    /// `created_at`).
    pub created_at: SystemTime,
    /// The corrected initial age (RFC 9111 §4.2.3) when the response was received.
    pub initial_age: Duration,
    /// When the response becomes stale; `None`: never.
    pub expires: Option<SystemTime>,
    /// How the response may be served once stale.
    pub stale: StalePolicy,
    /// Until when a store should keep the entry; `None`: until evicted or deleted. Past this time
    /// a store may drop the entry and must not return it.
    pub retain_until: Option<SystemTime>,
}

impl StoredResponse {
    /// `true` for a partial entry: status `206 Partial Content`, the stored parts of one
    /// complete response (RFC 9111 §3.3) in the form [`partial`](crate::partial) describes. A
    /// partial entry is never a response to serve as it is: a cache answers from it only byte
    /// ranges that one stored part covers.
    #[inline]
    pub fn is_partial(&self) -> bool {
        self.status == StatusCode::PARTIAL_CONTENT
    }

    /// `true` when the response is stale at `now` (requests-cache `is_expired`).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    /// The current age at `now` (RFC 9111 §4.2.3): the corrected initial age plus the time since
    /// `created_at` (saturating at `Duration::MAX`).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.initial_age
            .saturating_add(now.duration_since(self.created_at).unwrap_or_default())
    }

    /// How long the response stays fresh from `now`: `Ok(time left)` while fresh (`Duration::MAX`
    /// when it never expires), `Err(staleness)` once stale.
    pub fn time_to_live(&self, now: SystemTime) -> Result<Duration, Duration> {
        match self.expires {
            None => Ok(Duration::MAX),
            Some(expires) => match expires.duration_since(now) {
                Ok(left) if !left.is_zero() => Ok(left),
                Ok(_) => Err(Duration::ZERO),
                Err(e) => Err(e.duration()),
            },
        }
    }

    /// `true` when the store must no longer return the entry at `now`.
    pub fn is_past_retention(&self, now: SystemTime) -> bool {
        self.retain_until.is_some_and(|until| now >= until)
    }

    /// The memory the entry holds once [compacted](Self::compact), in bytes: the weight memory
    /// stores bound their capacity by (the memory store adds its own per-entry bookkeeping and
    /// the key, see [`MemoryStore`](crate::MemoryStore)), and [`EntryInfo::size`].
    ///
    /// ```text
    /// size = ENTRY_OVERHEAD + url + body capacity
    ///      + Σ over every field line of the response and request header maps:
    ///            FIELD_OVERHEAD + name + value
    /// ```
    ///
    /// with lengths in bytes; the body capacity is the body's length, rounded up to a size class
    /// between 1 KiB and 64 KiB as [`compact`](Self::compact) allocates it (at most 25% more).
    /// On a 64-bit target:
    /// - `ENTRY_OVERHEAD` = 592: the `StoredResponse` struct (400 bytes) in its `Arc` (16 more,
    ///   and 16 of allocator overhead), the allocator overhead of the URL and body (16 bytes
    ///   each on average: an 8-byte header and rounding), the shared-buffer header a
    ///   [`Bytes`] body gets when first cloned to be served (32), and for each of the two header
    ///   maps the allocation holding its values (16 of overhead) and its shared-buffer header
    ///   (32);
    /// - `FIELD_OVERHEAD` = 154: the field's bucket in the `HeaderMap` (name, value, hash and
    ///   links: 104 bytes) and a quarter more for the map's spare capacity, its slot in the map's
    ///   index table (8, with spare slots), and 16 for what the maps' growth leaves unused.
    ///
    /// Names are counted at their length, although standard names (`content-type`, ...) take no
    /// memory of their own: the estimate errs on the high side. Measured (the `memory_rss_small`
    /// test): an entry with a 100-byte body, 10 response and 1 request header fields weighs
    /// 2,909 bytes in a memory store, and uses about 3,050 bytes of memory, 3,110 once served.
    /// An entry that was not compacted can hold much more than its size: slices of larger
    /// buffers (see [`compact`](Self::compact)).
    ///
    /// [`EntryInfo::size`]: crate::EntryInfo::size
    pub fn size(&self) -> usize {
        fn header_bytes(headers: &HeaderMap) -> usize {
            headers
                .iter()
                .map(|(n, v)| FIELD_OVERHEAD + n.as_str().len() + v.len())
                .sum()
        }
        ENTRY_OVERHEAD
            + body_capacity(self.body.len())
            + header_bytes(&self.headers)
            + header_bytes(&self.request.headers)
            + self.request.url.len()
    }

    /// The entry with everything it holds in fresh allocations of (about) its size, so that it
    /// keeps alive nothing but itself.
    ///
    /// A response parsed by hyper holds its header values, and often its body, as [`Bytes`]
    /// slices of the connection's read buffer (8 KiB to 400 KiB): one small slice keeps the whole
    /// buffer allocated for as long as the entry lives. A cache holding thousands of entries then
    /// uses several times the memory its entries [weigh](Self::size). `compact` copies:
    /// - the response's and the request's header values, each map's into one allocation of
    ///   their total length (order, repeated fields and the values' `sensitive` flag are
    ///   kept). The maps keep their structure when they have room for at most about twice
    ///   their fields; a map with more room is rebuilt at its size, with custom names copied
    ///   too (`HeaderName` never slices a foreign buffer);
    /// - the body, when it is at most [`COMPACT_BODY_LIMIT`] (64 KiB) long, into an allocation of
    ///   its length up to 1 KiB, and above, of its length rounded up to one of four size classes
    ///   per power of two (at most 25% more, about 8% on average: exact sizes of every length
    ///   fragment glibc's heap, which then holds 1.5 times what the entries use instead of 1.2);
    ///   a larger body is kept as it is (copying it costs more, and it is more often its own
    ///   allocation: the cache layer joins a body that came in several pieces into one);
    /// - the URL's spare capacity is released.
    ///
    /// A body [joined](join_body) on this thread a moment before is already compact: it is kept
    /// as it is, not copied again.
    /// The result equals `self` (`==`). It costs an allocation and a copy for each header map's
    /// values and for the body (at most 64 KiB): a few microseconds, once per stored response.
    /// Memory stores call it on `put` ([`MemoryStore`](crate::MemoryStore) does); stores that
    /// serialize need not (a decoded entry holds no slices).
    #[must_use]
    pub fn compact(mut self) -> StoredResponse {
        self.compact_in_place();
        self
    }

    /// [`compact`](Self::compact) in place: for an entry in an `Arc` nobody else holds
    /// (`Arc::get_mut`), which then keeps its allocation.
    pub fn compact_in_place(&mut self) {
        // The maps keep their structure and only the values move to new allocations (names
        // are never slices of a foreign buffer: `HeaderName` copies custom names).
        compact_headers_in_place(&mut self.headers);
        compact_headers_in_place(&mut self.request.headers);
        self.body = compact_body(std::mem::take(&mut self.body));
        self.request.url.shrink_to_fit();
    }

    /// [`compact`](Self::compact) without owning the entry: a compact copy, for an entry that is
    /// shared (`Arc`) with other holders.
    #[must_use]
    pub(crate) fn compact_copy(&self) -> StoredResponse {
        StoredResponse {
            request: StoredRequest {
                method: self.request.method.clone(),
                // `String::clone` allocates exactly the length.
                url: self.request.url.clone(),
                headers: compact_headers(&self.request.headers),
            },
            status: self.status,
            version: self.version,
            headers: compact_headers(&self.headers),
            body: compact_body(self.body.clone()),
            request_time: self.request_time,
            created_at: self.created_at,
            initial_age: self.initial_age,
            expires: self.expires,
            stale: self.stale,
            retain_until: self.retain_until,
        }
    }

    /// Serializes the entry as a [`FORMAT_VERSION`] record: the version byte, a BLAKE3 digest of
    /// the record, then the postcard payload (see the [module documentation](self)).
    /// [`decode`](Self::decode) reads it back.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None)
    }

    /// As [`encode`](Self::encode), with a keyed BLAKE3 digest under `key` (a MAC): only
    /// [`decode_keyed`](Self::decode_keyed) with the same key reads the record back.
    pub fn encode_keyed(&self, key: &IntegrityKey) -> Vec<u8> {
        self.encode_with(Some(key))
    }

    fn encode_with(&self, key: Option<&IntegrityKey>) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_START + self.body.len() + 256);
        out.push(FORMAT_VERSION);
        out.resize(PAYLOAD_START, 0);
        // Serializing into a Vec cannot fail for this type; should it ever, the empty record is
        // unreadable (a miss) rather than a panic.
        let Ok(mut out) = postcard::to_extend(self, out) else {
            return Vec::new();
        };
        let digest = digest(FORMAT_VERSION, &out[PAYLOAD_START..], key);
        out[1..PAYLOAD_START].copy_from_slice(digest.as_bytes());
        out
    }

    /// Deserializes an entry written by [`encode`](Self::encode), after checking its digest.
    ///
    /// Never panics, whatever the bytes. Costs one BLAKE3 pass over the record (several GB/s)
    /// and the copies of the body and header values.
    ///
    /// # Errors
    /// - [`DecodeError::Empty`]: `record` is empty;
    /// - [`DecodeError::UnknownVersion`]: its first byte is not [`FORMAT_VERSION`] (a version 1
    ///   record of an earlier release, one of a later release, or garbage);
    /// - [`DecodeError::Corrupt`]: its digest does not match its bytes: changed, truncated,
    ///   extended, or written with an [`IntegrityKey`] ([`encode_keyed`](Self::encode_keyed));
    /// - [`DecodeError::Malformed`]: the digest matches but the payload is not a valid entry
    ///   (written by a broken or hostile writer).
    pub fn decode(record: &[u8]) -> Result<StoredResponse, DecodeError> {
        Self::decode_with(record, None)
    }

    /// As [`decode`](Self::decode), for a record written by
    /// [`encode_keyed`](Self::encode_keyed) with `key`.
    ///
    /// # Errors
    /// As [`decode`](Self::decode); [`DecodeError::Corrupt`] also for a record written without
    /// a key or with another key.
    pub fn decode_keyed(record: &[u8], key: &IntegrityKey) -> Result<StoredResponse, DecodeError> {
        Self::decode_with(record, Some(key))
    }

    fn decode_with(
        record: &[u8],
        key: Option<&IntegrityKey>,
    ) -> Result<StoredResponse, DecodeError> {
        let Some((&version, rest)) = record.split_first() else {
            return Err(DecodeError::Empty);
        };
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let Some((stored, payload)) = rest.split_first_chunk::<DIGEST_LEN>() else {
            // Too short to hold its digest: a truncated record.
            return Err(DecodeError::Corrupt);
        };
        // `blake3::Hash` compares in constant time.
        if digest(version, payload, key) != blake3::Hash::from_bytes(*stored) {
            return Err(DecodeError::Corrupt);
        }
        postcard::from_bytes(payload).map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

/// The digest of a record: BLAKE3 (keyed with `key` when given) of the version byte and the
/// payload.
fn digest(version: u8, payload: &[u8], key: Option<&IntegrityKey>) -> blake3::Hash {
    let mut hasher = match key {
        Some(key) => blake3::Hasher::new_keyed(&key.0),
        None => blake3::Hasher::new(),
    };
    hasher.update(&[version]);
    hasher.update(payload);
    hasher.finalize()
}

/// The average allocator overhead of one heap allocation (glibc: an 8-byte header, rounding up to
/// 16 bytes), in bytes.
const ALLOC_OVERHEAD: usize = 16;

/// The header a [`Bytes`] made from a `Vec` allocates when first cloned (its shared reference
/// count), allocator overhead included, in bytes.
const SHARED_BYTES_OVERHEAD: usize = 32;

/// See [`StoredResponse::size`].
const ENTRY_OVERHEAD: usize = 16
    + size_of::<StoredResponse>()
    + ALLOC_OVERHEAD
    + 2 * ALLOC_OVERHEAD
    + SHARED_BYTES_OVERHEAD
    + 2 * (ALLOC_OVERHEAD + SHARED_BYTES_OVERHEAD);

/// See [`StoredResponse::size`]: one field line in a `HeaderMap`.
const FIELD_OVERHEAD: usize =
    (size_of::<HeaderName>() + size_of::<HeaderValue>() + 32) * 5 / 4 + 8 + ALLOC_OVERHEAD;

/// `headers` holding nothing but themselves: their values copied into one allocation of their
/// total length, each value a slice of it. A map holding many more fields than it has room for
/// is rebuilt by [`compact_headers`]; others keep their structure.
fn compact_headers_in_place(headers: &mut HeaderMap) {
    if headers.capacity() > 2 * headers.len() + 8 {
        *headers = compact_headers(headers);
        return;
    }
    if take_joined_values(headers) {
        return;
    }
    compact_values(headers);
}

/// Copies the values of `headers` into one allocation of their total length, each value becoming
/// a slice of it (its `sensitive` flag kept), as [`StoredResponse::compact`] does for an entry's
/// maps, and remembers that allocation on this thread.
///
/// For a writer about to store a copy of a response's header fields (`headers.clone()`) in
/// memory: compacting the response's own map first makes the clone share its values (one
/// allocation in all instead of one per value for a map whose values are not yet shared), and
/// the store's compaction of an entry holding the clone on the same thread soon after (before
/// this thread has compacted four more maps) finds its values compact and copies nothing. A
/// clone with fewer fields than the map (some removed) is compacted again: the entry must not
/// keep the removed values' bytes; call [`forget_header_values`] for it, so that the thread
/// does not hold on to them either. The thread holds on to the last four such allocations
/// until an entry holding them is compacted.
pub fn compact_header_values(headers: &mut HeaderMap) {
    if let Some(joined) = compact_values(headers) {
        remember_joined_values(joined);
    }
}

/// Forgets the allocation [`compact_header_values`] made for `headers`, if this thread still
/// remembers it: for a map whose stored copy leaves some of its fields out (their bytes are in
/// that allocation).
pub fn forget_header_values(headers: &HeaderMap) {
    with_joined_values_of(headers, |joined| {
        *joined = Bytes::new();
        true
    });
}

/// Copies the values of `headers` into one allocation of their total length, each value becoming
/// a slice of it with its `sensitive` flag: one allocation for the map's values instead of one
/// per value, for the entry's whole life. The allocation, unless the map has no values.
fn compact_values(headers: &mut HeaderMap) -> Option<Bytes> {
    if headers.is_empty() {
        return None;
    }
    let total: usize = headers.values().map(HeaderValue::len).sum();
    let mut joined = Vec::with_capacity(total);
    for value in headers.values() {
        joined.extend_from_slice(value.as_bytes());
    }
    let joined = Bytes::from(joined);
    let mut start = 0;
    for value in headers.values_mut() {
        let end = start + value.len();
        // The slice holds the very bytes of a valid value, so this cannot fail; should it, the
        // value is kept as it is rather than lost.
        let copy = (end <= joined.len())
            .then(|| joined.slice(start..end))
            .and_then(|bytes| HeaderValue::from_maybe_shared(bytes).ok());
        if let Some(mut copy) = copy {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
        start = end;
    }
    Some(joined)
}

/// A copy of `headers` in a map of the needed capacity, custom names in allocations of their own
/// and the values compacted by [`compact_values`].
fn compact_headers(headers: &HeaderMap) -> HeaderMap {
    // A map never holds more than `HeaderMap`'s maximum, so neither call can fail; should one,
    // the rest of the fields are kept as they are rather than lost.
    let Ok(mut out) = HeaderMap::try_with_capacity(headers.keys_len()) else {
        return headers.clone();
    };
    for (name, value) in headers {
        // `from_bytes` gives standard names (`content-type`, ...) without allocating, and a
        // custom name its own copy.
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        if out.try_append(name, value.clone()).is_err() {
            return headers.clone();
        }
    }
    compact_values(&mut out);
    out
}

/// The body in its own allocation when at most [`COMPACT_BODY_LIMIT`] long, else as it is.
fn compact_body(body: Bytes) -> Bytes {
    if body.is_empty() {
        Bytes::new()
    } else if take_joined(body.as_ptr_range()) {
        body
    } else if body.len() <= COMPACT_BODY_LIMIT {
        let mut copy = Vec::with_capacity(body_capacity(body.len()));
        copy.extend_from_slice(&body);
        Bytes::from(copy)
    } else {
        body
    }
}

/// `chunks`, the pieces of a body in order, joined into one allocation as
/// [`StoredResponse::compact`] allocates a body: of the body's length rounded up to its size
/// class up to [`COMPACT_BODY_LIMIT`], of its length above.
///
/// For a writer that receives a body in pieces and stores it in memory: compacting an entry
/// holding the result on the same thread soon after (before this thread has joined four more
/// bodies) does not copy it again, so the body is copied once instead of twice
/// ([`MemoryStore`](crate::MemoryStore)'s `put` compacts). A single chunk is returned as it is
/// (compaction copies it when it must). The thread holds on to its last four joined bodies of
/// at most [`COMPACT_BODY_LIMIT`] until an entry holding them is compacted: at most 256 KiB
/// per thread kept a little longer when they go to a store that does not compact.
pub fn join_body(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => return Bytes::new(),
        [chunk] => return chunk.clone(),
        _ => {}
    }
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut body = Vec::with_capacity(body_capacity(len));
    for chunk in chunks {
        body.extend_from_slice(chunk);
    }
    let body = Bytes::from(body);
    // Compaction keeps longer bodies as they are anyway.
    if len <= COMPACT_BODY_LIMIT {
        remember_joined(&body);
    }
    body
}

/// How many joined bodies each thread remembers.
const JOINED: usize = 4;

thread_local! {
    /// The bodies this thread joined last ([`join_body`]), in a ring, and where the next goes.
    /// Holding them keeps their memory from being reused, so an address in the ring is always
    /// the same allocation; each is forgotten by the compaction that finds it or when four newer
    /// ones push it out.
    static LAST_JOINED: RefCell<([Bytes; JOINED], usize)> =
        const { RefCell::new(([const { Bytes::new() }; JOINED], 0)) };
}

fn remember_joined(body: &Bytes) {
    remember_in(&LAST_JOINED, body.clone());
}

/// Puts `bytes` (unless empty) in this thread's `ring`, in place of its oldest.
fn remember_in(ring: &'static LocalKey<RefCell<([Bytes; JOINED], usize)>>, bytes: Bytes) {
    if bytes.is_empty() {
        return;
    }
    let _ = ring.try_with(|ring| {
        if let Ok(mut ring) = ring.try_borrow_mut() {
            let (ring, next) = &mut *ring;
            ring[*next % JOINED] = bytes;
            *next = next.wrapping_add(1);
        }
    });
}

thread_local! {
    /// The header value allocations this thread compacted last ([`compact_header_values`]), in
    /// a ring, and where the next goes; held as [`LAST_JOINED`] holds bodies.
    static LAST_JOINED_VALUES: RefCell<([Bytes; JOINED], usize)> =
        const { RefCell::new(([const { Bytes::new() }; JOINED], 0)) };
}

fn remember_joined_values(joined: Bytes) {
    remember_in(&LAST_JOINED_VALUES, joined);
}

/// `f` of the allocation in [`LAST_JOINED_VALUES`] that holds the first (non-empty) value of
/// `headers`; `false` when there is none.
fn with_joined_values_of(headers: &HeaderMap, f: impl FnOnce(&mut Bytes) -> bool) -> bool {
    // An empty value holds no bytes (and is no slice of anything).
    let Some(first) = headers.values().find(|value| !value.is_empty()) else {
        return false;
    };
    let first = first.as_bytes().as_ptr();
    LAST_JOINED_VALUES
        .try_with(|ring| {
            let Ok(mut ring) = ring.try_borrow_mut() else {
                return false;
            };
            ring.0
                .iter_mut()
                .find(|joined| joined.as_ptr_range().contains(&first))
                .is_some_and(f)
        })
        .unwrap_or(false)
}

/// Whether the values of `headers` are exactly an allocation this thread compacted: all of
/// them slices of it, together as long as it (none of its bytes belongs to a field the map no
/// longer has). Forgets it if so.
fn take_joined_values(headers: &HeaderMap) -> bool {
    with_joined_values_of(headers, |joined| {
        let range = joined.as_ptr_range();
        let mut total = 0;
        for value in headers.values().filter(|value| !value.is_empty()) {
            let bytes = value.as_bytes().as_ptr_range();
            if bytes.start < range.start || bytes.end > range.end {
                return false;
            }
            total += value.len();
        }
        if total != joined.len() {
            return false;
        }
        *joined = Bytes::new();
        true
    })
}

/// Whether `range` is exactly a body this thread joined; forgets it if so.
fn take_joined(range: Range<*const u8>) -> bool {
    LAST_JOINED
        .try_with(|joined| {
            let Ok(mut joined) = joined.try_borrow_mut() else {
                return false;
            };
            match joined
                .0
                .iter_mut()
                .find(|body| !body.is_empty() && body.as_ptr_range() == range)
            {
                Some(body) => {
                    *body = Bytes::new();
                    true
                }
                None => false,
            }
        })
        .unwrap_or(false)
}

/// Bodies longer than this many bytes (1 KiB) get a size-class capacity when compacted.
const SIZE_CLASS_FROM: usize = 1024;

/// The capacity of a compacted body of `len` bytes: `len` up to 1 KiB and past
/// [`COMPACT_BODY_LIMIT`]; in between, `len` rounded up to one of four size classes per power of
/// two (a multiple of a quarter of the power of two below it: 1280, 1536, 1792, 2048, 2560...),
/// at most 25% and on average about 8% more than `len`.
///
/// Why not exactly `len`: a memory store replaces entries of every size from 100 bytes to
/// 64 KiB, and with exact sizes glibc's allocator splits the free chunks of evicted bodies into
/// ever smaller pieces that later bodies do not fit. Measured (the `memory_rss_mixed` test: a
/// 16 MiB store, a million puts): 1.52 times the bound in resident memory with exact sizes,
/// 1.22 times with these classes (jemalloc's and mimalloc's spacing, so allocators that use size
/// classes anyway lose nothing).
fn body_capacity(len: usize) -> usize {
    if len <= SIZE_CLASS_FROM || len > COMPACT_BODY_LIMIT {
        return len;
    }
    let power = 1usize << (usize::BITS - 1 - len.leading_zeros());
    let step = power / 4;
    len.div_ceil(step) * step
}

/// Why a serialized entry could not be read. Stores treat every kind as a miss and remove the
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record is empty.
    Empty,
    /// The record was written in a format version this release does not read (its first byte):
    /// `1` for records of releases before the integrity check.
    UnknownVersion(u8),
    /// The record failed its integrity check: its digest does not match its bytes. It was
    /// changed (one flipped bit is enough), truncated or extended after it was written, or
    /// written with another [`IntegrityKey`] (or with one, read without, or the reverse).
    /// See [`is_corrupt`](Self::is_corrupt).
    Corrupt,
    /// The record passed its integrity check but is not a valid entry (a header name that is
    /// not a token, a status out of range, a time past the year 9999...): written by a broken
    /// or hostile writer.
    Malformed(String),
}

impl DecodeError {
    /// `true` when the record failed its integrity check ([`DecodeError::Corrupt`]): its bytes
    /// are not the ones that were written. Stores count the records they drop for this reason
    /// ([`Store::corrupt_records_dropped`](crate::Store::corrupt_records_dropped)). An empty
    /// record, one of another format version or a malformed one is not corrupt in this sense.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, DecodeError::Corrupt)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty cache record"),
            DecodeError::UnknownVersion(v) => {
                write!(f, "cache record format version {v} is not {FORMAT_VERSION}")
            }
            DecodeError::Corrupt => f.write_str(
                "corrupt cache record: its digest does not match (changed, truncated, or written with another integrity key)",
            ),
            DecodeError::Malformed(e) => write!(f, "malformed cache record: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

// ===== serde =====

#[derive(Serialize, Deserialize)]
struct WireHeader<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(with = "serde_bytes", borrow)]
    value: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct WireEntry<'a> {
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow)]
    url: &'a str,
    #[serde(borrow)]
    request_headers: Vec<WireHeader<'a>>,
    status: u16,
    version: u8,
    #[serde(borrow)]
    headers: Vec<WireHeader<'a>>,
    #[serde(with = "serde_bytes", borrow)]
    body: &'a [u8],
    request_time: (u64, u32),
    created_at: (u64, u32),
    initial_age: Duration,
    expires: Option<(u64, u32)>,
    must_revalidate: bool,
    stale_while_revalidate: Option<Duration>,
    stale_if_error: Option<Duration>,
    retain_until: Option<(u64, u32)>,
}

fn wire_headers(headers: &HeaderMap) -> Vec<WireHeader<'_>> {
    headers
        .iter()
        .map(|(n, v)| WireHeader {
            name: n.as_str(),
            value: v.as_bytes(),
        })
        .collect()
}

fn header_map<E: serde::de::Error>(wire: Vec<WireHeader<'_>>) -> Result<HeaderMap, E> {
    // `try_*`: more fields than a `HeaderMap` holds (32,768) is an error, not a panic.
    let mut map = HeaderMap::try_with_capacity(wire.len()).map_err(E::custom)?;
    for h in wire {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(E::custom)?;
        let value = HeaderValue::from_bytes(h.value).map_err(E::custom)?;
        map.try_append(name, value).map_err(E::custom)?;
    }
    Ok(map)
}

fn time_to_wire(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// A time from the wire; an error (not a panic) when it is past what `SystemTime` holds.
fn time_from_wire<E: serde::de::Error>((secs, nanos): (u64, u32)) -> Result<SystemTime, E> {
    UNIX_EPOCH
        .checked_add(Duration::new(secs, nanos.min(999_999_999)))
        .ok_or_else(|| E::custom("time out of range"))
}

fn version_to_wire(v: Version) -> u8 {
    match v {
        Version::HTTP_09 => 9,
        Version::HTTP_10 => 10,
        Version::HTTP_2 => 20,
        Version::HTTP_3 => 30,
        _ => 11,
    }
}

fn version_from_wire(v: u8) -> Version {
    match v {
        9 => Version::HTTP_09,
        10 => Version::HTTP_10,
        20 => Version::HTTP_2,
        30 => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

impl Serialize for StoredResponse {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireEntry {
            method: self.request.method.as_str(),
            url: &self.request.url,
            request_headers: wire_headers(&self.request.headers),
            status: self.status.as_u16(),
            version: version_to_wire(self.version),
            headers: wire_headers(&self.headers),
            body: &self.body,
            request_time: time_to_wire(self.request_time),
            created_at: time_to_wire(self.created_at),
            initial_age: self.initial_age,
            expires: self.expires.map(time_to_wire),
            must_revalidate: self.stale.must_revalidate,
            stale_while_revalidate: self.stale.stale_while_revalidate,
            stale_if_error: self.stale.stale_if_error,
            retain_until: self.retain_until.map(time_to_wire),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredResponse {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = WireEntry::deserialize(deserializer)?;
        Ok(StoredResponse {
            request: StoredRequest {
                method: Method::from_bytes(wire.method.as_bytes()).map_err(D::Error::custom)?,
                url: wire.url.to_owned(),
                headers: header_map(wire.request_headers)?,
            },
            status: StatusCode::from_u16(wire.status).map_err(D::Error::custom)?,
            version: version_from_wire(wire.version),
            headers: header_map(wire.headers)?,
            body: Bytes::copy_from_slice(wire.body),
            request_time: time_from_wire(wire.request_time)?,
            created_at: time_from_wire(wire.created_at)?,
            initial_age: wire.initial_age,
            expires: wire.expires.map(time_from_wire).transpose()?,
            stale: StalePolicy {
                must_revalidate: wire.must_revalidate,
                stale_while_revalidate: wire.stale_while_revalidate,
                stale_if_error: wire.stale_if_error,
            },
            retain_until: wire.retain_until.map(time_from_wire).transpose()?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> StoredResponse {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-bytes", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        let mut request_headers = HeaderMap::new();
        request_headers.insert("accept-language", HeaderValue::from_static("fr"));
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://example.com/a?b=1".into(),
                headers: request_headers,
            },
            status: StatusCode::OK,
            version: Version::HTTP_2,
            headers,
            body: Bytes::from_static(b"hello \x00 world"),
            request_time: t,
            created_at: t + Duration::from_millis(5),
            initial_age: Duration::from_secs(3),
            expires: Some(t + Duration::from_secs(60)),
            stale: StalePolicy {
                must_revalidate: true,
                stale_while_revalidate: Some(Duration::from_secs(10)),
                stale_if_error: None,
            },
            retain_until: None,
        }
    }

    #[test]
    fn encode_decode_round_trip_keeps_every_field() {
        let entry = sample();
        let decoded = StoredResponse::decode(&entry.encode()).unwrap();
        assert_eq!(decoded, entry);
        let values: Vec<_> = decoded.headers.get_all("set-cookie").iter().collect();
        assert_eq!(
            values,
            ["a=1", "b=2"],
            "repeated header lines keep their order"
        );
    }

    #[test]
    fn unknown_version_empty_and_garbage_are_errors() {
        let mut record = sample().encode();
        record[0] = FORMAT_VERSION + 1;
        assert_eq!(
            StoredResponse::decode(&record),
            Err(DecodeError::UnknownVersion(FORMAT_VERSION + 1))
        );
        assert_eq!(StoredResponse::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(
            StoredResponse::decode(&[FORMAT_VERSION, 0xff, 0xff]),
            Err(DecodeError::Corrupt),
            "shorter than a digest"
        );
        assert!(matches!(
            StoredResponse::decode(b"not a cache record"),
            Err(DecodeError::UnknownVersion(b'n'))
        ));
    }

    /// A record as version 1 (before the digest) wrote it: the version byte, then postcard.
    #[test]
    fn version_1_records_are_an_unknown_version() {
        let v1 = postcard::to_extend(&sample(), vec![1u8]).unwrap();
        let error = StoredResponse::decode(&v1).unwrap_err();
        assert_eq!(error, DecodeError::UnknownVersion(1));
        assert!(!error.is_corrupt());
    }

    #[test]
    fn record_layout_is_version_digest_payload() {
        let entry = sample();
        let record = entry.encode();
        assert_eq!(record[0], FORMAT_VERSION);
        let payload = postcard::to_allocvec(&entry).unwrap();
        assert_eq!(&record[PAYLOAD_START..], &payload[..]);
        let mut hashed = vec![FORMAT_VERSION];
        hashed.extend_from_slice(&payload);
        assert_eq!(&record[1..PAYLOAD_START], blake3::hash(&hashed).as_bytes());
    }

    #[test]
    fn one_flipped_byte_in_the_body_is_corrupt() {
        let mut entry = sample();
        entry.body = Bytes::from_static(b"<<the body of the stored response>>");
        let record = entry.encode();
        let start = record
            .windows(entry.body.len())
            .position(|w| w == &entry.body[..])
            .unwrap();
        for at in start..start + entry.body.len() {
            let mut tampered = record.clone();
            tampered[at] ^= 0x01;
            let error = StoredResponse::decode(&tampered).unwrap_err();
            assert_eq!(error, DecodeError::Corrupt, "byte {at} flipped");
            assert!(error.is_corrupt());
        }
    }

    #[test]
    fn every_changed_byte_is_an_error() {
        let record = sample().encode();
        for at in 0..record.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut tampered = record.clone();
                tampered[at] ^= flip;
                let expected = if at == 0 {
                    DecodeError::UnknownVersion(FORMAT_VERSION ^ flip)
                } else {
                    DecodeError::Corrupt
                };
                assert_eq!(
                    StoredResponse::decode(&tampered),
                    Err(expected),
                    "byte {at}"
                );
            }
        }
    }

    #[test]
    fn truncated_and_extended_records_are_corrupt() {
        let record = sample().encode();
        for cut in 1..record.len() {
            assert_eq!(
                StoredResponse::decode(&record[..cut]),
                Err(DecodeError::Corrupt),
                "truncated to {cut} bytes"
            );
        }
        let mut longer = record.clone();
        longer.push(0);
        assert_eq!(StoredResponse::decode(&longer), Err(DecodeError::Corrupt));
    }

    #[test]
    fn keyed_records_need_the_same_key() {
        let entry = sample();
        let key = IntegrityKey::new([7; 32]);
        let keyed = entry.encode_keyed(&key);
        assert_eq!(
            StoredResponse::decode_keyed(&keyed, &key),
            Ok(entry.clone())
        );
        assert_eq!(StoredResponse::decode(&keyed), Err(DecodeError::Corrupt));
        let other = IntegrityKey::derive(b"another secret");
        assert_eq!(
            StoredResponse::decode_keyed(&keyed, &other),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            StoredResponse::decode_keyed(&entry.encode(), &key),
            Err(DecodeError::Corrupt),
            "a record with a plain digest (which anyone can compute) is refused"
        );
        let mut tampered = keyed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            StoredResponse::decode_keyed(&tampered, &key),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            IntegrityKey::derive(b"s"),
            IntegrityKey::derive(b"s"),
            "derivation is deterministic"
        );
        assert_eq!(
            format!("{key:?}"),
            "IntegrityKey(..)",
            "Debug hides the key"
        );
    }

    /// A record with a valid digest around `payload`, as a writer who can compute BLAKE3 makes.
    fn forged(payload: &[u8]) -> Vec<u8> {
        let mut record = vec![FORMAT_VERSION];
        record.extend_from_slice(digest(FORMAT_VERSION, payload, None).as_bytes());
        record.extend_from_slice(payload);
        record
    }

    fn wire(entry: &StoredResponse) -> WireEntry<'_> {
        WireEntry {
            method: entry.request.method.as_str(),
            url: &entry.request.url,
            request_headers: vec![],
            status: 200,
            version: 11,
            headers: vec![],
            body: &entry.body,
            request_time: (0, 0),
            created_at: (0, 0),
            initial_age: Duration::ZERO,
            expires: None,
            must_revalidate: false,
            stale_while_revalidate: None,
            stale_if_error: None,
            retain_until: None,
        }
    }

    #[test]
    fn hostile_payloads_with_valid_digests_are_errors_not_panics() {
        let entry = sample();
        let garbage = forged(&[0xff; 40]);
        assert!(matches!(
            StoredResponse::decode(&garbage),
            Err(DecodeError::Malformed(_))
        ));

        // More header fields than a HeaderMap holds.
        let mut many = wire(&entry);
        many.headers = (0..40_000)
            .map(|_| WireHeader {
                name: "a",
                value: b"",
            })
            .collect();
        let record = forged(&postcard::to_allocvec(&many).unwrap());
        assert!(matches!(
            StoredResponse::decode(&record),
            Err(DecodeError::Malformed(_))
        ));

        // Times past what SystemTime holds.
        let mut far = wire(&entry);
        far.created_at = (u64::MAX, 999_999_999);
        let record = forged(&postcard::to_allocvec(&far).unwrap());
        assert!(matches!(
            StoredResponse::decode(&record),
            Err(DecodeError::Malformed(_))
        ));

        // Invalid names, values, statuses.
        for broken in [
            WireEntry {
                status: 1000,
                ..wire(&entry)
            },
            WireEntry {
                method: "GET POST",
                ..wire(&entry)
            },
            WireEntry {
                headers: vec![WireHeader {
                    name: "bad name",
                    value: b"v",
                }],
                ..wire(&entry)
            },
            WireEntry {
                headers: vec![WireHeader {
                    name: "x",
                    value: b"line\nbreak",
                }],
                ..wire(&entry)
            },
        ] {
            let record = forged(&postcard::to_allocvec(&broken).unwrap());
            assert!(matches!(
                StoredResponse::decode(&record),
                Err(DecodeError::Malformed(_))
            ));
        }

        // The largest age a record can hold: arithmetic saturates.
        let mut old = wire(&entry);
        old.initial_age = Duration::MAX;
        let record = forged(&postcard::to_allocvec(&old).unwrap());
        let decoded = StoredResponse::decode(&record).unwrap();
        assert_eq!(decoded.age(SystemTime::now()), Duration::MAX);
    }

    #[test]
    fn decode_never_panics_on_short_random_records() {
        // A fixed pseudo-random walk over short records of both valid and invalid versions.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 80) as usize;
            let record: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 7) & 0xff) as u8)
                .collect();
            let _ = StoredResponse::decode(&record);
            let mut versioned = record.clone();
            versioned.insert(0, FORMAT_VERSION);
            assert!(StoredResponse::decode(&versioned).is_err());
        }
    }

    /// `true` when `inner` lies within `outer`'s bytes.
    fn within(inner: &[u8], outer: &[u8]) -> bool {
        let range = outer.as_ptr_range();
        range.contains(&inner.as_ptr())
    }

    #[test]
    fn compact_copies_slices_out_of_their_buffer() {
        let buffer = Bytes::from(vec![b'v'; 64 * 1024]);
        let mut entry = sample();
        entry.body = buffer.slice(1000..1100);
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(0..10)).unwrap();
        secret.set_sensitive(true);
        entry.headers.insert("x-secret", secret);
        entry.headers.append(
            "x-sliced",
            HeaderValue::from_maybe_shared(buffer.slice(10..20)).unwrap(),
        );
        entry.request.headers.insert(
            "accept-encoding",
            HeaderValue::from_maybe_shared(buffer.slice(20..30)).unwrap(),
        );
        entry.request.url.reserve(1000);
        let original = entry.clone();

        let compact = entry.compact();
        assert_eq!(compact, original, "the same entry");
        assert!(!within(&compact.body, &buffer), "the body is its own copy");
        for (_, value) in compact.headers.iter().chain(compact.request.headers.iter()) {
            assert!(
                !within(value.as_bytes(), &buffer),
                "{value:?} is its own copy"
            );
        }
        assert!(compact.headers["x-secret"].is_sensitive());
        let cookies: Vec<_> = compact.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "repeated fields keep their order");
        assert_eq!(compact.request.url.capacity(), compact.request.url.len());
        assert!(compact.headers.capacity() <= 2 * compact.headers.len() + 8);

        // A map with far more room than fields is rebuilt at its size.
        let mut roomy = original.clone();
        let mut headers = HeaderMap::with_capacity(1000);
        headers.extend(original.headers.clone());
        roomy.headers = headers;
        let compact = roomy.compact();
        assert_eq!(compact, original);
        assert!(compact.headers.capacity() <= 2 * compact.headers.len() + 8);
        assert!(compact.headers["x-secret"].is_sensitive());

        let copy = original.compact_copy();
        assert_eq!(copy, original);
        assert!(!within(&copy.body, &buffer));
        assert!(!within(copy.headers["x-sliced"].as_bytes(), &buffer));
    }

    /// The bytes from the first to the last of a compacted map's values: the one allocation
    /// they all are slices of.
    fn values_span(map: &HeaderMap) -> Range<usize> {
        let ranges: Vec<_> = map
            .values()
            .filter(|value| !value.is_empty())
            .map(|value| value.as_bytes().as_ptr_range())
            .collect();
        let start = ranges.iter().map(|r| r.start as usize).min().unwrap();
        let end = ranges.iter().map(|r| r.end as usize).max().unwrap();
        start..end
    }

    #[test]
    fn a_clone_of_compacted_values_is_not_copied_again() {
        let mut response = sample().headers;
        response.insert("x-empty", HeaderValue::from_static(""));
        compact_header_values(&mut response);
        let total: usize = response.values().map(HeaderValue::len).sum();
        assert_eq!(
            values_span(&response).len(),
            total,
            "one allocation, in order"
        );

        // The store's compaction of a clone leaves the clone's values where they are.
        let mut entry = sample();
        entry.headers = response.clone();
        entry.compact_in_place();
        assert_eq!(entry.headers, response);
        for ((name, value), (_, original)) in entry.headers.iter().zip(response.iter()) {
            assert_eq!(
                value.as_bytes().as_ptr(),
                original.as_bytes().as_ptr(),
                "{name} shares the compacted allocation"
            );
        }

        // A clone without one of the fields must not keep that field's bytes: copied again.
        let mut response = sample().headers;
        response.insert("x-secret", HeaderValue::from_static("s3cr3t"));
        compact_header_values(&mut response);
        let mut entry = sample();
        entry.headers = response.clone();
        entry.headers.remove("x-secret");
        forget_header_values(&response);
        let remembered = LAST_JOINED_VALUES.with(|ring| {
            let ring = ring.borrow();
            let first = response.values().next().unwrap().as_bytes().as_ptr();
            ring.0
                .iter()
                .any(|joined| joined.as_ptr_range().contains(&first))
        });
        assert!(!remembered, "the thread no longer holds the secret's bytes");
        entry.compact_in_place();
        assert_eq!(entry.headers.len(), response.len() - 1);
        let span = values_span(&response);
        for (name, value) in &entry.headers {
            let at = value.as_bytes().as_ptr() as usize;
            assert!(!span.contains(&at), "{name} is a copy of its own");
        }
    }

    #[test]
    fn compact_keeps_bodies_over_the_limit() {
        let big = Bytes::from(vec![1; COMPACT_BODY_LIMIT + 1]);
        let mut entry = sample();
        entry.body = big.clone();
        let compact = entry.compact();
        assert_eq!(compact.body.as_ptr(), big.as_ptr(), "not copied");

        let mut entry = sample();
        entry.body = big.slice(..COMPACT_BODY_LIMIT);
        assert_ne!(
            entry.compact().body.as_ptr(),
            big.as_ptr(),
            "64 KiB: copied"
        );
    }

    /// A body joined from pieces is compacted without a second copy on the thread that joined
    /// it; a slice of it, a body joined on another thread, or one pushed out of the thread's
    /// memory by four newer ones is copied.
    #[test]
    fn joined_bodies_are_not_copied_again() {
        let pieces = [Bytes::from(vec![b'a'; 3000]), Bytes::from(vec![b'b'; 2000])];
        let joined = join_body(&pieces);
        assert_eq!(joined.len(), 5000);
        assert_eq!(&joined[2999..3001], b"ab");
        let mut entry = sample();
        entry.body = joined.clone();
        assert_eq!(
            entry.compact().body.as_ptr(),
            joined.as_ptr(),
            "not copied again"
        );
        // Forgotten once found: a second entry with the same body gets its own copy.
        let mut entry = sample();
        entry.body = joined.clone();
        assert_ne!(entry.compact().body.as_ptr(), joined.as_ptr());

        // Part of a joined body is not the joined body.
        let joined = join_body(&pieces);
        let mut entry = sample();
        entry.body = joined.slice(..4000);
        assert_ne!(entry.compact().body.as_ptr(), joined.as_ptr());

        let elsewhere = std::thread::spawn(move || join_body(&pieces))
            .join()
            .unwrap();
        let mut entry = sample();
        entry.body = elsewhere.clone();
        assert_ne!(
            entry.compact().body.as_ptr(),
            elsewhere.as_ptr(),
            "joined elsewhere"
        );

        let pieces = [Bytes::from_static(b"x"), Bytes::from_static(b"y")];
        let first = join_body(&pieces);
        for _ in 0..4 {
            join_body(&pieces);
        }
        let mut entry = sample();
        entry.body = first.clone();
        assert_ne!(entry.compact().body.as_ptr(), first.as_ptr(), "pushed out");

        // One piece is returned as it is (compaction copies it when it must).
        let one = Bytes::from(vec![b'c'; 100]);
        assert_eq!(join_body(std::slice::from_ref(&one)).as_ptr(), one.as_ptr());
        assert!(join_body(&[]).is_empty());
    }

    #[test]
    fn body_capacities_are_size_classes() {
        assert_eq!(body_capacity(0), 0);
        assert_eq!(body_capacity(100), 100);
        assert_eq!(body_capacity(1024), 1024);
        assert_eq!(body_capacity(1025), 1280);
        assert_eq!(body_capacity(1280), 1280);
        assert_eq!(body_capacity(1281), 1536);
        assert_eq!(body_capacity(2047), 2048);
        assert_eq!(body_capacity(2049), 2560);
        assert_eq!(body_capacity(40_000), 40_960);
        assert_eq!(body_capacity(COMPACT_BODY_LIMIT), COMPACT_BODY_LIMIT);
        assert_eq!(
            body_capacity(COMPACT_BODY_LIMIT + 1),
            COMPACT_BODY_LIMIT + 1
        );
        for len in 1..=COMPACT_BODY_LIMIT {
            let capacity = body_capacity(len);
            assert!(
                capacity >= len && capacity <= len + len / 4,
                "{len}: {capacity}"
            );
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn size_constants_are_the_documented_ones() {
        // `StoredResponse::size` documents these figures.
        assert_eq!(size_of::<StoredResponse>(), 400);
        assert_eq!(ENTRY_OVERHEAD, 592);
        assert_eq!(FIELD_OVERHEAD, 154);
        let mut entry = sample();
        let base = entry.size();
        entry.body = Bytes::from(vec![0; 1000]);
        assert_eq!(entry.size(), base + 1000 - b"hello \x00 world".len());
    }

    #[test]
    fn freshness_helpers() {
        let entry = sample();
        let expires = entry.expires.unwrap();
        assert!(!entry.is_expired(expires - Duration::from_secs(1)));
        assert!(entry.is_expired(expires));
        assert_eq!(
            entry.time_to_live(expires - Duration::from_secs(2)),
            Ok(Duration::from_secs(2))
        );
        assert_eq!(
            entry.time_to_live(expires + Duration::from_secs(7)),
            Err(Duration::from_secs(7))
        );
        assert_eq!(
            entry.age(entry.created_at + Duration::from_secs(10)),
            Duration::from_secs(13)
        );
        assert_eq!(
            entry.age(entry.created_at - Duration::from_secs(10)),
            Duration::from_secs(3)
        );
        assert!(entry.size() > entry.body.len());
    }
}
