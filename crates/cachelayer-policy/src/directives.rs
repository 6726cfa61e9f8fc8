//! `Cache-Control` and `Pragma` parsing (RFC 9111 §5.2, §5.4; RFC 5861; RFC 8246).
//!
//! Parsing never fails: unknown directives are ignored (§5.2.3), and malformed values are read
//! the way RFC 9111 tells a cache to read them, which is always the safer way:
//!
//! - a `max-age` / `s-maxage` whose value is not a valid delta-seconds (`max-age=abc`,
//!   `max-age=-1`), or that appears twice with different values, makes the response stale
//!   (a lifetime of zero, §4.2.1);
//! - a delta-seconds larger than 2^31 is read as 2^31 seconds (§1.2.2);
//! - a quoted value (`max-age="60"`) is accepted (§5.2);
//! - directive names are case-insensitive;
//! - a field that cannot be parsed cleanly (a field line with bytes outside visible ASCII, such
//!   as obs-text, or a quoted string that never ends and so swallows the directives after it) is
//!   read in the most restrictive way: its parseable directives count, and so does every
//!   `no-store`, `private` and `no-cache` token anywhere in it, wherever a quote or a stray byte
//!   put it. A cache that cannot tell what the origin meant does not share.
//!
//! ```
//! use cachelayer_policy::directives::{RequestDirectives, ResponseDirectives};
//! use http::HeaderMap;
//! use std::time::Duration;
//!
//! let mut response = HeaderMap::new();
//! response.insert("cache-control", "max-age=60, stale-if-error=300".parse().unwrap());
//! let cc = ResponseDirectives::from_headers(&response);
//! assert_eq!(cc.max_age, Some(Duration::from_secs(60)));
//! assert_eq!(cc.stale_if_error, Some(Duration::from_secs(300)));
//!
//! let mut request = HeaderMap::new();
//! request.insert("pragma", "no-cache".parse().unwrap());
//! assert!(RequestDirectives::from_headers(&request).no_cache);
//! ```

use http::header::GetAll;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::borrow::Cow;
use std::cell::RefCell;
use std::time::Duration;

/// The largest delta-seconds value a cache must represent, 2^31 seconds (RFC 9111 §1.2.2).
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// The argument of `no-cache` and `private` in a response (RFC 9111 §5.2.2.4, §5.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldList {
    /// The directive is absent.
    #[default]
    Absent,
    /// The directive is present without a list of fields: it applies to the whole response.
    All,
    /// The directive is present with a quoted list of field names: it applies to those header
    /// fields only. Names are lowercase.
    Fields(Vec<HeaderName>),
}

impl FieldList {
    /// `true` unless the directive is absent.
    pub fn is_present(&self) -> bool {
        !matches!(self, FieldList::Absent)
    }

    /// `true` when the directive applies to the whole response.
    pub fn is_all(&self) -> bool {
        matches!(self, FieldList::All)
    }
}

/// The argument of the request directive `max-stale` (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: a stale response of any staleness is acceptable.
    Any,
    /// `max-stale=N`: a response stale by at most this long is acceptable.
    AtMost(Duration),
}

/// The directives of a response's `Cache-Control` (RFC 9111 §5.2.2), with the extensions
/// `immutable` (RFC 8246), `stale-while-revalidate` and `stale-if-error` (RFC 5861).
///
/// Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseDirectives {
    /// `max-age=N` (§5.2.2.1). Invalid or conflicting values read as zero.
    pub max_age: Option<Duration>,
    /// `s-maxage=N` (§5.2.2.10), used by shared caches only. Invalid or conflicting values read
    /// as zero.
    pub s_maxage: Option<Duration>,
    /// `no-cache` (§5.2.2.4), with or without field names.
    pub no_cache: FieldList,
    /// `private` (§5.2.2.7), with or without field names.
    pub private: FieldList,
    /// `no-store` (§5.2.2.5).
    pub no_store: bool,
    /// `no-transform` (§5.2.2.6).
    pub no_transform: bool,
    /// `must-revalidate` (§5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (§5.2.2.8), used by shared caches only.
    pub proxy_revalidate: bool,
    /// `must-understand` (§5.2.2.3).
    pub must_understand: bool,
    /// `public` (§5.2.2.9).
    pub public: bool,
    /// `immutable` (RFC 8246): the response will not change while fresh.
    pub immutable: bool,
    /// `stale-while-revalidate=N` (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error=N` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

/// The longest `Cache-Control` value [`ResponseDirectives::from_headers`] remembers, in bytes.
const REMEMBERED_FIELD: usize = 128;

thread_local! {
    /// The last `Cache-Control` value [`ResponseDirectives::from_headers`] read on this thread
    /// (well-formed, naming no fields), and its directives.
    static LAST_RESPONSE_FIELD: RefCell<Option<(String, ResponseDirectives)>> =
        const { RefCell::new(None) };
}

impl ResponseDirectives {
    /// Parses every `Cache-Control` field line of a response. Never fails; see the module docs
    /// for how malformed input is read.
    ///
    /// The last field value read on a thread is remembered with its directives (unless it is
    /// longer than 128 bytes, malformed, or names fields): an origin gives most responses of a
    /// resource the same `Cache-Control`, and comparing its bytes costs less than parsing it.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let field = joined_field_lines(headers.get_all(http::header::CACHE_CONTROL));
        let remember = !field.malformed && field.text.len() <= REMEMBERED_FIELD;
        if remember {
            if let Some(known) = LAST_RESPONSE_FIELD
                .try_with(|last| {
                    let last = last.try_borrow().ok()?;
                    let (text, directives) = last.as_ref()?;
                    (**text == *field.text).then(|| directives.clone())
                })
                .ok()
                .flatten()
            {
                return known;
            }
        }
        let (mut out, balanced) = Self::parse_clean(&field.text);
        if field.malformed || !balanced {
            out.apply_restrictive_tokens(&field.text);
        }
        // Directives that name fields would cost a copy of their lists to give back.
        let names_fields = matches!(out.no_cache, FieldList::Fields(_))
            || matches!(out.private, FieldList::Fields(_));
        if remember && !names_fields {
            let _ = LAST_RESPONSE_FIELD.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    match &mut *last {
                        Some((text, directives)) => {
                            text.clear();
                            text.push_str(&field.text);
                            directives.clone_from(&out);
                        }
                        None => *last = Some((field.text.to_string(), out.clone())),
                    }
                }
            });
        }
        out
    }

    /// Parses one `Cache-Control` field value. A value with an unterminated quoted string is read
    /// restrictively (see the module docs).
    pub fn parse(value: &str) -> Self {
        let (mut out, balanced) = Self::parse_clean(value);
        if !balanced {
            out.apply_restrictive_tokens(value);
        }
        out
    }

    /// A malformed field: every `no-store`, `private` and `no-cache` token in it applies, to the
    /// whole response, and `must-understand` no longer lifts `no-store`.
    fn apply_restrictive_tokens(&mut self, value: &str) {
        for token in bare_tokens(value) {
            if token.eq_ignore_ascii_case("no-store") {
                self.no_store = true;
                self.must_understand = false;
            } else if token.eq_ignore_ascii_case("private") {
                self.private = FieldList::All;
            } else if token.eq_ignore_ascii_case("no-cache") {
                self.no_cache = FieldList::All;
            }
        }
    }

    /// The directives of `value`, and whether its quoted strings all end.
    fn parse_clean(value: &str) -> (Self, bool) {
        let mut out = ResponseDirectives::default();
        let mut max_age = Conflicting::default();
        let mut s_maxage = Conflicting::default();
        let mut swr: Option<Duration> = None;
        let mut sie: Option<Duration> = None;
        let balanced = for_each_directive(value, |name, arg| match name {
            b"max-age" => max_age.push(parse_delta_seconds(arg.as_deref())),
            b"s-maxage" => s_maxage.push(parse_delta_seconds(arg.as_deref())),
            b"no-cache" => merge_field_list(&mut out.no_cache, arg.as_deref()),
            b"private" => merge_field_list(&mut out.private, arg.as_deref()),
            b"no-store" => out.no_store = true,
            b"no-transform" => out.no_transform = true,
            b"must-revalidate" => out.must_revalidate = true,
            b"proxy-revalidate" => out.proxy_revalidate = true,
            b"must-understand" => out.must_understand = true,
            b"public" => out.public = true,
            b"immutable" => out.immutable = true,
            b"stale-while-revalidate" => min_into(&mut swr, parse_delta_seconds(arg.as_deref())),
            b"stale-if-error" => min_into(&mut sie, parse_delta_seconds(arg.as_deref())),
            _ => {}
        });
        out.max_age = max_age.finish();
        out.s_maxage = s_maxage.finish();
        out.stale_while_revalidate = swr;
        out.stale_if_error = sie;
        (out, balanced)
    }
}

/// The directives of a request's `Cache-Control` (RFC 9111 §5.2.1), with `stale-if-error`
/// (RFC 5861 §4) and `Pragma: no-cache` (§5.4).
///
/// Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestDirectives {
    /// `max-age=N` (§5.2.1.1): the client does not accept a response older than this.
    /// An invalid value reads as zero.
    pub max_age: Option<Duration>,
    /// `max-stale[=N]` (§5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `min-fresh=N` (§5.2.1.3).
    pub min_fresh: Option<Duration>,
    /// `no-cache` (§5.2.1.4), or `Pragma: no-cache` when the request has no `Cache-Control`
    /// (§5.4).
    pub no_cache: bool,
    /// `no-store` (§5.2.1.5).
    pub no_store: bool,
    /// `no-transform` (§5.2.1.6).
    pub no_transform: bool,
    /// `only-if-cached` (§5.2.1.7).
    pub only_if_cached: bool,
    /// `stale-if-error=N` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

impl RequestDirectives {
    /// Parses every `Cache-Control` field line of a request; when there is none, reads
    /// `Pragma: no-cache` as `no-cache` (§5.4). Never fails.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let cache_control = headers.get_all(http::header::CACHE_CONTROL);
        if cache_control.iter().next().is_some() {
            let field = joined_field_lines(cache_control);
            let (mut out, balanced) = Self::parse_clean(&field.text);
            if field.malformed || !balanced {
                out.apply_restrictive_tokens(&field.text);
            }
            return out;
        }
        let pragma = joined_field_lines(headers.get_all(http::header::PRAGMA));
        let mut no_cache = false;
        let balanced = for_each_directive(&pragma.text, |name, _| {
            no_cache |= name == b"no-cache";
        });
        no_cache = no_cache
            || ((pragma.malformed || !balanced)
                && bare_tokens(&pragma.text).any(|t| t.eq_ignore_ascii_case("no-cache")));
        RequestDirectives {
            no_cache,
            ..RequestDirectives::default()
        }
    }

    /// A malformed field: every `no-store` and `no-cache` token in it applies.
    fn apply_restrictive_tokens(&mut self, value: &str) {
        for token in bare_tokens(value) {
            if token.eq_ignore_ascii_case("no-store") {
                self.no_store = true;
            } else if token.eq_ignore_ascii_case("no-cache") {
                self.no_cache = true;
            }
        }
    }

    /// Parses one `Cache-Control` field value. A value with an unterminated quoted string is read
    /// restrictively (see the module docs).
    ///
    /// Request directives repeated with different values keep the most restrictive one (the
    /// smallest `max-age`, `max-stale` and `stale-if-error`, the largest `min-fresh`). An invalid
    /// `max-age` reads as zero, an invalid `max-stale=N` as `max-stale=0` (never as "any
    /// staleness"), and an invalid `min-fresh` or `stale-if-error` is ignored.
    pub fn parse(value: &str) -> Self {
        let (mut out, balanced) = Self::parse_clean(value);
        if !balanced {
            out.apply_restrictive_tokens(value);
        }
        out
    }

    /// The directives of `value`, and whether its quoted strings all end.
    fn parse_clean(value: &str) -> (Self, bool) {
        let mut out = RequestDirectives::default();
        let balanced = for_each_directive(value, |name, arg| match name {
            b"max-age" => min_into(
                &mut out.max_age,
                Some(parse_delta_seconds(arg.as_deref()).unwrap_or(Duration::ZERO)),
            ),
            b"max-stale" => {
                let this = match arg.as_deref() {
                    None => MaxStale::Any,
                    Some(v) => {
                        MaxStale::AtMost(parse_delta_seconds(Some(v)).unwrap_or(Duration::ZERO))
                    }
                };
                out.max_stale = Some(match (out.max_stale, this) {
                    (None, x) | (Some(MaxStale::Any), x) | (Some(x), MaxStale::Any) => x,
                    (Some(MaxStale::AtMost(a)), MaxStale::AtMost(b)) => MaxStale::AtMost(a.min(b)),
                });
            }
            b"min-fresh" => {
                if let Some(d) = parse_delta_seconds(arg.as_deref()) {
                    out.min_fresh = Some(out.min_fresh.map_or(d, |old| old.max(d)));
                }
            }
            b"no-cache" => out.no_cache = true,
            b"no-store" => out.no_store = true,
            b"no-transform" => out.no_transform = true,
            b"only-if-cached" => out.only_if_cached = true,
            b"stale-if-error" => {
                min_into(&mut out.stale_if_error, parse_delta_seconds(arg.as_deref()))
            }
            _ => {}
        });
        (out, balanced)
    }

    /// `true` when no directive is set (the request leaves every decision to the cache).
    pub fn is_empty(&self) -> bool {
        *self == RequestDirectives::default()
    }
}

/// The field lines of one field, joined into one list.
struct JoinedField<'a> {
    /// Borrowed from the field when it has one valid line.
    text: Cow<'a, str>,
    /// A line had bytes outside visible ASCII; or, for a field of several lines, a line had an
    /// unterminated quoted string. (The quotes of a single line are checked by the caller's
    /// parse, [`for_each_directive`], which reads them anyway.)
    malformed: bool,
}

/// Every field line of one field joined with `,` into one list (RFC 9110 §5.3). A line with
/// bytes outside visible ASCII (obs-text, control bytes) is kept, with those bytes replaced, and
/// marks the field malformed; so does a line (of several) whose quoted string never ends (it
/// would swallow the lines after it).
fn joined_field_lines(lines: GetAll<'_, HeaderValue>) -> JoinedField<'_> {
    let mut iter = lines.iter();
    if let (Some(only), None) = (iter.next(), iter.next()) {
        if let Ok(text) = only.to_str() {
            return JoinedField {
                text: Cow::Borrowed(text),
                malformed: false,
            };
        }
    }
    let mut joined = String::new();
    let mut malformed = false;
    for value in lines {
        if !joined.is_empty() {
            joined.push(',');
        }
        match value.to_str() {
            Ok(line) => {
                malformed |= !quotes_balanced(line);
                joined.push_str(line);
            }
            Err(_) => {
                malformed = true;
                joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
        }
    }
    JoinedField {
        text: Cow::Owned(joined),
        malformed,
    }
}

/// Whether every quoted string in `s` ends (RFC 9110 §5.6.4; see [`closing_quote`]).
fn quotes_balanced(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(open) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'"'))
    {
        let after = from + open + 1;
        match closing_quote(bytes.get(after..).unwrap_or_default()) {
            Some(end) => from = after + end + 1,
            None => return false,
        }
    }
    true
}

/// The runs of letters, digits and `-` in `s`, wherever they stand (inside quotes too): what a
/// malformed field is searched for.
fn bare_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| !t.is_empty())
}

/// `str::trim`, reading bytes: ASCII whitespace (as `char::is_whitespace` has it, which
/// includes vertical tab) is dropped byte by byte, and `str::trim` is left only the ends that
/// are not ASCII.
fn trim(s: &str) -> &str {
    let is_space = |b: &u8| matches!(b, b'\t'..=b'\r' | b' ');
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    // Both cuts are next to ASCII bytes, so on character boundaries.
    let s = s.get(start..end).unwrap_or("");
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if !first.is_ascii() || !last.is_ascii() => s.trim(),
        _ => s,
    }
}

/// Removes the quotes of a quoted-string (RFC 9110 §5.6.4), resolving backslash escapes. A value
/// without quotes is returned trimmed; an unterminated quoted string yields what follows the
/// opening quote.
fn unquote(value: &str) -> Cow<'_, str> {
    let value = trim(value);
    let Some(rest) = value.strip_prefix('"') else {
        return Cow::Borrowed(value);
    };
    // Without escapes, the quoted text as it is.
    if let Some(end) = rest.bytes().position(|b| b == b'"' || b == b'\\') {
        if rest.as_bytes()[end] == b'"' {
            return Cow::Borrowed(&rest[..end]);
        }
    }
    let mut out = String::with_capacity(rest.len());
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            break;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The longest directive name any caller of [`for_each_directive`] looks for
/// (`stale-while-revalidate`).
const LONGEST_NAME: usize = 22;

/// Calls `f` with each directive of a `Cache-Control` (or `Pragma`) value, in order, as
/// (lowercase name, unquoted argument); returns whether every quoted string in `value` ends.
///
/// The value is split at the commas outside quoted strings (a backslash inside quotes escapes
/// the next character); pieces are trimmed and empty ones dropped; a piece's name is what
/// precedes its first `=`, trimmed. Names longer than [`LONGEST_NAME`] bytes, which no caller
/// looks for, are skipped. One pass over the bytes, no allocation unless an argument has
/// escapes.
fn for_each_directive<'a>(value: &'a str, mut f: impl FnMut(&[u8], Option<Cow<'a, str>>)) -> bool {
    let bytes = value.as_bytes();
    // The directive being read starts at `start`; the next comma or quote is searched for from
    // `from`.
    let mut start = 0;
    let mut from = 0;
    let mut balanced = true;
    while let Some(offset) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b',' || b == b'"'))
    {
        let at = from + offset;
        if bytes[at] == b',' {
            directive(value.get(start..at).unwrap_or(""), &mut f);
            start = at + 1;
            from = start;
            continue;
        }
        match closing_quote(bytes.get(at + 1..).unwrap_or_default()) {
            Some(end) => from = at + 1 + end + 1,
            None => {
                // The quoted string never ends: it swallows the rest of the value.
                balanced = false;
                break;
            }
        }
    }
    directive(value.get(start..).unwrap_or(""), &mut f);
    balanced
}

/// Where the quoted string whose opening quote precedes `bytes` ends: the index of its closing
/// quote. A backslash escapes the next byte (byte by byte reads UTF-8 text as character by
/// character would: an escaped character's continuation bytes are neither a quote nor a
/// backslash).
fn closing_quote(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// One piece of [`for_each_directive`].
fn directive<'a>(piece: &'a str, f: &mut impl FnMut(&[u8], Option<Cow<'a, str>>)) {
    let piece = trim(piece);
    let (name, arg) = match piece.bytes().position(|b| b == b'=') {
        Some(at) => (trim(&piece[..at]), Some(unquote(&piece[at + 1..]))),
        None => (piece, None),
    };
    if name.is_empty() || name.len() > LONGEST_NAME {
        return;
    }
    let mut lowercase = [0; LONGEST_NAME];
    for (to, from) in lowercase.iter_mut().zip(name.bytes()) {
        *to = from.to_ascii_lowercase();
    }
    f(lowercase.get(..name.len()).unwrap_or_default(), arg);
}

/// A delta-seconds argument (RFC 9111 §1.2.2): one or more digits, larger values read as
/// [`MAX_DELTA_SECONDS`]. `None` when absent or invalid.
pub(crate) fn parse_delta_seconds(arg: Option<&str>) -> Option<Duration> {
    let arg = trim(arg?);
    if arg.is_empty() {
        return None;
    }
    let mut secs: u64 = 0;
    for b in arg.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        secs = secs.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(Duration::from_secs(secs.min(MAX_DELTA_SECONDS)))
}

fn min_into(slot: &mut Option<Duration>, value: Option<Duration>) {
    if let Some(v) = value {
        *slot = Some(slot.map_or(v, |old| old.min(v)));
    }
}

/// A response directive that reads as zero when invalid or repeated with different values
/// (RFC 9111 §4.2.1).
#[derive(Default)]
struct Conflicting {
    seen: bool,
    value: Option<Duration>,
}

impl Conflicting {
    fn push(&mut self, value: Option<Duration>) {
        let value = value.unwrap_or(Duration::ZERO);
        if self.seen && self.value != Some(value) {
            self.value = Some(Duration::ZERO);
        } else {
            self.value = Some(value);
        }
        self.seen = true;
    }

    fn finish(self) -> Option<Duration> {
        self.value
    }
}

/// Adds one occurrence of `no-cache` / `private` to `slot`: without an argument (or with an empty
/// list) it applies to the whole response, which overrides any field list.
fn merge_field_list(slot: &mut FieldList, arg: Option<&str>) {
    let fields: Vec<HeaderName> = arg
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .filter_map(|f| HeaderName::from_bytes(f.to_ascii_lowercase().as_bytes()).ok())
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        *slot = FieldList::All;
        return;
    }
    match slot {
        FieldList::All => {}
        FieldList::Fields(existing) => {
            for f in fields {
                if !existing.contains(&f) {
                    existing.push(f);
                }
            }
        }
        FieldList::Absent => *slot = FieldList::Fields(fields),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    fn names(list: &[&str]) -> FieldList {
        FieldList::Fields(
            list.iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap())
                .collect(),
        )
    }

    struct DeltaCase {
        name: &'static str,
        input: &'static str,
        max_age: Option<Duration>,
        s_maxage: Option<Duration>,
    }

    #[test]
    fn response_max_age_and_s_maxage() {
        let cases = [
            DeltaCase {
                name: "§5.2.2.1 plain max-age",
                input: "max-age=60",
                max_age: secs(60),
                s_maxage: None,
            },
            DeltaCase {
                name: "§5.2 names are case-insensitive",
                input: "MAX-AGE=60",
                max_age: secs(60),
                s_maxage: None,
            },
            DeltaCase {
                name: "§5.2 quoted value accepted",
                input: "max-age=\"60\"",
                max_age: secs(60),
                s_maxage: None,
            },
            DeltaCase {
                name: "whitespace around items",
                input: "  max-age=60 ,  ",
                max_age: secs(60),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 non-digits read as zero",
                input: "max-age=abc",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 negative read as zero",
                input: "max-age=-1",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 empty read as zero",
                input: "max-age=",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 missing value read as zero",
                input: "max-age",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 fraction read as zero",
                input: "max-age=1.5",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§4.2.1 conflicting duplicates read as zero",
                input: "max-age=60, max-age=120",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "identical duplicates are fine",
                input: "max-age=60, max-age=60",
                max_age: secs(60),
                s_maxage: None,
            },
            DeltaCase {
                name: "duplicate with invalid read as zero",
                input: "max-age=60, max-age=x",
                max_age: secs(0),
                s_maxage: None,
            },
            DeltaCase {
                name: "§1.2.2 clamp to 2^31",
                input: "max-age=99999999999",
                max_age: secs(MAX_DELTA_SECONDS),
                s_maxage: None,
            },
            DeltaCase {
                name: "§1.2.2 u64 overflow clamps",
                input: "max-age=999999999999999999999999999",
                max_age: secs(MAX_DELTA_SECONDS),
                s_maxage: None,
            },
            DeltaCase {
                name: "exactly 2^31",
                input: "max-age=2147483648",
                max_age: secs(MAX_DELTA_SECONDS),
                s_maxage: None,
            },
            DeltaCase {
                name: "§5.2.2.10 s-maxage",
                input: "s-maxage=600, max-age=60",
                max_age: secs(60),
                s_maxage: secs(600),
            },
            DeltaCase {
                name: "s-maxage invalid read as zero",
                input: "s-maxage=soon",
                max_age: None,
                s_maxage: secs(0),
            },
            DeltaCase {
                name: "s-maxage conflicting",
                input: "s-maxage=1,S-MAXAGE=2",
                max_age: None,
                s_maxage: secs(0),
            },
            DeltaCase {
                name: "leading zeros",
                input: "max-age=007",
                max_age: secs(7),
                s_maxage: None,
            },
            DeltaCase {
                name: "quoted comma does not split",
                input: "private=\"a, max-age=5\", max-age=9",
                max_age: secs(9),
                s_maxage: None,
            },
            DeltaCase {
                name: "empty value",
                input: "",
                max_age: None,
                s_maxage: None,
            },
            DeltaCase {
                name: "garbage",
                input: ",,,=,\"",
                max_age: None,
                s_maxage: None,
            },
            DeltaCase {
                name: "unterminated quote",
                input: "max-age=\"60",
                max_age: secs(60),
                s_maxage: None,
            },
        ];
        for case in cases {
            let cc = ResponseDirectives::parse(case.input);
            assert_eq!(cc.max_age, case.max_age, "{}: max-age", case.name);
            assert_eq!(cc.s_maxage, case.s_maxage, "{}: s-maxage", case.name);
        }
    }

    struct FieldCase {
        name: &'static str,
        input: &'static str,
        no_cache: FieldList,
        private: FieldList,
    }

    #[test]
    fn response_field_lists() {
        let cases = [
            FieldCase {
                name: "absent",
                input: "max-age=1",
                no_cache: FieldList::Absent,
                private: FieldList::Absent,
            },
            FieldCase {
                name: "§5.2.2.4 no-cache alone",
                input: "no-cache",
                no_cache: FieldList::All,
                private: FieldList::Absent,
            },
            FieldCase {
                name: "§5.2.2.7 private alone",
                input: "private",
                no_cache: FieldList::Absent,
                private: FieldList::All,
            },
            FieldCase {
                name: "§5.2.2.4 qualified no-cache",
                input: "no-cache=\"Set-Cookie, X-Foo\"",
                no_cache: names(&["set-cookie", "x-foo"]),
                private: FieldList::Absent,
            },
            FieldCase {
                name: "§5.2.2.7 qualified private, token form",
                input: "private=Authorization",
                no_cache: FieldList::Absent,
                private: names(&["authorization"]),
            },
            FieldCase {
                name: "invalid field names skipped",
                input: "private=\"x-ok, bad name, @@\"",
                no_cache: FieldList::Absent,
                private: names(&["x-ok"]),
            },
            FieldCase {
                name: "empty list means all",
                input: "no-cache=\"\"",
                no_cache: FieldList::All,
                private: FieldList::Absent,
            },
            FieldCase {
                name: "only invalid names means all",
                input: "no-cache=\"@\"",
                no_cache: FieldList::All,
                private: FieldList::Absent,
            },
            FieldCase {
                name: "unqualified overrides qualified",
                input: "no-cache=\"a\", no-cache",
                no_cache: FieldList::All,
                private: FieldList::Absent,
            },
            FieldCase {
                name: "qualified lists merge",
                input: "private=\"a\", private=\"b, a\"",
                no_cache: FieldList::Absent,
                private: names(&["a", "b"]),
            },
            FieldCase {
                name: "case-insensitive name",
                input: "No-Cache, PRIVATE",
                no_cache: FieldList::All,
                private: FieldList::All,
            },
        ];
        for case in cases {
            let cc = ResponseDirectives::parse(case.input);
            assert_eq!(cc.no_cache, case.no_cache, "{}: no-cache", case.name);
            assert_eq!(cc.private, case.private, "{}: private", case.name);
        }
    }

    #[test]
    fn response_flags_and_extensions() {
        let cc = ResponseDirectives::parse(
            "no-store, no-transform, must-revalidate, proxy-revalidate, must-understand, public, immutable, \
             stale-while-revalidate=30, stale-if-error=\"300\", x-unknown=1, foo",
        );
        let expected = ResponseDirectives {
            no_store: true,
            no_transform: true,
            must_revalidate: true,
            proxy_revalidate: true,
            must_understand: true,
            public: true,
            immutable: true,
            stale_while_revalidate: secs(30),
            stale_if_error: secs(300),
            ..ResponseDirectives::default()
        };
        assert_eq!(cc, expected);
    }

    struct ExtCase {
        name: &'static str,
        input: &'static str,
        swr: Option<Duration>,
        sie: Option<Duration>,
    }

    #[test]
    fn rfc5861_invalid_values_are_ignored() {
        let cases = [
            ExtCase {
                name: "RFC 5861 §3 valid",
                input: "stale-while-revalidate=5",
                swr: secs(5),
                sie: None,
            },
            ExtCase {
                name: "RFC 5861 §3 invalid ignored",
                input: "stale-while-revalidate=x",
                swr: None,
                sie: None,
            },
            ExtCase {
                name: "RFC 5861 §3 missing value ignored",
                input: "stale-while-revalidate",
                swr: None,
                sie: None,
            },
            ExtCase {
                name: "RFC 5861 §4 negative ignored",
                input: "stale-if-error=-5",
                swr: None,
                sie: None,
            },
            ExtCase {
                name: "RFC 5861 §4 duplicates keep the smallest",
                input: "stale-if-error=50, stale-if-error=5",
                swr: None,
                sie: secs(5),
            },
            ExtCase {
                name: "invalid duplicate ignored",
                input: "stale-if-error=50, stale-if-error=x",
                swr: None,
                sie: secs(50),
            },
            ExtCase {
                name: "clamped",
                input: "stale-if-error=9999999999999",
                swr: None,
                sie: secs(MAX_DELTA_SECONDS),
            },
        ];
        for case in cases {
            let cc = ResponseDirectives::parse(case.input);
            assert_eq!(cc.stale_while_revalidate, case.swr, "{}", case.name);
            assert_eq!(cc.stale_if_error, case.sie, "{}", case.name);
        }
    }

    struct RequestCase {
        name: &'static str,
        input: &'static str,
        expected: RequestDirectives,
    }

    #[test]
    fn request_directives() {
        let d = RequestDirectives::default;
        let cases = [
            RequestCase {
                name: "empty",
                input: "",
                expected: d(),
            },
            RequestCase {
                name: "§5.2.1.1 max-age",
                input: "max-age=5",
                expected: RequestDirectives {
                    max_age: secs(5),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.1 invalid max-age is zero",
                input: "max-age=x",
                expected: RequestDirectives {
                    max_age: secs(0),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.1 duplicates keep the smallest",
                input: "max-age=50, max-age=5",
                expected: RequestDirectives {
                    max_age: secs(5),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.2 max-stale without value",
                input: "max-stale",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::Any),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.2 max-stale with value",
                input: "max-stale=30",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::AtMost(Duration::from_secs(30))),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.2 invalid max-stale is zero, never any",
                input: "max-stale=lots",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::AtMost(Duration::ZERO)),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.2 empty max-stale is zero",
                input: "max-stale=",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::AtMost(Duration::ZERO)),
                    ..d()
                },
            },
            RequestCase {
                name: "max-stale bounded beats any",
                input: "max-stale, max-stale=10",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::AtMost(Duration::from_secs(10))),
                    ..d()
                },
            },
            RequestCase {
                name: "max-stale keeps the smallest bound",
                input: "max-stale=10, max-stale=20",
                expected: RequestDirectives {
                    max_stale: Some(MaxStale::AtMost(Duration::from_secs(10))),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.3 min-fresh",
                input: "min-fresh=20",
                expected: RequestDirectives {
                    min_fresh: secs(20),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.3 invalid min-fresh ignored",
                input: "min-fresh=-1",
                expected: d(),
            },
            RequestCase {
                name: "§5.2.1.3 min-fresh keeps the largest",
                input: "min-fresh=20, min-fresh=30",
                expected: RequestDirectives {
                    min_fresh: secs(30),
                    ..d()
                },
            },
            RequestCase {
                name: "§5.2.1.4-7 flags",
                input: "no-cache, NO-STORE, no-transform, only-if-cached",
                expected: RequestDirectives {
                    no_cache: true,
                    no_store: true,
                    no_transform: true,
                    only_if_cached: true,
                    ..d()
                },
            },
            RequestCase {
                name: "RFC 5861 §4 stale-if-error",
                input: "stale-if-error=60",
                expected: RequestDirectives {
                    stale_if_error: secs(60),
                    ..d()
                },
            },
            RequestCase {
                name: "RFC 5861 §4 invalid stale-if-error ignored",
                input: "stale-if-error=soon",
                expected: d(),
            },
            RequestCase {
                name: "response-only directives ignored",
                input: "public, private, s-maxage=5",
                expected: d(),
            },
        ];
        for case in cases {
            assert_eq!(
                RequestDirectives::parse(case.input),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    struct HeaderCase {
        name: &'static str,
        headers: &'static [(&'static str, &'static [u8])],
        no_cache: bool,
        max_age: Option<Duration>,
    }

    #[test]
    fn request_from_headers_and_pragma() {
        let cases = [
            HeaderCase {
                name: "no headers",
                headers: &[],
                no_cache: false,
                max_age: None,
            },
            HeaderCase {
                name: "§5.4 Pragma without Cache-Control",
                headers: &[("pragma", b"no-cache")],
                no_cache: true,
                max_age: None,
            },
            HeaderCase {
                name: "§5.4 Pragma case-insensitive",
                headers: &[("pragma", b"No-Cache")],
                no_cache: true,
                max_age: None,
            },
            HeaderCase {
                name: "§5.4 Pragma in a list",
                headers: &[("pragma", b"x-foo=1, no-cache")],
                no_cache: true,
                max_age: None,
            },
            HeaderCase {
                name: "§5.4 other pragma",
                headers: &[("pragma", b"x-foo")],
                no_cache: false,
                max_age: None,
            },
            HeaderCase {
                name: "§5.4 Pragma ignored when Cache-Control is present",
                headers: &[("pragma", b"no-cache"), ("cache-control", b"max-age=5")],
                no_cache: false,
                max_age: secs(5),
            },
            HeaderCase {
                name: "§5.4 Pragma ignored even with an unreadable Cache-Control",
                headers: &[("pragma", b"no-cache"), ("cache-control", b"\xff")],
                no_cache: false,
                max_age: None,
            },
            HeaderCase {
                name: "§5.2 multiple lines form one list",
                headers: &[
                    ("cache-control", b"no-cache"),
                    ("cache-control", b"max-age=7"),
                ],
                no_cache: true,
                max_age: secs(7),
            },
            HeaderCase {
                name: "a non-UTF-8 line is read, restrictively: its invalid max-age is zero",
                headers: &[
                    ("cache-control", b"max-age=\xe9"),
                    ("cache-control", b"max-age=3"),
                ],
                no_cache: false,
                max_age: secs(0),
            },
        ];
        for case in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in case.headers {
                headers.append(*name, HeaderValue::from_bytes(value).unwrap());
            }
            let directives = RequestDirectives::from_headers(&headers);
            assert_eq!(
                directives.no_cache, case.no_cache,
                "{}: no-cache",
                case.name
            );
            assert_eq!(directives.max_age, case.max_age, "{}: max-age", case.name);
        }
    }

    #[test]
    fn response_from_headers_joins_lines() {
        let mut headers = HeaderMap::new();
        headers.append("cache-control", HeaderValue::from_static("max-age=60"));
        headers.append("cache-control", HeaderValue::from_static("max-age=120"));
        headers.append("cache-control", HeaderValue::from_static("public"));
        let cc = ResponseDirectives::from_headers(&headers);
        assert_eq!(cc.max_age, secs(0), "§4.2.1 conflicting lines read as zero");
        assert!(cc.public);
        assert_eq!(
            ResponseDirectives::from_headers(&HeaderMap::new()),
            ResponseDirectives::default()
        );
    }

    /// The edges of the byte-level split: commas and `=` inside quotes, escapes, whitespace
    /// (ASCII, vertical tab, and Unicode whitespace around a value given as text), case, names
    /// longer than any known one, and field lines joined or read apart.
    #[test]
    fn directive_splitting_edges() {
        // (field lines, max-age, s-maxage, public, no-store, private)
        type Case<'a> = (
            &'a [&'a [u8]],
            Option<Duration>,
            Option<Duration>,
            bool,
            bool,
            bool,
        );
        let cases: &[Case<'_>] = &[
            (
                &[b"public, max-age=3600"],
                secs(3600),
                None,
                true,
                false,
                false,
            ),
            (&[b"PUBLIC,MAX-AGE=60"], secs(60), None, true, false, false),
            (
                &[b" \tpublic ,\t max-age = 60 \t"],
                secs(60),
                None,
                true,
                false,
                false,
            ),
            (
                &[b"max-age=\"60\", public"],
                secs(60),
                None,
                true,
                false,
                false,
            ),
            (&[b"max-age=\" 60 \""], secs(60), None, false, false, false),
            (&[b"max-age=\"6\\0\""], secs(60), None, false, false, false),
            (
                &[b"x=\"a,public\", max-age=1"],
                secs(1),
                None,
                false,
                false,
                false,
            ),
            (
                &[b"x=\"a\\\",public\", s-maxage=2"],
                None,
                secs(2),
                false,
                false,
                false,
            ),
            (&[b"x=\"a=b\"=c, public"], None, None, true, false, false),
            (
                &[b"max-age=60", b"max-age=60"],
                secs(60),
                None,
                false,
                false,
                false,
            ),
            (
                &[b"max-age=60", b"MAX-AGE=\"60\""],
                secs(60),
                None,
                false,
                false,
                false,
            ),
            (
                &[b"max-age=60", b"max-age=61"],
                secs(0),
                None,
                false,
                false,
                false,
            ),
            (
                &[b"max-age=99999999999999999999999"],
                secs(MAX_DELTA_SECONDS),
                None,
                false,
                false,
                false,
            ),
            (
                &[b"max-age=2147483649"],
                secs(MAX_DELTA_SECONDS),
                None,
                false,
                false,
                false,
            ),
            (&[b"max-age=+1"], secs(0), None, false, false, false),
            (&[b"max-age="], secs(0), None, false, false, false),
            (&[b"max-age=6 0"], secs(0), None, false, false, false),
            (
                &[b"stale-while-revalidatex, public"],
                None,
                None,
                true,
                false,
                false,
            ),
            (&[b",,, ,public,,"], None, None, true, false, false),
            (&[b"=60, public"], None, None, true, false, false),
            (
                &[b"x=\"unterminated, no-store, public"],
                None,
                None,
                false,
                true,
                false,
            ),
            (&[b"x=\"a", b"b\", private"], None, None, false, false, true),
            (&[b"x=\"a", b"public"], None, None, false, false, false),
            (
                &[b"public, x=\xe9", b"max-age=5"],
                secs(5),
                None,
                true,
                false,
                false,
            ),
        ];
        for (lines, max_age, s_maxage, public, no_store, private) in cases {
            let mut headers = HeaderMap::new();
            for line in *lines {
                headers.append("cache-control", HeaderValue::from_bytes(line).unwrap());
            }
            let cc = ResponseDirectives::from_headers(&headers);
            let name = format!("{lines:?}");
            assert_eq!(cc.max_age, *max_age, "{name}");
            assert_eq!(cc.s_maxage, *s_maxage, "{name}");
            assert_eq!(cc.public, *public, "{name}");
            assert_eq!(cc.no_store, *no_store, "{name}");
            assert_eq!(cc.private.is_all(), *private, "{name}");
        }
        // A value given as text may carry Unicode whitespace, which is trimmed as `str::trim`
        // trims it; a vertical tab is whitespace there too.
        assert_eq!(
            ResponseDirectives::parse("max-age=\u{a0}60\u{2003}").max_age,
            secs(60)
        );
        assert!(ResponseDirectives::parse("\u{a0}public\u{a0}").public);
        assert!(ResponseDirectives::parse("\x0bpublic\x0b").public);
        assert_eq!(
            ResponseDirectives::parse("max-age=\"\u{e9}\"").max_age,
            secs(0)
        );
        assert_eq!(
            RequestDirectives::parse("Max-Stale").max_stale,
            Some(MaxStale::Any)
        );
        let mut pragma = HeaderMap::new();
        pragma.insert("pragma", HeaderValue::from_static("x=\"a, No-Cache"));
        assert!(RequestDirectives::from_headers(&pragma).no_cache);
        pragma.insert("pragma", HeaderValue::from_static("x=\"no-cache\""));
        assert!(!RequestDirectives::from_headers(&pragma).no_cache);
    }

    #[test]
    fn is_empty() {
        assert!(RequestDirectives::parse("x-unknown").is_empty());
        assert!(!RequestDirectives::parse("no-cache").is_empty());
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "\"",
            "\"\\",
            "=",
            "==",
            "a=\"b",
            "max-age=\"\\\"",
            ",\",\"",
            "é=ü",
            "max-age=٣",
            "private=\"é\"",
            "no-cache=\",,,\"",
            "max-stale=\"",
            "\\\\\\",
            "max-age=18446744073709551616",
        ];
        for input in inputs {
            let _ = ResponseDirectives::parse(input);
            let _ = RequestDirectives::parse(input);
        }
        assert_eq!(
            ResponseDirectives::parse("max-age=٣").max_age,
            secs(0),
            "non-ASCII digits are invalid"
        );
    }

    /// A field that cannot be parsed cleanly is read in the most restrictive way.
    #[test]
    fn malformed_response_fields_are_read_restrictively() {
        struct Case {
            name: &'static str,
            lines: &'static [&'static [u8]],
            no_store: bool,
            private_all: bool,
            no_cache_all: bool,
            max_age: Option<Duration>,
        }
        let cases = [
            Case {
                name: "obs-text in a line keeps its no-store and private",
                lines: &[b"no-store, private, ext=\"caf\xe9\""],
                no_store: true,
                private_all: true,
                no_cache_all: false,
                max_age: None,
            },
            Case {
                name: "an unterminated quote does not swallow no-store",
                lines: &[b"max-age=600, ext=\"abc, no-store"],
                no_store: true,
                private_all: false,
                no_cache_all: false,
                max_age: secs(600),
            },
            Case {
                name: "an unterminated quote in one line does not swallow the next line",
                lines: &[b"max-age=600, ext=\"abc", b"private"],
                no_store: false,
                private_all: true,
                no_cache_all: false,
                max_age: secs(600),
            },
            Case {
                name: "no-cache hidden in a stray quoted string counts",
                lines: &[b"public, max-age=60, x=\"no-cache"],
                no_store: false,
                private_all: false,
                no_cache_all: true,
                max_age: secs(60),
            },
            Case {
                name: "a clean quoted argument is not a directive",
                lines: &[b"max-age=60, ext=\"no-store\""],
                no_store: false,
                private_all: false,
                no_cache_all: false,
                max_age: secs(60),
            },
            Case {
                name: "an obs-text byte glued to no-store does not hide it",
                lines: &[b"max-age=60,\x80no-store"],
                no_store: true,
                private_all: false,
                no_cache_all: false,
                max_age: secs(60),
            },
        ];
        for case in cases {
            let mut headers = HeaderMap::new();
            for line in case.lines {
                headers.append(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_bytes(line).unwrap(),
                );
            }
            let cc = ResponseDirectives::from_headers(&headers);
            assert_eq!(cc.no_store, case.no_store, "{}: no-store", case.name);
            assert_eq!(
                cc.private.is_all(),
                case.private_all,
                "{}: private",
                case.name
            );
            assert_eq!(
                cc.no_cache.is_all(),
                case.no_cache_all,
                "{}: no-cache",
                case.name
            );
            assert_eq!(cc.max_age, case.max_age, "{}: max-age", case.name);
        }
        let must = ResponseDirectives::parse("must-understand, no-store, ext=\"x");
        assert!(
            must.no_store && !must.must_understand,
            "a malformed field's no-store is not lifted by must-understand"
        );
    }

    #[test]
    fn malformed_request_fields_are_read_restrictively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_bytes(b"max-stale, x=\"\xff, no-store").unwrap(),
        );
        let cc = RequestDirectives::from_headers(&headers);
        assert!(cc.no_store);
        assert_eq!(cc.max_stale, Some(MaxStale::Any));
        let mut pragma = HeaderMap::new();
        pragma.insert(
            http::header::PRAGMA,
            HeaderValue::from_bytes(b"x=\"no-cache").unwrap(),
        );
        assert!(RequestDirectives::from_headers(&pragma).no_cache);
        assert!(RequestDirectives::parse("max-age=5, ext=\"a, no-cache").no_cache);
    }

    #[test]
    fn a_remembered_field_is_only_ever_its_own() {
        // Repeats, alternations, values naming fields, malformed and multi-line fields, a long
        // value and no field at all, read in turn: each gives what parsing it afresh gives.
        let long = format!("max-age=60, {}", "x".repeat(200));
        let fields: Vec<Vec<&[u8]>> = vec![
            vec![b"public, max-age=3600"],
            vec![b"public, max-age=3600"],
            vec![b"public, max-age=360"],
            vec![b"public, max-age=3600"],
            vec![b"public, max-age=3601"],
            vec![b"no-cache=\"set-cookie\", max-age=10"],
            vec![b"no-cache=\"set-cookie\", max-age=10"],
            vec![b"public", b"max-age=3600"],
            vec![b"public,max-age=3600"],
            vec![b"max-age=\xe9", b"max-age=3"],
            vec![b"private, max-age=5, ext=\"a"],
            vec![long.as_bytes()],
            vec![],
            vec![b"public, max-age=3600"],
        ];
        for lines in fields {
            let mut headers = HeaderMap::new();
            for line in &lines {
                headers.append(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_bytes(line).unwrap(),
                );
            }
            let fresh = {
                let field = joined_field_lines(headers.get_all(http::header::CACHE_CONTROL));
                let (mut out, balanced) = ResponseDirectives::parse_clean(&field.text);
                if field.malformed || !balanced {
                    out.apply_restrictive_tokens(&field.text);
                }
                out
            };
            assert_eq!(
                ResponseDirectives::from_headers(&headers),
                fresh,
                "{lines:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=360"),
        );
        assert_eq!(
            ResponseDirectives::from_headers(&headers).max_age,
            Some(Duration::from_secs(360))
        );
    }
}
