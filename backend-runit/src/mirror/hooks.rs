//! `control/X` hooks: executables in a service's `control/` directory that
//! customise what a control letter does. runsv runs one synchronously, as
//! `control/X` in the service directory, with its stdout on the log pipe
//! when there is a logger; exit 0 means "handled", and the signal the
//! letter stands for is then not sent.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::errstr::io_errstr;
use crate::service_dir::hook_path;

/// What running a hook gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// There is no such hook (or it lacks the owner-execute bit).
    Absent,
    /// It ran and exited with this code (111 when it could not be run).
    Ran(i32),
}

impl Hook {
    /// Whether the hook handled the command (ran and exited 0).
    pub fn handled(self) -> bool {
        self == Hook::Ran(0)
    }
}

/// Runs `control/<letter>` of the service directory `dir` if runsv would,
/// waiting for it. `label` is runsv's name for the directory in messages;
/// `stdout` the log pipe, if the service has a logger.
pub fn run(dir: &Path, label: &str, letter: char, stdout: Option<File>) -> Hook {
    let path = hook_path(dir, letter);
    match path.metadata() {
        Ok(meta) if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0 => {}
        Ok(_) => return Hook::Absent,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Hook::Absent,
        Err(e) => {
            eprintln!(
                "runsv {label}: warning: unable to stat control/{letter}: {}",
                io_errstr(&e)
            );
            return Hook::Absent;
        }
    }
    let mut cmd = Command::new(&path);
    cmd.arg0(format!("control/{letter}")).current_dir(dir);
    if let Some(out) = stdout {
        cmd.stdout(Stdio::from(out));
    }
    // The runtime reaps children only between turns; waiting here, inside
    // a handler, collects this one first.
    match cmd.spawn().and_then(|mut child| child.wait()) {
        Ok(status) => Hook::Ran(status.code().unwrap_or(111)),
        Err(e) => {
            // runsv's child prints this (with a literal `?`) and exits 111.
            eprintln!(
                "runsv {label}: fatal: unable to run control/?: {}",
                io_errstr(&e)
            );
            Hook::Ran(111)
        }
    }
}

/// A writable copy of the log pipe, taken from the running service's
/// stdout: the runtime owns the pipe and does not hand it out.
pub fn log_pipe_of(pid: u32) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/fd/1"))
        .ok()
}
