//! Waiting on a gate: the `ready` side of the protocol.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Verdict;

/// How long past the server's announced deadline the client still waits
/// for the verdict before giving up on the manager itself.
const GRACE: Duration = Duration::from_secs(2);

/// Longest line the client keeps waiting for the end of: far above any
/// real one (a `waiting:` list of service names), and a bound on memory
/// when the other end never sends a newline.
const MAX_LINE: usize = 64 * 1024;

/// Why waiting did not end with the gate open.
#[derive(Debug)]
pub enum WaitError {
    /// Nothing that speaks the gate protocol listens there.
    Connect(io::Error),
    /// The gate failed: this service, for this reason.
    Failed { service: String, reason: String },
    /// No verdict in time; the services still awaited at the last word.
    TimedOut { waiting: Vec<String> },
    /// The manager closed the connection or said something unexpected.
    Protocol(String),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Connect(e) => write!(f, "cannot reach the service manager: {e}"),
            WaitError::Failed { service, reason } => write!(f, "{service}: {reason}"),
            WaitError::TimedOut { waiting } if waiting.is_empty() => {
                f.write_str("timed out waiting for the service manager")
            }
            WaitError::TimedOut { waiting } => {
                write!(f, "timed out waiting for: {}", waiting.join(", "))
            }
            WaitError::Protocol(what) => write!(f, "service manager: {what}"),
        }
    }
}

impl std::error::Error for WaitError {}

/// Connects to the gate at `path` and blocks until it opens (`Ok`) or
/// fails. `bound` limits the wait until the server has announced its own
/// deadline (after which that deadline plus a short grace applies).
pub fn wait(path: &Path, bound: Duration) -> Result<(), WaitError> {
    let mut stream = UnixStream::connect(path).map_err(WaitError::Connect)?;
    let mut deadline = Instant::now() + bound;
    let mut greeted = false;
    let mut waiting: Vec<String> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if !greeted {
                let left = parse_greeting(&line)?;
                deadline = Instant::now() + left + GRACE;
                greeted = true;
            } else if let Some(names) = line.strip_prefix("waiting:") {
                waiting = names.split_whitespace().map(str::to_string).collect();
            } else {
                return match parse_verdict(&line)? {
                    Verdict::Open => Ok(()),
                    Verdict::Failed { service, reason } => {
                        Err(WaitError::Failed { service, reason })
                    }
                };
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WaitError::TimedOut { waiting });
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| WaitError::Protocol(e.to_string()))?;
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(WaitError::Protocol(
                    "closed the connection before deciding".to_string(),
                ))
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_LINE && !buf.contains(&b'\n') {
                    return Err(WaitError::Protocol(format!(
                        "sent a line longer than {MAX_LINE} bytes"
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(WaitError::Protocol(e.to_string())),
        }
    }
}

fn parse_greeting(line: &str) -> Result<Duration, WaitError> {
    let bad = || WaitError::Protocol(format!("not a braid gate (said {line:?})"));
    let rest = line.strip_prefix("braid-gate 1 ").ok_or_else(bad)?;
    let ms: u64 = rest.parse().map_err(|_| bad())?;
    Ok(Duration::from_millis(ms))
}

fn parse_verdict(line: &str) -> Result<Verdict, WaitError> {
    if line == "open" {
        return Ok(Verdict::Open);
    }
    let failed = line
        .strip_prefix("failed: ")
        .and_then(|rest| rest.split_once(": "));
    match failed {
        Some((service, reason)) => Ok(Verdict::Failed {
            service: service.to_string(),
            reason: reason.to_string(),
        }),
        None => Err(WaitError::Protocol(format!("unexpected reply {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    /// Found by tests/fuzz_ready.rs: a gate that never sends a newline
    /// made the client buffer everything it sent, without bound.
    #[test]
    fn an_endless_line_is_a_protocol_error() {
        let dir = std::env::temp_dir().join(format!("braid-gate-line-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gate");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let block = [b'a'; 4096];
            // Until the client gives up and closes.
            while conn.write_all(&block).is_ok() {}
        });
        let err = wait(&path, Duration::from_secs(30)).unwrap_err();
        assert!(
            matches!(&err, WaitError::Protocol(m) if m.contains("longer than")),
            "{err}"
        );
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
