//! The runit face of braid: service directories, the `supervise/` mirror and
//! the `runsvdir`, `runsv`, `sv`, `chpst` and `svlogd` programs.

use std::ffi::OsString;

/// A program of this face: takes the whole argv (argv[0] included) and
/// returns the process exit status.
pub type Personality = fn(Vec<OsString>) -> i32;

/// The program called `name`, if this face has one.
pub fn personality(name: &str) -> Option<Personality> {
    let _ = name;
    None
}
