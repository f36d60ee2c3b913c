//! The `supervise/` format against the real thing: what Debian's runsv
//! writes decodes as expected, and what braid writes reads in Debian's sv
//! as the same status line.

mod sv_support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use braid_runit::supervise::{Record, RunState, SuperviseFiles, Tai64N, Want};
use nix::sys::signal::{killpg, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use sv_support::{run, state_of, wait_for, write_exec, Scratch, REAL_SV};

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
    let tmp = Scratch::new("supervise-runsv");
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
    let tmp = Scratch::new("supervise-write");
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
    assert_eq!(
        out.stdout,
        "run: ./svc: (pid 4242) 3600s, paused, want down, got TERM\n"
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
    assert_eq!(
        status(&r).stdout,
        "down: ./svc: 3600s, normally up, want up\n"
    );
    fs::write(svc.join("down"), "").unwrap();
    r = Record {
        pid: Some(7),
        state: RunState::Finish,
        ..r
    };
    assert_eq!(
        status(&r).stdout,
        "finish: ./svc: (pid 7) 3600s, normally down\n"
    );
}
