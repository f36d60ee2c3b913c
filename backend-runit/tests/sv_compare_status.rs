//! braid's sv and Debian's sv against the same real runsvdir, for commands
//! that do not change any state: both must print the same bytes and return
//! the same code (seconds may differ by one between the two runs).

mod runit_support;

use std::fs;
use std::path::Path;

use runit_support::{assert_same, ready, run, Match, Outcome, Tree, REAL_SV};

/// Runs both at the same time, so that the seconds they print agree even
/// for commands that wait.
fn both(tree: &Tree, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (Outcome, Outcome) {
    let svdir = tree.svdir();
    let ours_bin = tree.braid_sv();
    std::thread::scope(|s| {
        let real = s.spawn(|| run(Path::new(REAL_SV), None, args, cwd, &svdir, env));
        let ours = run(&ours_bin, None, args, cwd, &svdir, env);
        (real.join().expect("real sv runner"), ours)
    })
}

fn compare(tree: &Tree, args: &[&str], cwd: &Path) -> Outcome {
    let (real, ours) = both(tree, args, cwd, &[]);
    assert_same(&format!("sv {args:?}"), &real, &ours, Match::Exact);
    real
}

#[test]
fn status_lines_match_real_sv() {
    if !ready() {
        return;
    }
    let tree = Tree::standard("sv-status");
    let root = tree.root().to_path_buf();

    let all = compare(&tree, &["status", "a", "b", "c", "d", "e", "g"], &root);
    assert!(all.stdout.contains("; run: log: (pid "), "{all:?}");
    assert_eq!(all.code, Some(0));
    compare(&tree, &["s", "e"], &root);
    compare(&tree, &["stat", "c"], &root);

    // Names: cwd-relative (leading `.`, trailing `/`), absolute, missing.
    compare(&tree, &["status", "./service/a", "service/c/"], &root);
    let abs = tree.service("e");
    compare(&tree, &["status", abs.to_str().unwrap()], &root);
    let missing = compare(
        &tree,
        &["status", "nonexist", "", "service/x/", "/nonexistent/"],
        &root,
    );
    assert_eq!(missing.code, Some(4));
    assert!(missing.stdout.starts_with(
        "fail: nonexist: unable to change to service directory: file does not exist\n"
    ));

    // A directory runsv never ran in, and one whose runsv is gone.
    fs::create_dir_all(root.join("never")).unwrap();
    let never = compare(&tree, &["status", "./never"], &root);
    assert_eq!(
        never.stdout,
        "warning: ./never: unable to open supervise/ok: file does not exist\n"
    );
    fs::create_dir_all(root.join("dead/supervise")).unwrap();
    nix::unistd::mkfifo(
        &root.join("dead/supervise/ok"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &root.join("dead/supervise/control"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let dead = compare(&tree, &["status", "./dead"], &root);
    assert_eq!(dead.stdout, "fail: ./dead: runsv not running\n");
    compare(&tree, &["exit", "./dead"], &root);
    compare(&tree, &["-v", "exit", "./dead"], &root);
    compare(&tree, &["down", "./dead"], &root);
    compare(&tree, &["-v", "up", "./dead", "./never"], &root);

    // A status file of the wrong size.
    fs::create_dir_all(root.join("short/supervise")).unwrap();
    fs::copy(
        tree.service("a/supervise/status"),
        root.join("short/supervise/status"),
    )
    .unwrap();
    // The ok FIFO of a live runsv makes `short` look alive.
    fs::hard_link(
        tree.service("a/supervise/ok"),
        root.join("short/supervise/ok"),
    )
    .unwrap();
    compare(&tree, &["status", "./short"], &root);
    fs::write(root.join("short/supervise/status"), [0u8; 7]).unwrap();
    let short = compare(&tree, &["status", "./short"], &root);
    assert_eq!(
        short.stdout,
        "warning: ./short: unable to read supervise/status: bad format\n"
    );
}

/// A directory that borrows a live runsv's `ok` FIFO (by hard link) and a
/// copy of its status, so that its other files can be broken at will.
fn borrowed(tree: &Tree, root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(dir.join("supervise")).unwrap();
    fs::copy(
        tree.service("a/supervise/status"),
        dir.join("supervise/status"),
    )
    .unwrap();
    fs::hard_link(tree.service("a/supervise/ok"), dir.join("supervise/ok")).unwrap();
    dir
}

#[test]
fn odd_service_dirs_match_real_sv() {
    if !ready() {
        return;
    }
    let tree = Tree::standard("sv-odd");
    let root = tree.root().to_path_buf();

    // log/ exists but was never supervised: the logger's status cannot be
    // read, and the service's record is printed again under `log`.
    let nolog = borrowed(&tree, &root, "nolog");
    fs::create_dir_all(nolog.join("log")).unwrap();
    let out = compare(&tree, &["status", "./nolog"], &root);
    assert!(
        out.stdout.contains("; warning: ./nolog/log: unable to open supervise/ok: file does not exist\nrun: log: (pid "),
        "{out:?}"
    );
    assert_eq!(out.code, Some(1));

    // log is a file: chdir fails with something other than ENOENT.
    let filelog = borrowed(&tree, &root, "filelog");
    fs::write(filelog.join("log"), "").unwrap();
    compare(&tree, &["status", "./filelog"], &root);

    // `down` and `check` that cannot be stat'ed (symlink loops).
    let loopy = borrowed(&tree, &root, "loopy");
    std::os::unix::fs::symlink("down", loopy.join("down")).unwrap();
    std::os::unix::fs::symlink("check", loopy.join("check")).unwrap();
    let out = compare(&tree, &["status", "./loopy"], &root);
    assert_eq!(
        out.stderr,
        "warning: unable to stat ./loopy/down: symbolic link loop\n"
    );
    compare(&tree, &["-w", "1", "check", "./loopy"], &root);
    // An empty status file.
    let empty = borrowed(&tree, &root, "empty");
    fs::write(empty.join("supervise/status"), "").unwrap();
    compare(&tree, &["status", "./empty", "./loopy", "a"], &root);
    compare(&tree, &["-v", "up", "./empty"], &root);
}

#[test]
fn usage_and_option_errors_match_real_sv() {
    if !ready() {
        return;
    }
    let tree = Tree::standard("sv-usage");
    let root = tree.root().to_path_buf();
    for args in [
        &[][..],
        &["-V"],
        &["-x", "status", "a"],
        &["-w"],
        &["-vw"],
        &["status"],
        &["bogus", "a"],
        &["rerun", "a"],
        &["fly", "a"],
        &["Up", "a"],
        &["", "a"],
        &["--", "status", "a"],
        &["-", "status", "a"],
        &["-v", "-w", "2", "status", "a"],
        &["-w3v", "status", "a"],
    ] {
        compare(&tree, args, &root);
    }
    let usage = compare(&tree, &[], &root);
    assert_eq!(
        usage.stderr,
        "usage: sv [-v] [-w sec] command service ...\n\n"
    );
    assert_eq!(usage.code, Some(100));
}

#[test]
fn signals_and_check_match_real_sv() {
    if !ready() {
        return;
    }
    let tree = Tree::standard("sv-signals");
    let root = tree.root().to_path_buf();
    // `a` ignores these signals, so the state stays the same for both runs.
    for cmd in ["hup", "alarm", "interrupt", "quit", "1", "2", "h", "reload"] {
        compare(&tree, &[cmd, "a"], &root);
        compare(&tree, &["-v", cmd, "a"], &root);
    }
    // check: down services pass at once; d's check script fails until
    // `ready` exists, so it times out after -w.
    compare(&tree, &["check", "a", "c", "e"], &root);
    let timeout = compare(&tree, &["-w", "1", "check", "d"], &root);
    assert!(
        timeout.stdout.starts_with("timeout: run: d: (pid "),
        "{timeout:?}"
    );
    assert_eq!(timeout.code, Some(1));
    let (real, ours) = both(&tree, &["-v", "up", "d"], &root, &[("SVWAIT", "1")]);
    assert_same("SVWAIT=1 sv -v up d", &real, &ours, Match::Exact);
    fs::write(tree.service("d/ready"), "").unwrap();
    let ok = compare(&tree, &["check", "d"], &root);
    assert!(ok.stdout.starts_with("ok: run: d: (pid "), "{ok:?}");
    compare(&tree, &["-v", "up", "d", "a"], &root);
    compare(&tree, &["-v", "start", "d"], &root);

    // A check that cannot be executed counts as passed, with a warning.
    fs::set_permissions(
        tree.service("d/check"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    fs::remove_file(tree.service("d/ready")).unwrap();
    let noexec = compare(&tree, &["check", "d"], &root);
    assert!(
        noexec
            .stderr
            .contains("warning: unable to run d/check: access denied"),
        "{noexec:?}"
    );
}
