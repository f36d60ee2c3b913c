//! Reading an envdir: one variable per file (runit's `edir`).

use super::exec::EnvEdits;
use super::failure::{warn, Failure};
use crate::errstr::errstr;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// How a subdirectory inside the envdir is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubdirPolicy {
    /// `chpst -e`: skipped (with a warning under `-v`).
    Skip { verbose: bool },
    /// The `envdir` program: fatal.
    Fatal,
}

/// Reads every non-dot file of `dir` into `edits`: an empty file removes
/// the variable, otherwise its first line (trailing blanks cut, NULs made
/// newlines) is the value. Like runit, reads from inside the directory and
/// returns to the starting one.
pub(super) fn read(dir: &[u8], edits: &mut EnvEdits, policy: SubdirPolicy) -> Result<(), Failure> {
    let start = Dir::open(".", OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())
        .map_err(|e| Failure::sys(&[b"unable to open current working directory"], e))?;
    let path = std::ffi::OsStr::from_bytes(dir);
    nix::unistd::chdir(path)
        .map_err(|e| Failure::sys(&[b"unable to switch to directory", dir], e))?;
    let mut entries = Dir::open(".", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(|e| Failure::sys(&[b"unable to open directory", dir], e))?;
    // runit reuses one buffer: a file vanishing between readdir and open
    // (a dangling symlink) reuses the previous file's processed bytes.
    let mut content: Vec<u8> = Vec::new();
    for entry in entries.iter() {
        let entry = entry.map_err(|e| Failure::sys(&[b"unable to read directory", dir], e))?;
        let name = entry.file_name().to_bytes();
        if name.first() == Some(&b'.') {
            continue;
        }
        match read_file(name) {
            Ok(Some(bytes)) => content = bytes,
            Ok(None) => {}
            Err(Errno::EISDIR) if policy != SubdirPolicy::Fatal => {
                if policy == (SubdirPolicy::Skip { verbose: true }) {
                    let err = errstr(Errno::EISDIR as i32).as_bytes();
                    warn(&[b"unable to read ", dir, b"/", name, b": ", err]);
                }
                continue;
            }
            Err(e) => {
                let mut what = b"unable to read ".to_vec();
                what.extend_from_slice(dir);
                what.push(b'/');
                what.extend_from_slice(name);
                return Err(Failure::sys(&[&what], e));
            }
        }
        if content.is_empty() {
            edits.set(name, None);
            continue;
        }
        let mut len = content
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(content.len());
        while len > 0 && matches!(content[len - 1], b' ' | b'\t') {
            len -= 1;
        }
        content.truncate(len);
        for b in content.iter_mut() {
            if *b == 0 {
                *b = b'\n';
            }
        }
        edits.set(name, Some(&content));
        // runit leaves its terminating NUL in the reused buffer.
        content.push(0);
    }
    nix::unistd::fchdir(start.as_raw_fd())
        .map_err(|e| Failure::sys(&[b"unable to switch to starting directory"], e))?;
    Ok(())
}

/// The whole file, `None` if it does not exist.
fn read_file(name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(std::ffi::OsStr::from_bytes(name));
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    Ok(Some(bytes))
}
