//! The runit face of braid: service directories, the `supervise/` mirror and
//! the `runsvdir`, `runsv`, `sv`, `chpst` and `svlogd` programs.

use std::ffi::OsString;

mod chpst;
pub mod errstr;
#[doc(hidden)]
pub mod fuzzing;
mod mirror;
mod runsv;
pub mod runsvdir;
pub mod service_dir;
pub mod supervise;
mod sv;
mod svlogd;

/// A program of this face: takes the whole argv (argv[0] included) and
/// returns the process exit status.
pub type Personality = fn(Vec<OsString>) -> i32;

/// The program called `name`, if this face has one.
pub fn personality(name: &str) -> Option<Personality> {
    match name {
        // sv is an LSB init script under any other name (argv[0] decides),
        // but only `sv` itself is claimed here.
        "sv" => Some(sv::main),
        "chpst" | "envdir" | "envuidgid" | "pgrphack" | "setuidgid" | "setlock" | "softlimit" => {
            Some(chpst::main)
        }
        "svlogd" => Some(svlogd::main),
        "runsvdir" => Some(runsvdir::main),
        "runsv" => Some(runsv::main),
        _ => None,
    }
}
