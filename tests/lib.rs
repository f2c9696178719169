//! Cross-crate tests of `timeline`: each file under `tests/` covers one
//! feature, against the public contract only.
