//! A client connection to a dinit daemon: the socket, the bytes received
//! but not yet decoded, the negotiated protocol version, and the rule that
//! information packets are skipped (or observed) while waiting for a reply.
//! Shared by `dinitctl` and `dinit-monitor`.

use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;

use crate::protocol::{
    DecodeError, Handle, Incoming, Info, Reply, Request, ServiceEvent, StatusVersion, StopReason,
    MIN_COMPAT_VERSION, PROTOCOL_VERSION,
};

/// Why talking to the daemon failed. Each maps to the real client's
/// message (after the program-name prefix).
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The daemon closed the connection or a read failed where a reply was
    /// due.
    Read,
    Write(i32),
    /// A packet that makes no sense here.
    Protocol,
    /// The daemon needs a newer client.
    OldClient,
    /// The daemon is older than this client supports.
    OldServer,
    Connect {
        path: Vec<u8>,
        errno: i32,
    },
}

impl ConnError {
    /// The message, without program prefix or newline. `server` is the word
    /// for the daemon ("daemon" in dinitctl, "server" in dinit-monitor).
    pub(crate) fn message(&self, server: &str) -> String {
        match self {
            ConnError::Read => "control socket read failure or protocol error".into(),
            ConnError::Write(e) => format!("control socket write error: {}", strerror(*e)),
            ConnError::Protocol => "protocol error".into(),
            ConnError::OldClient => format!("too old ({server} reports newer protocol version)"),
            ConnError::OldServer => format!("{server} too old or protocol error"),
            ConnError::Connect { path, errno } => format!(
                "connecting to socket: {}: {}",
                String::from_utf8_lossy(path),
                strerror(*errno)
            ),
        }
    }
}

/// The C library's text for an errno value (`strerror`).
pub(crate) fn strerror(errno: i32) -> String {
    let full = io::Error::from_raw_os_error(errno).to_string();
    match full.strip_suffix(&format!(" (os error {errno})")) {
        Some(text) => text.to_string(),
        None => full,
    }
}

/// The socket path used when none is given: `$DINIT_SOCKET_PATH`; else, for
/// a user instance, `$XDG_RUNTIME_DIR/dinitctl` (if the variable is set at
/// all) or `<home>/.dinitctl`; else the system socket. `None` when no home
/// directory can be found.
pub(crate) fn default_socket_path(user: bool) -> Option<Vec<u8>> {
    if let Some(p) = std::env::var_os("DINIT_SOCKET_PATH") {
        return Some(p.as_bytes().to_vec());
    }
    if !user {
        return Some(SYSTEM_SOCKET.to_vec());
    }
    let (dir, name): (Vec<u8>, &[u8]) = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => (d.as_bytes().to_vec(), b"dinitctl"),
        None => (home_dir()?, b".dinitctl"),
    };
    let mut path = dir;
    path.push(b'/');
    path.extend_from_slice(name);
    Some(path)
}

/// The system instance's socket (`SYSCONTROLSOCKET` of a Linux build).
pub(crate) const SYSTEM_SOCKET: &[u8] = b"/run/dinitctl";

/// `$HOME`, else the home directory of the real user in the passwd file.
pub(crate) fn home_dir() -> Option<Vec<u8>> {
    if let Some(h) = std::env::var_os("HOME") {
        return Some(h.as_bytes().to_vec());
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok()??;
    Some(user.dir.as_os_str().as_bytes().to_vec())
}

/// The connection-fd passed by a parent in `DINIT_CS_FD`, read as C's
/// `strtol` would; an fd that is not open is replaced by 0, as in the real
/// client. `None` when the variable is unset or holds no number.
pub(crate) fn passed_fd() -> Option<i32> {
    let value = std::env::var_os("DINIT_CS_FD")?;
    let text = value.as_bytes();
    let t = match text
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0x0b)
    {
        Some(p) => &text[p..],
        None => return None,
    };
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for d in &digits[..n] {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    let fd = (if neg { -v } else { v }) as i32;
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    match fcntl(fd, FcntlArg::F_GETFL) {
        Ok(flags) => {
            let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
            let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
            Some(fd)
        }
        Err(_) => Some(0),
    }
}

/// What the client saw of one service while waiting for a reply: the
/// events that arrived before it (and, after PREACK, between PREACK and it).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seen {
    pub started: bool,
    pub stopped: bool,
    pub failed_start: bool,
    pub stop_reason: Option<StopReason>,
    /// The first status word of the last FAILEDSTART packet (v1 or v5).
    pub exit_status: i32,
    pub si_code: i32,
    pub si_status: i32,
}

impl Seen {
    fn observe(&mut self, info: &Info, handle: Handle) {
        let (h, event, status, v5) = match info {
            Info::ServiceEvent {
                handle,
                event,
                status,
            } => (*handle, *event, status, false),
            Info::ServiceEvent5 {
                handle,
                event,
                status,
            } => (*handle, *event, status, true),
            _ => return,
        };
        if h != handle {
            return;
        }
        match event {
            ServiceEvent::Started => self.started = true,
            ServiceEvent::Stopped => self.stopped = true,
            ServiceEvent::FailedStart => {
                self.failed_start = true;
                self.stop_reason = Some(status.stop_reason);
                self.exit_status = status.word1;
                if v5 {
                    self.si_code = status.word1;
                    self.si_status = status.word2;
                }
            }
            _ => {}
        }
    }
}

/// An open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    sock: UnixStream,
    buf: Vec<u8>,
    /// The daemon's protocol version (after `negotiate`).
    pub version: u16,
}

/// Longest Unix socket path (`sun_path` less the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

impl Conn {
    /// Connects to the socket at `path`.
    pub(crate) fn connect(path: &[u8]) -> Result<Conn, ConnError> {
        if path.len() > MAX_SOCKET_PATH {
            return Err(ConnError::Connect {
                path: path.to_vec(),
                errno: nix::libc::ENAMETOOLONG,
            });
        }
        let os_path = std::ffi::OsStr::from_bytes(path);
        match UnixStream::connect(os_path) {
            Ok(sock) => Ok(Conn::new(sock)),
            Err(e) => Err(ConnError::Connect {
                path: path.to_vec(),
                errno: e.raw_os_error().unwrap_or(nix::libc::EINVAL),
            }),
        }
    }

    /// Uses an already connected descriptor handed down by a parent.
    pub(crate) fn from_fd(fd: i32) -> Conn {
        // SAFETY: the parent passed this descriptor (DINIT_CS_FD) for our
        // exclusive use as the control connection; nothing else in this
        // process owns it.
        let sock = unsafe { UnixStream::from_raw_fd(fd) };
        Conn::new(sock)
    }

    fn new(sock: UnixStream) -> Conn {
        Conn {
            sock,
            buf: Vec::new(),
            version: 0,
        }
    }

    /// QUERYVERSION and the compatibility check; stores the daemon's version.
    pub(crate) fn negotiate(&mut self) -> Result<u16, ConnError> {
        self.send(&Request::QueryVersion)?;
        match self.reply(StatusVersion::V1)? {
            Reply::CpVersion {
                min_compat,
                version,
            } => {
                if min_compat > PROTOCOL_VERSION {
                    return Err(ConnError::OldClient);
                }
                if version < MIN_COMPAT_VERSION {
                    return Err(ConnError::OldServer);
                }
                self.version = version;
                Ok(version)
            }
            _ => Err(ConnError::Read),
        }
    }

    pub(crate) fn send(&mut self, req: &Request) -> Result<(), ConnError> {
        self.send_raw(&req.to_bytes())
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.sock
            .write_all(bytes)
            .map_err(|e| ConnError::Write(e.raw_os_error().unwrap_or(nix::libc::EIO)))
    }

    /// Reads more bytes; `Ok(0)` at end of stream. EINTR is retried.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next packet, or `None` at end of stream.
    pub(crate) fn next(&mut self, status: StatusVersion) -> Result<Option<Incoming>, PacketError> {
        loop {
            match Incoming::decode(&self.buf, status) {
                Ok((packet, n)) => {
                    self.buf.drain(..n);
                    return Ok(Some(packet));
                }
                Err(DecodeError::Malformed(_)) => return Err(PacketError::Malformed),
                Err(DecodeError::Incomplete { .. }) => {
                    if self.fill().map_err(PacketError::Io)? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Waits for a reply, skipping information packets.
    pub(crate) fn reply(&mut self, status: StatusVersion) -> Result<Reply, ConnError> {
        self.reply_observing(status, None)
    }

    /// Waits for a reply, noting events for `handle` that arrive first.
    pub(crate) fn reply_seen(
        &mut self,
        status: StatusVersion,
        handle: Handle,
        seen: &mut Seen,
    ) -> Result<Reply, ConnError> {
        self.reply_observing(status, Some((handle, seen)))
    }

    fn reply_observing(
        &mut self,
        status: StatusVersion,
        mut watch: Option<(Handle, &mut Seen)>,
    ) -> Result<Reply, ConnError> {
        loop {
            match self.next(status) {
                Ok(Some(Incoming::Reply(r))) => return Ok(r),
                Ok(Some(Incoming::Info(info))) => {
                    if let Some((handle, seen)) = watch.as_mut() {
                        seen.observe(&info, *handle);
                    }
                }
                Ok(None) | Err(PacketError::Io(_)) => return Err(ConnError::Read),
                Err(PacketError::Malformed) => return Err(ConnError::Protocol),
            }
        }
    }
}

/// Why `Conn::next` produced no packet.
#[derive(Debug)]
pub(crate) enum PacketError {
    Io(io::Error),
    Malformed,
}
