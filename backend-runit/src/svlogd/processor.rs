//! The `!command` processor: run on each rotated file with the file on
//! stdin, its replacement on stdout, and `state`/`newstate` on fds 4 and 5.

use super::logdir::{LogDir, SAVED_NAME_LEN};
use super::message::{errno_of, info, retry, warn};
use crate::errstr::errstr;
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions, Permissions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The saved name with its last letter replaced.
fn with_kind(saved: &[u8], kind: u8) -> Vec<u8> {
    let mut name = saved.to_vec();
    if let Some(last) = name.get_mut(SAVED_NAME_LEN - 1) {
        *last = kind;
    }
    name
}

/// runit's exit code of a wait status: the high byte, so a processor
/// killed by a signal counts as successful.
fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        _ => 0,
    }
}

/// Waits for `pid` and returns its runit exit code.
pub(super) fn wait_exit_code(pid: Pid, dir_name: &[u8]) -> i32 {
    retry(b"error waiting for processor", dir_name, || loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::StillAlive) => continue,
            Ok(status) => return Ok(exit_code(status)),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    })
}

/// Non-blocking reap of any child: (pid, runit exit code).
pub(super) fn reap_any() -> Option<(Pid, i32)> {
    match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) | Err(_) => None,
        Ok(status) => status.pid().map(|pid| (pid, exit_code(status))),
    }
}

struct Files {
    input: File,
    output: File,
    state: File,
    newstate: File,
}

impl LogDir {
    fn processor_files(&self) -> Result<Files, (&'static [u8], std::io::Error)> {
        let input = File::open(self.file(&self.saved))
            .map_err(|e| (&b"unable to open input for processor"[..], e))?;
        let truncate = |name: &[u8]| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(self.file(name))
        };
        let output = truncate(&with_kind(&self.saved, b't'))
            .map_err(|e| (&b"unable to open output for processor"[..], e))?;
        let state = match File::open(self.file(b"state")) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                truncate(b"state")
                    .map_err(|e| (&b"unable to create empty state for processor"[..], e))?;
                File::open(self.file(b"state"))
                    .map_err(|e| (&b"unable to open state for processor"[..], e))?
            }
            Err(e) => return Err((b"unable to open state for processor", e)),
        };
        let newstate = truncate(b"newstate")
            .map_err(|e| (&b"unable to open newstate for processor"[..], e))?;
        Ok(Files {
            input,
            output,
            state,
            newstate,
        })
    }

    /// Starts the processor on the file just rotated. False if there is no
    /// processor, one is still running, or it cannot be started.
    pub(super) fn processor_start(&mut self) -> bool {
        let Some(command) = self.config.processor.clone() else {
            return false;
        };
        if self.processor_pid.is_some() {
            warn(&[b"processor already running", b": ", &self.name]);
            return false;
        }
        if self.limits.verbose {
            info(&[b"processing: ", &self.name, b"/", &self.saved]);
        }
        let files = match self.processor_files() {
            Ok(f) => f,
            Err((what, e)) => {
                // runit's child dies with this message; the file stays .u
                let text = errstr(errno_of(&e) as i32).as_bytes();
                super::message::fatal_line(&[what, b": ", &self.name, b": ", text]);
                return false;
            }
        };
        let (state_fd, newstate_fd) = (files.state.as_raw_fd(), files.newstate.as_raw_fd());
        let mut cmd = Command::new("/bin/sh");
        cmd.arg0("sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&command))
            .current_dir(self.file(b"."))
            .stdin(Stdio::from(files.input))
            .stdout(Stdio::from(files.output));
        // SAFETY: only fcntl/dup2, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // via high copies, so neither target clobbers the other
                let state = fcntl(state_fd, FcntlArg::F_DUPFD_CLOEXEC(10))?;
                let newstate = fcntl(newstate_fd, FcntlArg::F_DUPFD_CLOEXEC(10))?;
                nix::unistd::dup2(state, 4)?;
                nix::unistd::dup2(newstate, 5)?;
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                self.processor_pid = Some(Pid::from_raw(child.id() as i32));
                true
            }
            Err(e) => {
                let text = errstr(errno_of(&e) as i32).as_bytes();
                super::message::fatal_line(&[
                    b"unable to run processor: ",
                    &self.name,
                    b": ",
                    text,
                ]);
                false
            }
        }
    }

    /// Finishes a processor run: waits for it unless `exit_code` is already
    /// known, then publishes `@X.s` and `state`, or on failure reruns it.
    /// False when the processor was restarted and must be waited for again.
    pub(super) fn processor_stop(&mut self, exit_code: Option<i32>) -> bool {
        let code = match (self.processor_pid.take(), exit_code) {
            (Some(pid), _) => wait_exit_code(pid, &self.name.clone()),
            (None, Some(code)) => code,
            (None, None) => 0,
        };
        if !self.is_open() {
            return true;
        }
        let name = self.name.clone();
        let output = self.file(&with_kind(&self.saved, b't'));
        if code != 0 {
            warn(&[b"processor failed, restart", b": ", &name]);
            let _ = std::fs::remove_file(&output);
            self.processor_start();
            return self.config.processor.is_none();
        }
        let done_name = with_kind(&self.saved, b's');
        let done = self.file(&done_name);
        retry(b"unable to rename processed", &name, || {
            std::fs::rename(&output, &done).map_err(|e| errno_of(&e))
        });
        retry(b"unable to set mode of processed", &name, || {
            std::fs::set_permissions(&done, Permissions::from_mode(0o744)).map_err(|e| errno_of(&e))
        });
        if std::fs::remove_file(self.file(&self.saved)).is_err() {
            warn(&[b"unable to unlink: ", &name, b"/", &self.saved]);
        }
        let (newstate, state) = (self.file(b"newstate"), self.file(b"state"));
        retry(b"unable to rename state", &name, || {
            std::fs::rename(&newstate, &state).map_err(|e| errno_of(&e))
        });
        if self.limits.verbose {
            info(&[b"processed: ", &name, b"/", &done_name]);
        }
        true
    }
}
