//! Cross-crate tests of `timeline`: each file under `tests/` covers one
//! feature, against the public contract only. [`postgres`] gives the
//! PostgreSQL tests a schema each on the cluster `scripts/test` starts.

pub mod postgres;
