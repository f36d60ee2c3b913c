//! turnstile's `dinit` backend on braid's dinit face.
//!
//! `run` reads `CONFDIR/dinit.conf` (`boot_dir`, `system_boot_dir`,
//! `services_dir1`…`services_dirN`, defaults as turnstile's; plus braid's
//! `ready_timeout` and `service_env_dir`), writes the five services turnstile generates (`boot`,
//! `system`, `login.target`, `graphical.monitor`, `graphical.target`) into
//! the srv dir, and becomes the dinit daemon (`--user`, the srv dir first
//! among the service directories) in this very process, which starts
//! `boot`. The gate holds `login.target` and every service ordered
//! `before = login.target` that boot brings up; unlike stock dinit, a
//! failing one fails the login's readiness, naming it.
//!
//! As in a runit session, `TURNSTILE_ENV_DIR` names the session's shared
//! environment directory (`service_env_dir`, default
//! `~/.config/service-env`): the daemon follows it, so a value written
//! there is a `dinitctl setenv` (see the dinit face's `environment`).
//!
//! `stop PID` sends SIGTERM, as the stock backend does: every service is
//! stopped, then the daemon exits. `graphical.monitor` runs
//! `graphical-notify SRVDIR`, which makes `graphical.target` follow the
//! display variables both ways (see [`super::graphical`]); without an
//! argument, `graphical-notify` only triggers it, as the stock script does.
//! The monitor runs it for the display variables already set when it starts
//! too (`-i`): login is released before the monitor listens, and a display
//! set in between would otherwise go unseen.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use braid_core::engine::{Engine, State};
use braid_core::spec::DepKind;
use nix::sys::signal::Signal;

use super::conf;
use super::graphical;
use super::session::{self, RunArgs};
use crate::gate::{self, Gate};

const FACE: &str = "dinit";

/// The service login waits for.
const LOGIN_TARGET: &str = "login.target";

/// The backend program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let action = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let args = argv.get(2..).unwrap_or_default();
    match action {
        "run" => run(argv.first().map(OsString::as_os_str), args),
        "ready" => session::ready(FACE, args),
        "stop" => session::stop(FACE, args, Signal::SIGTERM),
        "graphical-notify" => match args {
            [] => graphical_notify(),
            [state_dir] => match graphical::follow(Path::new(state_dir)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{FACE}: graphical-notify: {e}");
                    1
                }
            },
            _ => {
                eprintln!("{FACE}: usage: {FACE} graphical-notify [STATE-DIR]");
                69
            }
        },
        _ => 32,
    }
}

/// The stock `graphical-notify`: trigger `graphical.target` through the user daemon's control socket. (The stock
/// script insists on a passed connection, `DINIT_CS_FD`, and then ignores
/// it; braid does not pass one, so the socket is found as `dinitctl -u`
/// finds it, from `XDG_RUNTIME_DIR` or `HOME`.)
fn graphical_notify() -> i32 {
    match braid_dinit::personality("dinitctl") {
        Some(dinitctl) => dinitctl(
            ["dinitctl", "--user", "trigger", "graphical.target"]
                .map(OsString::from)
                .to_vec(),
        ),
        None => 111,
    }
}

fn run(argv0: Option<&OsStr>, args: &[OsString]) -> i32 {
    let args = match session::run_args(FACE, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    session::seal_inherited_fds();
    session::become_subreaper();
    let backend = match argv0 {
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        _ => match session::braid_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("{FACE}: {e}");
                return 1;
            }
        },
    };
    let (dirs, timeout, env_dir) = match write_services(&args, &backend) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{FACE}: {e}");
            return 1;
        }
    };

    std::env::set_var("TURNSTILE_ENV_DIR", &env_dir);
    let mut daemon_argv: Vec<OsString> = vec!["dinit".into(), "--user".into()];
    for dir in std::iter::once(&args.srvdir).chain(&dirs) {
        daemon_argv.push("--services-dir".into());
        daemon_argv.push(dir.into());
    }
    let mut daemon = match braid_dinit::daemon::embed(&daemon_argv) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let rt = &mut daemon.runtime;
    let members = gate_members(rt.engine());
    let gate = Gate::new(rt.engine(), &members);
    let socket = args.srvdir.join(session::GATE_SOCKET);
    let served = gate::serve(rt, gate, &socket, timeout)
        .map_err(|e| e.to_string())
        .and_then(|_| session::write_ready_string(&args.fifo, socket.as_os_str()));
    if let Err(e) = served {
        eprintln!("{FACE}: {e}");
        return 1;
    }
    let code = daemon.run();
    session::sweep_children(session::SWEEP_GRACE, session::SWEEP_BOUND);
    code
}

/// `login.target` and the services ordered before it that are being
/// started.
fn gate_members(engine: &Engine) -> Vec<String> {
    let mut members = vec![LOGIN_TARGET.to_string()];
    if let Some(login) = engine.lookup(LOGIN_TARGET) {
        for (id, kind) in engine.dependencies(login) {
            if kind == DepKind::Before && engine.status(id).target == State::Started {
                members.push(engine.name(id).to_string());
            }
        }
    }
    members
}

/// Reads the conf and writes the generated services; returns the service
/// directories (after the srv dir), the gate's deadline and the session's
/// environment directory (created).
fn write_services(
    args: &RunArgs,
    backend: &Path,
) -> Result<(Vec<PathBuf>, std::time::Duration, PathBuf), String> {
    let values = conf::evaluate(
        &args.confdir.join("dinit.conf"),
        &[
            "boot_dir",
            "system_boot_dir",
            "service_env_dir",
            session::TIMEOUT_KEY,
        ],
        Some("services_dir"),
        &args.home,
    )
    .map_err(|e| e.to_string())?;
    let home = &args.home;
    let boot_dir = PathBuf::from(values.get_or("boot_dir", home.join(".config/dinit.d/boot.d")));
    let system_boot_dir =
        PathBuf::from(values.get_or("system_boot_dir", "/usr/lib/dinit.d/user/boot.d"));
    let mut dirs: Vec<PathBuf> = values
        .numbered("services_dir")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        dirs = vec![
            home.join(".config/dinit.d"),
            "/etc/dinit.d/user".into(),
            "/usr/local/lib/dinit.d/user".into(),
            "/usr/lib/dinit.d/user".into(),
        ];
    }
    // As the stock backend, a boot dir that cannot be made is no failure.
    let _ = std::fs::create_dir_all(&boot_dir);
    let env_dir = PathBuf::from(values.get_or("service_env_dir", home.join(".config/service-env")));
    session::make_dirs(&env_dir)?;

    let exe = session::braid_exe()?;
    let files = [
        (
            "boot",
            format!(
                "type = internal\ndepends-on = system\nwaits-for.d = {}\n\
                 depends-on = login.target\ndepends-ms = graphical.monitor\n\
                 depends-ms = graphical.target\n",
                boot_dir.display()
            ),
        ),
        (
            "system",
            format!(
                "type = internal\nwaits-for.d = {}\n",
                system_boot_dir.display()
            ),
        ),
        (
            "graphical.monitor",
            format!(
                "type = process\ndepends-on = login.target\noptions = pass-cs-fd\n\
                 command = {} dinit-monitor --user -E -i -c {} WAYLAND_DISPLAY DISPLAY\n",
                quote(&exe.display().to_string()),
                quote(&format!(
                    "\"{}\" graphical-notify \"{}\"",
                    backend.display(),
                    args.srvdir.display()
                )),
            ),
        ),
        ("login.target", "type = internal\n".to_string()),
        (
            "graphical.target",
            "type = triggered\ndepends-on = graphical.monitor\ndepends-on = login.target\n"
                .to_string(),
        ),
    ];
    for (name, text) in files {
        let path = args.srvdir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok((dirs, session::gate_timeout(FACE, &values), env_dir))
}

/// One argument of a dinit `command` line.
fn quote(word: &str) -> String {
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}
