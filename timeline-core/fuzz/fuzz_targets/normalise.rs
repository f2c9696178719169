//! The statement normaliser on arbitrary input: it must not panic, must not
//! grow its input more than twice over, and must be idempotent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use timeline_core::__hooks::normalise;

fuzz_target!(|data: &[u8]| {
    // Statements are `&str`: invalid UTF-8 cannot reach the normaliser.
    let Ok(statement) = std::str::from_utf8(data) else {
        return;
    };
    let once = normalise(statement);
    assert!(
        once.len() <= 2 * statement.len() + 16,
        "{statement:?} grew to {once:?}"
    );
    assert_eq!(normalise(&once), once, "normalising {statement:?} twice");
});
