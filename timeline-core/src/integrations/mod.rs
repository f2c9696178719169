//! Integrations with other crates, each behind a cargo feature of the same
//! name, so the default build pulls in none of them.

#[cfg(feature = "diesel")]
pub mod diesel;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;
#[cfg(feature = "tower")]
pub mod tower;
#[cfg(feature = "tower")]
#[cfg(feature = "tracing")]
pub mod tracing;
