//! Shared by the chpst and svlogd comparison tests: find braid and Debian's
//! runit programs, lay out scratch directories, and run a program with a
//! bounded wait.

#![allow(dead_code)] // each test crate uses a different part

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Longest any single program run may take before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The built `braid` binary: `$BRAID_BIN`, else `$CARGO_TARGET_DIR/debug/braid`,
/// else the workspace's `target/debug/braid`.
pub fn braid_binary() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BRAID_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| Path::new(&d).join("debug/braid")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/braid")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("braid-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One implementation under test: a `bin` directory whose programs are
/// links to either braid or Debian's runit, and a private working directory.
#[derive(Debug)]
pub struct Side {
    pub label: &'static str,
    pub bin: PathBuf,
    pub work: PathBuf,
}

impl Side {
    /// PATH for programs run on this side: its own `bin` first, so a nested
    /// `chpst` is the same implementation.
    pub fn path_var(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display())
    }

    /// A command for program `name` of this side with a clean environment,
    /// run in the side's working directory, argv[0] being plain `name`.
    pub fn command(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.arg0(name);
        c.env_clear()
            .env("PATH", self.path_var())
            .env("HOME", "/root")
            .env("KEEP", "kept")
            .current_dir(&self.work);
        c
    }
}

/// Both implementations side by side, or `None` (with a "skipped" line) when
/// either is missing.
#[derive(Debug)]
pub struct Pair {
    pub real: Side,
    pub braid: Side,
    _scratch: Scratch,
}

impl Pair {
    /// `names` are the program names to link; `peer` is the Debian program
    /// they all are (`/usr/bin/chpst` for chpst's personalities).
    pub fn new(tag: &str, links: &[(&str, &str)]) -> Option<Pair> {
        let Some(braid) = braid_binary() else {
            println!("skipped: braid binary not built (cargo build -p braid-turnstile)");
            return None;
        };
        for (_, peer) in links {
            if !Path::new(peer).is_file() {
                println!("skipped: {peer} not installed (apt-get install runit)");
                return None;
            }
        }
        let scratch = Scratch::new(tag);
        let side = |label: &'static str, target: &dyn Fn(&str) -> PathBuf| {
            let bin = scratch.path().join(label).join("bin");
            let work = scratch.path().join(label).join("work");
            std::fs::create_dir_all(&bin).expect("bin dir");
            std::fs::create_dir_all(&work).expect("work dir");
            for (name, peer) in links {
                std::os::unix::fs::symlink(target(peer), bin.join(name)).expect("link");
            }
            Side { label, bin, work }
        };
        let real = side("real", &|peer| PathBuf::from(peer));
        let braid = side("braid", &|_| braid.clone());
        Some(Pair {
            real,
            braid,
            _scratch: scratch,
        })
    }

    pub fn sides(&self) -> [&Side; 2] {
        [&self.real, &self.braid]
    }
}

/// Runs `cmd` with `input` on stdin, waiting at most [`RUN_LIMIT`]; the
/// process is killed if it overstays.
pub fn run(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin pipe");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(RUN_LIMIT) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} did not finish within {RUN_LIMIT:?}");
        }
    };
    let _ = feeder.join();
    out
}

/// What a user sees from one run.
pub fn shown(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `content` to `dir/name`, creating parents.
pub fn write_file(dir: &Path, name: impl AsRef<OsStr>, content: &[u8]) {
    let path = dir.join(name.as_ref());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write file");
}
