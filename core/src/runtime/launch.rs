//! Launching one process: `fork`, the child's setup, `exec`.
//!
//! Everything that needs memory (argument and environment arrays, paths) is
//! prepared before `fork`: in the child only async-signal-safe system calls
//! run, because the parent may have other threads whose locks were copied in
//! whatever state they were in. A launch prepares as little as it can: the
//! parent frees it right after `fork`, and each heap page that touches is
//! copied by the kernel while the child shares it (see `EnvBlock`).
//!
//! The child's setup follows dinit's order: arrange fds, chdir, stdio and
//! `setsid`, rlimits, nice, I/O priority, OOM score adjustment, cgroup,
//! groups/gid/uid, signal mask, exec. A failing step
//! writes its stage and errno to a close-on-exec status pipe and exits; the
//! parent reads that pipe until it closes, so `spawn` returns only once the
//! child has exec'd or failed, and a failure is a value, never a panic.

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::Pid;

use super::env_block::{self, EnvBlock};
use crate::engine::{LaunchFailure, LaunchStage, Role};
use crate::spec::{
    CommandLine, Credentials, IoPriority, LimitValue, Readiness, Rlimit, ServiceSpec,
};

/// `PATH` used for the lookup when the environment has none (glibc's default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Where the child's stdin comes from.
#[derive(Debug, Clone, Copy)]
pub enum Stdin<'fd> {
    /// `/dev/null`.
    Null,
    /// A copy of this fd (e.g. the read end of a producer's output pipe).
    Fd(BorrowedFd<'fd>),
}

/// Where the child's stdout and stderr go (both, unless `stdout_only`).
#[derive(Debug, Clone)]
pub enum Stdout<'fd> {
    /// Keep braid's own fds 1 and 2.
    Inherit,
    /// `/dev/null`.
    Null,
    /// Appended to this file, created with `mode`; opened in the child after
    /// the working directory is changed, so a relative path is relative to it.
    File { path: PathBuf, mode: u32 },
    /// A copy of this fd (the write end of a log pipe).
    Fd(BorrowedFd<'fd>),
}

/// Where the write end of the readiness pipe is placed in the child.
#[derive(Debug, Clone)]
pub enum NotifyTarget {
    /// At exactly this fd number (at least 3).
    Fd(i32),
    /// At the lowest free fd from 3 (4 with an activation socket), whose
    /// number is put in this environment variable.
    EnvVar(String),
}

/// One process to launch, like `std::process::Command` but with the settings
/// a service has, and failures reported with the setup stage.
#[derive(Debug)]
pub struct Launch<'fd> {
    argv: Vec<OsString>,
    /// The environment `env` is overlaid on.
    base: Option<&'fd EnvBlock>,
    env: IndexMap<OsString, OsString>,
    working_dir: Option<PathBuf>,
    credentials: Credentials,
    rlimits: Vec<Rlimit>,
    nice: Option<i32>,
    io_priority: Option<IoPriority>,
    oom_score_adj: Option<i16>,
    cgroup: Option<PathBuf>,
    stdin: Stdin<'fd>,
    stdout: Stdout<'fd>,
    stdout_only: bool,
    notify: Option<(BorrowedFd<'fd>, NotifyTarget)>,
    socket: Option<BorrowedFd<'fd>>,
    control: Option<(BorrowedFd<'fd>, String)>,
    reset_sigpipe: bool,
}

/// The command a service runs for `role`, if it has one.
pub fn command_for(spec: &ServiceSpec, role: Role) -> Option<&CommandLine> {
    match role {
        Role::Main => Some(&spec.start),
        Role::Stop => spec.stop.as_ref(),
        Role::Finish => spec.finish.as_ref(),
        Role::Check => match &spec.readiness {
            Readiness::CheckCommand { command, .. } => Some(command),
            _ => None,
        },
    }
    .filter(|c| !c.is_empty())
}

impl<'fd> Launch<'fd> {
    /// A launch of `argv` with an empty environment, braid's working
    /// directory and credentials, stdin and output on `/dev/null`.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Launch {
            argv: argv.into_iter().map(Into::into).collect(),
            base: None,
            env: IndexMap::new(),
            working_dir: None,
            credentials: Credentials::default(),
            rlimits: Vec::new(),
            nice: None,
            io_priority: None,
            oom_score_adj: None,
            cgroup: None,
            stdin: Stdin::Null,
            stdout: Stdout::Null,
            stdout_only: false,
            notify: None,
            socket: None,
            control: None,
            reset_sigpipe: true,
        }
    }

    /// The launch of a service's process for `role`: its command plus
    /// `extra_args`, `base_env` overlaid with the service's environment, and
    /// its working directory, credentials, limits and priority. Stdio, the
    /// readiness pipe and the socket are left for the caller. `None` when the
    /// service has no command for that role.
    pub fn service<'e, I>(
        spec: &ServiceSpec,
        role: Role,
        extra_args: &[OsString],
        base_env: I,
    ) -> Option<Self>
    where
        I: IntoIterator<Item = (&'e OsString, &'e OsString)>,
    {
        let mut launch = Launch::new([] as [OsString; 0]);
        launch.envs(base_env.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        launch.set_service(spec, role, extra_args)?;
        Some(launch)
    }

    /// `service` with the base environment prepared already: the launch
    /// copies only the service's own variables.
    pub fn service_on(
        spec: &ServiceSpec,
        role: Role,
        extra_args: &[OsString],
        base_env: &'fd EnvBlock,
    ) -> Option<Self> {
        let mut launch = Launch::new([] as [OsString; 0]);
        launch.base = Some(base_env);
        launch.set_service(spec, role, extra_args)?;
        Some(launch)
    }

    fn set_service(
        &mut self,
        spec: &ServiceSpec,
        role: Role,
        extra_args: &[OsString],
    ) -> Option<()> {
        let command = command_for(spec, role)?;
        self.argv = command.argv.iter().chain(extra_args).cloned().collect();
        self.envs(spec.env.iter().cloned())
            .credentials(spec.credentials.clone())
            .rlimits(spec.rlimits.clone());
        if let Some(dir) = &spec.working_dir {
            self.working_dir(dir);
        }
        if let Some(nice) = spec.nice {
            self.nice(nice);
        }
        self.io_priority = spec.io_priority;
        self.oom_score_adj = spec.oom_score_adj;
        self.cgroup.clone_from(&spec.cgroup);
        Some(())
    }

    /// Sets variables; a later value for the same name replaces the earlier
    /// one in place.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        for (k, v) in vars {
            self.env.insert(k.into(), v.into());
        }
        self
    }

    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn working_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.working_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn credentials(&mut self, credentials: Credentials) -> &mut Self {
        self.credentials = credentials;
        self
    }

    pub fn rlimits(&mut self, rlimits: Vec<Rlimit>) -> &mut Self {
        self.rlimits = rlimits;
        self
    }

    pub fn nice(&mut self, nice: i32) -> &mut Self {
        self.nice = Some(nice);
        self
    }

    pub fn io_priority(&mut self, priority: IoPriority) -> &mut Self {
        self.io_priority = Some(priority);
        self
    }

    /// Written to `/proc/self/oom_score_adj`.
    pub fn oom_score_adj(&mut self, adj: i16) -> &mut Self {
        self.oom_score_adj = Some(adj);
        self
    }

    /// Moves the process into the cgroup at directory `dir` (see
    /// `ServiceSpec::cgroup`).
    pub fn cgroup(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cgroup = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn stdin(&mut self, stdin: Stdin<'fd>) -> &mut Self {
        self.stdin = stdin;
        self
    }

    /// Sends only stdout to the output set by `stdout`; stderr is inherited.
    pub fn stdout_only(&mut self, only: bool) -> &mut Self {
        self.stdout_only = only;
        self
    }

    pub fn stdout(&mut self, stdout: Stdout<'fd>) -> &mut Self {
        self.stdout = stdout;
        self
    }

    /// Passes the write end of a readiness pipe.
    pub fn notify(&mut self, write_end: BorrowedFd<'fd>, target: NotifyTarget) -> &mut Self {
        self.notify = Some((write_end, target));
        self
    }

    /// Passes a listening socket as fd 3, with `LISTEN_FDS=1` and
    /// `LISTEN_PID=<the child's pid>`.
    pub fn socket(&mut self, socket: BorrowedFd<'fd>) -> &mut Self {
        self.socket = Some(socket);
        self
    }

    /// Passes one end of a control connection at the lowest fd from 3 that
    /// the activation socket and the readiness fd leave free, and puts its
    /// number in the environment variable `var`. The fd keeps its status
    /// flags (a non-blocking socket stays non-blocking).
    pub fn control(&mut self, conn: BorrowedFd<'fd>, var: impl Into<String>) -> &mut Self {
        self.control = Some((conn, var.into()));
        self
    }

    /// Whether the child gets the default SIGPIPE action even when braid
    /// ignores SIGPIPE (true by default; dinit's children inherit "ignored").
    pub fn reset_sigpipe(&mut self, reset: bool) -> &mut Self {
        self.reset_sigpipe = reset;
        self
    }

    /// Forks and execs. Returns once the child has exec'd (its pid) or
    /// failed (the stage and errno; the child is then already reaped).
    /// Launches the process and waits until it has exec'd (or failed to).
    pub fn spawn(&self) -> Result<Pid, LaunchFailure> {
        self.start()?.finish()
    }

    /// Forks the process and returns at once; `Pending::finish` tells
    /// whether the exec succeeded. The event loop uses this so that it never
    /// waits for a child's exec and children exec in parallel with it.
    pub fn start(&self) -> Result<Pending, LaunchFailure> {
        let prepared = self.prepare()?;
        let (status_r, status_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(fail(LaunchStage::ArrangeFds))?;
        let fds = ChildFds {
            status: status_w.as_raw_fd(),
            devnull: prepared.devnull.as_ref().map(AsRawFd::as_raw_fd),
            stdin: match self.stdin {
                Stdin::Fd(fd) => Some(fd.as_raw_fd()),
                Stdin::Null => None,
            },
            stdout: match &self.stdout {
                Stdout::Fd(fd) => Some(fd.as_raw_fd()),
                _ => None,
            },
            stdout_null: matches!(self.stdout, Stdout::Null),
            stdout_only: self.stdout_only,
            notify: self.notify.as_ref().map(|(fd, _)| fd.as_raw_fd()),
            socket: self.socket.as_ref().map(AsRawFd::as_raw_fd),
            control: self.control.as_ref().map(|(fd, _)| fd.as_raw_fd()),
        };

        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: plain signal-set manipulation on local storage.
        let old = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
            old.assume_init()
        };
        let mut child_mask = old;
        // SAFETY: as above.
        unsafe {
            libc::sigdelset(&mut child_mask, libc::SIGCHLD);
            libc::sigdelset(&mut child_mask, libc::SIGTERM);
        }

        // SAFETY: the child only calls `run_child`, which performs
        // async-signal-safe system calls on memory prepared before the fork.
        let forked = unsafe { nix::unistd::fork() };
        if let Ok(nix::unistd::ForkResult::Child) = forked {
            // SAFETY: we are the freshly forked child.
            unsafe { run_child(&prepared, &fds, &child_mask, self.reset_sigpipe) }
        }
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        let pid = match forked {
            Ok(nix::unistd::ForkResult::Parent { child }) => child,
            Ok(nix::unistd::ForkResult::Child) => unreachable!("the child never returns"),
            Err(errno) => {
                return Err(LaunchFailure {
                    stage: LaunchStage::Fork,
                    errno,
                })
            }
        };
        drop(status_w);
        drop(prepared);
        Ok(Pending {
            pid,
            status: status_r,
        })
    }

    fn prepare(&self) -> Result<Prepared<'_>, LaunchFailure> {
        let invalid = |stage| LaunchFailure {
            stage,
            errno: Errno::EINVAL,
        };
        let cstring = |s: &OsStr, stage| CString::new(s.as_bytes()).map_err(|_| invalid(stage));

        if self.argv.first().map_or(true, |a| a.is_empty()) {
            return Err(LaunchFailure {
                stage: LaunchStage::DoExec,
                errno: Errno::ENOENT,
            });
        }
        let argv: Vec<CString> = self
            .argv
            .iter()
            .map(|a| cstring(a, LaunchStage::DoExec))
            .collect::<Result<_, _>>()?;

        let notify_fd = match &self.notify {
            None => None,
            Some((_, NotifyTarget::Fd(n))) => Some(*n),
            Some((_, NotifyTarget::EnvVar(_))) => Some(if self.socket.is_some() { 4 } else { 3 }),
        };
        if let Some(n) = notify_fd {
            if n < 3 || (n == 3 && self.socket.is_some()) {
                return Err(invalid(LaunchStage::ArrangeFds));
            }
        }

        let control_fd = self.control.as_ref().map(|_| {
            let first = if self.socket.is_some() { 4 } else { 3 };
            if notify_fd == Some(first) {
                first + 1
            } else {
                first
            }
        });

        // What this launch adds to or replaces in the base environment.
        let mut overlay = Cow::Borrowed(&self.env);
        if let (Some((_, NotifyTarget::EnvVar(var))), Some(n)) = (&self.notify, notify_fd) {
            overlay.to_mut().insert(var.into(), n.to_string().into());
        }
        if let (Some((_, var)), Some(n)) = (&self.control, control_fd) {
            overlay.to_mut().insert(var.into(), n.to_string().into());
        }
        if self.socket.is_some() {
            overlay.to_mut().insert("LISTEN_FDS".into(), "1".into());
        }
        let mut own = Vec::with_capacity(overlay.len());
        for (k, v) in overlay.iter() {
            let stage = if matches!(&self.notify, Some((_, NotifyTarget::EnvVar(var))) if OsStr::new(var) == k)
            {
                LaunchStage::SetNotifyFdVar
            } else {
                LaunchStage::DoExec
            };
            own.push(env_block::entry(k, v).map_err(|_| invalid(stage))?);
        }
        // Filled with the child's pid in the child; sized for any pid.
        let listen_pid = self.socket.is_some().then(|| {
            let mut buf = b"LISTEN_PID=".to_vec();
            buf.resize(buf.len() + 21, 0);
            buf.into_boxed_slice()
        });
        let search_path = match own.iter().position(|e| env_block::name_of(e) == b"PATH") {
            Some(at) => SearchPath::Own(at),
            None if self.base.is_some_and(|b| b.get(b"PATH").is_some()) => SearchPath::Base,
            None => SearchPath::Default,
        };

        let working_dir = self
            .working_dir
            .as_ref()
            .map(|d| cstring(d.as_os_str(), LaunchStage::ChangeDirectory))
            .transpose()?;
        let log_file = match &self.stdout {
            Stdout::File { path, mode } => Some((
                cstring(path.as_os_str(), LaunchStage::OpenLogFile)?,
                *mode as libc::mode_t,
            )),
            _ => None,
        };
        let needs_devnull =
            matches!(self.stdin, Stdin::Null) || matches!(self.stdout, Stdout::Null);
        let devnull = if needs_devnull {
            Some(
                nix::fcntl::open(
                    "/dev/null",
                    OFlag::O_RDWR | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map(|fd| {
                    // SAFETY: `open` just returned this fd and nothing else owns it.
                    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
                })
                .map_err(fail(LaunchStage::SetupStdinOutErr))?,
            )
        } else {
            None
        };
        let rlimits = self
            .rlimits
            .iter()
            .map(|r| (r.resource, r.soft.map(limit_value), r.hard.map(limit_value)))
            .collect();
        let oom_score_adj = self.oom_score_adj.map(|adj| {
            let mut text = Decimal::new(adj.into());
            text.push(b'\n');
            text
        });
        let cgroup_procs = match &self.cgroup {
            Some(dir) if dir.is_absolute() => Some(Ok(cstring(
                dir.join("cgroup.procs").as_os_str(),
                LaunchStage::EnterCgroup,
            )?)),
            Some(_) => Some(Err(libc::ENOENT)),
            None => None,
        };

        let mut prepared = Prepared {
            argv_ptrs: Vec::new(),
            argv,
            base: self.base,
            env_ptrs: Vec::new(),
            env: own,
            listen_pid,
            listen_pid_ptr: std::ptr::null_mut(),
            search_path,
            working_dir,
            log_file,
            devnull,
            notify_fd,
            control_fd,
            rlimits,
            nice: self.nice,
            io_priority: self.io_priority.map(IoPriority::raw),
            oom_score_adj,
            cgroup_procs,
            groups: self.credentials.groups.clone(),
            gid: self.credentials.gid,
            uid: self.credentials.uid,
        };
        prepared.argv_ptrs = prepared.argv.iter().map(|a| a.as_ptr()).collect();
        prepared.argv_ptrs.push(std::ptr::null());
        if let Some(buf) = &mut prepared.listen_pid {
            prepared.listen_pid_ptr = buf.as_mut_ptr();
        }
        let shared_as_is = prepared.env.is_empty() && prepared.listen_pid.is_none();
        if !(shared_as_is && prepared.base.is_some()) {
            prepared.env_ptrs = merged_env(prepared.base, &prepared.env, self.socket.is_some());
            if prepared.listen_pid.is_some() {
                prepared
                    .env_ptrs
                    .push(prepared.listen_pid_ptr.cast_const().cast());
            }
            prepared.env_ptrs.push(std::ptr::null());
        }
        Ok(prepared)
    }
}

fn fail(stage: LaunchStage) -> impl Fn(Errno) -> LaunchFailure {
    move |errno| LaunchFailure { stage, errno }
}

fn limit_value(v: LimitValue) -> libc::rlim_t {
    match v {
        LimitValue::Unlimited => libc::RLIM_INFINITY,
        LimitValue::Value(n) => n as libc::rlim_t,
    }
}

/// The base entries, each replaced by the entry of `own` with its name if
/// there is one, then the rest of `own`, in order (as overlaying a map);
/// without `LISTEN_PID` when `drop_listen_pid`. Not null-terminated.
fn merged_env(
    base: Option<&EnvBlock>,
    own: &[CString],
    drop_listen_pid: bool,
) -> Vec<*const libc::c_char> {
    let kept = |e: &CStr| !(drop_listen_pid && env_block::name_of(e) == b"LISTEN_PID");
    let mut ptrs = Vec::with_capacity(base.map_or(0, EnvBlock::len) + own.len() + 2);
    for entry in base.into_iter().flat_map(EnvBlock::entries) {
        let name = env_block::name_of(entry);
        let chosen = own
            .iter()
            .find(|o| env_block::name_of(o) == name)
            .map_or(entry, CString::as_c_str);
        if kept(chosen) {
            ptrs.push(chosen.as_ptr());
        }
    }
    for entry in own {
        let in_base = base.is_some_and(|b| b.get(env_block::name_of(entry)).is_some());
        if !in_base && kept(entry) {
            ptrs.push(entry.as_ptr());
        }
    }
    ptrs
}

/// Where the child looks for a command named without a `/`.
#[derive(Debug, Clone, Copy)]
enum SearchPath {
    /// `PATH` is one of the launch's own entries (at this index).
    Own(usize),
    /// `PATH` is the base environment's.
    Base,
    /// No `PATH`: glibc's default.
    Default,
}

/// Reads the child's report: `None` when the pipe closed without one (the
/// exec succeeded).
/// A forked child whose exec has not been confirmed yet.
#[derive(Debug)]
pub struct Pending {
    pub pid: Pid,
    /// Closes (end of file) when the exec succeeded; carries the failure
    /// otherwise. Close-on-exec in the child.
    status: OwnedFd,
}

impl Pending {
    /// Readable once the outcome is known.
    pub fn status_fd(&self) -> BorrowedFd<'_> {
        self.status.as_fd()
    }

    /// The outcome: blocks until the child has exec'd or failed, which is
    /// immediate once `status_fd` is readable. A failed child is reaped here
    /// (unless someone reaped it already) so it leaves no zombie.
    pub fn finish(self) -> Result<Pid, LaunchFailure> {
        match read_status(&self.status) {
            None => Ok(self.pid),
            Some(failure) => {
                while let Err(Errno::EINTR) = nix::sys::wait::waitpid(self.pid, None) {}
                Err(failure)
            }
        }
    }
}

fn read_status(fd: &OwnedFd) -> Option<LaunchFailure> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(errno) => {
                return Some(LaunchFailure {
                    stage: LaunchStage::DoExec,
                    errno,
                })
            }
        }
    }
    if got == 0 {
        return None;
    }
    let stage = stage_from_code(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]));
    let errno = Errno::from_raw(i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]));
    Some(LaunchFailure { stage, errno })
}

fn stage_from_code(code: u32) -> LaunchStage {
    use LaunchStage::*;
    [
        ArrangeFds,
        ReadEnvFile,
        SetNotifyFdVar,
        SetupActivationSocket,
        SetupControlSocket,
        ChangeDirectory,
        SetupStdinOutErr,
        EnterCgroup,
        SetRlimits,
        SetUidGid,
        OpenLogFile,
        SetCaps,
        SetPriority,
        DoExec,
        Fork,
    ]
    .into_iter()
    .find(|s| *s as u32 == code)
    .unwrap_or(DoExec)
}

/// What the child uses, all allocated before the fork.
struct Prepared<'a> {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    base: Option<&'a EnvBlock>,
    /// The launch's own entries (`Launch::env`, the variables naming the
    /// readiness fd and the control connection, `LISTEN_FDS`), overlaid on
    /// `base`.
    env: Vec<CString>,
    /// The merged environment; empty when `base` is passed as it is.
    env_ptrs: Vec<*const libc::c_char>,
    /// Owns the `LISTEN_PID=` entry, written through `listen_pid_ptr`.
    listen_pid: Option<Box<[u8]>>,
    listen_pid_ptr: *mut u8,
    search_path: SearchPath,
    working_dir: Option<CString>,
    log_file: Option<(CString, libc::mode_t)>,
    devnull: Option<OwnedFd>,
    notify_fd: Option<i32>,
    /// Where the control connection goes (`Launch::control`).
    control_fd: Option<i32>,
    rlimits: Vec<(Resource, Option<libc::rlim_t>, Option<libc::rlim_t>)>,
    nice: Option<i32>,
    /// The value for `ioprio_set`.
    io_priority: Option<i32>,
    /// The text written to `/proc/self/oom_score_adj`.
    oom_score_adj: Option<Decimal>,
    /// The cgroup's `cgroup.procs` file, or the errno reported for a
    /// cgroup that cannot be placed.
    cgroup_procs: Option<Result<CString, i32>>,
    groups: Option<Vec<u32>>,
    gid: Option<u32>,
    uid: Option<u32>,
}

impl Prepared<'_> {
    /// The environment array for `execve`.
    fn envp(&self) -> *const *const libc::c_char {
        match self.base {
            Some(base) if self.env_ptrs.is_empty() => base.as_ptr(),
            _ => self.env_ptrs.as_ptr(),
        }
    }

    /// The directories to look for the command in, `:`-separated.
    fn search_path(&self) -> &[u8] {
        let path = match self.search_path {
            SearchPath::Own(at) => env_block::value_of(&self.env[at], b"PATH"),
            SearchPath::Base => self.base.and_then(|b| b.get(b"PATH")),
            SearchPath::Default => None,
        };
        path.unwrap_or(DEFAULT_PATH)
    }
}

/// The parent's fds the child copies into place.
struct ChildFds {
    status: RawFd,
    devnull: Option<RawFd>,
    stdin: Option<RawFd>,
    stdout: Option<RawFd>,
    /// Output goes to `devnull` (rather than being inherited).
    stdout_null: bool,
    /// The output replaces fd 1 only; fd 2 stays braid's.
    stdout_only: bool,
    notify: Option<RawFd>,
    socket: Option<RawFd>,
    control: Option<RawFd>,
}

/// Reports a failed step to the parent and exits.
unsafe fn child_fail(status: RawFd, stage: LaunchStage, errno: i32) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(stage as u32).to_le_bytes());
    buf[4..].copy_from_slice(&errno.to_le_bytes());
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(status, buf.as_ptr().cast(), buf.len());
        libc::_exit(127)
    }
}

fn errno() -> i32 {
    Errno::last_raw()
}

/// The child's side, between fork and exec. Signals are all blocked on entry.
///
/// # Safety
/// Must be called only in a freshly forked child; runs only
/// async-signal-safe system calls.
unsafe fn run_child(p: &Prepared, fds: &ChildFds, mask: &libc::sigset_t, reset_sigpipe: bool) -> ! {
    // SAFETY (whole body): only async-signal-safe calls on memory prepared
    // before the fork, in a single-threaded child.
    unsafe {
        // Handlers installed by braid would run braid's code (and write to its
        // self-pipe) if a signal arrived before exec: restore the defaults.
        for sig in 1..65 {
            let mut old = MaybeUninit::<libc::sigaction>::zeroed();
            if libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) != 0 {
                continue;
            }
            let handler = old.assume_init().sa_sigaction;
            let reset = if handler == libc::SIG_IGN {
                sig == libc::SIGPIPE && reset_sigpipe
            } else {
                handler != libc::SIG_DFL
            };
            if reset {
                libc::signal(sig, libc::SIG_DFL);
            }
        }

        // Move every fd we need above all target numbers first, so that
        // placing one can never overwrite another.
        let mut status = fds.status;
        let mut high_from = 3;
        if let Some(n) = p.notify_fd {
            high_from = high_from.max(n + 1);
        }
        if fds.socket.is_some() {
            high_from = high_from.max(4);
        }
        if let Some(n) = p.control_fd {
            high_from = high_from.max(n + 1);
        }
        let lift = |fd: RawFd, status: RawFd| -> RawFd {
            let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, high_from);
            if new < 0 {
                child_fail(status, LaunchStage::ArrangeFds, errno());
            }
            new
        };
        status = lift(status, status);
        let devnull = fds.devnull.map(|fd| lift(fd, status));
        let stdin = fds.stdin.map(|fd| lift(fd, status));
        let stdout = fds.stdout.map(|fd| lift(fd, status));
        let notify = fds.notify.map(|fd| lift(fd, status));
        let socket = fds.socket.map(|fd| lift(fd, status));
        let control = fds.control.map(|fd| lift(fd, status));

        if let (Some(fd), Some(n)) = (notify, p.notify_fd) {
            if libc::dup2(fd, n) < 0 {
                child_fail(status, LaunchStage::ArrangeFds, errno());
            }
        }
        if let Some(fd) = socket {
            if libc::dup2(fd, 3) < 0 {
                child_fail(status, LaunchStage::SetupActivationSocket, errno());
            }
        }
        if p.listen_pid.is_some() {
            write_pid(p.listen_pid_ptr, libc::getpid());
        }
        if let (Some(fd), Some(n)) = (control, p.control_fd) {
            if libc::dup2(fd, n) < 0 {
                child_fail(status, LaunchStage::SetupControlSocket, errno());
            }
        }

        if let Some(dir) = &p.working_dir {
            if libc::chdir(dir.as_ptr()) != 0 {
                child_fail(status, LaunchStage::ChangeDirectory, errno());
            }
        }

        let stdio = LaunchStage::SetupStdinOutErr;
        let input = stdin.or(devnull).unwrap_or(0);
        if libc::dup2(input, 0) < 0 {
            child_fail(status, stdio, errno());
        }
        let output = if let Some((path, mode)) = &p.log_file {
            let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC;
            let fd = libc::open(path.as_ptr(), flags, *mode as libc::c_uint);
            if fd < 0 {
                child_fail(status, LaunchStage::OpenLogFile, errno());
            }
            Some(fd)
        } else if fds.stdout_null {
            devnull
        } else {
            stdout // `None`: inherit braid's fds 1 and 2
        };
        if let Some(fd) = output {
            if libc::dup2(fd, 1) < 0 || (!fds.stdout_only && libc::dup2(fd, 2) < 0) {
                child_fail(status, stdio, errno());
            }
        }
        libc::setsid();

        for &(resource, soft, hard) in &p.rlimits {
            let (cur_soft, cur_hard) = match getrlimit(resource) {
                Ok(v) => v,
                Err(e) => child_fail(status, LaunchStage::SetRlimits, e as i32),
            };
            if let Err(e) = setrlimit(resource, soft.unwrap_or(cur_soft), hard.unwrap_or(cur_hard))
            {
                child_fail(status, LaunchStage::SetRlimits, e as i32);
            }
        }

        if let Some(nice) = p.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                child_fail(status, LaunchStage::SetPriority, errno());
            }
        }
        if let Some(value) = p.io_priority {
            const IOPRIO_WHO_PROCESS: libc::c_long = 1;
            let pid = libc::c_long::from(libc::getpid());
            let value = libc::c_long::from(value);
            if libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, pid, value) != 0 {
                child_fail(status, LaunchStage::SetPriority, errno());
            }
        }
        if let Some(text) = &p.oom_score_adj {
            let path = c"/proc/self/oom_score_adj";
            if let Err(e) = write_file(path, text.as_bytes()) {
                child_fail(status, LaunchStage::SetPriority, e);
            }
        }
        match &p.cgroup_procs {
            Some(Ok(path)) => {
                let pid = Decimal::new(libc::getpid().into());
                if let Err(e) = write_file(path, pid.as_bytes()) {
                    child_fail(status, LaunchStage::EnterCgroup, e);
                }
            }
            Some(Err(e)) => child_fail(status, LaunchStage::EnterCgroup, *e),
            None => {}
        }

        if let Some(groups) = &p.groups {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                child_fail(status, LaunchStage::SetUidGid, errno());
            }
        }
        if let Some(gid) = p.gid {
            if libc::setgid(gid) != 0 {
                child_fail(status, LaunchStage::SetUidGid, errno());
            }
        }
        if let Some(uid) = p.uid {
            if libc::setuid(uid) != 0 {
                child_fail(status, LaunchStage::SetUidGid, errno());
            }
        }

        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());

        // Like execvp: skip candidates that do not exist, remember EACCES.
        // Each candidate is put together here, on the stack: nothing of it
        // is allocated (or freed) in the parent.
        let name = p.argv[0].to_bytes();
        let has_slash = name.contains(&b'/');
        let envp = p.envp();
        let mut err = libc::ENOENT;
        let mut saw_eacces = false;
        let mut candidate = [0u8; libc::PATH_MAX as usize];
        let dirs: &[u8] = if has_slash { b"" } else { p.search_path() };
        for dir in dirs.split(|&b| b == b':') {
            let path: *const libc::c_char = if has_slash {
                p.argv[0].as_ptr()
            } else {
                let slash = usize::from(!dir.is_empty());
                let len = dir.len() + slash + name.len();
                if len >= candidate.len() {
                    err = libc::ENAMETOOLONG;
                    continue;
                }
                candidate[..dir.len()].copy_from_slice(dir);
                candidate[dir.len()] = b'/';
                candidate[dir.len() + slash..len].copy_from_slice(name);
                candidate[len] = 0;
                candidate.as_ptr().cast()
            };
            libc::execve(path, p.argv_ptrs.as_ptr(), envp);
            err = errno();
            match err {
                libc::EACCES => saw_eacces = true,
                libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP | libc::ESTALE => {}
                _ => break,
            }
        }
        if saw_eacces && matches!(err, libc::ENOENT | libc::ENOTDIR) {
            err = libc::EACCES;
        }
        child_fail(status, LaunchStage::DoExec, err)
    }
}

/// Opens `path` for writing (no create) and writes `bytes` in one call;
/// the errno of the step that failed. Async-signal-safe.
///
/// # Safety
/// Only for the child between fork and exec (or any single-threaded use).
unsafe fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: open(2), write(2) and close(2) on a NUL-terminated path and a
    // valid buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let err = errno();
        libc::close(fd);
        if written < 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// A number in decimal, on the stack (the child may not allocate), with
/// room for one more byte after it.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    buf: [u8; 22],
    len: usize,
}

impl Decimal {
    fn new(n: i64) -> Self {
        let mut digits = [0u8; 20];
        let mut count = 0;
        let mut rest = n.unsigned_abs();
        loop {
            digits[count] = b'0' + (rest % 10) as u8;
            count += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut d = Decimal {
            buf: [0; 22],
            len: 0,
        };
        if n < 0 {
            d.push(b'-');
        }
        for &digit in digits[..count].iter().rev() {
            d.push(digit);
        }
        d
    }

    fn push(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes `pid` in decimal after the `LISTEN_PID=` prefix, NUL-terminated.
///
/// # Safety
/// `out` points to the child's copy of the buffer prepared before the fork,
/// with room for the prefix, 20 digits and the NUL.
unsafe fn write_pid(out: *mut u8, pid: libc::pid_t) {
    let prefix = b"LISTEN_PID=".len();
    let mut digits = [0u8; 20];
    let mut n = pid as u64;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: in bounds, per the contract above.
        unsafe { *out.add(prefix + i) = digits[len - 1 - i] };
    }
    // SAFETY: as above.
    unsafe { *out.add(prefix + len) = 0 };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text() {
        assert_eq!(Decimal::new(0).as_bytes(), b"0");
        assert_eq!(Decimal::new(-1000).as_bytes(), b"-1000");
        let mut d = Decimal::new(i64::MIN);
        d.push(b'\n');
        assert_eq!(d.as_bytes(), b"-9223372036854775808\n");
    }

    #[test]
    fn io_priority_values() {
        assert_eq!(IoPriority::Default.raw(), 0);
        assert_eq!(IoPriority::Realtime(2).raw(), 1 << 13 | 2);
        assert_eq!(IoPriority::BestEffort(5).raw(), 2 << 13 | 5);
        assert_eq!(IoPriority::Idle.raw(), 3 << 13);
    }

    #[test]
    fn unplaced_or_missing_cgroup_fails_at_its_stage() {
        for dir in ["relative", "/nonexistent-braid-cgroup"] {
            let mut launch = Launch::new(["/bin/true"]);
            launch.cgroup(dir);
            let failure = launch.spawn().unwrap_err();
            assert_eq!(failure.stage, LaunchStage::EnterCgroup, "{dir}");
            assert_eq!(failure.errno, Errno::ENOENT, "{dir}");
        }
    }

    #[test]
    fn oom_score_adj_reaches_the_process() {
        let mut launch = Launch::new(["/bin/sleep", "10"]);
        // Raising the score needs no privilege.
        launch.oom_score_adj(1000);
        let pid = launch.spawn().expect("spawn");
        let text = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        assert_eq!(text.unwrap().trim(), "1000");
    }
}
