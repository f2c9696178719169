//! The `#[timed]` attribute of `timeline-core`. Use it through
//! `timeline_core::timed`; this crate is an implementation detail.

mod args;
mod expand;
mod item;
mod valid;

use proc_macro::TokenStream;

/// Turns every call of a function into a timed action on the current
/// timeline.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::timed(args.into(), item.into()).into()
}
