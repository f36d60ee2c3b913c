//! braid's `chpst` and the programs it also is by name: `envdir`,
//! `envuidgid`, `pgrphack`, `setuidgid`, `setlock`, `softlimit`.
//!
//! Everything is done in the calling process and ends in exec; output and
//! exit codes are those of Debian's runit 2.1.2.

mod envdir;
mod exec;
mod failure;
pub(crate) mod getopt;
mod limits;
mod lock;
mod options;
mod personality;
pub(crate) mod scan;
mod uidgid;

use envdir::SubdirPolicy;
use exec::EnvEdits;
use failure::Failure;
use nix::errno::Errno;
use std::convert::Infallible;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Entry point for every name this program answers to.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<Vec<u8>> = argv.into_iter().map(OsStringExt::into_vec).collect();
    match run(&argv) {
        Ok(never) => match never {},
        Err(f) => {
            let _ = nix::unistd::write(std::io::stderr(), &f.text);
            f.code
        }
    }
}

/// An envdir read as `chpst -e` (`fatal_subdirs` false) or `envdir`
/// (true) reads it: the edits in order (`NAME=value`, or `NAME` to remove),
/// or the exit code and message. For the property tests, via
/// [`crate::fuzzing`].
pub(crate) fn read_envdir(dir: &[u8], fatal_subdirs: bool) -> Result<Vec<Vec<u8>>, (i32, Vec<u8>)> {
    let policy = if fatal_subdirs {
        SubdirPolicy::Fatal
    } else {
        SubdirPolicy::Skip { verbose: false }
    };
    let mut edits = EnvEdits::default();
    envdir::read(dir, &mut edits, policy).map_err(|f| (f.code, f.text))?;
    Ok(edits.entries().to_vec())
}

/// The program name as runit shows it: argv[0]'s basename with one leading
/// `d` removed (so `dsetlock` is `setlock`).
fn progname(argv0: &[u8]) -> &[u8] {
    let base = getopt::basename(argv0);
    base.strip_prefix(b"d").unwrap_or(base)
}

fn run(argv: &[Vec<u8>]) -> Result<Infallible, Failure> {
    let name = progname(argv.first().map_or(&[][..], |a| a));
    match name {
        b"setuidgid" => personality::setuidgid(argv, name),
        b"envuidgid" => personality::envuidgid(argv, name),
        b"envdir" => personality::envdir(argv, name),
        b"pgrphack" => personality::pgrphack(argv, name),
        b"setlock" => personality::setlock(argv, name),
        b"softlimit" => personality::softlimit(argv, name),
        _ => chpst(argv, name),
    }
}

/// chpst proper, in runit's order of operations.
fn chpst(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let o = options::parse(argv, name)?;
    let mut edits = EnvEdits::default();
    if o.new_session {
        let _ = nix::unistd::setsid();
    }
    if let Some(dir) = &o.env_dir {
        envdir::read(dir, &mut edits, SubdirPolicy::Skip { verbose: o.verbose })?;
    }
    if let Some(root) = &o.root {
        nix::unistd::chdir(std::ffi::OsStr::from_bytes(root))
            .map_err(|e| Failure::sys(&[b"unable to change directory", root], e))?;
        nix::unistd::chroot(".")
            .map_err(|e| Failure::sys(&[b"unable to change root directory"], e))?;
    }
    if o.nice != 0 {
        set_nice(o.nice)?;
    }
    if let Some(spec) = &o.env_user {
        personality::env_credentials(spec, true, &mut edits)?;
    }
    if let Some(spec) = &o.set_user {
        personality::set_credentials(spec, true)?;
    }
    if let Some((file, wait)) = &o.lock {
        lock::take(file, *wait, lock::OnFailure::Fatal)?;
    }
    for (wanted, fd, what) in [
        (o.close_stdin, 0, &b"unable to close stdin"[..]),
        (o.close_stdout, 1, b"unable to close stdout"),
        (o.close_stderr, 2, b"unable to close stderr"),
    ] {
        if wanted {
            nix::unistd::close(fd).map_err(|e| Failure::sys(&[what], e))?;
        }
    }
    o.limits.apply()?;
    let file = &o.program[0];
    let mut args = o.program.clone();
    if let Some(argv0) = &o.argv0 {
        args[0] = argv0.clone();
    }
    let e = exec::run(file, &args, &edits);
    Err(Failure::sys(&[b"unable to run", &args[0]], e))
}

/// `nice(inc)`; -1 is only an error if errno says so.
fn set_nice(inc: i64) -> Result<(), Failure> {
    Errno::clear();
    // SAFETY: nice(2) has no memory-safety preconditions. runit passes the
    // value as a C int, truncating.
    let r = unsafe { nix::libc::nice(inc as nix::libc::c_int) };
    if r == -1 && Errno::last_raw() != 0 {
        return Err(Failure::sys(&[b"unable to set nice level"], Errno::last()));
    }
    Ok(())
}
