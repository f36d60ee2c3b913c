//! The listening control socket: created as dinit creates it (refusing to
//! start when another instance answers on it, mode 0600), accepting only
//! the owning user and root.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use braid_core::runtime::{HandlerResult, Runtime, SourceToken};
use mio::Interest;
use nix::sys::socket::{getsockopt, sockopt};

use super::connection::{self, Connection};
use super::options::Level;
use super::Shared;

/// Creates the listening socket at `path`. The error is the log line.
pub fn open(path: &[u8]) -> Result<UnixListener, String> {
    let path = Path::new(OsStr::from_bytes(path));
    if UnixStream::connect(path).is_ok() {
        return Err("Control socket is already active (another instance already running?)".into());
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("Error binding control socket: {}", strerror(&e)))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("Error setting control socket permissions: {}", strerror(&e)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("Error listening on control socket: {}", strerror(&e)))?;
    Ok(listener)
}

/// Watches the listening socket: each connection is accepted, checked and
/// registered.
pub fn register(
    rt: &mut Runtime,
    shared: &Shared,
    listener: UnixListener,
) -> io::Result<SourceToken> {
    let fd = listener.as_raw_fd();
    let shared = shared.clone();
    let mut spare = Spare::open();
    rt.register_fd(
        fd,
        Interest::READABLE,
        move |rt: &mut Runtime, _: SourceToken, _| {
            accept_all(rt, &shared, &listener, &mut spare);
            HandlerResult::Keep
        },
    )
}

/// One descriptor held in reserve for when braid runs out of them.
///
/// Polling is edge-triggered: a connection left in the backlog because
/// `accept` failed with EMFILE would wait there, its client hanging,
/// until another one arrives. With the spare closed for a moment, the
/// connection is accepted and closed at once, so its client sees the
/// daemon hang up instead of waiting, and the backlog is empty again.
struct Spare(Option<std::fs::File>);

impl Spare {
    fn open() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    /// Accepts and drops one pending connection using the spare fd;
    /// whether there was one.
    fn refuse_one(&mut self, listener: &UnixListener) -> bool {
        if self.0.take().is_none() {
            return false;
        }
        let refused = listener.accept().is_ok();
        *self = Spare::open();
        refused
    }
}

fn accept_all(rt: &mut Runtime, shared: &Shared, listener: &UnixListener, spare: &mut Spare) {
    let mut reported = false;
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                if !reported {
                    reported = true;
                    shared.borrow_mut().console.log(
                        Level::Error,
                        &format!("Error accepting control connection: {}", strerror(&e)),
                    );
                }
                let out_of_fds = matches!(
                    e.raw_os_error(),
                    Some(nix::libc::EMFILE | nix::libc::ENFILE)
                );
                if out_of_fds && spare.refuse_one(listener) {
                    continue;
                }
                return;
            }
        };
        if !peer_allowed(&stream) || stream.set_nonblocking(true).is_err() {
            continue;
        }
        let _ = serve(rt, shared, stream);
    }
}

/// Serves an accepted (non-blocking) connection like any other client's;
/// on error the connection is closed.
fn serve(rt: &mut Runtime, shared: &Shared, stream: UnixStream) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    let cid = {
        let mut d = shared.borrow_mut();
        d.next_conn += 1;
        let cid = d.next_conn;
        d.conns.insert(cid, Connection::new(stream));
        cid
    };
    let handler_shared = shared.clone();
    let registered = rt.register_fd(
        fd,
        Interest::READABLE | Interest::WRITABLE,
        move |rt: &mut Runtime, _: SourceToken, _| connection::on_ready(&handler_shared, rt, cid),
    );
    match registered {
        Ok(token) => {
            if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
                c.token = Some(token);
            }
            Ok(())
        }
        Err(e) => {
            shared.borrow_mut().conns.remove(&cid);
            Err(e)
        }
    }
}

/// `pass-cs-fd`: a connection made for a service's process, served as if
/// accepted from the socket (no peer check: braid hands it out itself).
/// Both ends are non-blocking, as dinit makes them (its client clears the
/// flag on its end); the process's end stays close-on-exec here, and the
/// launch places it without that flag.
pub fn passed_connection(rt: &mut Runtime, shared: &Shared) -> io::Result<OwnedFd> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )?;
    serve(rt, shared, UnixStream::from(ours))?;
    Ok(theirs)
}

/// Only the user running the daemon, and root, may control it.
fn peer_allowed(stream: &UnixStream) -> bool {
    match getsockopt(stream, sockopt::PeerCredentials) {
        Ok(cred) => cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

fn strerror(e: &io::Error) -> String {
    crate::description::strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
}
