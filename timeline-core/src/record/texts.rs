//! What a start brings to the slot: its category and detail, prepared
//! before the lock, as `&'static str`s in registers on the common path or
//! as [`Texts`] with an [`Extra`] on the general one.

use std::borrow::Cow;
use std::sync::Arc;

use super::action::{Extra, Outcome};
use super::detail;
use super::slots::{Placed, Slot};
use crate::overlap::ActionName;

/// A slot's strings and extra, made ready before the lock (building them
/// may allocate) and moved into the slot under it.
pub(super) struct Texts {
    static_category: &'static str,
    detail: Cow<'static, str>,
    extra: Option<Arc<Extra>>,
}

impl Texts {
    /// A static category and nothing else: what most actions are.
    #[inline]
    pub(super) fn fixed(category: &'static str, detail: Cow<'static, str>) -> Texts {
        Texts {
            static_category: category,
            detail,
            extra: None,
        }
    }

    /// Any strings, outcome and backtrace: an [`Extra`] unless the category
    /// is static and there is nothing else.
    pub(super) fn new(named: ActionName, outcome: Outcome, backtrace: Option<Arc<str>>) -> Texts {
        match named.category {
            Cow::Borrowed(category) if outcome == Outcome::Ok && backtrace.is_none() => {
                Texts::fixed(category, named.detail)
            }
            category => Texts {
                static_category: "",
                detail: named.detail,
                extra: Some(Arc::new(Extra {
                    category,
                    outcome,
                    backtrace,
                })),
            },
        }
    }

    /// The heap bytes they hold.
    #[inline]
    pub(super) fn heap_bytes(&self) -> usize {
        detail::heap_bytes(&self.detail) + Slot::extra_bytes(self.extra.as_ref())
    }

    /// Their category and detail, for an error to keep. Takes them by
    /// value: a reference to them would keep them in memory on the common
    /// path too, and copying them from there into the slot stalls.
    #[inline]
    pub(super) fn into_named(self) -> ActionName {
        let category = match self.extra {
            None => Cow::Borrowed(self.static_category),
            // Not yet shared with a snapshot: moved, not copied.
            Some(extra) => Arc::try_unwrap(extra)
                .map_or_else(|shared| shared.category.clone(), |extra| extra.category),
        };
        ActionName {
            category,
            detail: self.detail,
        }
    }

    /// Their category and detail cut as errors and violations keep them.
    pub(super) fn excerpt(&self) -> ActionName {
        detail::excerpt(self.static_category, &self.detail, self.extra.as_ref())
    }

    /// A slot of them.
    #[inline]
    pub(super) fn into_slot(self, at: Placed, end_seq: u32) -> Slot {
        Slot {
            static_category: self.static_category,
            detail: self.detail,
            call_site: at.call_site,
            start_ns: at.start_ns,
            end_ns: at.end_ns,
            end_seq,
            nested: at.nested,
            concurrent: at.concurrent,
            extra: self.extra,
        }
    }
}

/// What a start stores as a slot's strings: [`Texts`], or two static
/// strings that stay in registers until they are written into the slot.
///
/// Where the start is not inlined into its caller (an application calls it
/// from many places), `Texts` passed on to the cold branches lived on the
/// stack: it was copied from there into a slot built on the stack, which
/// was copied into the chunk, and reading back the halves of that slot
/// stalled store forwarding. Static strings reach the cold branches only
/// when one is taken.
pub(super) trait SlotTexts {
    /// The heap bytes the slot will hold besides itself.
    fn heap_bytes(&self) -> usize;
    fn into_slot(self, at: Placed, end_seq: u32) -> Slot;
    /// For the rare branches: refused, concurrent, not stored.
    fn into_texts(self) -> Texts;
}

impl SlotTexts for Texts {
    #[inline(always)]
    fn heap_bytes(&self) -> usize {
        Texts::heap_bytes(self)
    }

    #[inline(always)]
    fn into_slot(self, at: Placed, end_seq: u32) -> Slot {
        Texts::into_slot(self, at, end_seq)
    }

    #[inline(always)]
    fn into_texts(self) -> Texts {
        self
    }
}

/// A static category and detail, stored as they are.
#[derive(Clone, Copy)]
pub(super) struct StaticTexts {
    pub(super) category: &'static str,
    pub(super) detail: &'static str,
}

impl SlotTexts for StaticTexts {
    #[inline(always)]
    fn heap_bytes(&self) -> usize {
        0
    }

    #[inline(always)]
    fn into_slot(self, at: Placed, end_seq: u32) -> Slot {
        // Built here, the `Texts` never leaves registers.
        self.into_texts().into_slot(at, end_seq)
    }

    #[inline(always)]
    fn into_texts(self) -> Texts {
        Texts::fixed(self.category, Cow::Borrowed(self.detail))
    }
}
