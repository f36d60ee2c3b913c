//! `sv`: runit's control client. It talks to runsv only through files in
//! each service's `supervise/` directory: `ok` (is a runsv alive?),
//! `status` (the 20-byte record) and `control` (command bytes).
//!
//! Called by any name other than `sv` it is an LSB init script for the
//! service of that name.

mod command;
mod getopt;
mod session;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The `sv` program: argv in, exit status out.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<Vec<u8>> = argv.into_iter().map(OsStringExt::into_vec).collect();
    session::run(argv)
}
