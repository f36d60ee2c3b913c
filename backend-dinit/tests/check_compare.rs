//! braid's `dinit-check` against the real one: the same service
//! directories, the same arguments, and the same stdout, stderr and exit
//! status, byte for byte.
//!
//! The real program comes from `$BRAID_PEER_DINIT_DIR` or
//! `../shared/peers/dinit/` beside the repository; braid's is `$BRAID_BIN`
//! or `braid` in this test's target directory (build it with
//! `cargo build -p braid-turnstile`). When either is missing the tests say
//! so and pass.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn peer_check() -> Option<PathBuf> {
    braid_tests::dinit_peer_dir().map(|dir| dir.join("dinit-check"))
}

fn braid_bin() -> Option<PathBuf> {
    braid_tests::braid_binary()
}

/// A scratch directory holding service files and a `dinit-check` link to
/// braid; removed on drop.
struct Tree {
    root: PathBuf,
    real: PathBuf,
    ours: PathBuf,
}

impl Tree {
    fn new() -> Option<Tree> {
        let real = peer_check()?;
        let braid = braid_bin()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "braid-check-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("bin")).unwrap();
        let ours = root.join("bin/dinit-check");
        symlink(braid, &ours).unwrap();
        Some(Tree { root, real, ours })
    }

    fn file(&self, path: &str, text: &str) -> &Self {
        let p = self.root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    fn exec(&self, path: &str) -> &Self {
        self.file(path, "#!/bin/sh\n");
        fs::set_permissions(self.root.join(path), fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn link(&self, path: &str, target: &str) -> &Self {
        let p = self.root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }

    fn dir(&self, path: &str) -> &Self {
        fs::create_dir_all(self.root.join(path)).unwrap();
        self
    }

    /// Runs both programs in the tree with `args`; panics on any difference.
    fn same(&self, args: &[&str]) {
        let run = |prog: &Path| {
            let out = Command::new(prog)
                .args(args)
                .current_dir(&self.root)
                .env("BRAID_TEST_VAR", "value with  spaces")
                .env_remove("XDG_CONFIG_HOME")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                out.status.code(),
            )
        };
        let real = run(&self.real);
        let ours = run(&self.ours);
        assert_eq!(real.0, ours.0, "stdout differs for {args:?}");
        assert_eq!(real.1, ours.1, "stderr differs for {args:?}");
        assert_eq!(real.2, ours.2, "exit status differs for {args:?}");
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

#[test]
fn options_and_usage_errors() {
    let Some(t) = Tree::new() else { return };
    for args in [
        &["--help"][..],
        &["-d"],
        &["--services-dir", ""],
        &["-p"],
        &["-e"],
        &["--bogus"],
        &["-"],
        &["-x", "svc"],
        &["-d", "nowhere"],
        &["-d", "nowhere", "a", "b"],
    ] {
        t.same(args);
    }
}

#[test]
fn good_services_report_no_problems() {
    let Some(t) = Tree::new() else { return };
    t.exec("bin/daemon")
        .file(
            "sd/boot",
            "# the boot milestone\ntype = internal\ndepends-on = web\nwaits-for: logger\nwaits-for.d = boot.d\n",
        )
        .dir("sd/boot.d")
        .file("sd/boot.d/extra", "")
        .file("sd/boot.d/.hidden", "")
        .file(
            "sd/web",
            "type = process\ncommand = /bin/sleep 10\nrestart = on-failure\nstop-timeout = 2.5\nlog-type = buffer\nlog-buffer-size = 0x1000\nready-notification = pipefd:3\noptions = signal-process-only start-interruptible\nrlimit-nofile = 1024:4096\nnice = 5\nterm-signal = HUP\n",
        )
        .file(
            "sd/logger",
            "type = scripted\ncommand = /bin/true \\\n    --flag\nstop-command += /bin/true\nworking-dir = /tmp\nlogfile = /tmp/logger.log\n",
        )
        .file("sd/extra", "type = triggered\n");
    t.same(&["-d", "sd"]);
    t.same(&["-d", "sd", "web", "logger"]);
    t.same(&["--services-dir", "sd", "boot", "boot"]);
}

#[test]
fn line_syntax_errors() {
    let Some(t) = Tree::new() else { return };
    t.file("sd/unknown", "type = internal\nfrobnicate = 1\n")
        .file(
            "sd/badline",
            "type = internal\njust words\nrestart = maybe\n",
        )
        .file("sd/hash", "type = internal\nrestart = yes#comment\n")
        .file("sd/quote", "type = internal\ndepends-on = \"open\n")
        .file("sd/plus", "type = internal\nrestart += yes\n")
        .file("sd/contws", "type = process\ncommand = /bin/true \\\n--x\n")
        .file("sd/conteof", "type = process\ncommand = /bin/true \\")
        .file("sd/meta", "type = internal\n@meta enable-via boot\n@frob\n")
        .file("sd/evenbs", "type = process\ncommand = /bin/echo x\\\\\n")
        .file(
            "sd/multi",
            "type = process\ncommand = /bin/true\nx = \\\n  # c\n  y\nrestart = \\\n  bad\n",
        )
        .file("sd/empty", "")
        .dir("sd/adir");
    for s in [
        "unknown", "badline", "hash", "quote", "plus", "contws", "conteof", "meta", "evenbs",
        "multi", "empty", "adir", "missing",
    ] {
        t.same(&["-d", "sd", s]);
    }
}

#[test]
fn value_errors_name_the_line() {
    let Some(t) = Tree::new() else { return };
    t.file(
        "sd/values",
        concat!(
            "type = process\ncommand = /bin/true\n",
            "socket-permissions = 9\nlogfile-permissions = x\nrestart-delay = 1x\n",
            "stop-timeout = 99999999999999999999\nrun-as = 99999999999999999999999\n",
            "run-as = 12abc\nrun-as = no-such-user-here\nsocket-gid = 1x\nlogfile-gid = no-such-group\n",
            "inittab-id = abcdef\ninittab-line = 0123456789012345678901234567890123\n",
            "nice = x\nready-notification = pipefd:x\nready-notification = foo\n",
            "ready-notification = pipevar:\nlog-type = foo\nrestart = maybe\n",
            "smooth-recovery = x\noptions = skippable foo\nload-options = bar\n",
            "term-signal = SIGHUP\ntype = blah\nchain-to = .x\nafter = @x\nbefore = .y\n",
            "consumer-of = values\nrlimit-core = 1x\nrlimit-data = 1:-x\nrlimit-nofile = 99999999999999999999\n",
            "ioprio = realtime:9\nioprio = sometimes\noom-score-adj = 5000\n",
            "restart-limit-count = -1\nlog-buffer-size = 4294967295\ndepends-on = .dot\n",
            "capabilities = cap_net_raw\nsecurebits = noroot\n",
        ),
    );
    t.same(&["-d", "sd", "values"]);
}

#[test]
fn includes_and_dependency_directories() {
    let Some(t) = Tree::new() else { return };
    t.file(
        "sd/a",
        "type = internal\n@include parts/common\n@include-opt parts/none\n@include-opt parts/dir/\n",
    )
    .file("sd/parts/common", "waits-for = b\nwaits-for.d = deps.d\n")
    .file("sd/b", "type = internal\n@include nothere\n")
    .file("sd/c", "type = internal\n@include-opt a b\n")
    .file("sd/d", "type = internal\n@include\n")
    .file("sd/e", "type = internal\n@include $/NOPE_UNSET\n")
    .file("sd/f", "type = internal\n@include parts\n")
    .file("sd/g", "type = internal\nwaits-for.d = g.d\ndepends-on.d = none.d\ndepends-ms.d = /etc/passwd\n")
    .dir("sd/g.d")
    .file("sd/g.d/h", "")
    .file("sd/h", "type = internal\n")
    .file("sd/real/r", "type = internal\n@include inc\n")
    .file("sd/real/inc", "depends-on = h\n")
    .link("sd/r", "real/r")
    .file("sd/selfinc", "type = internal\n@include selfinc\n");
    for s in ["a", "b", "c", "d", "e", "f", "g", "r", "selfinc"] {
        t.same(&["-d", "sd", s]);
    }
    t.same(&["-d", "nowhere", "-d", "sd/", "g"]);
    t.same(&["-d", "/etc/passwd", "-d", "sd", "h"]);
}

#[test]
fn substitution_and_arguments() {
    let Some(t) = Tree::new() else { return };
    t.file(
        "sd/sub",
        "type = process\ncommand = /bin/echo $BRAID_TEST_VAR $/BRAID_TEST_VAR ${NOPE:-dflt} ${BRAID_TEST_VAR:+set} $$ \"$1\"\ndepends-on = dep@${BRAID_TEST_VAR:+x}\n",
    )
    .file("sd/dep", "type = internal\nchain-to = never-loaded\nafter = sub@one\n")
    .file("sd/noarg", "type = process\ncommand = /bin/echo $1\n")
    .file("sd/badvar", "type = internal\ndepends-on = $\nwaits-for = x$1\nafter = ${X\nbefore = ${X:y}\nconsumer-of = $2\n")
    .file("sd/badcmd", "type = process\ncommand = /bin/echo ${BAD\n")
    .file("sd/paths", "type = process\ncommand = /bin/true\nlogfile = /tmp/${NOPE\nworking-dir = $\npid-file = $/\nsocket-listen = ${X:z}\n")
    .file("sd/env-missing", "type = process\ncommand = /bin/true\nenv-file = no-such-env\n")
    .file("env-global", "GLOBAL=1\n=bad\nnoequals\n!frob\n!unset HOME\n");
    t.file(
        "sd/envsvc",
        "type = scripted\ncommand = /bin/true\nenv-file = env\nstop-command = /bin/echo $FOO\nworking-dir = $FOO\nload-options = export-service-name export-passwd-vars sub-vars\nlogfile = /tmp/$DINIT_SERVICE-$USER/x\n",
    )
    .file("sd/env", "FOO=/tmp\n!unset HOME\n");
    for s in [
        "sub@arg",
        "sub@",
        "noarg",
        "noarg@",
        "badvar",
        "badcmd",
        "paths",
        "envsvc",
        "env-missing",
        "dep",
    ] {
        t.same(&["-d", "sd", s]);
    }
    t.same(&["-d", "sd", "-e", "env-global", "sub@a"]);
    t.same(&["-d", "sd", "-e", "no-such-file", "noarg@a"]);
    t.same(&["-d", "sd", "-e", "sd", "noarg@a"]);
}

#[test]
fn finalise_checks_and_lint() {
    let Some(t) = Tree::new() else { return };
    t.exec("bin/tool")
        .file("bin/plain", "x")
        .file("sd/nocmd", "type = process\n")
        .file("sd/bg", "type = bgprocess\ncommand = /bin/true\nready-notification = pipevar:X\n")
        .file(
            "sd/lint",
            "type = internal\ncommand = /bin/true\nstop-command = /bin/true\nworking-dir = /\nrun-in-cgroup = x\nrun-as = 0\nsocket-listen = /tmp/s\ninittab-id = a\noptions = signal-process-only pass-cs-fd skippable kill-all-on-stop\nlog-type = buffer\nnice = 1\nioprio = idle\noom-score-adj = 1\n",
        )
        .file("sd/logs", "type = process\ncommand = /bin/true\nlog-type = file\n")
        .file("sd/logs2", "type = process\ncommand = /bin/true\nlogfile = /tmp/x\nlog-type = none\n")
        .file("sd/kill", "type = process\ncommand = /bin/true\noptions = kill-all-on-stop\n")
        .file("sd/cmds", "type = process\ncommand = bin/tool\nstop-command = /nonexistent/x\nworking-dir = /nonexistent\n")
        .file("sd/cmds2", "type = scripted\ncommand = /etc\nstop-command = ../bin/plain\n")
        .file("sd/cmds3", "type = scripted\ncommand = /etc/passwd\nlogfile = /etc/passwd/x\n")
        .file("sd/cmds4", "type = process\ncommand = /bin/true\nlogfile = nodir/x.log\n")
        .file("sd/cons", "type = scripted\ncommand = /bin/true\nconsumer-of = other\n");
    for s in [
        "nocmd", "bg", "lint", "logs", "logs2", "kill", "cmds", "cmds2", "cmds3", "cmds4", "cons",
    ] {
        t.same(&["-d", "sd", s]);
    }
}

#[test]
fn secondary_checks() {
    let Some(t) = Tree::new() else { return };
    t.file("sd/self", "type = internal\ndepends-on = self\n")
        .file("sd/a", "type = internal\ndepends-on = b\n")
        .file("sd/b", "type = internal\nwaits-for = c\n")
        .file("sd/c", "type = internal\ndepends-ms = a\n")
        .file("sd/m", "type = internal\nafter = m2\n")
        .file("sd/m2", "type = internal\ndepends-on = m\n")
        .file("sd/k", "type = internal\nbefore = k2\n")
        .file("sd/k2", "type = internal\ndepends-on = k\n")
        .file(
            "sd/miss",
            "type = internal\ndepends-on = nowhere\nprepared-by = a\n",
        )
        .file(
            "sd/p",
            "type = process\ncommand = /bin/true\nlog-type = pipe\n",
        )
        .file("sd/q", "type = process\ncommand = /bin/true\n")
        .file("sd/i", "type = internal\nlog-type = pipe\n")
        .file(
            "sd/c1",
            "type = process\ncommand = /bin/true\nconsumer-of = p\n",
        )
        .file(
            "sd/c2",
            "type = process\ncommand = /bin/true\nconsumer-of = q\n",
        )
        .file(
            "sd/c3",
            "type = process\ncommand = /bin/true\nconsumer-of = i\n",
        )
        .file(
            "sd/c4",
            "type = process\ncommand = /bin/true\nconsumer-of = gone\n",
        );
    for args in [
        &["self"][..],
        &["a"],
        &["b"],
        &["m"],
        &["m2"],
        &["k2", "k"],
        &["miss"],
        &["c1", "c2", "c3", "c4"],
    ] {
        let mut v = vec!["-d", "sd"];
        v.extend_from_slice(args);
        t.same(&v);
    }
}

#[test]
fn deep_dependency_chains() {
    let Some(t) = Tree::new() else { return };
    for i in 0..40 {
        t.file(
            &format!("sd/s{i}"),
            &format!("type = internal\ndepends-on = s{}\n", i + 1),
        );
    }
    t.file("sd/s40", "type = internal\n");
    t.same(&["-d", "sd", "s0"]);
    t.same(&["-d", "sd", "s5"]);
}

/// A real `dinit --user` daemon, killed on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn online_mode_uses_the_daemons_directories_and_environment() {
    let Some(t) = Tree::new() else { return };
    let dinit = t.real.with_file_name("dinit");
    t.file(
        "sd/boot",
        "type = process\ncommand = /bin/sleep 60\nlogfile = logs-$ONLY_IN_DAEMON/out\n",
    )
    .file(
        "sd/other",
        "type = internal\ndepends-on = boot\nwaits-for = absent\n",
    )
    // Only with the daemon's value does the log directory exist.
    .dir("sd/logs-daemon-value");
    let sock = t.root.join("sock");
    let (read_end, write_end) = braid_tests::ready_pipe();
    let child = Command::new(&dinit)
        .args(["-u", "-q", "-d", "sd", "-p"])
        .arg(&sock)
        .arg("--ready-fd")
        .arg(write_end.as_raw_fd().to_string())
        .arg("boot")
        .current_dir(&t.root)
        .env("ONLY_IN_DAEMON", "daemon-value")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(write_end);
    let _daemon = Daemon(child);
    // Listening, not only bound: dinit says so on its ready fd.
    if let Err(why) = braid_tests::await_ready(&read_end, std::time::Duration::from_secs(10)) {
        panic!("dinit did not become ready: {why:?}");
    }
    let sock = sock.to_string_lossy().into_owned();
    t.same(&["-n", "-p", &sock, "other"]);
    t.same(&[
        "--online",
        "--socket-path",
        &sock,
        "-d",
        "ignored",
        "boot",
        "nosuch",
    ]);
    t.same(&["-n", "-p", "no-such-socket", "other"]);
}
