//! Hashing a request body on a thread of its own while the same bytes stream on to storage.
//!
//! A push's body passes three stages: the request task reads it from the socket, storage's
//! blocking thread writes it, and SHA-256 digests it — the largest of the three (docs/perf/).
//! Hashing inline on the request task made reading and hashing one serial stage; here the body's
//! chunks (reference-counted, not copied) are gathered into batches of about 1 MiB and handed to
//! a blocking thread, so on two cores reading, writing and hashing overlap. A body that ends
//! before its first full batch — a config, a small layer, a manifest-sized blob — is hashed
//! on the request task at the end: a thread hand-off would cost more than it saves.
//!
//! At most `QUEUED` batches wait for the hashing thread; past that the body is not read further
//! until it catches up, so a slow hash bounds memory rather than growing it.

use berth_oci::Hasher;
use berth_storage::ByteStream;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

/// Bytes gathered before a batch goes to the hashing thread.
const BATCH: usize = 1 << 20;
/// Batches waiting for the hashing thread at most.
const QUEUED: usize = 4;

enum Where {
    /// Not yet a full batch: the hasher is here, batch not hashed yet.
    Here(Hasher),
    /// On the hashing thread.
    Thread {
        tx: PollSender<Vec<Bytes>>,
        join: JoinHandle<Hasher>,
    },
    /// Taken by `HashResult::finish`, or lost to a panic.
    Gone,
}

struct State {
    at: Where,
    batch: Vec<Bytes>,
    batched: usize,
    /// A full batch the thread has no room for yet.
    waiting: Option<Vec<Bytes>>,
    /// The body has yielded its last chunk (it is not polled again).
    inner_done: bool,
    /// Every byte is hashed or handed to the thread.
    ended: bool,
}

/// The hash of what went through a `hashed` stream, once it has ended.
pub(crate) struct HashResult(Arc<Mutex<State>>);

/// Wraps `stream` so that every byte it yields is also hashed by `hasher` (which may already hold
/// earlier bytes of the same blob). Read the hash with `HashResult::finish` after the stream has
/// ended.
pub(crate) fn hashed(stream: ByteStream, hasher: Hasher) -> (ByteStream, HashResult) {
    let state = Arc::new(Mutex::new(State {
        at: Where::Here(hasher),
        batch: Vec::new(),
        batched: 0,
        waiting: None,
        inner_done: false,
        ended: false,
    }));
    let s = Hashed {
        inner: stream,
        state: state.clone(),
    };
    (Box::pin(s), HashResult(state))
}

impl HashResult {
    /// The hasher after every byte the stream yielded, or `None` when the stream did not end
    /// (the body failed or was dropped early): then its hash means nothing.
    pub(crate) async fn finish(self) -> Option<Hasher> {
        let at = {
            let mut st = self.0.lock().ok()?;
            if !st.ended {
                return None;
            }
            std::mem::replace(&mut st.at, Where::Gone)
        };
        match at {
            Where::Here(h) => Some(h),
            Where::Thread { tx, join } => {
                drop(tx);
                join.await.ok()
            }
            Where::Gone => None,
        }
    }
}

struct Hashed {
    inner: ByteStream,
    state: Arc<Mutex<State>>,
}

impl State {
    /// Hands the waiting batch to the thread, starting it with the first one.
    fn poll_hand_off(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(batch) = self.waiting.take() else {
            return Poll::Ready(());
        };
        if let Where::Here(_) = self.at
            && let Where::Here(mut h) = std::mem::replace(&mut self.at, Where::Gone)
        {
            let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(QUEUED);
            let join = tokio::task::spawn_blocking(move || {
                while let Some(batch) = rx.blocking_recv() {
                    for chunk in batch {
                        h.update(&chunk);
                    }
                }
                h
            });
            self.at = Where::Thread {
                tx: PollSender::new(tx),
                join,
            };
        }
        let Where::Thread { tx, .. } = &mut self.at else {
            return Poll::Ready(());
        };
        match tx.poll_reserve(cx) {
            Poll::Pending => {
                self.waiting = Some(batch);
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                let _ = tx.send_item(batch);
                Poll::Ready(())
            }
            // The thread is gone (it panicked): `finish` reports no hash.
            Poll::Ready(Err(_)) => Poll::Ready(()),
        }
    }

    /// The end of the body: whatever is gathered is hashed, here or on the thread.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.poll_hand_off(cx));
        if self.ended {
            return Poll::Ready(());
        }
        let batch = std::mem::take(&mut self.batch);
        match &mut self.at {
            Where::Here(h) => {
                for chunk in &batch {
                    h.update(chunk);
                }
            }
            Where::Thread { .. } if !batch.is_empty() => {
                self.waiting = Some(batch);
                // If the thread has no room yet, the next poll hands it over.
                ready!(self.poll_hand_off(cx));
            }
            _ => {}
        }
        self.ended = true;
        Poll::Ready(())
    }
}

impl Stream for Hashed {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Ok(mut st) = this.state.lock() else {
            return Poll::Ready(Some(Err(std::io::Error::other("hash state poisoned"))));
        };
        // Back-pressure: no further bytes until the thread took the last full batch.
        ready!(st.poll_hand_off(cx));
        if st.inner_done {
            ready!(st.poll_end(cx));
            return Poll::Ready(None);
        }
        match ready!(this.inner.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                st.batched += chunk.len();
                st.batch.push(chunk.clone());
                if st.batched >= BATCH {
                    st.batched = 0;
                    st.waiting = Some(std::mem::take(&mut st.batch));
                    // Try now; if the thread is busy, the next poll waits for it.
                    let _ = st.poll_hand_off(cx);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                st.inner_done = true;
                ready!(st.poll_end(cx));
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Algorithm;
    use futures::StreamExt;

    async fn digest_through(chunks: Vec<Vec<u8>>, prefix: &[u8]) -> String {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(prefix);
        let body: ByteStream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        )
        .boxed();
        let (mut s, result) = hashed(body, h);
        // A slow consumer, as storage can be.
        while let Some(c) = s.next().await {
            c.expect("chunk");
            tokio::task::yield_now().await;
        }
        result.finish().await.expect("ended").finish().to_string()
    }

    fn expected(all: &[u8]) -> String {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(all);
        h.finish().to_string()
    }

    /// Small bodies (hashed here), large ones (hashed on the thread, with more batches than the
    /// queue holds), chunk sizes that straddle batch edges, and a resumed hasher all give the
    /// digest of exactly the bytes that went through, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_digest_is_of_every_byte_in_order_however_the_body_is_cut() {
        for (chunk, count) in [
            (7usize, 3usize),
            (1000, 1),
            (BATCH, 1),
            (BATCH - 1, 3),
            (64 << 10, 200),
            (3 << 20, 7),
        ] {
            let chunks: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    (0..chunk)
                        .map(|j| (i * 31 + j * 7) as u8)
                        .collect::<Vec<u8>>()
                })
                .collect();
            let all: Vec<u8> = [b"prefix".to_vec(), chunks.concat()].concat();
            assert_eq!(
                digest_through(chunks, b"prefix").await,
                expected(&all),
                "{count} chunks of {chunk}"
            );
        }
        assert_eq!(digest_through(vec![], b"").await, expected(b""));
    }

    /// A body that fails or is dropped before its end has no hash to give.
    #[tokio::test]
    async fn a_body_that_did_not_end_has_no_hash() {
        let body: ByteStream = futures::stream::iter(vec![
            Ok(Bytes::from(vec![1u8; 2 << 20])),
            Err(std::io::Error::other("reset")),
        ])
        .boxed();
        let (mut s, result) = hashed(body, Hasher::new(Algorithm::Sha256));
        assert!(s.next().await.expect("first").is_ok());
        assert!(s.next().await.expect("second").is_err());
        drop(s);
        assert!(result.finish().await.is_none());
    }
}
