//! Log files that do not fill the disk: a size rule shared with svlogd, and
//! a file that is rotated by it, keeping a bounded number of old files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::spec::Rotation;

/// svlogd's size rule: a file that has reached `max` bytes is rotated
/// before anything more is written to it, and a write takes at most what
/// still fits below `max`. A `max` of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit(pub u64);

impl SizeLimit {
    /// Whether a file of `size` bytes must be rotated before the next write.
    pub fn is_full(self, size: u64) -> bool {
        self.0 > 0 && size >= self.0
    }

    /// How many of `len` bytes go into a file of `size` bytes.
    pub fn fits(self, size: u64, len: usize) -> usize {
        if self.0 == 0 {
            return len;
        }
        len.min(usize::try_from(self.0.saturating_sub(size)).unwrap_or(usize::MAX))
    }
}

/// A log file at `path` holding at most `rotation.size` bytes. When full it
/// is renamed `path.1` (an older `path.1` becomes `path.2`, and so on),
/// `path.<count>` is dropped, and a new `path` is started: what a
/// logrotate user finds beside a plain log file.
///
/// A cut falls after the last whole line that fits; only a line longer
/// than the room left in a file that does not end at a line boundary is
/// split. Nothing written is lost between the files.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    mode: u32,
    limit: SizeLimit,
    count: u32,
    file: File,
    size: u64,
    /// The file is empty or its last byte is a newline.
    at_line_start: bool,
}

impl RotatingFile {
    /// Opens (creating with `mode`) `path` for appending.
    pub fn open(path: &Path, mode: u32, rotation: Rotation) -> io::Result<RotatingFile> {
        let file = open_append(path, mode)?;
        let size = file.metadata()?.len();
        // Whether the file ends a line (taken as so if it cannot be read).
        let mut last = [b'\n'];
        if size > 0 {
            if let Ok(reader) = File::open(path) {
                let _ = reader.read_exact_at(&mut last, size - 1);
            }
        }
        Ok(RotatingFile {
            path: path.to_path_buf(),
            mode,
            limit: SizeLimit(rotation.size),
            count: rotation.count,
            file,
            size,
            at_line_start: last[0] == b'\n',
        })
    }

    /// Appends `bytes`, rotating as often as needed. On an error the rest
    /// of `bytes` is not written.
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.limit.is_full(self.size) {
                self.rotate()?;
            }
            let fits = self.limit.fits(self.size, bytes.len());
            let take = if fits == bytes.len() {
                fits
            } else {
                match bytes[..fits].iter().rposition(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    // The next line does not fit: start it in a new file.
                    None if self.size > 0 && self.at_line_start => 0,
                    None => fits,
                }
            };
            if take == 0 {
                self.rotate()?;
                continue;
            }
            self.file.write_all(&bytes[..take])?;
            self.size += take as u64;
            self.at_line_start = bytes[take - 1] == b'\n';
            bytes = &bytes[take..];
            if !bytes.is_empty() && take < fits {
                // Cut at a line boundary short of the limit.
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// `path.<n>` for an old file.
    fn old(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Shifts the old files up by one (dropping the last) and starts a new
    /// `path`.
    fn rotate(&mut self) -> io::Result<()> {
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        ignore_missing(std::fs::remove_file(self.old(self.count)))?;
        for n in (1..self.count).rev() {
            ignore_missing(std::fs::rename(self.old(n), self.old(n + 1)))?;
        }
        std::fs::rename(&self.path, self.old(1))?;
        self.file = open_append(&self.path, self.mode)?;
        self.size = 0;
        self.at_line_start = true;
        Ok(())
    }
}

fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("braid-logfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn size_rule() {
        assert!(!SizeLimit(0).is_full(u64::MAX));
        assert_eq!(SizeLimit(0).fits(5, 9), 9);
        assert!(SizeLimit(10).is_full(10));
        assert!(!SizeLimit(10).is_full(9));
        assert_eq!(SizeLimit(10).fits(7, 9), 3);
        assert_eq!(SizeLimit(10).fits(12, 9), 0);
    }

    #[test]
    fn whole_lines_rotate_and_the_oldest_goes() {
        let d = dir("lines");
        let log = d.join("svc.log");
        let rotation = Rotation { size: 10, count: 2 };
        let mut f = RotatingFile::open(&log, 0o600, rotation).unwrap();
        // However the lines arrive, the cuts fall at the same places.
        f.write(b"aaaa\nbbbb\ncccc\n").unwrap();
        f.write(b"dddd\n").unwrap();
        f.write(b"ee").unwrap();
        f.write(b"ee\nffff\n").unwrap();
        assert_eq!(read(log.clone()), "eeee\nffff\n");
        assert_eq!(read(d.join("svc.log.1")), "cccc\ndddd\n");
        assert_eq!(read(d.join("svc.log.2")), "aaaa\nbbbb\n");
        f.write(b"g\n").unwrap();
        assert_eq!(read(log), "g\n");
        assert_eq!(read(d.join("svc.log.1")), "eeee\nffff\n");
        assert_eq!(read(d.join("svc.log.2")), "cccc\ndddd\n");
        assert!(!d.join("svc.log.3").exists());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn long_lines_are_split_at_the_limit() {
        let d = dir("long");
        let log = d.join("l");
        let mut f = RotatingFile::open(&log, 0o600, Rotation { size: 4, count: 3 }).unwrap();
        f.write(b"0123456789\n").unwrap();
        assert_eq!(read(d.join("l.2")), "0123");
        assert_eq!(read(d.join("l.1")), "4567");
        assert_eq!(read(log), "89\n");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_existing_file_counts_toward_the_limit() {
        let d = dir("existing");
        let log = d.join("l");
        std::fs::write(&log, "12345678").unwrap();
        let mut f = RotatingFile::open(&log, 0o600, Rotation { size: 10, count: 1 }).unwrap();
        f.write(b"abc\n").unwrap();
        assert_eq!(read(d.join("l.1")), "12345678ab");
        assert_eq!(read(log), "c\n");
        std::fs::remove_dir_all(d).unwrap();
    }
}
