//! Noticing changes to the services directory: an inotify watch on it
//! (entries created, deleted, renamed in or out; the directory itself
//! deleted or moved), registered with the runtime, so that a new or
//! removed service is seen within milliseconds and nothing polls.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

#[derive(Debug)]
pub struct Watch {
    inotify: Inotify,
    dir: PathBuf,
    wd: Option<WatchDescriptor>,
}

fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

impl Watch {
    pub fn new(dir: &Path) -> nix::Result<Watch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut watch = Watch {
            inotify,
            dir: dir.to_path_buf(),
            wd: None,
        };
        watch.rewatch();
        Ok(watch)
    }

    pub fn fd(&self) -> RawFd {
        self.inotify.as_fd().as_raw_fd()
    }

    /// Whether the directory is being watched (it exists).
    pub fn is_watching(&self) -> bool {
        self.wd.is_some()
    }

    /// Watches the directory at its path again (it may have been replaced).
    fn rewatch(&mut self) {
        if let Some(wd) = self.wd.take() {
            let _ = self.inotify.rm_watch(wd);
        }
        self.wd = self.inotify.add_watch(&self.dir, flags()).ok();
    }

    /// Reads every pending event; returns whether any arrived. When the
    /// directory itself went away or moved, watches its path anew.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        let mut replaced = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            any = true;
            replaced |= events.iter().any(|e| {
                e.mask.intersects(
                    AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF
                        | AddWatchFlags::IN_IGNORED,
                )
            });
        }
        if replaced {
            self.rewatch();
        }
        any
    }

    /// Tries to watch the directory if it was not there before.
    pub fn retry(&mut self) {
        if self.wd.is_none() {
            self.rewatch();
        }
    }
}
