//! Shared by the daemon comparison tests: runs braid as `dinit --user` and
//! the real dinit on the same service files, each in its own temporary
//! HOME and XDG_RUNTIME_DIR (so clients find the socket by the default
//! path), drives them with the real `dinitctl` and braid's, and records
//! transcripts to compare. Every wait is bounded; daemons are stopped (and
//! if need be killed) on drop.
//!
//! The braid binary and the real programs are found by `braid_tests`
//! (`$BRAID_BIN`, `$BRAID_PEER_DINIT_DIR`). When either is missing the tests
//! say so and pass, except under `CI=true`, where they fail.
#![allow(dead_code)] // each test file uses its own subset

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use braid_tests::{braid_binary, dinit_peer_dir as peer_dir};

/// Both implementations, or `None` (after saying why) when one is missing.
pub fn setup() -> Option<Peers> {
    let real = peer_dir()?;
    let braid = braid_binary()?;
    Some(Peers { real, braid })
}

#[derive(Debug, Clone)]
pub struct Peers {
    pub real: PathBuf,
    pub braid: PathBuf,
}

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Real,
    Braid,
}

pub use braid_tests::TempDir;

/// What a program printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// A running daemon (real or braid) on its own files.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    pub imp: Impl,
    pub dir: TempDir,
    pub services: PathBuf,
    pub socket: PathBuf,
    peers: Peers,
    exit: Option<i32>,
}

impl Daemon {
    /// Writes the service files (name, contents; a name ending in `/` is a
    /// directory, a content starting with `->` a symlink) and starts the
    /// daemon with `args` (after `--user -d <services> --ready-fd N`),
    /// waiting until it reports ready. `None` if it exited first (its exit
    /// code and console are then in the returned error text).
    pub fn start(peers: &Peers, imp: Impl, files: &[(&str, &str)], args: &[&str]) -> Daemon {
        let dir = TempDir::new(match imp {
            Impl::Real => "dreal",
            Impl::Braid => "dbraid",
        });
        let services = dir.0.join("sd");
        let run = dir.0.join("run");
        let home = dir.0.join("home");
        let bin = dir.0.join("bin");
        for d in [&services, &run, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        write_files(&services, files);
        let program = match imp {
            Impl::Real => peers.real.join("dinit"),
            Impl::Braid => {
                let link = bin.join("dinit");
                std::os::unix::fs::symlink(&peers.braid, &link).unwrap();
                link
            }
        };
        let (read_end, write_end) = braid_tests::ready_pipe();
        let console = File::create(dir.0.join("console")).unwrap();
        let errors = File::create(dir.0.join("stderr")).unwrap();
        let child = Command::new(&program)
            .arg("--user")
            .arg("-d")
            .arg(&services)
            .arg("--ready-fd")
            .arg(write_end.as_raw_fd().to_string())
            .args(args)
            .current_dir(&dir.0)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DINIT_SOCKET_PATH")
            .env_remove("XDG_CONFIG_HOME")
            .env("BRAID_TEST_VAR", "from-the-daemon")
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(errors)
            .spawn()
            .expect("spawn dinit");
        drop(write_end);
        let daemon = Daemon {
            child,
            imp,
            socket: run.join("dinitctl"),
            dir,
            services,
            peers: peers.clone(),
            exit: None,
        };
        // The ready fd gets the socket path and a NUL once listening; it
        // closes without them if the daemon exits first (tests of a daemon
        // that refuses to start see that in its console).
        match braid_tests::await_ready(&read_end, Duration::from_secs(20)) {
            Ok(path) => assert_eq!(path, daemon.socket, "{imp:?}: ready fd text"),
            Err(braid_tests::NotReady::Exited) => {}
            Err(why) => panic!(
                "{imp:?} dinit did not become ready: {why:?}\n{}",
                daemon.console()
            ),
        }
        daemon
    }

    /// Runs a client (`real` or braid's `dinitctl`) in this daemon's
    /// environment, finding the socket by the default path.
    pub fn ctl(&self, real_client: bool, args: &[&str]) -> Output {
        let program = if real_client {
            self.peers.real.join("dinitctl")
        } else {
            let link = self.dir.0.join("bin/dinitctl");
            if !link.exists() {
                std::os::unix::fs::symlink(&self.peers.braid, &link).unwrap();
            }
            link
        };
        let mut c = Command::new(program);
        // As root, dinitctl talks to the system instance unless told -u.
        if nix::unistd::getuid().is_root() {
            c.arg("-u");
        }
        c.args(args)
            .current_dir(&self.dir.0)
            .env("HOME", self.dir.0.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.0.join("run"))
            .env("BRAID_CLIENT_VAR", "from-the-client")
            .env_remove("DINIT_SOCKET_PATH")
            .env_remove("DINIT_CS_FD")
            .stdin(Stdio::null());
        run_bounded(c)
    }

    /// Polls `dinitctl is-started NAME` until it prints `state` (bounded).
    pub fn wait_state(&self, name: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.ctl(true, &["is-started", name]);
            if out.stdout.trim() == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: {name} never reached {state} (last: {out:?})",
                self.imp
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A raw connection to the control socket.
    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect to control socket");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Waits (bounded) for the daemon to exit by itself; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status.code().unwrap_or(-1));
                return self.exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, sig);
    }

    /// What the daemon wrote to its stdout (the console), normalised.
    pub fn console(&self) -> String {
        let text = std::fs::read_to_string(self.dir.0.join("console")).unwrap_or_default();
        let text: String = text
            .lines()
            // The real daemon's cgroup probe, about this machine.
            .filter(|l| !l.contains("cannot determine cgroup root path"))
            .map(|l| format!("{l}\n"))
            .collect();
        self.normalise(&text)
    }

    /// Pids and this daemon's directory replaced by placeholders.
    pub fn normalise(&self, text: &str) -> String {
        let dir = self.dir.0.to_string_lossy().into_owned();
        normalise_pids(&text.replace(&dir, "$DIR"))
    }

    /// Writes or replaces service files while the daemon runs.
    pub fn write(&self, files: &[(&str, &str)]) {
        write_files(&self.services, files);
    }
}

fn write_files(services: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = services.join(name);
        if name.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
            continue;
        }
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        match text.strip_prefix("->") {
            Some(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
            None => std::fs::write(&p, text).unwrap(),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if self.wait_exit(Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs to completion, killing the program if it takes over 30 s.
pub fn run_bounded(mut c: Command) -> Output {
    let child = braid_tests::spawn_fresh_copy(c.stdout(Stdio::piped()).stderr(Stdio::piped()));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r.expect("wait client"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            );
            panic!("client {c:?} did not finish within 30 s");
        }
    };
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Sorts each run of consecutive `[STOPPD]` lines. Only for scenarios in
/// which the real dinit itself announces those stops in either order (two
/// processes signalled at once, whose exits it reaps as they come); every
/// other scenario compares the stop lines in order.
pub fn sort_stop_runs(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with("[STOPPD] ") {
            run.push(line);
            continue;
        }
        run.sort_unstable();
        out.append(&mut run);
        out.push(line);
    }
    run.sort_unstable();
    out.append(&mut run);
    out.iter().map(|l| format!("{l}\n")).collect()
}

/// Replaces the digits after each pid marker with `N`.
pub fn normalise_pids(text: &str) -> String {
    let mut s = text.to_string();
    for marker in ["(pid: ", "Process ID: ", "with pid ", "pid "] {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(p) = rest.find(marker) {
            out.push_str(&rest[..p + marker.len()]);
            rest = &rest[p + marker.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push('N');
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Run dinitctl with these arguments; its output goes in the transcript.
    Ctl(&'a [&'a str]),
    /// Wait until `is-started NAME` prints the state (not in the transcript).
    Wait(&'a str, &'a str),
    /// Replace a service file.
    Write(&'a str, &'a str),
    /// Wait for the daemon to exit by itself; its code goes in the transcript.
    Exit,
}

/// Runs `steps` on a fresh daemon of kind `imp` driven by the real
/// (`real_client`) or braid's dinitctl; returns the transcript, ending with
/// the daemon's console once it has stopped.
pub fn transcript(
    peers: &Peers,
    imp: Impl,
    real_client: bool,
    files: &[(&str, &str)],
    args: &[&str],
    steps: &[Step<'_>],
) -> String {
    let mut daemon = Daemon::start(peers, imp, files, args);
    let mut t = String::new();
    for step in steps {
        match step {
            Step::Ctl(a) => {
                let out = daemon.ctl(real_client, a);
                t.push_str(&format!("$ dinitctl {}\n", a.join(" ")));
                t.push_str(&daemon.normalise(&out.stdout));
                if !out.stderr.is_empty() {
                    t.push_str("[stderr]\n");
                    t.push_str(&daemon.normalise(&out.stderr));
                }
                t.push_str(&format!("[exit {}]\n", out.code));
            }
            Step::Wait(name, state) => daemon.wait_state(name, state),
            Step::Write(name, text) => daemon.write(&[(name, text)]),
            Step::Exit => {
                let code = daemon.wait_exit(Duration::from_secs(20));
                t.push_str(&format!("[daemon exit {code:?}]\n"));
            }
        }
    }
    if daemon.wait_exit(Duration::ZERO).is_none() {
        daemon.signal(nix::sys::signal::Signal::SIGTERM);
        let code = daemon.wait_exit(Duration::from_secs(20));
        t.push_str(&format!("[SIGTERM: daemon exit {code:?}]\n"));
    }
    t.push_str("[console]\n");
    t.push_str(&daemon.console());
    t
}

/// Whether a scenario's runs of `[STOPPD]` lines are compared in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOrder {
    /// The real dinit's order is deterministic: compared as printed.
    Exact,
    /// The real dinit announces some stops in either order (a race among
    /// process exits): each run of `[STOPPD]` lines is compared sorted.
    Racy,
}

/// The scenario on the real daemon (real client) against braid's daemon
/// with the real client and with braid's client: all three transcripts
/// must be equal, stop lines in order.
pub fn compare(files: &[(&str, &str)], args: &[&str], steps: &[Step<'_>]) {
    compare_with(StopOrder::Exact, files, args, steps);
}

/// `compare`, choosing how stop lines are compared. With
/// `BRAID_REAL_REPEAT=N` the real scenario runs N more times first and must
/// print the same transcript each time (after sorting, for `Racy`): how to
/// check that the real dinit is deterministic where a test says so.
pub fn compare_with(order: StopOrder, files: &[(&str, &str)], args: &[&str], steps: &[Step<'_>]) {
    let Some(peers) = setup() else {
        return;
    };
    let run = |imp, real_client| {
        let t = transcript(&peers, imp, real_client, files, args, steps);
        match order {
            StopOrder::Exact => t,
            StopOrder::Racy => sort_stop_runs(&t),
        }
    };
    let real = run(Impl::Real, true);
    if std::env::var_os("BRAID_SHOW_TRANSCRIPT").is_some() {
        eprintln!("{real}");
    }
    let repeat = std::env::var("BRAID_REAL_REPEAT").map_or(0, |n| n.parse().unwrap_or(0));
    for i in 0..repeat {
        assert_eq!(run(Impl::Real, true), real, "real dinit, repeat {i}");
    }
    let braid = run(Impl::Braid, true);
    assert_eq!(
        braid, real,
        "braid dinit (left) differs from the real dinit (right), real dinitctl"
    );
    let braid_client = run(Impl::Braid, false);
    assert_eq!(
        braid_client, real,
        "braid dinit with braid's dinitctl (left) differs from the real pair (right)"
    );
}

/// Sends bytes on a raw connection and reads what comes back until `n`
/// bytes arrived or the daemon closed the connection (bounded by the
/// socket's read timeout).
pub fn exchange(s: &mut UnixStream, send: &[u8], n: usize) -> Vec<u8> {
    s.write_all(send).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < n {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(_) => break,
        }
    }
    got
}
