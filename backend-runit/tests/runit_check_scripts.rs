//! runit's own check scripts (`src/<program>.check` in the runit source)
//! run on braid's personalities and on Debian's programs, compared.
//!
//! A local check, not part of the normal run: runit's scripts and their
//! expected outputs (`.dist`) are not in this repository. Point
//! `BRAID_RUNIT_SRC` at a runit source tree (its top or its `src/`) and run
//! `cargo test -p braid-runit --test runit_check_scripts -- --ignored`.
//!
//! Each script runs as runit's `check-local` runs it: an empty environment
//! but `PATH` (the programs' directory first) and `ctmp`, stdout and stderr
//! together through `cat -v`. The programs' directory holds only the five
//! programs braid provides (`sv`, `runsv`, `runsvdir`, `chpst`, `svlogd`),
//! as symlinks to Debian's in `/usr/bin` or to the `braid` binary. braid
//! must print what Debian's programs print, byte for byte. The `.dist`
//! files are upstream's, and Debian's programs do not meet all of them
//! (Debian's `chpst` has `-V` and `-t`, so its usage line is longer);
//! where Debian agrees with a `.dist` line, braid must too, and where it
//! does not, the test says so on stderr.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use braid_tests::TempDir;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The programs braid provides, each with a check script in runit's `src/`.
const PROGRAMS: [&str; 5] = ["sv", "runsv", "runsvdir", "chpst", "svlogd"];

/// The longest a script may run: the slowest (`runsv.check`) sleeps about
/// 7 s when all goes well, up to 13 s when its files come late.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

/// runit's `src/` directory, or `None` (skipped) without `BRAID_RUNIT_SRC`.
fn runit_src() -> Option<PathBuf> {
    let Some(given) = std::env::var_os("BRAID_RUNIT_SRC").map(PathBuf::from) else {
        eprintln!("skipped: set BRAID_RUNIT_SRC to a runit source tree");
        return None;
    };
    let src = [given.join("src"), given.clone()]
        .into_iter()
        .find(|dir| dir.join("sv.check").is_file())
        .unwrap_or_else(|| panic!("no sv.check in {0}/src or {0}", given.display()));
    Some(src)
}

/// A directory of symlinks named after [`PROGRAMS`], each pointing at
/// `target(name)`.
fn program_dir(dir: &Path, target: impl Fn(&str) -> PathBuf) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for name in PROGRAMS {
        symlink(target(name), dir.join(name)).unwrap();
    }
    dir.to_path_buf()
}

/// The check script's process group, killed on drop (the script runs
/// `runsv` in the background; a failed run must not leave it behind).
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Runs `script` in `work` the way `check-local` does, with `programs`
/// first in `PATH`; what it printed, after `cat -v`.
fn run_check(script: &Path, programs: &Path, work: &Path) -> String {
    fs::create_dir_all(work).unwrap();
    let path = format!(
        "{}:{}",
        programs.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg("\"$0\" 2>&1 | cat -v")
        .arg(script)
        .env_clear()
        .env("PATH", path)
        .env("ctmp", work.join("check-tmp"))
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let mut script_run = Script(child);
    let mut stdout = script_run.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = stdout.read_to_end(&mut out).map(|_| out);
        let _ = tx.send(read);
    });
    let started = Instant::now();
    let out = rx
        .recv_timeout(SCRIPT_LIMIT)
        .unwrap_or_else(|_| panic!("{} still running after {SCRIPT_LIMIT:?}", script.display()))
        .expect("reading the script's output");
    // The pipe closed: the script and cat are done or about to be.
    let left = SCRIPT_LIMIT.saturating_sub(started.elapsed());
    assert!(
        braid_tests::wait_until(left, || matches!(script_run.0.try_wait(), Ok(Some(_)))),
        "{} did not exit",
        script.display()
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `<name>.check` on Debian's programs and on braid's at once and
/// compares both with each other and with `<name>.dist`.
fn check(name: &str) {
    let Some(src) = runit_src() else {
        return;
    };
    if let Some(missing) = PROGRAMS
        .iter()
        .map(|p| Path::new("/usr/bin").join(p))
        .find(|p| !p.exists())
    {
        eprintln!(
            "skipped: {} not installed (apt-get install runit)",
            missing.display()
        );
        return;
    }
    let Some(braid) = braid_tests::braid_binary() else {
        return;
    };
    let scratch = TempDir::new(&format!("runitcheck-{name}"));
    let script = scratch.join(format!("{name}.check"));
    fs::copy(src.join(format!("{name}.check")), &script).expect("copying the check script");
    let real_bin = program_dir(&scratch.join("real/bin"), |p| Path::new("/usr/bin").join(p));
    let braid_bin = program_dir(&scratch.join("braid/bin"), |_| braid.clone());
    let (real, ours) = std::thread::scope(|s| {
        let real = s.spawn(|| run_check(&script, &real_bin, &scratch.join("real")));
        let ours = run_check(&script, &braid_bin, &scratch.join("braid"));
        (real.join().expect("real run"), ours)
    });
    let dist = fs::read_to_string(src.join(format!("{name}.dist"))).expect("reading .dist");
    compare_with_dist(name, &dist, &real, &ours);
    assert_eq!(
        real, ours,
        "{name}.check: Debian's output (left) and braid's (right) differ"
    );
}

/// Line by line, as runit's `check-diff` reads them: where Debian's line
/// is the `.dist` line, braid's must be too; where it is not, says so.
fn compare_with_dist(name: &str, dist: &str, real: &str, ours: &str) {
    let (dist, real, ours): (Vec<_>, Vec<_>, Vec<_>) = (
        dist.lines().collect(),
        real.lines().collect(),
        ours.lines().collect(),
    );
    for (i, expected) in dist.iter().enumerate() {
        let (r, o) = (real.get(i), ours.get(i));
        if r == Some(expected) {
            assert_eq!(
                o,
                Some(expected),
                "{name}.check line {}: braid (left) differs from {name}.dist (right) where Debian agrees",
                i + 1
            );
        } else {
            eprintln!(
                "note: {name}.check line {}: Debian prints {r:?}, {name}.dist has {expected:?}",
                i + 1
            );
        }
    }
    if real.len() > dist.len() {
        eprintln!("note: {name}.check: Debian prints more lines than {name}.dist");
    }
}

#[test]
#[ignore = "local check: needs BRAID_RUNIT_SRC (a runit source tree)"]
fn sv_check() {
    check("sv");
}

#[test]
#[ignore = "local check: needs BRAID_RUNIT_SRC (a runit source tree)"]
fn runsv_check() {
    check("runsv");
}

#[test]
#[ignore = "local check: needs BRAID_RUNIT_SRC (a runit source tree)"]
fn runsvdir_check() {
    check("runsvdir");
}

#[test]
#[ignore = "local check: needs BRAID_RUNIT_SRC (a runit source tree)"]
fn chpst_check() {
    check("chpst");
}

#[test]
#[ignore = "local check: needs BRAID_RUNIT_SRC (a runit source tree)"]
fn svlogd_check() {
    check("svlogd");
}
