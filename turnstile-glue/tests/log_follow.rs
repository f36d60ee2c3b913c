//! `braid log SERVICE -f` on a dinit `log-type = buffer` service of braid's
//! dinit: it prints the buffer, then every line the service writes while
//! it follows (each once), keeps working for others when one follower is
//! killed, and exits 0 when the service is unloaded or the daemon exits.
//! `dinitctl catlog` (braid's, and the real one when present) reads the
//! same buffer meanwhile.

mod support;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Proc, TempDir, BRAID};

const BOUND: Duration = Duration::from_secs(20);

/// A `braid log -f` process and what it printed so far.
struct Follower {
    proc: Proc,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Follower {
    fn start(socket: &Path, service: &str) -> Follower {
        let mut child = Command::new(BRAID)
            .args(["log", service, "-f", "-p"])
            .arg(socket)
            .env("BRAID_EVENT_DIR", events_of(socket))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Follower {
            proc: Proc::spawned(child),
            output,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) until the follower has printed exactly `text`.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + BOUND;
        while self.seen.len() < text.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.extend_from_slice(&bytes),
                Err(_) => break,
            }
        }
        assert_eq!(String::from_utf8_lossy(&self.seen), text);
    }

    /// Waits (bounded) for the follower to exit by itself; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let status = self
            .proc
            .wait_for(BOUND)
            .expect("braid log -f did not exit");
        status.code()
    }
}

/// The event log directory of the session whose socket is `socket`.
fn events_of(socket: &Path) -> PathBuf {
    socket.with_file_name("events")
}

/// braid's dinit, asked to stop (its services with it) when dropped, and
/// killed if it has not exited in time.
struct Daemon(Proc);

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.0.status.is_none() {
            let pid = nix::unistd::Pid::from_raw(self.0.pid());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            self.0.wait_for(BOUND);
        }
    }
}

/// braid as `dinit`, started with `--ready-fd` and waited for.
fn start_daemon(services: &Path, socket: &Path) -> Daemon {
    let (read_end, write_end) = braid_tests::ready_pipe();
    let child = Command::new(BRAID)
        .arg0("dinit")
        .arg("-d")
        .arg(services)
        .arg("-p")
        .arg(socket)
        .arg("--ready-fd")
        .arg(write_end.as_raw_fd().to_string())
        .env("BRAID_EVENT_DIR", events_of(socket))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(write_end);
    let daemon = Daemon(Proc::spawned(child));
    if let Err(why) = braid_tests::await_ready(&read_end, BOUND) {
        panic!("braid dinit did not become ready: {why:?}");
    }
    daemon
}

/// `dinitctl -p SOCKET ARGS` with `program` (braid's or the real one).
fn dinitctl(program: &Path, arg0: &str, socket: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(program)
        .arg0(arg0)
        .arg("-p")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn real_dinitctl() -> Option<PathBuf> {
    braid_tests::dinit_peer_dir().map(|dir| dir.join("dinitctl"))
}

/// A temp dir with an empty services dir `sd` and a FIFO `in` that a
/// service can read its output from, line by line as the test writes it to
/// the returned end.
fn services_fed_by_fifo(tag: &str) -> (TempDir, PathBuf, PathBuf, File) {
    let t = TempDir::new(tag);
    let services = t.0.join("sd");
    std::fs::create_dir_all(&services).unwrap();
    let fifo = t.0.join("in");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Read-write: never blocks, and cat sees end of file once it is closed.
    let input = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    (t, services, fifo, input)
}

#[test]
fn follow_a_log_buffer_until_the_service_is_unloaded_or_the_daemon_exits() {
    let (t, services, fifo, mut input) = services_fed_by_fifo("follow");
    let write = |name: &str, text: &str| std::fs::write(services.join(name), text).unwrap();
    write("boot", "type = internal\n");
    // `talk` writes what the test puts in the FIFO.
    write(
        "talk",
        &format!(
            "type = process\ncommand = /bin/cat {}\nlog-type = buffer\nrestart = false\n",
            fifo.display()
        ),
    );
    write(
        "other",
        "type = process\ncommand = /bin/sh -c \"echo hi; exec sleep 1000\"\nlog-type = buffer\n",
    );
    let socket = t.0.join("sock");
    let mut daemon = start_daemon(&services, &socket);
    let braid = Path::new(BRAID);
    for name in ["talk", "other"] {
        let (code, out) = dinitctl(braid, "dinitctl", &socket, &["start", name]);
        assert_eq!(code, 0, "{out}");
    }

    input.write_all(b"before\n").unwrap();
    // Each follower prints `before` from the buffer or as it comes; either
    // way it follows from then on.
    let mut a = Follower::start(&socket, "talk");
    a.expect("before\n");
    let mut b = Follower::start(&socket, "talk");
    b.expect("before\n");
    // A follower killed does not disturb the daemon or the others.
    drop(b);

    input.write_all(b"after-1\n").unwrap();
    a.expect("before\nafter-1\n");
    input.write_all(b"after-2\n").unwrap();
    a.expect("before\nafter-1\nafter-2\n");

    let (code, out) = dinitctl(braid, "dinitctl", &socket, &["catlog", "talk"]);
    assert_eq!((code, out.as_str()), (0, "before\nafter-1\nafter-2\n"));
    if let Some(real) = real_dinitctl() {
        let (code, out) = dinitctl(&real, "dinitctl", &socket, &["catlog", "talk"]);
        assert_eq!((code, out.as_str()), (0, "before\nafter-1\nafter-2\n"));
    } else {
        eprintln!("real dinitctl not found: catlog checked with braid's only");
    }

    // The service stops (cat reads end of file) and is unloaded: the
    // follower has printed everything and exits 0.
    drop(input);
    let (code, out) = dinitctl(braid, "dinitctl", &socket, &["stop", "talk"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = dinitctl(braid, "dinitctl", &socket, &["unload", "talk"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(a.exit_code(), Some(0));
    a.expect("before\nafter-1\nafter-2\n");

    // The daemon exits: its follower exits 0.
    let mut c = Follower::start(&socket, "other");
    c.expect("hi\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.0.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(
        daemon.0.wait_for(BOUND).is_some(),
        "the daemon did not exit"
    );
    assert_eq!(c.exit_code(), Some(0));
    c.expect("hi\n");
}

#[test]
fn follow_needs_a_buffer_service() {
    let t = TempDir::new("follownb");
    let services = t.0.join("sd");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(services.join("boot"), "type = internal\n").unwrap();
    std::fs::write(
        services.join("quiet"),
        "type = process\ncommand = /bin/sleep 1000\n",
    )
    .unwrap();
    let socket = t.0.join("sock");
    let _daemon = start_daemon(&services, &socket);
    let (code, out) = dinitctl(Path::new(BRAID), "dinitctl", &socket, &["start", "quiet"]);
    assert_eq!(code, 0, "{out}");
    let out = Command::new(BRAID)
        .args(["log", "quiet", "-f", "-p"])
        .arg(&socket)
        .env("BRAID_EVENT_DIR", events_of(&socket))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "braid log: quiet has no logfile and no log buffer; its output goes to the supervisor's\n"
    );
}

#[test]
fn follow_a_rotated_logfile_across_its_rotations() {
    let (t, services, fifo, mut input) = services_fed_by_fifo("followrot");
    let log = t.0.join("rot.log");
    std::fs::write(services.join("boot"), "type = internal\n").unwrap();
    // Two 7-byte lines fill a file.
    std::fs::write(
        services.join("rot"),
        format!(
            "type = process\ncommand = /bin/cat {}\nlogfile = {}\nrestart = false\n\
             @meta braid-logfile-rotate size=14 count=2\n",
            fifo.display(),
            log.display()
        ),
    )
    .unwrap();
    let socket = t.0.join("sock");
    let _daemon = start_daemon(&services, &socket);
    let (code, out) = dinitctl(Path::new(BRAID), "dinitctl", &socket, &["start", "rot"]);
    assert_eq!(code, 0, "{out}");

    input.write_all(b"first.\n").unwrap();
    let mut f = Follower::start(&socket, "rot");
    f.expect("first.\n");
    // One line at a time, each printed before the next is written: the
    // follower finishes each rotated file and goes on in the new one.
    let mut expected = "first.\n".to_string();
    for n in 1..=7 {
        let line = format!("line-{n}\n");
        input.write_all(line.as_bytes()).unwrap();
        expected += &line;
        f.expect(&expected);
    }
    let read = |name: &str| std::fs::read_to_string(t.0.join(name)).unwrap();
    // `first.` and `line-1` were in the file dropped last.
    assert_eq!(read("rot.log"), "line-6\nline-7\n");
    assert_eq!(read("rot.log.1"), "line-4\nline-5\n");
    assert_eq!(read("rot.log.2"), "line-2\nline-3\n");
    assert!(!t.0.join("rot.log.3").exists());
}
