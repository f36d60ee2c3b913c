//! braid's runsvdir on its own behaviours: the log pipe surviving restarts
//! of either side, entries added and removed, broken service directories,
//! and the `dependencies` file. The log and broken-directory scenarios run
//! under the real runsvdir too, so the test checks what runit does.

mod runit_support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use braid_runit::supervise::RunState::{Down, Run};
use runit_support::{ready, state_of, supervised, wait_for, write_exec, Kind, Tree};

const LIMIT: Duration = Duration::from_secs(15);

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn pid(tree: &Tree, name: &str) -> u32 {
    state_of(&tree.service(name).join("supervise")).map_or(0, |(_, p)| p)
}

/// The state letter of `pid` (`/proc/PID/stat`), e.g. `T` when stopped.
fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether `pid` is blocked in read() on its stdin (`/proc/PID/syscall`
/// starts with the syscall number and its first argument, the fd).
fn blocked_reading_stdin(pid: u32) -> bool {
    let expected = format!("{} 0x0 ", nix::libc::SYS_read);
    pid != 0
        && fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.starts_with(&expected))
}

/// The service writes numbered lines (`PID:N`, noting each in `sent`
/// first); its logger appends them to `out`. The logger is killed while
/// idle (the service paused) and lines written while it is down wait in
/// the pipe; the service is killed while writing. Every line arrives once
/// and in order — except possibly the last line of a killed service,
/// noted in `sent` but perhaps not written — and the logger never sees end
/// of file when the service restarts.
fn log_loses_nothing(kind: Kind) {
    let tree = Tree::start(kind, "logpipe", |svc| {
        write_exec(
            &svc.join("e/run"),
            "i=0\nwhile :; do i=$((i+1)); echo $$:$i >>../sent; echo $$:$i; sleep 0.02; done",
        );
        write_exec(&svc.join("e/log/run"), "exec cat >>../../out");
    });
    let (out, sent) = (tree.svdir().join("out"), tree.svdir().join("sent"));
    // Everything the service wrote is in `out` once the service cannot
    // write (stopped or gone) and the logger waits in read(): cat writes
    // all it read before it reads again, and read blocks only on an empty
    // pipe.
    let drained = || {
        let service = pid(&tree, "e");
        let service_quiet = service == 0 || process_state(service) == Some('T');
        service_quiet && blocked_reading_stdin(pid(&tree, "e/log"))
    };
    tree.wait_state("e", Run);
    tree.wait_state("e/log", Run);
    for _ in 0..2 {
        // Logger killed while idle; lines wait in the pipe until it is back.
        assert_eq!(tree.sv(&["-v", "pause", "e"]).code, Some(0));
        wait_for("the logger to catch up", LIMIT, drained);
        let logger = pid(&tree, "e/log");
        assert_eq!(tree.sv(&["kill", "e/log"]).code, Some(0));
        // sv only queues the kill: the service must not write again until
        // the logger is gone, or the dying logger may read a line it never
        // writes.
        wait_for("the logger killed", LIMIT, || {
            matches!(process_state(logger), None | Some('Z'))
        });
        assert_eq!(tree.sv(&["cont", "e"]).code, Some(0));
        wait_for("a new logger", LIMIT, || {
            let p = pid(&tree, "e/log");
            p != 0 && p != logger && p != pid(&tree, "e")
        });
        // The service restarts; the logger keeps reading the same pipe.
        let logger = pid(&tree, "e/log");
        let service = pid(&tree, "e");
        assert_eq!(tree.sv(&["kill", "e"]).code, Some(0));
        wait_for("the service back", LIMIT, || {
            let p = pid(&tree, "e");
            p != 0 && p != service
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            pid(&tree, "e/log"),
            logger,
            "logger restarted with the service"
        );
    }
    assert_eq!(tree.sv(&["-v", "down", "e"]).code, Some(0));
    tree.wait_state("e", Down);
    wait_for("every line logged", LIMIT, drained);
    let (got, noted) = (lines(&out), lines(&sent));
    let incarnation = |l: &String| l.split(':').next().unwrap_or_default().to_string();
    let expected: Vec<&String> = noted
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let last_of_its_run = noted
                .get(i + 1)
                .map_or(true, |n| incarnation(n) != incarnation(l));
            !last_of_its_run || got.contains(l)
        })
        .map(|(_, l)| l)
        .collect();
    let got: Vec<&String> = got.iter().collect();
    assert_eq!(got, expected, "under {kind:?}");
}

#[test]
fn log_pipe_survives_restarts_of_either_side() {
    if !ready() {
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| log_loses_nothing(Kind::Real));
        log_loses_nothing(Kind::Braid);
    });
}

#[test]
fn added_removed_and_replaced_entries_are_noticed_at_once() {
    if !ready() {
        return;
    }
    let tree = Tree::start(Kind::Braid, "scan", |svc| {
        write_exec(&svc.join("a/run"), "exec sleep 1000");
    });
    tree.wait_state("a", Run);
    let elsewhere = tree.root().join("elsewhere");
    write_exec(&elsewhere.join("b/run"), "exec sleep 1000");
    write_exec(&elsewhere.join("c/run"), "exec sleep 1000");

    // Moved in: supervised well within a second (runit: up to 5 s).
    let t0 = Instant::now();
    fs::rename(elsewhere.join("b"), tree.service("b")).unwrap();
    tree.wait_state("b", Run);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );

    // A symlink to a directory is a service too.
    std::os::unix::fs::symlink(elsewhere.join("c"), tree.service("c")).unwrap();
    tree.wait_state("c", Run);
    let c_pid = pid(&tree, "c");

    // Moved out: its process is stopped and nobody answers on ok.
    let b_pid = pid(&tree, "b");
    let gone = tree.root().join("gone-b");
    fs::rename(tree.service("b"), &gone).unwrap();
    wait_for("b unsupervised", LIMIT, || !supervised(&gone));
    assert!(
        !Path::new(&format!("/proc/{b_pid}")).exists()
            || fs::read_to_string(format!("/proc/{b_pid}/stat")).is_ok_and(|s| s.contains(") Z")),
        "b's process still runs"
    );
    assert_eq!(state_of(&gone.join("supervise")).unwrap().0, Down);

    // The symlink pointed elsewhere: a new service replaces the old.
    write_exec(&elsewhere.join("c2/run"), "exec sleep 1000");
    let tmp_link = tree.root().join("c.new");
    std::os::unix::fs::symlink(elsewhere.join("c2"), &tmp_link).unwrap();
    fs::rename(&tmp_link, tree.service("c")).unwrap();
    wait_for(
        "c2 supervised",
        LIMIT,
        || matches!(state_of(&elsewhere.join("c2/supervise")), Some((Run, p)) if p != 0),
    );
    wait_for("old c unsupervised", LIMIT, || {
        !supervised(&elsewhere.join("c"))
    });
    assert_ne!(pid(&tree, "c"), c_pid);
    tree.wait_state("a", Run);
}

#[test]
fn broken_service_dirs_are_reported_and_leave_the_others_alone() {
    if !ready() {
        return;
    }
    let setup = |svc: &Path| {
        write_exec(&svc.join("good/run"), "exec sleep 1000");
        fs::create_dir_all(svc.join("norun")).unwrap();
        fs::create_dir_all(svc.join("noexec")).unwrap();
        fs::write(svc.join("noexec/run"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    };
    let trees = [
        Tree::start(Kind::Real, "broken", setup),
        Tree::start(Kind::Braid, "broken", setup),
    ];
    for tree in &trees {
        tree.wait_state("good", Run);
        wait_for("both failures reported twice", LIMIT, || {
            let err = tree.stderr();
            err.matches("runsv norun: fatal: unable to start ./run: file does not exist\n")
                .count()
                >= 2
                && err
                    .matches("runsv noexec: fatal: unable to start ./run: access denied\n")
                    .count()
                    >= 2
        });
        // Still retried, still "want up"; the good one untouched.
        let status = tree.sv(&["status", "norun", "noexec"]);
        for line in status.stdout.lines() {
            assert!(
                line.ends_with(", normally up, want up") || line.starts_with("run: "),
                "{:?}: {line}",
                tree.kind
            );
        }
        assert!(tree
            .sv(&["status", "good"])
            .stdout
            .starts_with("run: good: (pid "));
    }
    let pids: Vec<u32> = trees.iter().map(|t| pid(t, "good")).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let again: Vec<u32> = trees.iter().map(|t| pid(t, "good")).collect();
    assert_eq!(pids, again, "the good service was restarted");
}

#[test]
fn dependencies_order_starts_and_stops() {
    if !ready() {
        return;
    }
    let tree = Tree::start(Kind::Braid, "deps", |svc| {
        // app records what it saw of db when it started.
        write_exec(
            &svc.join("app/run"),
            "cat ../db/supervise/stat >>../../app-saw\nexec sleep 1000",
        );
        fs::write(svc.join("app/dependencies"), "# needs the database\ndb\n").unwrap();
        write_exec(&svc.join("db/run"), "exec sleep 1000");
    });
    let saw = tree.root().join("app-saw");
    tree.wait_state("app", Run);
    tree.wait_state("db", Run);
    let recorded = |n: usize| fs::read_to_string(&saw).unwrap_or_default().lines().count() >= n;
    wait_for("app to look at db", LIMIT, || recorded(1));
    assert_eq!(fs::read_to_string(&saw).unwrap(), "run\n");

    // db down for good: app goes down first.
    let out = tree.sv(&["-v", "down", "db"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    tree.wait_state("app", Down);
    assert!(
        tree.sv(&["status", "app"])
            .stdout
            .ends_with(", normally up, want up\n"),
        "{:?}",
        tree.sv(&["status", "app"])
    );
    // db back: app follows.
    tree.sv(&["-v", "up", "db"]);
    tree.wait_state("app", Run);
    wait_for("app to look at db again", LIMIT, || recorded(2));
    assert_eq!(fs::read_to_string(&saw).unwrap(), "run\nrun\n");
}
