//! Cross-crate property and reference tests live in `tests/tests/`.
