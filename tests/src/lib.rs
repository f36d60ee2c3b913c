//! Helpers for braid's end-to-end tests: find the built binary, run a
//! session under either face (braid as `dinit`, braid as `runsvdir`), drive
//! it with braid's own `dinitctl` and `sv`, wait with deadlines, and leave
//! no process behind (every session is killed, with its services, on drop).
//!
//! The binary is `$BRAID_BIN`, else `braid` beside the test executable's
//! profile directory (brought up to date with cargo). When it cannot be
//! found, tests say "skipped: ..." and pass, except under `CI=true`.

pub mod fuzz;

use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The longest any single wait in a test may take.
pub const LIMIT: Duration = Duration::from_secs(20);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The braid binary, or `None` after saying the test is skipped (under
/// `CI=true` a missing binary fails the test).
pub fn braid_binary() -> Option<PathBuf> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let found = find_binary();
            if found.is_none() {
                skip_or_fail("braid binary not found (build it or set BRAID_BIN)");
            }
            found
        })
        .clone()
}

/// `$BRAID_BIN`, else `braid` in the profile directory the test runs from,
/// brought up to date with cargo first: a test of the daemon must not run
/// the binary of an older build (a no-op when it is current).
fn find_binary() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("BRAID_BIN") {
        return Some(PathBuf::from(b)).filter(|b| b.is_file());
    }
    // <target>/<profile>/deps/<test> or <target>/<profile>/examples/<ex>
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?.to_path_buf();
    let target_dir = profile_dir.parent()?;
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-q", "-p", "braid-turnstile"]);
    if profile_dir.file_name() == Some(OsStr::new("release")) {
        build.arg("--release");
    }
    let _ = build
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    let bin = profile_dir.join("braid");
    bin.is_file().then_some(bin)
}

/// The directory of the real dinit programs: `$BRAID_PEER_DINIT_DIR`, else
/// `shared/peers/dinit` beside the repository. `None` after saying the test
/// is skipped when it holds no `dinit` and `dinitctl` (under `CI=true` a
/// failure).
pub fn dinit_peer_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("BRAID_PEER_DINIT_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/dinit"),
    };
    if dir.join("dinit").is_file() && dir.join("dinitctl").is_file() {
        Some(dir)
    } else {
        skip_or_fail(&format!(
            "real dinit programs not found in {} (set BRAID_PEER_DINIT_DIR)",
            dir.display()
        ));
        None
    }
}

/// Says a test is skipped for want of `what`, or fails it under `CI=true`,
/// where every peer must be present.
pub fn skip_or_fail(what: &str) {
    assert!(!in_ci(), "{what} (required when CI=true)");
    eprintln!("skipped: {what}");
}

/// `program` copied into `dir` (mode 0755), to be run as another user: the
/// build's own path may pass through directories only its owner can search
/// (a checkout in root's home), and exec needs every one of them.
pub fn copy_for_other_user(program: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let name = program.file_name().expect("a program file name");
    let copy = dir.join(name);
    std::fs::copy(program, &copy).expect("copy program");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy
}

/// Spawns `cmd`, whose program may be a file just written (see
/// [`copy_for_other_user`]): while another thread of the test forks, its
/// child holds the copy's write descriptor until it execs, and exec meets
/// ETXTBSY. That passes within moments, with nothing to wait on: retried for
/// up to [`LIMIT`].
pub fn spawn_fresh_copy(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + LIMIT;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.expect("spawn"),
        }
    }
}

/// A private scratch directory (mode 0700), removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// A scratch directory inside `parent`.
    pub fn new_in(parent: &Path, tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = parent.join(format!("braid-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        TempDir(p)
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to `path` (creating parents) with `mode`.
pub fn write_file(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dir");
    }
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Polls `done` every 10 ms until it holds; `false` once `timeout` passed.
/// For what has no event to wait on: a file another process writes, a
/// process of somebody else's ending.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

/// Reads a pid a service wrote to `file`, waiting for it.
pub fn read_pid_file(file: &Path) -> i32 {
    let mut pid = 0;
    let ok = wait_until(LIMIT, || {
        pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    assert!(ok, "no pid in {}", file.display());
    pid
}

/// Live processes whose session is `sid` (a service's processes).
pub fn session_members(sid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = s.rsplit_once(')') else {
                return false;
            };
            let f: Vec<&str> = rest.split_ascii_whitespace().collect();
            f.first() != Some(&"Z") && f.get(3).and_then(|x| x.parse().ok()) == Some(sid)
        })
        .collect()
}

/// A personality of braid: a symlink named `name` to the binary, in `dir`.
pub fn personality(braid: &Path, dir: &Path, name: &str) -> PathBuf {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(braid, &link).expect("symlink personality");
    }
    link
}

/// Runs a client program with a deadline; its output.
pub fn run_client(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let pid = child.id() as i32;
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("client {cmd:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn read_all(mut r: impl std::io::Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

/// A braid process supervising a session, killed on drop with every
/// process of the sessions it started (found through `/proc`).
#[derive(Debug)]
pub struct Daemon {
    pub child: Option<Child>,
    /// Output of the daemon (stdout and stderr).
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with only stdin, stdout and stderr open (what the test
    /// harness inherited is not braid's to pass on).
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Daemon {
        // SAFETY: close_range is async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let file = std::fs::File::create(&log).expect("daemon log");
        let err = file.try_clone().expect("dup log");
        let child = spawn_fresh_copy(cmd.stdin(Stdio::null()).stdout(file).stderr(err));
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the daemon's output contains `text`.
    pub fn wait_log(&self, text: &str) -> bool {
        wait_until(LIMIT, || self.log_text().contains(text))
    }

    /// SIGKILLs braid alone: its services run on, as after a crash.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether braid is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends `signal` and waits (bounded) for braid to exit.
    pub fn stop(&mut self, signal: Signal) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = kill(Pid::from_raw(c.id() as i32), signal);
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills every process whose session leader's parent was braid or that
    /// braid started: the processes of sessions whose leaders are braid's
    /// children (services), by scanning /proc for the daemon's pid as
    /// parent, then their sessions.
    fn kill_sessions(pid: i32) {
        for leader in children_of(pid) {
            for member in session_members(leader) {
                let _ = kill(Pid::from_raw(member), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id() as i32;
            Daemon::kill_sessions(pid);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The pids whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let (_, rest) = s.rsplit_once(')')?;
                    rest.split_ascii_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(ppid)
        })
        .collect()
}

/// Kills the sessions of the given leaders when dropped (services of a
/// crashed braid, which no `Daemon` owns any more).
#[derive(Debug, Default)]
pub struct SessionGuard(pub Vec<i32>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        for &leader in &self.0 {
            for member in session_members(leader) {
                let _ = kill(Pid::from_raw(member), Signal::SIGKILL);
            }
        }
    }
}

/// braid as a dinit daemon (`dinit -d DIR -p SOCKET`) with its clients.
#[derive(Debug)]
pub struct DinitSession {
    pub dir: TempDir,
    pub daemon: Daemon,
    pub braid: PathBuf,
    /// The uid and gid braid runs as, when not the test's own.
    pub ids: Option<(u32, u32)>,
}

impl DinitSession {
    /// Writes each `(name, description)` into `dir/sd`, then starts braid
    /// as `dinit` on it (services named in `start` are started at boot)
    /// and waits for the control socket.
    pub fn start(tag: &str, services: &[(&str, &str)]) -> Option<DinitSession> {
        Self::start_as(tag, services, None)
    }

    /// As [`DinitSession::start`], with braid running as `ids` (uid, gid;
    /// the test must be root): the session directory is given to them.
    pub fn start_as(
        tag: &str,
        services: &[(&str, &str)],
        ids: Option<(u32, u32)>,
    ) -> Option<DinitSession> {
        let braid = braid_binary()?;
        let dir = TempDir::new(tag);
        let sd = dir.join("sd");
        std::fs::create_dir_all(&sd).expect("sd");
        write_file(&sd.join("boot"), "type = internal\n", 0o644);
        for (name, text) in services {
            write_file(&sd.join(name), text, 0o644);
        }
        let braid = match ids {
            Some((uid, gid)) => {
                for p in [dir.0.clone(), sd.clone()] {
                    std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
                }
                copy_for_other_user(&braid, &dir.0)
            }
            None => braid,
        };
        let daemon = Self::spawn_daemon(&braid, &dir, "daemon.log", ids);
        let s = DinitSession {
            dir,
            daemon,
            braid,
            ids,
        };
        // The file exists a moment before the socket listens.
        assert!(
            wait_until(LIMIT, || UnixStream::connect(s.socket()).is_ok()),
            "control socket: {}",
            s.daemon.log_text()
        );
        Some(s)
    }

    fn spawn_daemon(braid: &Path, dir: &TempDir, log: &str, ids: Option<(u32, u32)>) -> Daemon {
        let dinit = personality(braid, &dir.0, "dinit");
        let mut cmd = Command::new(dinit);
        if let Some((uid, gid)) = ids {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid).env("HOME", &dir.0);
        }
        cmd.arg("-d")
            .arg(dir.join("sd"))
            .arg("-p")
            .arg(dir.join("sock"))
            .env("BRAID_EVENT_DIR", dir.join("events"))
            .current_dir(&dir.0);
        Daemon::spawn(cmd, dir.join(log))
    }

    /// Starts braid again on the same session (after `daemon.crash()`).
    pub fn restart(&mut self, log: &str) {
        self.daemon = Self::spawn_daemon(&self.braid, &self.dir, log, self.ids);
        let sock = self.socket();
        assert!(
            wait_until(LIMIT, || std::os::unix::net::UnixStream::connect(&sock)
                .is_ok()),
            "control socket after restart: {}",
            self.daemon.log_text()
        );
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Runs braid's `dinitctl -p SOCKET ARGS...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let exe = personality(&self.braid, &self.dir.0, "dinitctl");
        run_client(Command::new(exe).arg("-p").arg(self.socket()).args(args))
    }

    /// `dinitctl` stdout as text, with its exit code.
    pub fn ctl_text(&self, args: &[&str]) -> (String, i32) {
        let o = self.ctl(args);
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&o.stderr));
        (text, o.status.code().unwrap_or(-1))
    }

    /// The pid `dinitctl status NAME` shows, if any.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        let (text, _) = self.ctl_text(&["status", name]);
        let at = text.find("Process ID: ")? + "Process ID: ".len();
        text[at..].split_whitespace().next()?.parse().ok()
    }
}

/// braid as `runsvdir DIR`, with `sv` pointed at it.
#[derive(Debug)]
pub struct RunitSession {
    pub dir: TempDir,
    pub daemon: Daemon,
    pub braid: PathBuf,
}

impl RunitSession {
    /// Creates a service directory `dir/service/NAME` for each `(name,
    /// run script)` and starts braid as `runsvdir` on `dir/service`.
    pub fn start(tag: &str, services: &[(&str, &str)]) -> Option<RunitSession> {
        let braid = braid_binary()?;
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.join("service")).expect("service dir");
        for (name, run) in services {
            write_file(&dir.join("service").join(name).join("run"), run, 0o755);
        }
        let daemon = Self::spawn_daemon(&braid, &dir, "daemon.log");
        Some(RunitSession { dir, daemon, braid })
    }

    fn spawn_daemon(braid: &Path, dir: &TempDir, log: &str) -> Daemon {
        let exe = personality(braid, &dir.0, "runsvdir");
        let mut cmd = Command::new(exe);
        cmd.arg(dir.join("service"))
            .env("BRAID_EVENT_DIR", dir.join("events"))
            .current_dir(&dir.0);
        Daemon::spawn(cmd, dir.join(log))
    }

    /// Starts braid again on the same directory (after `daemon.crash()`).
    pub fn restart(&mut self, log: &str) {
        self.daemon = Self::spawn_daemon(&self.braid, &self.dir, log);
    }

    /// Runs braid's `sv ARGS...` with `SVDIR` set; stdout+stderr, code.
    pub fn sv(&self, args: &[&str]) -> (String, i32) {
        let exe = personality(&self.braid, &self.dir.0, "sv");
        let o = run_client(
            Command::new(exe)
                .args(args)
                .env("SVDIR", self.dir.join("service")),
        );
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&o.stderr));
        (text, o.status.code().unwrap_or(-1))
    }

    /// Waits until `sv status NAME` starts with `prefix` (e.g. "run: ").
    pub fn wait_status(&self, name: &str, prefix: &str) -> String {
        let mut last = String::new();
        let ok = wait_until(LIMIT, || {
            last = self.sv(&["status", name]).0;
            last.starts_with(prefix)
        });
        assert!(ok, "sv status {name}: wanted {prefix:?}, got {last:?}");
        last
    }

    /// The pid `sv status NAME` shows, if any.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        let (text, _) = self.sv(&["status", name]);
        let at = text.find("(pid ")? + "(pid ".len();
        text[at..].split(')').next()?.parse().ok()
    }
}

/// A pipe for a dinit `--ready-fd`: the read end (close-on-exec, the
/// test's) and the write end, to pass by number to the daemon and drop once
/// it is spawned.
pub fn ready_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    nix::fcntl::fcntl(
        read_end.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .expect("close-on-exec");
    (read_end, write_end)
}

/// Why a daemon did not report ready on its ready fd.
#[derive(Debug)]
pub enum NotReady {
    /// It closed the fd without a NUL: it exited first.
    Exited,
    /// The time ran out; what it had written so far.
    TimedOut(Vec<u8>),
    /// Polling or reading the pipe failed.
    Pipe(nix::errno::Errno),
}

/// Waits (at most `limit`) until a daemon has written its socket path and
/// a NUL to its ready fd, and returns the path.
pub fn await_ready(read_end: &std::os::fd::OwnedFd, limit: Duration) -> Result<PathBuf, NotReady> {
    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::ffi::OsStrExt;
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !got.contains(&0) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotReady::TimedOut(got));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(NotReady::Pipe(e)),
        }
        let mut buf = [0u8; 256];
        match nix::unistd::read(read_end.as_raw_fd(), &mut buf) {
            Ok(0) => return Err(NotReady::Exited),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(NotReady::Pipe(e)),
        }
    }
    got.truncate(got.iter().position(|b| *b == 0).unwrap_or(got.len()));
    Ok(PathBuf::from(OsStr::from_bytes(&got)))
}
