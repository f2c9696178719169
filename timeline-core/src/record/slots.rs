//! Where a timeline keeps its actions: compact slots in chunks that never
//! move, so storing the thousandth action copies none of the others.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;

use super::action::{Action, Extra, Outcome};
use super::detail::excerpt;
use crate::overlap::ActionName;

/// The end of an action that has not finished.
pub(super) const UNFINISHED: u64 = u64::MAX;

/// `Inner::open_end` while the open non-nesting action runs.
pub(super) const RUNNING: u64 = u64::MAX;

/// One stored action, in 80 bytes. What most actions lack — an owned
/// category, an outcome other than `Ok`, a backtrace — lives in [`Extra`].
pub(super) struct Slot {
    /// The category when there is no `extra`; else empty, and the category
    /// is the extra's. Categories are nearly always static: keeping them as
    /// a `&str` saves a branch and a drop per slot.
    pub(super) static_category: &'static str,
    /// Often owned (SQL from a driver): kept here, so that it costs no
    /// allocation besides its own.
    pub(super) detail: Cow<'static, str>,
    /// Where the action was started or recorded, when known without a
    /// backtrace: a pointer into the binary, free to keep.
    pub(super) call_site: Option<&'static Location<'static>>,
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    /// For a nesting action: how many slots existed when it finished, so its
    /// `-stop` marker comes after exactly those in the flat OOPS form.
    pub(super) end_seq: u32,
    pub(super) nested: bool,
    /// Stored although it overlapped an unfinished non-nesting action: it
    /// runs beside the sequence, on a lane of its own.
    pub(super) concurrent: bool,
    /// Shared with the snapshots of the action: copying one is cheap.
    pub(super) extra: Option<Arc<Extra>>,
}

/// Where and how a slot is stored, besides its strings.
pub(super) struct Placed {
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    pub(super) nested: bool,
    pub(super) concurrent: bool,
    pub(super) call_site: Option<&'static Location<'static>>,
}

impl Slot {
    /// What a new chunk is filled with: no text, nothing to drop.
    const VACANT: Slot = Slot {
        static_category: "",
        detail: Cow::Borrowed(""),
        call_site: None,
        start_ns: 0,
        end_ns: 0,
        end_seq: 0,
        nested: false,
        concurrent: false,
        extra: None,
    };

    /// Whether the slot owns memory: an owned detail, or an extra.
    fn owns_memory(&self) -> bool {
        matches!(self.detail, Cow::Owned(_)) || self.extra.is_some()
    }

    #[inline]
    pub(super) fn category(&self) -> &str {
        self.extra
            .as_ref()
            .map_or(self.static_category, |extra| &extra.category)
    }

    /// The category and detail cut as errors and violations keep them.
    pub(super) fn excerpt(&self) -> ActionName {
        excerpt(self.static_category, &self.detail, self.extra.as_ref())
    }

    /// A snapshot of the slot as of `as_of`.
    #[inline]
    pub(super) fn action(&self, as_of: u64) -> Action {
        let finished = self.is_finished();
        Action {
            static_category: self.static_category,
            detail: self.detail.clone(),
            start_ns: self.start_ns,
            duration_ns: if finished { self.end_ns } else { as_of }.saturating_sub(self.start_ns),
            finished,
            nested: self.nested,
            concurrent: self.concurrent,
            call_site: self.call_site,
            extra: self.extra.clone(),
        }
    }

    /// Sets the outcome and returns the heap bytes that added.
    pub(super) fn set_outcome(&mut self, outcome: Outcome) -> usize {
        if outcome == Outcome::Ok && self.extra.is_none() {
            return 0;
        }
        let added = if self.extra.is_none() { EXTRA_BYTES } else { 0 } + outcome_bytes(&outcome);
        let category = self.static_category;
        let extra = self.extra.get_or_insert_with(|| {
            Arc::new(Extra {
                category: Cow::Borrowed(category),
                outcome: Outcome::Ok,
                backtrace: None,
            })
        });
        Arc::make_mut(extra).outcome = outcome;
        added
    }

    /// The heap bytes a slot holds besides itself: its extra, if any.
    #[inline]
    pub(super) fn extra_bytes(extra: Option<&Arc<Extra>>) -> usize {
        extra.map_or(0, |extra| {
            EXTRA_BYTES
                + super::detail::heap_bytes(&extra.category)
                + outcome_bytes(&extra.outcome)
                + extra
                    .backtrace
                    .as_ref()
                    .map_or(0, |b| arc_str_bytes(b.len()))
        })
    }

    pub(super) fn is_finished(&self) -> bool {
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

/// Slots in chunks of 32, 64, 128… that are allocated whole, filled with
/// vacant slots, and never reallocated.
///
/// A push overwrites the next vacant slot field by field, where it lies.
/// `Vec::push` took the slot by reference when it was not inlined (as in
/// an application that starts actions from many places), copied it from
/// the caller's stack, and reading back the halves of an 80-byte struct
/// written a field at a time stalled store forwarding.
#[derive(Default)]
pub(super) struct Slots {
    /// Every chunk is full: its slots past `len` are vacant, free for a
    /// push and owning no memory (they may hold a previous timeline's
    /// static strings).
    chunks: Vec<Vec<Slot>>,
    len: usize,
    /// The vacant slots left in the last chunk: while there are, a push
    /// allocates nothing and needs no arithmetic on chunk sizes.
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
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The bytes the next push allocates: a whole chunk when the last one
    /// is full, else nothing.
    #[inline]
    pub(super) fn bytes_to_push(&self) -> usize {
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
    /// The slot is built only once its place is known, and written there:
    /// built first and moved, it went through the stack.
    #[inline(always)]
    pub(super) fn push_with(&mut self, make: impl FnOnce() -> Slot) -> usize {
        if self.room == 0 {
            self.add_chunk();
        }
        // Always found once `room` is counted: the last chunk has `room`
        // vacant slots at its end.
        if let Some(chunk) = self.chunks.last_mut()
            && let Some(vacant) = chunk
                .len()
                .checked_sub(self.room)
                .and_then(|at| chunk.get_mut(at))
        {
            *vacant = make();
            self.out_of_order |= vacant.start_ns < self.latest_start_ns;
            self.latest_start_ns = self.latest_start_ns.max(vacant.start_ns);
        }
        self.room -= 1;
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

    pub(super) fn get(&self, index: usize) -> Option<&Slot> {
        if index >= self.len {
            return None;
        }
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get(offset)
    }

    #[inline(always)]
    pub(super) fn get_mut(&mut self, index: usize) -> Option<&mut Slot> {
        // The open action is nearly always the last one stored.
        if index == self.len.wrapping_sub(1) {
            let chunk = self.chunks.last_mut()?;
            let last = chunk.len().checked_sub(self.room + 1)?;
            return chunk.get_mut(last);
        }
        if index >= self.len {
            return None;
        }
        let (chunk, offset) = locate(index);
        self.chunks.get_mut(chunk)?.get_mut(offset)
    }

    /// Moves a finished slot's interval (a correction that narrows it):
    /// a start moved later may leave the slots out of start order.
    pub(super) fn set_interval(&mut self, index: usize, start_ns: u64, end_ns: u64) {
        let last = index + 1 == self.len;
        let Some(slot) = self.get_mut(index) else {
            return;
        };
        let moved_later = start_ns > slot.start_ns;
        slot.start_ns = start_ns;
        slot.end_ns = end_ns;
        if moved_later {
            // Only a later slot can now start before it; the last has none.
            self.out_of_order |= !last;
            self.latest_start_ns = self.latest_start_ns.max(start_ns);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks().flatten()
    }

    /// The stored slots as slices, one per chunk, in storage order: copying
    /// out a slice at a time lets the copy skip a capacity check per slot.
    pub(super) fn chunks(&self) -> impl Iterator<Item = &[Slot]> {
        self.chunks
            .iter()
            .enumerate()
            .map(|(index, chunk)| &chunk[..self.stored_in(index)])
    }

    /// How many slots of chunk `index` are stored: all but the last's room.
    fn stored_in(&self, index: usize) -> usize {
        let len = self.chunks.get(index).map_or(0, Vec::len);
        if index + 1 == self.chunks.len() {
            len - self.room
        } else {
            len
        }
    }

    /// Whether the slots, in storage order, are in start order.
    pub(super) fn in_start_order(&self) -> bool {
        !self.out_of_order
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // The smallest chunks first: they are what the next request needs
        // first, and the spare slots a thread keeps are bounded.
        let last = self.chunks.len().saturating_sub(1);
        let stored_in_last = self.stored_in(last);
        for (index, chunk) in self.chunks.drain(..).enumerate() {
            let stored = if index == last {
                stored_in_last
            } else {
                chunk.len()
            };
            spare::give(chunk, stored);
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

    /// A chunk of `len` vacant slots.
    pub(super) fn take(len: usize) -> Vec<Slot> {
        SPARE
            .try_with(|spare| {
                let mut spare = spare.try_borrow_mut().ok()?;
                let found = spare.iter().position(|chunk| chunk.len() == len)?;
                Some(spare.swap_remove(found))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let mut chunk = Vec::with_capacity(len);
                chunk.resize_with(len, || Slot::VACANT);
                chunk
            })
    }

    /// Keeps a chunk whose first `stored` slots were used, made vacant.
    pub(super) fn give(mut chunk: Vec<Slot>, stored: usize) {
        let _ = SPARE.try_with(|spare| {
            let Ok(mut spare) = spare.try_borrow_mut() else {
                return;
            };
            let kept: usize = spare.iter().map(Vec::len).sum();
            if kept + chunk.len() > MAX_SLOTS {
                return;
            }
            // A spare chunk holds no text, and so no memory but its own. A
            // slot of static strings may stay as it is: nothing reads a slot
            // past `len`, and the push that reuses it overwrites it.
            for slot in chunk.iter_mut().take(stored) {
                if slot.owns_memory() {
                    *slot = Slot::VACANT;
                }
            }
            spare.push(chunk);
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
    use super::super::texts::Texts;
    use super::*;

    fn slot(n: usize) -> Slot {
        let named = ActionName {
            category: Cow::Borrowed("c"),
            detail: Cow::Owned(n.to_string()),
        };
        let at = Placed {
            start_ns: n as u64,
            end_ns: UNFINISHED,
            nested: false,
            concurrent: false,
            call_site: None,
        };
        Texts::new(named, Outcome::Ok, None).into_slot(at, 0)
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
        assert!(slots.chunks.iter().all(|c| c.len() == c.capacity()));
        assert_eq!(slots.chunks().map(<[Slot]>::len).sum::<usize>(), 1_000);
        for n in [0, 31, 32, 500, 999] {
            assert_eq!(slots.get(n).unwrap().detail, n.to_string());
        }
        assert!(slots.get(1_000).is_none());
        let order: Vec<u64> = slots.iter().map(|s| s.start_ns).collect();
        assert_eq!(order, (0..1_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_slot_and_an_action_are_small() {
        assert_eq!(std::mem::size_of::<Slot>(), 80);
        assert_eq!(std::mem::size_of::<Action>(), 80);
    }
}
