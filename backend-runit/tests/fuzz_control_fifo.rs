//! Property tests of the `supervise/control` FIFO input of braid's
//! runsvdir: one running tree (a service with a logger), and each case
//! writes a burst of bytes (mostly control letters, some any byte) into
//! the service's or the logger's `control` FIFO.
//!
//! For every case: runsvdir reads every byte within a deadline (the FIFO
//! drains), stays alive, still holds `supervise/ok` open for both, and
//! keeps a well-formed `status` (20 bytes, a known state). `x` (exit) is
//! left out: it ends that supervisor, which is the point of it.
//!
//! Needs Debian's runit and the `braid` binary, as the other runsvdir
//! tests. `PROPTEST_CASES` sets the number of cases (see the README's
//! "Fuzzing").

mod runit_support;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use braid_runit::supervise::SuperviseFiles;
use braid_tests::fuzz::{config, guarded, scratch_dir};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use runit_support::{ready, supervised, write_exec, Kind, Tree};

/// Cases when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 100;

/// How long runsvdir may take to read a burst.
const DEADLINE: Duration = Duration::from_secs(10);

fn burst() -> impl Strategy<Value = Vec<u8>> {
    let letter = proptest::sample::select(b"udotkpchaiq12".to_vec());
    prop::collection::vec(
        prop_oneof![6 => letter, 1 => any::<u8>().prop_map(|b| if b == b'x' { b'X' } else { b })],
        1..24,
    )
}

/// Bytes still unread in the FIFO `fd` refers to.
fn unread(fd: &impl AsRawFd) -> Result<i32, String> {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which is valid.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(n)
}

/// Writes `bytes` into the control FIFO of `supervise` and waits until
/// they have all been read.
fn send(supervise: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut fifo = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(supervise.join("control"))
        .map_err(|e| format!("open control: {e}"))?;
    fifo.write_all(bytes)
        .map_err(|e| format!("write control: {e}"))?;
    let deadline = Instant::now() + DEADLINE;
    // Nothing signals a reader's read to a writer: poll, first at short
    // intervals (an idle runsvdir reads within microseconds), then longer.
    let mut pause = Duration::from_micros(10);
    while unread(&fifo)? > 0 {
        if Instant::now() > deadline {
            return Err(format!(
                "{} bytes still unread after {DEADLINE:?}",
                unread(&fifo)?
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
    Ok(())
}

fn healthy(service: &Path) -> Result<(), String> {
    for dir in [service.to_path_buf(), service.join("log")] {
        if !supervised(&dir) {
            return Err(format!("{}: supervise/ok not held", dir.display()));
        }
        let status = SuperviseFiles::new(dir.join("supervise"))
            .read_status()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if status.state().is_none() {
            return Err(format!("{}: bad state {:?}", dir.display(), status));
        }
    }
    Ok(())
}

#[test]
fn fuzz_control_fifo() {
    if !ready() {
        return;
    }
    // On tmpfs when there is one: every control letter has the supervisor
    // rewrite its status files.
    let tree = Tree::start_in(scratch_dir("fuzzctl"), Kind::Braid, |svdir| {
        write_exec(&svdir.join("svc/run"), "exec sleep 1000");
        write_exec(&svdir.join("svc/log/run"), "exec cat >/dev/null");
    });
    let service = tree.service("svc");
    let up = Instant::now() + DEADLINE;
    while healthy(&service).is_err() {
        assert!(
            Instant::now() < up,
            "tree never came up: {:?}\n{}",
            healthy(&service),
            tree.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut runner = TestRunner::new(config(DEFAULT_CASES));
    let result = runner.run(&(burst(), any::<bool>()), |(bytes, to_logger)| {
        guarded(&(&bytes, to_logger), || {
            let dir = if to_logger {
                service.join("log")
            } else {
                service.clone()
            };
            send(&dir.join("supervise"), &bytes).map_err(TestCaseError::fail)?;
            healthy(&service).map_err(TestCaseError::fail)?;
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}\nrunsvdir's stderr:\n{}", tree.stderr());
    }
}
