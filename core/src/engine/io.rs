//! What goes into the engine and what comes out: commands, events and
//! effects. The engine performs no I/O; the runtime (or a test's simulated
//! world) executes the effects and feeds back the events.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use nix::sys::signal::Signal;

/// A point on the engine's monotonic clock, measured from an arbitrary
/// epoch chosen by whoever drives the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub Duration);

impl Time {
    pub const ZERO: Time = Time(Duration::ZERO);

    pub fn from_secs_f64(s: f64) -> Time {
        Time(Duration::from_secs_f64(s))
    }

    pub fn saturating_sub(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0 + d)
    }
}

/// A loaded service, valid for the engine that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub u32);

impl ServiceId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Which of a service's processes an effect or event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The service itself (for scripted services: the start command).
    Main,
    /// The stop command.
    Stop,
    /// The finish command, run after the main process exits.
    Finish,
    /// The readiness check command.
    Check,
}

/// The four states every service is in one of, numbered as dinit numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Stopped = 0,
    Starting = 1,
    Started = 2,
    Stopping = 3,
}

/// Why a service last stopped, numbered as dinit numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StopReason {
    #[default]
    Normal = 0,
    /// A hard dependency restarted.
    DepRestart = 1,
    /// A dependency failed or stopped.
    DepFailed = 2,
    /// The process exited before it was ready, or the start command failed.
    Failed = 3,
    /// The program could not be launched.
    ExecFailed = 4,
    /// It did not become ready within the start timeout.
    TimedOut = 5,
    /// The process exited by itself after it had started.
    Terminated = 6,
}

impl StopReason {
    /// Whether a service stopped for this reason counts as failed.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StopReason::DepFailed
                | StopReason::Failed
                | StopReason::ExecFailed
                | StopReason::TimedOut
        )
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(Signal),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled(sig) => write!(f, "killed by {sig}"),
        }
    }
}

/// Why a process could not be launched: the setup step and the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchFailure {
    pub stage: LaunchStage,
    pub errno: nix::errno::Errno,
}

impl fmt::Display for LaunchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.errno.desc())
    }
}

/// The step of launching a process that failed; numbered as dinit's exec
/// stages so that the dinit face can report them unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaunchStage {
    ArrangeFds = 0,
    ReadEnvFile = 1,
    SetNotifyFdVar = 2,
    SetupActivationSocket = 3,
    SetupControlSocket = 4,
    ChangeDirectory = 5,
    SetupStdinOutErr = 6,
    EnterCgroup = 7,
    SetRlimits = 8,
    SetUidGid = 9,
    OpenLogFile = 10,
    SetCaps = 11,
    SetPriority = 12,
    DoExec = 13,
    /// fork itself failed (not a dinit stage).
    Fork = 100,
}

impl fmt::Display for LaunchStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            LaunchStage::ArrangeFds => "arranging file descriptors",
            LaunchStage::ReadEnvFile => "reading environment file",
            LaunchStage::SetNotifyFdVar => "setting environment variable",
            LaunchStage::SetupActivationSocket => "setting up activation socket",
            LaunchStage::SetupControlSocket => "setting up control socket",
            LaunchStage::ChangeDirectory => "changing directory",
            LaunchStage::SetupStdinOutErr => "setting up standard input/output descriptors",
            LaunchStage::EnterCgroup => "entering cgroup",
            LaunchStage::SetRlimits => "setting resource limits",
            LaunchStage::SetUidGid => "setting user/group ID",
            LaunchStage::OpenLogFile => "opening log file",
            LaunchStage::SetCaps => "setting capabilities",
            // dinit's wording, which covers nice and oom_score_adj too.
            LaunchStage::SetPriority => "setting I/O priority",
            LaunchStage::DoExec => "executing command",
            LaunchStage::Fork => "forking",
        };
        f.write_str(text)
    }
}

/// What a timer is for; each service has at most one timer of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    StartTimeout,
    StopTimeout,
    RestartDelay,
    CheckRetry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    pub service: ServiceId,
    pub kind: TimerKind,
}

/// Something that happened in the world, reported by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The process was forked and `exec` succeeded.
    Spawned {
        service: ServiceId,
        role: Role,
        pid: i32,
    },
    /// The process could not be launched.
    SpawnFailed {
        service: ServiceId,
        role: Role,
        failure: LaunchFailure,
    },
    /// A process of the service exited and was reaped.
    Exited {
        service: ServiceId,
        role: Role,
        status: ExitStatus,
    },
    /// The service reported readiness (notification fd).
    Ready {
        service: ServiceId,
    },
    /// The readiness channel closed before anything was written.
    ReadinessLost {
        service: ServiceId,
    },
    /// The pid file of a background process was read: the daemon, or why
    /// it could not be had.
    PidFileRead {
        service: ServiceId,
        result: Result<Daemon, String>,
    },
    TimerFired(TimerId),
}

/// The daemon a background service's pid file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemon {
    pub pid: i32,
    /// braid will see it exit (it is braid's child, or was reparented to
    /// braid). An unsupervised daemon counts as stopped once signalled.
    pub supervised: bool,
}

/// Something the engine wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Launch a process of the service. `extra_args` are appended to the
    /// command (the finish command gets the exit code and signal).
    Spawn {
        service: ServiceId,
        role: Role,
        extra_args: Vec<OsString>,
    },
    /// Send a signal to a process of the service; `group` to its whole
    /// process group.
    Signal {
        service: ServiceId,
        role: Role,
        signal: Signal,
        group: bool,
    },
    /// Read the pid file of a background-process service.
    ReadPidFile {
        service: ServiceId,
    },
    /// Arm (or re-arm) a timer.
    ArmTimer {
        timer: TimerId,
        at: Time,
    },
    CancelTimer {
        timer: TimerId,
    },
    /// The service to chain to is not loaded: load it and start it. A
    /// failure is logged as "Couldn't chain to service NAME: WHY".
    ChainTo {
        name: String,
    },
    /// A service changed state; listeners (mirrors, clients, gates) care.
    Notify(Notification),
    /// A message for the log, as the dinit face words it.
    Log(LogLine),
}

/// What listeners are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub service: ServiceId,
    pub event: ServiceEvent,
}

/// State-change events, numbered as dinit's control protocol numbers them,
/// plus the process-level events the runit face reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceEvent {
    Started = 0,
    Stopped = 1,
    FailedStart = 2,
    StartCancelled = 3,
    StopCancelled = 4,
    /// Not a state change: a new process was launched, or one exited, or
    /// the service was paused/continued. The runit mirror rewrites its
    /// status on these.
    ProcessChanged = 100,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub service: Option<ServiceId>,
    pub text: String,
}
