//! One control connection: its buffers, its service handles, and the
//! answer to every request, as the real daemon answers it.
//!
//! Requests are taken one at a time from the receive buffer (at most 1024
//! bytes, like dinit's). Engine effects a request causes are carried out
//! before its reply is queued, so the service events it produces come
//! first, as they do from dinit. A malformed request is answered BADREQ
//! and the connection closed once that is sent; a client that stops
//! reading makes the daemon stop reading from it, and one whose unread
//! output grows past a hard limit is dropped.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;

use braid_core::engine::{Command, CommandError, ServiceId, State};
use braid_core::runtime::{HandlerResult, Runtime, SourceToken};
use braid_core::spec::DepKind;

use super::options::Level;
use super::{environment, status, Daemon, Shared};
use crate::protocol::{
    start_flags, DecodeError, DependencyType, Handle, Info, Reply, Request, ServiceState,
    ShutdownType, StatusVersion, MIN_COMPAT_VERSION, PROTOCOL_VERSION, RECEIVE_BUFFER_SIZE,
};

/// Past this much unsent output, no more requests are read (as dinit).
const OUTBUF_LIMIT: usize = 16 * 1024;
/// Past this much unsent output (service events keep coming), the client
/// is dropped.
const OUTBUF_HARD_LIMIT: usize = 1024 * 1024;

pub type ConnId = u64;

#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    pub token: Option<SourceToken>,
    rbuf: Vec<u8>,
    out: Vec<u8>,
    /// How much of `out` is already written.
    out_pos: usize,
    handles: BTreeMap<Handle, ServiceId>,
    pub listen_env: bool,
    /// The service whose log buffer this connection follows (braid's
    /// `BraidFollowLog`).
    pub follows: Option<ServiceId>,
    /// A bad request was answered: close once the output is sent.
    closing: bool,
    /// Writing failed, or the output grew too large: drop now.
    pub dead: bool,
}

impl Connection {
    pub fn new(stream: UnixStream) -> Connection {
        Connection {
            stream,
            token: None,
            rbuf: Vec::with_capacity(RECEIVE_BUFFER_SIZE),
            out: Vec::new(),
            out_pos: 0,
            handles: BTreeMap::new(),
            listen_env: false,
            follows: None,
            closing: false,
            dead: false,
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Appends a packet and writes what the socket takes.
    pub fn send(&mut self, packet: &[u8]) {
        if self.dead {
            return;
        }
        self.out.extend_from_slice(packet);
        self.flush();
        if self.pending() > OUTBUF_HARD_LIMIT {
            self.dead = true;
        }
    }

    pub fn send_reply(&mut self, reply: &Reply) {
        self.send(&reply.to_bytes());
    }

    pub fn send_info(&mut self, info: &Info) {
        self.send(&info.to_bytes());
    }

    /// Writes until the socket would block.
    pub fn flush(&mut self) {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > 64 * 1024 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Reads what fits in the receive buffer: `Ok(true)` if anything came,
    /// `Ok(false)` if the socket would block, `Err` at end of file or error.
    fn read_more(&mut self) -> io::Result<bool> {
        let room = RECEIVE_BUFFER_SIZE - self.rbuf.len();
        let mut buf = [0u8; RECEIVE_BUFFER_SIZE];
        loop {
            match self.stream.read(&mut buf[..room]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.rbuf.extend_from_slice(&buf[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// A new handle for `id`: the smallest number not in use.
    pub fn allocate(&mut self, id: ServiceId) -> Handle {
        let mut h: Handle = 0;
        for used in self.handles.keys() {
            if *used != h {
                break;
            }
            h += 1;
        }
        self.handles.insert(h, id);
        h
    }

    pub fn service(&self, h: Handle) -> Option<ServiceId> {
        self.handles.get(&h).copied()
    }

    /// The handles this connection holds on `id`, in order.
    pub fn handles_of(&self, id: ServiceId) -> Vec<Handle> {
        self.handles
            .iter()
            .filter(|(_, s)| **s == id)
            .map(|(h, _)| *h)
            .collect()
    }

    pub fn holds(&self, id: ServiceId) -> bool {
        self.handles.values().any(|s| *s == id)
    }

    fn drop_handles_of(&mut self, id: ServiceId) {
        self.handles.retain(|_, s| *s != id);
    }
}

/// What to do next with a connection.
enum Step {
    Request(Request),
    Wait,
    Close,
}

/// Runs the engine's pending effects now (launches, events to clients).
pub(super) fn settle(rt: &mut Runtime) {
    rt.execute_effects();
}

/// The connection's fd is ready: send, read and answer until it would block.
pub fn on_ready(shared: &Shared, rt: &mut Runtime, cid: ConnId) -> HandlerResult {
    loop {
        let step = next_step(&mut shared.borrow_mut(), cid);
        match step {
            Step::Request(req) => handle(shared, rt, cid, req),
            Step::Wait => return HandlerResult::Keep,
            Step::Close => {
                shared.borrow_mut().conns.remove(&cid);
                return HandlerResult::Remove;
            }
        }
    }
}

fn next_step(d: &mut Daemon, cid: ConnId) -> Step {
    let Some(c) = d.conns.get_mut(&cid) else {
        return Step::Close;
    };
    loop {
        c.flush();
        if c.dead || (c.closing && c.pending() == 0) {
            return Step::Close;
        }
        if c.closing || c.pending() >= OUTBUF_LIMIT {
            return Step::Wait;
        }
        match Request::decode(&c.rbuf) {
            Ok((req, used)) => {
                c.rbuf.drain(..used);
                return Step::Request(req);
            }
            Err(DecodeError::Malformed(_)) => {
                c.send_reply(&Reply::BadReq);
                c.closing = true;
            }
            Err(DecodeError::Incomplete { .. }) => {
                if c.rbuf.len() >= RECEIVE_BUFFER_SIZE {
                    d.console.log(
                        Level::Warn,
                        "Received too-large control packet; dropping connection",
                    );
                    return Step::Close;
                }
                match c.read_more() {
                    Ok(true) => {}
                    Ok(false) => return Step::Wait,
                    Err(_) => return Step::Close,
                }
            }
        }
    }
}

/// Answers one request.
fn handle(shared: &Shared, rt: &mut Runtime, cid: ConnId, req: Request) {
    let reply = |r: Reply| {
        if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
            c.send_reply(&r);
        }
    };
    let bad_request = || {
        if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
            c.send_reply(&Reply::BadReq);
            c.closing = true;
        }
    };
    let service = |h: Handle| shared.borrow().conns.get(&cid).and_then(|c| c.service(h));
    let allocate = |id: ServiceId| {
        shared
            .borrow_mut()
            .conns
            .get_mut(&cid)
            .map_or(0, |c| c.allocate(id))
    };
    let held_elsewhere = |id: ServiceId| {
        shared
            .borrow()
            .conns
            .iter()
            .any(|(other, c)| *other != cid && c.holds(id))
    };

    match req {
        Request::QueryVersion => reply(Reply::CpVersion {
            min_compat: MIN_COMPAT_VERSION,
            version: PROTOCOL_VERSION,
        }),
        Request::FindService { name } => {
            let name = String::from_utf8_lossy(&name).into_owned();
            match rt.engine().lookup(&name) {
                Some(id) => service_record(rt, id, allocate(id), &reply),
                None => reply(Reply::NoService),
            }
        }
        Request::LoadService { name } => {
            let name = String::from_utf8_lossy(&name).into_owned();
            let loaded = {
                let mut d = shared.borrow_mut();
                let d = &mut *d;
                d.services.load(rt.engine_mut(), &mut d.console, &name)
            };
            match loaded {
                Ok(id) => service_record(rt, id, allocate(id), &reply),
                Err(failure) => {
                    shared
                        .borrow_mut()
                        .console
                        .log(Level::Error, &failure.control_log_text());
                    reply(match failure {
                        super::services::Failure::NotFound { .. } => Reply::NoService,
                        super::services::Failure::Description(_) => Reply::ServiceDescErr,
                        super::services::Failure::Load { .. } => Reply::ServiceLoadErr,
                    });
                }
            }
        }
        Request::StartService { flags, handle }
        | Request::StopService { flags, handle }
        | Request::WakeService { flags, handle }
        | Request::ReleaseService { flags, handle } => {
            let Some(id) = service(handle) else {
                return bad_request();
            };
            if flags & start_flags::PREACK != 0 {
                reply(Reply::PreAck);
            }
            let pin = flags & start_flags::PIN != 0;
            let gentle = flags & start_flags::GENTLE != 0;
            let (cmd, wanted) = match req {
                Request::StartService { .. } => (Command::Start { pin }, State::Started),
                Request::WakeService { .. } => (Command::Wake { pin }, State::Started),
                Request::ReleaseService { .. } => (Command::Release { pin }, State::Stopped),
                _ if flags & start_flags::RESTART != 0 => {
                    (Command::Restart { gentle }, State::Started)
                }
                _ => (Command::Stop { pin, gentle }, State::Stopped),
            };
            let result = rt.command(id, cmd);
            // The engine decides synchronously; launches and their events
            // come after. As in dinit, a service that reached the wanted
            // state now has its events sent before the reply, and one still
            // on its way gets the reply first and its events later.
            let now = rt.engine().status(id).state;
            let r = match result {
                Ok(_) if now == wanted => Reply::AlreadySs,
                Ok(_) => Reply::Ack,
                Err(CommandError::ShuttingDown) => Reply::ShuttingDown,
                Err(CommandError::PinnedStopped) => Reply::PinnedStopped,
                Err(CommandError::PinnedStarted) => Reply::PinnedStarted,
                Err(CommandError::HasDependents(ids)) => Reply::Dependents {
                    handles: ids.into_iter().map(allocate).collect(),
                },
                Err(CommandError::NotApplicable) if matches!(cmd, Command::Wake { .. }) => {
                    if now == State::Started {
                        Reply::AlreadySs
                    } else {
                        Reply::Nak
                    }
                }
                Err(_) => Reply::Nak,
            };
            if r == Reply::AlreadySs {
                settle(rt);
                reply(r);
            } else {
                reply(r);
                settle(rt);
            }
        }
        Request::UnpinService { handle } => {
            let Some(id) = service(handle) else {
                return bad_request();
            };
            let _ = rt.command(id, Command::Unpin);
            settle(rt);
            reply(Reply::Ack);
        }
        Request::ListServices | Request::ListServices5 => {
            let version = if req == Request::ListServices {
                StatusVersion::V1
            } else {
                StatusVersion::V5
            };
            let mut packets = Vec::new();
            {
                let d = shared.borrow();
                for id in rt.engine().ids() {
                    let st = service_status(&d, rt, id);
                    let status = if version == StatusVersion::V1 {
                        status::v1(st)
                    } else {
                        st
                    };
                    Reply::SvcInfo {
                        version,
                        status,
                        name: rt.engine().name(id).as_bytes().to_vec(),
                    }
                    .encode(&mut packets);
                }
            }
            Reply::ListDone.encode(&mut packets);
            if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
                c.send(&packets);
            }
        }
        Request::UnloadService { handle } => {
            let Some(id) = service(handle) else {
                return bad_request();
            };
            let stopped = rt.engine().status(id).state == State::Stopped;
            let ok = stopped && !held_elsewhere(id) && {
                let mut d = shared.borrow_mut();
                d.services.unload(rt.engine_mut(), id)
            };
            if ok {
                if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
                    c.drop_handles_of(id);
                }
                super::follow::end(shared, rt, id);
                reply(Reply::Ack);
            } else {
                reply(Reply::Nak);
            }
        }
        Request::ReloadService { handle } => {
            let Some(id) = service(handle) else {
                return bad_request();
            };
            if held_elsewhere(id) {
                return reply(Reply::Nak);
            }
            if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
                c.drop_handles_of(id);
            }
            let result = {
                let mut d = shared.borrow_mut();
                let d = &mut *d;
                d.services.reload(rt.engine_mut(), &mut d.console, id)
            };
            settle(rt);
            match result {
                Ok(()) => reply(Reply::Ack),
                Err(text) => {
                    let name = rt.engine().name(id).to_string();
                    shared.borrow_mut().console.log(
                        Level::Error,
                        &format!("Could not reload service {name}: {text}"),
                    );
                    reply(Reply::Nak);
                }
            }
        }
        Request::Shutdown { kind } => {
            shared.borrow_mut().shutdown = Some(kind);
            if kind == ShutdownType::Remain {
                shared.borrow_mut().remain = true;
            }
            rt.stop_all();
            reply(Reply::Ack);
            settle(rt);
        }
        Request::AddDep { dep_type, from, to }
        | Request::RemDep { dep_type, from, to }
        | Request::EnableService { dep_type, from, to }
        | Request::EnableServiceV7 { dep_type, from, to } => {
            let (Some(from), Some(to)) = (service(from), service(to)) else {
                return bad_request();
            };
            if from == to {
                return bad_request();
            }
            let kind = match dep_type {
                DependencyType::WaitsFor => DepKind::WaitsFor,
                DependencyType::Milestone => DepKind::Milestone,
                _ => DepKind::Hard,
            };
            if let Request::RemDep { .. } = req {
                let removed = rt.engine_mut().remove_dependency(from, to, kind);
                settle(rt);
                return reply(if removed { Reply::Ack } else { Reply::Nak });
            }
            let existed = rt.engine().dependencies(from).contains(&(to, kind));
            if rt.engine_mut().add_dependency(from, to, kind).is_err() {
                settle(rt);
                return reply(Reply::Nak);
            }
            let enable = !matches!(req, Request::AddDep { .. });
            let from_active = matches!(
                rt.engine().status(from).state,
                State::Started | State::Starting
            );
            if enable && from_active && !rt.engine().is_shutting_down() {
                // As dinit's start_dep: the (new or existing) link takes
                // hold of `to`, starting it.
                let _ = rt.command(to, Command::Wake { pin: false });
            }
            // As for START: events first if `to` is settled, else after.
            let st = service_status(&shared.borrow(), rt, to);
            let moving = matches!(st.state, ServiceState::Starting | ServiceState::Stopping);
            if !moving {
                settle(rt);
            }
            if let Request::EnableServiceV7 { .. } = req {
                let st = service_status(&shared.borrow(), rt, to);
                reply(Reply::ServiceStatus {
                    version: StatusVersion::V6,
                    reserved: u8::from(existed),
                    status: st,
                });
            } else {
                reply(Reply::Ack);
            }
            settle(rt);
        }
        Request::QueryLoadMech => {
            let cwd = std::env::current_dir()
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            let dirs = shared
                .borrow()
                .services
                .loader
                .dirs
                .iter()
                .map(|d| d.as_bytes().to_vec())
                .collect();
            reply(Reply::LoaderMech { cwd, dirs });
        }
        Request::QueryServiceName { handle } => match service(handle) {
            Some(id) => reply(Reply::ServiceName {
                name: rt.engine().name(id).as_bytes().to_vec(),
            }),
            None => reply(Reply::Nak),
        },
        Request::SetEnv { var } => {
            let mut d = shared.borrow_mut();
            environment::update(&mut d, rt, var);
            if let Some(c) = d.conns.get_mut(&cid) {
                c.send_reply(&Reply::Ack);
            }
        }
        Request::ServiceStatus { handle }
        | Request::ServiceStatus5 { handle }
        | Request::ServiceStatus6 { handle } => {
            let Some(id) = service(handle) else {
                return reply(Reply::Nak);
            };
            let st = service_status(&shared.borrow(), rt, id);
            let (version, status) = match req {
                Request::ServiceStatus { .. } => (StatusVersion::V1, status::v1(st)),
                Request::ServiceStatus5 { .. } => (StatusVersion::V5, st),
                _ => (StatusVersion::V6, st),
            };
            reply(Reply::ServiceStatus {
                version,
                reserved: 0,
                status,
            });
        }
        Request::SetTrigger { handle, value } => {
            let Some(id) = service(handle) else {
                return reply(Reply::Nak);
            };
            match rt.command(id, Command::Trigger(value != 0)) {
                Ok(_) => {
                    settle(rt);
                    reply(Reply::Ack);
                }
                Err(_) => reply(Reply::Nak),
            }
        }
        Request::CatLog { flags, handle } => {
            let Some(id) = service(handle) else {
                return reply(Reply::Nak);
            };
            if !shared.borrow().services.has_log_buffer(id) {
                return reply(Reply::Nak);
            }
            let data = rt.log_buffer(id).map(<[u8]>::to_vec).unwrap_or_default();
            if flags & 1 != 0 {
                rt.clear_log_buffer(id);
            }
            reply(Reply::ServiceLog { flags: 0, data });
        }
        Request::Signal { signal, handle } => {
            let Some(id) = service(handle) else {
                return reply(Reply::Nak);
            };
            let r = match rt.engine().status(id).pid {
                None | Some(0) | Some(-1) => Reply::SignalNoPid,
                Some(pid) => match send_signal(pid, signal) {
                    Ok(()) => Reply::Ack,
                    Err(nix::errno::Errno::EINVAL) => {
                        shared
                            .borrow_mut()
                            .console
                            .log(Level::Error, "Requested signal not in valid signal range.");
                        Reply::SignalBadSig
                    }
                    Err(e) => {
                        shared.borrow_mut().console.log(
                            Level::Error,
                            &format!("Error sending signal to process: {}", e.desc()),
                        );
                        Reply::SignalKillErr
                    }
                },
            };
            reply(r);
        }
        Request::QueryServiceDscDir { reserved, handle } => {
            let dir = service(handle).filter(|_| reserved == 0).and_then(|id| {
                shared
                    .borrow()
                    .services
                    .info(id)
                    .map(|i| i.service_dir.clone())
            });
            match dir {
                Some(dir) => reply(Reply::SvcDscDir {
                    dir: dir.into_bytes(),
                }),
                None => reply(Reply::Nak),
            }
        }
        Request::CloseHandle { handle } => {
            let mut d = shared.borrow_mut();
            let Some(c) = d.conns.get_mut(&cid) else {
                return;
            };
            if c.handles.remove(&handle).is_some() {
                c.send_reply(&Reply::Ack);
            } else {
                c.send_reply(&Reply::BadReq);
                c.closing = true;
            }
        }
        Request::GetAllEnv => {
            let block = environment::block(&shared.borrow().services.loader.context);
            reply(Reply::AllEnv { block });
        }
        Request::ListenEnv => {
            if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
                c.listen_env = true;
                c.send_reply(&Reply::Ack);
            }
        }
        Request::BraidFollowLog { name } => super::follow::start(shared, rt, cid, &name),
    }
}

fn service_record(rt: &Runtime, id: ServiceId, handle: Handle, reply: &dyn Fn(Reply)) {
    let st = rt.engine().status(id);
    reply(Reply::ServiceRecord {
        state: status::state(st.state),
        handle,
        target: status::state(st.target),
    });
}

/// A service's status buffer, with the file time recorded at load.
pub fn service_status(d: &Daemon, rt: &Runtime, id: ServiceId) -> crate::protocol::Status {
    let mtime = d.services.info(id).and_then(|i| i.mtime);
    status::status(&rt.engine().status(id), mtime)
}

/// `kill(pid, signum)` with any number, as the real daemon sends it (the
/// kernel judges the number).
fn send_signal(pid: i32, signum: i32) -> Result<(), nix::errno::Errno> {
    // SAFETY: kill has no memory-safety preconditions.
    let r = unsafe { nix::libc::kill(pid, signum) };
    if r == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}
