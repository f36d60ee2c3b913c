//! Shared by the runit-face tests: scratch service trees supervised by the
//! REAL `runsvdir` (one runsv per service) or by braid's `runsvdir` (one
//! process), the sv programs to drive them, and output comparison.
//!
//! braid runs through symlinks to the `braid` binary (`<tmp>/bin/runsvdir`,
//! `<tmp>/bin/sv`), found by `braid_tests::braid_binary`. Without it, or
//! without Debian's runit, a test prints "skipped: ..." and passes, except
//! under `CI=true`, where that is a failure.

#![allow(dead_code)] // each test file uses its own part of this module

use std::fs;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use braid_runit::supervise::{RunState, SuperviseFiles};
pub use braid_tests::TempDir;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const REAL_SV: &str = "/usr/bin/sv";
pub const REAL_RUNSVDIR: &str = "/usr/bin/runsvdir";
pub const REAL_RUNSV: &str = "/usr/bin/runsv";

/// The `braid` binary to test.
pub fn braid_bin() -> Option<PathBuf> {
    braid_tests::braid_binary()
}

/// Whether the test can run; prints why not (and fails under CI).
pub fn ready() -> bool {
    let missing = [REAL_SV, REAL_RUNSVDIR, REAL_RUNSV]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} not installed (apt-get install runit)"));
    match missing {
        None => braid_bin().is_some(),
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("required peer missing under CI: {why}")
        }
        Some(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Writes an executable `#!/bin/sh` script.
pub fn write_exec(path: &Path, body: &str) {
    braid_tests::write_file(path, &format!("#!/bin/sh\n{body}\n"), 0o755);
}

/// Polls `cond` until it holds; panics after `limit`.
pub fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) {
    assert!(
        braid_tests::wait_until(limit, cond),
        "timed out waiting for {what}"
    );
}

/// State of a supervised process as its `supervise/status` shows it.
pub fn state_of(supervise: &Path) -> Option<(RunState, u32)> {
    let s = SuperviseFiles::new(supervise).read_status().ok()?;
    Some((s.state()?, s.pid()))
}

/// Whether a supervisor holds `supervise/ok` open (what sv tests).
pub fn supervised(service: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(service.join("supervise/ok"))
        .is_ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Real,
    Braid,
}

/// The standard services of the sv tests ([`Tree::standard`]):
///
/// - `a`: long-running, ignores HUP ALRM INT QUIT USR1 USR2 (so signal
///   commands do not change its state);
/// - `b`: normally down; runs 3 s then exits 3;
/// - `c`: normally down, long-running;
/// - `d`: long-running with a `check` that passes once `d/ready` exists;
/// - `e`: long-running with a `log/` service;
/// - `g`: long-running and ignores TERM.
pub fn standard_services(svc: &Path) {
    write_exec(
        &svc.join("a/run"),
        "trap '' HUP ALRM INT QUIT USR1 USR2\nexec sleep 1000",
    );
    write_exec(&svc.join("b/run"), "sleep 3\nexit 3");
    fs::write(svc.join("b/down"), "").unwrap();
    write_exec(&svc.join("c/run"), "exec sleep 1000");
    fs::write(svc.join("c/down"), "").unwrap();
    write_exec(&svc.join("d/run"), "exec sleep 1000");
    write_exec(&svc.join("d/check"), "test -e ready");
    write_exec(&svc.join("e/run"), "exec sleep 1000");
    write_exec(&svc.join("e/log/run"), "exec cat >/dev/null");
    write_exec(&svc.join("g/run"), "trap '' TERM\nexec sleep 1000");
}

/// A services directory under a runsvdir of either kind; everything it
/// started is killed on drop.
pub struct Tree {
    pub scratch: TempDir,
    pub kind: Kind,
    runsvdir: Child,
}

impl Tree {
    /// Writes the services with `setup(<services dir>)`, then starts
    /// `runsvdir <services dir>` (stderr to `<root>/stderr`).
    pub fn start(kind: Kind, tag: &str, setup: impl FnOnce(&Path)) -> Tree {
        Tree::start_in(TempDir::new(&format!("{tag}-{kind:?}")), kind, setup)
    }

    /// [`Tree::start`] in the directory `scratch` (e.g. one on tmpfs).
    pub fn start_in(scratch: TempDir, kind: Kind, setup: impl FnOnce(&Path)) -> Tree {
        let svc = scratch.join("service");
        fs::create_dir_all(&svc).unwrap();
        setup(&svc);
        // The real runsvdir sleeps a second when the directory changed in
        // the current second; wait that out so both start alike.
        let changed = fs::metadata(&svc).unwrap().modified().unwrap();
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            <= changed
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let program = match kind {
            Kind::Real => PathBuf::from(REAL_RUNSVDIR),
            Kind::Braid => braid_link(&scratch, "runsvdir"),
        };
        let stderr = fs::File::create(scratch.join("stderr")).unwrap();
        let runsvdir = Command::new(program)
            .arg(&svc)
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("start runsvdir");
        Tree {
            scratch,
            kind,
            runsvdir,
        }
    }

    /// The [`standard_services`] under the real runsvdir, with braid's sv
    /// as `<root>/bin/sv`, once each service is in its initial state.
    pub fn standard(tag: &str) -> Tree {
        let tree = Tree::start(Kind::Real, tag, standard_services);
        braid_link(&tree.scratch, "sv");
        for (name, want) in [
            ("a", RunState::Run),
            ("b", RunState::Down),
            ("c", RunState::Down),
            ("d", RunState::Run),
            ("e", RunState::Run),
            ("e/log", RunState::Run),
            ("g", RunState::Run),
        ] {
            tree.wait_state(name, want);
        }
        tree
    }

    pub fn root(&self) -> &Path {
        &self.scratch.0
    }

    pub fn svdir(&self) -> PathBuf {
        self.root().join("service")
    }

    pub fn service(&self, name: &str) -> PathBuf {
        self.svdir().join(name)
    }

    pub fn pid(&self) -> u32 {
        self.runsvdir.id()
    }

    /// braid's sv, as `<root>/bin/sv` (made by [`Tree::standard`]).
    pub fn braid_sv(&self) -> PathBuf {
        self.root().join("bin/sv")
    }

    /// What runsvdir and its services wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.root().join("stderr")).unwrap_or_default()
    }

    /// Waits (at most 15 s) until `name`'s status says `want` (with a pid
    /// unless down).
    pub fn wait_state(&self, name: &str, want: RunState) {
        let sup = self.service(name).join("supervise");
        wait_for(
            &format!("{name} to be {want:?} under {:?}", self.kind),
            Duration::from_secs(15),
            || matches!(state_of(&sup), Some((s, pid)) if s == want && (want == RunState::Down) == (pid == 0)),
        );
    }

    /// The pid `name`'s supervisor reports (0: none).
    pub fn pid_of(&self, name: &str) -> u32 {
        state_of(&self.service(name).join("supervise")).map_or(0, |(_, pid)| pid)
    }

    /// Waits (at most 15 s) until `name` runs under a pid other than `old`.
    pub fn wait_restarted(&self, name: &str, old: u32) {
        let sup = self.service(name).join("supervise");
        wait_for(
            &format!("{name} to run again (was pid {old})"),
            Duration::from_secs(15),
            || matches!(state_of(&sup), Some((RunState::Run, pid)) if pid != 0 && pid != old),
        );
    }

    /// Waits (at most 15 s) until `name` runs and its supervisor's want
    /// byte is `want` (`u` or `d`): a command's effect, not only sv's word.
    pub fn wait_running(&self, name: &str, want: u8) {
        let files = SuperviseFiles::new(self.service(name).join("supervise"));
        wait_for(
            &format!("{name} to run, want {}", want as char),
            Duration::from_secs(15),
            || {
                files.read_status().is_ok_and(|s| {
                    s.state() == Some(RunState::Run) && s.pid() != 0 && s.want_byte() == want
                })
            },
        );
    }

    /// Waits (at most 15 s) until `name` is down and wanted down: a
    /// service down for a restart's one-second pause is not yet stopped.
    pub fn wait_stopped(&self, name: &str) {
        let files = SuperviseFiles::new(self.service(name).join("supervise"));
        wait_for(
            &format!("{name} to be down and wanted down"),
            Duration::from_secs(15),
            || {
                files.read_status().is_ok_and(|s| {
                    s.state() == Some(RunState::Down) && s.pid() == 0 && s.want_byte() == b'd'
                })
            },
        );
    }

    /// Waits until `name` is as `how` says; `pid_before` is its pid before
    /// the command (for [`Settle::Restarted`]).
    pub fn settle(&self, name: &str, how: Settle, pid_before: u32) {
        match how {
            Settle::Down => self.wait_stopped(name),
            Settle::Run => self.wait_running(name, b'u'),
            Settle::Once => self.wait_running(name, b'd'),
            Settle::Finish => self.wait_state(name, RunState::Finish),
            Settle::Restarted => self.wait_restarted(name, pid_before),
        }
    }

    /// Runs Debian's sv with `SVDIR` pointing here.
    pub fn sv(&self, args: &[&str]) -> Outcome {
        run(
            Path::new(REAL_SV),
            None,
            args,
            self.root(),
            &self.svdir(),
            &[],
        )
    }

    /// Every pid in the tree's `supervise/pid` files.
    fn service_pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        let mut dirs = vec![self.svdir()];
        while let Some(dir) = dirs.pop() {
            let Ok(read) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in read.flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == "supervise") {
                    if let Ok(text) = fs::read_to_string(path.join("pid")) {
                        pids.extend(text.trim().parse::<i32>().ok());
                    }
                } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(path);
                }
            }
        }
        pids
    }
}

/// `<root>/bin/NAME`, a symlink to the braid binary.
fn braid_link(root: &TempDir, name: &str) -> PathBuf {
    let link = root.join("bin").join(name);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(braid_bin().expect("braid binary"), &link).unwrap();
    link
}

impl Drop for Tree {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.runsvdir.id() as i32);
        if self.kind == Kind::Braid {
            // braid's services live in sessions of their own: stop them
            // through braid (HUP), then kill whatever is left.
            let _ = kill(pgid, Signal::SIGHUP);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.runsvdir.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Only braid's own children: a stale pid may be anyone's now.
            let parent = self.runsvdir.id().to_string();
            for pid in self.service_pids() {
                if parent_of(pid).as_deref() == Some(parent.as_str()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // The real runsvdir's runsv and services are in its group.
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.runsvdir.kill();
        let _ = self.runsvdir.wait();
    }
}

/// What a test step waits for before the next one: the supervisor's own
/// record, not sv's word. sv's checks can pass before the supervisor acted
/// (a restart check compares start times in whole seconds; `up` passes at
/// once on a running service), and a next step that meets a command half
/// done sees a different state in each tree.
#[derive(Clone, Copy, Debug)]
pub enum Settle {
    /// Down, and wanted down.
    Down,
    /// Running, and wanted up.
    Run,
    /// Running once: wanted down.
    Once,
    /// Running its `finish` script.
    Finish,
    /// Running under a process other than the one before the step.
    Restarted,
}

/// The parent pid of `pid`, from `/proc`.
fn parent_of(pid: i32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    after_comm.split_whitespace().nth(1).map(str::to_string)
}

/// What a program printed and returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// Runs `program` (with `argv0` as argv[0] if given) in `cwd` with `SVDIR`
/// set and `SVWAIT` unset unless given in `env`.
pub fn run(
    program: &Path,
    argv0: Option<&str>,
    args: &[&str],
    cwd: &Path,
    svdir: &Path,
    env: &[(&str, &str)],
) -> Outcome {
    let mut cmd = Command::new(program);
    if let Some(a0) = argv0 {
        cmd.arg0(a0);
    }
    cmd.args(args)
        .current_dir(cwd)
        .env("SVDIR", svdir)
        .env_remove("SVWAIT")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
    }
}

/// Replaces the elapsed-seconds field of status lines (`… 12s`) by `Ns` and
/// returns the numbers taken out, in order.
pub fn take_seconds(text: &str) -> (String, Vec<u64>) {
    let mut out = String::new();
    let mut secs = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts_field = i > 0 && b[i - 1] == b' ' && b[i].is_ascii_digit();
        if starts_field {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let ends_field = j < b.len()
                && b[j] == b's'
                && matches!(b.get(j + 1), None | Some(b'\n' | b',' | b';'));
            if ends_field {
                secs.push(text[i..j].parse().unwrap());
                out.push('N');
                i = j;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    (out, secs)
}

/// Replaces every `(pid N)` by `(pid P)`.
pub fn hide_pids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("(pid ") {
        out.push_str(&rest[..i + 5]);
        let after = &rest[i + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push('P');
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Both: pids as `(pid P)`, seconds as `Ns` (the seconds taken out).
pub fn normalize(text: &str) -> (String, Vec<u64>) {
    take_seconds(&hide_pids(text))
}

/// How closely two outcomes must agree.
#[derive(Clone, Copy, Debug)]
pub enum Match {
    /// Same bytes, except that each seconds field may differ by one (two
    /// runs straddling a second boundary). For runs on the same tree.
    Exact,
    /// Same bytes apart from pids; seconds may differ by two. For two trees
    /// started together and driven in lockstep, whose sv runs are scheduled
    /// independently on a loaded machine.
    Lockstep,
    /// Same bytes apart from pids and seconds values. For two trees whose
    /// start times may drift apart.
    Shape,
}

/// Asserts two outcomes agree as `how` says.
pub fn assert_same(what: &str, real: &Outcome, ours: &Outcome, how: Match) {
    let norm = |s: &str| match how {
        Match::Exact => take_seconds(s),
        Match::Lockstep | Match::Shape => normalize(s),
    };
    let (real_out, real_secs) = norm(&real.stdout);
    let (our_out, our_secs) = norm(&ours.stdout);
    assert_eq!(
        (&real_out, &real.stderr, real.code),
        (&our_out, &ours.stderr, ours.code),
        "{what}: real (left) and braid (right) differ\nreal stdout: {:?}\nours stdout: {:?}",
        real.stdout,
        ours.stdout
    );
    let slack = match how {
        Match::Exact => 1,
        Match::Lockstep => 2,
        Match::Shape => return,
    };
    for (r, o) in real_secs.iter().zip(&our_secs) {
        assert!(
            r.abs_diff(*o) <= slack,
            "{what}: seconds {r} vs {o}\n{real:?}\n{ours:?}"
        );
    }
}

/// The same services under the real runsvdir and under braid, driven by
/// Debian's sv.
pub struct Pair {
    pub real: Tree,
    pub ours: Tree,
}

impl Pair {
    pub fn start(tag: &str, setup: impl Fn(&Path) + Sync) -> Pair {
        std::thread::scope(|s| {
            let real = s.spawn(|| Tree::start(Kind::Real, tag, &setup));
            let ours = Tree::start(Kind::Braid, tag, &setup);
            Pair {
                real: real.join().expect("start real tree"),
                ours,
            }
        })
    }

    /// Waits until `name`'s last change is more than a second old in both
    /// trees, so that stopping it now does not meet runsv's one-second
    /// restart throttle (during which runsv reads no command).
    pub fn wait_settled(&self, name: &str) {
        for tree in [&self.real, &self.ours] {
            let files = SuperviseFiles::new(tree.service(name).join("supervise"));
            wait_for(&format!("{name} to settle"), Duration::from_secs(5), || {
                files.read_status().is_ok_and(|s| {
                    braid_runit::supervise::Tai64N::now().since(s.since())
                        > Duration::from_millis(1100)
                })
            });
        }
    }

    /// Runs Debian's sv with `args` on both trees at once, compares, then
    /// waits until each `settle` holds in both.
    pub fn step(&self, args: &[&str], settle: &[(&str, Settle)]) -> Outcome {
        let pids_before: Vec<(u32, u32)> = settle
            .iter()
            .map(|(name, _)| (self.real.pid_of(name), self.ours.pid_of(name)))
            .collect();
        let (real, ours) = std::thread::scope(|s| {
            let real = s.spawn(|| self.real.sv(args));
            (real.join().expect("sv runner"), self.ours.sv(args))
        });
        assert_same(&format!("sv {args:?}"), &real, &ours, Match::Lockstep);
        for (&(name, how), (real_pid, our_pid)) in settle.iter().zip(pids_before) {
            self.real.settle(name, how, real_pid);
            self.ours.settle(name, how, our_pid);
        }
        real
    }
}
