//! Reading turnstile's backend confs. They are POSIX shell fragments
//! (`services_dir="${HOME}/.config/service"`, and any shell at all), so they
//! are evaluated by `/bin/sh` exactly as the stock backends source them,
//! and the shell prints the values asked for, NUL-terminated.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::collections::HashMap;

/// Where turnstile keeps backend confs on a standard install.
pub const DEFAULT_CONF_DIR: &str = "/etc/turnstile/backend";

/// Why a conf could not be read.
#[derive(Debug)]
pub enum ConfError {
    /// `/bin/sh` could not be run.
    Shell(io::Error),
    /// Evaluating the file failed (the shell said why on stderr).
    Failed { path: PathBuf, status: String },
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfError::Shell(e) => write!(f, "cannot run /bin/sh: {e}"),
            ConfError::Failed { path, status } => {
                write!(f, "{}: evaluating it failed ({status})", path.display())
            }
        }
    }
}

impl std::error::Error for ConfError {}

/// The values of a conf's variables (unset ones are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values(HashMap<String, OsString>);

impl Values {
    /// The value of `key`, or `default` if it is unset or empty (the stock
    /// backends' `${key:=default}`).
    pub fn get_or(&self, key: &str, default: impl Into<OsString>) -> OsString {
        match self.0.get(key) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => default.into(),
        }
    }

    /// The value of `key` (empty if unset).
    pub fn get(&self, key: &str) -> &OsStr {
        self.0.get(key).map(OsString::as_os_str).unwrap_or_default()
    }

    /// `prefix1`, `prefix2`, … up to the first empty one, in order.
    pub fn numbered(&self, prefix: &str) -> Vec<OsString> {
        (1..)
            .map(|n| self.get(&format!("{prefix}{n}")).to_os_string())
            .take_while(|v| !v.is_empty())
            .collect()
    }
}

/// Sources `path` (if readable) with `/bin/sh` under `set -e`, in `cwd`,
/// with this process's environment, and reads back `keys` and the numbered
/// variables `numbered1`, `numbered2`, … up to the first empty one. What
/// the file itself prints goes to stderr.
pub fn evaluate(
    path: &Path,
    keys: &[&str],
    numbered: Option<&str>,
    cwd: &Path,
) -> Result<Values, ConfError> {
    // The keys are braid's own identifiers, never user text.
    let mut script = String::from("exec 3>&1 1>&2\nset -e\nif [ -r \"$1\" ]; then . \"$1\"; fi\n");
    for key in keys {
        script.push_str(&format!("printf '%s=%s\\0' {key} \"${{{key}-}}\" >&3\n"));
    }
    if let Some(prefix) = numbered {
        script.push_str(&format!(
            "n=1\nwhile :; do eval \"v=\\${{{prefix}$n-}}\"; [ -n \"$v\" ] || break; \
             printf '%s=%s\\0' \"{prefix}$n\" \"$v\" >&3; n=$((n + 1)); done\n"
        ));
    }
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .arg("sh")
        .arg(path)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(ConfError::Shell)?;
    if !out.status.success() {
        return Err(ConfError::Failed {
            path: path.to_path_buf(),
            status: out.status.to_string(),
        });
    }
    let mut values = HashMap::new();
    for item in out.stdout.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        if let Some(eq) = item.iter().position(|b| *b == b'=') {
            let key = String::from_utf8_lossy(&item[..eq]).into_owned();
            values.insert(key, OsStr::from_bytes(&item[eq + 1..]).to_os_string());
        }
    }
    Ok(Values(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> (PathBuf, PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braid-conf-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.conf");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn shell_syntax_and_expansions_are_evaluated() {
        let (dir, path) = conf(
            "# comment\nbase=/srv\nready_sv=\"turnstile-ready\"\nservices_dir=\"${base}/service\" # trailing\necho noise\n",
        );
        let v = evaluate(&path, &["ready_sv", "services_dir", "unset"], None, &dir).unwrap();
        assert_eq!(v.get("ready_sv"), "turnstile-ready");
        assert_eq!(v.get("services_dir"), "/srv/service");
        assert_eq!(v.get_or("unset", "dflt"), "dflt");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn numbered_values_stop_at_the_first_gap() {
        let (dir, path) = conf("d1='/a b'\nd2=/c\nd4=/never\n");
        let v = evaluate(&path, &[], Some("d"), &dir).unwrap();
        assert_eq!(v.numbered("d"), ["/a b", "/c"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_file_gives_defaults_and_a_failing_one_an_error() {
        let (dir, path) = conf("false\nx=1\n");
        let missing = evaluate(&dir.join("nope"), &["x"], None, &dir).unwrap();
        assert_eq!(missing.get_or("x", "d"), "d");
        let err = evaluate(&path, &["x"], None, &dir).unwrap_err();
        assert!(err.to_string().contains("evaluating it failed"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
