//! The base a relative `run-in-cgroup` is resolved against: `--cgroup-path`
//! when given, otherwise the daemon's own cgroup, read from
//! `/proc/self/cgroup` at startup as dinit reads it (only a single-line,
//! unified-hierarchy entry `0::/path` names one).

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The base, or `Err` with the warning dinit logs when its own cgroup cannot
/// be told; `Ok(None)` when the file cannot be read (dinit says nothing).
pub fn base(cgroup_path: Option<&str>) -> Result<Option<PathBuf>, &'static str> {
    if let Some(path) = cgroup_path {
        return Ok(Some(PathBuf::from(path)));
    }
    match std::fs::read("/proc/self/cgroup") {
        Ok(text) => own_cgroup(&text).map(Some),
        Err(_) => Ok(None),
    }
}

/// The path in a `/proc/self/cgroup` text, without its leading `/`.
fn own_cgroup(text: &[u8]) -> Result<PathBuf, &'static str> {
    let line_end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    if line_end + 1 < text.len() {
        return Err("In multiple cgroups, cannot determine cgroup root path");
    }
    let line = &text[..line_end];
    let mut fields = line.splitn(3, |&b| b == b':');
    let path = match (fields.next(), fields.next(), fields.next()) {
        (Some(_), Some(_), Some(path)) => path,
        _ => return Err("Could not determine cgroup root path"),
    };
    match path.strip_prefix(b"/") {
        Some(rest) => Ok(PathBuf::from(std::ffi::OsStr::from_bytes(rest))),
        None => Err("Could not determine cgroup root path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_entry() {
        assert_eq!(own_cgroup(b"0::/user.slice/x\n"), Ok("user.slice/x".into()));
        assert_eq!(own_cgroup(b"0::/\n"), Ok(PathBuf::new()));
        assert_eq!(own_cgroup(b"0::/a"), Ok("a".into()));
    }

    #[test]
    fn undeterminable() {
        assert!(own_cgroup(b"1:cpu:/\n0::/\n")
            .unwrap_err()
            .starts_with("In multiple cgroups"));
        assert!(own_cgroup(b"0::\n").is_err());
        assert!(own_cgroup(b"0:x\n").is_err());
        assert!(own_cgroup(b"0::rel\n").is_err());
    }
}
