//! `#[timed]` on `unsafe fn`, with and without `err`: here, because the
//! test crates of the workspace forbid `unsafe` code.

use timeline_core::{Outcome, Timeline, timed};

/// Reads the byte `p` points to.
///
/// # Safety
///
/// `p` must be valid for reads.
#[timed(category = "raw-read", detail = "{offset}")]
unsafe fn read(p: *const u8, offset: usize) -> u8 {
    unsafe { *p.add(offset) }
}

/// Reads the byte `p` points to, if it is not null.
///
/// # Safety
///
/// `p` must be null or valid for reads.
#[timed(category = "raw-read", err)]
unsafe fn checked_read(p: *const u8) -> Result<u8, String> {
    if p.is_null() {
        return Err("null pointer".to_owned());
    }
    Ok(unsafe { *p })
}

/// Written for the 2021 edition's rules: unsafe operations directly in
/// the body of an `unsafe fn`.
#[allow(unsafe_op_in_unsafe_fn)]
#[timed(category = "raw-read", err)]
unsafe fn legacy_read(p: *const u8) -> Result<u8, String> {
    Ok(*p)
}

fn main() {
    let bytes = [1_u8, 2, 3];
    let timeline = Timeline::new();
    timeline.scope(|| unsafe {
        assert_eq!(read(bytes.as_ptr(), 2), 3);
        assert_eq!(checked_read(bytes.as_ptr()), Ok(1));
        assert_eq!(checked_read(std::ptr::null()), Err("null pointer".to_owned()));
        assert_eq!(legacy_read(bytes.as_ptr()), Ok(1));
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 4);
    assert_eq!(actions[0].detail(), "2");
    assert_eq!(actions[1].outcome(), &Outcome::Ok);
    assert_eq!(actions[2].outcome(), &Outcome::Error("null pointer".into()));
    assert_eq!(actions[3].outcome(), &Outcome::Ok);
}
