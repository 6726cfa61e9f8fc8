//! Partial entries: stored parts of one complete `200` response (RFC 9111 §3.3 "Storing
//! Incomplete Responses", §3.4 "Combining Partial Content").
//!
//! # The stored form
//!
//! A partial entry is a [`StoredResponse`] with status `206 Partial Content`
//! ([`StoredResponse::is_partial`]):
//!
//! - its header fields are the representation's (those of the latest `206` combined into it,
//!   RFC 9111 §3.4), without `Content-Length`, and with one `Content-Range:
//!   bytes first-last/complete-length` field line per stored part, in ascending order; parts
//!   neither overlap nor touch (two touching parts are stored as one);
//! - its body is the bytes of the parts, one after the other, in the same order.
//!
//! So a partial entry is an ordinary record of the current format version: every store keeps it
//! as it keeps any entry, and every record written before partial entries existed reads as
//! before (complete entries never have status 206: a `206` from the origin was not stored). A
//! partial entry is **never a response to serve as it is** (its header fields hold several
//! `Content-Range` lines, its body is not the representation): the cache answers from it only
//! ranges that one stored part covers, each as a `206` of its own, and never a request for the
//! complete response. [`Parts::of`] reads and checks the parts of an entry; an entry whose parts
//! are inconsistent (ranges out of order, a length that does not match the body) is unusable.
//!
//! [`Parts::combine`] joins the parts of one representation; once they cover every byte
//! (`0-(N-1)/N`), [`Parts::into_entry`] makes the complete `200` response of them.

use crate::StoredResponse;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_RANGE};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The most parts one partial entry holds: 32. Parts that would be more once combined are not
/// combined ([`Parts::combine`] returns `None`), and an entry with more `Content-Range` lines is
/// unusable ([`Parts::of`]): many small disjoint parts cost a header field line each.
pub const MAX_PARTS: usize = 32;

/// A range of byte positions of a representation, both ends included (as `Content-Range` and
/// `Range` write them): `first..=last`, with `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    first: u64,
    last: u64,
}

impl ByteRange {
    /// The range `first..=last`; `None` when `last < first`.
    pub fn new(first: u64, last: u64) -> Option<ByteRange> {
        (first <= last).then_some(ByteRange { first, last })
    }

    /// The position of the first byte (0-based).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The position of the last byte (included).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The number of bytes, at least 1 (saturating at `u64::MAX` for `0..=u64::MAX`).
    #[allow(clippy::len_without_is_empty)] // A range always holds at least one byte.
    pub fn len(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// `true` when every byte of `other` is in `self`.
    pub fn contains(&self, other: &ByteRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

/// A `Content-Range` field value (RFC 9110 §14.4), in the `bytes` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete-length`: one range of a representation whose length is known;
    /// `last < complete_length`.
    Bytes {
        /// The bytes the response carries.
        range: ByteRange,
        /// The length of the complete representation, in bytes.
        complete_length: u64,
    },
    /// `bytes first-last/*`: one range of a representation of unknown length.
    UnknownLength(ByteRange),
    /// `bytes */complete-length`: the unsatisfied-range of a `416` response.
    Unsatisfied {
        /// The length of the complete representation, in bytes.
        complete_length: u64,
    },
}

impl ContentRange {
    /// Parses a `Content-Range` field value: `bytes` (any case), one space, then
    /// `first-last/length`, `first-last/*` or `*/length`, positions in decimal digits.
    ///
    /// `None` for anything else: another range unit, a value RFC 9110 §14.4 calls invalid
    /// (`last < first`, or `complete-length <= last`), numbers past `u64`, whitespace or signs
    /// inside, an empty value. Never panics.
    pub fn parse(value: &[u8]) -> Option<ContentRange> {
        let (unit, rest) = split_once(value, b' ')?;
        if !unit.eq_ignore_ascii_case(b"bytes") {
            return None;
        }
        let (range, length) = split_once(rest, b'/')?;
        let complete_length = match length {
            b"*" => None,
            digits => Some(decimal(digits)?),
        };
        if range == b"*" {
            return complete_length
                .map(|complete_length| ContentRange::Unsatisfied { complete_length });
        }
        let (first, last) = split_once(range, b'-')?;
        let range = ByteRange::new(decimal(first)?, decimal(last)?)?;
        match complete_length {
            None => Some(ContentRange::UnknownLength(range)),
            Some(complete_length) if range.last < complete_length => Some(ContentRange::Bytes {
                range,
                complete_length,
            }),
            Some(_) => None,
        }
    }

    /// The field value: `bytes 0-9/100`, `bytes 0-9/*`, `bytes */100`.
    pub fn to_header_value(&self) -> HeaderValue {
        let text = match self {
            ContentRange::Bytes {
                range,
                complete_length,
            } => format!("bytes {}-{}/{complete_length}", range.first, range.last),
            ContentRange::UnknownLength(range) => format!("bytes {}-{}/*", range.first, range.last),
            ContentRange::Unsatisfied { complete_length } => format!("bytes */{complete_length}"),
        };
        HeaderValue::from_maybe_shared(Bytes::from(text))
            .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
    }
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// A non-empty run of ASCII digits as a `u64`; `None` on anything else or an overflow.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The stored parts of one representation: its complete length and the ranges stored, in
/// ascending order, neither overlapping nor touching. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    complete_length: u64,
    ranges: Vec<ByteRange>,
}

impl Parts {
    /// One part: `range` of a representation of `complete_length` bytes; `None` when the range
    /// ends past it.
    pub fn single(range: ByteRange, complete_length: u64) -> Option<Parts> {
        (range.last < complete_length).then(|| Parts {
            complete_length,
            ranges: vec![range],
        })
    }

    /// The parts of a partial entry, checked: `None` when `entry` is not a partial entry (its
    /// status is not 206), or when its parts are inconsistent: no `Content-Range` line, one that
    /// does not parse as `bytes first-last/complete-length`, lines of different complete
    /// lengths, ranges out of order, overlapping or touching, or lengths that do not add up to
    /// the body's, more than [`MAX_PARTS`] parts. Such an entry is unusable.
    pub fn of(entry: &StoredResponse) -> Option<Parts> {
        if !entry.is_partial() {
            return None;
        }
        if entry
            .headers
            .get_all(CONTENT_RANGE)
            .iter()
            .nth(MAX_PARTS)
            .is_some()
        {
            return None;
        }
        let mut complete = None;
        let mut ranges: Vec<ByteRange> = Vec::new();
        let mut stored = 0u64;
        for value in entry.headers.get_all(CONTENT_RANGE) {
            let ContentRange::Bytes {
                range,
                complete_length,
            } = ContentRange::parse(value.as_bytes())?
            else {
                return None;
            };
            if *complete.get_or_insert(complete_length) != complete_length {
                return None;
            }
            if ranges
                .last()
                .is_some_and(|previous| previous.last.saturating_add(1) >= range.first)
            {
                return None;
            }
            stored = stored.checked_add(range.len())?;
            ranges.push(range);
        }
        let complete_length = complete?;
        (stored == entry.body.len() as u64).then_some(Parts {
            complete_length,
            ranges,
        })
    }

    /// The length of the complete representation, in bytes.
    pub fn complete_length(&self) -> u64 {
        self.complete_length
    }

    /// The stored ranges, in ascending order.
    pub fn ranges(&self) -> &[ByteRange] {
        &self.ranges
    }

    /// How many bytes of the representation are stored.
    pub fn stored_bytes(&self) -> u64 {
        self.ranges.iter().map(ByteRange::len).sum()
    }

    /// `true` when the parts hold every byte of the representation (one range,
    /// `0-(complete_length - 1)`), or the representation is empty.
    pub fn is_complete(&self) -> bool {
        match self.ranges.as_slice() {
            [] => self.complete_length == 0,
            [only] => only.first == 0 && only.len() == self.complete_length,
            _ => false,
        }
    }

    /// Where the bytes of `wanted` are in the entry's body, when one stored part holds all of
    /// them; `None` when no part does (some of its bytes are not stored).
    pub fn body_offsets(&self, wanted: &ByteRange) -> Option<std::ops::Range<usize>> {
        let mut offset = 0u64;
        for range in &self.ranges {
            if range.contains(wanted) {
                let start = offset + (wanted.first - range.first);
                let start = usize::try_from(start).ok()?;
                let len = usize::try_from(wanted.len()).ok()?;
                return Some(start..start.checked_add(len)?);
            }
            offset += range.len();
        }
        None
    }

    /// Combines these parts (with `body`, their bytes as an entry holds them) with `other`
    /// (with `other_body`) of the same representation, into the union of both: overlapping and
    /// touching ranges become one. Where both hold a byte, `other`'s is kept (the newer part).
    ///
    /// `None` when the two do not describe one representation (different complete lengths), a
    /// body's length does not match its parts, or the union has more than [`MAX_PARTS`] parts.
    pub fn combine(
        &self,
        body: &Bytes,
        other: &Parts,
        other_body: &Bytes,
    ) -> Option<(Parts, Bytes)> {
        if self.complete_length != other.complete_length
            || self.stored_bytes() != body.len() as u64
            || other.stored_bytes() != other_body.len() as u64
        {
            return None;
        }
        // Every piece with its bytes; the newer ones first among pieces that start together.
        let mut pieces: Vec<(ByteRange, Bytes)> = Vec::new();
        for (parts, body) in [(other, other_body), (self, body)] {
            let mut offset = 0usize;
            for range in &parts.ranges {
                let len = usize::try_from(range.len()).ok()?;
                pieces.push((*range, body.slice(offset..offset + len)));
                offset += len;
            }
        }
        pieces.sort_by_key(|(range, _)| range.first);
        let total: usize = pieces.iter().map(|(_, bytes)| bytes.len()).sum();
        let mut out = BytesMut::with_capacity(total);
        let mut ranges: Vec<ByteRange> = Vec::new();
        for (range, bytes) in pieces {
            match ranges.last_mut() {
                Some(current) if range.first <= current.last.saturating_add(1) => {
                    if range.last > current.last {
                        // The bytes of `range` past the current run.
                        let skip = usize::try_from(current.last + 1 - range.first).ok()?;
                        out.extend_from_slice(&bytes[skip..]);
                        current.last = range.last;
                    }
                }
                _ => {
                    out.extend_from_slice(&bytes);
                    ranges.push(range);
                }
            }
        }
        if ranges.len() > MAX_PARTS {
            return None;
        }
        Some((
            Parts {
                complete_length: self.complete_length,
                ranges,
            },
            out.freeze(),
        ))
    }

    /// The entry these parts (with `body`, their bytes) make with the header fields, request and
    /// times of `base` (the latest response combined, RFC 9111 §3.4):
    ///
    /// - when they are [complete](Self::is_complete): the complete response, status 200, without
    ///   `Content-Range`, with `Content-Length` the complete length;
    /// - otherwise a partial entry (status 206) in the stored form of the
    ///   [module documentation](self).
    pub fn into_entry(self, mut base: StoredResponse, body: Bytes) -> StoredResponse {
        let headers: &mut HeaderMap = &mut base.headers;
        headers.remove(CONTENT_RANGE);
        headers.remove(CONTENT_LENGTH);
        if self.is_complete() {
            base.status = StatusCode::OK;
            headers.insert(CONTENT_LENGTH, HeaderValue::from(self.complete_length));
        } else {
            base.status = StatusCode::PARTIAL_CONTENT;
            for range in &self.ranges {
                let value = ContentRange::Bytes {
                    range: *range,
                    complete_length: self.complete_length,
                }
                .to_header_value();
                // A map full to its limit (32,768 fields) leaves the entry without every line:
                // unusable (`Parts::of`), never a panic.
                let _ = headers.try_append(CONTENT_RANGE, value);
            }
        }
        base.body = body;
        base
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{StalePolicy, StoredRequest};
    use http::{Method, Version};
    use std::time::{Duration, UNIX_EPOCH};

    fn range(first: u64, last: u64) -> ByteRange {
        ByteRange::new(first, last).unwrap()
    }

    fn entry(status: u16, content_ranges: &[&str], body: &'static [u8]) -> StoredResponse {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        headers.insert("content-length", HeaderValue::from(body.len()));
        for value in content_ranges {
            headers.append(CONTENT_RANGE, HeaderValue::from_str(value).unwrap());
        }
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://x/".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::from_u16(status).unwrap(),
            version: Version::HTTP_11,
            headers,
            body: Bytes::from_static(body),
            request_time: t,
            created_at: t,
            initial_age: Duration::ZERO,
            expires: None,
            stale: StalePolicy::default(),
            retain_until: None,
        }
    }

    #[test]
    fn content_range_values() {
        let bytes = |first, last, complete_length| {
            Some(ContentRange::Bytes {
                range: range(first, last),
                complete_length,
            })
        };
        let cases: &[(&str, Option<ContentRange>)] = &[
            ("bytes 0-3/10", bytes(0, 3, 10)),
            ("BYTES 9-9/10", bytes(9, 9, 10)),
            (
                "bytes 0-3/*",
                Some(ContentRange::UnknownLength(range(0, 3))),
            ),
            (
                "bytes */10",
                Some(ContentRange::Unsatisfied {
                    complete_length: 10,
                }),
            ),
            ("bytes 0-10/10", None),
            ("bytes 5-3/10", None),
            ("bytes */*", None),
            ("bytes 0-3", None),
            ("bytes  0-3/10", None),
            ("bytes 0 -3/10", None),
            ("bytes +0-3/10", None),
            ("items 0-3/10", None),
            ("bytes 0-18446744073709551616/*", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(&ContentRange::parse(value.as_bytes()), expected, "{value}");
        }
        for value in ["bytes 0-3/10", "bytes 0-3/*", "bytes */10"] {
            let parsed = ContentRange::parse(value.as_bytes()).unwrap();
            assert_eq!(parsed.to_header_value(), value);
        }
    }

    #[test]
    fn parts_of_an_entry_are_checked() {
        let parts = Parts::of(&entry(206, &["bytes 0-1/10", "bytes 5-7/10"], b"01567")).unwrap();
        assert_eq!(parts.ranges(), &[range(0, 1), range(5, 7)]);
        assert_eq!((parts.complete_length(), parts.stored_bytes()), (10, 5));
        assert!(!parts.is_complete());
        assert_eq!(parts.body_offsets(&range(6, 7)), Some(3..5));
        assert_eq!(parts.body_offsets(&range(0, 0)), Some(0..1));
        assert_eq!(parts.body_offsets(&range(1, 5)), None, "a gap inside");
        assert_eq!(parts.body_offsets(&range(8, 9)), None);

        for (status, lines, body) in [
            (200, &["bytes 0-1/10"][..], &b"01"[..]),
            (206, &[], b""),
            (206, &["bytes 0-1/10"], b"012"),
            (206, &["bytes 5-7/10", "bytes 0-1/10"], b"56701"),
            (206, &["bytes 0-1/10", "bytes 2-3/10"], b"0123"),
            (206, &["bytes 0-1/10", "bytes 5-7/11"], b"01567"),
            (206, &["bytes 0-1/*"], b"01"),
        ] {
            let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
            assert_eq!(
                Parts::of(&entry(status, lines, body)),
                None,
                "{status} {lines:?}"
            );
        }
    }

    fn combine(
        a: (&[(u64, u64)], &'static str),
        b: (&[(u64, u64)], &'static str),
    ) -> (Vec<(u64, u64)>, String) {
        let parts = |ranges: &[(u64, u64)]| Parts {
            complete_length: 10,
            ranges: ranges.iter().map(|&(f, l)| range(f, l)).collect(),
        };
        let (parts, body) = parts(a.0)
            .combine(
                &Bytes::from_static(a.1.as_bytes()),
                &parts(b.0),
                &Bytes::from_static(b.1.as_bytes()),
            )
            .unwrap();
        (
            parts
                .ranges()
                .iter()
                .map(|r| (r.first(), r.last()))
                .collect(),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[test]
    fn combining_merges_overlapping_and_touching_parts() {
        assert_eq!(
            combine((&[(0, 3)], "0123"), (&[(4, 6)], "456")),
            (vec![(0, 6)], "0123456".into())
        );
        assert_eq!(
            combine((&[(4, 6)], "456"), (&[(0, 3)], "0123")),
            (vec![(0, 6)], "0123456".into())
        );
        assert_eq!(
            combine((&[(0, 5)], "012345"), (&[(3, 9)], "3456789")),
            (vec![(0, 9)], "0123456789".into())
        );
        assert_eq!(
            combine((&[(0, 9)], "0123456789"), (&[(2, 3)], "23")),
            (vec![(0, 9)], "0123456789".into())
        );
        assert_eq!(
            combine((&[(0, 1), (8, 9)], "0189"), (&[(4, 5)], "45")),
            (vec![(0, 1), (4, 5), (8, 9)], "014589".into())
        );
        assert_eq!(
            combine((&[(0, 1), (8, 9)], "0189"), (&[(2, 7)], "234567")),
            (vec![(0, 9)], "0123456789".into())
        );
        assert_eq!(
            combine((&[(0, 3)], "abcd"), (&[(0, 3)], "0123")).1,
            "0123",
            "the newer part's bytes are kept"
        );
    }

    #[test]
    fn combining_refuses_other_lengths_and_bad_bodies() {
        let a = Parts::single(range(0, 1), 10).unwrap();
        let b = Parts::single(range(2, 3), 11).unwrap();
        let two = Bytes::from_static(b"01");
        assert_eq!(a.combine(&two, &b, &two), None);
        assert_eq!(a.combine(&Bytes::from_static(b"012"), &a, &two), None);
        assert_eq!(Parts::single(range(0, 10), 10), None);
    }

    #[test]
    fn parts_are_bounded_in_number() {
        let even = Parts {
            complete_length: 1000,
            ranges: (0..MAX_PARTS as u64).map(|n| range(2 * n, 2 * n)).collect(),
        };
        let body = Bytes::from(vec![b'x'; MAX_PARTS]);
        let one = Bytes::from_static(b"y");
        let touching = Parts::single(range(1, 1), 1000).unwrap();
        let (joined, _) = even.combine(&body, &touching, &one).unwrap();
        assert_eq!(joined.ranges().len(), MAX_PARTS - 1, "touching parts merge");
        let apart = Parts::single(range(900, 900), 1000).unwrap();
        assert_eq!(even.combine(&body, &apart, &one), None, "one part too many");

        let base = entry(206, &[], b"");
        let mut many = base.clone();
        for n in 0..=MAX_PARTS as u64 {
            let value = format!("bytes {n}-{n}/1000");
            many.headers
                .append(CONTENT_RANGE, HeaderValue::from_str(&value).unwrap());
        }
        many.body = Bytes::from(vec![b'x'; MAX_PARTS + 1]);
        assert_eq!(Parts::of(&many), None);
    }

    #[test]
    fn complete_parts_make_a_200() {
        let base = entry(206, &["bytes 0-3/10"], b"0123");
        let parts = Parts::single(range(0, 9), 10).unwrap();
        assert!(parts.is_complete());
        let complete = parts.into_entry(base.clone(), Bytes::from_static(b"0123456789"));
        assert_eq!(complete.status, StatusCode::OK);
        assert!(!complete.is_partial());
        assert!(complete.headers.get(CONTENT_RANGE).is_none());
        assert_eq!(complete.headers[CONTENT_LENGTH], "10");
        assert_eq!(Parts::of(&complete), None);

        let parts = Parts {
            complete_length: 10,
            ranges: vec![range(0, 1), range(5, 7)],
        };
        let partial = parts.clone().into_entry(base, Bytes::from_static(b"01567"));
        assert!(partial.is_partial());
        assert!(partial.headers.get(CONTENT_LENGTH).is_none());
        let lines: Vec<_> = partial.headers.get_all(CONTENT_RANGE).iter().collect();
        assert_eq!(lines, ["bytes 0-1/10", "bytes 5-7/10"]);
        assert_eq!(Parts::of(&partial), Some(parts), "reads back");
    }
}
