//! Range requests answered from a complete stored response (RFC 9110 §14): a single byte range
//! of a stored 200 is served as a 206 without contacting the origin. Ranges answered from the
//! stored parts of a partial entry are [`partial`](super::partial)'s.

use bytes::Bytes;
use cachelayer_policy::validators::{self, EntityTag};
use cachelayer_store::StoredResponse;
use cachelayer_store::partial::ByteRange;
use http::HeaderMap;
use http::header::{IF_RANGE, RANGE};

/// What a request's `Range` asks of a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// No range applies: serve the full response (no `Range`, several ranges, a unit other than
    /// bytes, an `If-Range` that does not match, a stored status other than 200).
    Full,
    /// One satisfiable range: `206` with this part of the body and its `Content-Range`.
    Partial { body: Bytes, content_range: String },
    /// No byte of the range exists: `416` with `Content-Range: bytes */length`.
    Unsatisfiable { content_range: String },
}

/// Evaluates `Range` (and `If-Range`) of a request against a stored response.
pub(crate) fn answer(request: &HeaderMap, entry: &StoredResponse) -> RangeAnswer {
    let Some(range) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    if entry.status != http::StatusCode::OK || !if_range_matches(request, entry) {
        return RangeAnswer::Full;
    }
    let length = entry.body.len() as u64;
    match requested(range, length) {
        Requested::Ignored => RangeAnswer::Full,
        Requested::Unsatisfiable => unsatisfiable(length),
        Requested::Range(range) => {
            let (first, last) = (range.first(), range.last());
            RangeAnswer::Partial {
                body: entry.body.slice(first as usize..last as usize + 1),
                content_range: format!("bytes {first}-{last}/{length}"),
            }
        }
    }
}

/// What a `Range` field value asks of a representation of `length` bytes (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requested {
    /// Nothing a cache answers with a single part: several ranges (they would need
    /// multipart/byteranges), another unit, an invalid value. The full response is a valid
    /// answer (RFC 9110 §14.2: a server may ignore `Range`).
    Ignored,
    /// One range, its last position clipped to the representation.
    Range(ByteRange),
    /// One range of which no byte exists (416).
    Unsatisfiable,
}

/// Resolves a `Range` field value (`bytes=first-last`, `bytes=first-`, `bytes=-suffix`) against
/// a representation of `length` bytes.
pub(crate) fn requested(range: &str, length: u64) -> Requested {
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Requested::Ignored;
    };
    if spec.contains(',') {
        return Requested::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Requested::Ignored;
    };
    let (first, last) = match (first.trim(), last.trim()) {
        ("", "") => return Requested::Ignored,
        // `bytes=-N`: the last N bytes.
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Requested::Unsatisfiable,
            Ok(n) => (length.saturating_sub(n), length.saturating_sub(1)),
            Err(_) => return Requested::Ignored,
        },
        (first, last) => {
            let Ok(first) = first.parse::<u64>() else {
                return Requested::Ignored;
            };
            let last = if last.is_empty() {
                length.saturating_sub(1)
            } else {
                match last.parse::<u64>() {
                    Ok(last) if last >= first => last.min(length.saturating_sub(1)),
                    _ => return Requested::Ignored,
                }
            };
            (first, last)
        }
    };
    if length == 0 || first >= length {
        return Requested::Unsatisfiable;
    }
    ByteRange::new(first, last).map_or(Requested::Unsatisfiable, Requested::Range)
}

fn unsatisfiable(length: u64) -> RangeAnswer {
    RangeAnswer::Unsatisfiable {
        content_range: format!("bytes */{length}"),
    }
}

/// `If-Range` (RFC 9110 §13.1.5): absent, or a strong ETag equal to the stored one, or a date
/// equal to the stored strong `Last-Modified`.
fn if_range_matches(request: &HeaderMap, entry: &StoredResponse) -> bool {
    let Some(if_range) = request.get(IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let if_range = if_range.trim();
    if if_range.starts_with('"') || if_range.starts_with("W/") {
        let stored = entry
            .headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(EntityTag::parse);
        return match (EntityTag::parse(if_range), stored) {
            (Some(wanted), Some(stored)) => wanted.strong_eq(&stored),
            _ => false,
        };
    }
    match (
        httpdate::parse_http_date(if_range),
        validators::last_modified(&entry.headers),
    ) {
        (Ok(date), Some(last_modified)) => date == last_modified,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cachelayer_store::{StalePolicy, StoredRequest};
    use http::{HeaderValue, Method, StatusCode, Version};
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(body: &'static [u8]) -> StoredResponse {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        headers.insert(
            "last-modified",
            HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"),
        );
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://x/".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::OK,
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

    fn ask(range: &str, if_range: Option<&str>) -> RangeAnswer {
        let mut request = HeaderMap::new();
        request.insert(RANGE, HeaderValue::from_str(range).unwrap());
        if let Some(v) = if_range {
            request.insert(IF_RANGE, HeaderValue::from_str(v).unwrap());
        }
        answer(&request, &entry(b"0123456789"))
    }

    fn partial(body: &'static str, content_range: &str) -> RangeAnswer {
        RangeAnswer::Partial {
            body: Bytes::from_static(body.as_bytes()),
            content_range: content_range.into(),
        }
    }

    #[test]
    fn single_byte_ranges() {
        let cases: &[(&str, RangeAnswer)] = &[
            ("bytes=0-3", partial("0123", "bytes 0-3/10")),
            ("bytes=5-", partial("56789", "bytes 5-9/10")),
            ("bytes=-3", partial("789", "bytes 7-9/10")),
            ("bytes=-30", partial("0123456789", "bytes 0-9/10")),
            ("bytes=8-100", partial("89", "bytes 8-9/10")),
            ("bytes= 2 - 2 ", partial("2", "bytes 2-2/10")),
            (
                "bytes=10-",
                RangeAnswer::Unsatisfiable {
                    content_range: "bytes */10".into(),
                },
            ),
            (
                "bytes=-0",
                RangeAnswer::Unsatisfiable {
                    content_range: "bytes */10".into(),
                },
            ),
            ("bytes=0-1,4-5", RangeAnswer::Full),
            ("bytes=5-2", RangeAnswer::Full),
            ("bytes=a-b", RangeAnswer::Full),
            ("items=0-3", RangeAnswer::Full),
            ("bytes=-", RangeAnswer::Full),
        ];
        for (range, expected) in cases {
            assert_eq!(&ask(range, None), expected, "{range}");
        }
    }

    #[test]
    fn if_range_must_match_strongly() {
        assert_eq!(
            ask("bytes=0-0", Some("\"v1\"")),
            partial("0", "bytes 0-0/10")
        );
        assert_eq!(ask("bytes=0-0", Some("\"v2\"")), RangeAnswer::Full);
        assert_eq!(
            ask("bytes=0-0", Some("W/\"v1\"")),
            RangeAnswer::Full,
            "weak tags never match"
        );
        assert_eq!(
            ask("bytes=0-0", Some("Tue, 14 Nov 2023 22:13:20 GMT")),
            partial("0", "bytes 0-0/10")
        );
        assert_eq!(
            ask("bytes=0-0", Some("Wed, 15 Nov 2023 22:13:20 GMT")),
            RangeAnswer::Full
        );
    }

    #[test]
    fn no_range_or_another_status_is_full() {
        assert_eq!(answer(&HeaderMap::new(), &entry(b"abc")), RangeAnswer::Full);
        let mut not_ok = entry(b"abc");
        not_ok.status = StatusCode::NOT_FOUND;
        let mut request = HeaderMap::new();
        request.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
        assert_eq!(answer(&request, &not_ok), RangeAnswer::Full);
    }
}
