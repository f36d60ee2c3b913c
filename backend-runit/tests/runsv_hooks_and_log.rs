//! `control/X` hooks and the log pipe, braid's runsv next to Debian's
//! (runit's own runsv.check scenario, extended): hook output lands in the
//! log, a hook exiting 0 replaces the signal, the service's stderr stays
//! the supervisor's, and on exit the logger sees end of file — even one
//! that ignores TERM. Then, braid only: a slow hook holds up neither the
//! other services nor the loop, and a second logger on a shared log
//! directory is refused instead of hanging braid.

mod runit_support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use braid_runit::supervise::RunState::{Down, Run};
use braid_runit::supervise::{SuperviseFiles, Tai64N};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runit_support::{
    braid_bin, ready, state_of, wait_for, write_exec, Kind, TempDir, Tree, REAL_RUNSV, REAL_SV,
};

const LIMIT: Duration = Duration::from_secs(15);

/// A supervisor of `dir`, killed on drop with the processes it runs
/// (braid's are in sessions of their own, so killing braid is not enough).
struct Running(Child, PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let supervisor = self.0.id() as i32;
        for sub in ["supervise", "log/supervise"] {
            let pid = fs::read_to_string(self.1.join(sub).join("pid")).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if parent_of(pid) == Some(supervisor) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn sv(args: &[&str]) -> Option<i32> {
    Command::new(REAL_SV)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run sv")
        .code()
}

fn pid_of(dir: &Path) -> u32 {
    state_of(&dir.join("supervise")).map_or(0, |(_, p)| p)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// runsv.check's scenario on `program` (a runsv); returns what the log
/// and the supervisor's stderr got.
fn hooks_scenario(program: &Path, dir: &Path) -> (String, String) {
    write_exec(
        &dir.join("run"),
        "echo starting\necho to-stderr >&2\nexec sleep 1000",
    );
    write_exec(&dir.join("control/t"), "echo term\nexit 1");
    write_exec(&dir.join("control/i"), "echo no interrupt\nexit 0");
    // Ignores TERM: it can only end by reading end of file.
    write_exec(&dir.join("log/run"), "trap '' TERM\nexec cat >>log.txt");
    let log = dir.join("log/log.txt");
    let err_path = dir.with_extension("stderr");
    let mut runsv = Running(
        Command::new(program)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("start runsv"),
        dir.to_path_buf(),
    );
    let d = dir.to_str().unwrap();
    wait_for("starting logged", LIMIT, || {
        read(&log) == "starting\n" && pid_of(dir) != 0
    });
    let first = pid_of(dir);
    // control/i exits 0: no SIGINT.
    assert_eq!(sv(&["interrupt", d]), Some(0));
    wait_for("the i hook's line", LIMIT, || {
        read(&log) == "starting\nno interrupt\n"
    });
    assert_eq!(pid_of(dir), first, "{program:?}: SIGINT was sent");
    // Past runsv's one-second throttle, so the restart is immediate.
    let files = SuperviseFiles::new(dir.join("supervise"));
    wait_for("a second of run", LIMIT, || {
        files
            .read_status()
            .is_ok_and(|s| Tai64N::now().since(s.since()) > Duration::from_millis(1100))
    });
    // control/t exits 1: TERM is sent, the service comes back.
    assert_eq!(sv(&["term", d]), Some(0));
    wait_for("the restart", LIMIT, || {
        read(&log) == "starting\nno interrupt\nterm\nstarting\n"
    });
    // x: the hook again, the service down, then the logger reads end of
    // file and the supervisor exits 0.
    assert_eq!(sv(&["exit", d]), Some(0));
    let mut code = None;
    wait_for("runsv to exit", LIMIT, || match runsv.0.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    assert_eq!(code, Some(0), "{program:?}");
    assert_eq!(
        state_of(&dir.join("log/supervise")).map(|s| s.0),
        Some(Down)
    );
    (read(&log), read(&err_path))
}

#[test]
fn hooks_write_to_the_log_and_the_logger_ends_at_end_of_file() {
    if !ready() {
        return;
    }
    let scratch = TempDir::new("runsv-hooks");
    let link = scratch.0.join("bin/runsv");
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(braid_bin().unwrap(), &link).unwrap();
    let (real_dir, our_dir) = (scratch.0.join("real"), scratch.0.join("ours"));
    let (real, ours) = std::thread::scope(|s| {
        let real = s.spawn(|| hooks_scenario(Path::new(REAL_RUNSV), &real_dir));
        let ours = hooks_scenario(&link, &our_dir);
        (real.join().expect("real runsv scenario"), ours)
    });
    assert_eq!(real.0, "starting\nno interrupt\nterm\nstarting\nterm\n");
    assert_eq!(real.1, "to-stderr\nto-stderr\n");
    assert_eq!(ours, real, "braid (left) and runit (right)");
}

/// `sv` on `args`, timed.
fn timed_sv(tree: &Tree, args: &[&str]) -> (Duration, Option<i32>) {
    let t0 = Instant::now();
    let out = tree.sv(args);
    (t0.elapsed(), out.code)
}

#[test]
fn a_slow_hook_holds_up_nothing_else_and_a_shared_log_dir_is_refused() {
    if !ready() {
        return;
    }
    let tree = Tree::start(Kind::Braid, "slowhook", |svc| {
        write_exec(&svc.join("slow/run"), "exec sleep 1000");
        // Holds its TERM decision for a while, then lets TERM go.
        write_exec(
            &svc.join("slow/control/t"),
            "touch ../hook-running\nwhile [ ! -e ../hook-release ]; do sleep 0.02; done\nexit 1",
        );
        write_exec(&svc.join("other/run"), "exec sleep 1000");
        write_exec(&svc.join("l1/run"), "exec sleep 1000");
        write_exec(&svc.join("l1/log/run"), "exec cat >/dev/null");
        write_exec(&svc.join("l2/run"), "exec sleep 1000");
        symlink("../l1/log", svc.join("l2/log")).unwrap();
    });
    tree.wait_state("slow", Run);
    tree.wait_state("other", Run);
    let slow = tree.service("slow");
    let slow_pid = pid_of(&slow);

    // The hook runs and waits; meanwhile another service obeys at once.
    assert_eq!(tree.sv(&["term", "slow"]).code, Some(0));
    wait_for("the hook to run", LIMIT, || {
        tree.svdir().join("hook-running").exists()
    });
    let (took, code) = timed_sv(&tree, &["-w", "5", "down", "other"]);
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(3), "sv down took {took:?}");
    let (_, code) = timed_sv(&tree, &["-w", "5", "up", "other"]);
    assert_eq!(code, Some(0));
    assert_eq!(pid_of(&slow), slow_pid, "TERM sent before the hook ended");

    // Released: the hook exits 1, so TERM goes and the service restarts.
    fs::write(tree.svdir().join("hook-release"), "").unwrap();
    wait_for("slow restarted", LIMIT, || {
        let p = pid_of(&slow);
        p != 0 && p != slow_pid
    });

    // Two services share one log dir: the second is refused, as runsv
    // refuses a taken supervise/lock, and the first runs on.
    let refused = |name: &str| {
        format!("runsv {name}: fatal: unable to lock log/supervise/lock: temporary failure\n")
    };
    wait_for("the shared log dir refused", LIMIT, || {
        let err = tree.stderr();
        err.contains(&refused("l1")) || err.contains(&refused("l2"))
    });
    let err = tree.stderr();
    let winner = if err.contains(&refused("l2")) {
        "l1"
    } else {
        "l2"
    };
    assert!(!err.contains(&refused(winner)), "{err}");
    tree.wait_state(winner, Run);
    tree.wait_state("l1/log", Run);
    assert_eq!(tree.sv(&["status", "other"]).code, Some(0));
}
