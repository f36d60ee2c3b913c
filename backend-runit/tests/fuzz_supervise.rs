//! Property tests of reading runsv's `supervise/` files (`status`, `stat`,
//! `pid`) as `sv` and braid read them, whatever another program left there.
//!
//! For every input: reading returns (no panic, no hang, even when the file
//! is a FIFO nobody writes, a directory or a dangling link) a value or an
//! error; a `status` of any 20 bytes is accepted and every field of it can
//! be read and used (times subtracted, printed); a shorter one is refused
//! as a bad format naming its size. And a record written as runsv writes it
//! reads back field for field.
//!
//! Each property reuses one scratch directory (on tmpfs when there is one),
//! emptied before every case.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::fs;
use std::path::Path;

use braid_runit::supervise::{
    ReadStatusError, Record, RunState, Status, SuperviseFiles, Tai64, Tai64N, Want, STATUS_LEN,
};
use braid_tests::fuzz::{clear_dir, config, guarded, run, scratch_dir};
use proptest::prelude::*;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 500;

/// What sits where a supervise file is expected.
#[derive(Debug, Clone)]
enum Entry {
    File(Vec<u8>),
    Missing,
    Dir,
    /// A FIFO with no writer: opening it for reading must not wait.
    Fifo,
    DanglingLink,
}

fn entry(content: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Entry> {
    prop_oneof![
        12 => content.prop_map(Entry::File),
        1 => Just(Entry::Missing),
        1 => Just(Entry::Dir),
        1 => Just(Entry::Fifo),
        1 => Just(Entry::DanglingLink),
    ]
}

fn place(dir: &Path, name: &str, e: &Entry) {
    let p = dir.join(name);
    match e {
        Entry::File(b) => fs::write(&p, b).expect("write"),
        Entry::Missing => {}
        Entry::Dir => fs::create_dir(&p).expect("mkdir"),
        Entry::Fifo => nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo"),
        Entry::DanglingLink => std::os::unix::fs::symlink("nowhere", &p).expect("symlink"),
    }
}

/// Status-file contents: mostly exactly 20 bytes (any values), else any
/// length around it.
fn status_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), STATUS_LEN),
        1 => (tai64n(), prop::collection::vec(any::<u8>(), 8))
            .prop_map(|(t, rest)| [&t.to_bytes()[..], &rest].concat()),
        1 => prop::collection::vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], STATUS_LEN),
        1 => prop::collection::vec(any::<u8>(), 0..=2 * STATUS_LEN),
    ]
}

/// Text files: random bytes, or near-valid lines.
fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        "[0-9]{0,12}\n?".prop_map(String::into_bytes),
        "(run|down|finish)(, paused)?(, got TERM)?(, want (down|exit))?\n"
            .prop_map(String::into_bytes),
    ]
}

/// A TAI64N label, often at the edges (uniform numbers seldom reach them).
fn tai64n() -> impl Strategy<Value = Tai64N> {
    let secs = prop_oneof![
        any::<u64>(),
        Just(0),
        Just(u64::MAX),
        (u64::MAX - 8..=u64::MAX),
        Just(braid_runit::supervise::tai::TAI64_UNIX_EPOCH),
        Just(Tai64N::now().secs.0),
    ];
    let nanos = prop_oneof![
        any::<u32>(),
        Just(0),
        Just(999_999_999),
        Just(1_000_000_000),
        Just(u32::MAX)
    ];
    (secs, nanos).prop_map(|(s, n)| Tai64N {
        secs: Tai64(s),
        nanos: n,
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        tai64n(),
        any::<Option<u32>>(),
        any::<bool>(),
        prop_oneof![Just(Want::Up), Just(Want::Down), Just(Want::Exit)],
        any::<bool>(),
        prop_oneof![
            Just(RunState::Down),
            Just(RunState::Run),
            Just(RunState::Finish)
        ],
    )
        .prop_map(|(since, pid, paused, want, got_term, state)| Record {
            since,
            pid,
            paused,
            want,
            got_term,
            state,
        })
}

/// Uses every field of a status read from disk, as sv does.
fn use_status(s: &Status) -> String {
    let now = Tai64N::now();
    format!(
        "{} {} {:?} {:?} {} {} {} {} {:?} {:?}",
        s.since(),
        s.pid(),
        s.paused(),
        s.state(),
        s.want_byte(),
        s.term_byte(),
        s.got_term(),
        s.state_byte(),
        now.since(s.since()),
        s.since().since(now),
    )
}

/// Any `status` content: 20 or more bytes are a status (sv reads 20),
/// fewer are a bad format of that size.
#[test]
fn fuzz_status_file() {
    let tmp = scratch_dir("status");
    let files = SuperviseFiles::new(tmp.path());
    run(DEFAULT_CASES, status_bytes(), |bytes| {
        guarded(&bytes, || {
            fs::write(tmp.path().join("status"), &bytes).expect("write status");
            match files.read_status() {
                Ok(s) => {
                    prop_assert!(bytes.len() >= STATUS_LEN);
                    prop_assert_eq!(&s.as_bytes()[..], &bytes[..STATUS_LEN]);
                    use_status(&s);
                }
                Err(ReadStatusError::BadFormat(n)) => {
                    prop_assert!(bytes.len() < STATUS_LEN);
                    prop_assert_eq!(n, bytes.len());
                }
                Err(e) => prop_assert!(false, "{}", e),
            }
            Ok(())
        })
    });
}

/// Whatever sits at `status`, `stat` and `pid` (a FIFO nobody writes
/// included), reading returns.
#[test]
fn fuzz_supervise_entries() {
    let tmp = scratch_dir("entries");
    let files = SuperviseFiles::new(tmp.path());
    let strategy = (entry(status_bytes()), entry(text()), entry(text()));
    run(DEFAULT_CASES, strategy, |(status, stat, pid)| {
        let input = (&status, &stat, &pid);
        guarded(&input, || {
            clear_dir(tmp.path());
            place(tmp.path(), "status", &status);
            place(tmp.path(), "stat", &stat);
            place(tmp.path(), "pid", &pid);
            match (files.read_status(), &status) {
                (Ok(s), Entry::File(b)) => {
                    prop_assert!(b.len() >= STATUS_LEN);
                    use_status(&s);
                }
                (Ok(s), other) => prop_assert!(false, "{:?} read as {:?}", other, s),
                (Err(e), _) => {
                    let _ = e.to_string();
                }
            }
            if let (Ok(text), Entry::File(b)) = (files.read_stat(), &stat) {
                prop_assert_eq!(text.as_bytes(), &b[..]);
            }
            if let (Ok(Some(n)), Entry::File(b)) = (files.read_pid(), &pid) {
                prop_assert!(b.ends_with(b"\n") && n.to_string().len() < b.len());
            }
            Ok(())
        })
    });
}

/// A record written as runsv writes it reads back field for field.
#[test]
fn fuzz_record_round_trip() {
    let tmp = scratch_dir("record");
    let files = SuperviseFiles::new(tmp.path());
    run(DEFAULT_CASES, record(), |r| {
        guarded(&r, || {
            clear_dir(tmp.path());
            let report = files.update(&r, true);
            prop_assert!(report.warnings.is_empty() && report.pid_written);
            let s = files
                .read_status()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(s, r.encode());
            prop_assert_eq!(s.since(), r.since);
            prop_assert_eq!(s.pid(), r.pid.unwrap_or(0));
            prop_assert_eq!(s.paused(), r.paused);
            prop_assert_eq!(s.want_byte(), if r.want == Want::Up { b'u' } else { b'd' });
            prop_assert_eq!(s.got_term(), r.got_term);
            prop_assert_eq!(s.state(), Some(r.state));
            prop_assert_eq!(files.read_stat().ok(), Some(r.stat_line()));
            prop_assert_eq!(files.read_pid().ok(), Some(r.pid));
            use_status(&s);
            Ok(())
        })
    });
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    /// TAI64N labels: any pair can be subtracted either way, and the byte
    /// form round-trips.
    #[test]
    fn fuzz_tai64n(a in tai64n(), b in tai64n()) {
        guarded(&(a, b), || {
            prop_assert_eq!(Tai64N::from_bytes(a.to_bytes()), a);
            let (ab, ba) = (a.since(b), b.since(a));
            prop_assert!(ab.is_zero() || ba.is_zero());
            prop_assert_eq!(format!("{a}").len(), 25);
            Ok(())
        })?;
    }
}
