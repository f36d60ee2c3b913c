//! An environment directory, read with chpst's `-e` rules and watched with
//! inotify, so that a session's environment can be changed while braid
//! runs: services launched after a change get the new values.
//!
//! Rules (chpst(8) `-e`): each file `K` whose name does not start with `.`
//! and has no `=` sets `K` to the file's first line, with trailing spaces
//! and tabs stripped and NUL bytes turned into newlines; an empty (0-byte)
//! file unsets `K`. Beyond chpst, which reads the directory once: a file
//! that is removed (or renamed away) unsets its variable, since the
//! directory is the live source of those variables.
//!
//! Changes are picked up when a writer closes the file (`IN_CLOSE_WRITE`)
//! or renames it in (`IN_MOVED_TO`), never half-written. A writer that
//! closes its file before it signals anything else to braid (a service
//! that then reports readiness, say) is seen first: the inotify event is
//! queued before the later signal, and a turn of the loop handles every
//! ready fd before it launches anything.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use mio::Interest;
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{HandlerResult, Runtime, SourceToken};

/// One variable's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(OsString, OsString),
    Unset(OsString),
}

impl Change {
    pub fn name(&self) -> &OsStr {
        match self {
            Change::Set(n, _) | Change::Unset(n) => n,
        }
    }
}

/// Whether a directory entry names a variable (chpst skips dot files, and
/// a name with `=` cannot be one).
pub fn is_variable_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b[0] != b'.' && !b.contains(&b'=')
}

/// The value a file's contents give: `None` unsets.
pub fn value_of(contents: &[u8]) -> Option<OsString> {
    if contents.is_empty() {
        return None;
    }
    let line = match contents.iter().position(|b| *b == b'\n') {
        Some(end) => &contents[..end],
        None => contents,
    };
    let kept = line
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |last| last + 1);
    let value: Vec<u8> = line[..kept]
        .iter()
        .map(|b| if *b == 0 { b'\n' } else { *b })
        .collect();
    Some(OsString::from_vec(value))
}

/// What the file `name` in `dir` says now: a missing file unsets.
fn read_one(dir: &Path, name: &OsStr) -> io::Result<Change> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(match value_of(&bytes) {
            Some(v) => Change::Set(name.to_os_string(), v),
            None => Change::Unset(name.to_os_string()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Change::Unset(name.to_os_string())),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("{}: {e}", dir.join(name).display()),
        )),
    }
}

/// Every variable the directory sets or unsets, in name order. Entries
/// that cannot be read are skipped (and reported in the second list).
pub fn read_dir(dir: &Path) -> io::Result<(Vec<Change>, Vec<io::Error>)> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let names: BTreeSet<OsString> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.file_name())
        .filter(|n| is_variable_name(n))
        .collect();
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match read_one(dir, &name) {
            Ok(c) => changes.push(c),
            Err(e) => errors.push(e),
        }
    }
    Ok((changes, errors))
}

/// Applies changes to the runtime's base environment (the environment
/// every service's is built on).
pub fn apply_to_base_env(rt: &mut Runtime, changes: &[Change]) {
    let env = rt.base_env_mut();
    for c in changes {
        match c {
            Change::Set(k, v) => {
                env.insert(k.clone(), v.clone());
            }
            Change::Unset(k) => {
                env.shift_remove(k);
            }
        }
    }
}

/// Called with what changed: at once with the whole directory, then with
/// each batch of changes; errors reading a file are passed as text.
pub type OnChange = Box<dyn FnMut(&mut Runtime, &[Change], &[String])>;

/// Watches `dir`: `on_change` gets its current contents now (before this
/// returns) and every later change from the event loop. The directory
/// must exist. If it is removed, watching ends (reported as an error).
pub fn watch(
    rt: &mut Runtime,
    dir: &Path,
    mut on_change: impl FnMut(&mut Runtime, &[Change], &[String]) + 'static,
) -> io::Result<SourceToken> {
    let errno = |what: &str, e: Errno| {
        io::Error::new(
            io::Error::from_raw_os_error(e as i32).kind(),
            format!("{what} {}: {}", dir.display(), e.desc()),
        )
    };
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| errno("inotify for", e))?;
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR;
    inotify
        .add_watch(dir, mask)
        .map_err(|e| errno("watching", e))?;
    // The first read happens after the watch exists: nothing is missed.
    let (changes, errors) = read_dir(dir)?;
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    on_change(rt, &changes, &texts);

    let dir: PathBuf = dir.to_path_buf();
    let fd = inotify.as_fd().as_raw_fd();
    rt.register_fd_early(fd, Interest::READABLE, move |rt: &mut Runtime, _, _| {
        let mut names: BTreeSet<OsString> = BTreeSet::new();
        let mut rescan = false;
        let mut gone = false;
        loop {
            match inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for ev in events {
                        if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            rescan = true;
                        }
                        if ev.mask.intersects(
                            AddWatchFlags::IN_DELETE_SELF
                                | AddWatchFlags::IN_MOVE_SELF
                                | AddWatchFlags::IN_IGNORED,
                        ) {
                            gone = true;
                        }
                        if let Some(name) = ev.name.filter(|n| is_variable_name(n)) {
                            names.insert(name);
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        let mut changes = Vec::new();
        let mut errors = Vec::new();
        if rescan {
            match read_dir(&dir) {
                Ok((c, e)) => {
                    changes = c;
                    errors.extend(e.iter().map(ToString::to_string));
                }
                Err(e) => errors.push(e.to_string()),
            }
        } else {
            for name in &names {
                match read_one(&dir, name) {
                    Ok(c) => changes.push(c),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        if gone {
            errors.push(format!(
                "{}: the environment directory went away; no longer watched",
                dir.display()
            ));
        }
        if !changes.is_empty() || !errors.is_empty() {
            on_change(rt, &changes, &errors);
        }
        if gone {
            HandlerResult::Remove
        } else {
            HandlerResult::Keep
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chpst_rules_for_one_file() {
        assert_eq!(value_of(b""), None);
        assert_eq!(value_of(b"\n"), Some("".into()));
        assert_eq!(value_of(b"abc \t \nsecond\n"), Some("abc".into()));
        assert_eq!(value_of(b"a\0b"), Some("a\nb".into()));
        assert_eq!(value_of(b"  lead"), Some("  lead".into()));
    }

    #[test]
    fn names_skip_dot_files_and_equals() {
        assert!(is_variable_name(OsStr::new("DISPLAY")));
        assert!(!is_variable_name(OsStr::new(".hidden")));
        assert!(!is_variable_name(OsStr::new("A=B")));
        assert!(!is_variable_name(OsStr::new("")));
    }
}
