//! The `supervise/` format against the real thing: what Debian's runsv
//! writes decodes as expected, and what braid writes reads in Debian's sv
//! as the same status line.

mod runit_support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use braid_runit::supervise::{Record, RunState, Supervise, SuperviseFiles, Tai64N, Want, Which};
use nix::sys::signal::{killpg, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use runit_support::{run, state_of, take_seconds, wait_for, write_exec, TempDir, REAL_SV};

const REAL_RUNSV: &str = "/usr/bin/runsv";

/// A real runsv in its own process group, killed with everything it started.
struct Runsv(Child);

impl Drop for Runsv {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn control(svc: &Path, byte: &[u8]) {
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(svc.join("supervise/control"))
        .expect("open control");
    fifo.write_all(byte).expect("write control");
}

#[test]
fn decodes_what_real_runsv_writes() {
    if !Path::new(REAL_RUNSV).exists() {
        eprintln!("skipped: {REAL_RUNSV} not installed (apt-get install runit)");
        return;
    }
    let tmp = TempDir::new("supervise-runsv");
    let svc = tmp.0.join("svc");
    write_exec(&svc.join("run"), "exec sleep 1000");
    let before = Tai64N::now();
    let _runsv = Runsv(
        Command::new(REAL_RUNSV)
            .arg(&svc)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start runsv"),
    );
    let files = SuperviseFiles::new(svc.join("supervise"));
    wait_for(
        "runsv to start the service",
        Duration::from_secs(10),
        || matches!(state_of(files.dir()), Some((RunState::Run, pid)) if pid != 0),
    );

    let status = files.read_status().expect("status");
    assert_eq!(status.state(), Some(RunState::Run));
    assert_eq!(status.want_byte(), b'u');
    assert!(!status.paused());
    assert!(!status.got_term());
    assert_eq!(Some(status.pid()), files.read_pid().expect("pid file"));
    assert_eq!(files.read_stat().unwrap(), "run\n");
    let since = status.since();
    assert!(since.secs >= before.secs, "{since:?} before {before:?}");
    assert!(since.secs <= Tai64N::now().secs);
    assert_eq!(since.nanos % 1000, 500, "runit's clock: 1000 * usec + 500");

    // Modes and kinds as runsv creates them (minus our umask).
    let meta = |n: &str| fs::symlink_metadata(svc.join("supervise").join(n)).unwrap();
    assert_eq!(
        fs::metadata(svc.join("supervise"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(meta("control").file_type().is_fifo());
    assert!(meta("ok").file_type().is_fifo());
    assert_eq!(meta("control").permissions().mode() & 0o777, 0o600);
    assert_eq!(meta("lock").permissions().mode() & 0o777, 0o600);
    assert_eq!(meta("status").len(), 20);

    // Pause, then want down: the flags show up in both files.
    control(&svc, b"p");
    wait_for("paused", Duration::from_secs(10), || {
        files.read_status().map(|s| s.paused()).unwrap_or(false)
    });
    assert_eq!(files.read_stat().unwrap(), "run, paused\n");
    control(&svc, b"d");
    wait_for("down", Duration::from_secs(10), || {
        matches!(state_of(files.dir()), Some((RunState::Down, 0)))
    });
    let down = files.read_status().unwrap();
    assert_eq!(down.want_byte(), b'd');
    assert!(
        !down.got_term(),
        "the term flag clears when the process exits"
    );
    assert_eq!(files.read_pid().unwrap(), None);
    assert_eq!(fs::read(svc.join("supervise/pid")).unwrap(), b"");
    assert_eq!(files.read_stat().unwrap(), "down, paused\n");
}

/// Holds a `supervise/ok` FIFO open for reading, as a live runsv does.
fn fake_runsv(dir: &Path) -> File {
    let sup = dir.join("supervise");
    fs::create_dir_all(&sup).unwrap();
    nix::unistd::mkfifo(&sup.join("ok"), Mode::from_bits_truncate(0o600)).unwrap();
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(sup.join("ok"))
        .unwrap()
}

#[test]
fn real_sv_reads_what_braid_writes() {
    if !Path::new(REAL_SV).exists() {
        eprintln!("skipped: {REAL_SV} not installed (apt-get install runit)");
        return;
    }
    let tmp = TempDir::new("supervise-write");
    let svc = tmp.0.join("svc");
    let _ok = fake_runsv(&svc);
    let files = SuperviseFiles::new(svc.join("supervise"));
    let an_hour_ago = Tai64N {
        secs: braid_runit::supervise::Tai64(Tai64N::now().secs.0 - 3600),
        nanos: 500,
    };
    let status = |record: &Record| {
        let report = files.update(record, true);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        run(
            Path::new(REAL_SV),
            None,
            &["status", "./svc"],
            &tmp.0,
            &tmp.0,
            &[],
        )
    };

    let mut r = Record {
        since: an_hour_ago,
        pid: Some(4242),
        paused: true,
        want: Want::Exit,
        got_term: true,
        state: RunState::Run,
    };
    let out = status(&r);
    assert_about(
        &out.stdout,
        "run: ./svc: (pid 4242) Ns, paused, want down, got TERM\n",
        3600,
    );
    assert_eq!(
        fs::read_to_string(svc.join("supervise/stat")).unwrap(),
        "run, paused, got TERM, want exit\n"
    );

    r = Record {
        pid: None,
        paused: false,
        want: Want::Up,
        got_term: false,
        state: RunState::Down,
        ..r
    };
    assert_about(
        &status(&r).stdout,
        "down: ./svc: Ns, normally up, want up\n",
        3600,
    );
    fs::write(svc.join("down"), "").unwrap();
    r = Record {
        pid: Some(7),
        state: RunState::Finish,
        ..r
    };
    assert_about(
        &status(&r).stdout,
        "finish: ./svc: (pid 7) Ns, normally down\n",
        3600,
    );
}

/// `text` is `pattern` with the one seconds field `secs` or one more
/// (a second boundary may pass while sv runs).
fn assert_about(text: &str, pattern: &str, secs: u64) {
    let (shape, found) = take_seconds(text);
    assert_eq!(shape, pattern, "{text:?}");
    assert!(
        found.len() == 1 && (secs..=secs + 1).contains(&found[0]),
        "{text:?}"
    );
}

/// A directory set up by braid looks like a live runsv to the real tools:
/// `sv status` reads it, `sv` commands arrive on the control FIFO, and a
/// real runsv refuses to start on it because the lock is held.
#[test]
fn real_tools_accept_braids_supervise_dir() {
    if !Path::new(REAL_SV).exists() || !Path::new(REAL_RUNSV).exists() {
        eprintln!("skipped: runit not installed (apt-get install runit)");
        return;
    }
    let tmp = TempDir::new("supervise-setup");
    let svc = tmp.0.join("svc");
    write_exec(&svc.join("run"), "exec sleep 1000");
    let record = Record {
        since: Tai64N {
            secs: braid_runit::supervise::Tai64(Tai64N::now().secs.0 - 3600),
            nanos: 500,
        },
        pid: Some(31337),
        paused: false,
        want: Want::Up,
        got_term: false,
        state: RunState::Run,
    };
    let (sup, report) = Supervise::open(&svc, Which::Service, &record, true).expect("setup");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let out = run(
        Path::new(REAL_SV),
        None,
        &["status", "./svc"],
        &tmp.0,
        &tmp.0,
        &[],
    );
    assert_about(&out.stdout, "run: ./svc: (pid 31337) Ns\n", 3600);
    assert_eq!(out.code, Some(0));

    // want is up, so sv does not send `u`. restart sends `tcu`, and with a
    // status older than sv's start the `t` check cannot pass: timeout.
    let out = run(
        Path::new(REAL_SV),
        None,
        &["up", "./svc"],
        &tmp.0,
        &tmp.0,
        &[],
    );
    assert_eq!((out.stdout.as_str(), out.code), ("", Some(0)));
    assert_eq!(sup.read_command().unwrap(), None);
    let out = run(
        Path::new(REAL_SV),
        None,
        &["restart", "./svc"],
        &tmp.0,
        &tmp.0,
        &[("SVWAIT", "0")],
    );
    assert_about(&out.stdout, "timeout: run: ./svc: (pid 31337) Ns\n", 3600);
    let got: Vec<Option<u8>> = (0..4).map(|_| sup.read_command().unwrap()).collect();
    assert_eq!(got, [Some(b't'), Some(b'c'), Some(b'u'), None]);

    let runsv = Command::new(REAL_RUNSV)
        .arg("svc")
        .current_dir(&tmp.0)
        .stdin(Stdio::null())
        .output()
        .expect("run runsv");
    assert_eq!(
        String::from_utf8_lossy(&runsv.stderr),
        "runsv svc: fatal: unable to lock supervise/lock: temporary failure\n"
    );
    assert_eq!(runsv.status.code(), Some(111));

    drop(sup);
    let out = run(
        Path::new(REAL_SV),
        None,
        &["status", "./svc"],
        &tmp.0,
        &tmp.0,
        &[],
    );
    assert_eq!(out.stdout, "fail: ./svc: runsv not running\n");
}
