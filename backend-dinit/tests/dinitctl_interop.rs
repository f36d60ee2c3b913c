//! braid's `dinitctl` against the real one, both driving a real dinit
//! daemon: identical stdout, stderr and exit status for every subcommand.
//!
//! Commands that change state run as the same sequence on two fresh
//! daemons, one per client; read-only ones run on one daemon at the same
//! moment. Only pids are normalised.

mod dinitctl_support;

use std::path::Path;
use std::time::{Duration, Instant};

use dinitctl_support::{normalise, path_str, peer_dir, run_bounded, Daemon, Output};

const SERVICES: &[(&str, &str)] = &[
    ("boot", "type = internal\nwaits-for.d = boot.d\n"),
    ("boot.d/.keep", ""),
    ("sleeper", "type = process\ncommand = /bin/sleep 1000\nrestart = false\n"),
    ("holder", "type = internal\ndepends-on = sleeper\nrestart = false\n"),
    ("failing", "type = scripted\ncommand = /bin/sh -c \"exit 3\"\nrestart = false\n"),
    ("nonexec", "type = process\ncommand = /nonexistent/program\nrestart = false\n"),
    ("depfail", "type = internal\ndepends-on = failing\n"),
    (
        "logged",
        "type = process\ncommand = /bin/sh -c \"echo hello; echo world; printf partial; exec /bin/sleep 1000\"\nlog-type = buffer\nrestart = false\n",
    ),
    ("trig", "type = triggered\n"),
    ("extra", "type = internal\n"),
    ("bad", "type = process\nthis is not a setting\n"),
    ("viaboot", "# enabled from boot by default\n@meta enable-via boot\ntype = internal\n"),
    ("other", "type = internal\nwaits-for.d = other.d\n"),
    ("other.d/.keep", ""),
    ("fixed", "type = internal\nwaits-for = trig\nwaits-for.d = boot.d\n"),
];

/// The state-changing sequence; every step's output is compared.
const SEQUENCE: &[&[&str]] = &[
    &["list"],
    &["start", "sleeper"],
    &["start", "sleeper"],
    &["status", "sleeper"],
    &["is-started", "sleeper"],
    &["is-failed", "sleeper"],
    &["start", "holder"],
    &["stop", "sleeper"],
    &["restart", "sleeper"],
    &["list"],
    &["stop", "--force", "sleeper"],
    &["status", "holder"],
    &["list"],
    &["start", "failing"],
    &["is-failed", "failing"],
    &["status", "failing"],
    &["start", "nonexec"],
    &["status", "nonexec"],
    &["start", "depfail"],
    &["status", "depfail"],
    &["list"],
    &["start", "--no-wait", "trig"],
    &["status", "trig"],
    &["trigger", "trig"],
    &["is-started", "trig"],
    &["trigger", "sleeper"],
    &["restart", "trig"],
    &["untrigger", "trig"],
    &["restart", "nonexec"],
    &["restart", "--ignore-unstarted", "nonexec"],
    &["stop", "--ignore-unstarted", "nosuch"],
    &["stop", "nosuch"],
    &["release", "trig"],
    &["wake", "sleeper"],
    &["start", "sleeper"],
    &["restart", "sleeper"],
    &["start", "holder"],
    &["release", "holder"],
    &["release", "sleeper"],
    &["trigger", "trig"],
    &["start", "--pin", "trig"],
    &["stop", "trig"],
    &["unpin", "trig"],
    &["stop", "--pin", "trig"],
    &["start", "trig"],
    &["wake", "trig"],
    &["unpin", "trig"],
    &["untrigger", "trig"],
    &["add-dep", "waits-for", "boot", "sleeper"],
    &["add-dep", "waits-for", "boot", "sleeper"],
    &["rm-dep", "waits-for", "boot", "sleeper"],
    &["rm-dep", "waits-for", "boot", "sleeper"],
    &["add-dep", "need", "sleeper", "sleeper"],
    &["add-dep", "milestone", "holder", "boot"],
    &["unload", "nonexec"],
    &["unload", "nonexec"],
    &["unload", "sleeper"],
    &["reload", "failing"],
    &["reload", "nonexec"],
    &["start", "nosuch"],
    &["start", "bad"],
    &["status", "nosuch"],
    &["is-started", "nosuch"],
    &["setenv", "FOO=bar", "BAZ"],
    &["unsetenv", "FOO"],
    &["unsetenv", "A=B"],
    &["setenv", "=x"],
    &["catlog", "trig"],
    &["catlog", "nosuch"],
    &["signal", "HUP", "trig"],
    &["signal", "TERM", "nosuch"],
    &["--quiet", "start", "sleeper"],
    &["--quiet", "status", "sleeper"],
    &["--quiet", "is-started", "sleeper"],
    &["enable", "extra"],
    &["enable", "extra"],
    &["disable", "extra"],
    &["disable", "extra"],
    &["enable", "viaboot"],
    &["enable", "--from", "other", "sleeper"],
    &["disable", "--from", "other", "sleeper"],
    &["enable", "--from", "fixed", "trig"],
    &["enable", "--from", "sleeper", "trig"],
    &["enable", "--from", "a@b", "trig"],
    &["list"],
    &["shutdown"],
];

fn compare(step: &str, real: &Output, ours: &Output) {
    compare_in(step, (real, None), (ours, None));
}

/// Compares outputs taken on two daemons, whose private directories
/// (appearing in paths) are replaced by `<tmp>`.
fn compare_in(step: &str, real: (&Output, Option<&Daemon>), ours: (&Output, Option<&Daemon>)) {
    let (r, o) = (
        normalise_output(real.0, real.1),
        normalise_output(ours.0, ours.1),
    );
    assert_eq!(
        r, o,
        "step `dinitctl {step}` differs:\nreal: {:#?}\nbraid: {:#?}",
        real.0, ours.0
    );
}

fn normalise_output(o: &Output, d: Option<&Daemon>) -> Output {
    let dir = |s: String| match d {
        Some(d) => s.replace(path_str(&d.dir.0), "<tmp>"),
        None => s,
    };
    Output {
        stdout: dir(normalise(&o.stdout)),
        stderr: dir(normalise(&o.stderr)),
        code: o.code,
    }
}

#[test]
fn state_changing_sequence_matches_real_dinitctl() {
    let Some(peer) = peer_dir() else { return };
    let real_daemon = Daemon::start(&peer, SERVICES);
    let our_daemon = Daemon::start(&peer, SERVICES);
    for step in SEQUENCE {
        let real = real_daemon.run(&real_daemon.real("dinitctl"), step);
        let ours = our_daemon.run(&our_daemon.braid("dinitctl"), step);
        compare_in(
            &step.join(" "),
            (&real, Some(&real_daemon)),
            (&ours, Some(&our_daemon)),
        );
        if step[0] == "shutdown" {
            continue;
        }
        // Persistent enable: the same links with the same targets.
        for dir in ["boot.d", "other.d"] {
            let links = |d: &Daemon| -> Vec<(String, String)> {
                let mut v: Vec<_> = std::fs::read_dir(d.services.join(dir))
                    .unwrap()
                    .flatten()
                    .filter_map(|e| {
                        let t = std::fs::read_link(e.path()).ok()?;
                        Some((
                            e.file_name().to_string_lossy().into_owned(),
                            t.to_string_lossy().into_owned(),
                        ))
                    })
                    .collect();
                v.sort();
                v
            };
            assert_eq!(
                links(&real_daemon),
                links(&our_daemon),
                "links in {dir} after {step:?}"
            );
        }
    }
}

/// Runs the real and braid clients now, on the same daemon.
fn same_moment(d: &Daemon, args: &[&str]) {
    let real = d.run(&d.real("dinitctl"), args);
    let ours = d.run(&d.braid("dinitctl"), args);
    compare(&args.join(" "), &real, &ours);
}

/// Polls with the real client until `args` prints `want` (bounded).
fn wait_until(d: &Daemon, args: &[&str], want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = d.run(&d.real("dinitctl"), args);
        if o.stdout.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never printed {want:?}: {o:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn read_only_commands_match_at_the_same_moment() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let real = d.real("dinitctl");
    d.run(&real, &["start", "logged"]);
    d.run(&real, &["start", "holder"]);
    // The buffered log fills asynchronously.
    wait_until(&d, &["catlog", "logged"], "partial");
    same_moment(&d, &["catlog", "logged"]);
    same_moment(&d, &["list"]);
    same_moment(&d, &["status", "logged"]);
    same_moment(&d, &["status", "sleeper"]);
    same_moment(&d, &["is-started", "holder"]);

    // A process killed by a signal: "terminated" details.
    let killed = d.run(&d.braid("dinitctl"), &["signal", "KILL", "logged"]);
    assert_eq!(
        (killed.stdout.as_str(), killed.stderr.as_str(), killed.code),
        ("", "", 0)
    );
    wait_until(&d, &["is-started", "logged"], "STOPPED");
    same_moment(&d, &["status", "logged"]);
    same_moment(&d, &["list"]);
    // --clear empties the buffer after printing it.
    let before = d.run(&real, &["catlog", "logged"]);
    let cleared = d.run(&d.braid("dinitctl"), &["catlog", "--clear", "logged"]);
    compare("catlog --clear logged", &before, &cleared);
    same_moment(&d, &["catlog", "logged"]);
    assert_eq!(d.run(&real, &["catlog", "logged"]).stdout, "");
    same_moment(&d, &["signal", "9", "logged"]);

    // A modified description is noticed (protocol 6 mtimes).
    let file = d.services.join("holder");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}# changed\n")).unwrap();
    let t = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(t)
        .unwrap();
    same_moment(&d, &["status", "holder"]);
    same_moment(&d, &["start", "holder"]);
}

#[test]
fn socket_selection_and_connection_errors_match() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let both = |args: &[&str], env: &[(&str, Option<&str>)], label: &str| {
        let run = |program: &Path| {
            let mut c = d.command(program);
            for (k, v) in env {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c.args(args);
            run_bounded(c)
        };
        compare(label, &run(&d.real("dinitctl")), &run(&d.braid("dinitctl")));
    };
    // -u: $XDG_RUNTIME_DIR/dinitctl is this daemon's socket.
    both(&["-u", "list"], &[], "-u list");
    both(
        &["--user", "is-started", "boot"],
        &[],
        "--user is-started boot",
    );
    // DINIT_SOCKET_PATH wins over XDG_RUNTIME_DIR.
    let sock = path_str(&d.socket).to_string();
    both(
        &["list"],
        &[
            ("DINIT_SOCKET_PATH", Some(&sock)),
            ("XDG_RUNTIME_DIR", Some("/nonexistent")),
        ],
        "DINIT_SOCKET_PATH",
    );
    // No XDG_RUNTIME_DIR: $HOME/.dinitctl, missing here.
    both(
        &["-u", "list"],
        &[("XDG_RUNTIME_DIR", None)],
        "-u list, no runtime dir",
    );
    both(
        &["-u", "-p", "/nonexistent/sock", "list"],
        &[],
        "-p nonexistent",
    );
    both(&["-s", "list"], &[], "-s list");
    both(
        &["-u", "list"],
        &[("XDG_RUNTIME_DIR", None), ("HOME", None)],
        "no HOME",
    );
}

#[test]
fn passed_control_fd_is_used() {
    use std::os::fd::AsRawFd;
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let run = |program: &Path| {
        let sock = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        let fd = sock.as_raw_fd();
        // Let the child inherit it.
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .unwrap();
        let mut c = d.command(program);
        c.env("DINIT_CS_FD", fd.to_string()).args([
            "--use-passed-cfd",
            "-p",
            "/nonexistent",
            "list",
        ]);
        let out = run_bounded(c);
        drop(sock);
        out
    };
    let (real, ours) = (run(&d.real("dinitctl")), run(&d.braid("dinitctl")));
    compare("--use-passed-cfd list", &real, &ours);
    assert_eq!(real.code, 0, "{real:?}");
}

#[test]
fn command_line_handling_matches() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let cases: &[&[&str]] = &[
        &[],
        &["--help"],
        &["start", "--help"],
        &["--version"],
        &["frobnicate"],
        &["--bogus"],
        &["start"],
        &["start", "a", "b"],
        &["start", ""],
        &["--force", "stop", "x"],
        &["start", "--force", "x"],
        &["--clear", "catlog", "x"],
        &["list", "extra"],
        &["shutdown", "extra"],
        &["signal"],
        &["signal", "HUP"],
        &["signal", "--help"],
        &["signal", "bogus", "x"],
        &["signal", "none", "x"],
        &["signal", "--list"],
        &["signal", "-l", "HUP"],
        &["add-dep", "soft", "a", "b"],
        &["add-dep", "need", "a"],
        &["enable"],
        &["enable", "--from"],
        &["setenv"],
        &["-p"],
        &["-p", ""],
        &["-d"],
        &["-o", "start", "x"],
        &["--offline", "list"],
    ];
    for args in cases {
        let real = run_bounded({
            let mut c = d.command(&d.real("dinitctl"));
            c.args(*args);
            c
        });
        let ours = run_bounded({
            let mut c = d.command(&d.braid("dinitctl"));
            c.args(*args);
            c
        });
        compare(&args.join(" "), &real, &ours);
    }
}

#[test]
fn offline_enable_and_disable_match() {
    let Some(peer) = peer_dir() else { return };
    // Two copies of the same service tree, one per client; no daemon is
    // contacted (the daemon here only provides the environment and links).
    let real_d = Daemon::start(&peer, SERVICES);
    let our_d = Daemon::start(&peer, SERVICES);
    let steps: &[&[&str]] = &[
        &["enable", "trig"],
        &["enable", "trig"],
        &["disable", "trig"],
        &["disable", "trig"],
        &["enable", "viaboot"],
        &["enable", "--from", "other", "sleeper@arg"],
        &["disable", "--from", "other", "sleeper@arg"],
        &["enable", "--from", "fixed", "trig"],
        &["enable", "--from", "holder", "trig"],
        &["enable", "nosuch"],
        &["enable", "--from", "nosuch", "trig"],
    ];
    for step in steps {
        let run = |d: &Daemon, program: &Path| {
            let mut c = d.command(program);
            c.args(["--offline", "-u", "-d", path_str(&d.services)])
                .args(*step);
            run_bounded(c)
        };
        let real = run(&real_d, &real_d.real("dinitctl"));
        let ours = run(&our_d, &our_d.braid("dinitctl"));
        compare_in(
            &step.join(" "),
            (&real, Some(&real_d)),
            (&ours, Some(&our_d)),
        );
        let link = |d: &Daemon| std::fs::read_link(d.services.join("boot.d/trig")).ok();
        assert_eq!(link(&real_d), link(&our_d), "boot.d/trig after {step:?}");
    }
}
