//! Plaintext waiting for the next flush, in wire order: bytes copied into the queue's own
//! buffer, or large bodies held by reference to the caller's immutable buffer (no copy).

use std::ops::Range;

/// The queue's own buffer keeps at most this much capacity between flushes.
const MAX_IDLE_BUF: usize = 1 << 20;

enum Seg<B> {
    Own(Range<usize>),
    Ext(B, Range<usize>),
}

/// See the module docs. `B` is the caller's buffer type (a `Vec<u8>` in tests, a Python
/// `bytes` in the binding).
pub struct OutQueue<B> {
    own: Vec<u8>,
    segs: Vec<Seg<B>>,
    len: usize,
}

impl<B> Default for OutQueue<B> {
    fn default() -> Self {
        Self {
            own: Vec::new(),
            segs: Vec::new(),
            len: 0,
        }
    }
}

impl<B> std::fmt::Debug for OutQueue<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutQueue")
            .field("len", &self.len)
            .field("segments", &self.segs.len())
            .finish()
    }
}

impl<B: AsRef<[u8]>> OutQueue<B> {
    /// Total plaintext bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `bytes` into the queue (merged with the previous copied segment).
    pub fn push_own(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.own.len();
        self.own.extend_from_slice(bytes);
        self.len += bytes.len();
        if let Some(Seg::Own(r)) = self.segs.last_mut() {
            if r.end == start {
                r.end = self.own.len();
                return;
            }
        }
        self.segs.push(Seg::Own(start..self.own.len()));
    }

    /// Queues `buf[range]` by reference (kept alive until the flush).
    pub fn push_ext(&mut self, buf: B, range: Range<usize>) {
        self.len += range.len();
        self.segs.push(Seg::Ext(buf, range));
    }

    /// Every queued piece, in order.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Own(r) => &self.own[r.clone()],
                Seg::Ext(b, r) => &b.as_ref()[r.clone()],
            })
            .collect()
    }

    /// Forgets everything (after a flush); drops references to callers' buffers.
    pub fn clear(&mut self) {
        self.segs.clear();
        self.own.clear();
        self.len = 0;
        if self.own.capacity() > MAX_IDLE_BUF {
            self.own = Vec::new();
        }
    }
}
