//! The codec against the real daemon: requests encoded by braid are
//! understood, and every reply and information packet the real daemon
//! sends decodes to what it means.

#[path = "dinitctl_support/mod.rs"]
mod dinitctl_support;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use braid_dinit::protocol::{
    start_flags, DecodeError, Incoming, Info, Reply, Request, ServiceEvent, ServiceState,
    StatusVersion,
};
use dinitctl_support::{path_str, peer_dir, Daemon};

const SERVICES: &[(&str, &str)] = &[
    ("boot", "type = internal\n"),
    (
        "sleeper",
        "type = process\ncommand = /bin/sleep 1000\nrestart = false\n",
    ),
    (
        "holder",
        "type = internal\ndepends-on = sleeper\nrestart = false\n",
    ),
];

/// A raw connection: bytes in, packets out.
struct Raw {
    sock: UnixStream,
    buf: Vec<u8>,
}

impl Raw {
    fn open(d: &Daemon) -> Raw {
        let sock = UnixStream::connect(&d.socket).unwrap();
        // Every wait is bounded.
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            sock,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, r: Request) {
        self.sock.write_all(&r.to_bytes()).unwrap();
    }

    /// The next packet; `None` at end of stream.
    fn next(&mut self, sv: StatusVersion) -> Option<Incoming> {
        loop {
            match Incoming::decode(&self.buf, sv) {
                Ok((p, n)) => {
                    self.buf.drain(..n);
                    return Some(p);
                }
                Err(DecodeError::Malformed(why)) => {
                    panic!("real daemon sent a malformed packet: {why}: {:?}", self.buf)
                }
                Err(DecodeError::Incomplete { .. }) => {
                    let mut chunk = [0u8; 4096];
                    let n = self.sock.read(&mut chunk).expect("read within 10 s");
                    if n == 0 {
                        return None;
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// The next reply, skipping information packets as clients do.
    fn reply(&mut self, sv: StatusVersion) -> Reply {
        loop {
            match self.next(sv) {
                Some(Incoming::Reply(r)) => return r,
                Some(Incoming::Info(_)) => {}
                None => panic!("connection closed while waiting for a reply"),
            }
        }
    }

    fn info(&mut self) -> Info {
        match self.next(StatusVersion::V1) {
            Some(Incoming::Info(i)) => i,
            other => panic!("expected an information packet, got {other:?}"),
        }
    }

    fn ask(&mut self, r: Request) -> Reply {
        self.send(r);
        self.reply(StatusVersion::V1)
    }

    fn load(&mut self, name: &str) -> u32 {
        match self.ask(Request::LoadService { name: name.into() }) {
            Reply::ServiceRecord { handle, .. } => handle,
            other => panic!("load {name}: {other:?}"),
        }
    }
}

#[test]
fn replies_decode_as_the_daemon_means_them() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let mut c = Raw::open(&d);

    assert_eq!(
        c.ask(Request::QueryVersion),
        Reply::CpVersion {
            min_compat: 1,
            version: 7
        }
    );
    assert_eq!(
        c.ask(Request::LoadService {
            name: b"boot".to_vec()
        }),
        Reply::ServiceRecord {
            state: ServiceState::Started,
            handle: 0,
            target: ServiceState::Started
        }
    );
    // Every lookup allocates a fresh handle, the lowest free one.
    assert_eq!(c.load("boot"), 1);
    assert_eq!(c.ask(Request::CloseHandle { handle: 0 }), Reply::Ack);
    assert_eq!(c.load("boot"), 0);
    assert_eq!(
        c.ask(Request::FindService {
            name: b"nosuch".to_vec()
        }),
        Reply::NoService
    );

    // Status in three sizes; v6 carries the file's mtime.
    c.send(Request::ServiceStatus6 { handle: 0 });
    let Reply::ServiceStatus { status, .. } = c.reply(StatusVersion::V6) else {
        panic!()
    };
    let meta = std::fs::metadata(d.services.join("boot")).unwrap();
    assert_eq!(
        (status.mtime.sec, status.mtime.nsec),
        (meta.mtime(), meta.mtime_nsec())
    );
    assert_eq!(status.state, ServiceState::Started);
    c.send(Request::ServiceStatus5 { handle: 0 });
    assert!(matches!(
        c.reply(StatusVersion::V5),
        Reply::ServiceStatus { .. }
    ));
    c.send(Request::ServiceStatus { handle: 0 });
    assert!(matches!(
        c.reply(StatusVersion::V1),
        Reply::ServiceStatus { .. }
    ));
    assert_eq!(c.ask(Request::ServiceStatus5 { handle: 99 }), Reply::Nak);

    // Where descriptions come from.
    let sd = path_str(&d.services).as_bytes().to_vec();
    assert_eq!(
        c.ask(Request::QueryServiceDscDir {
            reserved: 0,
            handle: 0
        }),
        Reply::SvcDscDir { dir: sd.clone() }
    );
    match c.ask(Request::QueryLoadMech) {
        Reply::LoaderMech { cwd, dirs } => {
            assert!(!cwd.is_empty());
            assert_eq!(dirs, vec![sd]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.ask(Request::QueryServiceName { handle: 0 }),
        Reply::ServiceName {
            name: b"boot".to_vec()
        }
    );

    // Starting a process: PREACK, then the reply, then both event packets.
    let s = c.load("sleeper");
    c.send(Request::StartService {
        flags: start_flags::PREACK,
        handle: s,
    });
    assert_eq!(c.reply(StatusVersion::V1), Reply::PreAck);
    let mut events = Vec::new();
    loop {
        match c.next(StatusVersion::V1) {
            Some(Incoming::Reply(r)) => assert_eq!(r, Reply::Ack),
            Some(Incoming::Info(i)) => {
                events.push(i);
                if events.len() == 2 {
                    break;
                }
            }
            None => panic!("connection closed"),
        }
    }
    match (&events[0], &events[1]) {
        (
            Info::ServiceEvent5 {
                handle: h5,
                event: ServiceEvent::Started,
                status: st5,
            },
            Info::ServiceEvent {
                handle: h1,
                event: ServiceEvent::Started,
                status: st1,
            },
        ) => {
            assert_eq!((*h5, *h1), (s, s));
            assert!(st5.pid().is_some() && st5.pid() == st1.pid());
        }
        other => panic!("{other:?}"),
    }

    // A gentle stop refused because of a dependent, named by a new handle.
    let h = c.load("holder");
    c.send(Request::StartService {
        flags: 0,
        handle: h,
    });
    assert_eq!(c.reply(StatusVersion::V1), Reply::AlreadySs);
    match c.ask(Request::StopService {
        flags: start_flags::GENTLE,
        handle: s,
    }) {
        Reply::Dependents { handles } => {
            assert_eq!(handles.len(), 1);
            assert_eq!(
                c.ask(Request::QueryServiceName { handle: handles[0] }),
                Reply::ServiceName {
                    name: b"holder".to_vec()
                }
            );
        }
        other => panic!("{other:?}"),
    }

    // Listing.
    c.send(Request::ListServices5);
    let mut names = Vec::new();
    loop {
        match c.reply(StatusVersion::V5) {
            Reply::SvcInfo { name, .. } => names.push(String::from_utf8(name).unwrap()),
            Reply::ListDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names, ["boot", "sleeper", "holder"]);

    // Nothing to cat, nothing to signal.
    assert_eq!(
        c.ask(Request::CatLog {
            flags: 0,
            handle: h
        }),
        Reply::Nak
    );
    assert_eq!(
        c.ask(Request::Signal {
            signal: 0,
            handle: h
        }),
        Reply::SignalNoPid
    );
}

#[test]
fn environment_events_carry_their_own_length() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let mut listener = Raw::open(&d);
    let mut setter = Raw::open(&d);
    assert_eq!(listener.ask(Request::ListenEnv), Reply::Ack);
    for (var, overridden) in [
        ("BRAID_X=1", false),
        ("BRAID_X=22", true),
        ("BRAID_X", true),
    ] {
        assert_eq!(setter.ask(Request::SetEnv { var: var.into() }), Reply::Ack);
        assert_eq!(
            listener.info(),
            Info::EnvEvent {
                overridden,
                var: var.into()
            }
        );
    }
    assert_eq!(
        setter.ask(Request::SetEnv {
            var: b"BRAID_Y=y".to_vec()
        }),
        Reply::Ack
    );
    let _ = listener.info();
    match setter.ask(Request::GetAllEnv) {
        Reply::AllEnv { block } => {
            assert!(block.ends_with(b"\0"));
            assert!(block.split(|&b| b == 0).any(|e| e == b"BRAID_Y=y"));
            assert!(!block.split(|&b| b == 0).any(|e| e.starts_with(b"BRAID_X=")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_requests_close_the_connection() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    // An unknown command.
    let mut c = Raw::open(&d);
    c.sock.write_all(&[200]).unwrap();
    assert_eq!(c.reply(StatusVersion::V1), Reply::BadReq);
    assert_eq!(c.next(StatusVersion::V1), None);
    // A name longer than the daemon's buffer allows: the codec refuses to
    // decode it too.
    let mut c = Raw::open(&d);
    let mut pkt = vec![2u8];
    pkt.extend_from_slice(&1022u16.to_ne_bytes());
    pkt.extend(std::iter::repeat(b'x').take(1022));
    assert!(matches!(
        Request::decode(&pkt),
        Err(DecodeError::Malformed(_))
    ));
    // The daemon judges the length once it has 4 bytes.
    c.sock.write_all(&pkt[..4]).unwrap();
    assert_eq!(c.reply(StatusVersion::V1), Reply::BadReq);
    assert_eq!(c.next(StatusVersion::V1), None);
    // A bad handle.
    let mut c = Raw::open(&d);
    assert_eq!(c.ask(Request::UnpinService { handle: 7 }), Reply::BadReq);
    assert_eq!(c.next(StatusVersion::V1), None);
}
