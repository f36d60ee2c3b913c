//! dinit's own integration test suite (`src/igr-tests` of davmac314/dinit)
//! run against braid's `dinit`, `dinitctl` and `dinit-check`.
//!
//! A local check, not part of the normal run: the suite is dinit's code and
//! is not in this repository. Point `BRAID_DINIT_SRC` at a dinit source tree
//! (the version of the real peers) and run
//! `cargo test -p braid-dinit --test igr_suite -- --ignored`. The parts the
//! runner needs (`configure`, `build/`, `dasynq/`, `src/igr-tests/`) are
//! copied into a temp dir, since the runner writes into its test
//! directories; there dinit's own build makes `igr-runner`, which then runs
//! every test with `DINIT_BINDIR` naming a directory of braid links. Needs
//! g++ and make.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use braid_tests::{braid_binary, personality, wait_until, TempDir};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The whole suite takes seconds; its slowest steps wait one second each.
const SUITE_LIMIT: Duration = Duration::from_secs(300);

/// Runs a build step in `dir`; panics with its output when it fails.
fn build_step(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the runner's sources out of the dinit tree `src` into `dest`
/// and builds `igr-runner` there; its directory.
fn build_runner(src: &Path, dest: &Path) -> PathBuf {
    std::fs::create_dir_all(dest.join("src")).expect("create copy dir");
    for part in ["configure", "build", "dasynq", "src/igr-tests"] {
        let to = dest.join(part);
        build_step(
            dest,
            "cp",
            &[
                "-R",
                &src.join(part).to_string_lossy(),
                &to.to_string_lossy(),
            ],
        );
    }
    build_step(dest, "sh", &["./configure"]);
    build_step(&dest.join("build"), "make", &["-s"]);
    let tests = dest.join("src/igr-tests");
    build_step(&tests, "make", &["-s", "igr-runner"]);
    tests
}

/// The runner in its own process group, which is killed on drop with
/// every daemon and service the suite left behind.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "local check: needs BRAID_DINIT_SRC (a dinit source tree), g++ and make"]
fn dinits_own_integration_suite_passes_on_braid() {
    let Some(src) = std::env::var_os("BRAID_DINIT_SRC").map(PathBuf::from) else {
        eprintln!("skipped: set BRAID_DINIT_SRC to a dinit source tree");
        return;
    };
    let Some(braid) = braid_binary() else {
        return;
    };
    let tmp = TempDir::new("igr");
    let tests = build_runner(&src, &tmp.join("dinit"));

    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).expect("create bin dir");
    for name in ["dinit", "dinitctl", "dinit-check", "dinit-monitor"] {
        personality(&braid, &bin, name);
    }
    let output = tmp.join("igr-output");
    let report = tmp.join("report");
    let child = Command::new(tests.join("igr-runner"))
        .current_dir(&tests)
        .env("DINIT_BINDIR", &bin)
        .env("IGR_OUTPUT_BASE", &output)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&report).expect("create report"))
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("spawn igr-runner");
    let mut runner = Runner(child);
    let finished = wait_until(SUITE_LIMIT, || matches!(runner.0.try_wait(), Ok(Some(_))));
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        finished,
        "igr-runner did not finish in {SUITE_LIMIT:?}:\n{text}"
    );
    let status = runner.0.wait().expect("wait for igr-runner");
    assert!(
        status.success() && text.contains("\nFailed: 0\n"),
        "dinit's suite failed on braid ({status}):\n{text}"
    );
}
