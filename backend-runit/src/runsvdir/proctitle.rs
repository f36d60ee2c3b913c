//! runsvdir's log argument: a window onto stderr in the process title.
//!
//! runsvdir points its fd 2 (inherited by everything it starts) at a pipe
//! it reads itself, and shifts what it reads into the memory of its last
//! argument: the first five characters stay, the rest is a shift register
//! where each new byte enters at the end (NUL bytes are dropped). `ps`
//! and `/proc/PID/cmdline` then show the latest messages. Every 15 minutes
//! it writes a dot, so that old messages scroll out.
//!
//! Rust keeps no pointer to the real argv, so the argument is found in the
//! kernel's view of it (`/proc/self/stat` gives where the arguments start,
//! `/proc/self/cmdline` what they are) and rewritten through
//! `/proc/self/mem`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Duration;

/// How often the dot is written.
pub const DOT_INTERVAL: Duration = Duration::from_secs(900);
/// Shorter log arguments are refused.
pub const MIN_LEN: usize = 7;
/// Characters at the start of the argument that never change.
const FIXED: usize = 5;

#[derive(Debug)]
pub struct ProcTitle {
    mem: File,
    addr: u64,
    text: Vec<u8>,
}

impl ProcTitle {
    /// The last of this process's arguments equal to `arg`.
    pub fn find(arg: &[u8]) -> io::Result<ProcTitle> {
        let stat = fs::read_to_string("/proc/self/stat")?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/self/stat");
        // Fields after the command name (which may hold spaces) start at 3;
        // arg_start is field 48.
        let after_comm = stat.rsplit_once(')').ok_or_else(bad)?.1;
        let arg_start: u64 = after_comm
            .split_whitespace()
            .nth(48 - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)?;
        let cmdline = fs::read("/proc/self/cmdline")?;
        let mut offset = 0usize;
        let mut found = None;
        for a in cmdline.split(|&b| b == 0) {
            if a == arg {
                found = Some(offset);
            }
            offset += a.len() + 1;
        }
        let offset = found.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "log argument not in cmdline")
        })?;
        let mem = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")?;
        Ok(ProcTitle {
            mem,
            addr: arg_start + offset as u64,
            text: arg.to_vec(),
        })
    }

    /// Shifts `bytes` in at the end and rewrites the argument.
    pub fn push(&mut self, bytes: &[u8]) {
        let window = self.text.len().saturating_sub(FIXED);
        if window == 0 {
            return;
        }
        let incoming: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
        let tail = &mut self.text[FIXED..];
        if incoming.len() >= window {
            tail.copy_from_slice(&incoming[incoming.len() - window..]);
        } else {
            tail.rotate_left(incoming.len());
            let keep = window - incoming.len();
            tail[keep..].copy_from_slice(&incoming);
        }
        let _ = self.mem.write_at(&self.text, self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_like_runsvdir() {
        // A stand-in whose "memory" is a plain file.
        let path = std::env::temp_dir().join(format!("braid-proctitle-{}", std::process::id()));
        fs::write(&path, b"log: .........").unwrap();
        let mut title = ProcTitle {
            mem: OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
            addr: 0,
            text: b"log: .........".to_vec(),
        };
        title.push(b"ab\0c");
        assert_eq!(fs::read(&path).unwrap(), b"log: ......abc");
        title.push(b"0123456789");
        assert_eq!(fs::read(&path).unwrap(), b"log: 123456789");
        let _ = fs::remove_file(&path);
    }
}
