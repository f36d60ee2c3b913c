//! An emulated turnstiled for one user, without PAM or root: it drives a
//! backend program through `run` → FIFO → `ready` → `stop` in the order and
//! with the environment the real daemon uses (turnstile spec §8), and
//! reports when login would have been released, what the backend said, and
//! what it left behind (processes, files).
//!
//! Every wait is bounded; whatever the harness started is killed when the
//! values that own it are dropped.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

mod backends;
#[allow(unused_imports)] // its constants; not every test file uses them
pub use backends::*;

/// The braid binary under test.
pub const BRAID: &str = env!("CARGO_BIN_EXE_braid");

/// turnstiled's read limit for the ready string (PATH_MAX).
const READY_MAX: usize = 4096;

/// The variable that marks every process of one emulated login, so that
/// leftovers can be found even when they left the session.
pub const TAG_VAR: &str = "BRAID_HARNESS_TAG";

/// Whether a missing prerequisite fails the test (under CI) or skips it.
pub fn skip_or_fail(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("required for this test under CI: {what}");
    }
    eprintln!("skipped: {what}");
}

/// A temporary directory, removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Short: socket paths under it must stay below 108 bytes.
        let dir = PathBuf::from(format!("/tmp/bt-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One user's world: `T/home`, `T/rundir`, `T/conf`, `T/run/turnstiled/UID`
/// and braid installed under `T/prefix` (backends in
/// `T/prefix/libexec/turnstile`).
#[derive(Debug)]
pub struct Fixture {
    pub root: TempDir,
    pub home: PathBuf,
    pub rundir: PathBuf,
    pub conf: PathBuf,
    pub login_dir: PathBuf,
    pub prefix: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    /// PATH given to `run` (turnstile gives the libc default).
    pub path: OsString,
    /// Extra variables for `run`, as a PAM stack would add.
    pub extra_env: Vec<(OsString, OsString)>,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let root = TempDir::new(tag);
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let r = root.0.clone();
        let login_dir = r.join(format!("run/turnstiled/{uid}"));
        for (dir, mode) in [
            (r.join("home"), 0o755),
            (r.join("rundir"), 0o700),
            (r.join("conf"), 0o755),
            (login_dir.clone(), 0o700),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .expect("fixture dir");
        }
        let prefix = r.join("prefix");
        let out = Command::new(BRAID)
            .args(["install", "--prefix"])
            .arg(&prefix)
            .output()
            .expect("braid install");
        assert!(
            out.status.success(),
            "braid install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Fixture {
            home: r.join("home"),
            rundir: r.join("rundir"),
            conf: r.join("conf"),
            login_dir,
            prefix,
            uid,
            gid,
            user: "braid-test".into(),
            path: "/usr/bin:/bin".into(),
            extra_env: Vec::new(),
            root,
        }
    }

    /// The installed backend program called `name`.
    pub fn backend(&self, name: &str) -> PathBuf {
        self.prefix.join("libexec/turnstile").join(name)
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.prefix.join("bin").join(name)
    }

    /// Writes `text` to `HOME/rel` (making directories), mode `mode`.
    pub fn write(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.home.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// turnstile's environment for `run`, built from scratch.
    fn run_env(&self, tag: &str) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = self.extra_env.clone();
        let base: [(&str, OsString); 8] = [
            ("SHELL", "/bin/sh".into()),
            ("USER", self.user.clone().into()),
            ("LOGNAME", self.user.clone().into()),
            ("HOME", self.home.clone().into()),
            ("UID", self.uid.to_string().into()),
            ("GID", self.gid.to_string().into()),
            ("PATH", self.path.clone()),
            ("XDG_RUNTIME_DIR", self.rundir.clone().into()),
        ];
        for (k, v) in base {
            if !env.iter().any(|(ek, _)| ek == k) {
                env.push((k.into(), v));
            }
        }
        env.push((TAG_VAR.into(), tag.into()));
        env
    }
}

/// A process the harness started, killed (with its group) and reaped when
/// dropped unless it was waited for.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pidfd: OwnedFd,
    pub status: Option<ExitStatus>,
}

impl Proc {
    /// Takes charge of a child the test spawned.
    pub fn spawned(child: Child) -> Proc {
        Proc::new(child)
    }

    fn new(child: Child) -> Proc {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, child.id(), 0) };
        assert!(fd >= 0, "pidfd_open: {}", Errno::last());
        Proc {
            child,
            // SAFETY: the syscall just returned this fd.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the process to exit, up to `deadline`.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                return self.status;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, timeout_of(left));
        }
    }

    pub fn wait_for(&mut self, bound: Duration) -> Option<ExitStatus> {
        self.wait_until(Instant::now() + bound)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn timeout_of(d: Duration) -> PollTimeout {
    PollTimeout::try_from(d.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX)
}

/// What `ready` did.
#[derive(Debug)]
pub struct ReadyRun {
    pub status: Option<ExitStatus>,
    pub stderr: String,
    /// When it returned: turnstiled would send MSG_OK_DONE now.
    pub at: Instant,
}

/// A running login: the manager and what happened on the way up.
#[derive(Debug)]
pub struct Login {
    pub manager: Proc,
    pub tag: String,
    pub srvdir: PathBuf,
    pub log: PathBuf,
    pub t0: Instant,
    pub t_fifo: Instant,
    pub ready_string: Vec<u8>,
    pub ready: ReadyRun,
}

impl Login {
    /// The manager's output so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Seconds from the spawn of `run` to the end of `ready`.
    pub fn gating(&self) -> Duration {
        self.ready.at - self.t0
    }

    /// Where the manager's open fds point; its own event log, named after
    /// its pid, is shown as `events-PID.jsonl` so that logins compare.
    pub fn manager_fds(&self) -> Vec<String> {
        let pid = self.manager.pid();
        let own_log = format!("events-{pid}.jsonl");
        open_fds(pid)
            .into_iter()
            .map(|fd| fd.replace(&own_log, "events-PID.jsonl"))
            .collect()
    }
}

/// How a logout went.
#[derive(Debug)]
pub struct Logout {
    pub stop_status: Option<ExitStatus>,
    pub manager_status: Option<ExitStatus>,
    /// Tagged processes still alive after the manager exited.
    pub leftovers: Vec<String>,
    /// What was in the login dir before the daemon's cleanup.
    pub login_dir_entries: Vec<String>,
}

/// Why a login did not come up.
#[derive(Debug)]
pub enum LoginError {
    /// The manager exited before the ready string was complete.
    DiedBeforeReady { status: ExitStatus, log: String },
    /// No complete ready string within the timeout.
    NoReadyString { got: Vec<u8>, log: String },
}

/// turnstiled, reduced to one user and one backend.
#[derive(Debug)]
pub struct Turnstiled<'a> {
    pub fixture: &'a Fixture,
    pub backend: PathBuf,
    pub login_timeout: Duration,
    /// PATH of `ready` and `stop` (the daemon's own environment).
    pub helper_path: OsString,
    count: u32,
}

impl<'a> Turnstiled<'a> {
    pub fn new(fixture: &'a Fixture, backend: &str) -> Turnstiled<'a> {
        Turnstiled {
            fixture,
            backend: fixture.backend(backend),
            login_timeout: Duration::from_secs(30),
            helper_path: "/usr/bin:/bin".into(),
            count: 0,
        }
    }

    /// Uses another backend program (turnstile's stock script, say).
    pub fn with_backend_path(mut self, path: PathBuf) -> Self {
        self.backend = path;
        self
    }

    /// First login: start the manager and wait until `ready` has returned.
    pub fn login(&mut self) -> Result<Login, LoginError> {
        let f = self.fixture;
        self.count += 1;
        let tag = format!(
            "{}-{}-{}",
            std::process::id(),
            f.root.0.display(),
            self.count
        );
        // srv_start: empty the login dir, make the FIFO, open it first.
        empty_dir(&f.login_dir);
        let fifo = f.login_dir.join("ready");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let reader = open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open FIFO");
        // SAFETY: open just returned it.
        let reader = unsafe { OwnedFd::from_raw_fd(reader) };

        let log = f.root.0.join(format!("manager-{}.log", self.count));
        let out = File::create(&log).expect("log file");
        // The daemon names it srv.<pid of the child>; the backend must
        // treat the name as opaque, so a counter does (spec §8.2).
        let srvdir = f.login_dir.join(format!("srv.{}", self.count));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&srvdir)
            .expect("srv dir");
        let mut cmd = Command::new(&self.backend);
        cmd.arg("run")
            .arg(&fifo)
            .arg(&srvdir)
            .arg(&f.conf)
            .env_clear()
            .envs(f.run_env(&tag))
            .current_dir(&f.home)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::libc::setsid();
                Ok(())
            });
        }
        let t0 = Instant::now();
        let deadline = t0 + self.login_timeout;
        let child = cmd.spawn().expect("spawn backend run");
        let mut manager = Proc::new(child);

        let got = read_ready_string(&reader, &mut manager, deadline);
        drop(reader);
        let _ = std::fs::remove_file(&fifo);
        let t_fifo = Instant::now();
        let ready_string = match got {
            ReadOutcome::Complete(s) => s,
            ReadOutcome::Died(status, _) => {
                return Err(LoginError::DiedBeforeReady {
                    status,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                })
            }
            ReadOutcome::TimedOut(got) => {
                return Err(LoginError::NoReadyString {
                    got,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                })
            }
        };
        let ready = self.run_ready(&ready_string, deadline);
        Ok(Login {
            manager,
            tag,
            srvdir,
            log,
            t0,
            t_fifo,
            ready_string,
            ready,
        })
    }

    /// `ready STRING` with a foreign environment, as the daemon runs it.
    pub fn run_ready(&self, string: &[u8], deadline: Instant) -> ReadyRun {
        let child = self
            .helper(&[OsStr::new("ready"), OsStr::from_bytes(string)])
            .spawn()
            .expect("spawn ready");
        let mut p = Proc::new(child);
        let status = p.wait_until(deadline);
        let at = Instant::now();
        let mut stderr = String::new();
        if let Some(mut e) = p.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        ReadyRun { status, stderr, at }
    }

    fn helper(&self, args: &[&OsStr]) -> Command {
        let mut cmd = Command::new(&self.backend);
        cmd.args(args)
            .env_clear()
            .env("PATH", &self.helper_path)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Last logout: `stop PID`, wait for the manager (bounded; a second
    /// `stop`, then SIGKILL, as the daemon escalates), then the daemon's
    /// cleanup of the login dir and the rundir.
    pub fn logout(&self, mut login: Login, bound: Duration) -> Logout {
        let pid = login.manager.pid().to_string();
        let stop = |this: &Self| {
            let child = this
                .helper(&[OsStr::new("stop"), OsStr::new(&pid)])
                .spawn()
                .expect("spawn stop");
            Proc::new(child).wait_for(Duration::from_secs(10))
        };
        let stop_status = stop(self);
        let mut manager_status = login.manager.wait_for(bound);
        if manager_status.is_none() {
            stop(self);
            manager_status = login.manager.wait_for(bound);
        }
        if manager_status.is_none() {
            let _ = kill(Pid::from_raw(login.manager.pid()), Signal::SIGKILL);
            login.manager.wait_for(Duration::from_secs(5));
        }
        // The manager reaps what it stopped before it exits: whatever is
        // found now was left behind.
        let leftovers = tagged_processes(&login.tag);
        let login_dir_entries = list_dir(&self.fixture.login_dir);
        empty_dir(&self.fixture.login_dir);
        empty_dir(&self.fixture.rundir);
        Logout {
            stop_status,
            manager_status,
            leftovers,
            login_dir_entries,
        }
    }
}

enum ReadOutcome {
    Complete(Vec<u8>),
    Died(ExitStatus, Vec<u8>),
    TimedOut(Vec<u8>),
}

/// turnstiled's FIFO reading (§3.3): byte by byte until EAGAIN/EOF; done
/// at a NUL (not kept), at 4096 bytes, or at POLLHUP. The manager exiting
/// first is a failed start.
fn read_ready_string(reader: &OwnedFd, manager: &mut Proc, deadline: Instant) -> ReadOutcome {
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ReadOutcome::TimedOut(got);
        }
        let (fifo_ev, died) = {
            let mut fds = [
                PollFd::new(reader.as_fd(), PollFlags::POLLIN),
                PollFd::new(manager.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, timeout_of(left)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => panic!("poll: {e}"),
            }
            (
                fds[0].revents().unwrap_or(PollFlags::empty()),
                fds[1].revents().is_some_and(|r| !r.is_empty()),
            )
        };
        if fifo_ev.contains(PollFlags::POLLIN) {
            loop {
                let mut b = [0u8; 1];
                match nix::unistd::read(reader.as_raw_fd(), &mut b) {
                    Ok(1) => {
                        if b[0] == 0 {
                            return ReadOutcome::Complete(got);
                        }
                        if got.len() >= READY_MAX {
                            return ReadOutcome::Complete(got);
                        }
                        got.push(b[0]);
                    }
                    _ => break,
                }
            }
        }
        if fifo_ev.contains(PollFlags::POLLHUP) {
            return ReadOutcome::Complete(got);
        }
        if died && !fifo_ev.contains(PollFlags::POLLIN) {
            let status = manager
                .wait_for(Duration::from_secs(5))
                .unwrap_or(ExitStatus::from_raw(-1));
            return ReadOutcome::Died(status, got);
        }
    }
}

/// Removes everything inside `dir`.
pub fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// The names in `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Live processes (not zombies) whose environment carries `TAG_VAR=tag`,
/// as "pid cmdline".
pub fn tagged_processes(tag: &str) -> Vec<String> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let base = e.path();
        let Ok(environ) = std::fs::read(base.join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(base.join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        if state == "Z" {
            continue;
        }
        let cmdline = std::fs::read(base.join("cmdline")).unwrap_or_default();
        let cmdline: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        found.push(format!("{pid} {}", cmdline.join(" ")));
    }
    found
}

/// Kills every live process tagged `tag` (cleanup after a failed test).
pub fn kill_tagged(tag: &str) {
    for line in tagged_processes(tag) {
        if let Some(pid) = line.split(' ').next().and_then(|p| p.parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        if self.manager.status.is_none() {
            let _ = kill(Pid::from_raw(self.manager.pid()), Signal::SIGKILL);
            self.manager.wait_for(Duration::from_secs(5));
        }
        kill_tagged(&self.tag);
    }
}

/// Where `pid`'s open fds point, as "fd -> target".
pub fn open_fds(pid: i32) -> Vec<String> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|it| {
            it.flatten()
                .map(|e| {
                    let target = std::fs::read_link(e.path()).unwrap_or_default();
                    format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        target.display()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// How many fds this (test) process has open.
pub fn own_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
