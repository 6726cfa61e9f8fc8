use std::error::Error as StdError;
use std::fmt;

type BoxError = Box<dyn StdError + Send + Sync>;

/// An error of a [`Store`](crate::Store) operation.
///
/// The cache never passes a store error to its caller: a failed read is a miss, a failed write
/// leaves the response uncached. The error is logged, and its kind can be asked with the
/// `is_*` methods.
pub struct StoreError {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Backend,
    Timeout,
    Decode,
    Unsupported,
}

impl StoreError {
    /// The backend (database, server, file) failed: a connection, a query, an IO error.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        StoreError {
            kind: Kind::Backend,
            source: Some(source.into()),
        }
    }

    /// The operation did not finish within the store's time limit.
    pub fn timeout() -> Self {
        StoreError {
            kind: Kind::Timeout,
            source: None,
        }
    }

    /// A stored record could not be decoded (see [`DecodeError`](crate::DecodeError)).
    pub fn decode(source: impl Into<BoxError>) -> Self {
        StoreError {
            kind: Kind::Decode,
            source: Some(source.into()),
        }
    }

    /// The store does not support the operation.
    pub fn unsupported(what: &'static str) -> Self {
        StoreError {
            kind: Kind::Unsupported,
            source: Some(what.into()),
        }
    }

    /// `true` for a backend failure.
    pub fn is_backend(&self) -> bool {
        self.kind == Kind::Backend
    }

    /// `true` when the operation timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// `true` when a record could not be decoded.
    pub fn is_decode(&self) -> bool {
        self.kind == Kind::Decode
    }

    /// `true` when the store does not support the operation.
    pub fn is_unsupported(&self) -> bool {
        self.kind == Kind::Unsupported
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StoreError");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Backend => "cache store backend error",
            Kind::Timeout => "cache store operation timed out",
            Kind::Decode => "cache store record could not be decoded",
            Kind::Unsupported => "cache store operation not supported",
        };
        match &self.source {
            Some(source) => write!(f, "{what}: {source}"),
            None => f.write_str(what),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
