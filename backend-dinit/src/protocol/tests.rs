//! Exact byte layouts (little-endian, 64-bit machines, as the real daemon
//! produces them on x86-64), both directions, plus round trips and
//! truncation/garbage robustness.
#![cfg(all(target_endian = "little", target_pointer_width = "64"))]

use super::*;

fn req(bytes: &[u8]) -> Request {
    let (r, n) = Request::decode(bytes).expect("decodes");
    assert_eq!(n, bytes.len(), "consumed length");
    r
}

/// Checks that `value` encodes to `bytes` and `bytes` decodes to `value`.
fn check_request(value: Request, bytes: &[u8]) {
    assert_eq!(value.to_bytes(), bytes, "encoding of {value:?}");
    assert_eq!(req(bytes), value);
    // Every strict prefix is incomplete, never malformed.
    for cut in 0..bytes.len() {
        assert!(
            matches!(
                Request::decode(&bytes[..cut]),
                Err(DecodeError::Incomplete { .. })
            ),
            "prefix {cut} of {value:?}"
        );
    }
}

fn check_reply(value: Reply, version: StatusVersion, bytes: &[u8]) {
    assert_eq!(value.to_bytes(), bytes, "encoding of {value:?}");
    let (decoded, n) = Reply::decode(bytes, version).expect("decodes");
    assert_eq!(n, bytes.len());
    assert_eq!(decoded, value);
    for cut in 0..bytes.len() {
        assert!(
            matches!(
                Reply::decode(&bytes[..cut], version),
                Err(DecodeError::Incomplete { .. })
            ),
            "prefix {cut} of {value:?}"
        );
    }
    // Trailing bytes belong to the next packet.
    let mut more = bytes.to_vec();
    more.extend_from_slice(&[rply::ACK, 1, 2]);
    assert_eq!(
        Reply::decode(&more, version).map(|(_, n)| n),
        Ok(bytes.len())
    );
}

fn check_info(value: Info, bytes: &[u8]) {
    assert_eq!(value.to_bytes(), bytes, "encoding of {value:?}");
    let (decoded, n) = Info::decode(bytes).expect("decodes");
    assert_eq!(n, bytes.len());
    assert_eq!(decoded, value);
    let (incoming, _) = Incoming::decode(bytes, StatusVersion::V1).expect("decodes");
    assert_eq!(incoming, Incoming::Info(value));
    for cut in 0..bytes.len() {
        assert!(matches!(
            Info::decode(&bytes[..cut]),
            Err(DecodeError::Incomplete { .. })
        ));
    }
}

fn started_status() -> Status {
    Status {
        state: ServiceState::Started,
        target: ServiceState::Started,
        flags: Status::MARKED_ACTIVE | Status::HAS_PID,
        stop_reason: StopReason::Normal,
        exec_stage: 0,
        word1: 0x1234,
        word2: 0,
        mtime: Timespec {
            sec: 0x0102_0304,
            nsec: 5,
        },
    }
}

#[test]
fn requests_without_arguments() {
    check_request(Request::QueryVersion, &[0]);
    check_request(Request::ListServices, &[8]);
    check_request(Request::QueryLoadMech, &[13]);
    check_request(Request::GetAllEnv, &[24, 0]);
    check_request(Request::ListServices5, &[25]);
    check_request(Request::ListenEnv, &[27]);
}

#[test]
fn find_and_load_carry_u16_length_and_name() {
    check_request(
        Request::FindService {
            name: b"boot".to_vec(),
        },
        &[1, 4, 0, b'b', b'o', b'o', b't'],
    );
    check_request(
        Request::LoadService {
            name: b"a@x".to_vec(),
        },
        &[2, 3, 0, b'a', b'@', b'x'],
    );
}

#[test]
fn start_stop_wake_release_carry_flags_and_handle() {
    let h = 0x0403_0201;
    check_request(
        Request::StartService {
            flags: start_flags::PIN,
            handle: h,
        },
        &[3, 1, 1, 2, 3, 4],
    );
    check_request(
        Request::StopService {
            flags: start_flags::GENTLE | start_flags::RESTART | start_flags::PREACK,
            handle: 7,
        },
        &[4, 0x86, 7, 0, 0, 0],
    );
    check_request(
        Request::WakeService {
            flags: 0,
            handle: 1,
        },
        &[5, 0, 1, 0, 0, 0],
    );
    check_request(
        Request::ReleaseService {
            flags: 1,
            handle: 2,
        },
        &[6, 1, 2, 0, 0, 0],
    );
}

#[test]
fn handle_only_requests() {
    check_request(Request::UnpinService { handle: 5 }, &[7, 5, 0, 0, 0]);
    check_request(Request::UnloadService { handle: 5 }, &[9, 5, 0, 0, 0]);
    check_request(Request::ReloadService { handle: 5 }, &[16, 5, 0, 0, 0]);
    check_request(Request::ServiceStatus { handle: 5 }, &[18, 5, 0, 0, 0]);
    check_request(Request::CloseHandle { handle: 5 }, &[23, 5, 0, 0, 0]);
    check_request(Request::ServiceStatus5 { handle: 5 }, &[26, 5, 0, 0, 0]);
    check_request(Request::ServiceStatus6 { handle: 256 }, &[28, 0, 1, 0, 0]);
}

#[test]
fn other_requests() {
    check_request(
        Request::Shutdown {
            kind: ShutdownType::Halt,
        },
        &[10, 2],
    );
    let dep = |dep_type, from, to| (dep_type, from, to);
    let (t, f, to) = dep(DependencyType::WaitsFor, 1, 2);
    check_request(
        Request::AddDep {
            dep_type: t,
            from: f,
            to,
        },
        &[11, 2, 1, 0, 0, 0, 2, 0, 0, 0],
    );
    check_request(
        Request::RemDep {
            dep_type: DependencyType::Regular,
            from: 3,
            to: 4,
        },
        &[12, 0, 3, 0, 0, 0, 4, 0, 0, 0],
    );
    check_request(
        Request::EnableService {
            dep_type: DependencyType::Milestone,
            from: 0,
            to: 1,
        },
        &[14, 3, 0, 0, 0, 0, 1, 0, 0, 0],
    );
    check_request(
        Request::EnableServiceV7 {
            dep_type: DependencyType::WaitsFor,
            from: 0,
            to: 1,
        },
        &[29, 2, 0, 0, 0, 0, 1, 0, 0, 0],
    );
    check_request(
        Request::QueryServiceName { handle: 9 },
        &[15, 0, 9, 0, 0, 0],
    );
    check_request(
        Request::SetEnv {
            var: b"A=b".to_vec(),
        },
        &[17, 3, 0, b'A', b'=', b'b'],
    );
    check_request(
        Request::SetTrigger {
            handle: 2,
            value: 1,
        },
        &[19, 2, 0, 0, 0, 1],
    );
    check_request(
        Request::CatLog {
            flags: 1,
            handle: 2,
        },
        &[20, 1, 2, 0, 0, 0],
    );
    check_request(
        Request::Signal {
            signal: 15,
            handle: 3,
        },
        &[21, 15, 0, 0, 0, 3, 0, 0, 0],
    );
    check_request(
        Request::QueryServiceDscDir {
            reserved: 0,
            handle: 3,
        },
        &[22, 0, 3, 0, 0, 0],
    );
    check_request(
        Request::BraidFollowLog {
            name: b"web".to_vec(),
        },
        &[240, 3, 0, b'w', b'e', b'b'],
    );
}

#[test]
fn requests_the_daemon_rejects_are_malformed() {
    let malformed = |b: &[u8]| matches!(Request::decode(b), Err(DecodeError::Malformed(_)));
    assert!(malformed(&[200]), "unknown command");
    assert!(malformed(&[30]), "unknown command");
    assert!(malformed(&[1, 0, 0]), "empty name");
    assert!(
        malformed(&[1, 0xfe, 0x03]),
        "name of 1022 bytes does not fit the buffer"
    );
    assert!(malformed(&[2, 1, 0, b'.']), "name starting with a dot");
    assert!(malformed(&[2, 2, 0, b'@', b'x']), "name starting with @");
    assert!(malformed(&[10, 0]), "shutdown type NONE");
    assert!(malformed(&[10, 7]), "unknown shutdown type");
    assert!(
        malformed(&[11, 1, 0, 0, 0, 0, 1, 0, 0, 0]),
        "soft dependency"
    );
    assert!(malformed(&[17, 2, 0, b'=', b'x']), "setenv with empty name");
    assert!(malformed(&[24, 1]), "getallenv reserved byte");
    // The largest name that fits is fine.
    let mut big = vec![2, 0xfd, 0x03];
    big.extend(std::iter::repeat(b'n').take(1021));
    assert_eq!(Request::decode(&big).map(|(_, n)| n), Ok(1024));
    // Prefixes of a too-long name are already malformed once the length is known.
    assert!(malformed(&[17, 0xff, 0xff]));
}

#[test]
fn simple_replies() {
    for (value, code) in [
        (Reply::Ack, 50),
        (Reply::Nak, 51),
        (Reply::BadReq, 52),
        (Reply::Oom, 53),
        (Reply::NoService, 60),
        (Reply::AlreadySs, 61),
        (Reply::ListDone, 63),
        (Reply::PinnedStopped, 67),
        (Reply::PinnedStarted, 68),
        (Reply::ShuttingDown, 69),
        (Reply::ServiceDescErr, 71),
        (Reply::ServiceLoadErr, 72),
        (Reply::SignalNoPid, 74),
        (Reply::SignalBadSig, 75),
        (Reply::SignalKillErr, 76),
        (Reply::PreAck, 79),
        (Reply::Unknown(54), 54),
    ] {
        check_reply(value, StatusVersion::V1, &[code]);
    }
}

#[test]
fn version_and_service_record() {
    check_reply(
        Reply::CpVersion {
            min_compat: 1,
            version: 7,
        },
        StatusVersion::V1,
        &[58, 1, 0, 7, 0],
    );
    check_reply(
        Reply::ServiceRecord {
            state: ServiceState::Starting,
            handle: 3,
            target: ServiceState::Started,
        },
        StatusVersion::V1,
        &[59, 1, 3, 0, 0, 0, 2],
    );
}

#[test]
fn status_buffers_in_three_sizes() {
    let st = started_status();
    let mut v1 = Vec::new();
    st.encode(StatusVersion::V1, &mut v1);
    assert_eq!(v1, [2, 2, 24, 0, 0, 0, 0x34, 0x12, 0, 0]);
    let mut v5 = Vec::new();
    st.encode(StatusVersion::V5, &mut v5);
    assert_eq!(v5, [2, 2, 24, 0, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0]);
    let mut v6 = Vec::new();
    st.encode(StatusVersion::V6, &mut v6);
    assert_eq!(&v6[..14], &v5[..]);
    assert_eq!(&v6[14..], [4, 3, 2, 1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Status::decode(StatusVersion::V6, &v6), Ok(st));
    // A v1 decode drops what v1 cannot carry.
    let back = Status::decode(StatusVersion::V1, &v1).unwrap();
    assert_eq!(back.word1, 0x1234);
    assert_eq!(back.mtime, Timespec::default());

    // Exec failure: stage and errno.
    let failed = Status {
        state: ServiceState::Stopped,
        target: ServiceState::Stopped,
        flags: 0,
        stop_reason: StopReason::ExecFailed,
        exec_stage: 5,
        word1: 2,
        word2: 0,
        mtime: Timespec::default(),
    };
    let mut b = Vec::new();
    failed.encode(StatusVersion::V5, &mut b);
    assert_eq!(b, [0, 0, 0, 4, 5, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn status_replies() {
    let st = started_status();
    let mut bytes = vec![70, 0];
    st.encode(StatusVersion::V6, &mut bytes);
    assert_eq!(bytes.len(), 32);
    check_reply(
        Reply::ServiceStatus {
            version: StatusVersion::V6,
            reserved: 0,
            status: st,
        },
        StatusVersion::V6,
        &bytes,
    );

    let mut bytes = vec![70, 1];
    st.encode(StatusVersion::V5, &mut bytes);
    assert_eq!(bytes.len(), 16);
    let mut st5 = st;
    st5.mtime = Timespec::default();
    check_reply(
        Reply::ServiceStatus {
            version: StatusVersion::V5,
            reserved: 1,
            status: st5,
        },
        StatusVersion::V5,
        &bytes,
    );
}

#[test]
fn svcinfo_and_name_clamp() {
    let st = Status::stopped();
    let bytes = [
        62, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'c',
    ];
    check_reply(
        Reply::SvcInfo {
            version: StatusVersion::V5,
            status: st,
            name: b"abc".to_vec(),
        },
        StatusVersion::V5,
        &bytes,
    );
    let long = Reply::SvcInfo {
        version: StatusVersion::V1,
        status: st,
        name: vec![b'x'; 300],
    };
    let enc = long.to_bytes();
    assert_eq!(enc[1], 255);
    assert_eq!(enc.len(), 2 + 10 + 255);
}

#[test]
fn variable_length_replies() {
    check_reply(
        Reply::Dependents {
            handles: vec![1, 2],
        },
        StatusVersion::V1,
        &[65, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0],
    );
    check_reply(
        Reply::ServiceName {
            name: b"ab".to_vec(),
        },
        StatusVersion::V1,
        &[66, 0, 2, 0, b'a', b'b'],
    );
    check_reply(
        Reply::ServiceLog {
            flags: 0,
            data: b"hi\n".to_vec(),
        },
        StatusVersion::V1,
        &[73, 0, 3, 0, 0, 0, b'h', b'i', b'\n'],
    );
    check_reply(
        Reply::SvcDscDir {
            dir: b"/d".to_vec(),
        },
        StatusVersion::V1,
        &[77, 2, 0, 0, 0, b'/', b'd'],
    );
    check_reply(
        Reply::AllEnv {
            block: b"A=1\0".to_vec(),
        },
        StatusVersion::V1,
        &[78, 4, 0, 0, 0, 0, 0, 0, 0, b'A', b'=', b'1', 0],
    );
    check_reply(
        Reply::LoaderMech {
            cwd: b"/w".to_vec(),
            dirs: vec![b"sd".to_vec()],
        },
        StatusVersion::V1,
        &[
            64, 1, 22, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'/', b'w', 2, 0, 0, 0, b's', b'd',
        ],
    );
}

#[test]
fn malformed_replies() {
    let malformed = |b: &[u8]| {
        matches!(
            Reply::decode(b, StatusVersion::V5),
            Err(DecodeError::Malformed(_))
        )
    };
    assert!(malformed(&[59, 9, 0, 0, 0, 0, 0]), "bad state");
    assert!(malformed(&[64, 2, 6, 0, 0, 0]), "unknown loader");
    assert!(
        malformed(&[64, 1, 12, 0, 0, 0, 9, 0, 0, 0, 0, 0]),
        "dirs overrun the length"
    );
    assert!(malformed(&[73, 0, 0xff, 0xff, 0xff, 0xff]), "huge log");
    assert!(
        malformed(&[65, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        "huge count"
    );
    assert!(malformed(&[100, 17]), "info packet as reply");
}

#[test]
fn service_events() {
    let mut st = Status::stopped();
    st.stop_reason = StopReason::Failed;
    st.word1 = 1; // CLD_EXITED
    st.word2 = 3;
    check_info(
        Info::ServiceEvent5 {
            handle: 2,
            event: ServiceEvent::FailedStart,
            status: st,
        },
        &[
            101, 21, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0,
        ],
    );
    let mut st1 = st;
    st1.word1 = -1;
    st1.word2 = 0;
    check_info(
        Info::ServiceEvent {
            handle: 2,
            event: ServiceEvent::Stopped,
            status: st1,
        },
        &[
            100, 17, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0xff, 0xff, 0xff, 0xff,
        ],
    );
}

#[test]
fn env_event_length_byte_is_header_only() {
    check_info(
        Info::EnvEvent {
            overridden: true,
            var: b"A=1".to_vec(),
        },
        &[102, 5, 1, 4, 0, b'A', b'=', b'1', 0],
    );
    check_info(
        Info::EnvEvent {
            overridden: false,
            var: b"B".to_vec(),
        },
        &[102, 5, 0, 2, 0, b'B', 0],
    );
    assert!(matches!(
        Info::decode(&[102, 5, 0, 1, 0, b'B']),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn unknown_info_is_skipped_by_length() {
    check_info(
        Info::Unknown {
            code: 150,
            payload: vec![9, 9],
        },
        &[150, 4, 9, 9],
    );
    assert!(matches!(
        Info::decode(&[150, 1]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn round_trip_of_every_request() {
    let all = [
        Request::QueryVersion,
        Request::FindService {
            name: b"x".to_vec(),
        },
        Request::LoadService {
            name: vec![b'y'; MAX_NAME_LEN],
        },
        Request::StartService {
            flags: 0x81,
            handle: u32::MAX,
        },
        Request::StopService {
            flags: 6,
            handle: 0,
        },
        Request::WakeService {
            flags: 1,
            handle: 1,
        },
        Request::ReleaseService {
            flags: 0,
            handle: 2,
        },
        Request::UnpinService { handle: 3 },
        Request::ListServices,
        Request::UnloadService { handle: 4 },
        Request::Shutdown {
            kind: ShutdownType::Kexec,
        },
        Request::AddDep {
            dep_type: DependencyType::Regular,
            from: 1,
            to: 2,
        },
        Request::RemDep {
            dep_type: DependencyType::Milestone,
            from: 1,
            to: 2,
        },
        Request::QueryLoadMech,
        Request::EnableService {
            dep_type: DependencyType::WaitsFor,
            from: 1,
            to: 2,
        },
        Request::QueryServiceName { handle: 5 },
        Request::ReloadService { handle: 6 },
        Request::SetEnv {
            var: b"NAME".to_vec(),
        },
        Request::ServiceStatus { handle: 7 },
        Request::SetTrigger {
            handle: 8,
            value: 0,
        },
        Request::CatLog {
            flags: 0,
            handle: 9,
        },
        Request::Signal {
            signal: -1,
            handle: 10,
        },
        Request::QueryServiceDscDir {
            reserved: 3,
            handle: 11,
        },
        Request::CloseHandle { handle: 12 },
        Request::GetAllEnv,
        Request::ListServices5,
        Request::ServiceStatus5 { handle: 13 },
        Request::ListenEnv,
        Request::ServiceStatus6 { handle: 14 },
        Request::EnableServiceV7 {
            dep_type: DependencyType::WaitsFor,
            from: 15,
            to: 16,
        },
        Request::BraidFollowLog {
            name: b"svc".to_vec(),
        },
    ];
    // Pipelined: decode one after another from a single buffer.
    let mut stream = Vec::new();
    for r in &all {
        r.encode(&mut stream);
    }
    let mut pos = 0;
    for r in &all {
        let (d, n) = Request::decode(&stream[pos..]).unwrap();
        assert_eq!(&d, r);
        pos += n;
    }
    assert_eq!(pos, stream.len());
}

#[test]
fn decoding_garbage_never_panics() {
    // A small deterministic generator: every 1..3-byte prefix pattern plus
    // pseudo-random longer buffers.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for first in 0..=255u8 {
        for len in 0..40 {
            let mut buf = vec![first];
            buf.extend((0..len).map(|_| next() as u8));
            let _ = Request::decode(&buf);
            let _ = Incoming::decode(&buf, StatusVersion::V1);
            let _ = Incoming::decode(&buf, StatusVersion::V6);
            if let Ok((_, n)) = Incoming::decode(&buf, StatusVersion::V5) {
                assert!(n <= buf.len());
            }
        }
    }
}
