//! braid's svlogd against Debian's `/usr/bin/svlogd`: the same input and
//! `config` on both sides, then the resulting log directories compared
//! (rotated files by kind and content in order, `current`, `state`, modes)
//! along with stderr (TAI64N names normalised) and the exit status.

mod chpst_support;

use chpst_support::{run, write_file, Pair, Side, RUN_LIMIT};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

fn pair() -> Option<Pair> {
    Pair::new("svlogd", &[("svlogd", "/usr/bin/svlogd")])
}

/// Replaces every `@` + 24 hex digits (a TAI64N label) by `@T`.
fn normalise(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let label = b[i] == b'@'
            && b.len() >= i + 25
            && b[i + 1..i + 25].iter().all(|c| c.is_ascii_hexdigit());
        if label {
            out.push_str("@T");
            i += 25;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// What a user finds in log directory `dir`: every file in name order,
/// rotated ones named only by kind, with mode and content.
fn snapshot(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for name in names {
        let path = dir.join(&name);
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0);
        let content = std::fs::read(&path).unwrap_or_default();
        let shown = if name.starts_with('@') {
            normalise(&name)
        } else {
            name
        };
        out.push_str(&format!(
            "== {shown} {mode:o}\n{}\n",
            String::from_utf8_lossy(&content).escape_debug()
        ));
    }
    out
}

/// Runs `svlogd ARGS` on each side with `config` (if any) in `log/` and
/// `input` on stdin; asserts identical status, stderr and directories.
/// Returns braid's snapshot.
fn same(pair: &Pair, args: &[&str], config: Option<&[u8]>, input: &[u8]) -> String {
    same_with(pair, args, input, |side| {
        if let Some(c) = config {
            write_file(&side.work.join("log"), "config", c);
        }
    })
}

fn same_with(pair: &Pair, args: &[&str], input: &[u8], prepare: impl Fn(&Side)) -> String {
    let results: Vec<String> = pair
        .sides()
        .iter()
        .map(|side| {
            std::fs::create_dir_all(side.work.join("log")).expect("log dir");
            prepare(side);
            let mut cmd = side.command("svlogd");
            cmd.args(args);
            let out = run(cmd, input);
            format!(
                "status: {:?}\n--- stderr\n{}--- log\n{}",
                out.status.code(),
                normalise(&String::from_utf8_lossy(&out.stderr)),
                snapshot(&side.work.join("log"))
            )
        })
        .collect();
    assert_eq!(
        results[0], results[1],
        "real (left) vs braid (right) for svlogd {args:?}"
    );
    results[1].clone()
}

fn numbered_lines(n: usize) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("line {i} hello world\n").into_bytes())
        .collect()
}

#[test]
fn usage_errors_exit_111() {
    let Some(p) = pair() else { return };
    for args in [
        &[][..],
        &["-V"],
        &["-z", "log"],
        &["-r", "ab", "log"],
        &["-r"],
        &["-b", "10", "-l", "20", "log"],
        &["-l", "1024", "log"],
        &["-tttv"],
    ] {
        let out = same(&p, args, None, b"");
        assert!(out.starts_with("status: Some(111)"), "{out}");
    }
}

#[test]
fn plain_append_and_eof() {
    let Some(p) = pair() else { return };
    // An unterminated last line is dropped; current is closed cleanly (0744).
    let out = same(&p, &["log"], None, b"foo\nbar\npartial");
    assert!(out.contains("== current 744\nfoo\\nbar\\n"), "{out}");
    // A second run appends.
    let out = same_with(&p, &["-v", "log"], b"baz\n", |_| {});
    assert!(out.contains("append: log/current"), "{out}");
    same(&p, &["log"], None, b"");
    same(&p, &["log"], None, b"\n\n\n");
}

#[test]
fn rotation_count_prefix_and_patterns() {
    let Some(p) = pair() else { return };
    let mut input = numbered_lines(40);
    input.extend_from_slice(b"skip this\nplease skip this\nan err line\nerr\n");
    let config = b"s100\nn3\npPRE:\n-*skip*\nE*\ne*err*\n";
    let out = same(&p, &["-v", "log"], Some(config), &input);
    assert_eq!(out.matches("== @T.s").count(), 3, "{out}");
    assert!(out.contains("PRE:an err line"), "{out}");
    // sizes with k, no pruning, select-after-deselect
    let config = b"s1k\nn0\n-*\n+line 1*\n";
    same(&p, &["log"], Some(config), &numbered_lines(400));
}

#[test]
fn small_sizes_split_lines() {
    let Some(p) = pair() else { return };
    // s below the line length: files are cut at exactly s bytes
    let config = b"s37\nn100\n";
    let out = same(&p, &["log"], Some(config), &numbered_lines(30));
    assert!(out.contains("== @T.s 744"), "{out}");
    same(
        &p,
        &["-l", "10", "-b", "11", "log"],
        Some(b"s25\nn100\n"),
        &numbered_lines(20),
    );
}

#[test]
fn long_lines_and_replacement() {
    let Some(p) = pair() else { return };
    let mut input = Vec::new();
    input.extend_from_slice(b"tab\there\x01\x7f\xc3\xa9 end\n");
    input.extend_from_slice(&[b'x'; 70]);
    input.extend_from_slice(b"\x02tail\x03\n");
    input.extend_from_slice(b"foo bar baz\n");
    let config = b"e*\n";
    same(&p, &["-l", "20", "log"], Some(config), &input);
    same(
        &p,
        &["-l", "20", "-r", ":", "-R", "fb", "log"],
        Some(config),
        &input,
    );
    same(&p, &["-R", "ab", "log"], Some(config), &input);
    same(&p, &["-r", "#", "log"], None, &input);
    // runit's own check: -r: -R fb
    let out = same(&p, &["-r:", "-R", "fb", "log"], None, b"foo bar baz\n");
    assert!(out.contains(":oo :ar :az"), "{out}");
}

#[test]
fn processor_output_and_state() {
    let Some(p) = pair() else { return };
    let config = b"s60\nn10\n!tr a-z A-Z && { cat <&4; echo run; } >&5\n";
    // (no -v: runit prints "processing:" from the forked child, racing
    // with the parent's messages)
    let out = same(&p, &["log"], Some(config), &numbered_lines(12));
    assert!(out.contains("LINE 1 HELLO WORLD"), "{out}");
    assert!(out.contains("== state 644\nrun\\nrun\\n"), "{out}");
    // A failing processor is rerun on the same file until it succeeds.
    let config = b"s60\n!test -e ok || { touch ok; exit 1; }; cat\n";
    let out = same(&p, &["log"], Some(config), &numbered_lines(4));
    assert!(out.contains("processor failed, restart: log"), "{out}");
}

#[test]
fn unclean_current_is_set_aside() {
    let Some(p) = pair() else { return };
    let out = same_with(&p, &["log"], b"new\n", |side| {
        let current = side.work.join("log/current");
        write_file(&side.work.join("log"), "current", b"left over\n");
        std::fs::set_permissions(current, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    });
    assert!(out.contains("== @T.u 644\nleft over\\n"), "{out}");
}

#[test]
fn unusable_directories() {
    let Some(p) = pair() else { return };
    let out = same(&p, &["missing"], None, b"x\n");
    assert!(out.contains("no functional log directories."), "{out}");
    same(&p, &["missing", "log"], None, b"x\n");
    // locked by someone else
    let out = same_with(&p, &["log"], b"x\n", |side| {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(side.work.join("log/lock"))
            .expect("lock file");
        let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).expect("flock");
        // released once both runs are over
        std::mem::forget(held);
    });
    assert!(
        out.contains("unable to lock directory: log: temporary failure"),
        "{out}"
    );
    // a bad udp address is reported; U still suppresses the log
    same(&p, &["log"], Some(b"Ubad\nu1.2.3.4:x\n"), b"x\n");
}

/// Every line starts with a timestamp of the requested shape.
fn stamped_lines(pair: &Pair, flag: &str) -> Vec<String> {
    let input = b"one\ntwo\n";
    let mut shapes = Vec::new();
    for side in pair.sides() {
        std::fs::create_dir_all(side.work.join("log")).expect("log dir");
        let mut cmd = side.command("svlogd");
        cmd.args([flag, "log"]);
        let out = run(cmd, input);
        assert_eq!(out.status.code(), Some(0));
        let text = std::fs::read_to_string(side.work.join("log/current")).expect("current");
        // the 25-character stamp: every digit (hex for -t) becomes N
        let shape: String = text
            .lines()
            .map(|l| {
                let stamp: String = l
                    .chars()
                    .take(25)
                    .map(|c| if c.is_ascii_hexdigit() { 'N' } else { c })
                    .collect();
                format!("{stamp}{}\n", l.get(25..).unwrap_or(""))
            })
            .collect();
        shapes.push(shape);
        let _ = std::fs::remove_dir_all(side.work.join("log"));
    }
    assert_eq!(shapes[0], shapes[1], "timestamp shapes for {flag}");
    shapes
}

#[test]
fn timestamps() {
    let Some(p) = pair() else { return };
    assert!(stamped_lines(&p, "-t")[0].starts_with("@NNNNNNNNNNNNNNNNNNNNNNNN one\n"));
    assert!(stamped_lines(&p, "-tt")[0].starts_with("NNNN-NN-NN_NN:NN:NN.NNNNN one\n"));
    assert!(stamped_lines(&p, "-ttt")[0].starts_with("NNNN-NN-NNTNN:NN:NN.NNNNN one\n"));
    assert!(stamped_lines(&p, "-tttt")[0].starts_with("NNNN-NN-NNTNN:NN:NN.NNNNN one\n"));
}

/// A running svlogd fed through a pipe; killed on drop.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Running {
    fn start(side: &Side, args: &[&str]) -> Running {
        std::fs::create_dir_all(side.work.join("log")).expect("log dir");
        let mut cmd = side.command("svlogd");
        let stderr = std::fs::File::create(side.work.join("stderr")).expect("stderr file");
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn svlogd");
        let stdin = child.stdin.take();
        Running { child, stdin }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("feed");
    }

    fn signal(&self, s: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, s).expect("kill");
    }

    /// Closes stdin and waits (bounded) for the exit status.
    fn finish(mut self) -> Option<i32> {
        drop(self.stdin.take());
        let deadline = Instant::now() + RUN_LIMIT;
        wait_until(deadline, || matches!(self.child.try_wait(), Ok(Some(_))));
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a condition on files or processes we cannot get events for
/// here, re-checking every 10 ms until `deadline`; false on timeout.
fn wait_until(deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
    while !ready() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn current_has(side: &Side, text: &str) -> bool {
    std::fs::read_to_string(side.work.join("log/current")).is_ok_and(|c| c.contains(text))
}

fn stderr_has(side: &Side, text: &str) -> bool {
    std::fs::read_to_string(side.work.join("stderr")).is_ok_and(|c| c.contains(text))
}

fn has_rotated(side: &Side) -> bool {
    std::fs::read_dir(side.work.join("log"))
        .map(|r| {
            r.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".s"))
        })
        .unwrap_or(false)
}

/// Runs `scenario` on each side and compares the final directories.
fn same_live(pair: &Pair, scenario: impl Fn(&Side) -> Option<i32>) -> String {
    let results: Vec<String> = pair
        .sides()
        .iter()
        .map(|side| {
            let status = scenario(side);
            format!("status {status:?}\n{}", snapshot(&side.work.join("log")))
        })
        .collect();
    assert_eq!(results[0], results[1], "real (left) vs braid (right)");
    results[1].clone()
}

#[test]
fn timed_rotation() {
    let Some(p) = pair() else { return };
    let out = same_live(&p, |side| {
        write_file(&side.work.join("log"), "config", b"t1\n");
        let mut r = Running::start(side, &["log"]);
        r.feed(b"foo\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(
            wait_until(deadline, || has_rotated(side)),
            "{}: no timed rotation",
            side.label
        );
        r.finish()
    });
    assert!(out.contains("== @T.s 744\nfoo\\n\n== config"), "{out}");
    assert!(out.contains("== current 744\n\n"), "{out}");
}

#[test]
fn alarm_rotates_and_term_drops_the_pending_line() {
    let Some(p) = pair() else { return };
    use nix::sys::signal::Signal;
    let out = same_live(&p, |side| {
        let mut r = Running::start(side, &["-v", "log"]);
        r.feed(b"first\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(
            wait_until(deadline, || current_has(side, "first")),
            "{}",
            side.label
        );
        r.signal(Signal::SIGALRM);
        assert!(
            wait_until(deadline, || has_rotated(side)),
            "{}: no rotation",
            side.label
        );
        r.feed(b"second\npart");
        assert!(
            wait_until(deadline, || current_has(side, "second")),
            "{}",
            side.label
        );
        r.signal(Signal::SIGTERM);
        // once TERM is taken, svlogd reads the pending line to its end
        // byte by byte, then drops it
        assert!(
            wait_until(deadline, || stderr_has(side, "sigterm received.")),
            "{}",
            side.label
        );
        r.feed(b"ial\nnever\n");
        r.finish()
    });
    assert!(out.contains("== @T.s 744\nfirst\\n"), "{out}");
    assert!(out.contains("== current 744\nsecond\\n\n"), "{out}");
}

/// Datagrams that arrived on `socket` so far.
fn datagrams(socket: &std::net::UdpSocket) -> Vec<String> {
    socket.set_nonblocking(true).expect("nonblocking");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = socket.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn udp_copies() {
    let Some(p) = pair() else { return };
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let port = socket.local_addr().expect("addr").port();
    let input = b"one\ntwo is a longer line\n";
    let mut seen = Vec::new();
    for kind in ['u', 'U'] {
        let config = format!("u0.0.0.0\n{kind}127.0.0.1:{port}\npP:\n-two*\n+*lo*\n");
        same(&p, &["-l", "12", "log"], Some(config.as_bytes()), input);
        seen.push(datagrams(&socket));
    }
    // real first, then braid: the same datagrams, cut at -l with "..."
    let each = ["P:one\n", "P:two is a lon...\n"];
    assert_eq!(seen[0], [each, each].concat(), "{seen:?}");
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn hangup_rereads_config() {
    let Some(p) = pair() else { return };
    use nix::sys::signal::Signal;
    let out = same_live(&p, |side| {
        let mut r = Running::start(side, &["-v", "log"]);
        r.feed(b"before\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(
            wait_until(deadline, || current_has(side, "before")),
            "{}",
            side.label
        );
        write_file(&side.work.join("log"), "config", b"pNEW:\n");
        r.signal(Signal::SIGHUP);
        let reopened = || stderr_has(side, "append: log/current");
        assert!(wait_until(deadline, reopened), "{}: no reopen", side.label);
        r.feed(b"after\n");
        r.finish()
    });
    assert!(
        out.contains("== current 744\nbefore\\nNEW:after\\n"),
        "{out}"
    );
}
