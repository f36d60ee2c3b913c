//! Requests: what a client sends and the daemon decodes.

use super::{
    cmd, valid_service_name, DecodeError, DependencyType, Handle, Reader, ShutdownType,
    MAX_NAME_LEN,
};

/// Flag bits of START/STOP/WAKE/RELEASE requests.
pub mod start_flags {
    /// Pin the service in the requested state.
    pub const PIN: u8 = 1;
    /// STOPSERVICE: refuse (DEPENDENTS reply) if hard dependents would stop.
    pub const GENTLE: u8 = 2;
    /// STOPSERVICE: restart instead of stopping.
    pub const RESTART: u8 = 4;
    /// Send PREACK before acting, so that events queued before it predate
    /// the command.
    pub const PREACK: u8 = 128;
}

/// A request packet. Names and environment entries are raw bytes (the
/// daemon does not require UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    QueryVersion,
    /// Find an already loaded service.
    FindService {
        name: Vec<u8>,
    },
    /// Find a service, loading it if needed.
    LoadService {
        name: Vec<u8>,
    },
    StartService {
        flags: u8,
        handle: Handle,
    },
    StopService {
        flags: u8,
        handle: Handle,
    },
    WakeService {
        flags: u8,
        handle: Handle,
    },
    ReleaseService {
        flags: u8,
        handle: Handle,
    },
    UnpinService {
        handle: Handle,
    },
    /// List services with v1 status buffers.
    ListServices,
    UnloadService {
        handle: Handle,
    },
    Shutdown {
        kind: ShutdownType,
    },
    AddDep {
        dep_type: DependencyType,
        from: Handle,
        to: Handle,
    },
    RemDep {
        dep_type: DependencyType,
        from: Handle,
        to: Handle,
    },
    QueryLoadMech,
    /// Add a dependency and start it if `from` is running; replies ACK.
    EnableService {
        dep_type: DependencyType,
        from: Handle,
        to: Handle,
    },
    QueryServiceName {
        handle: Handle,
    },
    ReloadService {
        handle: Handle,
    },
    /// `NAME=VALUE` sets, `NAME` unsets.
    SetEnv {
        var: Vec<u8>,
    },
    /// Status with a v1 buffer.
    ServiceStatus {
        handle: Handle,
    },
    SetTrigger {
        handle: Handle,
        value: u8,
    },
    /// Bit 0 of `flags`: clear the buffer after reading.
    CatLog {
        flags: u8,
        handle: Handle,
    },
    Signal {
        signal: i32,
        handle: Handle,
    },
    /// The daemon NAKs a non-zero `reserved` byte, so it is kept.
    QueryServiceDscDir {
        reserved: u8,
        handle: Handle,
    },
    CloseHandle {
        handle: Handle,
    },
    GetAllEnv,
    /// List services with v5 status buffers.
    ListServices5,
    ServiceStatus5 {
        handle: Handle,
    },
    /// Subscribe to ENVEVENT packets.
    ListenEnv,
    ServiceStatus6 {
        handle: Handle,
    },
    /// As `EnableService`, but replies SERVICESTATUS with a v6 buffer.
    EnableServiceV7 {
        dep_type: DependencyType,
        from: Handle,
        to: Handle,
    },
    /// braid only: follow the log buffer of the loaded service `name`,
    /// without holding a handle (so it does not keep the service loaded).
    /// Answered NOSERVICE, NAK (no log buffer) or SERVICE_LOG with the
    /// buffer's contents; then every later SERVICE_LOG packet carries what
    /// the service wrote since the previous one. The daemon closes the
    /// connection when the service is unloaded.
    BraidFollowLog {
        name: Vec<u8>,
    },
}

impl Request {
    /// The packet-type byte.
    pub fn code(&self) -> u8 {
        use Request::*;
        match self {
            QueryVersion => cmd::QUERYVERSION,
            FindService { .. } => cmd::FINDSERVICE,
            LoadService { .. } => cmd::LOADSERVICE,
            StartService { .. } => cmd::STARTSERVICE,
            StopService { .. } => cmd::STOPSERVICE,
            WakeService { .. } => cmd::WAKESERVICE,
            ReleaseService { .. } => cmd::RELEASESERVICE,
            UnpinService { .. } => cmd::UNPINSERVICE,
            ListServices => cmd::LISTSERVICES,
            UnloadService { .. } => cmd::UNLOADSERVICE,
            Shutdown { .. } => cmd::SHUTDOWN,
            AddDep { .. } => cmd::ADD_DEP,
            RemDep { .. } => cmd::REM_DEP,
            QueryLoadMech => cmd::QUERY_LOAD_MECH,
            EnableService { .. } => cmd::ENABLESERVICE,
            QueryServiceName { .. } => cmd::QUERYSERVICENAME,
            ReloadService { .. } => cmd::RELOADSERVICE,
            SetEnv { .. } => cmd::SETENV,
            ServiceStatus { .. } => cmd::SERVICESTATUS,
            SetTrigger { .. } => cmd::SETTRIGGER,
            CatLog { .. } => cmd::CATLOG,
            Signal { .. } => cmd::SIGNAL,
            QueryServiceDscDir { .. } => cmd::QUERYSERVICEDSCDIR,
            CloseHandle { .. } => cmd::CLOSEHANDLE,
            GetAllEnv => cmd::GETALLENV,
            ListServices5 => cmd::LISTSERVICES5,
            ServiceStatus5 { .. } => cmd::SERVICESTATUS5,
            ListenEnv => cmd::LISTENENV,
            ServiceStatus6 { .. } => cmd::SERVICESTATUS6,
            EnableServiceV7 { .. } => cmd::ENABLE_SERVICE_V7,
            BraidFollowLog { .. } => cmd::BRAID_FOLLOWLOG,
        }
    }

    /// Appends the encoded packet. A name or variable longer than a u16 can
    /// count is truncated (callers check `MAX_NAME_LEN` first, as the daemon
    /// refuses anything longer anyway).
    pub fn encode(&self, out: &mut Vec<u8>) {
        use Request::*;
        out.push(self.code());
        match self {
            QueryVersion | ListServices | QueryLoadMech | ListServices5 | ListenEnv => {}
            GetAllEnv => out.push(0),
            FindService { name } | LoadService { name } | BraidFollowLog { name } => {
                put_string(out, name)
            }
            SetEnv { var } => put_string(out, var),
            StartService { flags, handle }
            | StopService { flags, handle }
            | WakeService { flags, handle }
            | ReleaseService { flags, handle }
            | CatLog { flags, handle } => {
                out.push(*flags);
                out.extend_from_slice(&handle.to_ne_bytes());
            }
            UnpinService { handle }
            | UnloadService { handle }
            | ReloadService { handle }
            | ServiceStatus { handle }
            | CloseHandle { handle }
            | ServiceStatus5 { handle }
            | ServiceStatus6 { handle } => out.extend_from_slice(&handle.to_ne_bytes()),
            Shutdown { kind } => out.push(kind.code()),
            AddDep { dep_type, from, to }
            | RemDep { dep_type, from, to }
            | EnableService { dep_type, from, to }
            | EnableServiceV7 { dep_type, from, to } => {
                out.push(dep_type.code());
                out.extend_from_slice(&from.to_ne_bytes());
                out.extend_from_slice(&to.to_ne_bytes());
            }
            QueryServiceName { handle } => {
                out.push(0);
                out.extend_from_slice(&handle.to_ne_bytes());
            }
            QueryServiceDscDir { reserved, handle } => {
                out.push(*reserved);
                out.extend_from_slice(&handle.to_ne_bytes());
            }
            SetTrigger { handle, value } => {
                out.extend_from_slice(&handle.to_ne_bytes());
                out.push(*value);
            }
            Signal { signal, handle } => {
                out.extend_from_slice(&signal.to_ne_bytes());
                out.extend_from_slice(&handle.to_ne_bytes());
            }
        }
    }

    /// The encoded packet as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one request from the start of `buf`, returning it and its
    /// length. Anything the daemon answers with BADREQ whatever its state
    /// (unknown type, bad lengths, invalid names, shutdown or dependency
    /// types, a leading `=` in SETENV, a non-zero GETALLENV reserved byte)
    /// is `Malformed`. Handle validity is for the caller to check.
    pub fn decode(buf: &[u8]) -> Result<(Request, usize), DecodeError> {
        use Request::*;
        let mut r = Reader::new(buf);
        let code = r.u8()?;
        let req = match code {
            cmd::QUERYVERSION => QueryVersion,
            cmd::FINDSERVICE | cmd::LOADSERVICE | cmd::BRAID_FOLLOWLOG => {
                let name = read_string(&mut r)?;
                if !valid_service_name(name) {
                    return Err(DecodeError::Malformed("invalid service name"));
                }
                let name = name.to_vec();
                match code {
                    cmd::FINDSERVICE => FindService { name },
                    cmd::LOADSERVICE => LoadService { name },
                    _ => BraidFollowLog { name },
                }
            }
            cmd::STARTSERVICE | cmd::STOPSERVICE | cmd::WAKESERVICE | cmd::RELEASESERVICE => {
                let flags = r.u8()?;
                let handle = r.u32()?;
                match code {
                    cmd::STARTSERVICE => StartService { flags, handle },
                    cmd::STOPSERVICE => StopService { flags, handle },
                    cmd::WAKESERVICE => WakeService { flags, handle },
                    _ => ReleaseService { flags, handle },
                }
            }
            cmd::UNPINSERVICE => UnpinService { handle: r.u32()? },
            cmd::LISTSERVICES => ListServices,
            cmd::UNLOADSERVICE => UnloadService { handle: r.u32()? },
            cmd::SHUTDOWN => Shutdown {
                kind: ShutdownType::from_code(r.u8()?)
                    .ok_or(DecodeError::Malformed("bad shutdown type"))?,
            },
            cmd::ADD_DEP | cmd::REM_DEP | cmd::ENABLESERVICE | cmd::ENABLE_SERVICE_V7 => {
                let dep_type = r.u8()?;
                let from = r.u32()?;
                let to = r.u32()?;
                let dep_type = DependencyType::from_code(dep_type)
                    .filter(|t| t.allowed_in_requests())
                    .ok_or(DecodeError::Malformed("bad dependency type"))?;
                match code {
                    cmd::ADD_DEP => AddDep { dep_type, from, to },
                    cmd::REM_DEP => RemDep { dep_type, from, to },
                    cmd::ENABLESERVICE => EnableService { dep_type, from, to },
                    _ => EnableServiceV7 { dep_type, from, to },
                }
            }
            cmd::QUERY_LOAD_MECH => QueryLoadMech,
            cmd::QUERYSERVICENAME => {
                let _reserved = r.u8()?;
                QueryServiceName { handle: r.u32()? }
            }
            cmd::RELOADSERVICE => ReloadService { handle: r.u32()? },
            cmd::SETENV => {
                let var = read_string(&mut r)?;
                if var.first() == Some(&b'=') {
                    return Err(DecodeError::Malformed("environment entry starts with '='"));
                }
                SetEnv { var: var.to_vec() }
            }
            cmd::SERVICESTATUS => ServiceStatus { handle: r.u32()? },
            cmd::SETTRIGGER => SetTrigger {
                handle: r.u32()?,
                value: r.u8()?,
            },
            cmd::CATLOG => CatLog {
                flags: r.u8()?,
                handle: r.u32()?,
            },
            cmd::SIGNAL => Signal {
                signal: r.i32()?,
                handle: r.u32()?,
            },
            cmd::QUERYSERVICEDSCDIR => QueryServiceDscDir {
                reserved: r.u8()?,
                handle: r.u32()?,
            },
            cmd::CLOSEHANDLE => CloseHandle { handle: r.u32()? },
            cmd::GETALLENV => {
                if r.u8()? != 0 {
                    return Err(DecodeError::Malformed("GETALLENV reserved byte not zero"));
                }
                GetAllEnv
            }
            cmd::LISTSERVICES5 => ListServices5,
            cmd::SERVICESTATUS5 => ServiceStatus5 { handle: r.u32()? },
            cmd::LISTENENV => ListenEnv,
            cmd::SERVICESTATUS6 => ServiceStatus6 { handle: r.u32()? },
            _ => return Err(DecodeError::Malformed("unknown command")),
        };
        Ok((req, r.pos()))
    }
}

/// `[len u16][bytes]`, with the daemon's bounds: 1 ≤ len ≤ 1021.
fn read_string<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = usize::from(r.u16()?);
    if len == 0 || len > MAX_NAME_LEN {
        return Err(DecodeError::Malformed("name length out of range"));
    }
    r.bytes(len)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let s = &s[..s.len().min(usize::from(u16::MAX))];
    // The truncation above makes the conversion lossless.
    let len = s.len() as u16;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(s);
}
