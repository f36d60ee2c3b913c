//! Where services' output goes when braid keeps hold of it: a pipe that
//! outlives the processes at either end, and what braid reads from such a
//! pipe into a bounded in-memory buffer or a rotated log file.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::logfile::RotatingFile;

/// A pipe braid holds both ends of, so that neither end ever sees EOF or
/// SIGPIPE when the process at the other end exits: a restarted producer
/// writes into the same pipe, a restarted consumer reads what was left.
///
/// Both ends are close-on-exec (children get copies at 0, 1 or 2) and
/// blocking, because the blocking mode belongs to the shared open file and
/// a child's stdout must block; only a read end that braid itself reads is
/// made non-blocking (`nonblocking_read`).
#[derive(Debug)]
pub struct OutputPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl OutputPipe {
    pub fn new(nonblocking_read: bool) -> io::Result<OutputPipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        if nonblocking_read {
            fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        Ok(OutputPipe { read, write })
    }

    pub fn read_end(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    pub fn write_end(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

/// At most `capacity` bytes of output; what does not fit is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBuffer {
    data: Vec<u8>,
    capacity: usize,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            data: Vec::new(),
            capacity,
        }
    }

    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    pub fn clear(&mut self) {
        self.data.clear();
    }

    /// Appends what fits of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = self.capacity.saturating_sub(self.data.len());
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Marks a relaunch: when the buffer holds output, appends `note`
    /// (without its leading newline if the buffer already ends with one),
    /// and only if all of it fits.
    pub fn note_restart(&mut self, note: &[u8]) {
        if self.data.is_empty() {
            return;
        }
        let note = match note.split_first() {
            Some((b'\n', rest)) if self.data.ends_with(b"\n") => rest,
            _ => note,
        };
        if self.data.len() + note.len() <= self.capacity {
            self.data.extend_from_slice(note);
        }
    }
}

/// Where a `ReadSink` keeps what it reads.
#[derive(Debug)]
pub enum Store {
    /// In memory (`Output::Buffer`).
    Memory(LogBuffer),
    /// In a file braid rotates (`Output::File` with a rotation).
    File(RotatingFile),
}

/// A service's output that braid reads: the pipe its processes write to,
/// and where what is read from it goes.
#[derive(Debug)]
pub struct ReadSink {
    pub pipe: OutputPipe,
    pub store: Store,
}

impl ReadSink {
    /// Output kept in memory, up to `capacity` bytes.
    pub fn memory(capacity: usize) -> io::Result<ReadSink> {
        Ok(ReadSink {
            pipe: OutputPipe::new(true)?,
            store: Store::Memory(LogBuffer::new(capacity)),
        })
    }

    /// Output written to `file`.
    pub fn file(file: RotatingFile) -> io::Result<ReadSink> {
        Ok(ReadSink {
            pipe: OutputPipe::new(true)?,
            store: Store::File(file),
        })
    }

    pub fn buffer(&self) -> Option<&LogBuffer> {
        match &self.store {
            Store::Memory(b) => Some(b),
            Store::File(_) => None,
        }
    }

    pub fn buffer_mut(&mut self) -> Option<&mut LogBuffer> {
        match &mut self.store {
            Store::Memory(b) => Some(b),
            Store::File(_) => None,
        }
    }

    /// Reads everything the pipe holds into the store, and a copy into
    /// `tap` when given. What does not fit a buffer is read and dropped (so
    /// writers never block on a full buffer), as is what a file refuses:
    /// the first such error is returned once the pipe is empty.
    pub fn fill(&mut self, mut tap: Option<&mut Vec<u8>>) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let mut failed = Ok(());
        loop {
            match nix::unistd::read(self.pipe.read_end().as_raw_fd(), &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = &chunk[..n];
                    if let Some(tap) = tap.as_deref_mut() {
                        tap.extend_from_slice(bytes);
                    }
                    match &mut self.store {
                        Store::Memory(b) => b.push(bytes),
                        Store::File(f) => {
                            if let (Err(e), Ok(())) = (f.write(bytes), &failed) {
                                failed = Err(e);
                            }
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &[u8] = b"\n(note: restarted)\n";

    #[test]
    fn buffer_keeps_what_fits() {
        let mut buf = LogBuffer::new(8);
        buf.push(b"hello ");
        buf.push(b"world");
        assert_eq!(buf.contents(), b"hello wo");
        buf.clear();
        assert_eq!(buf.contents(), b"");
    }

    #[test]
    fn restart_note_rules() {
        let mut buf = LogBuffer::new(100);
        buf.note_restart(NOTE);
        assert_eq!(buf.contents(), b"", "nothing noted in an empty buffer");
        buf.push(b"a");
        buf.note_restart(NOTE);
        assert_eq!(buf.contents(), b"a\n(note: restarted)\n");
        buf.note_restart(NOTE);
        assert_eq!(buf.contents(), b"a\n(note: restarted)\n(note: restarted)\n");

        let mut small = LogBuffer::new(10);
        small.push(b"abc");
        small.note_restart(NOTE);
        assert_eq!(
            small.contents(),
            b"abc",
            "a note that does not fit is dropped"
        );
    }

    #[test]
    fn sink_reads_the_pipe() {
        let mut sink = ReadSink::memory(5).unwrap();
        nix::unistd::write(sink.pipe.write_end(), b"0123456789").unwrap();
        sink.fill(None).unwrap();
        assert_eq!(sink.buffer().unwrap().contents(), b"01234");
        let mut tap = Vec::new();
        nix::unistd::write(sink.pipe.write_end(), b"more").unwrap();
        sink.fill(Some(&mut tap)).unwrap();
        assert_eq!(sink.buffer().unwrap().contents(), b"01234");
        assert_eq!(tap, b"more", "the tap gets what the buffer drops");
    }
}
