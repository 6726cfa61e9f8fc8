//! Spans and log fields: one [`tracing`] span per request through the cache, and the shapes its
//! fields take (outcome names, times as HTTP dates).
//!
//! Every request gets a DEBUG span named `cache` with the fields
//!
//! | field | when | shape |
//! |---|---|---|
//! | `method` | at the start | the request method |
//! | `url` | at the start | the request target, credentials redacted ([`RedactedUri`]) |
//! | `key` | once the request is keyed (not on bypass) | the cache key (32 hex digits, or what `key_fn` returns) |
//! | `outcome` | when the response is known | [`CacheOutcome::as_str`](crate::CacheOutcome::as_str): `hit`, `miss`, `revalidated`, ... |
//! | `detail` | with `outcome`, when there is one | the `CacheInfo::detail` token (`stale`, `no-store`, ...) |
//! | `store_read_us` | after each lookup | how long the store took to answer, in microseconds |
//! | `store_write_us` | after a write, freshening or removal | how long the store took, in microseconds |
//!
//! and the cache's decision events (DEBUG) happen inside it. A background revalidation
//! (stale-while-revalidate) has its own span, `cache_background_revalidation`, a child of the
//! request's, with the same fields but `method` and `url`.
//!
//! When no subscriber wants DEBUG spans from cachelayer, the span is disabled: making it costs
//! a level check, and nothing is formatted, timed or recorded.

use crate::health::StoreOp;
use crate::info::{CacheInfo, Detail};
use crate::redact::RedactedUri;
use http::{Method, Uri};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Span;
use tracing::field::Empty;

/// The span of one request through the cache (see the module documentation for its fields).
#[inline]
pub(crate) fn request_span(method: &Method, uri: &Uri, ignored_parameters: &[String]) -> Span {
    tracing::debug_span!(
        "cache",
        method = %method,
        url = %RedactedUri::new(uri, ignored_parameters),
        key = Empty,
        outcome = Empty,
        detail = Empty,
        store_read_us = Empty,
        store_write_us = Empty,
    )
}

/// The span of a background revalidation started by the request of `parent`.
pub(crate) fn background_span(parent: &Span) -> Span {
    if parent.is_disabled() {
        return Span::none();
    }
    let span = tracing::debug_span!(
        parent: parent,
        "cache_background_revalidation",
        key = Empty,
        outcome = Empty,
        detail = Empty,
        store_read_us = Empty,
        store_write_us = Empty,
    );
    span
}

/// Records how long a store operation took on `span` (`store_read_us` or `store_write_us`).
pub(crate) fn record_store_time(span: &Span, op: StoreOp, took: Duration) {
    if span.is_disabled() {
        return;
    }
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    match op {
        StoreOp::Read => span.record("store_read_us", micros),
        StoreOp::Write | StoreOp::Freshen | StoreOp::Invalidate => {
            span.record("store_write_us", micros)
        }
    };
}

/// Records what the cache did on `span` (`outcome`, `detail`), and logs it as a DEBUG event
/// inside the span: `outcome=hit`, `outcome=miss detail=no-store stored=false`, ...
pub(crate) fn record_outcome(span: &Span, info: &CacheInfo) {
    span.record("outcome", info.outcome.as_str());
    if let Some(detail) = info.detail {
        span.record("detail", detail.as_str());
    }
    tracing::debug!(
        parent: span,
        outcome = info.outcome.as_str(),
        detail = info.detail.map(Detail::as_str),
        stored = info.stored,
        expires = info.expires.map(|at| tracing::field::display(LogTime(at))),
        "cache outcome"
    );
}

/// A time as a log field shows it: an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110
/// §5.6.7) when it is one, otherwise (before 1970, after 9999) seconds since the Unix epoch
/// (`-86400s since the epoch`). Never panics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogTime(pub(crate) SystemTime);

/// 9999-12-31T23:59:59Z, the last instant an HTTP date can show.
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

impl fmt::Display for LogTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.duration_since(UNIX_EPOCH) {
            Ok(since) if since.as_secs() <= LAST_HTTP_DATE_SECS => {
                write!(f, "{}", httpdate::HttpDate::from(self.0))
            }
            Ok(since) => write!(f, "{}s since the epoch", since.as_secs()),
            Err(before) => write!(f, "-{}s since the epoch", before.duration().as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_log_as_http_dates_or_seconds() {
        let date = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(LogTime(date).to_string(), "Sun, 06 Nov 1994 08:49:37 GMT");
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(LogTime(before).to_string(), "-86400s since the epoch");
        let after = UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE_SECS + 1);
        assert_eq!(LogTime(after).to_string(), "253402300800s since the epoch");
        let last = UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE_SECS);
        assert_eq!(LogTime(last).to_string(), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
