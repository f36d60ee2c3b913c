//! What every `fuzz_*` property test (in each crate's `tests/`) shares: the case count (from
//! `PROPTEST_CASES`, else a small default so that CI stays fast) and a
//! watchdog that turns a hang into a failure naming the input.
//!
//! proptest runs on stable Rust and shrinks a failing input; its fork and
//! timeout features are left out, so a case that never returns is caught
//! here instead: a thread checks that no case runs longer than a deadline
//! and, if one does, prints that case's input and aborts the process.

use std::fmt::Debug;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use proptest::test_runner::Config;

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
        ..Config::default()
    }
}

/// Longest time one case may take before it counts as a hang. Generous:
/// debug builds on a loaded 2-core machine are slow, and a hang is forever.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// The cases running now, by test thread: when each started and its input.
static RUNNING: Mutex<Vec<(ThreadId, Instant, String)>> = Mutex::new(Vec::new());
static WATCHDOG: Once = Once::new();

/// Runs one case under the watchdog. `input` is printed if it hangs.
pub fn guarded<T>(input: &dyn Debug, case: impl FnOnce() -> T) -> T {
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, _, input)) = running
                .iter()
                .find(|(_, started, _)| started.elapsed() > CASE_DEADLINE)
            {
                // Straight to stderr: the test harness's capture would
                // swallow eprintln! output, and the process aborts.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "fuzz case still running after {CASE_DEADLINE:?} (a hang?); input:\n{input}"
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
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push((
        me,
        Instant::now(),
        format!("{input:?}"),
    ));
    let _running = Running(me);
    case()
}

pub use crate::TempDir;
