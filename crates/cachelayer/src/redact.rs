//! [`RedactedUri`]: request targets for logs, without the credentials they carry.

use http::Uri;
use std::fmt;

/// What stands in a log line for a redacted value.
pub const REDACTED: &str = "[redacted]";

/// A request target as a log line may show it: user information (`user:pass@`) and the values of
/// the query parameters named in
/// [`ignored_parameters`](crate::CacheSettings::ignored_parameters) (`api_key`, `access_token`,
/// ...) replaced by `[redacted]`. Every event cachelayer logs with a URL uses it; proxies and
/// access logs built on cachelayer should too.
///
/// ```
/// use cachelayer::{CacheSettings, RedactedUri};
///
/// let settings = CacheSettings::default();
/// let uri = "https://user:pw@api.example/v1?q=rust&api_key=SECRET".parse().unwrap();
/// assert_eq!(
///     RedactedUri::new(&uri, &settings.ignored_parameters).to_string(),
///     "https://[redacted]@api.example/v1?q=rust&api_key=[redacted]",
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RedactedUri<'a> {
    uri: &'a Uri,
    ignored: &'a [String],
}

impl<'a> RedactedUri<'a> {
    /// `uri`, with the values of the query parameters named in `ignored` redacted. A name is
    /// matched exactly (as the cache key matches it) and also percent-decoded, `+` as a space
    /// (`api%5Fkey`, which the origin may read as `api_key`): a log line redacts at least what
    /// any reading of the name makes a credential.
    pub fn new(uri: &'a Uri, ignored: &'a [String]) -> Self {
        RedactedUri { uri, ignored }
    }
}

impl RedactedUri<'_> {
    /// Whether a query parameter name, as sent or decoded, is one of `ignored`.
    fn is_ignored(&self, name: &str) -> bool {
        if self.ignored.iter().any(|i| i == name) {
            return true;
        }
        if !name.contains(['%', '+']) {
            return false;
        }
        let spaced = name.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
        self.ignored.iter().any(|i| *i == decoded)
    }
}

impl fmt::Display for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(authority) = self.uri.authority() {
            match authority.as_str().rsplit_once('@') {
                Some((_, host)) => write!(f, "{REDACTED}@{host}")?,
                None => f.write_str(authority.as_str())?,
            }
        }
        f.write_str(self.uri.path())?;
        if let Some(query) = self.uri.query() {
            f.write_str("?")?;
            for (i, piece) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match piece.split_once('=') {
                    Some((name, _)) if self.is_ignored(name) => {
                        write!(f, "{name}={REDACTED}")?;
                    }
                    _ => f.write_str(piece)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        let ignored = vec!["api_key".to_owned(), "access_token".to_owned()];
        let cases = [
            ("/p", "/p"),
            ("/p?x=1", "/p?x=1"),
            (
                "/p?api_key=A&x=1&access_token=B",
                "/p?api_key=[redacted]&x=1&access_token=[redacted]",
            ),
            ("/p?api_key", "/p?api_key"),
            ("/p?api_keyx=1", "/p?api_keyx=1"),
            (
                "/p?api%5Fkey=A&api%5fkey=B&access%5Ftoken=C&x%5F=1",
                "/p?api%5Fkey=[redacted]&api%5fkey=[redacted]&access%5Ftoken=[redacted]&x%5F=1",
            ),
            (
                "http://u:p@h:8080/p?api_key=A",
                "http://[redacted]@h:8080/p?api_key=[redacted]",
            ),
            ("http://h/", "http://h/"),
        ];
        for (uri, expected) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(RedactedUri::new(&uri, &ignored).to_string(), expected);
        }
    }
}
