//! What a service is: the model both service formats are translated into.
//!
//! A `ServiceSpec` holds no runit or dinit vocabulary. Each backend's loader
//! fills one in; the engine and the runtime only ever read it.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

/// A service's name, unique within one engine.
pub type ServiceName = String;

/// How a service runs and what "started" means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A long-running process that braid supervises directly.
    Process,
    /// A process that forks into the background and names its daemon in a
    /// pid file; started once the launcher exits 0 and the file names a pid.
    BackgroundProcess { pid_file: PathBuf },
    /// A start command that runs to completion (exit 0 = started) and an
    /// optional stop command.
    Scripted,
    /// No process: started as soon as its dependencies are.
    Internal,
    /// No process: after its dependencies it waits for an external trigger.
    Triggered,
}

impl Kind {
    /// Whether this kind runs a supervised main process.
    pub fn has_main_process(&self) -> bool {
        matches!(self, Kind::Process | Kind::BackgroundProcess { .. })
    }
}

/// A program and its arguments. `argv[0]` is looked up in `PATH` when it has
/// no slash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    pub argv: Vec<OsString>,
}

impl CommandLine {
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        CommandLine {
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }
}

/// Who a service's processes run as. `None` fields keep braid's own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Supplementary groups; `None` keeps braid's, `Some(vec![])` clears them.
    pub groups: Option<Vec<u32>>,
}

/// A resource limit; a `None` half keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: Option<LimitValue>,
    pub hard: Option<LimitValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    Unlimited,
    Value(u64),
}

/// An I/O scheduling class and level (Linux `ioprio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoPriority {
    /// No class of its own: the kernel derives it from the nice value.
    Default,
    /// Level 0 (highest) to 7.
    Realtime(u8),
    /// Level 0 (highest) to 7.
    BestEffort(u8),
    /// Only when no other process wants the disk.
    Idle,
}

impl IoPriority {
    /// The value `ioprio_set` takes: the class in the bits from 13 up, the
    /// level below.
    pub fn raw(self) -> i32 {
        let (class, level) = match self {
            IoPriority::Default => (0, 0),
            IoPriority::Realtime(l) => (1, l),
            IoPriority::BestEffort(l) => (2, l),
            IoPriority::Idle => (3, 0),
        };
        class << 13 | i32::from(level)
    }
}

/// How strongly a service depends on another (see `doc/DESIGN.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    /// Started first, and this service fails and stops with it.
    Hard,
    /// Like `Hard`, and the dependency is restarted when this service is.
    PreparedBy,
    /// Must start first; once started it may stop without affecting us.
    Milestone,
    /// Started with us and waited for, but its failure does not matter.
    WaitsFor,
    /// Started with us, not waited for.
    Soft,
    /// Ordering only: we start after it if it is starting at the same time.
    After,
    /// Ordering only: it starts after us if both are starting.
    Before,
}

impl DepKind {
    /// Whether the dependent holds (keeps started) the dependency.
    pub fn holds(self) -> bool {
        !matches!(self, DepKind::After | DepKind::Before)
    }

    /// Whether the dependency failing, or stopping, brings the dependent down.
    pub fn is_hard(self) -> bool {
        matches!(self, DepKind::Hard | DepKind::PreparedBy)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: ServiceName,
    pub kind: DepKind,
}

/// When a started process counts as ready.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Readiness {
    /// As soon as `exec` succeeded.
    #[default]
    OnExec,
    /// When the process writes anything to this file descriptor number.
    NotifyFd(i32),
    /// Like `NotifyFd`, with the fd number chosen by braid and passed in
    /// this environment variable.
    NotifyEnvVar(String),
    /// When this command, run after exec and again every `interval` until it
    /// succeeds, exits 0.
    CheckCommand {
        command: CommandLine,
        interval: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartMode {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// Minimum time from one launch to the next automatic relaunch.
    pub delay: Duration,
    /// At most `limit_count` automatic restarts within `limit_interval`;
    /// a count of 0 means no limit.
    pub limit_count: u32,
    pub limit_interval: Duration,
    /// Relaunch a dying process without stopping its dependents.
    pub smooth_recovery: bool,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::Always,
            delay: Duration::from_millis(200),
            limit_count: 3,
            limit_interval: Duration::from_secs(10),
            smooth_recovery: false,
        }
    }
}

/// Where a service's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Output {
    /// braid's own stdout/stderr.
    Inherit,
    /// /dev/null.
    #[default]
    Discard,
    /// Appended to a file, created with this mode. With `rotate`, braid
    /// writes the file itself and rotates it by size.
    File {
        path: PathBuf,
        mode: u32,
        rotate: Option<Rotation>,
    },
    /// Kept in memory, up to `size` bytes.
    Buffer { size: usize },
    /// A pipe read by the service that names this one in `input_from`.
    /// The pipe outlives restarts of either end.
    Pipe,
}

/// How a log file is rotated (see `runtime::logfile::RotatingFile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated once it holds this many bytes (at least 1).
    pub size: u64,
    /// How many old files are kept (at least 1).
    pub count: u32,
}

/// Small behaviour switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// Signal only the main process, not its process group.
    pub signal_process_only: bool,
    /// A starting process may be interrupted by a stop.
    pub start_interruptible: bool,
    /// A scripted start killed by SIGINT counts as started.
    pub skippable: bool,
    /// Chain to `chain_to` however the service stopped.
    pub always_chain: bool,
    /// After a stop signal, also send SIGCONT (a stopped process must see it).
    pub cont_after_stop_signal: bool,
    /// Only stdout goes to the output; stderr stays braid's own (runsv
    /// leaves a service's stderr alone).
    pub stderr_inherited: bool,
    /// A program that cannot be executed counts as one that started and
    /// exited with status 111, restarted like any exit (runsv's behaviour),
    /// instead of failing the start.
    pub exec_failure_is_exit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: ServiceName,
    pub description: Option<String>,
    pub kind: Kind,
    pub start: CommandLine,
    /// Run instead of sending the stop signal (scripted: to stop).
    pub stop: Option<CommandLine>,
    /// Run after the main process exits, with its exit code and signal
    /// appended as arguments.
    pub finish: Option<CommandLine>,
    /// Variables added to the session environment for this service.
    pub env: Vec<(OsString, OsString)>,
    pub credentials: Credentials,
    pub working_dir: Option<PathBuf>,
    pub rlimits: Vec<Rlimit>,
    pub nice: Option<i32>,
    /// Set with `ioprio_set` before the credentials are dropped.
    pub io_priority: Option<IoPriority>,
    /// Written to `/proc/self/oom_score_adj` (-1000 to 1000).
    pub oom_score_adj: Option<i16>,
    /// The cgroup directory (e.g. `/sys/fs/cgroup/app`) whose
    /// `cgroup.procs` each process is moved into before exec. A relative
    /// path is one the backend could not place under the cgroup
    /// filesystem: launching then fails at that step with `ENOENT`.
    pub cgroup: Option<PathBuf>,
    pub deps: Vec<Dependency>,
    pub readiness: Readiness,
    pub restart: RestartPolicy,
    /// `None`: wait forever.
    pub start_timeout: Option<Duration>,
    /// `None`: wait forever; otherwise SIGKILL when it runs out.
    pub stop_timeout: Option<Duration>,
    /// `None`: send nothing and wait for the process to exit.
    pub stop_signal: Option<Signal>,
    /// Whether the service stays down until explicitly started.
    pub starts_down: bool,
    pub output: Output,
    /// The service whose `Output::Pipe` becomes this one's stdin.
    pub input_from: Option<ServiceName>,
    /// Started when this service exits cleanly by itself.
    pub chain_to: Option<ServiceName>,
    pub flags: Flags,
    /// A listening Unix socket passed as fd 3 (LISTEN_FDS protocol).
    /// Boxed: few services have one, and every spec carries the field.
    pub socket: Option<Box<SocketSpec>>,
    /// The process gets a fresh connection to braid's control server (one
    /// end of a socket pair; see `Runtime::set_control_connector`), at the
    /// lowest fd from 3 not taken by the activation socket or the readiness
    /// fd, its number in this environment variable. Given to the main
    /// process, and to a scripted service's stop command.
    pub control_fd_var: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    pub path: PathBuf,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl ServiceSpec {
    /// A service of the given kind with every setting at its default.
    pub fn new(name: impl Into<ServiceName>, kind: Kind) -> Self {
        ServiceSpec {
            name: name.into(),
            description: None,
            kind,
            start: CommandLine::default(),
            stop: None,
            finish: None,
            env: Vec::new(),
            credentials: Credentials::default(),
            working_dir: None,
            rlimits: Vec::new(),
            nice: None,
            io_priority: None,
            oom_score_adj: None,
            cgroup: None,
            deps: Vec::new(),
            readiness: Readiness::OnExec,
            restart: RestartPolicy::default(),
            start_timeout: Some(Duration::from_secs(60)),
            stop_timeout: Some(Duration::from_secs(10)),
            stop_signal: Some(Signal::SIGTERM),
            starts_down: false,
            output: Output::Discard,
            input_from: None,
            chain_to: None,
            flags: Flags::default(),
            socket: None,
            control_fd_var: None,
        }
    }

    /// A process service running `argv`.
    pub fn process<I, S>(name: impl Into<ServiceName>, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut spec = ServiceSpec::new(name, Kind::Process);
        spec.start = CommandLine::new(argv);
        spec
    }

    pub fn depends(mut self, kind: DepKind, name: impl Into<ServiceName>) -> Self {
        self.deps.push(Dependency {
            name: name.into(),
            kind,
        });
        self
    }

    /// Checks the spec on its own (not against other services).
    pub fn validate(&self) -> Result<(), SpecError> {
        let err = |field: &'static str, reason: String| SpecError {
            service: self.name.clone(),
            field,
            reason,
        };
        if self.name.is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if self.name.contains(['/', '\0']) || self.name == "." || self.name == ".." {
            return Err(err(
                "name",
                format!("{:?} may not contain '/' or NUL", self.name),
            ));
        }
        let needs_command = matches!(
            self.kind,
            Kind::Process | Kind::BackgroundProcess { .. } | Kind::Scripted
        );
        if needs_command && self.start.is_empty() {
            return Err(err("start", "a command is required for this kind".into()));
        }
        if let Readiness::NotifyFd(fd) = self.readiness {
            if !(3..=1024).contains(&fd) {
                return Err(err(
                    "readiness",
                    format!("notification fd {fd} must be between 3 and 1024"),
                ));
            }
        }
        if !matches!(self.readiness, Readiness::OnExec) && self.kind != Kind::Process {
            return Err(err(
                "readiness",
                "readiness notification needs a process service".into(),
            ));
        }
        if let Some(target) = &self.input_from {
            if target == &self.name {
                return Err(err(
                    "input_from",
                    "a service cannot read its own output".into(),
                ));
            }
        }
        if let Some(adj) = self.oom_score_adj {
            if !(-1000..=1000).contains(&adj) {
                return Err(err(
                    "oom_score_adj",
                    format!("{adj} must be between -1000 and 1000"),
                ));
            }
        }
        if let Some(IoPriority::Realtime(level) | IoPriority::BestEffort(level)) = self.io_priority
        {
            if level > 7 {
                return Err(err(
                    "io_priority",
                    format!("level {level} must be between 0 and 7"),
                ));
            }
        }
        for dep in &self.deps {
            if dep.name == self.name {
                return Err(err(
                    "deps",
                    format!("service depends on itself ({:?})", dep.kind),
                ));
            }
        }
        Ok(())
    }
}

/// A problem with one field of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub service: ServiceName,
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {}: {}: {}",
            self.service, self.field, self.reason
        )
    }
}

impl std::error::Error for SpecError {}
