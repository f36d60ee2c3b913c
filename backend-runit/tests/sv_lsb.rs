//! sv as an LSB init script: called by a name other than `sv`, the name is
//! the service. braid's `braid` binary picks its program by argv[0], so
//! this test drives braid's sv in-process instead: run with
//! `BRAID_SV_ARGV0=NAME`, this binary *is* sv called as NAME. Otherwise it
//! runs the comparisons below against Debian's sv called by the same name.
//! (A custom `main`, not libtest: the child's stdout must be sv's alone.)

mod runit_support;

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use braid_runit::supervise::RunState;
use runit_support::{assert_same, run, Match, Outcome, Tree, REAL_RUNSVDIR, REAL_SV};

fn main() -> ExitCode {
    if let Some(name) = std::env::var_os("BRAID_SV_ARGV0") {
        let mut argv: Vec<OsString> = std::env::args_os().collect();
        argv[0] = name;
        let Some(sv) = braid_runit::personality("sv") else {
            eprintln!("braid_runit has no sv");
            return ExitCode::from(100);
        };
        return ExitCode::from(sv(argv) as u8);
    }
    for p in [REAL_SV, REAL_RUNSVDIR] {
        if !Path::new(p).exists() {
            println!("skipped: {p} not installed (apt-get install runit)");
            return ExitCode::SUCCESS;
        }
    }
    lsb_mode_matches_real_sv();
    println!("sv_lsb: ok");
    ExitCode::SUCCESS
}

/// Both programs called as `argv0`, at the same time, in `cwd`.
fn both(tree: &Tree, argv0: &str, args: &[&str], cwd: &Path) -> (Outcome, Outcome) {
    let svdir = tree.svdir();
    let me = std::env::current_exe().expect("own path");
    std::thread::scope(|s| {
        let real = s.spawn(|| run(Path::new(REAL_SV), Some(argv0), args, cwd, &svdir, &[]));
        let ours = run(&me, None, args, cwd, &svdir, &[("BRAID_SV_ARGV0", argv0)]);
        (real.join().expect("real sv runner"), ours)
    })
}

fn compare(tree: &Tree, argv0: &str, args: &[&str], cwd: &Path) -> Outcome {
    let (real, ours) = both(tree, argv0, args, cwd);
    assert_same(&format!("{argv0} {args:?}"), &real, &ours, Match::Exact);
    real
}

fn lsb_mode_matches_real_sv() {
    let tree = Tree::standard("sv-lsb");
    let root = tree.root().to_path_buf();
    let svdir = tree.svdir();

    // status codes: 0 running, 3 down, logger decides when log/ exists.
    assert_eq!(
        compare(&tree, "/etc/init.d/a", &["status"], &root).code,
        Some(0)
    );
    assert_eq!(compare(&tree, "c", &["status"], &root).code, Some(3));
    assert_eq!(
        compare(&tree, "e", &["status", "ignored"], &root).code,
        Some(0)
    );
    assert_eq!(compare(&tree, "nonexist", &["status"], &root).code, Some(1));
    // runsvdir skips dot names, so these stay without a runsv.
    fs::create_dir_all(svdir.join(".never")).unwrap();
    assert_eq!(compare(&tree, ".never", &["status"], &svdir).code, Some(4));
    fs::create_dir_all(svdir.join(".dead/supervise")).unwrap();
    let fifo_mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    nix::unistd::mkfifo(&svdir.join(".dead/supervise/ok"), fifo_mode).unwrap();
    assert_eq!(compare(&tree, ".dead", &["status"], &svdir).code, Some(1));

    // Usage: exit 2, LSB usage line; `s` words other than the four.
    let usage = compare(&tree, "/etc/init.d/a", &[], &root);
    assert_eq!(usage.stderr, "usage: a [-w sec] command\n\n");
    assert_eq!(usage.code, Some(2));
    compare(&tree, "a", &["stat"], &root);
    compare(&tree, "a", &["-x"], &root);
    compare(&tree, "a", &["-V"], &root);
    compare(&tree, "a", &["bogus"], &root);

    // Commands that change state: the real one first, then the state is
    // restored and braid's runs the same from the same state.
    // Commands that change state: the real one first, then the state is
    // put back (`reset`) and braid's runs the same command from there.
    use RunState::{Down, Run};
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        RunState,
        Option<(&'a str, RunState)>,
    );
    let changing: &[Case] = &[
        ("c", &["start"], Run, Some(("down", Down))),
        ("c", &["stop"], Down, Some(("up", Run))),
        ("c", &["up"], Run, Some(("down", Down))),
        ("c", &["force-stop"], Down, Some(("up", Run))),
        ("a", &["restart"], Run, None),
        ("a", &["try-restart"], Run, None),
        ("a", &["force-reload"], Run, None),
    ];
    let me = std::env::current_exe().expect("own path");
    for (name, args, after, reset) in changing {
        let real = run(Path::new(REAL_SV), Some(name), args, &root, &svdir, &[]);
        tree.wait_state(name, *after);
        if let Some((cmd, state)) = reset {
            run(Path::new(REAL_SV), None, &[cmd, name], &root, &svdir, &[]);
            tree.wait_state(name, *state);
        }
        let ours = run(&me, None, args, &root, &svdir, &[("BRAID_SV_ARGV0", name)]);
        tree.wait_state(name, *after);
        assert_same(&format!("{name} {args:?}"), &real, &ours, Match::Shape);
    }
    // d's check script fails: timeout, exit 1.
    let timeout = compare(&tree, "d", &["-w", "1", "start"], &root);
    assert_eq!(timeout.code, Some(1));
}
