//! Bounding and filtering details before they are stored.

use std::borrow::Cow;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use std::sync::Arc;

use super::action::Extra;
use crate::overlap::ActionName;
use crate::text::{ELLIPSIS, floor_char_boundary};

thread_local! {
    /// Set while this thread runs user code for a timeline (a detail filter,
    /// a backtrace predicate): an action that code starts itself (it calls a
    /// `#[timed]` function, say) does not run it again, which would recurse
    /// until the stack overflowed.
    static IN_USER_CODE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, user code, with a panic in it contained: `None` if it panicked
/// or if this thread is already running user code for a timeline.
pub(super) fn call_user_code<R>(f: impl FnOnce() -> R) -> Option<R> {
    if IN_USER_CODE.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    IN_USER_CODE.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f)).ok();
    IN_USER_CODE.set(false);
    result
}

/// What replaces a detail whose filter panicked: the action is still kept.
pub(super) const FILTER_PANICKED: &str = "<detail filter panicked>";

/// The longest category stored, in bytes: a category is a short label
/// (`SQL-main`), and one built from request data must not hold megabytes.
pub(super) const MAX_CATEGORY_LEN: usize = 256;

/// How much of a detail a violation or an overlap error keeps: enough to
/// recognise the statement, without copying a 64 KiB one again.
pub(super) const EXCERPT_LEN: usize = 512;

/// A user function applied to every detail before it is stored.
pub(super) type DetailFilter = Box<dyn Fn(&str) -> String + Send + Sync + 'static>;

/// A user function choosing, by category and detail, the actions that get a
/// backtrace.
pub(super) type BacktracePredicate = Box<dyn Fn(&str, &str) -> bool + Send + Sync + 'static>;

/// Applies the filter (if any), then cuts the detail to at most `max_len`
/// bytes at a char boundary, ending it in `…`.
#[inline]
pub(super) fn prepare(
    detail: Cow<'static, str>,
    filter: Option<&DetailFilter>,
    max_len: usize,
) -> Cow<'static, str> {
    let detail = match filter {
        Some(filter) if !IN_USER_CODE.try_with(Cell::get).unwrap_or(true) => {
            // A broken filter must not break the program it measures.
            let filtered =
                call_user_code(|| filter(&detail)).unwrap_or_else(|| FILTER_PANICKED.to_owned());
            Cow::Owned(filtered)
        }
        _ => detail,
    };
    if detail.len() <= max_len {
        without_spare_capacity(detail)
    } else {
        Cow::Owned(truncate(&detail, max_len))
    }
}

/// Cuts a category to [`MAX_CATEGORY_LEN`].
#[inline]
pub(super) fn bound_category(category: Cow<'static, str>) -> Cow<'static, str> {
    if category.len() <= MAX_CATEGORY_LEN {
        without_spare_capacity(category)
    } else {
        Cow::Owned(truncate(&category, MAX_CATEGORY_LEN))
    }
}

/// `text` cut to at most `max_len` bytes, borrowed when it fits.
#[allow(clippy::ptr_arg)] // a borrowed `Cow` is copied for free
pub(super) fn excerpt_text(text: &Cow<'static, str>, max_len: usize) -> Cow<'static, str> {
    if text.len() <= max_len {
        text.clone()
    } else {
        Cow::Owned(truncate(text, max_len))
    }
}

/// An owned string is kept at about its length: one built in a buffer of
/// 64 KiB would otherwise hold all of it for the whole request. A little
/// slack (what `format!` leaves) is kept, which saves a reallocation per
/// action; `max_bytes` counts the capacity either way.
#[inline]
fn without_spare_capacity(text: Cow<'static, str>) -> Cow<'static, str> {
    match text {
        Cow::Owned(mut owned) if owned.capacity() - owned.len() > owned.len() / 2 + 64 => {
            owned.shrink_to_fit();
            Cow::Owned(owned)
        }
        text => text,
    }
}

/// The heap bytes a stored string holds: none for a `&'static str`.
#[inline]
#[allow(clippy::ptr_arg)] // only a `Cow` tells borrowed from owned
pub(super) fn heap_bytes(text: &Cow<'static, str>) -> usize {
    match text {
        Cow::Borrowed(_) => 0,
        Cow::Owned(owned) => owned.capacity(),
    }
}

/// The longest prefix that, with `…` appended, fits in `max_len` bytes.
fn truncate(detail: &str, max_len: usize) -> String {
    let keep = floor_char_boundary(detail, max_len.saturating_sub(ELLIPSIS.len()));
    let mut cut = String::with_capacity(keep + ELLIPSIS.len());
    cut.push_str(&detail[..keep]);
    if max_len >= ELLIPSIS.len() {
        cut.push_str(ELLIPSIS);
    }
    cut
}

#[allow(clippy::ptr_arg)] // only a `Cow` tells borrowed from owned
pub(super) fn excerpt(
    static_category: &'static str,
    detail: &Cow<'static, str>,
    extra: Option<&Arc<Extra>>,
) -> ActionName {
    match extra {
        None => excerpt_name(&Cow::Borrowed(static_category), detail),
        Some(extra) => excerpt_name(&extra.category, detail),
    }
}

/// A copy that keeps at most an excerpt of the detail: what overlap errors
/// and violations hold of an action that stays stored anyway.
#[allow(clippy::ptr_arg)] // a borrowed `Cow` is copied for free
pub(super) fn excerpt_name(category: &Cow<'static, str>, detail: &Cow<'static, str>) -> ActionName {
    ActionName {
        category: category.clone(),
        detail: excerpt_text(detail, EXCERPT_LEN),
    }
}

/// The heap bytes a name holds.
pub(super) fn name_heap_bytes(name: &ActionName) -> usize {
    heap_bytes(&name.category) + heap_bytes(&name.detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_detail_is_kept_borrowed() {
        let kept = prepare(Cow::Borrowed("SELECT 1"), None, 100);
        assert!(matches!(kept, Cow::Borrowed("SELECT 1")));
    }

    #[test]
    fn long_detail_is_cut_at_a_char_boundary_and_ends_in_ellipsis() {
        // "é" is two bytes: 8 bytes leave 5 before the 3-byte ellipsis, and a
        // cut at byte 5 would split the third "é".
        let cut = prepare(Cow::Borrowed("éééééé"), None, 8);
        assert_eq!(cut, "éé…");
        assert!(cut.ends_with(ELLIPSIS));
    }

    #[test]
    fn limit_smaller_than_the_ellipsis_gives_an_empty_detail() {
        assert_eq!(prepare(Cow::Borrowed("abcdef"), None, 2), "");
    }

    #[test]
    fn filter_runs_before_truncation() {
        let filter: DetailFilter = Box::new(|d| d.replace("secret", "?"));
        let out = prepare(Cow::Borrowed("password=secret"), Some(&filter), 12);
        assert_eq!(out, "password=?");
    }

    #[test]
    fn a_detail_prepared_inside_a_filter_is_not_filtered_again() {
        let filter: DetailFilter = Box::new(|d| {
            let inner: DetailFilter = Box::new(|d| format!("twice: {d}"));
            let nested = prepare(Cow::Owned(d.to_owned()), Some(&inner), 100);
            format!("filtered: {nested}")
        });
        let out = prepare(Cow::Borrowed("SELECT 1"), Some(&filter), 100);
        assert_eq!(out, "filtered: SELECT 1");
        // And the next detail is filtered as usual.
        let out = prepare(Cow::Borrowed("SELECT 2"), Some(&filter), 100);
        assert_eq!(out, "filtered: SELECT 2");
    }

    #[test]
    fn panicking_filter_keeps_the_action_with_a_marker() {
        let filter: DetailFilter = Box::new(|_| panic!("filter bug"));
        let out = prepare(Cow::Borrowed("SELECT 1"), Some(&filter), 100);
        assert_eq!(out, FILTER_PANICKED);
    }
}
