//! Property tests of `ready`'s side of the readiness gate (what turnstile's
//! `ready STRING` runs on the socket STRING names): a fake gate sends
//! random bytes or near-valid conversations (greeting, `waiting:` lines,
//! verdict) with one mutation (a huge or bad deadline, a cut line, a
//! changed byte, a missing newline), in pieces, then closes.
//!
//! For every input: `gate::wait` returns (no panic, no hang) and its answer
//! is the one the bytes call for: open, failed naming service and reason,
//! or a protocol error.
//!
//! Each property has one fake gate (a listening socket and the thread that
//! answers on it) for all its cases, each case one connection.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use braid_tests::fuzz::{damage, guarded, run, scratch_dir, Damage, TempDir};
use braid_turnstile::gate::{self, WaitError};
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 300;

/// How long `ready` waits for a greeting (the real one waits a minute).
const BOUND: Duration = Duration::from_secs(10);

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("open".to_string()),
        "[a-z]{1,6}".prop_map(|s| format!("failed: {s}: exited with status 1")),
        Just("failed: x".to_string()),
        Just("failed: : ".to_string()),
        prop::collection::vec("[a-z.@-]{1,8}", 0..4)
            .prop_map(|n| format!("waiting: {}", n.join(" "))),
        Just("waiting:".to_string()),
        "[ -~]{0,16}",
    ]
}

fn greeting() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..5000).prop_map(|ms| format!("braid-gate 1 {ms}")),
        1 => prop_oneof![
            Just(u64::MAX.to_string()),
            Just((u64::MAX / 1000).to_string()),
            Just("18446744073709551616".to_string()),
            Just("-1".to_string()),
            Just(String::new()),
            Just("1.5".to_string()),
        ]
        .prop_map(|ms| format!("braid-gate 1 {ms}")),
        1 => Just("braid-gate 2 100".to_string()),
        1 => "[ -~]{0,20}",
    ]
}

fn conversation() -> impl Strategy<Value = Vec<u8>> {
    (
        greeting(),
        prop::collection::vec(line(), 0..5),
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Set(i, b)),
                any::<Index>().prop_map(Damage::Truncate),
                (any::<Index>(), prop::collection::vec(any::<u8>(), 1..4))
                    .prop_map(|(i, b)| Damage::Insert(i, b)),
            ],
            0..2,
        ),
    )
        .prop_map(|(greeting, lines, newline, mutations)| {
            let mut text = std::iter::once(greeting)
                .chain(lines)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes();
            if newline {
                text.push(b'\n');
            }
            damage(&mut text, mutations);
            text
        })
}

/// What `ready` should conclude from a gate that sends `bytes` and closes.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Open,
    Failed { service: String, reason: String },
    Protocol,
}

fn expected(bytes: &[u8]) -> Expected {
    let mut lines = bytes.split(|&b| b == b'\n');
    // The part after the last newline is never a complete line.
    let complete = bytes.iter().filter(|&&b| b == b'\n').count();
    let mut greeted = false;
    for _ in 0..complete {
        let line = String::from_utf8_lossy(lines.next().unwrap_or(&[])).into_owned();
        if !greeted {
            let ok = line
                .strip_prefix("braid-gate 1 ")
                .is_some_and(|ms| ms.parse::<u64>().is_ok());
            if !ok {
                return Expected::Protocol;
            }
            greeted = true;
        } else if line.starts_with("waiting:") {
        } else if line == "open" {
            return Expected::Open;
        } else if let Some((service, reason)) = line
            .strip_prefix("failed: ")
            .and_then(|r| r.split_once(": "))
        {
            return Expected::Failed {
                service: service.to_string(),
                reason: reason.to_string(),
            };
        } else {
            return Expected::Protocol;
        }
    }
    Expected::Protocol
}

/// A fake gate: a socket and a thread that, for each conversation it is
/// given, accepts one connection, sends the bytes in pieces and closes.
struct FakeGate {
    path: PathBuf,
    /// Conversations to serve; dropping it ends the thread.
    jobs: Option<Sender<(Vec<u8>, Vec<usize>)>>,
    /// One message per conversation served.
    served: Receiver<()>,
    server: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

impl FakeGate {
    fn new() -> FakeGate {
        let dir = scratch_dir("gate");
        let path = dir.path().join("gate.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let (jobs, todo) = channel::<(Vec<u8>, Vec<usize>)>();
        let (done, served) = channel();
        let server = std::thread::spawn(move || {
            for (send, sizes) in todo {
                if let Ok((mut conn, _)) = listener.accept() {
                    let mut at = 0;
                    for n in sizes.iter().cycle() {
                        if at >= send.len() {
                            break;
                        }
                        let end = (at + n).min(send.len());
                        // The client may have decided and gone already.
                        if conn.write_all(&send[at..end]).is_err() {
                            break;
                        }
                        at = end;
                    }
                }
                if done.send(()).is_err() {
                    break;
                }
            }
        });
        FakeGate {
            path,
            jobs: Some(jobs),
            served,
            server: Some(server),
            _dir: dir,
        }
    }

    /// Has the gate send `bytes` in `pieces` to the next connection, runs
    /// `ready`'s side against it, and waits until the gate has closed.
    fn wait(&self, bytes: &[u8], pieces: &[usize]) -> Result<(), WaitError> {
        if let Some(jobs) = &self.jobs {
            jobs.send((bytes.to_vec(), pieces.to_vec()))
                .expect("fake gate thread is running");
        }
        let got = gate::wait(&self.path, BOUND);
        // The gate closes once all is sent, or when a write fails because
        // the client has gone.
        let _ = self.served.recv_timeout(BOUND);
        got
    }
}

impl Drop for FakeGate {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

fn check(gate: &FakeGate, bytes: &[u8], pieces: &[usize]) -> Result<(), TestCaseError> {
    guarded(&(String::from_utf8_lossy(bytes), pieces), || {
        let got = match gate.wait(bytes, pieces) {
            Ok(()) => Expected::Open,
            Err(WaitError::Failed { service, reason }) => Expected::Failed { service, reason },
            Err(WaitError::Protocol(_)) => Expected::Protocol,
            Err(e) => return Err(TestCaseError::fail(format!("unexpected: {e:?}"))),
        };
        prop_assert_eq!(got, expected(bytes));
        Ok(())
    })
}

#[test]
fn fuzz_ready_gate_random() {
    let gate = FakeGate::new();
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..120),
        prop::collection::vec(1usize..40, 1..4),
    );
    run(DEFAULT_CASES, strategy, |(bytes, pieces)| {
        check(&gate, &bytes, &pieces)
    });
}

#[test]
fn fuzz_ready_gate_near_valid() {
    let gate = FakeGate::new();
    let strategy = (conversation(), prop::collection::vec(1usize..40, 1..4));
    run(DEFAULT_CASES, strategy, |(bytes, pieces)| {
        check(&gate, &bytes, &pieces)
    });
}
