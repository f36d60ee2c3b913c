//! Translating a [`ServiceDescription`] into braid's [`ServiceSpec`].
//!
//! Settings with no counterpart in `ServiceSpec` (console options, utmp
//! entries, log file ownership,
//! `kill-all-on-stop`, `starts-rwfs`/`starts-log`, variables an env-file
//! unsets) stay in the description for the daemon to read there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use braid_core::spec::{
    CommandLine, Credentials, DepKind, Dependency, Flags, IoPriority, Kind, LimitValue, Output,
    Readiness, RestartMode, RestartPolicy, Rlimit, ServiceSpec, SocketSpec,
};
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;

use super::{
    DepType, IoPrio, Limit, LogType, ReadyNotification, RestartSetting, RlimitResource,
    ServiceDescription, ServiceType,
};

/// The service `desc` describes, as the engine models it.
pub fn to_spec(desc: &ServiceDescription) -> ServiceSpec {
    let kind = match desc.service_type {
        ServiceType::Process => Kind::Process,
        ServiceType::BgProcess => Kind::BackgroundProcess {
            pid_file: PathBuf::from(&desc.pid_file),
        },
        ServiceType::Scripted => Kind::Scripted,
        ServiceType::Internal => Kind::Internal,
        ServiceType::Triggered => Kind::Triggered,
    };
    let process_based = matches!(
        desc.service_type,
        ServiceType::Process | ServiceType::BgProcess
    );
    let mut spec = ServiceSpec::new(desc.name.clone(), kind);
    spec.start = CommandLine::new(&desc.command);
    if !desc.stop_command.is_empty() {
        spec.stop = Some(CommandLine::new(&desc.stop_command));
    }
    spec.env = desc
        .service_env
        .set_vars()
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    spec.credentials = credentials(desc);
    let working_dir = if desc.working_dir.is_empty() {
        PathBuf::from(&desc.service_dir)
    } else {
        PathBuf::from(&desc.working_dir)
    };
    spec.rlimits = desc
        .rlimits
        .iter()
        .map(|(res, pair)| Rlimit {
            resource: match res {
                RlimitResource::NoFile => Resource::RLIMIT_NOFILE,
                RlimitResource::Core => Resource::RLIMIT_CORE,
                RlimitResource::Data => Resource::RLIMIT_DATA,
                RlimitResource::AddrSpace => Resource::RLIMIT_AS,
            },
            soft: pair.soft.map(limit),
            hard: pair.hard.map(limit),
        })
        .collect();
    spec.nice = desc.nice.map(|n| n.clamp(-20, 19));
    spec.io_priority = desc.ioprio.map(|p| match p {
        IoPrio::None => IoPriority::Default,
        IoPrio::Realtime(l) => IoPriority::Realtime(l),
        IoPrio::BestEffort(l) => IoPriority::BestEffort(l),
        IoPrio::Idle => IoPriority::Idle,
    });
    spec.oom_score_adj = desc.oom_score_adj;
    spec.cgroup = cgroup_dir(&desc.run_in_cgroup, None);

    let mut deps: Vec<Dependency> = desc
        .deps
        .iter()
        .map(|d| Dependency {
            name: d.name.clone(),
            kind: match d.kind {
                DepType::Regular => DepKind::Hard,
                DepType::PreparedBy => DepKind::PreparedBy,
                DepType::Milestone => DepKind::Milestone,
                DepType::WaitsFor => DepKind::WaitsFor,
            },
        })
        .collect();
    let ordering = |names: &[String], kind| {
        names
            .iter()
            .map(move |n| Dependency {
                name: n.clone(),
                kind,
            })
            .collect::<Vec<_>>()
    };
    deps.extend(ordering(&desc.before, DepKind::Before));
    deps.extend(ordering(&desc.after, DepKind::After));
    spec.deps = deps;

    spec.readiness = match (&desc.ready_notification, desc.service_type) {
        (Some(ReadyNotification::PipeFd(fd)), ServiceType::Process) => Readiness::NotifyFd(*fd),
        (Some(ReadyNotification::PipeVar(v)), ServiceType::Process) => {
            Readiness::NotifyEnvVar(v.clone())
        }
        _ => Readiness::OnExec,
    };
    spec.restart = RestartPolicy {
        mode: match desc.restart {
            RestartSetting::Yes => RestartMode::Always,
            RestartSetting::OnFailure if process_based => RestartMode::OnFailure,
            RestartSetting::OnFailure | RestartSetting::No => RestartMode::Never,
        },
        delay: desc.restart_delay,
        limit_count: desc.restart_limit_count,
        limit_interval: desc.restart_limit_interval,
        smooth_recovery: desc.smooth_recovery && process_based,
    };
    let timeout = |d: Duration| (!d.is_zero()).then_some(d);
    spec.start_timeout = timeout(desc.start_timeout);
    spec.stop_timeout = timeout(desc.stop_timeout);
    spec.stop_signal = match desc.term_signal {
        0 => None,
        n => Signal::try_from(n).ok(),
    };
    let o = &desc.options;
    spec.output = if o.runs_on_console || o.starts_on_console || o.shares_console {
        Output::Inherit
    } else {
        match desc.log_type {
            LogType::None => Output::Discard,
            // The log file is opened after changing to the working directory.
            LogType::File => Output::File {
                path: working_dir.join(&desc.logfile),
                mode: desc.logfile_perms as u32,
                rotate: desc.logfile_rotation,
            },
            LogType::Buffer => Output::Buffer {
                size: desc.log_buffer_size as usize,
            },
            LogType::Pipe => Output::Pipe,
        }
    };
    spec.working_dir = Some(working_dir);
    spec.input_from = desc.consumer_of.clone();
    spec.chain_to = desc.chain_to.clone();
    spec.flags = Flags {
        signal_process_only: o.signal_process_only,
        start_interruptible: o.start_interruptible,
        skippable: o.skippable,
        always_chain: o.always_chain,
        // Behaviours only the runit face uses stay off.
        ..Flags::default()
    };
    if !desc.socket_path.is_empty() {
        spec.socket = Some(Box::new(SocketSpec {
            path: PathBuf::from(&desc.socket_path),
            mode: desc.socket_perms as u32,
            uid: desc.socket_uid.map(|u| u.uid),
            gid: desc.socket_gid,
        }));
    }
    // dinit passes it to the start command (and a scripted service's stop
    // command); services without a process never launch one.
    if o.pass_cs_fd {
        spec.control_fd_var = Some(CONTROL_FD_VAR.to_string());
    }
    spec
}

/// Where a `pass-cs-fd` service finds its control connection's fd number.
pub const CONTROL_FD_VAR: &str = "DINIT_CS_FD";

/// Where cgroups are mounted; dinit resolves `run-in-cgroup` under it.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directory for a `run-in-cgroup` value, as dinit finds it: an
/// absolute value names a cgroup from the root of the cgroup filesystem, a
/// relative one is under `base` (dinit's own cgroup, or `--cgroup-path`;
/// itself under the root unless absolute). With no base, a relative value
/// stays relative: the launch then fails as dinit's does (`ENOENT`).
pub fn cgroup_dir(run_in_cgroup: &str, base: Option<&Path>) -> Option<PathBuf> {
    if run_in_cgroup.is_empty() {
        return None;
    }
    let root = Path::new(CGROUP_ROOT);
    Some(match run_in_cgroup.strip_prefix('/') {
        // "/" names no cgroup (dinit opens an empty path: ENOENT).
        Some("") => PathBuf::new(),
        Some(rest) => root.join(rest),
        None => match base {
            Some(base) => root.join(base).join(run_in_cgroup),
            None => PathBuf::from(run_in_cgroup),
        },
    })
}

fn limit(l: Limit) -> LimitValue {
    match l {
        Limit::Unlimited => LimitValue::Unlimited,
        Limit::Value(v) => LimitValue::Value(v),
    }
}

/// `run-as` by name: the user's primary group and supplementary groups;
/// by number: braid's own group and no supplementary groups.
fn credentials(desc: &ServiceDescription) -> Credentials {
    let Some(user) = desc.run_as else {
        return Credentials::default();
    };
    match user.primary_gid {
        Some(gid) => {
            let groups = nix::unistd::User::from_uid(user.uid.into())
                .ok()
                .flatten()
                .and_then(|u| {
                    let name = std::ffi::CString::new(u.name).ok()?;
                    nix::unistd::getgrouplist(&name, gid.into()).ok()
                })
                .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect());
            Credentials {
                uid: Some(user.uid),
                gid: Some(gid),
                groups,
            }
        }
        None => Credentials {
            uid: Some(user.uid),
            gid: None,
            groups: Some(Vec::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_dirs_resolve_as_dinit_resolves_them() {
        let base = Some(Path::new("user.slice/me"));
        let dir = |v, base| cgroup_dir(v, base).map(|p: PathBuf| p.display().to_string());
        assert_eq!(dir("", base), None);
        assert_eq!(dir("/app", base).unwrap(), "/sys/fs/cgroup/app");
        assert_eq!(
            dir("app", base).unwrap(),
            "/sys/fs/cgroup/user.slice/me/app"
        );
        assert_eq!(
            dir("app", Some(Path::new(""))).unwrap(),
            "/sys/fs/cgroup/app"
        );
        // An absolute base is used as it is (dinit opens it as a path).
        assert_eq!(dir("app", Some(Path::new("/cg/x"))).unwrap(), "/cg/x/app");
        // No base, or "/": a relative result, which the launch cannot place.
        assert_eq!(dir("app", None).unwrap(), "app");
        assert_eq!(dir("/", base).unwrap(), "");
    }
}
