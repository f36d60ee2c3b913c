//! `braid install`: lays the links that make braid every program it can be
//! — `sv`, `runsvdir`, `dinitctl`, … in `PREFIX/bin` — and turnstile's two
//! backend programs, `runit` and `dinit`, in turnstile's libexec directory.
//!
//! Every link points at this braid binary. A path that already holds a link
//! to this binary is "ours" and left as it is; anything else there is only
//! replaced with `--force`, and without it nothing at all is changed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The programs linked into `PREFIX/bin`.
pub const BIN_PROGRAMS: &[&str] = &[
    "dinit",
    "dinitctl",
    "dinit-check",
    "dinit-monitor",
    "runsvdir",
    "runsv",
    "sv",
    "chpst",
    "svlogd",
    "envdir",
    "envuidgid",
    "pgrphack",
    "setuidgid",
    "setlock",
    "softlimit",
    "pause",
    "turnstile-update-runit-env",
];

/// turnstile's backend programs, linked into its libexec directory.
pub const BACKENDS: &[&str] = &["runit", "dinit"];

/// Options of `braid install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Install under this prefix (links go to PREFIX/bin).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: PathBuf,
    /// Where turnstile looks for backends (default: PREFIX/libexec/turnstile).
    #[arg(long, value_name = "DIR")]
    pub turnstile_libexec: Option<PathBuf>,
    /// Only print what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace files that are not links to this braid.
    #[arg(long)]
    pub force: bool,
}

/// What to do at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing there: create the link.
    Create,
    /// Already a link to this braid.
    Keep,
    /// Something else is there (described): replace it only with --force.
    Replace(String),
}

/// One link of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub path: PathBuf,
    pub action: Action,
}

/// The links to lay for `args`, pointing at `exe`, and what is at each
/// path now.
pub fn plan(args: &InstallArgs, exe: &Path) -> io::Result<Vec<Step>> {
    let bin = args.prefix.join("bin");
    let libexec = args
        .turnstile_libexec
        .clone()
        .unwrap_or_else(|| args.prefix.join("libexec/turnstile"));
    let paths = BIN_PROGRAMS
        .iter()
        .map(|p| bin.join(p))
        .chain(BACKENDS.iter().map(|b| libexec.join(b)));
    paths
        .map(|path| {
            let action = inspect(&path, exe)?;
            Ok(Step { path, action })
        })
        .collect()
}

/// What is at `path`, compared with a link to `exe`.
fn inspect(path: &Path, exe: &Path) -> io::Result<Action> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Action::Create),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        let resolved = if target.is_absolute() {
            target.clone()
        } else {
            path.parent().unwrap_or(Path::new("/")).join(&target)
        };
        if std::fs::canonicalize(&resolved).ok().as_deref() == Some(exe) {
            return Ok(Action::Keep);
        }
        return Ok(Action::Replace(format!("a link to {}", target.display())));
    }
    let what = if meta.is_dir() {
        "a directory"
    } else {
        "a file"
    };
    Ok(Action::Replace(what.to_string()))
}

/// Why an install did not happen.
#[derive(Debug)]
pub enum InstallError {
    /// Paths holding something that is not ours (and no --force).
    NotOurs(Vec<(PathBuf, String)>),
    Io(PathBuf, io::Error),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::NotOurs(paths) => {
                for (i, (path, what)) in paths.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "{} is {what}, not braid's (--force replaces it)",
                        path.display()
                    )?;
                }
                Ok(())
            }
            InstallError::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

/// Carries out `steps`: creates missing directories and links, replaces
/// (with `force`) what is not ours. Returns the lines describing it.
pub fn apply(steps: &[Step], exe: &Path, force: bool) -> Result<Vec<String>, InstallError> {
    let refused: Vec<(PathBuf, String)> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Replace(what) if !force => Some((s.path.clone(), what.clone())),
            _ => None,
        })
        .collect();
    if !refused.is_empty() {
        return Err(InstallError::NotOurs(refused));
    }
    let mut report = Vec::new();
    for step in steps {
        let io_err = |e| InstallError::Io(step.path.clone(), e);
        match &step.action {
            Action::Keep => report.push(format!("kept {}", step.path.display())),
            Action::Create | Action::Replace(_) => {
                if let Some(dir) = step.path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| InstallError::Io(dir.to_path_buf(), e))?;
                }
                if let Action::Replace(_) = step.action {
                    if std::fs::symlink_metadata(&step.path).is_ok_and(|m| m.is_dir()) {
                        return Err(io_err(io::Error::other("is a directory; remove it first")));
                    }
                }
                // Link beside it, then rename over: the path never vanishes.
                let tmp = step.path.with_file_name(format!(
                    ".{}.braid-new",
                    step.path.file_name().unwrap_or_default().to_string_lossy()
                ));
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(exe, &tmp).map_err(io_err)?;
                if let Err(e) = std::fs::rename(&tmp, &step.path) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io_err(e));
                }
                let verb = if step.action == Action::Create {
                    "linked"
                } else {
                    "replaced"
                };
                report.push(format!(
                    "{verb} {} -> {}",
                    step.path.display(),
                    exe.display()
                ));
            }
        }
    }
    Ok(report)
}

/// The lines a dry run prints.
pub fn describe(steps: &[Step], exe: &Path, force: bool) -> Vec<String> {
    steps
        .iter()
        .map(|s| match &s.action {
            Action::Create => format!("would link {} -> {}", s.path.display(), exe.display()),
            Action::Keep => format!("would keep {} (already braid's)", s.path.display()),
            Action::Replace(what) if force => format!(
                "would replace {} ({what}) -> {}",
                s.path.display(),
                exe.display()
            ),
            Action::Replace(what) => format!(
                "would refuse {}: it is {what} (--force replaces it)",
                s.path.display()
            ),
        })
        .collect()
}

/// `braid install`; returns the exit status.
pub fn run(args: &InstallArgs) -> i32 {
    let exe = match std::env::current_exe().and_then(std::fs::canonicalize) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("braid install: cannot find the braid binary: {e}");
            return 111;
        }
    };
    let steps = match plan(args, &exe) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("braid install: {e}");
            return 111;
        }
    };
    if args.dry_run {
        for line in describe(&steps, &exe, args.force) {
            println!("{line}");
        }
        let refused = !args.force && steps.iter().any(|s| matches!(s.action, Action::Replace(_)));
        return i32::from(refused);
    }
    match apply(&steps, &exe, args.force) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            0
        }
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("braid install: {line}");
            }
            1
        }
    }
}
