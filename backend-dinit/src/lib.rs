//! The dinit face of braid: service descriptions, the control protocol and
//! the `dinit`, `dinitctl`, `dinit-check` and `dinit-monitor` programs.

use std::ffi::OsString;

mod check;
pub mod daemon;
pub mod description;
mod dinitctl;
mod monitor;
pub mod protocol;

/// A program of this face: takes the whole argv (argv[0] included) and
/// returns the process exit status.
pub type Personality = fn(Vec<OsString>) -> i32;

/// The program called `name`, if this face has one.
pub fn personality(name: &str) -> Option<Personality> {
    match name {
        "dinit" => Some(daemon::main),
        "dinit-check" => Some(check::main),
        "dinitctl" => Some(dinitctl::main),
        "dinit-monitor" => Some(monitor::main),
        _ => None,
    }
}
