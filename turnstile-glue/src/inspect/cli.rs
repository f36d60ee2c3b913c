//! How the online commands are told which session to look at (see the
//! module documentation of [`super`]), and gathering it.

use std::path::PathBuf;

use super::events::{self, Log};
use super::live;
use super::session::{load_dir, Session};

/// Which running session to inspect.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SessionArgs {
    /// runit: the service directory tree braid's runsvdir (or runit's)
    /// supervises [default: $SVDIR, else ~/.config/service].
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// dinit: the daemon's control socket [default: as dinitctl's].
    #[arg(short = 'p', long = "socket-path", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Read the session from this braid event log instead.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dir", "socket", "demo"])]
    pub events: Option<PathBuf>,
    /// The most recently started `braid demo` that is still running.
    #[arg(long, conflicts_with_all = ["dir", "socket"])]
    pub demo: bool,
}

/// A gathered session and the event logs that completed it.
#[derive(Debug, Default)]
pub struct Gathered {
    pub session: Session,
    pub logs: Vec<Log>,
    /// What was looked at, for messages (`runit DIR`, `dinit SOCKET`).
    pub sources: Vec<String>,
}

/// Finds and reads the session `args` names. `Err` is a message for the
/// user.
pub fn gather(args: &SessionArgs) -> Result<Gathered, String> {
    let mut g = Gathered::default();
    if let Some(path) = &args.events {
        let log = events::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(from_log(g, log));
    }
    if args.demo {
        let log = events::latest("demo").ok_or("no braid demo is running")?;
        return Ok(from_log(g, log));
    }

    let explicit_dir = args.dir.is_some();
    let explicit_socket = args.socket.is_some();
    let dir = args.dir.clone().or_else(super::default_runit_dir);
    if let Some(dir) = dir.filter(|d| explicit_dir || d.is_dir()) {
        load_dir(&mut g.session, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Offline problems are `check`'s business.
        g.session.findings.clear();
        let supervised = live::read_runit(&mut g.session);
        if supervised == 0 && explicit_dir {
            return Err(format!(
                "{}: no service there is supervised (no runsv or braid runs for it)",
                dir.display()
            ));
        }
        if let Some(log) = events::find("runit", &dir) {
            events::apply(&mut g.session, &log);
            g.logs.push(log);
        }
        g.sources.push(format!("runit {}", dir.display()));
    }
    let socket = args.socket.clone().or_else(live::default_dinit_socket);
    if let Some(socket) = socket.filter(|s| explicit_socket || s.exists()) {
        match live::read_dinit(&mut g.session, &socket) {
            Ok(()) => {
                if let Some(log) = events::find("dinit", &socket) {
                    events::apply(&mut g.session, &log);
                    g.logs.push(log);
                }
                g.sources.push(format!("dinit {}", socket.display()));
            }
            Err(e) if explicit_socket => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    if g.sources.is_empty() {
        return Err(
            "no session found: give a runit service directory (-d DIR), a dinit control \
             socket (-p PATH), an event log (--events FILE) or --demo"
                .into(),
        );
    }
    Ok(g)
}

fn from_log(mut g: Gathered, log: Log) -> Gathered {
    events::apply(&mut g.session, &log);
    g.sources
        .push(format!("{} (event log {})", log.face, log.path.display()));
    g.logs.push(log);
    g
}
