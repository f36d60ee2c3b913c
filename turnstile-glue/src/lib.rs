//! turnstile's `runit` and `dinit` backends on braid, the readiness gate, and
//! the `braid` multi-call front end.

pub mod demo;
pub mod gate;
