//! What every `fuzz_*` property test (in each crate's `tests/`) shares: the
//! case count (from `PROPTEST_CASES`, else a small default so that CI stays
//! fast), a watchdog that turns a hang into a failure naming the input, and
//! what keeps a case cheap enough for runs of 10^6: a runner for targets
//! that set up once for all their cases, and scratch directories on tmpfs
//! that cases empty and reuse.
//!
//! proptest runs on stable Rust and shrinks a failing input; its fork and
//! timeout features are left out, so a case that never returns is caught
//! here instead: a thread checks that no case runs longer than a deadline
//! and, if one does, prints that case's input and aborts the process.

use std::fmt::Debug;
use std::path::Path;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The proptest configuration: `PROPTEST_CASES` cases when set, else
/// `default_cases`. Failures are not persisted to files (the regression
/// tests beside each target keep them instead).
pub fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        // Filtered strategies reject now and then; the default limit (for
        // the whole run) would end a long run that is no worse than a
        // short one.
        max_local_rejects: cases.max(Config::default().max_local_rejects),
        ..Config::default()
    }
}

/// Runs `test` on [`config`]`(default_cases)` inputs drawn from `strategy`,
/// as `proptest!` would, for targets that set something up once (a scratch
/// directory, a listener, a daemon) and use it for every case. Panics with
/// the shrunk failing input.
pub fn run<S: Strategy>(
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(config(default_cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// A scratch directory for one target's cases, removed on drop: on tmpfs
/// (`/dev/shm`) when there is one, since cases write files by the
/// hundred thousand and a disk filesystem's journal makes every create and
/// unlink several times dearer (more so while others use the disk).
pub fn scratch_dir(tag: &str) -> TempDir {
    let shm = Path::new("/dev/shm");
    let writable = nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
    if shm.is_dir() && writable {
        TempDir::new_in(shm, tag)
    } else {
        TempDir::new(tag)
    }
}

/// Removes everything inside `dir`, keeping `dir`: a target reuses one
/// scratch directory and lays each case out afresh in it.
pub fn clear_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.unwrap_or_else(|e| panic!("clear {}: {e}", path.display()));
    }
}

/// Longest time one case may take before it counts as a hang. Generous:
/// debug builds on a loaded 2-core machine are slow, and a hang is forever.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// The cases running now, by test thread: when each started and its input.
static RUNNING: Mutex<Vec<(ThreadId, Instant, Input)>> = Mutex::new(Vec::new());

/// A running case's input, borrowed for as long as the case is listed in
/// [`RUNNING`]: formatted only if it hangs, since formatting every input
/// up front costs as much as a cheap case itself.
struct Input(*const (dyn Debug + Sync + 'static));

// SAFETY: the input is `Sync`, and the watchdog only reads it through a
// shared reference, under RUNNING's lock, while its case is listed (see
// `guarded`).
unsafe impl Send for Input {}
static WATCHDOG: Once = Once::new();

/// Runs one case under the watchdog. `input` is printed if it hangs.
pub fn guarded<T>(input: &(dyn Debug + Sync), case: impl FnOnce() -> T) -> T {
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, _, Input(input))) = running
                .iter()
                .find(|(_, started, _)| started.elapsed() > CASE_DEADLINE)
            {
                // SAFETY: the case is still listed, so `guarded` has not
                // returned and the input it borrows is alive.
                let input = unsafe { &**input };
                // Straight to stderr: the test harness's capture would
                // swallow eprintln! output, and the process aborts.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "fuzz case still running after {CASE_DEADLINE:?} (a hang?); input:\n{input:?}"
                );
                std::process::abort();
            }
        });
    });
    /// Takes the case off the list however it ends (a panic included).
    struct Running(ThreadId);
    impl Drop for Running {
        fn drop(&mut self) {
            let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            running.retain(|(t, _, _)| *t != self.0);
        }
    }
    let me = std::thread::current().id();
    // SAFETY: only the lifetime changes. `_running` takes the entry off the
    // list (under the lock) before this function returns, however `case`
    // ends, so no reader sees the pointer after the borrow ends.
    let input = unsafe {
        std::mem::transmute::<*const (dyn Debug + Sync + '_), *const (dyn Debug + Sync + 'static)>(
            input,
        )
    };
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((me, Instant::now(), Input(input)));
    let _running = Running(me);
    case()
}

pub use crate::TempDir;

/// One damage done to a valid input, for near-valid cases.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Replace one byte.
    Set(proptest::sample::Index, u8),
    /// Cut the input here.
    Truncate(proptest::sample::Index),
    /// Insert bytes here.
    Insert(proptest::sample::Index, Vec<u8>),
}

/// Applies `damages` to `bytes` in turn, stopping once nothing is left.
pub fn damage(bytes: &mut Vec<u8>, damages: Vec<Damage>) {
    for d in damages {
        if bytes.is_empty() {
            break;
        }
        match d {
            Damage::Set(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
            Damage::Truncate(i) => {
                let at = i.index(bytes.len());
                bytes.truncate(at);
            }
            Damage::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b);
            }
        }
    }
}
