//! Secondary keys (RFC 9111 §4.1): several responses of one URL, chosen by the request header
//! fields their `Vary` names, stored side by side.
//!
//! A response with `Vary` is stored twice: under the request's primary key (the latest variant,
//! whose `Vary` tells which header fields select a variant) and under a secondary key derived from
//! the primary key and the values of those fields. A lookup whose request does not match the
//! variant at the primary key looks up the secondary key its own header values give.
//!
//! Fields named in `ignored_parameters` (credentials such as `Authorization` or `X-API-Key`) are
//! never stored: what is stored, compared and hashed for them is a digest of each value
//! ([`selecting_value`]). A response that varies on a credential is so reused only for requests
//! with the same credential, never for one without it.

use cachelayer_policy::CacheKey;
use cachelayer_store::{Store, StoreFuture, StoredResponse};
use http::header::VARY;
use http::{HeaderMap, HeaderValue};
use std::borrow::Cow;
use std::sync::Arc;

/// What stands for a request field's value when it selects a variant: the value without
/// surrounding whitespace, or for a field named in `ignored` (a credential) `blake3:` and the
/// first 128 bits of the BLAKE3 digest of that, in hex. The digest form is what a store keeps,
/// so passing a stored value back with no `ignored` names gives it unchanged.
pub(crate) fn selecting_value<'a>(
    name: &str,
    value: &'a HeaderValue,
    ignored: &[String],
) -> Cow<'a, [u8]> {
    let value = value.as_bytes().trim_ascii();
    if !ignored.iter().any(|i| i.eq_ignore_ascii_case(name)) {
        return Cow::Borrowed(value);
    }
    let hash = blake3::hash(value);
    let mut out = Vec::with_capacity(7 + 32);
    out.extend_from_slice(b"blake3:");
    for b in hash.as_bytes().iter().take(16) {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    Cow::Owned(out)
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
/// `Vary`; `None` when the response does not vary. `ignored` names the credential fields whose
/// values are digested ([`selecting_value`]): the settings' `ignored_parameters` for a request,
/// none for the request headers of a stored entry (already digested).
pub(crate) fn variant_key(
    primary: &CacheKey,
    response: &HeaderMap,
    request: &HeaderMap,
    ignored: &[String],
) -> Option<CacheKey> {
    let names = vary_names(response)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cachelayer-variant-v1\n");
    hasher.update(primary.to_string().as_bytes());
    for name in &names {
        hasher.update(b"\n");
        hasher.update(name.as_bytes());
        hasher.update(b":");
        for (i, value) in request.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                hasher.update(b",");
            }
            hasher.update(&selecting_value(name, value, ignored));
        }
    }
    let mut digest = [0u8; 16];
    hasher.finalize_xof().fill(&mut digest);
    Some(CacheKey::from_digest(digest))
}

/// Stores `entry` under `primary`, under its secondary key when it varies, and under `alias`
/// (the key of the URL a redirect-following layer below the cache ended at) when given.
pub(crate) fn put_entry(
    store: &Arc<dyn Store>,
    primary: CacheKey,
    alias: Option<CacheKey>,
    entry: Arc<StoredResponse>,
) -> StoreFuture<()> {
    let mut keys = vec![];
    if let Some(variant) = variant_key(&primary, &entry.headers, &entry.request.headers, &[]) {
        keys.push(variant);
    }
    if let Some(alias) = alias.filter(|alias| *alias != primary) {
        if let Some(variant) = variant_key(&alias, &entry.headers, &entry.request.headers, &[]) {
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
            &[],
        );
        let en_other_agent = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "en"), ("user-agent", "b")]),
            &[],
        );
        let fr = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "fr")]),
            &[],
        );
        assert!(en.is_some());
        assert_eq!(en, en_other_agent, "headers outside Vary do not matter");
        assert_ne!(en, fr);
        let other_primary = variant_key(
            &CacheKey::from_digest([8; 16]),
            &response,
            &headers(&[("accept-language", "en")]),
            &[],
        );
        assert_ne!(en, other_primary, "variants of different URLs differ");
    }

    #[test]
    fn no_vary_and_vary_star_have_no_variant_key() {
        let primary = CacheKey::from_digest([7; 16]);
        assert_eq!(
            variant_key(&primary, &headers(&[]), &headers(&[]), &[]),
            None
        );
        assert_eq!(
            variant_key(&primary, &headers(&[("vary", "*")]), &headers(&[]), &[]),
            None
        );
        assert_eq!(
            variant_key(
                &primary,
                &headers(&[("vary", "accept, *")]),
                &headers(&[]),
                &[]
            ),
            None
        );
    }

    #[test]
    fn credential_variants_are_told_apart_by_digest() {
        let primary = CacheKey::from_digest([7; 16]);
        let response = headers(&[("vary", "X-API-Key")]);
        let ignored = vec!["X-API-Key".to_owned()];
        let alice = headers(&[("x-api-key", "alice")]);
        let key = |request: &HeaderMap| variant_key(&primary, &response, request, &ignored);
        assert_ne!(key(&alice), key(&headers(&[])), "a credential and none");
        assert_ne!(key(&alice), key(&headers(&[("x-api-key", "bob")])));
        // What a store keeps for Alice selects Alice's variant, and does not contain her key.
        let value = HeaderValue::from_static("alice");
        let stored = selecting_value("x-api-key", &value, &ignored);
        assert!(stored.starts_with(b"blake3:") && !stored.windows(5).any(|w| w == b"alice"));
        let mut kept = HeaderMap::new();
        kept.insert("x-api-key", HeaderValue::from_bytes(&stored).unwrap());
        assert_eq!(variant_key(&primary, &response, &kept, &[]), key(&alice));
    }
}
