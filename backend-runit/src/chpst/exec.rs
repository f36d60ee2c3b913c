//! Running the program: runit's environment edits and PATH search.

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// Environment edits to apply at exec, in order: `NAME=value` sets, a bare
/// `NAME` removes.
#[derive(Debug, Default)]
pub(super) struct EnvEdits(Vec<Vec<u8>>);

impl EnvEdits {
    /// The edits so far, in order.
    pub(super) fn entries(&self) -> &[Vec<u8>] {
        &self.0
    }

    pub(super) fn set(&mut self, name: &[u8], value: Option<&[u8]>) {
        let mut entry = name.to_vec();
        if let Some(v) = value {
            entry.push(b'=');
            entry.extend_from_slice(v);
        }
        self.0.push(entry);
    }

    /// The environment the program gets. Like runit, a replaced or removed
    /// variable's slot is filled with the last entry, and new values are
    /// appended; `env` output order depends on this.
    fn apply(&self) -> Vec<Vec<u8>> {
        let mut env: Vec<Vec<u8>> = std::env::vars_os()
            .map(|(k, v)| {
                let mut e = k.as_bytes().to_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                e
            })
            .collect();
        for edit in &self.0 {
            let split = edit.iter().position(|&b| b == b'=').unwrap_or(edit.len());
            let name = &edit[..split];
            if let Some(i) = env
                .iter()
                .position(|e| e.len() > split && &e[..split] == name && e[split] == b'=')
            {
                env.swap_remove(i);
            }
            if split < edit.len() {
                env.push(edit.clone());
            }
        }
        env
    }
}

fn cstring(bytes: &[u8]) -> CString {
    // Arguments come from argv and files with NULs already replaced, so a
    // NUL cannot occur; cut at one defensively rather than fail.
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

/// Execs `file` (searched in chpst's own PATH unless it contains `/`) with
/// `argv` and the edited environment. Returns only on failure, with the
/// errno runit would report.
pub(super) fn run(file: &[u8], argv: &[Vec<u8>], edits: &EnvEdits) -> Errno {
    let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect();
    let env: Vec<CString> = edits.apply().iter().map(|e| cstring(e)).collect();
    // Rust ignores SIGPIPE; an ignored disposition would survive exec.
    // SAFETY: restoring the default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    if file.contains(&b'/') {
        return execve(&cstring(file), &args, &env);
    }
    let path = std::env::var_os("PATH");
    let path: &[u8] = path.as_ref().map_or(b"/bin:/usr/bin", |p| p.as_bytes());
    let mut saved: Option<Errno> = None;
    for dir in path.split(|&b| b == b':') {
        let mut candidate = if dir.is_empty() {
            b".".to_vec()
        } else {
            dir.to_vec()
        };
        candidate.push(b'/');
        candidate.extend_from_slice(file);
        let e = execve(&cstring(&candidate), &args, &env);
        if e != Errno::ENOENT {
            saved = Some(e);
            if !matches!(e, Errno::EACCES | Errno::EPERM | Errno::EISDIR) {
                return e;
            }
        }
    }
    saved.unwrap_or(Errno::ENOENT)
}

fn execve(path: &CString, args: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(path, args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
