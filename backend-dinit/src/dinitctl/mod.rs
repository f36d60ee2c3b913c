//! braid's `dinitctl`: the dinit control client, argument for argument and
//! byte for byte as the real one (dinit 0.23, protocol 7).

mod args;
pub(crate) mod conn;
mod enable;
mod misc;
mod query;
mod startstop;
mod svcfile;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;

use crate::protocol::{Handle, Reply, Request, ServiceState, StatusVersion};
use args::{Command, Invocation, Parsed};
use conn::{Conn, ConnError};

/// The version string the real programs print.
pub(crate) const DINIT_VERSION: &str = "0.23.0pre";

/// Writes the concatenated parts to stdout (errors ignored, as with C++
/// streams).
pub(crate) fn out(parts: &[&[u8]]) {
    let mut o = std::io::stdout().lock();
    for p in parts {
        let _ = o.write_all(p);
    }
}

/// Writes the concatenated parts to stderr in one write.
pub(crate) fn err(parts: &[&[u8]]) {
    let _ = std::io::stderr().write_all(&parts.concat());
}

/// Why a command stopped early.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The message has been printed; exit 1.
    Reported,
    /// A connection error, printed by `main` with the program prefix.
    Conn(ConnError),
}

impl From<ConnError> for Failure {
    fn from(e: ConnError) -> Self {
        Failure::Conn(e)
    }
}

/// Exit status of a command, or why it failed.
pub(crate) type Outcome = Result<i32, Failure>;

/// Entry point: the whole argv, argv[0] included.
pub fn main(argv: Vec<OsString>) -> i32 {
    let args: Vec<Vec<u8>> = argv.into_iter().map(OsString::into_vec).collect();
    let user_default = !nix::unistd::getuid().is_root();
    let inv = match args::parse(&args, user_default) {
        Parsed::Run(inv) => inv,
        Parsed::Stdout(text) => {
            out(&[text.as_bytes()]);
            return 0;
        }
        Parsed::Error(text) => {
            err(&[text.as_bytes()]);
            return 1;
        }
    };
    if inv.command == Command::SignalList {
        misc::signal_list();
        return 0;
    }
    if inv.offline {
        if !matches!(inv.command, Command::Enable | Command::Disable) {
            err(&[b"dinitctl: offline mode (--offline/-o) not supported for this command\n"]);
            return 1;
        }
        return finish(enable::offline(&inv), &inv, false);
    }

    let mut passed = None;
    if inv.use_passed_cfd {
        passed = conn::passed_fd();
    }
    let mut path_given = false;
    let conn = match passed {
        Some(fd) => Ok(Conn::from_fd(fd)),
        None => {
            let path = match &inv.socket_path {
                Some(p) => {
                    path_given = true;
                    p.clone()
                }
                None => match conn::default_socket_path(inv.user) {
                    Some(p) => p,
                    None => {
                        err(&[b"dinitctl: cannot determine control socket directory (set XDG_RUNTIME_DIR or HOME, check /etc/passwd file, or specify socket path via -p)\n"]);
                        return 1;
                    }
                },
            };
            Conn::connect(&path)
        }
    };
    let result = conn.map_err(Failure::from).and_then(|mut c| {
        c.negotiate()?;
        run(&mut c, &inv)
    });
    finish(result, &inv, path_given)
}

fn finish(result: Outcome, inv: &Invocation, path_given: bool) -> i32 {
    match result {
        Ok(code) => code,
        Err(Failure::Reported) => 1,
        Err(Failure::Conn(e)) => {
            err(&[b"dinitctl: ", e.message("daemon").as_bytes(), b"\n"]);
            if let ConnError::Connect { errno, .. } = e {
                if inv.user && errno == nix::libc::ENOENT && !path_given {
                    err(&[b"dinitctl: perhaps no user instance is running?\n"]);
                }
            }
            1
        }
    }
}

fn run(conn: &mut Conn, inv: &Invocation) -> Outcome {
    let service = inv.service.as_deref().unwrap_or_default();
    let needs = |v: u16| {
        if conn.version < v {
            Err(Failure::Conn(ConnError::OldServer))
        } else {
            Ok(())
        }
    };
    match inv.command {
        Command::Unpin => misc::unpin(conn, service, inv.verbose),
        Command::Unload => misc::unload(conn, service, inv.verbose),
        Command::Reload => misc::reload(conn, service, inv.verbose),
        Command::List => query::list(conn),
        Command::Status | Command::IsStarted | Command::IsFailed => {
            query::status(conn, service, inv.command, inv.verbose)
        }
        Command::Shutdown => misc::shutdown(conn, inv.verbose),
        Command::AddDep | Command::RmDep => {
            let to = inv.to_service.as_deref().unwrap_or_default();
            misc::add_remove_dep(
                conn,
                inv.command == Command::AddDep,
                service,
                to,
                inv.dep_type,
                inv.verbose,
            )
        }
        Command::Enable | Command::Disable => {
            needs(3)?;
            enable::online(conn, inv)
        }
        Command::SetEnv | Command::UnsetEnv => {
            misc::setenv(conn, &inv.env_args, inv.command == Command::UnsetEnv)
        }
        Command::Trigger | Command::Untrigger => {
            needs(2)?;
            misc::trigger(conn, service, inv.command == Command::Trigger)
        }
        Command::CatLog => {
            needs(2)?;
            misc::catlog(conn, service, inv.catlog_clear)
        }
        Command::Signal => {
            needs(2)?;
            misc::signal(conn, service, inv.signal)
        }
        Command::SignalList => {
            misc::signal_list();
            Ok(0)
        }
        Command::Start | Command::Wake | Command::Stop | Command::Restart | Command::Release => {
            startstop::run(conn, inv, service)
        }
    }
}

/// What a LOAD/FIND reply said.
pub(crate) enum Lookup {
    Found {
        handle: Handle,
        state: ServiceState,
    },
    NoService,
    /// Description error or load error (message printed if asked).
    Failed,
}

/// Sends LOADSERVICE (or FINDSERVICE) and reads the reply.
pub(crate) fn lookup(conn: &mut Conn, name: &[u8], find_only: bool) -> Result<Reply, Failure> {
    if name.len() > usize::from(u16::MAX) {
        err(&[b"dinitctl: service name too long.\n"]);
        return Err(Failure::Reported);
    }
    let name = name.to_vec();
    let req = if find_only {
        Request::FindService { name }
    } else {
        Request::LoadService { name }
    };
    conn.send(&req)?;
    Ok(conn.reply(StatusVersion::V1)?)
}

/// Interprets a LOAD/FIND reply, printing the real client's messages for
/// failures when `report` is set.
pub(crate) fn check_load_reply(reply: Reply, report: bool) -> Result<Lookup, Failure> {
    const CHECK: &[u8] =
        b"dinitctl: try 'dinit-check <service-name>' or check log for more information.\n";
    match reply {
        Reply::ServiceRecord { state, handle, .. } => Ok(Lookup::Found { handle, state }),
        Reply::NoService => {
            if report {
                err(&[
                    b"dinitctl: failed to find service description.\n",
                    b"dinitctl: check service description file exists / service name spelling.\n",
                ]);
            }
            Ok(Lookup::NoService)
        }
        Reply::ServiceDescErr => {
            if report {
                err(&[b"dinitctl: error in service description.\n", CHECK]);
            }
            Ok(Lookup::Failed)
        }
        Reply::ServiceLoadErr => {
            if report {
                err(&[
                    b"dinitctl: error loading service (or dependency of service).\n",
                    CHECK,
                ]);
            }
            Ok(Lookup::Failed)
        }
        _ => Err(Failure::Conn(ConnError::Protocol)),
    }
}

/// LOADSERVICE with messages: the handle and state, or `None` after
/// reporting (when `report`) why not.
pub(crate) fn load(
    conn: &mut Conn,
    name: &[u8],
    report: bool,
) -> Result<Option<(Handle, ServiceState)>, Failure> {
    let reply = lookup(conn, name, false)?;
    Ok(match check_load_reply(reply, report)? {
        Lookup::Found { handle, state } => Some((handle, state)),
        _ => None,
    })
}

/// The service name without its `@argument`.
pub(crate) fn base_name(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'@') {
        Some(p) => &name[..p],
        None => name,
    }
}

/// dinit's path join: an absolute second part wins; one `/` between.
pub(crate) fn combine_paths(a: &[u8], b: &[u8]) -> Vec<u8> {
    if b.is_empty() {
        return a.to_vec();
    }
    if a.is_empty() || b[0] == b'/' {
        return b.to_vec();
    }
    let mut p = a.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(b);
    p
}

/// The directory a loaded service's description came from, made absolute
/// against the daemon's working directory when needed.
pub(crate) fn description_dir(conn: &mut Conn, handle: Handle) -> Result<Vec<u8>, Failure> {
    conn.send(&Request::QueryServiceDscDir {
        reserved: 0,
        handle,
    })?;
    let dir = match conn.reply(StatusVersion::V1)? {
        Reply::SvcDscDir { dir } => dir,
        _ => return Err(ConnError::Protocol.into()),
    };
    if dir.is_empty() {
        return Err(ConnError::Protocol.into());
    }
    if dir[0] == b'/' {
        return Ok(dir);
    }
    conn.send(&Request::QueryLoadMech)?;
    match conn.reply(StatusVersion::V1)? {
        Reply::LoaderMech { cwd, .. } if !cwd.is_empty() => Ok(combine_paths(&cwd, &dir)),
        _ => Err(ConnError::Protocol.into()),
    }
}
