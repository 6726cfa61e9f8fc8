//! Store operations bounded in time (`store_timeout`): a store that does not answer in time is a
//! miss (reads) or leaves the response unstored (writes), never a stuck request.
//!
//! The timer is armed only when the store's future is still pending after its first poll, so a
//! store that answers at once (the memory store) pays nothing for the bound.

use cachelayer_store::{StoreError, StoreFuture};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// A store future that fails with [`StoreError::timeout`] after `limit`; or a store's answer
/// already known ([`Bounded::ready`]).
pub(crate) struct Bounded<T> {
    inner: Inner<T>,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

enum Inner<T> {
    Pending(StoreFuture<T>),
    Ready(Option<Result<T, StoreError>>),
}

impl<T> Bounded<T> {
    pub(crate) fn new(inner: StoreFuture<T>, limit: Duration) -> Self {
        Bounded {
            inner: Inner::Pending(inner),
            limit,
            timer: None,
        }
    }

    /// The store's answer is already here ([`Bounded::ready`]).
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.inner, Inner::Ready(_))
    }

    /// A store's answer given at once (`Store::get_now`): no future, no timer.
    pub(crate) fn ready(answer: Result<T, StoreError>) -> Self {
        Bounded {
            inner: Inner::Ready(Some(answer)),
            limit: Duration::ZERO,
            timer: None,
        }
    }
}

impl<T: Unpin> Future for Bounded<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let pending = match &mut this.inner {
            Inner::Ready(answer) => {
                return Poll::Ready(answer.take().unwrap_or_else(|| Err(StoreError::timeout())));
            }
            Inner::Pending(pending) => pending,
        };
        if let Poll::Ready(output) = pending.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if this.timer.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            this.timer = Some(Box::pin(tokio::time::sleep(this.limit)));
        }
        match this.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(StoreError::timeout())),
            _ => Poll::Pending,
        }
    }
}

/// `inner`, bounded by `limit`, boxed as a store future.
pub(crate) fn bounded<T: Send + Unpin + 'static>(
    inner: StoreFuture<T>,
    limit: Duration,
) -> StoreFuture<T> {
    Box::pin(Bounded::new(inner, limit))
}

/// The lookup of `key` in `store`: its answer at once when the store can give one, otherwise
/// its future bounded by `limit`.
pub(crate) fn lookup(
    store: &dyn cachelayer_store::Store,
    key: &cachelayer_policy::CacheKey,
    limit: Duration,
) -> Bounded<Option<std::sync::Arc<cachelayer_store::StoredResponse>>> {
    match store.get_now(key) {
        Some(answer) => Bounded::ready(answer),
        None => Bounded::new(store.get(key), limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_answers_times_out() {
        let never: StoreFuture<u8> = Box::pin(std::future::pending());
        let result = Bounded::new(never, Duration::from_millis(50)).await;
        assert!(result.is_err_and(|e| e.is_timeout()));
    }

    #[tokio::test]
    async fn an_immediate_answer_arms_no_timer() {
        let ready: StoreFuture<u8> = Box::pin(async { Ok(7) });
        let mut bounded = Bounded::new(ready, Duration::from_millis(50));
        assert_eq!(futures_poll(&mut bounded), Poll::Ready(7));
        assert!(bounded.timer.is_none());
    }

    fn futures_poll(bounded: &mut Bounded<u8>) -> Poll<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        Pin::new(bounded)
            .poll(&mut cx)
            .map(|r| r.unwrap_or_default())
    }
}
