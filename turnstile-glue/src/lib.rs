//! turnstile's `runit` and `dinit` backends on braid, the readiness gate, and
//! the `braid` multi-call front end.

pub mod backend;
pub mod demo;
pub mod gate;
pub mod inspect;
pub mod install;
pub mod pause;
pub mod update_env;
