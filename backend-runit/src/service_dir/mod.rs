//! A runit service directory as braid's engine sees it.
//!
//! One directory gives one or two `ServiceSpec`s:
//!
//! - the service: `./run` in the directory, `./finish EXIT SIGNAL` after
//!   every exit when `finish` is readable, down at start when `down`
//!   exists, restarted with runsv's one-second throttle, stopped with TERM
//!   then CONT and waited for forever;
//! - when `log/` is a directory, the logger: `./run` in `log/`, reading the
//!   service's stdout through a pipe that outlives both processes.
//!
//! runit has no dependencies; braid reads an optional `dependencies` file
//! (see [`dependencies`]) whose names become hard dependencies.
//!
//! runit has no readiness either; braid reads s6's `notification-fd` file
//! (see [`notification`]): the service is up once it writes to that fd.
//!
//! A `control/u` hook (runsv runs it before every start of `./run`) is run
//! by a tiny shell prologue in the started process itself, so that it also
//! precedes the engine's automatic restarts and writes into the log pipe.

pub mod dependencies;
pub mod notification;

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use braid_core::spec::{
    CommandLine, DepKind, Dependency, Output, Readiness, RestartMode, RestartPolicy, ServiceSpec,
};
use nix::sys::signal::Signal;

use crate::errstr::io_errstr;

/// runsv's minimum time between two starts of `./run`.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// The engine name of the logger of service `name`. runsvdir skips entries
/// whose names start with `.`, so no service directory can take it.
pub fn log_name(name: &str) -> String {
    format!(".log:{name}")
}

/// A service directory, ready to be loaded into the engine.
#[derive(Debug, Clone)]
pub struct ServiceDir {
    /// The entry name (the engine name of the service).
    pub name: String,
    /// The directory, absolute.
    pub path: PathBuf,
    pub service: ServiceSpec,
    pub logger: Option<ServiceSpec>,
    /// Problems runsv reports as warnings and survives (`./log: not a
    /// directory.`), as message bodies.
    pub warnings: Vec<String>,
}

/// Why a directory cannot be supervised at all.
#[derive(Debug)]
pub enum LoadError {
    /// runsv's `unable to change to directory`.
    ChangeDir(io::Error),
    /// A line of the `dependencies` file is not a service name.
    Dependencies(dependencies::ParseError),
    /// The `dependencies` file exists but cannot be read.
    ReadDependencies(PathBuf, io::Error),
    /// The `notification-fd` file does not hold a descriptor number.
    NotificationFd(notification::ParseError),
    /// The `notification-fd` file exists but cannot be read.
    ReadNotificationFd(PathBuf, io::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::ChangeDir(e) => {
                write!(f, "unable to change to directory: {}", io_errstr(e))
            }
            LoadError::Dependencies(e) => e.fmt(f),
            LoadError::NotificationFd(e) => e.fmt(f),
            LoadError::ReadDependencies(path, e) | LoadError::ReadNotificationFd(path, e) => {
                write!(f, "unable to read {}: {}", path.display(), io_errstr(e))
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads the service directory `dir`, to be supervised under `name`.
pub fn load(dir: &Path, name: &str) -> Result<ServiceDir, LoadError> {
    let meta = fs::metadata(dir).map_err(LoadError::ChangeDir)?;
    if !meta.is_dir() {
        return Err(LoadError::ChangeDir(io::Error::from_raw_os_error(
            nix::libc::ENOTDIR,
        )));
    }
    let path = std::path::absolute(dir).map_err(LoadError::ChangeDir)?;
    let mut warnings = Vec::new();

    let log_dir = path.join("log");
    let has_log = match fs::metadata(&log_dir) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => {
            warnings.push("./log: not a directory.".to_string());
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            warnings.push(format!("unable to stat ./log: {}", io_errstr(&e)));
            false
        }
    };

    let mut service = supervised(name, &path);
    service.starts_down = path.join("down").exists();
    // runsv's test for finish is "can be opened for reading" (without
    // waiting, as runit's open_read: a FIFO must not block the scan).
    if open_read(&path.join("finish")).is_ok() {
        service.finish = Some(CommandLine::new(["./finish"]));
    }
    if has_hook(&path, 'u') {
        service.start = CommandLine::new(["/bin/sh", "-c", "control/u\nexec ./run", "./run"]);
    }
    let deps_file = path.join("dependencies");
    match read_small_text(&deps_file) {
        Ok(text) => {
            let names = dependencies::parse(&text, &deps_file).map_err(LoadError::Dependencies)?;
            service.deps = names
                .into_iter()
                .map(|name| Dependency {
                    name,
                    kind: DepKind::Hard,
                })
                .collect();
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LoadError::ReadDependencies(deps_file, e)),
    }
    let notify_file = path.join("notification-fd");
    match read_small_text(&notify_file) {
        Ok(text) => {
            let fd = notification::parse(&text, &notify_file).map_err(LoadError::NotificationFd)?;
            service.readiness = Readiness::NotifyFd(fd);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(LoadError::ReadNotificationFd(notify_file, e)),
    }

    let logger = has_log.then(|| {
        service.output = Output::Pipe;
        let mut logger = supervised(&log_name(name), &log_dir);
        logger.starts_down = log_dir.join("down").exists();
        logger.input_from = Some(name.to_string());
        logger
    });

    Ok(ServiceDir {
        name: name.to_string(),
        path,
        service,
        logger,
        warnings,
    })
}

/// Longest `dependencies` or `notification-fd` file read: far more than
/// any real one, and a bound when one is a link to a device like
/// `/dev/zero`.
const MAX_TEXT_FILE: u64 = 1 << 20;

/// Opens a file for reading without waiting for a writer if it is a FIFO.
fn open_read(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
}

/// A small text file braid adds to service directories: opened without
/// waiting (a FIFO reads as empty), and refused (EFBIG) when larger than
/// [`MAX_TEXT_FILE`].
fn read_small_text(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    open_read(path)?
        .take(MAX_TEXT_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_TEXT_FILE {
        return Err(io::Error::from_raw_os_error(nix::libc::EFBIG));
    }
    Ok(text)
}

/// What runsv does for every process it supervises: `./run` in `dir`,
/// always restarted but at most once a second (a program that cannot be
/// executed too, as an exit with 111), TERM then CONT to stop (at once,
/// even before it is ready), no timeouts, signals to the process only,
/// output inherited, and only stdout ever redirected (runsv leaves stderr
/// alone).
fn supervised(name: &str, dir: &Path) -> ServiceSpec {
    let mut spec = ServiceSpec::process(name, ["./run"]);
    spec.working_dir = Some(dir.to_path_buf());
    spec.restart = RestartPolicy {
        mode: RestartMode::Always,
        delay: RESTART_DELAY,
        limit_count: 0,
        limit_interval: RESTART_DELAY,
        smooth_recovery: false,
    };
    spec.start_timeout = None;
    spec.stop_timeout = None;
    spec.stop_signal = Some(Signal::SIGTERM);
    spec.flags.cont_after_stop_signal = true;
    spec.flags.signal_process_only = true;
    spec.flags.start_interruptible = true;
    spec.flags.stderr_inherited = true;
    spec.flags.exec_failure_is_exit = true;
    spec.output = Output::Inherit;
    spec
}

/// Whether `control/<letter>` is a hook runsv would run: it exists and has
/// the owner-execute bit.
pub fn has_hook(dir: &Path, letter: char) -> bool {
    hook_path(dir, letter)
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o100 != 0)
}

/// `control/<letter>` in `dir`.
pub fn hook_path(dir: &Path, letter: char) -> PathBuf {
    dir.join("control").join(letter.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("braid-svdir-{tag}-{}", std::process::id()));
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

    fn exec(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn maps_runsv_semantics() {
        let tmp = TempDir::new("map");
        let dir = tmp.0.join("x");
        exec(&dir.join("run"));
        fs::write(dir.join("finish"), "").unwrap();
        fs::write(dir.join("down"), "").unwrap();
        exec(&dir.join("log/run"));
        fs::write(dir.join("dependencies"), "# needs\n\n a \nb\n").unwrap();

        let sd = load(&dir, "x").unwrap();
        let s = &sd.service;
        assert_eq!(s.name, "x");
        assert_eq!(s.start, CommandLine::new(["./run"]));
        assert_eq!(s.finish, Some(CommandLine::new(["./finish"])));
        assert_eq!(s.working_dir.as_deref(), Some(sd.path.as_path()));
        assert!(s.starts_down);
        assert_eq!(s.output, Output::Pipe);
        assert_eq!(s.restart.delay, RESTART_DELAY);
        assert_eq!(s.restart.limit_count, 0);
        assert_eq!(s.start_timeout, None);
        assert_eq!(s.stop_timeout, None);
        assert_eq!(s.stop_signal, Some(Signal::SIGTERM));
        assert!(s.flags.cont_after_stop_signal && s.flags.signal_process_only);
        assert!(s.flags.stderr_inherited && s.flags.exec_failure_is_exit);
        assert!(s.flags.start_interruptible);
        assert_eq!(s.readiness, Readiness::OnExec);
        let deps: Vec<_> = s.deps.iter().map(|d| (d.name.as_str(), d.kind)).collect();
        assert_eq!(deps, [("a", DepKind::Hard), ("b", DepKind::Hard)]);

        let log = sd.logger.as_ref().unwrap();
        assert_eq!(log.name, log_name("x"));
        assert_eq!(log.input_from.as_deref(), Some("x"));
        assert_eq!(log.finish, None, "runsv never runs log/finish");
        assert!(!log.starts_down);
        assert_eq!(log.working_dir, Some(sd.path.join("log")));
        assert!(sd.warnings.is_empty());
        log.validate().unwrap();
        s.validate().unwrap();
    }

    /// Found by tests/fuzz_service_dir.rs: a FIFO named `dependencies`,
    /// `notification-fd` or `finish` made the load wait forever for a
    /// writer (blocking runsvdir's scan), and a link to an endless device
    /// made it read without end.
    #[test]
    fn fifos_and_devices_do_not_block_or_grow_the_load() {
        let tmp = TempDir::new("fifo");
        let dir = tmp.0.join("f");
        exec(&dir.join("run"));
        for name in ["dependencies", "notification-fd", "finish"] {
            nix::unistd::mkfifo(
                &dir.join(name),
                nix::sys::stat::Mode::from_bits_truncate(0o644),
            )
            .unwrap();
        }
        let err = load(&dir, "f").unwrap_err();
        assert!(matches!(err, LoadError::NotificationFd(_)), "{err}");
        fs::remove_file(dir.join("notification-fd")).unwrap();
        let sd = load(&dir, "f").unwrap();
        assert!(sd.service.deps.is_empty());
        assert_eq!(sd.service.finish, Some(CommandLine::new(["./finish"])));

        fs::remove_file(dir.join("dependencies")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("dependencies")).unwrap();
        let err = load(&dir, "f").unwrap_err();
        assert!(
            err.to_string().ends_with("dependencies: file too big"),
            "{err}"
        );
    }

    #[test]
    fn log_file_is_a_warning_and_hooks_need_the_exec_bit() {
        let tmp = TempDir::new("warn");
        let dir = tmp.0.join("y");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("log"), "").unwrap();
        fs::create_dir_all(dir.join("control")).unwrap();
        fs::write(dir.join("control/u"), "").unwrap();
        let sd = load(&dir, "y").unwrap();
        assert!(sd.logger.is_none());
        assert_eq!(sd.warnings, ["./log: not a directory."]);
        assert_eq!(sd.service.output, Output::Inherit);
        assert_eq!(sd.service.start, CommandLine::new(["./run"]));

        exec(&dir.join("control/u"));
        let sd = load(&dir, "y").unwrap();
        assert_eq!(sd.service.start.argv[0], "/bin/sh");

        let err = load(&tmp.0.join("missing"), "m").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to change to directory: file does not exist"
        );
        fs::write(dir.join("dependencies"), "ok\nbad/name\n").unwrap();
        let err = load(&dir, "y").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("dependencies:2: not a service name: bad/name"),
            "{err}"
        );
    }

    #[test]
    fn notification_fd_makes_the_service_wait_for_readiness() {
        let tmp = TempDir::new("notify");
        let dir = tmp.0.join("z");
        exec(&dir.join("run"));
        fs::write(dir.join("notification-fd"), "4\n").unwrap();
        let sd = load(&dir, "z").unwrap();
        assert_eq!(sd.service.readiness, Readiness::NotifyFd(4));
        sd.service.validate().unwrap();

        fs::write(dir.join("notification-fd"), "1\n").unwrap();
        let err = load(&dir, "z").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("notification-fd: not a descriptor number from 3 to 1024: 1"),
            "{err}"
        );
    }
}
