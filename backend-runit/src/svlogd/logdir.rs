//! One log directory: its lock, `current`, the write buffer in front of it,
//! rotation and pruning of old files.

use super::config::{self, Config};
use super::message::{errno_of, info, pause, retry, warn, warn_sys};
use super::timestamp::add_secs;
use crate::supervise::Tai64N;
use braid_core::runtime::logfile::SizeLimit;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// Output buffers of this size or more are written in chunks this big
/// (runit's `BUFFER_OUTSIZE`).
const OUTSIZE: usize = 8192;

/// Length of a rotated file's name: `@`, 24 hex digits, `.`, one letter.
pub(super) const SAVED_NAME_LEN: usize = 27;

/// Settings from the command line that every directory needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) line_max: usize,
    pub(super) buf_len: usize,
    pub(super) verbose: bool,
}

/// A log directory named on the command line.
#[derive(Debug)]
pub(super) struct LogDir {
    /// The name as given, used in messages.
    pub(super) name: Vec<u8>,
    path: PathBuf,
    /// Whether a successful open has happened (messages name the dir then).
    named: bool,
    lock: Option<Flock<File>>,
    current: Option<File>,
    pub(super) size: u64,
    pub(super) config: Config,
    /// When the timed rotation is next due.
    pub(super) rotate_at: Tai64N,
    /// The running processor, if any.
    pub(super) processor_pid: Option<Pid>,
    /// The name `current` was last rotated to (27 bytes).
    pub(super) saved: Vec<u8>,
    out: Vec<u8>,
    /// `+` or `-`: the current line goes to the log.
    pub(super) select_log: u8,
    /// `e` or `E`: the current line goes to stderr. Like runit, it keeps its
    /// value when a reread config has no patterns.
    pub(super) select_err: u8,
    pub(super) limits: Limits,
}

impl LogDir {
    pub(super) fn new(name: Vec<u8>, limits: Limits) -> LogDir {
        let path = PathBuf::from(std::ffi::OsString::from_vec(name.clone()));
        LogDir {
            name,
            path,
            named: false,
            lock: None,
            current: None,
            size: 0,
            config: Config::default(),
            rotate_at: Tai64N::now(),
            processor_pid: None,
            saved: Vec::new(),
            out: Vec::new(),
            select_log: b'+',
            select_err: 0,
            limits,
        }
    }

    /// A path inside the directory.
    pub(super) fn file(&self, name: &[u8]) -> PathBuf {
        self.path.join(std::ffi::OsStr::from_bytes(name))
    }

    /// Whether the directory is open and locked (runit: `fddir != -1`).
    pub(super) fn is_open(&self) -> bool {
        self.lock.is_some()
    }

    /// Opens, locks and configures the directory and opens `current`.
    /// Returns false (after a warning) when the directory is unusable.
    pub(super) fn open(&mut self, now: Tai64N) -> bool {
        let name = self.name.clone();
        let dir = match File::open(&self.path) {
            Ok(d) => d,
            Err(e) => {
                warn_sys(b"unable to open log directory", &name, errno_of(&e));
                return false;
            }
        };
        match dir.metadata() {
            Ok(m) if m.is_dir() => {}
            other => {
                let e = other.map_or_else(|e| errno_of(&e), |_| Errno::ENOTDIR);
                self.note_failed_close();
                warn_sys(b"unable to change directory", &name, e);
                return false;
            }
        }
        let lock = append_file(&self.file(b"lock"))
            .map_err(|e| errno_of(&e))
            .and_then(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e));
        match lock {
            Ok(l) => self.lock = Some(l),
            Err(e) => {
                self.note_failed_close();
                warn_sys(b"unable to lock directory", &name, e);
                return false;
            }
        }
        self.named = true;
        self.size = 0;
        self.select_log = b'+';
        self.processor_pid = None;
        self.config = self.read_config();
        if self.config.t_max > 0 {
            self.rotate_at = add_secs(now, self.config.t_max);
        }
        let current = self.file(b"current");
        let fresh = match std::fs::metadata(&current) {
            Ok(m) if m.len() > 0 && m.permissions().mode() & 0o100 == 0 => {
                // not closed cleanly last time: keep it aside, unprocessed
                self.saved = self.unused_name(b'u');
                let to = self.file(&self.saved);
                retry(b"unable to rename current", &name, || {
                    std::fs::rename(&current, &to).map_err(|e| errno_of(&e))
                });
                self.remove_oldest();
                true
            }
            Ok(m) => {
                self.size = m.len();
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                self.note_failed_close();
                self.lock = None;
                warn_sys(b"unable to stat current", &name, errno_of(&e));
                return false;
            }
        };
        let file = retry(b"unable to open current", &name, || {
            append_file(&current).map_err(|e| errno_of(&e))
        });
        retry(b"unable to set mode of current", &name, || {
            set_mode(&file, 0o644)
        });
        self.current = Some(file);
        if self.limits.verbose {
            let what: &[u8] = if fresh { b"new: " } else { b"append: " };
            info(&[what, &name, b"/current"]);
        }
        true
    }

    /// runit closes a half-opened directory through its normal close, which
    /// under `-v` reports the name known from the previous open (none at
    /// the first).
    fn note_failed_close(&self) {
        if self.limits.verbose {
            let name: &[u8] = if self.named { &self.name } else { b"" };
            info(&[b"close: ", name]);
        }
    }

    fn read_config(&self) -> Config {
        match std::fs::read(self.file(b"config")) {
            Ok(text) => {
                if self.limits.verbose {
                    info(&[b"read: ", &self.name, b"/config"]);
                }
                config::parse(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                warn_sys(b"unable to read config", &self.name, errno_of(&e));
                if self.limits.verbose {
                    info(&[b"read: ", &self.name, b"/config"]);
                }
                Config::default()
            }
        }
    }

    /// Flushes, marks `current` as cleanly closed (mode 0744) and unlocks.
    pub(super) fn close(&mut self) {
        if !self.is_open() {
            return;
        }
        if self.limits.verbose {
            info(&[b"close: ", &self.name]);
        }
        let lock = self.lock.take();
        self.flush();
        if let Some(file) = self.current.take() {
            let name = self.name.clone();
            retry(b"unable to fsync current logfile", &name, || {
                file.sync_all().map_err(|e| errno_of(&e))
            });
            retry(b"unable to set mode of current", &name, || {
                set_mode(&file, 0o744)
            });
        }
        drop(lock);
        self.config.processor = None;
    }

    /// A fresh `@<now>.<kind>` name not present in the directory.
    fn unused_name(&self, kind: u8) -> Vec<u8> {
        loop {
            let mut name = Tai64N::now().to_string().into_bytes();
            name.push(b'.');
            name.push(kind);
            match std::fs::symlink_metadata(self.file(&name)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return name,
                _ => continue,
            }
        }
    }

    /// Moves a non-empty `current` to `@<now>.s` (`.u` when a processor will
    /// handle it), starts a new one, prunes, and starts the processor.
    pub(super) fn rotate(&mut self) {
        if !self.is_open() {
            self.config.t_max = 0;
            return;
        }
        if self.processor_pid.is_some() {
            while !self.processor_stop(None) {}
        }
        let kind = if self.config.processor.is_some() {
            b'u'
        } else {
            b's'
        };
        self.saved = self.unused_name(kind);
        let now = Tai64N::now();
        if self.config.t_max > 0 && self.rotate_at < now {
            self.rotate_at = add_secs(now, self.config.t_max);
        }
        if self.size == 0 {
            return;
        }
        self.flush();
        let name = self.name.clone();
        if let Some(file) = self.current.take() {
            retry(b"unable to fsync current logfile", &name, || {
                file.sync_all().map_err(|e| errno_of(&e))
            });
            retry(b"unable to set mode of current", &name, || {
                set_mode(&file, 0o744)
            });
        }
        if self.limits.verbose {
            let size = format!(" {}", self.size);
            info(&[
                b"rename: ",
                &name,
                b"/current ",
                &self.saved,
                size.as_bytes(),
            ]);
        }
        let (current, saved) = (self.file(b"current"), self.file(&self.saved));
        retry(b"unable to rename current", &name, || {
            std::fs::rename(&current, &saved).map_err(|e| errno_of(&e))
        });
        let file = retry(b"unable to create new current", &name, || {
            append_file(&current).map_err(|e| errno_of(&e))
        });
        self.size = 0;
        retry(b"unable to set mode of current", &name, || {
            set_mode(&file, 0o644)
        });
        self.current = Some(file);
        self.remove_oldest();
        self.processor_start();
    }

    /// Rotated files (`@` + 26 characters) in the directory.
    fn saved_files(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().into_vec())
            .filter(|n| n.len() == SAVED_NAME_LEN && n[0] == b'@')
            .collect()
    }

    /// Deletes processor leftovers (`*.t`) and, when more than `n` old files
    /// exist, the oldest one.
    fn remove_oldest(&self) {
        let mut count = 0;
        let mut oldest: Option<Vec<u8>> = None;
        for name in self.saved_files() {
            if name[SAVED_NAME_LEN - 1] == b't' {
                if let Err(e) = std::fs::remove_file(self.file(&name)) {
                    warn_sys(b"unable to unlink processor leftover", &name, errno_of(&e));
                }
                continue;
            }
            count += 1;
            match &oldest {
                Some(o) if *o <= name => {}
                _ => oldest = Some(name),
            }
        }
        let n_max = self.config.n_max;
        if n_max > 0 && count > n_max {
            if let Some(oldest) = oldest {
                if self.limits.verbose {
                    info(&[b"delete: ", &self.name, b"/", &oldest]);
                }
                if let Err(e) = std::fs::remove_file(self.file(&oldest)) {
                    warn_sys(b"unable to unlink oldest logfile", &self.name, errno_of(&e));
                }
            }
        }
    }

    /// Writes as much of `s` to `current` as the size limit allows and
    /// rotates as runit does; returns how many bytes were taken.
    fn write_some(&mut self, s: &[u8]) -> usize {
        let size_max = self.config.size_max;
        let limit = SizeLimit(size_max);
        if limit.is_full(self.size) {
            self.rotate();
        }
        let len = limit.fits(self.size, s.len());
        let name = self.name.clone();
        let written = loop {
            let Some(file) = self.current.as_mut() else {
                return s.len();
            };
            match file.write(&s[..len]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let errno = errno_of(&e);
                    if errno == Errno::ENOSPC
                        && self.config.n_min < self.config.n_max
                        && self.free_space()
                    {
                        continue;
                    }
                    pause(b"unable to write to current", &name, errno);
                }
            }
        };
        self.size += written as u64;
        if size_max > 0
            && written > 0
            && s[written - 1] == b'\n'
            && self.size >= size_max.wrapping_sub(self.limits.line_max as u64)
        {
            self.rotate();
        }
        written
    }

    /// Disk full: deletes the oldest old file while more than `N` remain.
    /// True if one was deleted.
    fn free_space(&self) -> bool {
        let files = self.saved_files();
        let Some(oldest) = files.iter().min() else {
            return false;
        };
        if files.len() as u64 <= self.config.n_min {
            return false;
        }
        warn(&[b"out of disk space, delete: ", &self.name, b"/", oldest]);
        match std::fs::remove_file(self.file(oldest)) {
            Ok(()) => true,
            Err(e) => {
                warn_sys(b"unable to unlink oldest logfile", &self.name, errno_of(&e));
                false
            }
        }
    }

    fn write_all(&mut self, mut s: &[u8]) {
        while !s.is_empty() {
            let n = self.write_some(s);
            s = &s[n..];
        }
    }

    /// Writes out whatever is buffered.
    pub(super) fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.out);
        self.write_all(&pending);
        self.out = pending;
        self.out.clear();
    }

    /// Buffers `s`, writing through when it does not fit (runit's
    /// `buffer_put`, whose write sizes decide where files are cut).
    pub(super) fn put(&mut self, mut s: &[u8]) {
        let cap = self.limits.buf_len;
        if s.len() > cap - self.out.len() {
            self.flush();
            let chunk = cap.max(OUTSIZE);
            while s.len() > cap {
                let n = chunk.min(s.len());
                self.write_all(&s[..n]);
                s = &s[n..];
            }
        }
        self.out.extend_from_slice(s);
    }
}

/// Opens `path` for appending, creating it with mode 0600, non-blocking.
fn append_file(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

fn set_mode(file: &File, mode: u32) -> Result<(), Errno> {
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| errno_of(&e))
}
