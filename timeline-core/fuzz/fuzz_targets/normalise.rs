//! The statement normaliser never panics, stays within a linear bound and
//! is idempotent, on any input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use timeline_core::__private::normalise;

fuzz_target!(|data: &[u8]| {
    let Ok(statement) = std::str::from_utf8(data) else {
        return;
    };
    let once = normalise(statement);
    assert!(once.len() <= 2 * statement.len() + 16);
    assert_eq!(normalise(&once), once);
});
