//! A log the test can read back: what an application's log would show.

use std::io;
use std::sync::{Arc, Mutex};

/// A writer into a shared buffer, for `tracing_subscriber::fmt`'s
/// `with_writer`: clones share one buffer, so the test keeps one and hands
/// the subscriber the others.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use timeline_tests::log::Buffer;
///
/// let buffer = Buffer::default();
/// let writer = buffer.clone();
/// let subscriber = tracing_subscriber::registry().with(
///     tracing_subscriber::fmt::layer()
///         .with_writer(move || writer.clone())
///         .with_ansi(false),
/// );
/// tracing::subscriber::with_default(subscriber, || tracing::info!("handled"));
/// assert!(buffer.text().contains("handled"));
/// ```
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far.
    ///
    /// # Panics
    ///
    /// When what was written is not UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
