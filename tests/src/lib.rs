//! Cross-crate property and reference tests live in `tests/tests/` (half-precision consistency now;
//! reference fixtures from an independent framework with issue 8).
