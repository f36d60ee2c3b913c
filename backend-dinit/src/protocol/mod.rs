//! The dinit control protocol, version 7: one codec for both ends.
//!
//! The daemon decodes [`Request`]s and encodes [`Reply`]s and [`Info`]
//! packets; a client (our `dinitctl`, `dinit-monitor`) does the opposite.
//! There is no framing header on the wire: every packet has a layout fixed by
//! its first byte, and multi-byte integers are in the machine's native byte
//! order and size (the real daemon copies C objects), so `u32::to_ne_bytes`
//! and friends are used throughout.
//!
//! Decoding is incremental: every `decode` takes the bytes received so far
//! and returns either a packet and the number of bytes it used, or
//! [`DecodeError::Incomplete`] (read more and call again) or
//! [`DecodeError::Malformed`] (the daemon answers BADREQ and closes; a client
//! reports a protocol error). Decoding never panics.

mod codes;
mod reply;
mod request;
mod status;
#[cfg(test)]
mod tests;

pub use codes::{
    cmd, info, rply, DependencyType, ServiceEvent, ServiceState, ShutdownType, StopReason,
};
pub use reply::{Incoming, Info, Reply};
pub use request::{start_flags, Request};
pub use status::{Status, StatusVersion, Timespec};

/// Highest protocol version this codec speaks.
pub const PROTOCOL_VERSION: u16 = 7;
/// Oldest protocol version a peer may speak to this one.
pub const MIN_COMPAT_VERSION: u16 = 1;
/// Size of the daemon's receive buffer: no request may be longer.
pub const RECEIVE_BUFFER_SIZE: usize = 1024;
/// Longest name or environment entry a FIND/LOAD/SETENV request may carry
/// (the packet, with its 3-byte header, must fit the receive buffer).
pub const MAX_NAME_LEN: usize = RECEIVE_BUFFER_SIZE - 3;
/// Upper bound on the size of a variable-length reply this codec will
/// accept (log buffers, environment blocks): guards against a corrupt
/// length asking for gigabytes.
pub const MAX_REPLY_LEN: usize = 64 << 20;

/// A service handle: names one service within one connection.
pub type Handle = u32;

/// Why a byte buffer does not (yet) hold a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer holds the beginning of a valid packet: at least `needed`
    /// bytes in total are required to go further.
    Incomplete { needed: usize },
    /// The bytes cannot be a valid packet; the reason is for logs.
    Malformed(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Incomplete { needed } => {
                write!(f, "incomplete packet ({needed} bytes needed)")
            }
            DecodeError::Malformed(why) => write!(f, "malformed packet: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Service-name validity as the daemon checks it: non-empty, not starting
/// with `.` or `@`.
pub fn valid_service_name(name: &[u8]) -> bool {
    !matches!(name.first(), None | Some(b'.') | Some(b'@'))
}

/// A cursor over received bytes whose reads fail with `Incomplete` when
/// the buffer runs out.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Malformed("length overflow"))?;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::Incomplete { needed: end }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_ne_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_ne_bytes(self.array()?))
    }

    pub(crate) fn usize(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from_ne_bytes(self.array()?))
    }

    /// A length-prefixed byte string whose length was read already,
    /// refused when larger than `max`.
    pub(crate) fn sized(&mut self, len: usize, max: usize) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::Malformed("length exceeds limit"));
        }
        self.bytes(len)
    }
}
