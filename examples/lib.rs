//! Runnable examples of `timeline`: see the `[[example]]` entries of this
//! package's manifest.
