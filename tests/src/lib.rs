//! Helpers for braid's end-to-end tests: find the built binary and the real
//! peer programs.
