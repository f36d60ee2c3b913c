//! An environment ready for `execve`, built once and shared by launches.
//!
//! Building a launch's environment (a `NAME=value` C string per variable
//! and the pointer array) costs an allocation per variable, freed right
//! after `fork`. Those frees write to heap pages the child still shares
//! until it execs, so the kernel copies each page touched: with a desktop
//! session's environment that was most of a launch's cost. The runtime
//! keeps one block for its base environment, rebuilt only when that
//! changes, and a launch adds only what differs (the service's variables,
//! the readiness fd's variable).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::libc;

use crate::engine::{LaunchFailure, LaunchStage};

/// `NAME=value` entries, in order, each name once, and the null-terminated
/// array of pointers to them that `execve` takes.
#[derive(Debug)]
pub struct EnvBlock {
    entries: Vec<CString>,
    /// Points into `entries`' heap buffers, which never move or change.
    ptrs: Vec<*const libc::c_char>,
}

// SAFETY: `ptrs` only points into the `CString`s this block owns, which
// are never mutated after construction; sharing or moving the block across
// threads is as safe as sharing or moving those strings.
unsafe impl Send for EnvBlock {}
// SAFETY: as above; no method mutates.
unsafe impl Sync for EnvBlock {}

impl EnvBlock {
    /// The block for `vars`; a later value for a name replaces the earlier
    /// one in place. A name or value containing a NUL byte cannot be passed:
    /// the failure of the launches that would use it.
    pub fn new<'e, I, K, V>(vars: I) -> Result<EnvBlock, LaunchFailure>
    where
        I: IntoIterator<Item = (&'e K, &'e V)>,
        K: AsRef<OsStr> + ?Sized + 'e,
        V: AsRef<OsStr> + ?Sized + 'e,
    {
        let mut entries: Vec<CString> = Vec::new();
        for (k, v) in vars {
            let entry = entry(k.as_ref(), v.as_ref()).map_err(|_| LaunchFailure {
                stage: LaunchStage::DoExec,
                errno: Errno::EINVAL,
            })?;
            match entries
                .iter()
                .position(|e| name_of(e) == k.as_ref().as_bytes())
            {
                Some(at) => entries[at] = entry,
                None => entries.push(entry),
            }
        }
        let mut ptrs: Vec<_> = entries.iter().map(|e| e.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(EnvBlock { entries, ptrs })
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &CStr> + '_ {
        self.entries.iter().map(CString::as_c_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.entries().find_map(|e| value_of(e, name))
    }

    /// The null-terminated pointer array for `execve`, valid while the
    /// block lives.
    pub fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// `NAME=value` as a C string; fails on a NUL byte.
pub fn entry(name: &OsStr, value: &OsStr) -> Result<CString, std::ffi::NulError> {
    let mut bytes = Vec::with_capacity(name.len() + value.len() + 1);
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(b'=');
    bytes.extend_from_slice(value.as_bytes());
    CString::new(bytes)
}

/// The name part of an entry (up to its first `=`).
pub fn name_of(entry: &CStr) -> &[u8] {
    let bytes = entry.to_bytes();
    let end = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
    &bytes[..end]
}

/// The value in `entry` if its name is `name`.
pub fn value_of<'a>(entry: &'a CStr, name: &[u8]) -> Option<&'a [u8]> {
    let bytes = entry.to_bytes();
    let rest = bytes.strip_prefix(name)?;
    rest.strip_prefix(b"=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn later_values_replace_in_place_and_pointers_end_with_null() {
        let v = vars(&[("A", "1"), ("B", "2"), ("A", "3")]);
        let block = EnvBlock::new(v.iter().map(|(k, v)| (k, v))).expect("block");
        let texts: Vec<&[u8]> = block.entries().map(CStr::to_bytes).collect();
        assert_eq!(texts, [&b"A=3"[..], b"B=2"]);
        assert_eq!(block.get(b"B"), Some(&b"2"[..]));
        assert_eq!(block.get(b"C"), None);
        // SAFETY: the array has len + 1 elements.
        let last = unsafe { *block.as_ptr().add(block.len()) };
        assert!(last.is_null());
    }

    #[test]
    fn a_nul_byte_is_a_launch_failure() {
        let v = vars(&[("A", "x\0y")]);
        let err = EnvBlock::new(v.iter().map(|(k, v)| (k, v))).unwrap_err();
        assert_eq!(err.errno, Errno::EINVAL);
    }
}
