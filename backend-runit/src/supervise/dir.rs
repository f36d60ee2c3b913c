//! Setting up a `supervise/` directory as runsv does at startup, so that
//! the real `sv` (and anything else that knows runit) can talk to braid:
//!
//! - `supervise/` made with mode 0700; if it is a symlink, its target is
//!   made instead (one `mkdir`, relative to the directory holding the link);
//! - `lock` (0600) held with `flock`, without waiting. runsv waits for a
//!   logger's lock, so a second runsv on a shared `log/` hangs at startup;
//!   braid supervises every directory in one loop, which must not hang, so
//!   it fails that directory as runsv fails on a taken service lock
//!   (`unable to lock log/supervise/lock: temporary failure`);
//! - `control` FIFO (0600), opened for reading without blocking, plus a
//!   write end kept open so that reads never see end-of-file;
//! - `ok` FIFO (0600), opened for reading and never read: while it is open,
//!   `sv` can open it for writing and knows a supervisor is alive.
//!
//! All descriptors are close-on-exec. Errors read like runsv's fatal
//! messages, without the `runsv DIR: fatal: ` prefix.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use super::files::{SuperviseFiles, UpdateReport};
use super::status::Record;
use crate::errstr::io_errstr;

/// runsv reads a `supervise` symlink into a 256-byte buffer; a target that
/// fills it is refused.
const READLINK_MAX: usize = 256;

/// Which of the two supervise directories of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `DIR/supervise`
    Service,
    /// `DIR/log/supervise`
    Log,
}

impl Which {
    /// The prefix runsv's messages use for this directory's files.
    fn prefix(self) -> &'static str {
        match self {
            Which::Service => "supervise/",
            Which::Log => "log/supervise/",
        }
    }
}

/// A fatal setup problem, displayed as runsv's message body, e.g.
/// `unable to lock supervise/lock: temporary failure`.
#[derive(Debug)]
pub struct SetupError {
    what: String,
    err: Option<io::Error>,
}

impl SetupError {
    fn sys(what: String, err: io::Error) -> Self {
        SetupError {
            what,
            err: Some(err),
        }
    }

    /// The underlying I/O error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.err.as_ref()
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.err {
            Some(e) => write!(f, "{}: {}", self.what, io_errstr(e)),
            None => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for SetupError {}

/// The descriptors a supervisor holds for one supervise directory. Dropping
/// it releases the lock and makes `sv` see "runsv not running".
#[derive(Debug)]
pub struct Supervise {
    /// The `supervise/` path (through the symlink, if it is one).
    pub dir: PathBuf,
    _lock: Flock<File>,
    control: File,
    _control_keepalive: File,
    _ok: File,
}

impl Supervise {
    /// Sets up `service_dir/supervise` or `service_dir/log/supervise` in
    /// runsv's order: directory, lock, control FIFO, the first status
    /// (`initial`, with `pid` written if `pid_changed`), ok FIFO — so that
    /// once `ok` has a reader, `status` is there to read.
    pub fn open(
        service_dir: &Path,
        which: Which,
        initial: &Record,
        pid_changed: bool,
    ) -> Result<(Supervise, UpdateReport), SetupError> {
        let base = match which {
            Which::Service => service_dir.to_path_buf(),
            Which::Log => service_dir.join("log"),
        };
        let dir = base.join("supervise");
        make_dir(&base, &dir, which)?;
        let prefix = which.prefix();

        let lock_file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(dir.join("lock"))
            .map_err(|e| SetupError::sys(format!("unable to open {prefix}lock"), e))?;
        let lock =
            Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
                SetupError::sys(
                    format!("unable to lock {prefix}lock"),
                    io::Error::from(errno),
                )
            })?;

        let control_path = dir.join("control");
        let _ = mkfifo(&control_path);
        // runsv checks the *service's* control FIFO here even when setting
        // up the logger (a quirk kept for identical behaviour).
        let checked = match which {
            Which::Service => control_path.clone(),
            Which::Log => service_dir.join("supervise/control"),
        };
        let meta = fs::metadata(&checked)
            .map_err(|e| SetupError::sys(format!("unable to stat {prefix}control"), e))?;
        if !meta.file_type().is_fifo() {
            return Err(SetupError {
                what: format!("{prefix}control exists but is not a fifo"),
                err: None,
            });
        }
        let open_control = |write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(OFlag::O_NONBLOCK.bits())
                .open(&control_path)
                .map_err(|e| SetupError::sys(format!("unable to open {prefix}control"), e))
        };
        let control = open_control(false)?;
        let control_keepalive = open_control(true)?;
        let report = SuperviseFiles::new(&dir).update(initial, pid_changed);

        let ok_path = dir.join("ok");
        let _ = mkfifo(&ok_path);
        let ok = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(&ok_path)
            .map_err(|e| SetupError::sys(format!("unable to read {prefix}ok"), e))?;

        let supervise = Supervise {
            dir,
            _lock: lock,
            control,
            _control_keepalive: control_keepalive,
            _ok: ok,
        };
        Ok((supervise, report))
    }

    /// The control FIFO's read end (non-blocking), for a poll loop.
    pub fn control(&self) -> &File {
        &self.control
    }

    /// Reads one command byte if one is waiting (runsv handles one byte per
    /// loop turn); `None` when the FIFO is empty.
    pub fn read_command(&self) -> io::Result<Option<u8>> {
        let mut byte = [0u8; 1];
        match (&self.control).read(&mut byte) {
            Ok(1) => Ok(Some(byte[0])),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.raw_os_error() == Some(Errno::EINTR as i32) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn mkfifo(path: &Path) -> nix::Result<()> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
}

/// `mkdir supervise`, or through a symlink, as runsv does.
fn make_dir(base: &Path, dir: &Path, which: Which) -> Result<(), SetupError> {
    let label = match which {
        Which::Service => "./supervise",
        Which::Log => "./log/supervise",
    };
    let mkdir = |p: &Path| DirBuilder::new().mode(0o700).create(p);
    if mkdir(dir).is_ok() {
        return Ok(());
    }
    match fs::read_link(dir) {
        Ok(target) => {
            if target.as_os_str().len() >= READLINK_MAX {
                return Err(SetupError {
                    what: format!("unable to readlink {label}: name too long"),
                    err: None,
                });
            }
            // Only the last component is made; errors show up later.
            let _ = mkdir(&base.join(target));
            Ok(())
        }
        Err(e) if matches!(e.raw_os_error(), Some(c) if c == Errno::ENOENT as i32 || c == Errno::EINVAL as i32) => {
            Ok(())
        }
        Err(e) => Err(SetupError::sys(format!("unable to readlink {label}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("braid-superdir-{tag}-{}", std::process::id()));
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

    fn initial() -> Record {
        Record {
            since: crate::supervise::Tai64N::now(),
            pid: None,
            paused: false,
            want: crate::supervise::Want::Up,
            got_term: false,
            state: crate::supervise::RunState::Down,
        }
    }

    fn open(dir: &Path, which: Which) -> Result<Supervise, SetupError> {
        Supervise::open(dir, which, &initial(), true).map(|(s, report)| {
            assert!(report.warnings.is_empty(), "{:?}", report.warnings);
            s
        })
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_runsv_layout() {
        let tmp = TempDir::new("layout");
        let sup = open(&tmp.0, Which::Service).unwrap();
        let dir = tmp.0.join("supervise");
        assert_eq!(sup.dir, dir);
        assert_eq!(mode(&dir), 0o700);
        for fifo in ["control", "ok"] {
            let meta = fs::symlink_metadata(dir.join(fifo)).unwrap();
            assert!(meta.file_type().is_fifo(), "{fifo}");
            assert_eq!(mode(&dir.join(fifo)), 0o600);
        }
        assert_eq!(mode(&dir.join("lock")), 0o600);
        assert_eq!(fs::read(dir.join("stat")).unwrap(), b"down\n");
        assert_eq!(fs::read(dir.join("pid")).unwrap(), b"");
        assert_eq!(fs::metadata(dir.join("status")).unwrap().len(), 20);

        // A second supervisor is refused, as runsv refuses.
        let again = open(&tmp.0, Which::Service).unwrap_err();
        assert_eq!(
            again.to_string(),
            "unable to lock supervise/lock: temporary failure"
        );

        // Writers find a reader on ok; bytes written to control come out
        // one at a time.
        let mut w = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(dir.join("control"))
            .unwrap();
        w.write_all(b"tc").unwrap();
        assert_eq!(sup.read_command().unwrap(), Some(b't'));
        assert_eq!(sup.read_command().unwrap(), Some(b'c'));
        assert_eq!(sup.read_command().unwrap(), None);
        OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(dir.join("ok"))
            .expect("ok has a reader");

        drop(sup);
        let err = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(dir.join("ok"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::ENXIO as i32));
    }

    #[test]
    fn follows_symlinks_and_checks_fifos() {
        let tmp = TempDir::new("links");
        std::os::unix::fs::symlink("state", tmp.0.join("supervise")).unwrap();
        fs::create_dir_all(tmp.0.join("log")).unwrap();
        std::os::unix::fs::symlink("../logstate", tmp.0.join("log/supervise")).unwrap();
        let sup = open(&tmp.0, Which::Service).unwrap();
        assert!(tmp.0.join("state/ok").exists());
        let log = open(&tmp.0, Which::Log).unwrap();
        assert!(tmp.0.join("logstate/control").exists());
        // A second logger on the same log dir is refused, not waited for.
        let again = open(&tmp.0, Which::Log).unwrap_err();
        assert_eq!(
            again.to_string(),
            "unable to lock log/supervise/lock: temporary failure"
        );
        drop((sup, log));

        let bad = TempDir::new("notfifo");
        fs::create_dir_all(bad.0.join("supervise")).unwrap();
        fs::write(bad.0.join("supervise/control"), "").unwrap();
        let err = open(&bad.0, Which::Service).unwrap_err();
        assert_eq!(
            err.to_string(),
            "supervise/control exists but is not a fifo"
        );

        let long = TempDir::new("long");
        std::os::unix::fs::symlink("x".repeat(300), long.0.join("supervise")).unwrap();
        let err = open(&long.0, Which::Service).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to readlink ./supervise: name too long"
        );
    }
}
