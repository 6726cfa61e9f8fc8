//! [`CacheBody`]: the body of every response that passes through the cache.

use crate::health::{StoreHealth, StoreOp};
use crate::metrics::OpStart;
use crate::stage::coalesce::FlightGuard;
use crate::stage::variant;
use bytes::Bytes;
use cachelayer_policy::CacheKey;
use cachelayer_store::{Store, StoreFuture, StoredResponse};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use sync_wrapper::SyncWrapper;

/// The body of a response from [`CacheService`](crate::CacheService): either a stored body
/// (a hit: one [`Bytes`], nothing copied), or the origin's body streamed through, recorded for
/// the store on the way when the response is being stored.
///
/// A recorded body is written to the store when the origin body ends, before this body reports
/// its end: once a caller has read a miss's body to the end, the next request finds it stored.
/// A body that passes [`max_body_size`](crate::CacheSettings::max_body_size) while streaming stops
/// being recorded and is not stored. A body dropped before its end is not stored. Errors of the
/// origin body pass through unchanged (and the response is not stored).
pub struct CacheBody<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Stored(Option<Bytes>),
    Origin(Pin<Box<B>>),
    /// The origin's body and what is recorded of it, in one allocation.
    Recording(Pin<Box<Recording<B>>>),
}

pin_project! {
    struct Recording<B> {
        #[pin]
        inner: B,
        rec: Record,
    }
}

/// What a recording body keeps besides the origin's body.
struct Record {
    chunks: Chunks,
    size: usize,
    limit: usize,
    pending: Option<PendingWrite>,
    /// The store write, once started. `SyncWrapper` makes the body `Sync` (it is only ever
    /// polled through `&mut`), so it fits `BoxBody` and other `Sync` body types.
    write: Option<SyncWrapper<StoreFuture<()>>>,
    inner_done: bool,
    /// The origin body had ended before it was read (it is empty).
    empty_at_start: bool,
}

/// The pieces of a body, in order: the first (most bodies arrive in one) kept inline, without
/// an allocation.
#[derive(Default)]
struct Chunks {
    first: Bytes,
    /// Every piece, the first included, once there is more than one.
    all: Vec<Bytes>,
}

impl Chunks {
    fn push(&mut self, data: Bytes) {
        if self.all.is_empty() && self.first.is_empty() {
            self.first = data;
        } else {
            if self.all.is_empty() {
                self.all.push(std::mem::take(&mut self.first));
            }
            self.all.push(data);
        }
    }

    fn as_slice(&self) -> &[Bytes] {
        match (self.all.is_empty(), self.first.is_empty()) {
            (false, _) => &self.all,
            (true, false) => std::slice::from_ref(&self.first),
            (true, true) => &[],
        }
    }
}

/// An entry waiting for its body, with the store to write it to.
pub(crate) struct PendingWrite {
    pub(crate) store: Arc<dyn Store>,
    /// The store's health, told how the write went.
    pub(crate) health: Arc<StoreHealth>,
    pub(crate) key: CacheKey,
    /// Another key the response answers for (the final URL of redirects followed below).
    pub(crate) alias: Option<CacheKey>,
    /// In its `Arc` from the start: moved as a pointer until it is stored.
    pub(crate) entry: Arc<StoredResponse>,
    /// The coalescing flight this response answers: released once it is stored, so that the
    /// requests waiting for it find it.
    pub(crate) flight: Option<FlightGuard>,
    /// How long the store may take to write it (`store_timeout`).
    pub(crate) timeout: std::time::Duration,
    /// The entry is a `206`: combined with the stored parts when written
    /// ([`partial::put_part`](crate::stage::partial::put_part)).
    pub(crate) part: bool,
    /// The request's span: the write's events and timing go to it.
    pub(crate) span: tracing::Span,
}

impl<B> CacheBody<B> {
    /// A body of stored bytes.
    pub(crate) fn stored(bytes: Bytes) -> Self {
        CacheBody {
            kind: Kind::Stored(if bytes.is_empty() { None } else { Some(bytes) }),
        }
    }

    /// The origin's body, passed through untouched.
    pub(crate) fn origin(inner: B) -> Self {
        CacheBody {
            kind: Kind::Origin(Box::pin(inner)),
        }
    }

    /// The origin's body, recorded and written to the store at its end.
    pub(crate) fn recording(inner: B, limit: usize, pending: PendingWrite) -> Self
    where
        B: Body,
    {
        let empty_at_start = inner.is_end_stream();
        CacheBody {
            kind: Kind::Recording(Box::pin(Recording {
                inner,
                rec: Record {
                    chunks: Chunks::default(),
                    size: 0,
                    limit,
                    pending: Some(pending),
                    write: None,
                    inner_done: false,
                    empty_at_start,
                },
            })),
        }
    }
}

impl Record {
    fn record(&mut self, data: &Bytes) {
        if self.pending.is_none() {
            return;
        }
        self.size = self.size.saturating_add(data.len());
        if self.size > self.limit {
            if let Some(pending) = self.pending.take() {
                tracing::debug!(parent: &pending.span, limit = self.limit, "not stored: body larger than max_body_size");
            }
            self.chunks = Chunks::default();
            return;
        }
        if !data.is_empty() {
            self.chunks.push(data.clone());
        }
    }

    /// Starts the store write once the origin body has ended.
    fn start_write(&mut self) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        // Pieces joined as the memory store keeps a body, which it then does not copy again.
        // Nobody else holds the entry yet: `make_mut` changes it in place.
        Arc::make_mut(&mut pending.entry).body =
            cachelayer_store::join_body(self.chunks.as_slice());
        self.chunks = Chunks::default();
        tracing::debug!(parent: &pending.span, bytes = self.size, "storing response");
        let span = pending.span;
        let started = OpStart::now(!span.is_disabled());
        let flight = pending.flight.take();
        let timeout = pending.timeout;
        let health = pending.health.clone();
        let write = if pending.part {
            crate::stage::partial::put_part(
                &pending.store,
                pending.key,
                Arc::unwrap_or_clone(pending.entry),
                self.limit,
            )
        } else {
            // A store that writes at once (memory) needs no future.
            match variant::put_entry_now(&pending.store, pending.key, pending.alias, pending.entry)
            {
                Ok(written) => {
                    write_done(&health, started, &span, written);
                    drop(flight);
                    return;
                }
                Err(args) => {
                    variant::put_entry(&pending.store, args.primary, args.alias, args.entry)
                }
            }
        };
        let mut write = crate::stage::timeout::Bounded::new(write, timeout);
        // A store that writes at once (memory) is done on this first poll: no task to keep.
        let mut now = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(written) = Pin::new(&mut write).poll(&mut now) {
            write_done(&health, started, &span, written);
            drop(flight);
            return;
        }
        self.write = Some(SyncWrapper::new(Box::pin(async move {
            let written = write.await;
            write_done(&health, started, &span, written);
            drop(flight);
            Ok(())
        })));
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(write) = self.write.as_mut() {
            let _ = ready!(write.get_mut().as_mut().poll(cx));
            self.write = None;
        }
        Poll::Ready(())
    }
}

/// A store write ended: its time and outcome are recorded.
fn write_done(
    health: &StoreHealth,
    started: OpStart,
    span: &tracing::Span,
    written: Result<(), cachelayer_store::StoreError>,
) {
    health.finished(StoreOp::Write, started, span);
    match written {
        Ok(()) => health.success(),
        Err(error) => {
            tracing::debug!(parent: span, %error, "cache store write failed; the response was served but not stored");
            health.failure(StoreOp::Write, &error);
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // A body dropped unread whose origin body is already complete (an empty redirect body
        // that a redirect-following client never reads) is stored all the same.
        if self.empty_at_start && self.write.is_none() && self.pending.is_some() {
            self.start_write();
        }
        // A write that was started but not finished (the caller dropped the body right after its
        // last bytes) finishes in the background when a tokio runtime is there.
        if let Some(write) = self.write.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(write.into_inner());
            }
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Stored(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Origin(inner) => inner.as_mut().poll_frame(cx),
            Kind::Recording(recording) => {
                let this = recording.as_mut().project();
                let (mut inner, rec) = (this.inner, this.rec);
                if rec.inner_done {
                    ready!(rec.poll_write(cx));
                    return Poll::Ready(None);
                }
                match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        match frame.data_ref() {
                            Some(data) => rec.record(data),
                            // Trailers: not kept by the cache, so the response is not stored.
                            None => rec.pending = None,
                        }
                        if inner.is_end_stream() {
                            rec.inner_done = true;
                            rec.start_write();
                            // Drive the write now; what is left finishes on the next poll.
                            let _ = rec.poll_write(cx);
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Some(Err(error)) => {
                        rec.pending = None;
                        rec.chunks = Chunks::default();
                        Poll::Ready(Some(Err(error)))
                    }
                    None => {
                        rec.inner_done = true;
                        rec.start_write();
                        ready!(rec.poll_write(cx));
                        Poll::Ready(None)
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stored(data) => data.is_none(),
            Kind::Origin(inner) => inner.is_end_stream(),
            Kind::Recording(recording) => recording.rec.inner_done && recording.rec.write.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stored(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Origin(inner) => inner.size_hint(),
            Kind::Recording(recording) if recording.rec.inner_done => SizeHint::with_exact(0),
            Kind::Recording(recording) => recording.inner.size_hint(),
        }
    }
}

impl<B> fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stored(data) => f
                .debug_struct("CacheBody::Stored")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Origin(_) => f.debug_struct("CacheBody::Origin").finish_non_exhaustive(),
            Kind::Recording(recording) => f
                .debug_struct("CacheBody::Recording")
                .field("recorded", &recording.rec.size)
                .field("storing", &recording.rec.pending.is_some())
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_their_order_and_the_first_inline() {
        let mut chunks = Chunks::default();
        assert!(chunks.as_slice().is_empty());
        chunks.push(Bytes::from_static(b"a"));
        assert_eq!(chunks.as_slice(), [Bytes::from_static(b"a")]);
        assert_eq!(chunks.all.capacity(), 0, "one piece: no allocation");
        chunks.push(Bytes::from_static(b"b"));
        chunks.push(Bytes::from_static(b"c"));
        assert_eq!(
            chunks.as_slice(),
            [
                Bytes::from_static(b"a"),
                Bytes::from_static(b"b"),
                Bytes::from_static(b"c")
            ]
        );
    }

    // `CacheBody` fits `BoxBody` and other `Send + Sync` body types.
    #[test]
    fn cache_body_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CacheBody<http_body_util::Full<Bytes>>>();
    }
}
