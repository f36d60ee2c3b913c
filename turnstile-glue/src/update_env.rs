//! `turnstile-update-runit-env [VAR | VAR=VAL]...`: sets values in the
//! shared envdir that runit-face services read with `chpst -e
//! "$TURNSTILE_ENV_DIR"`. The directory is `service_env_dir` of turnstile's
//! `runit.conf` (default `$HOME/.config/service-env`).
//!
//! As turnstile's script does, `VAR=VAL` writes `VAL` and a newline to the
//! file `VAR`, and a bare `VAR` writes the caller's `$VAR` (empty if
//! unset); with no arguments or `-h` it prints its usage and exits 0. Unlike
//! the script, the value is written as given — it is not evaluated by the
//! shell a second time — and names that cannot be file names are refused.
//!
//! The conf directory is turnstile's (`/etc/turnstile/backend`), or
//! `$BRAID_TURNSTILE_CONF_DIR` if set.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::backend::conf::{self, DEFAULT_CONF_DIR};

/// Overrides the conf directory (tests, non-standard installs).
pub const CONF_DIR_VAR: &str = "BRAID_TURNSTILE_CONF_DIR";

const USAGE: &str = "\
usage: turnstile-update-runit-env [VAR | VAR=VALUE]...
Sets variables in the environment directory shared by the runit services
of turnstile's user session (service_env_dir of runit.conf). A bare VAR
takes its value from this environment. Services see new values when they
next start.
";

/// The program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let args = &argv[argv.len().min(1)..];
    if args.is_empty() || args[0] == "-h" {
        print!("{USAGE}");
        return 0;
    }
    let conf_dir = std::env::var_os(CONF_DIR_VAR).unwrap_or_else(|| DEFAULT_CONF_DIR.into());
    let dir = match env_dir(Path::new(&conf_dir)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("turnstile-update-runit-env: {e}");
            return 1;
        }
    };
    let mut status = 0;
    for arg in args {
        if let Err(e) = update(&dir, arg) {
            eprintln!("turnstile-update-runit-env: {e}");
            status = 1;
        }
    }
    status
}

/// `service_env_dir` as `runit.conf` in `conf_dir` sets it.
pub fn env_dir(conf_dir: &Path) -> Result<PathBuf, conf::ConfError> {
    let home = std::env::var_os("HOME").unwrap_or_default();
    let values = conf::evaluate(
        &conf_dir.join("runit.conf"),
        &["service_env_dir"],
        None,
        Path::new("/"),
    )?;
    let mut default = home;
    default.push("/.config/service-env");
    Ok(PathBuf::from(values.get_or("service_env_dir", default)))
}

/// Writes one `VAR` or `VAR=VAL` into `dir`.
fn update(dir: &Path, arg: &OsStr) -> Result<(), String> {
    let bytes = arg.as_bytes();
    let (name, value) = match bytes.iter().position(|b| *b == b'=') {
        Some(eq) => (
            OsStr::from_bytes(&bytes[..eq]),
            OsStr::from_bytes(&bytes[eq + 1..]).to_os_string(),
        ),
        None => (arg, std::env::var_os(arg).unwrap_or_default()),
    };
    if name.is_empty() || name.as_bytes().contains(&b'/') || name == "." || name == ".." {
        return Err(format!("{:?}: not a variable name", name));
    }
    let path = dir.join(name);
    let mut content = value.into_vec();
    content.push(b'\n');
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&content))
        .map_err(|e| format!("{}: {e}", path.display()))
}
