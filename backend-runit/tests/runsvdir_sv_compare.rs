//! Debian's real `sv` driving two identical services directories, one
//! under the real runsvdir (a runsv per service), one under braid's
//! runsvdir (one process), through every command, with `-v` and `-w`: the
//! output must be the same apart from pids and elapsed seconds, with the
//! same exit codes; and in each state reached, `supervise/stat`, the flag
//! bytes of `supervise/status`, `pid` and the file modes must match.

mod runit_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use braid_runit::supervise::RunState;
use runit_support::Settle::{Down, Finish, Once, Restarted, Run};
use runit_support::{normalize, ready, write_exec, Pair, Tree};

/// The services of every scenario here:
/// - `a`: long-running, ignores HUP ALRM INT QUIT USR1 USR2;
/// - `c`: normally down, long-running;
/// - `e`: long-running with a logger;
/// - `f`: long-running, with a `finish` that takes a moment;
/// - `g`: long-running, ignores TERM.
fn services(svc: &Path) {
    write_exec(
        &svc.join("a/run"),
        "trap '' HUP ALRM INT QUIT USR1 USR2\nexec sleep 1000",
    );
    write_exec(&svc.join("c/run"), "exec sleep 1000");
    fs::write(svc.join("c/down"), "").unwrap();
    write_exec(&svc.join("e/run"), "exec sleep 1000");
    write_exec(&svc.join("e/log/run"), "exec cat >/dev/null");
    write_exec(&svc.join("f/run"), "exec sleep 1000");
    write_exec(&svc.join("f/finish"), "exec sleep 0.5");
    write_exec(&svc.join("g/run"), "trap '' TERM\nexec sleep 1000");
}

fn start() -> Option<Pair> {
    if !ready() {
        return None;
    }
    let pair = Pair::start("svcmp", services);
    for (name, state) in [
        ("a", Run),
        ("c", Down),
        ("e", Run),
        ("e/log", Run),
        ("f", Run),
        ("g", Run),
    ] {
        pair.real.settle(name, state, 0);
        pair.ours.settle(name, state, 0);
    }
    Some(pair)
}

/// `stat`, status bytes 16-19, whether status has a pid, the pid file's
/// shape, and each file's mode and FIFO-ness.
type View = (String, Vec<u8>, bool, String, Vec<(String, u32, bool)>);

fn supervise_view(tree: &Tree, name: &str) -> View {
    let dir = tree.service(name).join("supervise");
    let stat = fs::read_to_string(dir.join("stat")).unwrap();
    let status = fs::read(dir.join("status")).unwrap();
    assert_eq!(status.len(), 20, "{name}: status size");
    let pid_text = fs::read_to_string(dir.join("pid")).unwrap();
    let pid_le = u32::from_le_bytes(status[12..16].try_into().unwrap());
    let pid_shape = if pid_text.is_empty() {
        String::new()
    } else {
        assert_eq!(
            pid_text,
            format!("{pid_le}\n"),
            "{name}: pid file and status pid under {:?}",
            tree.kind
        );
        "N\n".to_string()
    };
    let mut modes = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    for entry in entries {
        let meta = fs::symlink_metadata(dir.join(&entry)).unwrap();
        modes.push((
            entry,
            meta.permissions().mode() & 0o7777,
            meta.file_type().is_fifo(),
        ));
    }
    (stat, status[16..20].to_vec(), pid_le != 0, pid_shape, modes)
}

/// `supervise/` of `name` looks the same in both trees.
fn same_supervise(p: &Pair, name: &str) {
    let real = supervise_view(&p.real, name);
    let ours = supervise_view(&p.ours, name);
    assert_eq!(
        real, ours,
        "{name}: supervise/ under real runsv (left) and braid (right)"
    );
}

#[test]
fn every_command_matches_real_runsv() {
    let Some(p) = start() else { return };
    p.step(&["status", "a", "c", "e", "e/log", "f", "g"], &[]);
    for name in ["a", "c", "e", "e/log", "f", "g"] {
        same_supervise(&p, name);
    }

    p.step(&["-v", "down", "a"], &[("a", Down)]);
    same_supervise(&p, "a");
    p.step(&["-v", "up", "a"], &[("a", Run)]);
    same_supervise(&p, "a");

    // once: run, want down
    p.step(&["-v", "once", "c"], &[("c", Once)]);
    p.step(&["status", "c"], &[]);
    same_supervise(&p, "c");

    // pause / cont: the paused flag
    p.step(&["-v", "pause", "a"], &[]);
    p.step(&["status", "a"], &[]);
    same_supervise(&p, "a");
    p.step(&["-v", "cont", "a"], &[]);
    same_supervise(&p, "a");

    // signals a ignores: nothing changes
    for cmd in ["hup", "alarm", "interrupt", "quit", "1", "2"] {
        p.step(&["-v", cmd, "a"], &[("a", Run)]);
    }
    same_supervise(&p, "a");

    // term and kill restart a service that is wanted up
    p.step(&["-v", "term", "a"], &[("a", Restarted)]);
    p.wait_settled("a");
    p.step(&["-v", "kill", "a"], &[("a", Restarted)]);
    p.step(&["-v", "restart", "e"], &[("e", Restarted)]);
    p.step(&["status", "e"], &[]);

    // TERM ignored: sv times out; status shows got TERM
    p.step(&["-w", "1", "-v", "down", "g"], &[]);
    p.step(&["status", "g"], &[]);
    same_supervise(&p, "g");
    p.step(&["-v", "kill", "g"], &[("g", Down)]);
    same_supervise(&p, "g");

    // finish: state 2 while ./finish runs, then down
    p.step(&["down", "f"], &[("f", Finish)]);
    same_supervise(&p, "f");
    p.step(&["-v", "status", "f"], &[("f", Down)]);
    same_supervise(&p, "f");

    // LSB-style commands
    p.step(&["-v", "start", "c"], &[("c", Run)]);
    p.step(&["-v", "stop", "c"], &[("c", Down)]);
    p.wait_settled("a");
    p.step(&["-v", "try-restart", "a"], &[("a", Restarted)]);
    p.step(&["-v", "reload", "a"], &[("a", Run)]);
    p.wait_settled("a");
    p.step(&["-v", "force-reload", "a"], &[("a", Restarted)]);
    p.wait_settled("a");
    p.step(&["-v", "force-restart", "a"], &[("a", Restarted)]);
    p.wait_settled("a");
    p.step(&["-v", "force-stop", "a"], &[("a", Down)]);
    p.step(&["-v", "check", "a", "c"], &[]);
    p.step(&["-w", "3", "start", "a", "c"], &[("a", Run), ("c", Run)]);
    p.step(&["force-shutdown", "c"], &[]);

    // the logger answers on its own FIFO and ignores x
    p.step(&["-v", "down", "e/log"], &[("e/log", Down)]);
    same_supervise(&p, "e/log");
    p.step(&["-v", "up", "e/log"], &[("e/log", Run)]);
    p.step(&["exit", "e/log"], &[]);
    p.step(&["status", "e"], &[]);
}

#[test]
fn exit_stops_the_service_and_its_logger_then_the_supervisor() {
    let Some(p) = start() else { return };
    let out = p.step(&["-v", "exit", "e"], &[("e", Down), ("e/log", Down)]);
    assert_eq!(normalize(&out.stdout).0, "ok: e: runsv not running\n");
    for tree in [&p.real, &p.ours] {
        let e = tree.service("e");
        runit_support::wait_for(
            "supervisor of e to go",
            std::time::Duration::from_secs(10),
            || !runit_support::supervised(&e),
        );
    }
    same_supervise(&p, "e");
    // runsvdir brings a supervisor back (real: within 5 s; braid: 1 s).
    for tree in [&p.real, &p.ours] {
        tree.wait_state("e", RunState::Run);
    }
}
