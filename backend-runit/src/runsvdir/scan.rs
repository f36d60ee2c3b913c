//! runsvdir's table of service directories: every entry of the services
//! directory that is a directory (symlinks followed) and whose name does
//! not start with `.`, known by its (device, inode) — so renaming an entry
//! changes nothing, pointing a symlink elsewhere replaces the service, and
//! two names for one directory give one supervisor.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::watch::Watch;
use crate::errstr::io_errstr;

/// runsvdir supervises at most this many directories.
pub const MAX_SERVICES: usize = 1000;

#[derive(Debug)]
struct Entry {
    dev: u64,
    ino: u64,
    /// Its supervisor, while there is one.
    key: Option<u64>,
}

#[derive(Debug)]
pub struct Scan {
    /// The services directory as given (messages name it so).
    dir: PathBuf,
    entries: Vec<Entry>,
    /// The inotify watch on `dir`, once there is one.
    pub watch: Option<Watch>,
}

/// What a scan found to do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Supervisors whose entry is gone.
    pub gone: Vec<u64>,
    /// Entries without a supervisor: (slot for `started`, path, name).
    pub new: Vec<(usize, PathBuf, String)>,
}

impl Scan {
    pub fn new(dir: PathBuf) -> Scan {
        Scan {
            dir,
            entries: Vec::new(),
            watch: None,
        }
    }

    fn warn(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("runsvdir {}: warning: {msg}", self.dir.display());
    }

    /// Reads the directory and updates the table. Problems are printed as
    /// runsvdir's warnings; a directory that cannot be read leaves the
    /// table as it was.
    pub fn plan(&mut self) -> Plan {
        let mut plan = Plan::default();
        let read = match fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) => {
                self.warn(format_args!(
                    "unable to open directory {}: {}",
                    self.dir.display(),
                    io_errstr(&e)
                ));
                return plan;
            }
        };
        let mut seen = vec![false; self.entries.len()];
        let mut names: Vec<String> = Vec::new();
        for entry in read {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.warn(format_args!(
                        "unable to read directory {}: {}",
                        self.dir.display(),
                        io_errstr(&e)
                    ));
                    return Plan::default();
                }
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let path = self.dir.join(&name);
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    self.warn(format_args!("unable to stat {name}: {}", io_errstr(&e)));
                    continue;
                }
            };
            if !meta.is_dir() {
                continue;
            }
            let known = self
                .entries
                .iter()
                .position(|e| e.dev == meta.dev() && e.ino == meta.ino());
            let slot = match known {
                Some(slot) => {
                    seen[slot] = true;
                    slot
                }
                None => {
                    if self.entries.len() >= MAX_SERVICES {
                        self.warn(format_args!(
                            "unable to start runsv {name}: too many services."
                        ));
                        continue;
                    }
                    self.entries.push(Entry {
                        dev: meta.dev(),
                        ino: meta.ino(),
                        key: None,
                    });
                    seen.push(true);
                    self.entries.len() - 1
                }
            };
            if self.entries[slot].key.is_none() {
                // A supervisor starting again takes the entry's name now.
                plan.new.push((slot, path, name));
            }
        }
        // Drop what was not seen; the slots in `plan.new` after a removed
        // one move down with it.
        for slot in (0..self.entries.len()).rev() {
            if seen[slot] {
                continue;
            }
            let gone = self.entries.remove(slot);
            plan.gone.extend(gone.key);
            for (s, _, _) in &mut plan.new {
                if *s > slot {
                    *s -= 1;
                }
            }
        }
        plan
    }

    /// Records the supervisor started for the entry in `slot`.
    pub fn started(&mut self, slot: usize, key: Option<u64>) {
        if let Some(entry) = self.entries.get_mut(slot) {
            entry.key = key;
        }
    }

    /// The supervisor `key` has exited; its entry, if still there, gets a
    /// new one at the next scan.
    pub fn forget(&mut self, key: u64) {
        for entry in &mut self.entries {
            if entry.key == Some(key) {
                entry.key = None;
            }
        }
    }
}
