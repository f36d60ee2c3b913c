//! dinit service descriptions: reading them (line syntax, includes,
//! substitution, environment files), finding them across service
//! directories, and translating them into braid's [`ServiceSpec`].
//!
//! Parsing reports problems as it goes through a [`Diagnostics`] sink and
//! carries on where dinit-check carries on; the daemon's [`lookup::Loader`]
//! stops at the first error instead. Every message is dinit's own wording.
//!
//! [`ServiceSpec`]: braid_core::spec::ServiceSpec

pub mod braid_meta;
mod envfile;
pub mod lookup;
mod parse;
pub mod settings;
mod substitute;
pub mod syntax;
mod to_spec;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use envfile::{
    apply_env_file, process_env, read_env_file, EnvFileWarning, EnvMap, Environment,
};
pub use lookup::{default_service_dirs, find_description, LoadedService, Loader, Source};
pub use parse::{combine_paths, parent_path, parse, Context};
pub use settings::{Limit, LimitPair};
pub use substitute::{substitute, substitute_text};
pub use to_spec::{cgroup_dir, to_spec};

/// A place in a description file: the file as dinit names it and a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: String,
    pub line: u32,
}

impl Pos {
    pub fn new(file: impl Into<String>, line: u32) -> Self {
        Pos {
            file: file.into(),
            line,
        }
    }

    pub fn with_line(&self, line: u32) -> Pos {
        Pos {
            file: self.file.clone(),
            line,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceType {
    Process,
    BgProcess,
    Scripted,
    #[default]
    Internal,
    Triggered,
}

impl ServiceType {
    /// Process, bgprocess or scripted: has a command and produces output.
    pub fn runs_command(self) -> bool {
        matches!(
            self,
            ServiceType::Process | ServiceType::BgProcess | ServiceType::Scripted
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogType {
    #[default]
    None,
    File,
    Buffer,
    Pipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartSetting {
    #[default]
    Yes,
    OnFailure,
    No,
}

/// Dependency kinds that a description can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepType {
    /// `depends-on`, `depends-on.d`
    Regular,
    /// `depends-ms`, `depends-ms.d`
    Milestone,
    /// `waits-for`, `waits-for.d`
    WaitsFor,
    /// `prepared-by`
    PreparedBy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub kind: DepType,
    pub pos: Pos,
    /// The `*.d` directory (as written) this entry came from. A dependency
    /// from a directory that cannot be found is ignored, not an error.
    pub from_dir: Option<String>,
}

/// The `options` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub starts_rwfs: bool,
    pub starts_log: bool,
    pub runs_on_console: bool,
    pub starts_on_console: bool,
    pub shares_console: bool,
    pub unmask_intr: bool,
    pub pass_cs_fd: bool,
    pub start_interruptible: bool,
    pub skippable: bool,
    pub signal_process_only: bool,
    pub always_chain: bool,
    pub kill_all_on_stop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyNotification {
    PipeFd(i32),
    PipeVar(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoPrio {
    None,
    Idle,
    Realtime(u8),
    BestEffort(u8),
}

/// A user setting (`run-as`, `socket-uid`, `logfile-uid`): the uid, and
/// the user's primary group when it was given by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSetting {
    pub uid: u32,
    pub primary_gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitResource {
    NoFile,
    Core,
    Data,
    AddrSpace,
}

/// A loaded service description: every setting as the file(s) gave it,
/// after dinit's load-time processing (substitution, defaults, checks).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDescription {
    /// The full name, argument included.
    pub name: String,
    /// The service argument (text after the first `@`), if any.
    pub arg: Option<String>,
    /// The top-level description file, as dinit names it.
    pub file: String,
    /// The service directory where the file was found, as listed.
    pub service_dir: String,
    /// The real directory holding the file (symlinks followed).
    pub resolve_dir: PathBuf,

    pub service_type: ServiceType,
    /// Argument vector after substitution (empty when not set).
    pub command: Vec<String>,
    pub stop_command: Vec<String>,
    /// After substitution; empty means the service directory.
    pub working_dir: String,
    pub pid_file: String,
    /// As written (after pre-load substitution), with the directory that a
    /// relative path resolves against.
    pub env_file: Option<(String, PathBuf)>,
    pub export_passwd_vars: bool,
    pub export_service_name: bool,
    pub deps: Vec<Dependency>,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub chain_to: Option<String>,
    pub consumer_of: Option<String>,

    pub log_type: LogType,
    /// Empty unless `log_type` is `File`.
    pub logfile: String,
    pub logfile_perms: i32,
    pub logfile_uid: Option<UserSetting>,
    pub logfile_gid: Option<u32>,
    pub log_buffer_size: u32,
    /// braid's `@meta braid-logfile-rotate` (see `braid_meta`).
    pub logfile_rotation: Option<braid_core::spec::Rotation>,

    pub options: Options,
    /// 0 means `none`.
    pub term_signal: i32,
    pub restart: RestartSetting,
    pub smooth_recovery: bool,
    pub restart_delay: Duration,
    pub restart_limit_interval: Duration,
    pub restart_limit_count: u32,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,

    pub socket_path: String,
    pub socket_perms: i32,
    pub socket_uid: Option<UserSetting>,
    pub socket_gid: Option<u32>,

    pub run_as: Option<UserSetting>,
    pub rlimits: Vec<(RlimitResource, LimitPair)>,
    pub nice: Option<i32>,
    pub ioprio: Option<IoPrio>,
    pub oom_score_adj: Option<i16>,
    pub run_in_cgroup: String,
    pub inittab_id: String,
    pub inittab_line: String,
    pub ready_notification: Option<ReadyNotification>,

    /// The service's own environment layer: env-file variables, and those
    /// from `load-options` (`export-passwd-vars`, `export-service-name`).
    pub service_env: Environment,
    /// Text of each `@meta` line (after `@meta`).
    pub meta: Vec<String>,
    /// Where each setting was last given.
    pub positions: Vec<(&'static str, Pos)>,
}

impl ServiceDescription {
    fn new(source: &Source, arg: Option<&str>) -> Self {
        ServiceDescription {
            name: source.name.clone(),
            arg: arg.map(str::to_string),
            file: source.file.clone(),
            service_dir: source.service_dir.clone(),
            resolve_dir: source.resolve_dir.clone(),
            service_type: ServiceType::Internal,
            command: Vec::new(),
            stop_command: Vec::new(),
            working_dir: String::new(),
            pid_file: String::new(),
            env_file: None,
            export_passwd_vars: false,
            export_service_name: false,
            deps: Vec::new(),
            before: Vec::new(),
            after: Vec::new(),
            chain_to: None,
            consumer_of: None,
            log_type: LogType::None,
            logfile: String::new(),
            logfile_perms: 0o600,
            logfile_uid: None,
            logfile_gid: None,
            log_buffer_size: 4096,
            logfile_rotation: None,
            options: Options::default(),
            term_signal: nix::sys::signal::Signal::SIGTERM as i32,
            restart: RestartSetting::Yes,
            smooth_recovery: false,
            restart_delay: Duration::from_millis(200),
            restart_limit_interval: Duration::from_secs(10),
            restart_limit_count: 3,
            start_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            socket_path: String::new(),
            socket_perms: 0o666,
            socket_uid: None,
            socket_gid: None,
            run_as: None,
            rlimits: Vec::new(),
            nice: None,
            ioprio: None,
            oom_score_adj: None,
            run_in_cgroup: String::new(),
            inittab_id: String::new(),
            inittab_line: String::new(),
            ready_notification: None,
            service_env: Environment::default(),
            meta: Vec::new(),
            positions: Vec::new(),
        }
    }

    /// Where `setting` was last given, if it was.
    pub fn position(&self, setting: &str) -> Option<&Pos> {
        self.positions
            .iter()
            .rev()
            .find(|(s, _)| *s == setting)
            .map(|(_, p)| p)
    }
}

/// A problem found while loading that does not stop reading the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A bad line or value.
    AtLine { pos: Pos, message: String },
    /// A bad value that dinit's log also names the setting of (`ioprio`'s
    /// class); dinit-check words it as `AtLine`.
    AtSetting {
        pos: Pos,
        setting: String,
        message: String,
    },
    /// An invalid name in `depends-on`, `depends-ms`, `waits-for` or
    /// `prepared-by`. (dinit-check attributes this one to the dependency.)
    BadDependencyName { pos: Pos, name: String },
    /// A substitution error in a setting read while loading.
    Setting { setting: String, message: String },
    /// A problem with the service as a whole (found after reading it).
    Service { message: String },
    /// A setting that has no effect (dinit-check's lint; not an error).
    Lint { message: String },
    /// A `*.d` dependency directory that could not be read (a warning for
    /// the daemon).
    DepDir {
        dir: String,
        path: String,
        errno: i32,
    },
    /// The `env-file` could not be read.
    EnvFile { file: String, errno: i32 },
}

impl Problem {
    /// Whether the daemon refuses to load a service with this problem.
    pub fn is_error(&self) -> bool {
        !matches!(self, Problem::Lint { .. } | Problem::DepDir { .. })
    }
}

impl fmt::Display for Problem {
    /// The daemon's wording.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::AtLine { pos, message } | Problem::AtSetting { pos, message, .. } => {
                write!(f, "{pos}: {message}")
            }
            Problem::BadDependencyName { pos, name } => {
                write!(f, "{pos}: invalid dependency name '{name}'")
            }
            Problem::Setting { setting, message } => write!(f, "setting '{setting}': {message}"),
            Problem::Service { message } | Problem::Lint { message } => f.write_str(message),
            Problem::DepDir { path, .. } => {
                write!(f, "Could not open dependency directory '{path}'")
            }
            Problem::EnvFile { file, errno } => write!(
                f,
                "could not load environment file: {file}: {}",
                strerror(*errno)
            ),
        }
    }
}

/// Where problems found while loading go.
pub trait Diagnostics {
    fn problem(&mut self, problem: Problem);
    /// Called before each variable lookup made for substitution.
    fn variable_lookup(&mut self) {}
}

/// Collects problems in order.
impl Diagnostics for Vec<Problem> {
    fn problem(&mut self, problem: Problem) {
        self.push(problem);
    }
}

/// Why a service could not be loaded at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No service directory has the file.
    NotFound {
        name: String,
    },
    /// The file exists but could not be opened.
    Open {
        name: String,
        path: String,
        errno: i32,
    },
    NameTooLong {
        name: String,
    },
    /// An error that stops reading (bad line, bad meta-command, include
    /// failure, substitution error in a command).
    Fatal {
        name: String,
        message: String,
        pos: Option<Pos>,
        setting: Option<String>,
    },
    /// Reading a file failed part-way.
    Read {
        name: String,
        file: String,
        errno: i32,
    },
    /// The description has an error (the first one found).
    Invalid {
        name: String,
        problem: Problem,
    },
}

impl LoadError {
    pub fn service_name(&self) -> &str {
        match self {
            LoadError::NotFound { name }
            | LoadError::Open { name, .. }
            | LoadError::NameTooLong { name }
            | LoadError::Fatal { name, .. }
            | LoadError::Read { name, .. }
            | LoadError::Invalid { name, .. } => name,
        }
    }
}

impl fmt::Display for LoadError {
    /// The description dinit gives (without the service name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound { .. } => f.write_str("service description not found."),
            LoadError::Open { path, errno, .. } => write!(f, "{path}: {}", strerror(*errno)),
            LoadError::NameTooLong { .. } => f.write_str("service name is too long"),
            LoadError::Fatal { message, .. } => f.write_str(message),
            LoadError::Read { file, errno, .. } => write!(f, "{file}: {}", strerror(*errno)),
            LoadError::Invalid { problem, .. } => problem.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// The C library's text for an errno value.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(p) => text[..p].to_string(),
        None => text,
    }
}

/// dinit's service-name check: non-empty, not starting with `.` or `@`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['.', '@'])
}

/// Splits `base@arg` at the first `@`.
pub fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, arg)) => (base, Some(arg)),
        None => (name, None),
    }
}
