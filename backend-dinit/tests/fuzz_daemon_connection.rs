//! Property tests of braid's dinit daemon under hostile clients: each case
//! opens a connection to one running daemon and sends random bytes or a
//! stream of valid requests damaged (a lying length, a packet cut in
//! half, a changed byte, an oversized name), in pieces, then stops sending.
//!
//! For every case: the daemon finishes with that connection (answers what
//! it can, then closes it: after BADREQ for a malformed request, at end of
//! input otherwise) within a deadline, and it still serves a new connection
//! afterwards. Only the bad connection is ever dropped. (SHUTDOWN requests
//! are taken out of the streams: they are valid, and obeyed.)
//!
//! Needs the `braid` binary (built on demand, as the other daemon tests).
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

mod daemon_support;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use braid_dinit::protocol::{cmd, rply, DecodeError, Request, MAX_NAME_LEN, RECEIVE_BUFFER_SIZE};
use braid_tests::fuzz::{config, guarded};
use daemon_support::{braid_binary, exchange, Daemon, Impl, Peers};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;

/// Cases when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 150;

/// How long the daemon may take to finish with one connection.
const DEADLINE: Duration = Duration::from_secs(10);

const FILES: &[(&str, &str)] = &[
    ("boot", "type = internal\n"),
    ("svc", "type = internal\n"),
    ("other", "type = internal\ndepends-on = svc\n"),
];

/// A request, as the daemon would accept it, with handles that are mostly
/// not open on the connection.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just(b"svc".to_vec()),
        Just(b"other".to_vec()),
        Just(b"missing".to_vec()),
        prop::collection::vec(any::<u8>(), 1..12),
        prop::collection::vec(Just(b'n'), MAX_NAME_LEN..=MAX_NAME_LEN),
    ];
    (0u8..30, name, any::<u8>(), 0u32..4).prop_map(|(code, name, flags, handle)| {
        let mut p = vec![code];
        let h = handle.to_ne_bytes();
        match code {
            cmd::FINDSERVICE | cmd::LOADSERVICE | cmd::SETENV => {
                p.extend_from_slice(&(name.len() as u16).to_ne_bytes());
                p.extend_from_slice(&name);
            }
            cmd::STARTSERVICE
            | cmd::STOPSERVICE
            | cmd::WAKESERVICE
            | cmd::RELEASESERVICE
            | cmd::CATLOG
            | cmd::QUERYSERVICEDSCDIR
            | cmd::QUERYSERVICENAME => {
                p.push(flags & 0x7f);
                p.extend_from_slice(&h);
            }
            cmd::ADD_DEP | cmd::REM_DEP | cmd::ENABLESERVICE | cmd::ENABLE_SERVICE_V7 => {
                p.push(flags % 4);
                p.extend_from_slice(&h);
                p.extend_from_slice(&(handle ^ 1).to_ne_bytes());
            }
            cmd::SETTRIGGER => {
                p.extend_from_slice(&h);
                p.push(flags);
            }
            cmd::SIGNAL => {
                p.extend_from_slice(&0i32.to_ne_bytes());
                p.extend_from_slice(&h);
            }
            cmd::GETALLENV => p.push(0),
            cmd::SHUTDOWN => p[0] = cmd::QUERYVERSION,
            cmd::QUERYVERSION
            | cmd::LISTSERVICES
            | cmd::QUERY_LOAD_MECH
            | cmd::LISTSERVICES5
            | cmd::LISTENENV => {}
            _ => p.extend_from_slice(&h),
        }
        p
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    /// A u16 or u32 length/handle field replaced by a lying value.
    Lie(Index, u32),
    Truncate(Index),
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<Index>(),
            prop_oneof![
                Just(u32::MAX),
                Just(u16::MAX as u32),
                Just(RECEIVE_BUFFER_SIZE as u32),
                Just(MAX_NAME_LEN as u32 + 1),
                Just(0)
            ]
        )
            .prop_map(|(i, v)| Mutation::Lie(i, v)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        3 => (
            prop::collection::vec(request(), 1..6),
            prop::collection::vec(mutation(), 0..3),
        )
            .prop_map(|(reqs, mutations)| {
                let mut b: Vec<u8> = reqs.concat();
                for m in mutations {
                    if b.is_empty() {
                        break;
                    }
                    match m {
                        Mutation::Set(i, v) => {
                            let at = i.index(b.len());
                            b[at] = v;
                        }
                        Mutation::Lie(i, v) => {
                            let at = i.index(b.len());
                            let bytes = v.to_ne_bytes();
                            let end = (at + 4).min(b.len());
                            b[at..end].copy_from_slice(&bytes[..end - at]);
                        }
                        Mutation::Truncate(i) => {
                            let at = i.index(b.len());
                            b.truncate(at);
                        }
                        Mutation::Insert(i, v) => {
                            let at = i.index(b.len() + 1);
                            b.splice(at..at, v);
                        }
                    }
                }
                b
            }),
    ]
}

/// The stream with every SHUTDOWN request (valid, and obeyed) turned into
/// QUERYVERSION, and what the daemon will make of it: whether a malformed
/// request comes before the end.
fn defuse(mut bytes: Vec<u8>) -> (Vec<u8>, bool) {
    let mut at = 0;
    loop {
        match Request::decode(&bytes[at..]) {
            Ok((Request::Shutdown { .. }, _)) => bytes[at] = cmd::QUERYVERSION,
            Ok((_, n)) => at += n,
            Err(DecodeError::Malformed(_)) => return (bytes, true),
            Err(DecodeError::Incomplete { .. }) => return (bytes, false),
        }
    }
}

/// Sends `bytes` in `pieces` while reading the replies, stops sending, and
/// reads until the daemon closes. The bytes received, or why not.
fn converse(daemon: &Daemon, bytes: &[u8], pieces: &[usize]) -> Result<Vec<u8>, String> {
    let mut s = daemon.connect();
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut closed = false;
    let read_some = |s: &mut std::os::unix::net::UnixStream, got: &mut Vec<u8>| -> bool {
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            // Reset by a daemon that closed with our bytes unread.
            Err(_) => true,
        }
    };
    let mut at = 0;
    for n in pieces.iter().cycle() {
        if at >= bytes.len() || closed {
            break;
        }
        let end = (at + n).min(bytes.len());
        if s.write_all(&bytes[at..end]).is_err() {
            break; // the daemon closed already
        }
        at = end;
        // Take what has arrived, without waiting: the daemon may hold
        // back until the packet is whole.
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        closed = read_some(&mut s, &mut got);
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
    }
    let _ = s.shutdown(Shutdown::Write);
    while !closed {
        if Instant::now() > deadline {
            return Err(format!(
                "connection still open after {DEADLINE:?}; got {got:?}"
            ));
        }
        closed = read_some(&mut s, &mut got);
    }
    Ok(got)
}

#[test]
fn fuzz_daemon_connection() {
    let Some(braid) = braid_binary() else {
        return;
    };
    let peers = Peers {
        real: PathBuf::new(),
        braid,
    };
    let daemon = Daemon::start(&peers, Impl::Braid, FILES, &[]);
    let mut runner = TestRunner::new(config(DEFAULT_CASES));
    let strategy = (stream(), prop::collection::vec(1usize..64, 1..4));
    let result = runner.run(&strategy, |(bytes, pieces)| {
        let (bytes, malformed) = defuse(bytes);
        guarded(&(&bytes, &pieces), || {
            let got = converse(&daemon, &bytes, &pieces).map_err(TestCaseError::fail)?;
            if malformed {
                prop_assert_eq!(
                    got.last(),
                    Some(&rply::BADREQ),
                    "a malformed request is answered BADREQ before the close"
                );
            }
            // Only that connection was dropped: the daemon serves others.
            let mut other = daemon.connect();
            prop_assert_eq!(
                exchange(&mut other, &[cmd::QUERYVERSION], 5),
                [58, 1, 0, 7, 0]
            );
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}\nconsole:\n{}", daemon.console());
    }
}
