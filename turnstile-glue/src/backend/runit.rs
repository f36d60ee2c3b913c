//! turnstile's `runit` backend on braid's runit face.
//!
//! `run` reads `CONFDIR/runit.conf` (keys `ready_sv`, `services_dir`,
//! `service_env_dir`, defaults as turnstile's; plus braid's
//! `ready_timeout`), creates the directories, writes
//! `services_dir/ready_sv/run` (a service that only pauses: the gate does
//! its old job), exports `TURNSTILE_ENV_DIR`, and becomes runsvdir on
//! `services_dir` in this very process. The gate is built from
//! `core_services` in `services_dir/ready_sv/conf`; as the stock `sv start`
//! does, each core service is brought up (even if marked `down`), and one
//! with a `./check` counts as ready only once its check passes.
//!
//! `stop PID` sends SIGHUP, as the stock backend does: every service is
//! stopped, then the manager exits 111 (SIGTERM does the same, exit 0).

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use braid_core::engine::{Command, ServiceId, State};
use braid_core::runtime::Runtime;
use braid_core::spec::{CommandLine, DepKind, Readiness, RestartMode, ServiceSpec};
use nix::sys::signal::Signal;

use super::conf;
use super::session::{self, RunArgs};
use crate::gate::{self, Gate, ServedGate};

const FACE: &str = "runit";

/// How often a core service's `./check` is run until it passes (sv's
/// own `sv start` looks about this often).
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The backend program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let action = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let args = argv.get(2..).unwrap_or_default();
    match action {
        "run" => run(args),
        "ready" => session::ready(FACE, args),
        "stop" => session::stop(FACE, args, Signal::SIGHUP),
        _ => 32,
    }
}

fn run(args: &[OsString]) -> i32 {
    let args = match session::run_args(FACE, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    session::seal_inherited_fds();
    session::become_subreaper();
    match supervise(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{FACE}: {e}");
            1
        }
    }
}

/// Where the session's services live, from `runit.conf`.
#[derive(Debug)]
struct Layout {
    services_dir: PathBuf,
    ready_dir: PathBuf,
    env_dir: PathBuf,
    timeout: Duration,
}

fn layout(args: &RunArgs) -> Result<Layout, String> {
    let values = conf::evaluate(
        &args.confdir.join("runit.conf"),
        &[
            "ready_sv",
            "services_dir",
            "service_env_dir",
            session::TIMEOUT_KEY,
        ],
        None,
        &args.home,
    )
    .map_err(|e| e.to_string())?;
    let services_dir =
        PathBuf::from(values.get_or("services_dir", args.home.join(".config/service")));
    let ready_sv = values.get_or("ready_sv", "turnstile-ready");
    Ok(Layout {
        ready_dir: services_dir.join(ready_sv),
        env_dir: values
            .get_or("service_env_dir", args.home.join(".config/service-env"))
            .into(),
        services_dir,
        timeout: session::gate_timeout(FACE, &values),
    })
}

/// Creates the directories and (re)writes the ready service's `run`.
fn prepare(layout: &Layout) -> Result<(), String> {
    session::make_dirs(&layout.ready_dir)?;
    session::make_dirs(&layout.env_dir)?;
    let exe = session::braid_exe()?;
    let script = format!(
        "#!/bin/sh\n\
         # Written by braid at every session start. braid's login gate waits\n\
         # for the core_services named in ./conf; this service only stays up.\n\
         exec '{}' pause\n",
        exe.display().to_string().replace('\'', r"'\''")
    );
    let run = layout.ready_dir.join("run");
    std::fs::write(&run, script)
        .and_then(|()| std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("writing {}: {e}", run.display()))
}

/// `core_services` of the ready service's `conf`, split on blanks.
fn core_services(ready_dir: &Path) -> Result<Vec<String>, String> {
    let values = conf::evaluate(&ready_dir.join("conf"), &["core_services"], None, ready_dir)
        .map_err(|e| e.to_string())?;
    Ok(values
        .get("core_services")
        .to_string_lossy()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

fn supervise(args: &RunArgs) -> Result<i32, String> {
    let layout = layout(args)?;
    prepare(&layout)?;
    let core = core_services(&layout.ready_dir)?;
    std::env::set_var("TURNSTILE_ENV_DIR", &layout.env_dir);
    let mut embedded = braid_runit::runsvdir::embed(&layout.services_dir)
        .map_err(|e| format!("supervising {}: {e}", layout.services_dir.display()))?;
    let rt = &mut embedded.runtime;

    for name in &core {
        bring_up(&layout.services_dir, name);
    }
    let (members, probes) = probes(rt, &layout, &core)?;
    let pairs: Vec<(&str, &str)> = members
        .iter()
        .map(|(n, l)| (n.as_str(), l.as_str()))
        .collect();
    let mut gate = Gate::labelled(rt.engine(), &pairs);
    for (probe, service) in members.iter().filter(|(p, s)| p != s) {
        gate.watch_subject(rt.engine(), probe, service);
    }
    let socket = args.srvdir.join(session::GATE_SOCKET);
    let served = gate::serve(rt, gate, &socket, layout.timeout).map_err(|e| e.to_string())?;
    retire_probes_when_decided(rt, &served, &probes);

    let shutdown = embedded.shutdown_fn();
    let shutdown = Rc::new(shutdown);
    for (signal, code) in [(Signal::SIGHUP, 111), (Signal::SIGTERM, 0)] {
        let probes = probes.clone();
        let shutdown = shutdown.clone();
        embedded
            .runtime
            .on_signal(signal, move |rt, _| {
                stop_probes(rt, &probes.borrow());
                shutdown(rt, code);
            })
            .map_err(|e| format!("catching {signal}: {e}"))?;
    }
    session::write_ready_string(&args.fifo, socket.as_os_str())?;
    let code = embedded
        .runtime
        .run()
        .map_err(|e| format!("event loop: {e}"))?;
    session::sweep_children(session::SWEEP_GRACE, session::SWEEP_BOUND);
    Ok(code)
}

/// `sv start`'s `u`: asks the service's supervisor (ours) to bring it up,
/// through its control FIFO, so that its `supervise/` says "want up" too.
fn bring_up(services_dir: &Path, name: &str) {
    let control = services_dir.join(name).join("supervise/control");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(control);
    if let Ok(mut f) = opened {
        let _ = std::io::Write::write_all(&mut f, b"u");
    }
}

/// The gate's members: each core service, or for one with `./check` a
/// probe service that is started only once that check passes (the engine
/// runs it; the probe itself just pauses). Probes are named `.ready:NAME`,
/// a name no service directory can have.
type Members = (Vec<(String, String)>, Rc<RefCell<Vec<ServiceId>>>);

fn probes(rt: &mut Runtime, layout: &Layout, core: &[String]) -> Result<Members, String> {
    let exe = session::braid_exe()?;
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for name in core {
        let dir = layout.services_dir.join(name);
        let check = dir.join("check");
        if rt.engine().lookup(name).is_none() || !check.exists() {
            members.push((name.clone(), name.clone()));
            continue;
        }
        let probe_name = format!(".ready:{name}");
        let mut spec = ServiceSpec::process(&probe_name, [exe.as_os_str(), OsStr::new("pause")]);
        spec.working_dir = Some(dir);
        spec.readiness = Readiness::CheckCommand {
            command: CommandLine::new(["./check"]),
            interval: CHECK_INTERVAL,
        };
        spec.restart.mode = RestartMode::Never;
        // Stopping it must not wait for the check to pass.
        spec.flags.start_interruptible = true;
        spec.start_timeout = Some(layout.timeout);
        let spec = spec.depends(DepKind::Hard, name.as_str());
        let id = match rt.engine().lookup(&probe_name) {
            Some(id) => id,
            None => rt
                .engine_mut()
                .load(spec)
                .map_err(|e| format!("readiness probe for {name}: {e:?}"))?,
        };
        let _ = rt.command(id, Command::Start { pin: false });
        members.push((probe_name, name.clone()));
        ids.push(id);
    }
    Ok((members, Rc::new(RefCell::new(ids))))
}

fn stop_probes(rt: &mut Runtime, probes: &[ServiceId]) {
    for id in probes {
        let _ = rt.command(
            *id,
            Command::Stop {
                pin: false,
                gentle: false,
            },
        );
    }
}

/// Probes are only needed until the gate has decided: then they are
/// stopped, and unloaded once down.
fn retire_probes_when_decided(
    rt: &mut Runtime,
    served: &ServedGate,
    probes: &Rc<RefCell<Vec<ServiceId>>>,
) {
    if probes.borrow().is_empty() {
        return;
    }
    if served.verdict().is_some() {
        stop_probes(rt, &probes.borrow());
    }
    let served = served.clone();
    let probes = probes.clone();
    rt.add_listener(move |rt, n| {
        if served.verdict().is_none() {
            return;
        }
        let mut list = probes.borrow_mut();
        if list.is_empty() {
            return;
        }
        let mine = list.contains(&n.service);
        if mine && rt.engine().status(n.service).state == State::Stopped {
            if rt.engine_mut().unload(n.service).is_ok() {
                list.retain(|id| *id != n.service);
            }
            return;
        }
        let running: Vec<ServiceId> = list
            .iter()
            .copied()
            .filter(|id| rt.engine().status(*id).target == State::Started)
            .collect();
        stop_probes(rt, &running);
    });
}
