//! The `braid` binary as a user meets it: help, dispatch by subcommand and
//! by the name it is invoked under.

use std::os::unix::fs::symlink;
use std::process::Command;

const BRAID: &str = env!("CARGO_BIN_EXE_braid");

#[test]
fn help_lists_commands_and_programs() {
    let out = Command::new(BRAID).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("demo"), "{text}");
    assert!(text.contains("dinitctl"), "{text}");
    assert!(text.contains("svlogd"), "{text}");
}

#[test]
fn demo_has_its_own_help() {
    let out = Command::new(BRAID)
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--for"), "{text}");
}

#[test]
fn unknown_program_is_an_error_naming_it() {
    let out = Command::new(BRAID).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("\"frobnicate\""), "{err}");
}

#[test]
fn a_program_runs_by_subcommand_and_by_argv0_alike() {
    let dir = std::env::temp_dir().join(format!("braid-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("chpst");
    let _ = std::fs::remove_file(&link);
    symlink(BRAID, &link).unwrap();
    // chpst with no program prints its usage and exits 100, whichever way
    // it is reached.
    let by_link = Command::new(&link).output().unwrap();
    let by_sub = Command::new(BRAID).arg("chpst").output().unwrap();
    assert_eq!(by_link.status.code(), Some(100));
    assert_eq!(by_sub.status.code(), by_link.status.code());
    assert_eq!(by_sub.stderr, by_link.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn engine_demo_runs_the_example_and_stops_cleanly() {
    // flaky fails after a second, three times, before its restart limit
    // stops it: about 5 s on a quiet machine; room for a loaded one.
    let (status, out) = run_to_end(&["demo", "--engine", "--for", "15"]);
    assert!(status.success(), "braid demo: {status}\n{out}");
    let line_of = |needle: &str| {
        out.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
    };
    // The chain starts in dependency order.
    assert!(line_of("db       started") < line_of("cache    started"));
    assert!(line_of("cache    started") < line_of("web      started"));
    // The logger prints what the ticker writes into the pipe.
    line_of("[logger] tick 1");
    // The failing service is restarted, then given up on.
    line_of("Service flaky process terminated with exit code 1");
    line_of("Service flaky restarting too quickly; stopping.");
    // Everything stops at the end, dependents before what they need.
    assert!(line_of("web      stopped") < line_of("db       stopped"));
    line_of("all stopped");
}

/// Runs `braid ARGS` to its end (killed after a minute), returning its
/// exit status and standard output.
fn run_to_end(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::time::Duration;
    let mut child = Command::new(BRAID)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    (status, out)
}

#[test]
fn demo_logs_in_with_both_backends_waiting_for_the_core_service() {
    let (status, out) = run_to_end(&["demo", "--for", "1.5"]);
    assert!(status.success(), "braid demo: {status}\n{out}");
    for (backend, path) in [
        ("runit", "critical path to db: db"),
        ("dinit", "critical path to login.target: db -> login.target"),
    ] {
        let section: &str = out
            .split("== login with turnstile's ")
            .find(|s| s.starts_with(&format!("`{backend}`")))
            .unwrap_or_else(|| panic!("no {backend} session in:\n{out}"));
        let line_of = |needle: &str| {
            section
                .lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{backend}: no line with {needle:?} in:\n{section}"))
        };
        // The login waits, then proceeds once db is ready (it takes a second).
        assert!(line_of("the login waits") < line_of("login proceeds"));
        let proceeds = section.lines().nth(line_of("login proceeds")).unwrap();
        let at: f64 = proceeds.trim().split('s').next().unwrap().parse().unwrap();
        assert!(
            at >= 1.0,
            "{backend}: login proceeded before db was ready: {proceeds}"
        );
        // The logger prints what the ticker writes; the timeline shows the
        // path to the gate; logout ends the manager.
        line_of("[logger] tick");
        line_of(path);
        assert!(line_of("logout:") < line_of("the session manager has exited"));
    }
}
