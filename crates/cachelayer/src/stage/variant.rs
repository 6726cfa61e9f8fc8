//! Secondary keys (RFC 9111 §4.1): several responses of one URL, chosen by the request header
//! fields their `Vary` names, stored side by side.
//!
//! A response with `Vary` is stored twice: under the request's primary key (the latest variant,
//! whose `Vary` tells which header fields select a variant) and under a secondary key derived from
//! the primary key and the values of those fields. A lookup whose request does not match the
//! variant at the primary key looks up the secondary key its own header values give.
//!
//! What a store keeps of the request fields that select a variant, and what lookups compare and
//! hash, is their *selecting value* ([`selecting_value`]): the field lines combined into one
//! list with the whitespace around its commas removed (RFC 9111 §4.1 lets a cache normalize
//! values "in a way that is known to have identical semantics"); `Accept-Encoding`,
//! `Accept-Language` and `Accept-Charset` lowercased, and `Accept-Encoding`'s codings sorted (its
//! order carries no weight). Content negotiation fields (`Accept`, `Accept-Encoding`,
//! `Accept-Language`, `Accept-Charset`) are kept as that text; every other field (`Cookie`,
//! `Authorization`, `X-API-Key`, ...) only as a digest of it, so a store never holds a secret a
//! response varies on, and a response that varies on a credential is reused only for requests
//! with the same credential, never for one without it.

use cachelayer_policy::CacheKey;
use cachelayer_store::{PutNow, Store, StoreError, StoreFuture, StoredResponse};
use http::header::{ACCEPT, ACCEPT_CHARSET, ACCEPT_ENCODING, ACCEPT_LANGUAGE, VARY};
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;

/// The form of the request header fields given to [`variant_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fields {
    /// As a request sent them.
    Sent,
    /// As a store keeps them: selecting values already.
    Kept,
}

/// The selecting value of the request field `name` (lowercase): see the module docs. `None`
/// when the request does not have the field.
pub(crate) fn selecting_value(request: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let mut lines = request.get_all(name).iter().peekable();
    lines.peek()?;
    let plain = [&ACCEPT, &ACCEPT_ENCODING, &ACCEPT_LANGUAGE, &ACCEPT_CHARSET]
        .iter()
        .any(|h| h.as_str() == name);
    let lines: Vec<&[u8]> = lines.map(HeaderValue::as_bytes).collect();
    let mut text: Vec<u8> = if lines.iter().any(|l| l.contains(&b'"')) {
        // A quoted string may hold commas and spaces that matter: lines joined as they are.
        lines.join(&b","[..])
    } else {
        let mut elements: Vec<Vec<u8>> = lines
            .iter()
            .flat_map(|line| line.split(|&b| b == b','))
            .map(|e| e.trim_ascii().to_vec())
            .filter(|e| !e.is_empty())
            .collect();
        if name != ACCEPT.as_str() && plain {
            for element in &mut elements {
                element.make_ascii_lowercase();
            }
        }
        if name == ACCEPT_ENCODING.as_str() {
            elements.sort();
        }
        elements.join(&b","[..])
    };
    if !plain {
        let hash = blake3::hash(&text);
        text.clear();
        text.extend_from_slice(b"blake3:");
        let mut hex = const_hex::Buffer::<16>::new();
        let first_half = hash.as_bytes().first_chunk::<16>().unwrap_or(&[0; 16]);
        text.extend_from_slice(hex.format(first_half).as_bytes());
    }
    HeaderValue::from_bytes(&text).ok()
}

/// The header field names a response's `Vary` lists, lowercase, in order, without duplicates;
/// `None` when it has no `Vary` (or only `Vary: *`, which no request matches).
fn vary_names(response: &HeaderMap) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for value in response.get_all(VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    (!names.is_empty()).then_some(names)
}

/// The secondary key of the variant that `request` selects among responses with `response`'s
/// `Vary`; `None` when the response does not vary.
pub(crate) fn variant_key(
    primary: &CacheKey,
    response: &HeaderMap,
    request: &HeaderMap,
    fields: Fields,
) -> Option<CacheKey> {
    let names = vary_names(response)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cachelayer-variant-v2\n");
    hasher.update(primary.to_string().as_bytes());
    for name in &names {
        hasher.update(b"\n");
        hasher.update(name.as_bytes());
        let value = match fields {
            Fields::Sent => selecting_value(request, name),
            Fields::Kept => request.get(name.as_str()).cloned(),
        };
        match value {
            Some(value) => {
                hasher.update(b"=");
                hasher.update(value.as_bytes());
            }
            None => {
                hasher.update(b"!");
            }
        }
    }
    let mut digest = [0u8; 16];
    hasher.finalize_xof().fill(&mut digest);
    Some(CacheKey::from_digest(digest))
}

/// [`put_entry`] done at once when it is one write (the entry does not vary, no other alias)
/// and the store writes at once ([`Store::put_now`]): the outcome; otherwise the arguments,
/// given back for `put_entry`.
pub(crate) fn put_entry_now(
    store: &Arc<dyn Store>,
    primary: CacheKey,
    alias: Option<CacheKey>,
    entry: Arc<StoredResponse>,
) -> Result<Result<(), StoreError>, PutEntry> {
    let varies = varies(&entry.headers);
    if varies || alias.as_ref().is_some_and(|alias| *alias != primary) {
        return Err(PutEntry {
            primary,
            alias,
            entry,
        });
    }
    match store.put_now(primary, entry) {
        PutNow::Done(done) => Ok(done),
        PutNow::Later(primary, entry) => Err(PutEntry {
            primary,
            alias,
            entry,
        }),
    }
}

/// Whether a stored response has `Vary`: one pass over its (few) field names, cheaper than a
/// hashed lookup.
fn varies(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| name == VARY)
}

/// The arguments of [`put_entry`].
pub(crate) struct PutEntry {
    pub(crate) primary: CacheKey,
    pub(crate) alias: Option<CacheKey>,
    pub(crate) entry: Arc<StoredResponse>,
}

/// Stores `entry` under `primary`, under its secondary key when it varies, and under `alias`
/// (the key of the URL a redirect-following layer below the cache ended at) when given.
pub(crate) fn put_entry(
    store: &Arc<dyn Store>,
    primary: CacheKey,
    alias: Option<CacheKey>,
    entry: Arc<StoredResponse>,
) -> StoreFuture<()> {
    let varies = varies(&entry.headers);
    if !varies && alias.as_ref().is_none_or(|alias| *alias == primary) {
        // The common case: one key, one write.
        return store.put(primary, entry);
    }
    let mut keys = vec![];
    if let Some(variant) = variant_key(
        &primary,
        &entry.headers,
        &entry.request.headers,
        Fields::Kept,
    ) {
        keys.push(variant);
    }
    if let Some(alias) = alias.filter(|alias| *alias != primary) {
        if let Some(variant) =
            variant_key(&alias, &entry.headers, &entry.request.headers, Fields::Kept)
        {
            keys.push(variant);
        }
        keys.push(alias);
    }
    keys.push(primary);
    let writes: Vec<_> = keys
        .into_iter()
        .map(|key| store.put(key, entry.clone()))
        .collect();
    Box::pin(async move {
        for write in writes {
            write.await?;
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn variant_keys_depend_on_the_nominated_fields_only() {
        let primary = CacheKey::from_digest([7; 16]);
        let response = headers(&[("vary", "Accept-Language, accept-encoding")]);
        let en = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "en"), ("user-agent", "a")]),
            Fields::Sent,
        );
        let en_other_agent = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "en"), ("user-agent", "b")]),
            Fields::Sent,
        );
        let fr = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "fr")]),
            Fields::Sent,
        );
        assert!(en.is_some());
        assert_eq!(en, en_other_agent, "headers outside Vary do not matter");
        assert_ne!(en, fr);
        let other_primary = variant_key(
            &CacheKey::from_digest([8; 16]),
            &response,
            &headers(&[("accept-language", "en")]),
            Fields::Sent,
        );
        assert_ne!(en, other_primary, "variants of different URLs differ");
    }

    #[test]
    fn no_vary_and_vary_star_have_no_variant_key() {
        let primary = CacheKey::from_digest([7; 16]);
        assert_eq!(
            variant_key(&primary, &headers(&[]), &headers(&[]), Fields::Sent),
            None
        );
        assert_eq!(
            variant_key(
                &primary,
                &headers(&[("vary", "*")]),
                &headers(&[]),
                Fields::Sent
            ),
            None
        );
        assert_eq!(
            variant_key(
                &primary,
                &headers(&[("vary", "accept, *")]),
                &headers(&[]),
                Fields::Sent
            ),
            None
        );
    }

    #[test]
    fn credential_variants_are_told_apart_by_digest() {
        let primary = CacheKey::from_digest([7; 16]);
        let response = headers(&[("vary", "X-API-Key")]);
        let alice = headers(&[("x-api-key", "alice")]);
        let key = |request: &HeaderMap| variant_key(&primary, &response, request, Fields::Sent);
        assert_ne!(key(&alice), key(&headers(&[])), "a credential and none");
        assert_ne!(
            key(&alice),
            key(&headers(&[("x-api-key", "")])),
            "empty and none"
        );
        assert_ne!(key(&alice), key(&headers(&[("x-api-key", "bob")])));
        // What a store keeps for Alice selects Alice's variant, and does not contain her key.
        let kept_value = selecting_value(&alice, "x-api-key").unwrap();
        let digest: String = blake3::hash(b"alice").as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(kept_value, format!("blake3:{digest}").as_str());
        assert!(!kept_value.as_bytes().windows(5).any(|w| w == b"alice"));
        let mut kept = HeaderMap::new();
        kept.insert("x-api-key", kept_value);
        assert_eq!(
            variant_key(&primary, &response, &kept, Fields::Kept),
            key(&alice)
        );
    }

    #[test]
    fn selecting_values_are_normalized() {
        let value = |pairs: &[(&'static str, &'static str)], name: &str| {
            selecting_value(&headers(pairs), name).map(|v| v.to_str().unwrap().to_owned())
        };
        // (request A, request B, field, same selecting value)
        type Pairs = &'static [(&'static str, &'static str)];
        let cases: &[(Pairs, Pairs, &str, bool)] = &[
            (&[("foo", "1,2")], &[("foo", " 1, 2 ")], "foo", true),
            (
                &[("foo", "1"), ("foo", "2")],
                &[("foo", "1, 2")],
                "foo",
                true,
            ),
            (&[("foo", "1,2")], &[("foo", "2,1")], "foo", false),
            (
                &[("accept-encoding", "gzip, br")],
                &[("accept-encoding", "BR,gzip")],
                "accept-encoding",
                true,
            ),
            (
                &[("accept-language", "en, fr")],
                &[("accept-language", "EN,fr")],
                "accept-language",
                true,
            ),
            (
                &[("accept-language", "en, fr")],
                &[("accept-language", "fr, en")],
                "accept-language",
                false,
            ),
            (
                &[("foo", "a=\"x, y\"")],
                &[("foo", "a=\"x,y\"")],
                "foo",
                false,
            ),
            (&[("foo", "")], &[], "foo", false),
        ];
        for (a, b, name, same) in cases {
            assert_eq!(value(a, name) == value(b, name), *same, "{a:?} / {b:?}");
        }
        assert_eq!(
            value(&[("accept-encoding", "br, GZIP")], "accept-encoding").as_deref(),
            Some("br,gzip"),
            "content negotiation fields are kept as text"
        );
        let cookie = value(&[("cookie", "session=SECRET")], "cookie").unwrap();
        assert!(cookie.starts_with("blake3:") && !cookie.contains("SECRET"));
    }
}
