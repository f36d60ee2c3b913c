//! Replies and information packets: what the daemon sends and a client
//! decodes.

use super::{
    info, rply, DecodeError, Handle, Reader, ServiceEvent, ServiceState, Status, StatusVersion,
    MAX_REPLY_LEN,
};

/// A reply packet (type below 100): exactly one per request, except LIST
/// which yields SVCINFO packets then LISTDONE, and PREACK which precedes the
/// real reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Nak,
    BadReq,
    Oom,
    CpVersion {
        min_compat: u16,
        version: u16,
    },
    ServiceRecord {
        state: ServiceState,
        handle: Handle,
        target: ServiceState,
    },
    NoService,
    AlreadySs,
    /// One service of a listing; the name is at most 255 bytes when encoded.
    SvcInfo {
        version: StatusVersion,
        status: Status,
        name: Vec<u8>,
    },
    ListDone,
    /// The directory loader's configuration (loader type 1 is the only one).
    LoaderMech {
        cwd: Vec<u8>,
        dirs: Vec<Vec<u8>>,
    },
    Dependents {
        handles: Vec<Handle>,
    },
    ServiceName {
        name: Vec<u8>,
    },
    PinnedStopped,
    PinnedStarted,
    ShuttingDown,
    /// `reserved` is 0, except in reply to ENABLE_SERVICE_V7 where 1 says
    /// that the dependency existed already.
    ServiceStatus {
        version: StatusVersion,
        reserved: u8,
        status: Status,
    },
    ServiceDescErr,
    ServiceLoadErr,
    ServiceLog {
        flags: u8,
        data: Vec<u8>,
    },
    SignalNoPid,
    SignalBadSig,
    SignalKillErr,
    SvcDscDir {
        dir: Vec<u8>,
    },
    /// `NAME=VALUE\0` entries, concatenated.
    AllEnv {
        block: Vec<u8>,
    },
    PreAck,
    /// A reply type this codec does not know (1 byte; its layout is unknown,
    /// so a client can only report a protocol error).
    Unknown(u8),
}

/// The loader type of the directory-based service loader.
const DIRECTORY_LOADER: u8 = 1;

impl Reply {
    /// The packet-type byte.
    pub fn code(&self) -> u8 {
        use Reply::*;
        match self {
            Ack => rply::ACK,
            Nak => rply::NAK,
            BadReq => rply::BADREQ,
            Oom => rply::OOM,
            CpVersion { .. } => rply::CPVERSION,
            ServiceRecord { .. } => rply::SERVICERECORD,
            NoService => rply::NOSERVICE,
            AlreadySs => rply::ALREADYSS,
            SvcInfo { .. } => rply::SVCINFO,
            ListDone => rply::LISTDONE,
            LoaderMech { .. } => rply::LOADER_MECH,
            Dependents { .. } => rply::DEPENDENTS,
            ServiceName { .. } => rply::SERVICENAME,
            PinnedStopped => rply::PINNEDSTOPPED,
            PinnedStarted => rply::PINNEDSTARTED,
            ShuttingDown => rply::SHUTTINGDOWN,
            ServiceStatus { .. } => rply::SERVICESTATUS,
            ServiceDescErr => rply::SERVICE_DESC_ERR,
            ServiceLoadErr => rply::SERVICE_LOAD_ERR,
            ServiceLog { .. } => rply::SERVICE_LOG,
            SignalNoPid => rply::SIGNAL_NOPID,
            SignalBadSig => rply::SIGNAL_BADSIG,
            SignalKillErr => rply::SIGNAL_KILLERR,
            SvcDscDir { .. } => rply::SVCDSCDIR,
            AllEnv { .. } => rply::ALLENV,
            PreAck => rply::PREACK,
            Unknown(code) => *code,
        }
    }

    /// Appends the encoded packet.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use Reply::*;
        out.push(self.code());
        match self {
            CpVersion {
                min_compat,
                version,
            } => {
                out.extend_from_slice(&min_compat.to_ne_bytes());
                out.extend_from_slice(&version.to_ne_bytes());
            }
            ServiceRecord {
                state,
                handle,
                target,
            } => {
                out.push(state.code());
                out.extend_from_slice(&handle.to_ne_bytes());
                out.push(target.code());
            }
            SvcInfo {
                version,
                status,
                name,
            } => {
                // The length is one byte: longer names are cut (the real
                // daemon would corrupt the stream instead).
                let name = &name[..name.len().min(255)];
                out.push(name.len() as u8);
                status.encode(*version, out);
                out.extend_from_slice(name);
            }
            LoaderMech { cwd, dirs } => {
                let start = out.len() - 1;
                out.push(DIRECTORY_LOADER);
                out.extend_from_slice(&[0; 4]); // total length, patched below
                put_u32_len(out, dirs.len());
                put_u32_string(out, cwd);
                for dir in dirs {
                    put_u32_string(out, dir);
                }
                let total = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
                out[start + 2..start + 6].copy_from_slice(&total.to_ne_bytes());
            }
            Dependents { handles } => {
                out.extend_from_slice(&handles.len().to_ne_bytes());
                for h in handles {
                    out.extend_from_slice(&h.to_ne_bytes());
                }
            }
            ServiceName { name } => {
                let name = &name[..name.len().min(usize::from(u16::MAX))];
                out.push(0);
                out.extend_from_slice(&(name.len() as u16).to_ne_bytes());
                out.extend_from_slice(name);
            }
            ServiceStatus {
                version,
                reserved,
                status,
            } => {
                out.push(*reserved);
                status.encode(*version, out);
            }
            ServiceLog { flags, data } => {
                out.push(*flags);
                put_u32_string(out, data);
            }
            SvcDscDir { dir } => put_u32_string(out, dir),
            AllEnv { block } => {
                out.extend_from_slice(&block.len().to_ne_bytes());
                out.extend_from_slice(block);
            }
            Ack | Nak | BadReq | Oom | NoService | AlreadySs | ListDone | PinnedStopped
            | PinnedStarted | ShuttingDown | ServiceDescErr | ServiceLoadErr | SignalNoPid
            | SignalBadSig | SignalKillErr | PreAck | Unknown(_) => {}
        }
    }

    /// The encoded packet as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one reply from the start of `buf`. The status-buffer layout
    /// of SVCINFO and SERVICESTATUS replies is not in the packet: `status`
    /// says which one the request asked for.
    pub fn decode(buf: &[u8], status: StatusVersion) -> Result<(Reply, usize), DecodeError> {
        use Reply::*;
        let mut r = Reader::new(buf);
        let code = r.u8()?;
        if code >= info::SERVICEEVENT {
            return Err(DecodeError::Malformed(
                "information packet where a reply was expected",
            ));
        }
        let reply = match code {
            rply::ACK => Ack,
            rply::NAK => Nak,
            rply::BADREQ => BadReq,
            rply::OOM => Oom,
            rply::CPVERSION => CpVersion {
                min_compat: r.u16()?,
                version: r.u16()?,
            },
            rply::SERVICERECORD => ServiceRecord {
                state: state(r.u8()?)?,
                handle: r.u32()?,
                target: state(r.u8()?)?,
            },
            rply::NOSERVICE => NoService,
            rply::ALREADYSS => AlreadySs,
            rply::SVCINFO => {
                let name_len = usize::from(r.u8()?);
                let st = Status::read(status, &mut r)?;
                SvcInfo {
                    version: status,
                    status: st,
                    name: r.bytes(name_len)?.to_vec(),
                }
            }
            rply::LISTDONE => ListDone,
            rply::LOADER_MECH => {
                if r.u8()? != DIRECTORY_LOADER {
                    return Err(DecodeError::Malformed("unknown service loader type"));
                }
                let total = r.u32()? as usize;
                if total > MAX_REPLY_LEN {
                    return Err(DecodeError::Malformed("length exceeds limit"));
                }
                let packet = r.bytes(total.saturating_sub(r.pos()))?;
                // Everything must lie inside the announced length.
                let inside = |e| match e {
                    DecodeError::Incomplete { .. } => {
                        DecodeError::Malformed("loader packet overruns its length")
                    }
                    e => e,
                };
                let mut p = Reader::new(packet);
                let ndirs = p.u32().map_err(inside)?;
                let cwd = read_u32_string(&mut p).map_err(inside)?;
                let mut dirs = Vec::new();
                for _ in 0..ndirs {
                    dirs.push(read_u32_string(&mut p).map_err(inside)?);
                }
                if p.pos() != packet.len() {
                    return Err(DecodeError::Malformed("loader packet length mismatch"));
                }
                LoaderMech { cwd, dirs }
            }
            rply::DEPENDENTS => {
                let count = r.usize()?;
                if count > MAX_REPLY_LEN / 4 {
                    return Err(DecodeError::Malformed("length exceeds limit"));
                }
                let raw = r.bytes(count * 4)?;
                let handles = raw
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Dependents { handles }
            }
            rply::SERVICENAME => {
                let _reserved = r.u8()?;
                let len = usize::from(r.u16()?);
                ServiceName {
                    name: r.bytes(len)?.to_vec(),
                }
            }
            rply::PINNEDSTOPPED => PinnedStopped,
            rply::PINNEDSTARTED => PinnedStarted,
            rply::SHUTTINGDOWN => ShuttingDown,
            rply::SERVICESTATUS => {
                let reserved = r.u8()?;
                ServiceStatus {
                    version: status,
                    reserved,
                    status: Status::read(status, &mut r)?,
                }
            }
            rply::SERVICE_DESC_ERR => ServiceDescErr,
            rply::SERVICE_LOAD_ERR => ServiceLoadErr,
            rply::SERVICE_LOG => {
                let flags = r.u8()?;
                ServiceLog {
                    flags,
                    data: read_u32_string(&mut r)?,
                }
            }
            rply::SIGNAL_NOPID => SignalNoPid,
            rply::SIGNAL_BADSIG => SignalBadSig,
            rply::SIGNAL_KILLERR => SignalKillErr,
            rply::SVCDSCDIR => SvcDscDir {
                dir: read_u32_string(&mut r)?,
            },
            rply::ALLENV => {
                let len = r.usize()?;
                AllEnv {
                    block: r.sized(len, MAX_REPLY_LEN)?.to_vec(),
                }
            }
            rply::PREACK => PreAck,
            other => Unknown(other),
        };
        Ok((reply, r.pos()))
    }
}

/// An information packet (type 100 and above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info {
    /// SERVICEEVENT: v1 status buffer.
    ServiceEvent {
        handle: Handle,
        event: ServiceEvent,
        status: Status,
    },
    /// SERVICEEVENT5: v5 status buffer; sent before the v1 packet.
    ServiceEvent5 {
        handle: Handle,
        event: ServiceEvent,
        status: Status,
    },
    /// ENVEVENT: `var` is `NAME=VALUE` or `NAME` (without the NUL that the
    /// wire carries); `overridden` says whether the variable had a value.
    EnvEvent { overridden: bool, var: Vec<u8> },
    /// An information packet of unknown type, skipped by its length byte.
    Unknown { code: u8, payload: Vec<u8> },
}

/// Length of SERVICEEVENT: type, length, handle, event, v1 status.
const SERVICEEVENT_LEN: usize = 7 + 10;
/// Length of SERVICEEVENT5: type, length, handle, event, v5 status.
const SERVICEEVENT5_LEN: usize = 7 + 14;
/// The length byte of ENVEVENT: the header only, the data follows.
const ENVEVENT_HEADER_LEN: usize = 5;

impl Info {
    pub fn code(&self) -> u8 {
        match self {
            Info::ServiceEvent { .. } => info::SERVICEEVENT,
            Info::ServiceEvent5 { .. } => info::SERVICEEVENT5,
            Info::EnvEvent { .. } => info::ENVEVENT,
            Info::Unknown { code, .. } => *code,
        }
    }

    /// Appends the encoded packet.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
        match self {
            Info::ServiceEvent {
                handle,
                event,
                status,
            }
            | Info::ServiceEvent5 {
                handle,
                event,
                status,
            } => {
                let (len, version) = match self {
                    Info::ServiceEvent { .. } => (SERVICEEVENT_LEN, StatusVersion::V1),
                    _ => (SERVICEEVENT5_LEN, StatusVersion::V5),
                };
                out.push(len as u8);
                out.extend_from_slice(&handle.to_ne_bytes());
                out.push(event.code());
                status.encode(version, out);
            }
            Info::EnvEvent { overridden, var } => {
                // The NUL is counted, so at most u16::MAX - 1 bytes of text.
                let var = &var[..var.len().min(usize::from(u16::MAX) - 1)];
                out.push(ENVEVENT_HEADER_LEN as u8);
                out.push(u8::from(*overridden));
                out.extend_from_slice(&((var.len() + 1) as u16).to_ne_bytes());
                out.extend_from_slice(var);
                out.push(0);
            }
            Info::Unknown { payload, .. } => {
                let payload = &payload[..payload.len().min(253)];
                out.push((payload.len() + 2) as u8);
                out.extend_from_slice(payload);
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one information packet from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<(Info, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let code = r.u8()?;
        if code < info::SERVICEEVENT {
            return Err(DecodeError::Malformed(
                "reply where an information packet was expected",
            ));
        }
        let len = usize::from(r.u8()?);
        if code == info::ENVEVENT {
            if len != ENVEVENT_HEADER_LEN {
                return Err(DecodeError::Malformed("bad ENVEVENT header length"));
            }
            let overridden = r.u8()? != 0;
            let data_len = usize::from(r.u16()?);
            let data = r.bytes(data_len)?;
            let var = match data.split_last() {
                Some((0, text)) => text.to_vec(),
                _ => return Err(DecodeError::Malformed("ENVEVENT data not NUL-terminated")),
            };
            return Ok((Info::EnvEvent { overridden, var }, r.pos()));
        }
        if len < 2 {
            return Err(DecodeError::Malformed(
                "information packet length too small",
            ));
        }
        // The length byte counts the whole packet, header included.
        let packet = Reader::new(buf).bytes(len)?;
        let (min_len, version) = match code {
            info::SERVICEEVENT => (SERVICEEVENT_LEN, StatusVersion::V1),
            info::SERVICEEVENT5 => (SERVICEEVENT5_LEN, StatusVersion::V5),
            _ => {
                return Ok((
                    Info::Unknown {
                        code,
                        payload: packet[2..].to_vec(),
                    },
                    len,
                ))
            }
        };
        if len < min_len {
            return Err(DecodeError::Malformed("service event packet too short"));
        }
        let mut p = Reader::new(&packet[2..]);
        let handle = p.u32()?;
        let event =
            ServiceEvent::from_code(p.u8()?).ok_or(DecodeError::Malformed("bad service event"))?;
        let status = Status::read(version, &mut p)?;
        let info = if code == info::SERVICEEVENT {
            Info::ServiceEvent {
                handle,
                event,
                status,
            }
        } else {
            Info::ServiceEvent5 {
                handle,
                event,
                status,
            }
        };
        Ok((info, len))
    }
}

/// Whatever a client may receive next: a reply, or an information packet
/// that came first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Reply(Reply),
    Info(Info),
}

impl Incoming {
    /// Decodes the next packet a client receives; `status` as for
    /// [`Reply::decode`].
    pub fn decode(buf: &[u8], status: StatusVersion) -> Result<(Incoming, usize), DecodeError> {
        match buf.first() {
            None => Err(DecodeError::Incomplete { needed: 1 }),
            Some(&code) if code >= info::SERVICEEVENT => {
                Info::decode(buf).map(|(i, n)| (Incoming::Info(i), n))
            }
            Some(_) => Reply::decode(buf, status).map(|(r, n)| (Incoming::Reply(r), n)),
        }
    }
}

fn state(code: u8) -> Result<ServiceState, DecodeError> {
    ServiceState::from_code(code).ok_or(DecodeError::Malformed("bad service state"))
}

fn put_u32_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
}

/// `[len u32][bytes]`; strings beyond 4 GiB are cut (none can be sent).
fn put_u32_string(out: &mut Vec<u8>, s: &[u8]) {
    let s = &s[..s.len().min(u32::MAX as usize)];
    put_u32_len(out, s.len());
    out.extend_from_slice(s);
}

fn read_u32_string(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let len = r.u32()? as usize;
    Ok(r.sized(len, MAX_REPLY_LEN)?.to_vec())
}
