//! Runnable examples of `timeline`, and the small bug tracker they serve:
//! see the `[[example]]` entries of this package's manifest.

pub mod bugs;
pub mod w3c;
pub mod web;
