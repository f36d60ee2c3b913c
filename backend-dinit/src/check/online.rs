//! `dinit-check --online`: the service directories and the environment of a
//! running daemon, fetched over its control socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use crate::description::{combine_paths, strerror, Environment};
use crate::protocol::{
    DecodeError, Reply, Request, StatusVersion, MIN_COMPAT_VERSION, PROTOCOL_VERSION,
};

/// What the daemon told us.
pub struct DaemonConfig {
    pub dirs: Vec<String>,
    pub env: Environment,
}

/// The socket to use when `-p` was not given, or `None` when no home
/// directory can be found.
pub fn default_socket_path(user: bool) -> Option<String> {
    if let Some(p) = std::env::var_os("DINIT_SOCKET_PATH") {
        return Some(p.to_string_lossy().into_owned());
    }
    if !user {
        return Some("/run/dinitctl".into());
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Some(format!("{}/dinitctl", run.to_string_lossy()));
    }
    let home = match std::env::var_os("HOME") {
        Some(h) => h.to_string_lossy().into_owned(),
        None => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()?
            .dir
            .to_string_lossy()
            .into_owned(),
    };
    Some(format!("{home}/.dinitctl"))
}

/// Connects and asks; `Err` is the message to print after "dinit-check: ".
pub fn query(socket_path: &str) -> Result<DaemonConfig, String> {
    let mut conn = Conn {
        sock: UnixStream::connect(socket_path).map_err(|e| {
            format!(
                "connecting to socket {socket_path}: {}",
                strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
            )
        })?,
        buf: Vec::new(),
    };
    match conn.ask(&Request::QueryVersion)? {
        Reply::CpVersion {
            min_compat,
            version,
        } => {
            if min_compat > PROTOCOL_VERSION {
                return Err("too old (daemon reports newer protocol version)".into());
            }
            if version < MIN_COMPAT_VERSION {
                return Err("daemon too old or protocol error".into());
            }
        }
        _ => return Err(READ_FAILURE.into()),
    }
    let dirs = match conn.ask(&Request::QueryLoadMech)? {
        Reply::LoaderMech { cwd, dirs } => {
            let cwd = String::from_utf8_lossy(&cwd).into_owned();
            let mut out = Vec::new();
            for d in dirs {
                let d = String::from_utf8_lossy(&d).into_owned();
                if d.is_empty() {
                    return Err("protocol error".into());
                }
                if !d.starts_with('/') && cwd.is_empty() {
                    return Err("unable to retrieve service description directories".into());
                }
                out.push(combine_paths(&cwd, &d));
            }
            out
        }
        _ => return Err("protocol error".into()),
    };
    let mut env = Environment::default();
    env.clear();
    match conn.ask(&Request::GetAllEnv)? {
        Reply::AllEnv { block } => {
            for entry in block.split(|&b| b == 0).filter(|e| !e.is_empty()) {
                let entry = String::from_utf8_lossy(entry);
                match entry.split_once('=') {
                    Some((k, v)) => env.set_var(k, v),
                    None => env.set_var(&entry, ""),
                }
            }
        }
        _ => return Err("protocol error".into()),
    }
    Ok(DaemonConfig { dirs, env })
}

const READ_FAILURE: &str = "control socket read failure or protocol error";

struct Conn {
    sock: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    fn ask(&mut self, req: &Request) -> Result<Reply, String> {
        self.sock.write_all(&req.to_bytes()).map_err(|e| {
            format!(
                "control socket write error: {}",
                strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
            )
        })?;
        loop {
            match Reply::decode(&self.buf, StatusVersion::V1) {
                Ok((reply, used)) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Err(DecodeError::Incomplete { .. }) => {}
                Err(DecodeError::Malformed(_)) => return Err(READ_FAILURE.into()),
            }
            let mut chunk = [0u8; 4096];
            match self.sock.read(&mut chunk) {
                Ok(0) | Err(_) => return Err(READ_FAILURE.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
