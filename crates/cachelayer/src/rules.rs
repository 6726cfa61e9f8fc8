//! Per-URL expiration (`urls_expire_after`), response filters (`filter_fn`) and custom keys
//! (`key_fn`): the settings that are rules or functions rather than values.

use cachelayer_policy::key::{KeyInput, KeyOptions};
use cachelayer_policy::{CacheKey, ExpireAfter};
use globset::{GlobBuilder, GlobMatcher};
use http::{HeaderMap, Method, StatusCode};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

// ===== impl UrlPattern =====

/// A URL pattern of `urls_expire_after` (requests-cache's glob and regex patterns).
///
/// - **Glob** (`UrlPattern::glob`, or a plain string in settings files): matched against the
///   normalized request URL *without its scheme*, with an implied trailing `*`: `site.com/resource/`
///   is `http*://site.com/resource/**` in requests-cache's words. `*` matches any characters,
///   `/` included; `?` one character; `[abc]` a class. A scheme written in the pattern
///   (`https://site.com`) is ignored, as in requests-cache.
/// - **Regex** (`UrlPattern::regex`, or a string prefixed `regex:` in settings files): searched
///   in the whole normalized URL, scheme included, so `^https://site\.com/` restricts the scheme.
///
/// URLs are normalized as keys are (lowercase scheme and host, no default port, sorted query):
/// see `cachelayer_policy::key::normalize_url`.
#[derive(Clone)]
pub struct UrlPattern {
    source: String,
    matcher: Matcher,
}

#[derive(Clone)]
enum Matcher {
    Glob(GlobMatcher),
    Regex(Regex),
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
    message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid URL pattern {:?}: {}",
            self.pattern, self.message
        )
    }
}

impl std::error::Error for PatternError {}

impl UrlPattern {
    /// A glob pattern, as described on [`UrlPattern`].
    ///
    /// # Errors
    /// [`PatternError`] when the glob is malformed (an unclosed `[` or `{`).
    pub fn glob(pattern: &str) -> Result<Self, PatternError> {
        let without_scheme = pattern.split_once("://").map_or(pattern, |(_, rest)| rest);
        let glob = format!("{}*", without_scheme.trim_end_matches('*'));
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| PatternError {
                pattern: pattern.to_owned(),
                message: e.to_string(),
            })?
            .compile_matcher();
        Ok(UrlPattern {
            source: pattern.to_owned(),
            matcher: Matcher::Glob(matcher),
        })
    }

    /// A regular expression, as described on [`UrlPattern`] (the `regex` crate's syntax).
    ///
    /// # Errors
    /// [`PatternError`] when the expression does not compile.
    pub fn regex(pattern: &str) -> Result<Self, PatternError> {
        let regex = Regex::new(pattern).map_err(|e| PatternError {
            pattern: pattern.to_owned(),
            message: e.to_string(),
        })?;
        Ok(UrlPattern {
            source: pattern.to_owned(),
            matcher: Matcher::Regex(regex),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `true` for a regex pattern.
    pub fn is_regex(&self) -> bool {
        matches!(self.matcher, Matcher::Regex(_))
    }

    /// Whether the pattern matches a normalized URL (`http://host/path?query`).
    pub fn matches(&self, normalized_url: &str) -> bool {
        match &self.matcher {
            Matcher::Glob(glob) => {
                let without_scheme = normalized_url
                    .split_once("://")
                    .map_or(normalized_url, |(_, rest)| rest);
                glob.is_match(without_scheme)
            }
            Matcher::Regex(regex) => regex.is_match(normalized_url),
        }
    }
}

impl FromStr for UrlPattern {
    type Err = PatternError;

    /// A glob, or a regex when prefixed with `regex:`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("regex:") {
            Some(regex) => UrlPattern::regex(regex),
            None => UrlPattern::glob(s),
        }
    }
}

impl fmt::Debug for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.matcher {
            Matcher::Glob(_) => write!(f, "UrlPattern::glob({:?})", self.source),
            Matcher::Regex(_) => write!(f, "UrlPattern::regex({:?})", self.source),
        }
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_regex() {
            f.write_str("regex:")?;
        }
        f.write_str(&self.source)
    }
}

impl PartialEq for UrlPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.is_regex() == other.is_regex()
    }
}

impl Serialize for UrlPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UrlPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The expiration of the first rule whose pattern matches `normalized_url` (requests-cache: the
/// first match in the order defined wins); `None` when no rule matches.
pub(crate) fn url_expiration(
    rules: &[(UrlPattern, ExpireAfter)],
    normalized_url: &str,
) -> Option<ExpireAfter> {
    rules
        .iter()
        .find(|(pattern, _)| pattern.matches(normalized_url))
        .map(|(_, expire_after)| *expire_after)
}

/// Serde for `urls_expire_after`: a map `{pattern: expiration}` in document order, or a list of
/// `[pattern, expiration]` pairs.
pub(crate) mod serde_url_rules {
    use super::UrlPattern;
    use cachelayer_policy::ExpireAfter;
    use serde::de::{MapAccess, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(
        rules: &[(UrlPattern, ExpireAfter)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(rules.iter().map(|(p, e)| (p, e)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(UrlPattern, ExpireAfter)>, D::Error> {
        struct Rules;
        impl<'de> Visitor<'de> for Rules {
            type Value = Vec<(UrlPattern, ExpireAfter)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a map of URL pattern to expiration, or a list of [pattern, expiration] pairs",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut rules = Vec::new();
                while let Some(rule) = map.next_entry::<UrlPattern, ExpireAfter>()? {
                    rules.push(rule);
                }
                Ok(rules)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut rules = Vec::new();
                while let Some(rule) = seq.next_element::<(UrlPattern, ExpireAfter)>()? {
                    rules.push(rule);
                }
                Ok(rules)
            }
        }
        d.deserialize_any(Rules)
    }
}

// ===== impl FilterFn =====

/// What a response filter sees: the request method and normalized URL, the response status and
/// header fields.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ResponseView<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The normalized request URL.
    pub url: &'a str,
    /// The response status.
    pub status: StatusCode,
    /// The response header fields.
    pub headers: &'a HeaderMap,
}

/// A predicate on responses (requests-cache `filter_fn`): a response for which it returns
/// `false` is not stored, and a stored response for which it returns `false` is not used.
/// [`FilterFn::new`] wraps any `Fn(&ResponseView<'_>) -> bool + Send + Sync + 'static` closure;
/// the setter [`CacheSettings::filter_fn`](crate::CacheSettings::filter_fn) takes the closure.
///
/// ```
/// use cachelayer::{CacheSettings, FilterFn};
///
/// let settings = CacheSettings {
///     // Only cache JSON.
///     filter_fn: Some(FilterFn::new(|r| {
///         r.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
///     })),
///     ..CacheSettings::default()
/// };
/// ```
#[derive(Clone)]
pub struct FilterFn(Arc<dyn Fn(&ResponseView<'_>) -> bool + Send + Sync>);

impl FilterFn {
    /// Wraps a predicate.
    pub fn new(f: impl Fn(&ResponseView<'_>) -> bool + Send + Sync + 'static) -> Self {
        FilterFn(Arc::new(f))
    }

    /// Applies the predicate.
    pub fn keep(&self, response: &ResponseView<'_>) -> bool {
        (self.0)(response)
    }
}

impl fmt::Debug for FilterFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FilterFn(..)")
    }
}

impl PartialEq for FilterFn {
    /// The same function (clones of one `FilterFn`).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

// ===== impl KeyFn =====

/// A custom cache key function (requests-cache `key_fn`): given the request's method, URI,
/// header fields (and body, when it is part of the key) and the key options, it returns the key.
/// [`cachelayer_policy::key::create_key`] is the default.
///
/// ```
/// use cachelayer::{CacheKey, CacheSettings, KeyFn};
///
/// // One entry per path, whatever the query.
/// let settings = CacheSettings {
///     key_fn: Some(KeyFn::new(|input, _options| {
///         CacheKey::custom(format!("{} {}", input.method, input.uri.path()))
///     })),
///     ..CacheSettings::default()
/// };
/// ```
#[derive(Clone)]
pub struct KeyFn(Arc<KeyFunction>);

type KeyFunction = dyn Fn(&KeyInput<'_>, &KeyOptions) -> CacheKey + Send + Sync;

impl KeyFn {
    /// Wraps a key function.
    pub fn new(f: impl Fn(&KeyInput<'_>, &KeyOptions) -> CacheKey + Send + Sync + 'static) -> Self {
        KeyFn(Arc::new(f))
    }

    /// Applies the key function.
    pub fn key(&self, input: &KeyInput<'_>, options: &KeyOptions) -> CacheKey {
        (self.0)(input, options)
    }
}

impl fmt::Debug for KeyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFn(..)")
    }
}

impl PartialEq for KeyFn {
    /// The same function (clones of one `KeyFn`).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn glob_patterns_match_without_scheme_with_an_implied_trailing_star() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.site_1.com", "https://api.site_1.com/a?b=1", true),
            ("*.site_1.com", "http://site_1.com/", false),
            (
                "site_2.com/resource_*",
                "http://site_2.com/resource_9/x",
                true,
            ),
            (
                "site_2.com/resource_1",
                "http://site_2.com/resource_1",
                true,
            ),
            (
                "site_2.com/resource_1",
                "http://site_2.com/resource_10",
                true,
            ),
            ("site_2.com/resource_1", "http://site_2.com/other", false),
            (
                "https://site_2.com/static",
                "http://site_2.com/static/a.css",
                true,
            ),
            ("site_3.com/", "http://site_3.com/a/b/c", true),
            ("site_3.com/", "http://www.site_3.com/", false),
        ];
        for (pattern, url, expected) in cases {
            assert_eq!(
                UrlPattern::glob(pattern).unwrap().matches(url),
                *expected,
                "{pattern} ~ {url}"
            );
        }
    }

    #[test]
    fn regex_patterns_search_the_whole_url() {
        let re = UrlPattern::regex(r"site_2.com/resource_\d").unwrap();
        assert!(re.matches("http://site_2.com/resource_7"));
        assert!(!re.matches("http://site_2.com/resource_x"));
        let https_only = UrlPattern::regex(r"^https://site\.com/").unwrap();
        assert!(https_only.matches("https://site.com/a"));
        assert!(!https_only.matches("http://site.com/a"));
    }

    #[test]
    fn first_matching_rule_wins_in_definition_order() {
        let rules = vec![
            (
                UrlPattern::glob("*.site_1.com").unwrap(),
                ExpireAfter::After(Duration::from_secs(30)),
            ),
            (
                UrlPattern::glob("site_2.com/resource_1").unwrap(),
                ExpireAfter::After(Duration::from_secs(120)),
            ),
            (
                UrlPattern::regex(r"site_2.com/resource_\d").unwrap(),
                ExpireAfter::After(Duration::from_secs(604_800)),
            ),
            (
                UrlPattern::glob("site_2.com/resource_*").unwrap(),
                ExpireAfter::After(Duration::from_secs(3600)),
            ),
            (
                UrlPattern::glob("site_2.com/static").unwrap(),
                ExpireAfter::Never,
            ),
        ];
        let at = |url: &str| url_expiration(&rules, url);
        assert_eq!(
            at("http://a.site_1.com/x"),
            Some(ExpireAfter::After(Duration::from_secs(30)))
        );
        assert_eq!(
            at("http://site_2.com/resource_1"),
            Some(ExpireAfter::After(Duration::from_secs(120)))
        );
        assert_eq!(
            at("http://site_2.com/resource_2"),
            Some(ExpireAfter::After(Duration::from_secs(604_800)))
        );
        assert_eq!(
            at("http://site_2.com/resource_x"),
            Some(ExpireAfter::After(Duration::from_secs(3600)))
        );
        assert_eq!(
            at("http://site_2.com/static/app.js"),
            Some(ExpireAfter::Never)
        );
        assert_eq!(at("http://elsewhere.com/"), None);
    }

    #[test]
    fn invalid_patterns_are_errors_not_panics() {
        assert!(UrlPattern::glob("site.com/[abc").is_err());
        assert!(UrlPattern::regex("site.com/(").is_err());
        assert!("regex:(".parse::<UrlPattern>().is_err());
    }

    #[test]
    fn rules_deserialize_from_a_map_in_document_order_or_a_list() {
        #[derive(Deserialize)]
        struct Wrapper {
            #[serde(with = "serde_url_rules")]
            rules: Vec<(UrlPattern, ExpireAfter)>,
        }
        let from_map: Wrapper = serde_json::from_str(
            r#"{"rules": {"site_2.com/resource_1": "2m", "regex:site_2.com/resource_\\d": "7days", "site_2.com/static": "never"}}"#,
        )
        .unwrap();
        let patterns: Vec<String> = from_map.rules.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            patterns,
            [
                "site_2.com/resource_1",
                r"regex:site_2.com/resource_\d",
                "site_2.com/static"
            ]
        );
        assert_eq!(from_map.rules[2].1, ExpireAfter::Never);
        let from_list: Wrapper =
            serde_json::from_str(r#"{"rules": [["*.site_1.com", 30]]}"#).unwrap();
        assert_eq!(
            from_list.rules[0].1,
            ExpireAfter::After(Duration::from_secs(30))
        );
        assert!(serde_json::from_str::<Wrapper>(r#"{"rules": {"site.com/[": "1m"}}"#).is_err());
    }
}
