//! Shared by the runsvdir tests: a scratch services directory supervised
//! either by the REAL `/usr/bin/runsvdir` (one runsv per service) or by
//! braid's `runsvdir` (one process), driven by Debian's real `sv`.
//!
//! braid runs as `<tmp>/bin/runsvdir`, a symlink to the `braid` binary:
//! `$BRAID_BIN` if set, else `braid` in the target directory this test was
//! built into (`cargo build -p braid-turnstile` first). Without it (or
//! without Debian's runit) a test prints "skipped: ..." and passes, except
//! under `CI=true`, where that is a failure.

#![allow(dead_code)] // each test file uses its own part of this module

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use braid_runit::supervise::{RunState, SuperviseFiles};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const REAL_SV: &str = "/usr/bin/sv";
pub const REAL_RUNSVDIR: &str = "/usr/bin/runsvdir";
pub const REAL_RUNSV: &str = "/usr/bin/runsv";

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

/// Whether the test can run; prints why not (and fails under CI).
pub fn ready() -> bool {
    let missing = [REAL_SV, REAL_RUNSVDIR, REAL_RUNSV]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} not installed (apt-get install runit)"))
        .or_else(|| {
            braid_bin()
                .is_none()
                .then(|| "braid binary not built (cargo build -p braid-turnstile)".to_string())
        });
    match missing {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("required peer missing under CI: {why}")
        }
        Some(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
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

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
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

use std::os::unix::fs::OpenOptionsExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Real,
    Braid,
}

/// A services directory under a runsvdir of either kind; everything it
/// started is killed on drop.
pub struct Tree {
    pub scratch: Scratch,
    pub kind: Kind,
    runsvdir: Child,
}

impl Tree {
    /// Writes the services with `setup(<services dir>)`, then starts
    /// `runsvdir <services dir>` (stderr to `<root>/stderr`).
    pub fn start(kind: Kind, tag: &str, setup: impl FnOnce(&Path)) -> Tree {
        let scratch = Scratch::new(&format!("{tag}-{kind:?}"));
        let svc = scratch.0.join("service");
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
            Kind::Braid => {
                let link = scratch.0.join("bin/runsvdir");
                fs::create_dir_all(link.parent().unwrap()).unwrap();
                symlink(braid_bin().expect("braid binary"), &link).unwrap();
                link
            }
        };
        let stderr = fs::File::create(scratch.0.join("stderr")).unwrap();
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

    /// Runs Debian's sv with `SVDIR` pointing here.
    pub fn sv(&self, args: &[&str]) -> Outcome {
        let out = Command::new(REAL_SV)
            .args(args)
            .current_dir(self.root())
            .env("SVDIR", self.svdir())
            .env_remove("SVWAIT")
            .stdin(Stdio::null())
            .output()
            .expect("run sv");
        Outcome {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        }
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

/// Replaces every `(pid N)` by `(pid P)` and each elapsed-seconds field
/// (`… 12s`) by `Ns`, returning the seconds taken out.
pub fn normalize(text: &str) -> (String, Vec<u64>) {
    let mut out = String::new();
    let mut secs = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("(pid ") {
            out.push_str("(pid P");
            i += 5;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        if i > 0 && b[i - 1] == b' ' && b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if b.get(j) == Some(&b's') && matches!(b.get(j + 1), None | Some(b'\n' | b',' | b';')) {
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

/// Asserts the same output modulo pids and seconds, same exit code. The
/// two trees' processes start at slightly different times and the two sv
/// runs are scheduled independently on a loaded machine: seconds may
/// differ by two.
pub fn assert_same(what: &str, real: &Outcome, ours: &Outcome) {
    let (r, rs) = normalize(&real.stdout);
    let (o, os) = normalize(&ours.stdout);
    assert_eq!(
        (&r, &real.stderr, real.code),
        (&o, &ours.stderr, ours.code),
        "{what}: under real runsvdir (left) and braid (right)\nreal: {real:?}\nours: {ours:?}"
    );
    for (a, b) in rs.iter().zip(&os) {
        assert!(
            a.abs_diff(*b) <= 2,
            "{what}: seconds {a} vs {b}\n{real:?}\n{ours:?}"
        );
    }
}

/// The same services under the real runsvdir and under braid.
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

    pub fn wait_state(&self, name: &str, want: RunState) {
        self.real.wait_state(name, want);
        self.ours.wait_state(name, want);
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
    /// waits until each `settle` state holds in both.
    pub fn step(&self, args: &[&str], settle: &[(&str, RunState)]) -> Outcome {
        let (real, ours) = std::thread::scope(|s| {
            let real = s.spawn(|| self.real.sv(args));
            (real.join().expect("sv runner"), self.ours.sv(args))
        });
        assert_same(&format!("sv {args:?}"), &real, &ours);
        for (name, state) in settle {
            self.wait_state(name, *state);
        }
        real
    }
}
