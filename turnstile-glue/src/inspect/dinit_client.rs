//! A small client of the dinit control protocol, on the shared codec, for
//! the inspection commands: list services, find one, read its log buffer,
//! ask where descriptions are loaded from, follow a log buffer (braid's
//! daemon only). Works with braid's dinit face and the real dinit. Every
//! read is bounded by a timeout, except a follower's wait for output.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use braid_dinit::protocol::{
    DecodeError, Handle, Incoming, Reply, Request, Status, StatusVersion, PROTOCOL_VERSION,
};

/// How long to wait for any one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("protocol error: {what}"),
    )
}

impl Client {
    /// Connects and checks the protocol version.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let mut c = Client {
            stream,
            buf: Vec::new(),
        };
        match c.request(&Request::QueryVersion, StatusVersion::V1)? {
            Reply::CpVersion { min_compat, .. } if min_compat <= PROTOCOL_VERSION => Ok(c),
            Reply::CpVersion { .. } => Err(protocol_error("the daemon needs a newer client")),
            _ => Err(protocol_error("unexpected reply to the version query")),
        }
    }

    /// Sends `req` and returns its reply, skipping information packets.
    pub fn request(&mut self, req: &Request, status: StatusVersion) -> io::Result<Reply> {
        self.stream.write_all(&req.to_bytes())?;
        self.reply(status)
    }

    fn reply(&mut self, status: StatusVersion) -> io::Result<Reply> {
        loop {
            match Incoming::decode(&self.buf, status) {
                Ok((incoming, used)) => {
                    self.buf.drain(..used);
                    match incoming {
                        Incoming::Reply(r) => return Ok(r),
                        Incoming::Info(_) => continue,
                    }
                }
                Err(DecodeError::Incomplete { .. }) => {
                    let mut chunk = [0u8; 4096];
                    let n = self.stream.read(&mut chunk)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "protocol error: the daemon closed the connection",
                        ));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(DecodeError::Malformed(why)) => return Err(protocol_error(why)),
            }
        }
    }

    /// Every loaded service with its status (v5 buffers: exit details).
    pub fn list(&mut self) -> io::Result<Vec<(String, Status)>> {
        self.stream.write_all(&Request::ListServices5.to_bytes())?;
        let mut out = Vec::new();
        loop {
            match self.reply(StatusVersion::V5)? {
                Reply::SvcInfo { status, name, .. } => {
                    out.push((String::from_utf8_lossy(&name).into_owned(), status))
                }
                Reply::ListDone => return Ok(out),
                _ => return Err(protocol_error("unexpected reply to the service list")),
            }
        }
    }

    /// The directories the daemon loads descriptions from.
    pub fn service_dirs(&mut self) -> io::Result<Vec<String>> {
        match self.request(&Request::QueryLoadMech, StatusVersion::V1)? {
            Reply::LoaderMech { cwd, dirs } => {
                let cwd = String::from_utf8_lossy(&cwd).into_owned();
                Ok(dirs
                    .iter()
                    .map(|d| {
                        let d = String::from_utf8_lossy(d).into_owned();
                        if d.starts_with('/') {
                            d
                        } else {
                            format!("{cwd}/{d}")
                        }
                    })
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The handle of a loaded service.
    pub fn find(&mut self, name: &str) -> io::Result<Option<Handle>> {
        let req = Request::FindService {
            name: name.as_bytes().to_vec(),
        };
        match self.request(&req, StatusVersion::V1)? {
            Reply::ServiceRecord { handle, .. } => Ok(Some(handle)),
            _ => Ok(None),
        }
    }

    /// Starts following the log buffer of the loaded service `name` (a
    /// request only braid's daemon knows): the buffer's contents, or
    /// `None` when the service is not loaded or keeps no buffer. Then
    /// `next_output` gives what it writes.
    pub fn follow_log(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let req = Request::BraidFollowLog {
            name: name.as_bytes().to_vec(),
        };
        match self.request(&req, StatusVersion::V1)? {
            Reply::ServiceLog { data, .. } => Ok(Some(data)),
            Reply::BadReq => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the daemon cannot follow a log buffer (it is not braid's)",
            )),
            _ => Ok(None),
        }
    }

    /// The next output of the followed service, waiting as long as it
    /// takes; `None` once the daemon closed the connection (it exited, or
    /// the service was unloaded).
    pub fn next_output(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.stream.set_read_timeout(None)?;
        let next = self.reply(StatusVersion::V1);
        self.stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        match next {
            Ok(Reply::ServiceLog { data, .. }) => Ok(Some(data)),
            Ok(_) => Err(protocol_error("unexpected packet while following")),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The service's in-memory log (`log-type = buffer`), if it has one.
    pub fn log_buffer(&mut self, handle: Handle) -> io::Result<Option<Vec<u8>>> {
        match self.request(&Request::CatLog { flags: 0, handle }, StatusVersion::V1)? {
            Reply::ServiceLog { data, .. } => Ok(Some(data)),
            _ => Ok(None),
        }
    }
}
