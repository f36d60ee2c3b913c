//! Shared by the sv tests: a scratch service tree supervised by the REAL
//! `runsvdir`/`runsv`, and helpers to run sv programs against it and compare
//! their output.
//!
//! braid's sv is run as `<tmp>/bin/sv`, a symlink to the `braid` binary:
//! `$BRAID_BIN` if set, else `braid` in the target directory this test was
//! built into (build it first with `cargo build -p braid-turnstile`).

#![allow(dead_code)] // each test file uses its own part of this module

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use braid_runit::supervise::{RunState, SuperviseFiles};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub const REAL_SV: &str = "/usr/bin/sv";
pub const REAL_RUNSVDIR: &str = "/usr/bin/runsvdir";

/// Why a test cannot run here, if it cannot.
pub fn missing_peers() -> Option<String> {
    for p in [REAL_SV, REAL_RUNSVDIR, "/usr/bin/runsv"] {
        if !Path::new(p).exists() {
            return Some(format!("{p} not installed (apt-get install runit)"));
        }
    }
    if braid_bin().is_none() {
        return Some("braid binary not built (cargo build -p braid-turnstile)".into());
    }
    None
}

/// The `braid` binary to test.
pub fn braid_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BRAID_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/debug/deps/<test> → target/debug/braid
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("braid");
    candidate.exists().then_some(candidate)
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "braid-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn write_exec(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// State of a supervised process as its `supervise/status` shows it.
pub fn state_of(supervise: &Path) -> Option<(RunState, u32)> {
    let s = SuperviseFiles::new(supervise).read_status().ok()?;
    Some((s.state()?, s.pid()))
}

/// A service tree under a real `runsvdir`, in its own process group, all of
/// which is killed on drop.
pub struct Tree {
    pub scratch: Scratch,
    runsvdir: Child,
}

/// The standard services: every test tree has them.
///
/// - `a`: long-running, ignores HUP ALRM INT QUIT USR1 USR2 (so signal
///   commands do not change its state);
/// - `b`: normally down; runs 3 s then exits 3;
/// - `c`: normally down, long-running;
/// - `d`: long-running with a `check` that passes once `d/ready` exists;
/// - `e`: long-running with a `log/` service;
/// - `g`: long-running and ignores TERM.
pub fn standard_services(root: &Path) {
    let svc = root.join("service");
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

impl Tree {
    /// Starts `runsvdir <root>/service` over the standard services and
    /// waits until each is in its initial state.
    pub fn start(tag: &str) -> Tree {
        let scratch = Scratch::new(tag);
        standard_services(&scratch.0);
        fs::create_dir_all(scratch.0.join("bin")).unwrap();
        if let Some(braid) = braid_bin() {
            symlink(braid, scratch.0.join("bin/sv")).unwrap();
        }
        let runsvdir = Command::new(REAL_RUNSVDIR)
            .arg(scratch.0.join("service"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start runsvdir");
        let tree = Tree { scratch, runsvdir };
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

    /// Waits (at most 15 s) until `name`'s runsv reports `want`.
    pub fn wait_state(&self, name: &str, want: RunState) {
        let sup = self.service(name).join("supervise");
        wait_for(
            &format!("{name} to be {want:?}"),
            Duration::from_secs(15),
            || matches!(state_of(&sup), Some((s, pid)) if s == want && (want == RunState::Down) == (pid == 0)),
        );
    }

    /// The pid `name`'s runsv reports (0: none).
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

    /// Waits (at most 15 s) until `name` is down and runsv wants it down:
    /// a service down for a restart's one-second pause is not yet stopped.
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

    /// braid's sv, as `<tmp>/bin/sv`.
    pub fn braid_sv(&self) -> PathBuf {
        self.root().join("bin/sv")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.runsvdir.id() as i32);
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.runsvdir.wait();
    }
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

/// How closely two outcomes must agree.
#[derive(Clone, Copy, Debug)]
pub enum Match {
    /// Same bytes, except that each seconds field may differ by one (two
    /// runs straddling a second boundary). For runs on the same tree.
    Exact,
    /// Same bytes apart from pids and seconds values. For runs on two
    /// different trees, whose processes and start times differ.
    Shape,
}

/// Asserts two outcomes agree as `how` says.
pub fn assert_same(what: &str, real: &Outcome, ours: &Outcome, how: Match) {
    let norm = |s: &str| match how {
        Match::Exact => s.to_string(),
        Match::Shape => hide_pids(s),
    };
    let (real_out, real_secs) = take_seconds(&norm(&real.stdout));
    let (our_out, our_secs) = take_seconds(&norm(&ours.stdout));
    assert_eq!(
        (&real_out, &real.stderr, real.code),
        (&our_out, &ours.stderr, ours.code),
        "{what}: real sv (left) and braid sv (right) differ\nreal stdout: {:?}\nours stdout: {:?}",
        real.stdout,
        ours.stdout
    );
    if let Match::Exact = how {
        for (r, o) in real_secs.iter().zip(&our_secs) {
            assert!(
                r.abs_diff(*o) <= 1,
                "{what}: seconds {r} vs {o}\n{real:?}\n{ours:?}"
            );
        }
    }
}
