//! Where a timeline keeps its actions: compact slots in chunks that never
//! move, so storing the thousandth action copies none of the others.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;

use crate::action::Outcome;

/// The end of an action that has not finished.
pub(crate) const UNFINISHED: u64 = u64::MAX;

/// One stored action. Kept small (88 bytes): what most actions lack —
/// an outcome other than `Ok`, a backtrace — lives in [`Extra`].
pub(crate) struct Slot {
    pub(crate) category: Cow<'static, str>,
    pub(crate) detail: Cow<'static, str>,
    /// Where the action was started or recorded, when known without a
    /// backtrace: a pointer into the binary, free to keep.
    pub(crate) call_site: Option<&'static Location<'static>>,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    /// For a nesting action: how many slots existed when it finished, so its
    /// `-stop` marker comes after exactly those in the flat OOPS form.
    pub(crate) end_seq: u32,
    pub(crate) nested: bool,
    /// Stored although it overlapped an unfinished non-nesting action: it
    /// runs beside the sequence, on a lane of its own.
    pub(crate) concurrent: bool,
    /// Shared with the snapshots of the action: copying one is cheap.
    pub(crate) extra: Option<Arc<Extra>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Extra {
    pub(crate) outcome: Outcome,
    pub(crate) backtrace: Option<Arc<str>>,
}

impl Slot {
    pub(crate) fn backtrace(&self) -> Option<&Arc<str>> {
        self.extra.as_ref()?.backtrace.as_ref()
    }

    /// Sets the outcome and returns the heap bytes that added.
    pub(crate) fn set_outcome(&mut self, outcome: Outcome) -> usize {
        if outcome == Outcome::Ok && self.extra.is_none() {
            return 0;
        }
        let added = if self.extra.is_none() { EXTRA_BYTES } else { 0 } + outcome_bytes(&outcome);
        Arc::make_mut(self.extra.get_or_insert_with(Arc::default)).outcome = outcome;
        added
    }

    /// The heap bytes a slot holds besides itself and its two strings.
    #[inline]
    pub(crate) fn extra_bytes(extra: Option<&Arc<Extra>>) -> usize {
        extra.map_or(0, |extra| {
            EXTRA_BYTES
                + outcome_bytes(&extra.outcome)
                + extra
                    .backtrace
                    .as_ref()
                    .map_or(0, |b| arc_str_bytes(b.len()))
        })
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.end_ns != UNFINISHED
    }
}

/// What an [`Extra`] costs on the heap, with its reference counts.
const EXTRA_BYTES: usize = std::mem::size_of::<Extra>() + 2 * std::mem::size_of::<usize>();

/// What an `Arc<str>` of `len` bytes allocates: its reference counts, the
/// text, and padding to the counts' alignment.
fn arc_str_bytes(len: usize) -> usize {
    (2 * std::mem::size_of::<usize>() + len).next_multiple_of(std::mem::align_of::<usize>())
}

fn outcome_bytes(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::Error(message) => message.capacity(),
        _ => 0,
    }
}

#[inline]
pub(crate) fn extra(outcome: Outcome, backtrace: Option<Arc<str>>) -> Option<Arc<Extra>> {
    if backtrace.is_none() && outcome == Outcome::Ok {
        None
    } else {
        Some(Arc::new(Extra { outcome, backtrace }))
    }
}

/// Slots in chunks of 32, 64, 128… that are allocated whole and never
/// reallocated.
#[derive(Default)]
pub(crate) struct Slots {
    chunks: Vec<Vec<Slot>>,
    len: usize,
    /// The slots left in the last chunk: while there are, a push allocates
    /// nothing and needs no arithmetic on chunk sizes.
    room: usize,
    /// The latest start stored, and whether every slot started no earlier
    /// than the one before it: only a `record`ed action can break the
    /// order, and a snapshot need not check it otherwise.
    latest_start_ns: u64,
    out_of_order: bool,
}

const FIRST_CHUNK: usize = 32;
/// The list of chunks is allocated once, with room for the chunks of two
/// million slots (more than `max_actions` allows by default).
const MAX_CHUNKS: usize = 16;

impl Slots {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes the next push allocates: a whole chunk when the last one
    /// is full, else nothing.
    #[inline]
    pub(crate) fn bytes_to_push(&self) -> usize {
        if self.room > 0 {
            0
        } else {
            self.bytes_of_next_chunk()
        }
    }

    #[cold]
    fn bytes_of_next_chunk(&self) -> usize {
        let chunk = self.chunks.len();
        let list = if chunk == 0 {
            MAX_CHUNKS * std::mem::size_of::<Vec<Slot>>()
        } else {
            0
        };
        list + (FIRST_CHUNK << chunk) * std::mem::size_of::<Slot>()
    }

    /// Stores the slot `make` builds and returns its index.
    ///
    /// The slot is built only once its place is known, so that it is
    /// written there directly: built first and then moved, it went through
    /// the stack, and reading back the halves of an 88-byte struct written
    /// a field at a time stalls store forwarding.
    #[inline]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> Slot) -> usize {
        if self.room == 0 {
            self.add_chunk();
        }
        self.room -= 1;
        if let Some(chunk) = self.chunks.last_mut()
            && chunk.len() < chunk.capacity()
        {
            chunk.push(make());
            if let Some(slot) = chunk.last() {
                self.out_of_order |= slot.start_ns < self.latest_start_ns;
                self.latest_start_ns = self.latest_start_ns.max(slot.start_ns);
            }
        }
        self.len += 1;
        self.len - 1
    }

    #[cfg(test)]
    fn push(&mut self, slot: Slot) -> usize {
        self.push_with(|| slot)
    }

    /// Chunk `k` holds exactly `32 << k` slots: `locate` relies on it.
    #[cold]
    fn add_chunk(&mut self) {
        let chunk = self.chunks.len();
        if chunk == 0 {
            self.chunks.reserve_exact(MAX_CHUNKS);
        }
        self.room = FIRST_CHUNK << chunk;
        self.chunks.push(spare::take(self.room));
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Slot> {
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get(offset)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Slot> {
        // The open action is nearly always the last one stored.
        if index == self.len.wrapping_sub(1) {
            return self.chunks.last_mut()?.last_mut();
        }
        let (chunk, offset) = locate(index);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks.iter().flatten()
    }

    /// The slots as slices, one per chunk, in storage order: copying out a
    /// slice at a time lets the copy skip a capacity check per slot.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[Slot]> {
        self.chunks.iter().map(Vec::as_slice)
    }

    /// Whether the slots, in storage order, are in start order.
    pub(crate) fn in_start_order(&self) -> bool {
        !self.out_of_order
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        for chunk in self.chunks.drain(..) {
            spare::give(chunk);
        }
    }
}

/// Empty chunks of finished timelines, kept per thread for the next
/// timeline: a request's storage is then neither allocated nor faulted in
/// again. Bounded, so a thread keeps at most `MAX_SLOTS` spare slots.
mod spare {
    use std::cell::RefCell;

    use super::Slot;

    const MAX_SLOTS: usize = 16 * 1024;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<Slot>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take(capacity: usize) -> Vec<Slot> {
        SPARE
            .try_with(|spare| {
                let mut spare = spare.try_borrow_mut().ok()?;
                let found = spare
                    .iter()
                    .position(|chunk| chunk.capacity() == capacity)?;
                Some(spare.swap_remove(found))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    pub(super) fn give(mut chunk: Vec<Slot>) {
        chunk.clear();
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                let kept: usize = spare.iter().map(Vec::capacity).sum();
                if kept + chunk.capacity() <= MAX_SLOTS {
                    spare.push(chunk);
                }
            }
        });
    }
}

/// The chunk and offset of slot `index`: chunk `k` holds `32 << k` slots and
/// starts at `32 * (2^k - 1)`.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    let blocks = index / FIRST_CHUNK + 1;
    let chunk = (usize::BITS - 1 - blocks.leading_zeros()) as usize;
    (chunk, index - FIRST_CHUNK * ((1 << chunk) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: usize) -> Slot {
        Slot {
            category: Cow::Borrowed("c"),
            detail: Cow::Owned(n.to_string()),
            call_site: None,
            start_ns: n as u64,
            end_ns: UNFINISHED,
            end_seq: 0,
            nested: false,
            concurrent: false,
            extra: None,
        }
    }

    #[test]
    fn chunks_double_and_indices_map_back() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(31), (0, 31));
        assert_eq!(locate(32), (1, 0));
        assert_eq!(locate(95), (1, 63));
        assert_eq!(locate(96), (2, 0));
        let mut slots = Slots::default();
        for n in 0..1_000 {
            assert_eq!(slots.push(slot(n)), n);
        }
        assert_eq!(slots.len(), 1_000);
        assert!(slots.chunks.iter().all(|c| c.len() <= c.capacity()));
        for n in [0, 31, 32, 500, 999] {
            assert_eq!(slots.get(n).unwrap().detail, n.to_string());
        }
        assert!(slots.get(1_000).is_none());
        let order: Vec<u64> = slots.iter().map(|s| s.start_ns).collect();
        assert_eq!(order, (0..1_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_slot_is_small() {
        assert!(
            std::mem::size_of::<Slot>() <= 88,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }
}
