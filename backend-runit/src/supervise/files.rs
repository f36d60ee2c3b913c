//! Writing and reading `pid`, `stat` and `status` in a `supervise/`
//! directory, with runsv's protocol: each file is written as `X.new`
//! (created mode 0644, minus the umask) and renamed over `X`, in the order
//! `pid` (only when it changed), `stat`, `status`, so that readers always see
//! a complete old or new file. Files are never deleted.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::status::{Record, Status, STATUS_LEN};
use crate::errstr::io_errstr;

/// One `supervise/` directory (the service's or its logger's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperviseFiles {
    dir: PathBuf,
}

/// A problem runsv reports as a warning and survives. Displays as runsv's
/// message body, e.g. `unable to open supervise/stat.new: access denied`;
/// the caller adds `runsv DIR: warning: `.
#[derive(Debug)]
pub struct UpdateWarning {
    what: String,
    err: Option<io::Error>,
}

impl UpdateWarning {
    fn sys(what: String, err: io::Error) -> Self {
        UpdateWarning {
            what,
            err: Some(err),
        }
    }

    /// The underlying I/O error, if the warning has one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.err.as_ref()
    }
}

impl fmt::Display for UpdateWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.err {
            Some(e) => write!(f, "{}: {}", self.what, io_errstr(e)),
            None => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for UpdateWarning {}

/// What one status update did.
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// `pid` was rewritten; the caller's "pid changed" flag can be cleared.
    pub pid_written: bool,
    /// Warnings in the order runsv prints them. After a failure to open or
    /// to replace `pid`, or to open `stat.new`/`status.new`, the rest of the
    /// update is abandoned.
    pub warnings: Vec<UpdateWarning>,
}

/// Why a `status` file could not be read.
#[derive(Debug)]
pub enum ReadStatusError {
    Open(io::Error),
    Read(io::Error),
    /// The file did not hold exactly 20 bytes (the count read is kept).
    BadFormat(usize),
}

impl fmt::Display for ReadStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadStatusError::Open(e) => write!(f, "unable to open status: {}", io_errstr(e)),
            ReadStatusError::Read(e) => write!(f, "unable to read status: {}", io_errstr(e)),
            ReadStatusError::BadFormat(n) => write!(f, "bad status format: {n} bytes"),
        }
    }
}

impl std::error::Error for ReadStatusError {}

impl SuperviseFiles {
    /// `dir` is the supervise directory as runsv names it in messages
    /// (`supervise`, `log/supervise`) or any path to one.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SuperviseFiles { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn label(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn create_new(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(self.path(name))
    }

    /// Writes the files for `record` as runsv does after every change:
    /// `pid` (when `pid_changed`), then `stat`, then `status`.
    pub fn update(&self, record: &Record, pid_changed: bool) -> UpdateReport {
        let mut report = UpdateReport::default();
        if pid_changed {
            if let Err(w) = self.replace("pid", record.pid_text().as_bytes()) {
                report.warnings.push(w);
                return report;
            }
            report.pid_written = true;
        }

        match self.create_new("stat.new") {
            Err(e) => {
                report.warnings.push(UpdateWarning::sys(
                    format!("unable to open {}", self.label("stat.new")),
                    e,
                ));
                return report;
            }
            Ok(mut f) => {
                // runsv ignores write errors on stat; only the rename counts.
                let _ = f.write_all(record.stat_line().as_bytes());
            }
        }
        if let Err(e) = fs::rename(self.path("stat.new"), self.path("stat")) {
            report.warnings.push(UpdateWarning::sys(
                format!("unable to rename stat.new to {}", self.label("stat")),
                e,
            ));
        }

        if let Err(w) = self.write_status(&record.encode()) {
            report.warnings.push(w);
        }
        report
    }

    /// `pid.new` written and renamed; runsv abandons the update on failure.
    fn replace(&self, name: &str, content: &[u8]) -> Result<(), UpdateWarning> {
        let new = format!("{name}.new");
        let mut f = self
            .create_new(&new)
            .map_err(|e| UpdateWarning::sys(format!("unable to open {}", self.label(&new)), e))?;
        // As in runsv, a failed write of the text files is not reported.
        let _ = f.write_all(content);
        drop(f);
        fs::rename(self.path(&new), self.path(name)).map_err(|e| {
            UpdateWarning::sys(format!("unable to rename {new} to {}", self.label(name)), e)
        })
    }

    /// `status.new` written in one write and renamed. A failed write removes
    /// `status.new`; a short write leaves it in place, unrenamed.
    fn write_status(&self, status: &Status) -> Result<(), UpdateWarning> {
        let new_label = self.label("status.new");
        let mut f = self
            .create_new("status.new")
            .map_err(|e| UpdateWarning::sys(format!("unable to open {new_label}"), e))?;
        let written = f.write(status.as_bytes());
        drop(f);
        match written {
            Err(e) => {
                let _ = fs::remove_file(self.path("status.new"));
                return Err(UpdateWarning::sys(
                    format!("unable to write {new_label}"),
                    e,
                ));
            }
            Ok(n) if n < STATUS_LEN => {
                return Err(UpdateWarning {
                    what: format!("unable to write {new_label}: partial write."),
                    err: None,
                });
            }
            Ok(_) => {}
        }
        fs::rename(self.path("status.new"), self.path("status")).map_err(|e| {
            UpdateWarning::sys(
                format!("unable to rename status.new to {}", self.label("status")),
                e,
            )
        })
    }

    /// Reads `status` as sv does: one read of up to 20 bytes, which must
    /// return exactly 20.
    pub fn read_status(&self) -> Result<Status, ReadStatusError> {
        let mut f = open_read(&self.path("status")).map_err(ReadStatusError::Open)?;
        let mut buf = [0u8; STATUS_LEN];
        let n = f.read(&mut buf).map_err(ReadStatusError::Read)?;
        if n != STATUS_LEN {
            return Err(ReadStatusError::BadFormat(n));
        }
        Ok(Status(buf))
    }

    /// The content of `stat`.
    pub fn read_stat(&self) -> io::Result<String> {
        io::read_to_string(open_read(&self.path("stat"))?)
    }

    /// The pid in `pid`, `None` when the file is empty (no process).
    pub fn read_pid(&self) -> io::Result<Option<u32>> {
        let text = io::read_to_string(open_read(&self.path("pid"))?)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.strip_suffix('\n')
            .and_then(|digits| digits.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a pid line: {text:?}", self.label("pid")),
                )
            })
    }
}

/// Opens a file for reading as runit's `open_read` does: non-blocking, so
/// that a FIFO with no writer does not make the reader wait forever.
fn open_read(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::super::status::{RunState, Want};
    use super::super::tai::{Tai64, Tai64N};
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "braid-supervise-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(pid: Option<u32>, state: RunState) -> Record {
        Record {
            since: Tai64N {
                secs: Tai64::from_unix(1_700_000_000),
                nanos: 500,
            },
            pid,
            paused: false,
            want: Want::Up,
            got_term: false,
            state,
        }
    }

    #[test]
    fn writes_all_three_files() {
        let tmp = TempDir::new("write");
        let files = SuperviseFiles::new(&tmp.0);
        let r = record(Some(4242), RunState::Run);
        let report = files.update(&r, true);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(report.pid_written);
        assert_eq!(fs::read(tmp.0.join("pid")).unwrap(), b"4242\n");
        assert_eq!(fs::read(tmp.0.join("stat")).unwrap(), b"run\n");
        assert_eq!(fs::read(tmp.0.join("status")).unwrap(), r.encode().0);
        assert!(!tmp.0.join("status.new").exists());
        assert_eq!(files.read_status().unwrap(), r.encode());
        assert_eq!(files.read_pid().unwrap(), Some(4242));
        assert_eq!(files.read_stat().unwrap(), "run\n");
        let mode = fs::metadata(tmp.0.join("status"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        assert_eq!(mode & 0o133, 0, "never more than 0644: {mode:o}");
    }

    #[test]
    fn pid_only_when_changed_and_empty_when_none() {
        let tmp = TempDir::new("pid");
        let files = SuperviseFiles::new(&tmp.0);
        files.update(&record(Some(1), RunState::Run), true);
        let report = files.update(&record(None, RunState::Down), false);
        assert!(!report.pid_written);
        assert_eq!(fs::read(tmp.0.join("pid")).unwrap(), b"1\n");
        files.update(&record(None, RunState::Down), true);
        assert_eq!(fs::read(tmp.0.join("pid")).unwrap(), b"");
        assert_eq!(files.read_pid().unwrap(), None);
        assert_eq!(fs::read(tmp.0.join("stat")).unwrap(), b"down\n");
    }

    #[test]
    fn missing_directory_warns_like_runsv() {
        let files = SuperviseFiles::new("/nonexistent-braid-dir/supervise");
        let report = files.update(&record(None, RunState::Down), true);
        let texts: Vec<String> = report.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            texts,
            ["unable to open /nonexistent-braid-dir/supervise/pid.new: file does not exist"]
        );
        let report = files.update(&record(None, RunState::Down), false);
        assert_eq!(
            report.warnings[0].to_string(),
            "unable to open /nonexistent-braid-dir/supervise/stat.new: file does not exist"
        );
    }

    #[test]
    fn short_status_is_bad_format() {
        let tmp = TempDir::new("short");
        fs::write(tmp.0.join("status"), [0u8; 19]).unwrap();
        let files = SuperviseFiles::new(&tmp.0);
        assert!(matches!(
            files.read_status(),
            Err(ReadStatusError::BadFormat(19))
        ));
        fs::write(tmp.0.join("status"), [0u8; 21]).unwrap();
        assert!(
            files.read_status().is_ok(),
            "sv reads only the first 20 bytes"
        );
        fs::write(tmp.0.join("pid"), "12x\n").unwrap();
        assert!(files.read_pid().is_err());
    }

    /// Found by tests/fuzz_supervise.rs: a FIFO in place of `status` (or
    /// `stat`, `pid`) made the reader wait for a writer forever; runit's sv
    /// opens without waiting and reports a bad format.
    #[test]
    fn fifo_in_place_of_a_file_does_not_block() {
        let tmp = TempDir::new("fifo");
        for name in ["status", "stat", "pid"] {
            nix::unistd::mkfifo(
                &tmp.0.join(name),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
        }
        let files = SuperviseFiles::new(&tmp.0);
        assert!(matches!(
            files.read_status(),
            Err(ReadStatusError::BadFormat(0))
        ));
        assert_eq!(files.read_stat().unwrap(), "");
        assert_eq!(files.read_pid().unwrap(), None);
    }
}
