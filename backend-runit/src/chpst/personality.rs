//! The daemontools-style programs chpst also is, chosen by argv[0], and the
//! credential steps they share with chpst's `-u`/`-U`.

use super::envdir::{self, SubdirPolicy};
use super::exec::{self, EnvEdits};
use super::failure::Failure;
use super::getopt::{problem_line, GetOpt, Step};
use super::limits::{Limit, Limits};
use super::lock::{self, OnFailure};
use super::scan::whole_ulong;
use super::uidgid::{self, LookupError, UidGids};
use std::convert::Infallible;

const USAGE_ACCOUNT: &[u8] = b" account child";
const USAGE_ENVDIR: &[u8] = b" dir child";
const USAGE_PGRPHACK: &[u8] = b" child";
const USAGE_SETLOCK: &[u8] = b" [ -nNxX ] file program [ arg ... ]";
const USAGE_SOFTLIMIT: &[u8] = b" [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes] \
[-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes] [-s stackbytes] \
[-t cpusecs] child";

/// Looks up credentials: `extended` is chpst's `[:]user[:group...]`
/// syntax, otherwise an account name only.
fn lookup(spec: &[u8], extended: bool) -> Result<UidGids, Failure> {
    let found = if extended {
        uidgid::spec(spec)
    } else {
        uidgid::account(spec)
    };
    found.map_err(|e| match (e, extended) {
        _ if extended && spec.first() == Some(&b':') => {
            Failure::plain(b"invalid uid/gids", &spec[1..])
        }
        (LookupError::System(e), true) => {
            Failure::sys(&[b"unable to get password/group file entry"], e)
        }
        (LookupError::System(e), false) => Failure::sys(&[b"unable to get password file entry"], e),
        (LookupError::NotFound, true) => Failure::plain(b"unknown user/group", spec),
        (LookupError::NotFound, false) => Failure::plain(b"unknown account", spec),
    })
}

/// `-u` / setuidgid: supplementary groups become exactly the gid list.
pub(super) fn set_credentials(spec: &[u8], extended: bool) -> Result<(), Failure> {
    let ids = lookup(spec, extended)?;
    nix::unistd::setgroups(&ids.gids).map_err(|e| Failure::sys(&[b"unable to setgroups"], e))?;
    nix::unistd::setgid(ids.gids[0]).map_err(|e| Failure::sys(&[b"unable to setgid"], e))?;
    nix::unistd::setuid(ids.uid).map_err(|e| Failure::sys(&[b"unable to setuid"], e))?;
    Ok(())
}

/// `-U` / envuidgid: `GID` and `UID` for the program's environment.
pub(super) fn env_credentials(
    spec: &[u8],
    extended: bool,
    edits: &mut EnvEdits,
) -> Result<(), Failure> {
    let ids = lookup(spec, extended)?;
    edits.set(b"GID", Some(ids.gids[0].as_raw().to_string().as_bytes()));
    edits.set(b"UID", Some(ids.uid.as_raw().to_string().as_bytes()));
    Ok(())
}

/// Execs `argv[0]` with `edits`; on failure the runit message.
fn exec(argv: &[Vec<u8>], edits: &EnvEdits) -> Failure {
    let e = exec::run(&argv[0], argv, edits);
    Failure::sys(&[b"unable to run", &argv[0]], e)
}

/// The personality's operands after argv[0], at least `n` of them, or usage.
fn operands<'a>(
    argv: &'a [Vec<u8>],
    n: usize,
    name: &[u8],
    usage: &[u8],
) -> Result<&'a [Vec<u8>], Failure> {
    let rest = argv.get(1..).unwrap_or_default();
    if rest.len() < n {
        return Err(Failure::usage(Vec::new(), name, usage));
    }
    Ok(rest)
}

pub(super) fn setuidgid(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let rest = operands(argv, 2, name, USAGE_ACCOUNT)?;
    set_credentials(&rest[0], false)?;
    Err(exec(&rest[1..], &EnvEdits::default()))
}

pub(super) fn envuidgid(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let rest = operands(argv, 2, name, USAGE_ACCOUNT)?;
    let mut edits = EnvEdits::default();
    env_credentials(&rest[0], false, &mut edits)?;
    Err(exec(&rest[1..], &edits))
}

pub(super) fn envdir(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let rest = operands(argv, 2, name, USAGE_ENVDIR)?;
    let mut edits = EnvEdits::default();
    envdir::read(&rest[0], &mut edits, SubdirPolicy::Fatal)?;
    Err(exec(&rest[1..], &edits))
}

pub(super) fn pgrphack(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let rest = operands(argv, 1, name, USAGE_PGRPHACK)?;
    let _ = nix::unistd::setsid();
    Err(exec(rest, &EnvEdits::default()))
}

/// `setlock [-nNxX] file program`: runit's `-n` waits, `-N` (default) does
/// not; `-x` turns every failure into a quiet exit 0.
pub(super) fn setlock(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    let usage = |before: Vec<u8>| Failure::usage(before, name, USAGE_SETLOCK);
    let (mut wait, mut quiet) = (false, false);
    let mut g = GetOpt::new();
    loop {
        match g.next(argv, b"nNxX") {
            Step::Done => break,
            Step::Opt(b'n', _) => wait = true,
            Step::Opt(b'N', _) => wait = false,
            Step::Opt(b'x', _) => quiet = true,
            Step::Opt(_, _) => quiet = false,
            step => return Err(usage(problem_line(&argv[0], &step))),
        }
    }
    let rest = argv.get(g.index()..).unwrap_or_default();
    if rest.len() < 2 {
        return Err(usage(Vec::new()));
    }
    let on_failure = if quiet {
        OnFailure::ExitZero
    } else {
        OnFailure::Fatal
    };
    lock::take(&rest[0], wait, on_failure)?;
    let failed = exec(&rest[1..], &EnvEdits::default());
    Err(if quiet { Failure::silent(0) } else { failed })
}

pub(super) fn softlimit(argv: &[Vec<u8>], name: &[u8]) -> Result<Infallible, Failure> {
    // A bad number shows chpst's own usage text, as runit does.
    let value = |v: &[u8]| -> Result<Limit, Failure> {
        if v == b"=" {
            return Ok(Limit::Hard);
        }
        whole_ulong(v)
            .map(Limit::from_number)
            .ok_or_else(|| Failure::usage(Vec::new(), name, super::options::USAGE))
    };
    let mut limits = Limits::default();
    let mut g = GetOpt::new();
    loop {
        let step = g.next(argv, b"a:c:d:f:l:m:o:p:r:s:t:");
        let (c, v) = match step {
            Step::Done => break,
            Step::Opt(c, v) => (c, v.unwrap_or_default()),
            _ => {
                let before = problem_line(&argv[0], &step);
                return Err(Failure::usage(before, name, USAGE_SOFTLIMIT));
            }
        };
        let l = value(v)?;
        match c {
            b'a' => limits.address_space = l,
            b'c' => limits.core = l,
            b'd' => limits.data = l,
            b'f' => limits.file_size = l,
            b'l' => limits.memlock = l,
            b'm' => limits.set_memory(l),
            b'o' => limits.open_files = l,
            b'p' => limits.processes = l,
            b'r' => limits.resident = l,
            b's' => limits.stack = l,
            _ => limits.cpu = l,
        }
    }
    let rest = argv.get(g.index()..).unwrap_or_default();
    if rest.is_empty() {
        return Err(Failure::usage(Vec::new(), name, USAGE_SOFTLIMIT));
    }
    limits.apply()?;
    Err(exec(rest, &EnvEdits::default()))
}
