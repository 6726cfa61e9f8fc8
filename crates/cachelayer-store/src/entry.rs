//! The stored-entry model: a response as a cache keeps it, with the request metadata and the
//! times that decide its freshness.
//!
//! Stores that keep entries in memory hold them as `Arc<StoredResponse>`. Stores that serialize
//! use [`StoredResponse::encode`] / [`StoredResponse::decode`]: a one-byte format version
//! ([`FORMAT_VERSION`]) followed by the postcard encoding of the entry (serde). A record of an
//! unknown version, or one that fails to decode, is a [`DecodeError`]: the store treats it as a
//! miss and removes it.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version of the serialized entry format written by [`StoredResponse::encode`].
pub const FORMAT_VERSION: u8 = 1;

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
/// answered and its timing.
///
/// Cloning copies the header maps but not the body ([`Bytes`] is reference counted).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The request this response answered.
    pub request: StoredRequest,
    /// The response status.
    pub status: StatusCode,
    /// The HTTP version the response arrived with.
    pub version: Version,
    /// The response header fields, without hop-by-hop fields (RFC 9111 §3.1).
    pub headers: HeaderMap,
    /// The complete response body.
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
    /// `true` when the response is stale at `now` (requests-cache `is_expired`).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    /// The current age at `now` (RFC 9111 §4.2.3): the corrected initial age plus the time since
    /// `created_at`.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.initial_age + now.duration_since(self.created_at).unwrap_or_default()
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

    /// An estimate of the memory the entry takes, in bytes: body, header names and values, URL,
    /// plus a fixed overhead. Memory stores weigh entries by it.
    pub fn size(&self) -> usize {
        const OVERHEAD: usize = 256;
        fn header_bytes(headers: &HeaderMap) -> usize {
            headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 16)
                .sum()
        }
        OVERHEAD
            + self.body.len()
            + header_bytes(&self.headers)
            + header_bytes(&self.request.headers)
            + self.request.url.len()
    }

    /// Serializes the entry: [`FORMAT_VERSION`], then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let out = vec![FORMAT_VERSION];
        // Serializing into a Vec cannot fail for this type; should it ever, the empty record is
        // unreadable (a miss) rather than a panic.
        postcard::to_extend(self, out).unwrap_or_default()
    }

    /// Deserializes an entry written by [`encode`](Self::encode).
    ///
    /// # Errors
    /// [`DecodeError`] when the record is empty, of another format version, or malformed.
    pub fn decode(record: &[u8]) -> Result<StoredResponse, DecodeError> {
        match record.split_first() {
            None => Err(DecodeError::Empty),
            Some((&FORMAT_VERSION, rest)) => {
                postcard::from_bytes(rest).map_err(|e| DecodeError::Malformed(e.to_string()))
            }
            Some((&version, _)) => Err(DecodeError::UnknownVersion(version)),
        }
    }
}

/// Why a serialized entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record is empty.
    Empty,
    /// The record was written in a format version this release does not read.
    UnknownVersion(u8),
    /// The record is not a valid entry.
    Malformed(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty cache record"),
            DecodeError::UnknownVersion(v) => {
                write!(f, "cache record format version {v} is not {FORMAT_VERSION}")
            }
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
    let mut map = HeaderMap::with_capacity(wire.len());
    for h in wire {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(E::custom)?;
        let value = HeaderValue::from_bytes(h.value).map_err(E::custom)?;
        map.append(name, value);
    }
    Ok(map)
}

fn time_to_wire(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn time_from_wire((secs, nanos): (u64, u32)) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999))
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
            request_time: time_from_wire(wire.request_time),
            created_at: time_from_wire(wire.created_at),
            initial_age: wire.initial_age,
            expires: wire.expires.map(time_from_wire),
            stale: StalePolicy {
                must_revalidate: wire.must_revalidate,
                stale_while_revalidate: wire.stale_while_revalidate,
                stale_if_error: wire.stale_if_error,
            },
            retain_until: wire.retain_until.map(time_from_wire),
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
        assert!(matches!(
            StoredResponse::decode(&[FORMAT_VERSION, 0xff, 0xff]),
            Err(DecodeError::Malformed(_))
        ));
        let good = sample().encode();
        for cut in 1..good.len() {
            assert!(
                StoredResponse::decode(&good[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
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
