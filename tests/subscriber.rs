//! The global `tracing` subscriber with the `TimelineLayer`, installed the
//! way the `integrations::tracing` documentation tells users to: a fmt
//! layer with its own filter, and the timeline layer beside it, unfiltered.
//!
//! It has to be the *global* subscriber: sqlx runs SQLite statements on
//! worker threads of its own, which see only the global one. A test binary
//! installs it once; [`install`] may be called from every test.
//!
//! ```
//! use timeline_core::Timeline;
//! use timeline_core::integrations::tracing::span_timeline;
//!
//! timeline_tests::subscriber::install();
//! timeline_tests::subscriber::install(); // once is enough, twice is harmless
//! let timeline = Timeline::new();
//! // The request span carries the timeline through `tracing`.
//! let found = timeline_tests::future::block_on(timeline_core::WithTimeline::with_timeline(
//!     async { span_timeline() },
//!     timeline.clone(),
//! ));
//! assert!(Timeline::ptr_eq(&found.unwrap(), &timeline));
//! ```

use std::sync::OnceLock;

use timeline_core::integrations::tracing::TimelineLayer;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Installs the global subscriber, once per process: a fmt layer at
/// `warn` that writes through the test harness's capture, and the
/// `TimelineLayer` with every preset.
///
/// # Panics
///
/// When another global subscriber was installed before, by other means.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::new("warn")),
            )
            .with(TimelineLayer::new())
            .init();
    });
}
