//! Launching one process: every setting is visible from inside the child,
//! no fd of braid's leaks, and failures come back with their stage and errno.

mod runtime_support;

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use braid_core::engine::{LaunchFailure, LaunchStage, Role};
use braid_core::runtime::launch::{Launch, NotifyTarget, Stdin, Stdout};
use braid_core::spec::{LimitValue, Rlimit, ServiceSpec};
use nix::errno::Errno;
use nix::sys::resource::Resource;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime_support::*;

const LIMIT: Duration = Duration::from_secs(20);

fn path_env() -> Vec<(OsString, OsString)> {
    vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())]
}

/// Runs `launch` (whose stdout is the write end of the pipe `read` belongs
/// to) to its end; returns what it printed and how it exited.
fn run(launch: &Launch<'_>, read: &OwnedFd) -> (String, WaitStatus) {
    let pid = launch.spawn().expect("launch");
    let _guard = KillOnDrop(pid);
    let status = wait_exit(pid, LIMIT);
    (text(&read_available(read)), status)
}

/// Only the launch's own zombie-free failure is acceptable: nothing is left
/// for us to reap.
fn assert_no_child_left(pid: Pid) {
    assert_eq!(
        waitpid(pid, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD),
        "a failed launch must reap its child"
    );
}

#[test]
fn service_settings_are_visible_in_the_child() {
    let _serial = serial();
    let dir = Scratch::new("launch-settings");
    let mut spec = ServiceSpec::process(
        "svc",
        [
            "sh",
            "-c",
            r#"echo "FOO=$FOO BAR=$BAR"; pwd; nice; ulimit -Sn; ulimit -Hn; echo "args:$*""#,
            "sh",
        ],
    );
    spec.env = vec![("FOO".into(), "from-service".into())];
    spec.working_dir = Some(dir.0.clone());
    spec.nice = Some(7);
    let hard = nix::sys::resource::getrlimit(Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    spec.rlimits = vec![Rlimit {
        resource: Resource::RLIMIT_NOFILE,
        soft: Some(LimitValue::Value(123)),
        hard: None,
    }];
    let mut base = path_env();
    base.push(("FOO".into(), "from-base".into()));
    base.push(("BAR".into(), "kept".into()));
    let base: indexmap::IndexMap<OsString, OsString> = base.into_iter().collect();

    let extra = [OsString::from("x"), OsString::from("y")];
    let mut launch = Launch::service(&spec, Role::Main, &extra, &base).expect("has a command");
    let (read, write) = pipe();
    launch.stdout(Stdout::Fd(write.as_fd()));
    let (out, status) = run(&launch, &read);
    let hard_text = if hard == nix::libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        hard.to_string()
    };
    let expected = format!(
        "FOO=from-service BAR=kept\n{}\n7\n123\n{hard_text}\nargs:x y\n",
        dir.0.canonicalize().unwrap().display()
    );
    assert_eq!(out, expected);
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn roles_pick_their_commands() {
    let mut spec = ServiceSpec::process("svc", ["main"]);
    let env: Vec<(OsString, OsString)> = Vec::new();
    let env_iter = || env.iter().map(|(k, v)| (k, v));
    assert!(Launch::service(&spec, Role::Stop, &[], env_iter()).is_none());
    assert!(Launch::service(&spec, Role::Finish, &[], env_iter()).is_none());
    assert!(Launch::service(&spec, Role::Check, &[], env_iter()).is_none());
    spec.finish = Some(braid_core::spec::CommandLine::new(["finish"]));
    assert!(Launch::service(&spec, Role::Finish, &[], env_iter()).is_some());
}

/// What the child printed, words separated by single spaces.
fn words(launch: Launch<'_>) -> String {
    let (read, write) = pipe();
    // A launch borrowing longer-lived fds may also borrow this local one.
    let mut launch: Launch<'_> = launch;
    launch.envs(path_env()).stdout(Stdout::Fd(write.as_fd()));
    let (out, _) = run(&launch, &read);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Prints the shell's open fds (no pipeline: the shell would open a pipe).
const LIST_FDS: &str = r#"ls /proc/$$/fd"#;

/// `words` with the numbers among them sorted numerically, after the rest.
fn fd_words(launch: Launch<'_>) -> String {
    let out = words(launch);
    let (mut fds, rest): (Vec<&str>, Vec<&str>) =
        out.split(' ').partition(|w| w.parse::<i32>().is_ok());
    fds.sort_by_key(|w| w.parse::<i32>().unwrap_or(0));
    rest.into_iter().chain(fds).collect::<Vec<_>>().join(" ")
}

/// The fds a child lists: `expected` plus whatever this test process
/// inherited without close-on-exec (braid passes those on, as the real
/// supervisors do; it is braid's own fds that must not leak).
fn fds_with_inherited(expected: &[i32]) -> String {
    let mut fds: Vec<i32> = expected.to_vec();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap_or(1);
        if fd > 2 && flags & nix::libc::FD_CLOEXEC == 0 {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    fds.dedup();
    fds.iter()
        .map(|fd| fd.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn only_the_configured_fds_are_open_in_the_child() {
    let _serial = serial();
    let plain = fd_words(Launch::new(["sh", "-c", LIST_FDS]));
    assert_eq!(plain, fds_with_inherited(&[0, 1, 2]));

    let (_notify_r, notify_w) = pipe();
    let mut launch = Launch::new(["sh", "-c", LIST_FDS]);
    launch.notify(notify_w.as_fd(), NotifyTarget::Fd(9));
    assert_eq!(fd_words(launch), fds_with_inherited(&[0, 1, 2, 9]));

    let mut launch = Launch::new(["sh", "-c", &format!("echo READY=$READY; {LIST_FDS}")]);
    launch.notify(notify_w.as_fd(), NotifyTarget::EnvVar("READY".into()));
    let fds = fds_with_inherited(&[0, 1, 2, 3]);
    assert_eq!(fd_words(launch), format!("READY=3 {fds}"));
}

#[test]
fn socket_is_fd_3_with_listen_vars() {
    let _serial = serial();
    let dir = Scratch::new("launch-socket");
    let listener = std::os::unix::net::UnixListener::bind(dir.path("sock")).unwrap();
    let (_notify_r, notify_w) = pipe();
    let mut launch = Launch::new([
        "sh",
        "-c",
        &format!(
            r#"[ "$LISTEN_PID" = "$$" ] && echo pid-ok; echo "fds=$LISTEN_FDS n=$N"; {LIST_FDS}"#
        ),
    ]);
    launch
        .env("LISTEN_PID", "stale")
        .socket(listener.as_fd())
        .notify(notify_w.as_fd(), NotifyTarget::EnvVar("N".into()));
    let fds = fds_with_inherited(&[0, 1, 2, 3, 4]);
    assert_eq!(fd_words(launch), format!("pid-ok fds=1 n=4 {fds}"));
}

#[test]
fn stdin_comes_from_the_given_fd() {
    let _serial = serial();
    let (read, write) = pipe();
    nix::unistd::write(&write, b"through the pipe\n").unwrap();
    drop(write);
    let mut launch = Launch::new(["cat"]);
    launch.stdin(Stdin::Fd(read.as_fd()));
    assert_eq!(words(launch), "through the pipe");
}

#[test]
fn output_file_is_appended_relative_to_working_dir() {
    let _serial = serial();
    let dir = Scratch::new("launch-logfile");
    std::fs::write(dir.path("log"), "old\n").unwrap();
    for word in ["one", "two"] {
        let mut launch = Launch::new(["sh", "-c", &format!("echo {word}; echo err-{word} >&2")]);
        launch
            .envs(path_env())
            .working_dir(&dir.0)
            .stdout(Stdout::File {
                path: "log".into(),
                mode: 0o600,
            });
        let pid = launch.spawn().expect("launch");
        assert!(matches!(wait_exit(pid, LIMIT), WaitStatus::Exited(_, 0)));
    }
    assert_eq!(
        read_file(&dir.path("log")),
        "old\none\nerr-one\ntwo\nerr-two\n"
    );

    let mut launch = Launch::new(["true"]);
    launch
        .envs(path_env())
        .working_dir(&dir.0)
        .stdout(Stdout::File {
            path: "new.log".into(),
            mode: 0o600,
        });
    let pid = launch.spawn().expect("launch");
    wait_exit(pid, LIMIT);
    let mode = std::fs::metadata(dir.path("new.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn stdout_only_leaves_stderr_alone() {
    let _serial = serial();
    let dir = Scratch::new("launch-stdout-only");
    let mut launch = Launch::new([
        "sh",
        "-c",
        "echo out; echo 'stderr (expected in test output)' >&2",
    ]);
    launch
        .envs(path_env())
        .working_dir(&dir.0)
        .stdout(Stdout::File {
            path: "log".into(),
            mode: 0o600,
        })
        .stdout_only(true);
    let pid = launch.spawn().expect("launch");
    assert!(matches!(wait_exit(pid, LIMIT), WaitStatus::Exited(_, 0)));
    // Only stdout reached the file; stderr went to braid's (here: the test's).
    assert_eq!(read_file(&dir.path("log")), "out\n");
}

#[test]
fn failures_carry_stage_and_errno() {
    let _serial = serial();
    let dir = Scratch::new("launch-fail");
    let failure = |stage, errno| Err(LaunchFailure { stage, errno });

    let missing = Launch::new(["/nonexistent/program"]).spawn();
    assert_eq!(missing, failure(LaunchStage::DoExec, Errno::ENOENT));

    let mut not_on_path = Launch::new(["no-such-program-anywhere"]);
    not_on_path.envs(path_env());
    assert_eq!(
        not_on_path.spawn(),
        failure(LaunchStage::DoExec, Errno::ENOENT)
    );

    let script = dir.path("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let eacces = Launch::new([&script]).spawn();
    // root may execute nothing without an x bit either
    assert_eq!(eacces, failure(LaunchStage::DoExec, Errno::EACCES));

    let mut bad_dir = Launch::new(["/bin/true"]);
    bad_dir.working_dir(dir.path("missing-dir"));
    assert_eq!(
        bad_dir.spawn(),
        failure(LaunchStage::ChangeDirectory, Errno::ENOENT)
    );

    let mut bad_log = Launch::new(["/bin/true"]);
    bad_log.stdout(Stdout::File {
        path: dir.path("missing-dir/log"),
        mode: 0o644,
    });
    assert_eq!(
        bad_log.spawn(),
        failure(LaunchStage::OpenLogFile, Errno::ENOENT)
    );

    let mut bad_limit = Launch::new(["/bin/true"]);
    bad_limit.rlimits(vec![Rlimit {
        resource: Resource::RLIMIT_NOFILE,
        soft: Some(LimitValue::Unlimited),
        hard: Some(LimitValue::Value(1)),
    }]);
    assert_eq!(
        bad_limit.spawn(),
        failure(LaunchStage::SetRlimits, Errno::EINVAL)
    );

    assert_eq!(
        Launch::new(Vec::<OsString>::new()).spawn(),
        failure(LaunchStage::DoExec, Errno::ENOENT)
    );
    assert_eq!(
        Launch::new(["bad\0arg"]).spawn(),
        failure(LaunchStage::DoExec, Errno::EINVAL)
    );

    // Every failed launch reaped its own child.
    assert_no_child_left(Pid::from_raw(-1));
}

#[test]
fn credentials_are_applied_when_root() {
    let _serial = serial();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: changing credentials needs root");
        return;
    }
    let mut launch = Launch::new(["sh", "-c", "id -u; id -g; id -G"]);
    launch.credentials(braid_core::spec::Credentials {
        uid: Some(65534),
        gid: Some(65533),
        groups: Some(vec![65532]),
    });
    assert_eq!(words(launch), "65534 65533 65533 65532");
}

#[test]
fn child_runs_in_its_own_session() {
    let _serial = serial();
    let launch = Launch::new(["sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat; echo $$"]);
    let out = words(launch);
    let pid = out.rsplit(' ').next().unwrap();
    assert_eq!(
        out,
        format!("{pid} {pid} {pid}"),
        "pgid and sid are the child's pid"
    );
}

#[test]
fn inherit_keeps_braids_stdout_and_stderr_and_null_discards() {
    let _serial = serial();
    let dir = Scratch::new("launch-inherit");
    let targets = |stdout: Stdout<'static>| {
        let file = dir.path("targets");
        let script = format!(
            r#"x=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); echo "$x" > {}"#,
            file.display()
        );
        let mut launch = Launch::new(["sh", "-c", &script]);
        launch.envs(path_env()).stdout(stdout);
        let pid = launch.spawn().expect("launch");
        assert!(matches!(wait_exit(pid, LIMIT), WaitStatus::Exited(_, 0)));
        read_file(&file)
    };
    let ours = |fd: i32| {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        target.display().to_string()
    };
    assert_eq!(
        targets(Stdout::Inherit),
        format!("/dev/null\n{}\n{}\n", ours(1), ours(2))
    );
    assert_eq!(targets(Stdout::Null), "/dev/null\n/dev/null\n/dev/null\n");
}
