//! braid's engine: the service model, the dependency-aware state machine and
//! the event loop that runs it. Nothing here knows runit or dinit.

pub mod engine;
pub mod runtime;
pub mod spec;
pub mod text;
