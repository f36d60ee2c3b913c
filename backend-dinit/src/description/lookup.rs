//! Finding a description file across service directories, and the
//! per-service loader the daemon uses.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use braid_core::spec::ServiceSpec;
use nix::libc;

use super::parse::{parent_path, parse, Context};
use super::{cgroup_dir, split_name, to_spec, LoadError, Problem, ServiceDescription};

/// The service directories dinit uses when none are given: the user
/// directories in user mode (falling back to the system list when no user
/// directory can be formed), else the system list.
pub fn default_service_dirs(system: bool) -> Vec<String> {
    if system {
        return service_dirs_from(true, None, None);
    }
    let xdg = std::env::var("XDG_CONFIG_HOME").ok();
    let home = match std::env::var_os("HOME") {
        Some(h) => Some(h.to_string_lossy().into_owned()),
        None => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned()),
    };
    service_dirs_from(false, xdg.as_deref(), home.as_deref())
}

/// [`default_service_dirs`] given `XDG_CONFIG_HOME` and the home directory.
pub fn service_dirs_from(
    system: bool,
    xdg_config_home: Option<&str>,
    home: Option<&str>,
) -> Vec<String> {
    let mut dirs = Vec::new();
    if !system {
        let xdg = xdg_config_home
            .filter(|x| !x.is_empty())
            .map(|x| x.strip_suffix('/').unwrap_or(x));
        if let Some(x) = xdg {
            dirs.push(format!("{x}/dinit.d"));
        }
        if let Some(h) = home.filter(|h| !h.is_empty()) {
            if xdg != Some(&format!("{h}/.config")) {
                dirs.push(format!("{h}/.config/dinit.d"));
            }
        }
    }
    let rest: &[&str] = if dirs.is_empty() {
        &[
            "/etc/dinit.d",
            "/run/dinit.d",
            "/usr/local/lib/dinit.d",
            "/lib/dinit.d",
        ]
    } else {
        &[
            "/etc/dinit.d/user",
            "/usr/lib/dinit.d/user",
            "/usr/local/lib/dinit.d/user",
        ]
    };
    dirs.extend(rest.iter().map(|s| s.to_string()));
    dirs
}

/// A description file found for a service, read into memory.
#[derive(Debug, Clone)]
pub struct Source {
    /// The full service name.
    pub name: String,
    /// The file as dinit names it: service dir + `/` + base name.
    pub file: String,
    /// The service directory, as listed.
    pub service_dir: String,
    /// The real directory of the file (symlinks followed); relative
    /// includes and env-files resolve against it.
    pub resolve_dir: PathBuf,
    /// The file's bytes, or the errno reading it failed with.
    pub contents: Result<Vec<u8>, i32>,
    pub mtime: Option<SystemTime>,
}

/// Opens `rel` relative to `dir`, following a symlink in the last
/// component by hand so that the directory returned is the real parent of
/// the file opened. Errors are errno values.
pub fn open_following_links(dir: &Path, rel: &str) -> Result<(PathBuf, File), i32> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let mut dir = dir.to_path_buf();
    let mut rel = rel.to_string();
    for _ in 0..=40 {
        let (dir_part, base) = match rel.rfind('/') {
            None => ("", rel.as_str()),
            Some(0) => ("/", &rel[1..]),
            Some(p) => (parent_path(&rel[..p + 1]), &rel[p + 1..]),
        };
        if base.is_empty() {
            return Err(libc::ENOENT);
        }
        let full_dir = if dir_part.is_empty() {
            dir.clone()
        } else {
            dir.join(dir_part)
        };
        let full = full_dir.join(base);
        let meta = std::fs::symlink_metadata(&full).map_err(errno)?;
        if meta.file_type().is_symlink() {
            rel = std::fs::read_link(&full)
                .map_err(errno)?
                .to_string_lossy()
                .into_owned();
            dir = full_dir;
            continue;
        }
        let file = File::open(&full).map_err(errno)?;
        return Ok((full_dir, file));
    }
    Err(libc::ELOOP)
}

/// Finds the description of `name` (`base@arg` → file `base`) in the first
/// of `dirs` that has it.
pub fn find_description(name: &str, dirs: &[String]) -> Result<Source, LoadError> {
    if name.len() > u16::MAX as usize {
        return Err(LoadError::NameTooLong { name: name.into() });
    }
    let (base, _) = split_name(name);
    let mut first_error: Option<(String, i32)> = None;
    for dir in dirs {
        let sep = if dir.ends_with('/') { "" } else { "/" };
        let file_name = format!("{dir}{sep}{base}");
        match open_following_links(Path::new(dir), base) {
            Ok((resolve_dir, mut file)) => {
                let mtime = file.metadata().and_then(|m| m.modified()).ok();
                let mut bytes = Vec::new();
                let contents = match file.read_to_end(&mut bytes) {
                    Ok(_) => Ok(bytes),
                    Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
                };
                return Ok(Source {
                    name: name.to_string(),
                    file: file_name,
                    service_dir: dir.clone(),
                    resolve_dir,
                    contents,
                    mtime,
                });
            }
            Err(e) if e != libc::ENOENT && first_error.is_none() => {
                first_error = Some((file_name, e));
            }
            Err(_) => {}
        }
    }
    Err(match first_error {
        Some((path, errno)) => LoadError::Open {
            name: name.into(),
            path,
            errno,
        },
        None => LoadError::NotFound { name: name.into() },
    })
}

/// A service as the daemon loads it.
#[derive(Debug, Clone)]
pub struct LoadedService {
    pub description: ServiceDescription,
    pub spec: ServiceSpec,
    /// The top-level description file.
    pub path: PathBuf,
    /// Its modification time when loaded.
    pub mtime: Option<SystemTime>,
    /// Problems that did not stop the load (unreadable `*.d` directories).
    pub warnings: Vec<Problem>,
}

/// Loads single services by name for the daemon. Dependencies are named in
/// the result; loading them is the caller's business.
#[derive(Debug, Clone)]
pub struct Loader {
    pub dirs: Vec<String>,
    pub context: Context,
    /// What a relative `run-in-cgroup` is relative to (see
    /// [`super::cgroup_dir`]); `None` when it cannot be resolved.
    pub cgroup_base: Option<PathBuf>,
}

impl Loader {
    pub fn new(dirs: Vec<String>, context: Context) -> Self {
        Loader {
            dirs,
            context,
            cgroup_base: None,
        }
    }

    /// Finds, reads and checks the description of `name`; the first error
    /// in it fails the load.
    pub fn load(&self, name: &str) -> Result<LoadedService, LoadError> {
        let source = find_description(name, &self.dirs)?;
        let mut problems: Vec<Problem> = Vec::new();
        let parsed = parse(&source, &self.context, &mut problems);
        if let Some(first) = problems.iter().find(|p| p.is_error()) {
            return Err(LoadError::Invalid {
                name: name.to_string(),
                problem: first.clone(),
            });
        }
        let description = parsed?;
        let mut spec = to_spec(&description);
        spec.cgroup = cgroup_dir(&description.run_in_cgroup, self.cgroup_base.as_deref());
        Ok(LoadedService {
            spec,
            path: PathBuf::from(&source.file),
            mtime: source.mtime,
            warnings: problems.into_iter().filter(|p| !p.is_error()).collect(),
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_dirs() {
        assert_eq!(
            service_dirs_from(false, Some("/x/"), Some("/h")),
            [
                "/x/dinit.d",
                "/h/.config/dinit.d",
                "/etc/dinit.d/user",
                "/usr/lib/dinit.d/user",
                "/usr/local/lib/dinit.d/user"
            ]
        );
        assert_eq!(
            service_dirs_from(false, Some("/h/.config"), Some("/h"))[..2],
            ["/h/.config/dinit.d", "/etc/dinit.d/user"]
        );
        assert_eq!(
            service_dirs_from(false, Some(""), Some(""))[0],
            "/etc/dinit.d"
        );
        assert_eq!(
            service_dirs_from(true, Some("/x"), Some("/h"))[0],
            "/etc/dinit.d"
        );
    }
}
