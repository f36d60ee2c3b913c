//! Sending a log line as one UDP datagram (config `u`/`U`).

use std::net::{SocketAddrV4, UdpSocket};

/// Why a line was not sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UdpError {
    /// No socket could be made.
    NoSocket,
    /// The datagram did not go out whole.
    SendFailed,
}

/// Sends `payload` from a fresh non-blocking socket, as runit does per line.
pub(super) fn send(to: SocketAddrV4, payload: &[u8]) -> Result<(), UdpError> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|_| UdpError::NoSocket)?;
    socket
        .set_nonblocking(true)
        .map_err(|_| UdpError::NoSocket)?;
    match socket.send_to(payload, to) {
        Ok(n) if n == payload.len() => Ok(()),
        _ => Err(UdpError::SendFailed),
    }
}
