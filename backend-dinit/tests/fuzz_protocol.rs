//! Property tests of the dinit control-protocol codec, both ends: requests
//! as the daemon decodes them, replies and information packets as a client
//! decodes them.
//!
//! Inputs are random bytes and near-valid streams (valid packets with one
//! byte changed, a length field replaced by a huge or lying value, a packet
//! cut short, garbage inserted). For every input:
//! - decoding returns (no panic, no hang) an error value or a packet;
//! - a packet uses at least one byte and no more than were given, and an
//!   `Incomplete` asks for more bytes than were given, never more than the
//!   daemon's receive buffer (requests) or the codec's reply cap (replies);
//! - what a packet holds is bounded by the bytes it used (no allocation
//!   sized by a length field alone);
//! - feeding the bytes in pieces (one at a time, or random sizes) gives the
//!   packets and the verdict that decoding them all at once gives.
//!
//! And every packet type round-trips: decode(encode(p)) == p, and every
//! strict prefix of an encoding is `Incomplete`.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use braid_dinit::protocol::{
    DecodeError, DependencyType, Incoming, Info, Reply, Request, ServiceEvent, ServiceState,
    ShutdownType, Status, StatusVersion, StopReason, Timespec, MAX_NAME_LEN, MAX_REPLY_LEN,
    RECEIVE_BUFFER_SIZE,
};
use braid_tests::fuzz::{config, guarded};
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 2000;

// ---------------------------------------------------------------------------
// Strategies: valid packets.

fn all<T>(from_code: fn(u8) -> Option<T>) -> Vec<T> {
    (0..=255u8).filter_map(from_code).collect()
}

fn state() -> impl Strategy<Value = ServiceState> {
    select(all(ServiceState::from_code))
}

fn version() -> impl Strategy<Value = StatusVersion> {
    select(vec![
        StatusVersion::V1,
        StatusVersion::V5,
        StatusVersion::V6,
    ])
}

/// A status buffer holding only what `version` carries (so that it
/// round-trips through that layout).
fn status(version: StatusVersion) -> impl Strategy<Value = Status> {
    (
        (state(), state(), any::<u8>()),
        select(all(StopReason::from_code)),
        (any::<u16>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i64>()),
    )
        .prop_map(
            move |((state, target, flags), stop_reason, (exec_stage, word1, word2), (s, ns))| {
                let v1 = version == StatusVersion::V1;
                let v6 = version == StatusVersion::V6;
                Status {
                    state,
                    target,
                    flags,
                    stop_reason,
                    exec_stage,
                    word1,
                    word2: if v1 { 0 } else { word2 },
                    mtime: if v6 {
                        Timespec { sec: s, nsec: ns }
                    } else {
                        Timespec::default()
                    },
                }
            },
        )
}

/// Bytes of any value, mostly short, sometimes up to `max` long.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..24.min(max + 1)),
        1 => prop::collection::vec(any::<u8>(), 0..=max),
    ]
}

/// A service name the daemon accepts: 1..=MAX_NAME_LEN bytes, not
/// starting with `.` or `@`.
fn name() -> impl Strategy<Value = Vec<u8>> {
    bytes(MAX_NAME_LEN - 1).prop_map(|mut n| {
        if matches!(n.first(), None | Some(b'.' | b'@')) {
            n.insert(0, b's');
        }
        n
    })
}

fn request() -> impl Strategy<Value = Request> {
    let dep = select(
        all(DependencyType::from_code)
            .into_iter()
            .filter(|d| d.allowed_in_requests())
            .collect::<Vec<_>>(),
    );
    (
        0u8..30,
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<i32>()),
        name(),
        dep,
        select(all(ShutdownType::from_code)),
    )
        .prop_map(
            |(which, (flags, handle, to, signal), name, dep_type, kind)| {
                use Request::*;
                let from = handle;
                match which {
                    0 => QueryVersion,
                    1 => FindService { name },
                    2 => LoadService { name },
                    3 => StartService { flags, handle },
                    4 => StopService { flags, handle },
                    5 => WakeService { flags, handle },
                    6 => ReleaseService { flags, handle },
                    7 => UnpinService { handle },
                    8 => ListServices,
                    9 => UnloadService { handle },
                    10 => Shutdown { kind },
                    11 => AddDep { dep_type, from, to },
                    12 => RemDep { dep_type, from, to },
                    13 => QueryLoadMech,
                    14 => EnableService { dep_type, from, to },
                    15 => QueryServiceName { handle },
                    16 => ReloadService { handle },
                    17 => SetEnv {
                        // Not starting with '=' (the daemon refuses that).
                        var: name
                            .into_iter()
                            .map(|b| if b == b'=' { b'v' } else { b })
                            .collect(),
                    },
                    18 => ServiceStatus { handle },
                    19 => SetTrigger {
                        handle,
                        value: flags,
                    },
                    20 => CatLog { flags, handle },
                    21 => Signal { signal, handle },
                    22 => QueryServiceDscDir {
                        reserved: flags,
                        handle,
                    },
                    23 => CloseHandle { handle },
                    24 => GetAllEnv,
                    25 => ListServices5,
                    26 => ServiceStatus5 { handle },
                    27 => ListenEnv,
                    28 => ServiceStatus6 { handle },
                    _ => EnableServiceV7 { dep_type, from, to },
                }
            },
        )
}

/// Reply codes the codec does not know (below the information packets).
fn unknown_reply_codes() -> Vec<u8> {
    (0..100u8)
        .filter(|&c| {
            let mut buf = vec![c];
            buf.extend_from_slice(&[0; 64]);
            matches!(
                Reply::decode(&buf, StatusVersion::V6),
                Ok((Reply::Unknown(_), 1))
            )
        })
        .collect()
}

/// A reply whose status buffers (if any) are in `version`'s layout.
fn reply(version: StatusVersion) -> impl Strategy<Value = Reply> {
    (
        0u8..27,
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u8>()),
        (state(), state()),
        status(version),
        (bytes(300), prop::collection::vec(bytes(40), 0..6)),
        prop::collection::vec(any::<u32>(), 0..40),
        select(unknown_reply_codes()),
    )
        .prop_map(
            move |(
                which,
                (a, b, handle, byte),
                (st, target),
                status,
                (data, dirs),
                handles,
                unknown,
            )| {
                use Reply::*;
                match which {
                    0 => Ack,
                    1 => Nak,
                    2 => BadReq,
                    3 => Oom,
                    4 => CpVersion {
                        min_compat: a,
                        version: b,
                    },
                    5 => ServiceRecord {
                        state: st,
                        handle,
                        target,
                    },
                    6 => NoService,
                    7 => AlreadySs,
                    8 => SvcInfo {
                        version,
                        status,
                        name: data.into_iter().take(255).collect(),
                    },
                    9 => ListDone,
                    10 => LoaderMech { cwd: data, dirs },
                    11 => Dependents { handles },
                    12 => ServiceName { name: data },
                    13 => PinnedStopped,
                    14 => PinnedStarted,
                    15 => ShuttingDown,
                    16 => ServiceStatus {
                        version,
                        reserved: byte,
                        status,
                    },
                    17 => ServiceDescErr,
                    18 => ServiceLoadErr,
                    19 => ServiceLog { flags: byte, data },
                    20 => SignalNoPid,
                    21 => SignalBadSig,
                    22 => SignalKillErr,
                    23 => SvcDscDir { dir: data },
                    24 => AllEnv { block: data },
                    25 => PreAck,
                    _ => Unknown(unknown),
                }
            },
        )
}

fn info() -> impl Strategy<Value = Info> {
    (
        0u8..4,
        (any::<u32>(), select(all(ServiceEvent::from_code))),
        (status(StatusVersion::V1), status(StatusVersion::V5)),
        (any::<bool>(), bytes(300)),
        (103u8..=255, bytes(253)),
    )
        .prop_map(
            |(which, (handle, event), (s1, s5), (overridden, var), (code, payload))| match which {
                0 => Info::ServiceEvent {
                    handle,
                    event,
                    status: s1,
                },
                1 => Info::ServiceEvent5 {
                    handle,
                    event,
                    status: s5,
                },
                2 => Info::EnvEvent { overridden, var },
                _ => Info::Unknown { code, payload },
            },
        )
}

fn incoming(version: StatusVersion) -> impl Strategy<Value = Incoming> {
    prop_oneof![
        reply(version).prop_map(Incoming::Reply),
        info().prop_map(Incoming::Info),
    ]
}

fn encode_incoming(p: &Incoming) -> Vec<u8> {
    match p {
        Incoming::Reply(r) => r.to_bytes(),
        Incoming::Info(i) => i.to_bytes(),
    }
}

// ---------------------------------------------------------------------------
// Strategies: near-valid byte streams.

/// One damage done to a valid stream.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the stream at this point (a packet cut in half).
    Truncate(Index),
    /// Replace one byte.
    Set(Index, u8),
    /// Overwrite a length-sized field with a lying value.
    Lie(Index, Lie),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove a byte.
    Remove(Index),
}

/// A value written over 2, 4 or 8 bytes to make a length or count lie.
#[derive(Debug, Clone, Copy)]
enum Lie {
    U16(u16),
    U32(u32),
    Usize(usize),
}

fn lie() -> impl Strategy<Value = Lie> {
    let huge32 = select(vec![
        0,
        1,
        255,
        256,
        u32::MAX,
        u32::MAX / 4 + 1,
        i32::MAX as u32,
        MAX_REPLY_LEN as u32,
        MAX_REPLY_LEN as u32 + 1,
        RECEIVE_BUFFER_SIZE as u32,
    ]);
    let huge_usize = select(vec![
        0,
        usize::MAX,
        usize::MAX / 4 + 1,
        MAX_REPLY_LEN,
        MAX_REPLY_LEN + 1,
        MAX_REPLY_LEN / 4,
        MAX_REPLY_LEN / 4 + 1,
    ]);
    prop_oneof![
        prop_oneof![
            Just(0u16),
            Just(u16::MAX),
            Just(MAX_NAME_LEN as u16),
            Just(MAX_NAME_LEN as u16 + 1),
            any::<u16>()
        ]
        .prop_map(Lie::U16),
        prop_oneof![huge32, any::<u32>()].prop_map(Lie::U32),
        prop_oneof![huge_usize, any::<usize>()].prop_map(Lie::Usize),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), lie()).prop_map(|(i, l)| Mutation::Lie(i, l)),
        (any::<Index>(), bytes(16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut buf: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if buf.is_empty() {
            break;
        }
        let at = |i: &Index, len: usize| i.index(len);
        match m {
            Mutation::Truncate(i) => {
                let n = at(i, buf.len());
                buf.truncate(n);
            }
            Mutation::Set(i, b) => {
                let n = at(i, buf.len());
                buf[n] = *b;
            }
            Mutation::Lie(i, lie) => {
                let bytes = match *lie {
                    Lie::U16(v) => v.to_ne_bytes().to_vec(),
                    Lie::U32(v) => v.to_ne_bytes().to_vec(),
                    Lie::Usize(v) => v.to_ne_bytes().to_vec(),
                };
                let n = at(i, buf.len());
                let end = (n + bytes.len()).min(buf.len());
                buf[n..end].copy_from_slice(&bytes[..end - n]);
            }
            Mutation::Insert(i, b) => {
                let n = at(i, buf.len() + 1);
                buf.splice(n..n, b.iter().copied());
            }
            Mutation::Remove(i) => {
                let n = at(i, buf.len());
                buf.remove(n);
            }
        }
    }
    buf
}

/// How a stream is cut into reads: sizes, used in turn (cycled).
fn chunking() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![1]),
        prop::collection::vec(1usize..64, 1..8),
        prop::collection::vec(1usize..2048, 1..4),
    ]
}

// ---------------------------------------------------------------------------
// Checks.

/// A packet decoder over a byte buffer.
type Decode<'a, P> = &'a dyn Fn(&[u8]) -> Result<(P, usize), DecodeError>;

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was used.
    Clean,
    /// Bytes are left that begin a packet.
    Incomplete,
    /// The bytes at this point are not a packet.
    Malformed,
}

/// Decodes `buf` at once, packet after packet, checking each step's
/// bounds. `max_needed` caps what an `Incomplete` may ask for, and
/// `weight` estimates the heap bytes a packet holds.
fn decode_stream<P>(
    buf: &[u8],
    decode: Decode<'_, P>,
    max_needed: usize,
    weight: &dyn Fn(&P) -> usize,
) -> Result<(Vec<P>, End), TestCaseError> {
    let mut packets = Vec::new();
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        match decode(rest) {
            Ok((p, n)) => {
                prop_assert!(
                    n >= 1 && n <= rest.len(),
                    "used {n} of {} bytes",
                    rest.len()
                );
                let w = weight(&p);
                prop_assert!(
                    w <= 8 * n + 64,
                    "a {n}-byte packet holds about {w} bytes of data"
                );
                packets.push(p);
                at += n;
            }
            Err(DecodeError::Incomplete { needed }) => {
                prop_assert!(
                    needed > rest.len(),
                    "Incomplete asks for {needed} with {} bytes given",
                    rest.len()
                );
                prop_assert!(
                    needed <= max_needed,
                    "Incomplete asks for {needed} bytes (cap {max_needed})"
                );
                let end = if rest.is_empty() {
                    End::Clean
                } else {
                    End::Incomplete
                };
                return Ok((packets, end));
            }
            Err(DecodeError::Malformed(why)) => {
                prop_assert!(!why.is_empty());
                return Ok((packets, End::Malformed));
            }
        }
    }
}

/// Decodes `buf` as a reader would receive it, in reads of `chunks` sizes
/// (cycled), decoding after each read as far as possible.
fn decode_incrementally<P>(buf: &[u8], decode: Decode<'_, P>, chunks: &[usize]) -> (Vec<P>, End) {
    let mut packets = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < buf.len() {
        let n = (*sizes.next().unwrap_or(&1)).min(buf.len() - at);
        pending.extend_from_slice(&buf[at..at + n]);
        at += n;
        loop {
            match decode(&pending) {
                Ok((p, used)) => {
                    packets.push(p);
                    pending.drain(..used);
                }
                Err(DecodeError::Incomplete { .. }) => break,
                Err(DecodeError::Malformed(_)) => return (packets, End::Malformed),
            }
        }
    }
    let end = if pending.is_empty() {
        End::Clean
    } else {
        End::Incomplete
    };
    (packets, end)
}

/// All the stream properties for one input.
fn check_stream<P: PartialEq + std::fmt::Debug>(
    buf: &[u8],
    decode: Decode<'_, P>,
    max_needed: usize,
    weight: &dyn Fn(&P) -> usize,
    chunks: &[usize],
) -> Result<(), TestCaseError> {
    let whole = decode_stream(buf, decode, max_needed, weight)?;
    let pieces = decode_incrementally(buf, decode, chunks);
    prop_assert_eq!(&whole, &pieces, "all at once vs in reads of {:?}", chunks);
    Ok(())
}

/// Every strict prefix of a packet's encoding is `Incomplete`, asking for
/// more than it holds and no more than the whole.
fn check_prefixes<P: std::fmt::Debug>(
    bytes: &[u8],
    decode: Decode<'_, P>,
) -> Result<(), TestCaseError> {
    for k in 0..bytes.len() {
        match decode(&bytes[..k]) {
            Err(DecodeError::Incomplete { needed }) => {
                prop_assert!(
                    needed > k && needed <= bytes.len(),
                    "prefix {k}: needs {needed}"
                );
            }
            other => prop_assert!(false, "prefix of {k} bytes decoded as {other:?}"),
        }
    }
    Ok(())
}

fn request_weight(r: &Request) -> usize {
    match r {
        Request::FindService { name } | Request::LoadService { name } => name.len(),
        Request::SetEnv { var } => var.len(),
        _ => 0,
    }
}

fn reply_weight(r: &Reply) -> usize {
    match r {
        Reply::SvcInfo { name, .. } | Reply::ServiceName { name } => name.len(),
        Reply::LoaderMech { cwd, dirs } => {
            cwd.len() + dirs.iter().map(|d| d.len() + 24).sum::<usize>()
        }
        Reply::Dependents { handles } => handles.len() * 4,
        Reply::ServiceLog { data, .. } => data.len(),
        Reply::SvcDscDir { dir } => dir.len(),
        Reply::AllEnv { block } => block.len(),
        _ => 0,
    }
}

fn info_weight(i: &Info) -> usize {
    match i {
        Info::EnvEvent { var, .. } => var.len(),
        Info::Unknown { payload, .. } => payload.len(),
        _ => 0,
    }
}

fn incoming_weight(p: &Incoming) -> usize {
    match p {
        Incoming::Reply(r) => reply_weight(r),
        Incoming::Info(i) => info_weight(i),
    }
}

fn decode_request(b: &[u8]) -> Result<(Request, usize), DecodeError> {
    Request::decode(b)
}

/// Most a client may be asked to buffer for one packet.
const CLIENT_MAX_NEEDED: usize = MAX_REPLY_LEN + 64;

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    /// Every request round-trips and its prefixes are incomplete.
    #[test]
    fn fuzz_request_round_trip(req in request()) {
        guarded(&req, || {
            let bytes = req.to_bytes();
            prop_assert!(bytes.len() <= RECEIVE_BUFFER_SIZE);
            prop_assert_eq!(Request::decode(&bytes), Ok((req.clone(), bytes.len())));
            check_prefixes(&bytes, &decode_request)
        })?;
    }

    /// Every reply round-trips (in the status layout it was made for).
    #[test]
    fn fuzz_reply_round_trip(v in version(), reply in version().prop_flat_map(reply)) {
        // `reply` carries its own layout; `v` only matters for replies
        // without a status buffer, which must decode the same under any.
        guarded(&reply, || {
            let layout = match &reply {
                Reply::SvcInfo { version, .. } | Reply::ServiceStatus { version, .. } => *version,
                _ => v,
            };
            let bytes = reply.to_bytes();
            prop_assert_eq!(
                Reply::decode(&bytes, layout),
                Ok((reply.clone(), bytes.len()))
            );
            prop_assert_eq!(
                Incoming::decode(&bytes, layout),
                Ok((Incoming::Reply(reply.clone()), bytes.len()))
            );
            check_prefixes(&bytes, &|b| Reply::decode(b, layout))
        })?;
    }

    /// Every information packet round-trips.
    #[test]
    fn fuzz_info_round_trip(info in info(), v in version()) {
        guarded(&info, || {
            let bytes = info.to_bytes();
            prop_assert_eq!(Info::decode(&bytes), Ok((info.clone(), bytes.len())));
            prop_assert_eq!(
                Incoming::decode(&bytes, v),
                Ok((Incoming::Info(info.clone()), bytes.len()))
            );
            check_prefixes(&bytes, &Info::decode)
        })?;
    }

    /// The daemon side on random bytes.
    #[test]
    fn fuzz_request_random_bytes(buf in bytes(1100), chunks in chunking()) {
        guarded(&buf, || {
            check_stream(&buf, &decode_request, RECEIVE_BUFFER_SIZE, &request_weight, &chunks)
        })?;
    }

    /// The daemon side on valid requests damaged: lying lengths, cut
    /// packets, changed bytes.
    #[test]
    fn fuzz_request_near_valid(
        reqs in prop::collection::vec(request(), 1..5),
        mutations in prop::collection::vec(mutation(), 0..4),
        chunks in chunking(),
    ) {
        let buf = mutate(reqs.iter().flat_map(Request::to_bytes).collect(), &mutations);
        guarded(&buf, || {
            check_stream(&buf, &decode_request, RECEIVE_BUFFER_SIZE, &request_weight, &chunks)
        })?;
    }

    /// The client side on random bytes, under every status layout.
    #[test]
    fn fuzz_incoming_random_bytes(buf in bytes(600), v in version(), chunks in chunking()) {
        guarded(&buf, || {
            check_stream(
                &buf,
                &|b| Incoming::decode(b, v),
                CLIENT_MAX_NEEDED,
                &incoming_weight,
                &chunks,
            )?;
            // Each decoder alone keeps its bounds too.
            decode_stream(&buf, &|b| Reply::decode(b, v), CLIENT_MAX_NEEDED, &reply_weight)?;
            decode_stream(&buf, &Info::decode, CLIENT_MAX_NEEDED, &info_weight)?;
            Ok::<(), TestCaseError>(())
        })?;
    }

    /// The client side on valid replies and information packets, damaged.
    #[test]
    fn fuzz_incoming_near_valid(
        (v, packets) in version().prop_flat_map(|v| {
            (Just(v), prop::collection::vec(incoming(v), 1..5))
        }),
        mutations in prop::collection::vec(mutation(), 0..4),
        chunks in chunking(),
    ) {
        let valid: Vec<u8> = packets.iter().flat_map(encode_incoming).collect();
        // Undamaged, the stream decodes to exactly the packets sent.
        let (decoded, end) = decode_stream(
            &valid,
            &|b| Incoming::decode(b, v),
            CLIENT_MAX_NEEDED,
            &incoming_weight,
        )?;
        prop_assert_eq!(&decoded, &packets);
        prop_assert_eq!(end, End::Clean);
        let buf = mutate(valid, &mutations);
        guarded(&buf, || {
            check_stream(
                &buf,
                &|b| Incoming::decode(b, v),
                CLIENT_MAX_NEEDED,
                &incoming_weight,
                &chunks,
            )
        })?;
    }

    /// A status buffer standing alone: any bytes decode or fail cleanly,
    /// and a valid one round-trips.
    #[test]
    fn fuzz_status_buffer(buf in bytes(40), v in version()) {
        guarded(&buf, || {
            match Status::decode(v, &buf) {
                Ok(st) => {
                    prop_assert!(buf.len() >= v.size());
                    let mut again = Vec::new();
                    st.encode(v, &mut again);
                    prop_assert_eq!(&again[..], &buf[..v.size()]);
                }
                Err(DecodeError::Incomplete { needed }) => {
                    prop_assert!(needed > buf.len() && needed <= v.size());
                }
                Err(DecodeError::Malformed(_)) => {}
            }
            Ok(())
        })?;
    }
}

/// A LOADER_MECH reply whose directory count lies (u32::MAX directories in
/// a short packet) is refused without reserving room for them.
#[test]
fn loader_mech_with_a_lying_directory_count() {
    let mut bytes = Reply::LoaderMech {
        cwd: b"/".to_vec(),
        dirs: vec![b"/d".to_vec()],
    }
    .to_bytes();
    // type, loader type, total length u32, then the count.
    bytes[6..10].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(matches!(
        Reply::decode(&bytes, StatusVersion::V1),
        Err(DecodeError::Malformed(_))
    ));
}
