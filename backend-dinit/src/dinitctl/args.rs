//! dinitctl's command line, parsed the way the real program does it: one
//! pass, options allowed before and after the command word, a few options
//! accepted only after particular commands.

use crate::protocol::DependencyType;

/// The subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Start,
    Wake,
    Stop,
    Restart,
    Release,
    Unpin,
    Unload,
    Reload,
    List,
    Status,
    IsStarted,
    IsFailed,
    Shutdown,
    AddDep,
    RmDep,
    Enable,
    Disable,
    SetEnv,
    UnsetEnv,
    Trigger,
    Untrigger,
    CatLog,
    Signal,
    SignalList,
}

impl Command {
    fn from_word(word: &[u8]) -> Option<Command> {
        use Command::*;
        Some(match word {
            b"start" => Start,
            b"wake" => Wake,
            b"stop" => Stop,
            b"restart" => Restart,
            b"release" => Release,
            b"unpin" => Unpin,
            b"unload" => Unload,
            b"reload" => Reload,
            b"list" => List,
            b"status" => Status,
            b"is-started" => IsStarted,
            b"is-failed" => IsFailed,
            b"shutdown" => Shutdown,
            b"add-dep" => AddDep,
            b"rm-dep" => RmDep,
            b"enable" => Enable,
            b"disable" => Disable,
            b"setenv" => SetEnv,
            b"unsetenv" => UnsetEnv,
            b"trigger" => Trigger,
            b"untrigger" => Untrigger,
            b"catlog" => CatLog,
            b"signal" => Signal,
            _ => return None,
        })
    }
}

/// Everything the command line says.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub command: Command,
    /// The service the command acts on (`from` for add-dep/rm-dep and
    /// enable/disable, where it may be absent for the latter).
    pub service: Option<Vec<u8>>,
    /// add-dep/rm-dep/enable/disable: the target service.
    pub to_service: Option<Vec<u8>>,
    pub dep_type: DependencyType,
    /// setenv/unsetenv arguments.
    pub env_args: Vec<Vec<u8>>,
    pub signal: i32,
    pub socket_path: Option<Vec<u8>>,
    pub user: bool,
    pub verbose: bool,
    pub wait: bool,
    pub pin: bool,
    pub force: bool,
    pub ignore_unstarted: bool,
    pub use_passed_cfd: bool,
    pub catlog_clear: bool,
    pub offline: bool,
    pub services_dirs: Vec<Vec<u8>>,
}

/// What to do instead of running a command.
#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Box<Invocation>),
    /// Print this to stdout and exit 0.
    Stdout(String),
    /// Print this to stderr and exit 1.
    Error(String),
}

const USAGE_ERROR: &str =
    "dinitctl: Invalid command line.\nTry 'dinitctl --help' for more information.\n";

pub(crate) fn parse(args: &[Vec<u8>], user_default: bool) -> Parsed {
    let mut cmdline_error = false;
    let mut show_help = args.len() < 2;
    let mut command: Option<Command> = None;
    let mut cmd_args: Vec<Vec<u8>> = Vec::new();
    let mut service: Option<Vec<u8>> = None;
    let mut to_service: Option<Vec<u8>> = None;
    let mut dep_type: Option<DependencyType> = None;
    let mut sigstr: Option<Vec<u8>> = None;
    let mut show_siglist = false;
    let mut inv = Invocation {
        command: Command::List,
        service: None,
        to_service: None,
        dep_type: DependencyType::Regular,
        env_args: Vec::new(),
        signal: -1,
        socket_path: None,
        user: user_default,
        verbose: true,
        wait: true,
        pin: false,
        force: false,
        ignore_unstarted: false,
        use_passed_cfd: false,
        catlog_clear: false,
        offline: false,
        services_dirs: Vec::new(),
    };

    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_slice();
        if arg.first() == Some(&b'-') {
            match arg {
                b"--help" => {
                    show_help = true;
                    break;
                }
                b"--version" => {
                    return Parsed::Stdout(format!("Dinit version {}.\n", super::DINIT_VERSION))
                }
                b"--no-wait" => inv.wait = false,
                b"--ignore-unstarted" => inv.ignore_unstarted = true,
                b"--quiet" => inv.verbose = false,
                b"--system" | b"-s" => inv.user = false,
                b"--user" | b"-u" => inv.user = true,
                b"--pin" => inv.pin = true,
                b"--socket-path" | b"-p" => {
                    i += 1;
                    match args.get(i) {
                        Some(p) if !p.is_empty() => inv.socket_path = Some(p.clone()),
                        _ => {
                            return Parsed::Error(
                                "dinitctl: --socket-path/-p should be followed by socket path\n"
                                    .into(),
                            )
                        }
                    }
                }
                b"--use-passed-cfd" => inv.use_passed_cfd = true,
                b"--from" => {
                    if matches!(command, Some(Command::Enable | Command::Disable)) {
                        i += 1;
                        match args.get(i) {
                            Some(p) if !p.is_empty() => service = Some(p.clone()),
                            _ => {
                                return Parsed::Error(
                                    "dinitctl: --from should be followed by a service name\n"
                                        .into(),
                                )
                            }
                        }
                    } else {
                        cmdline_error = true;
                        break;
                    }
                }
                b"--force" | b"-f" => {
                    if matches!(command, Some(Command::Stop | Command::Restart)) {
                        inv.force = true;
                    } else {
                        cmdline_error = true;
                        break;
                    }
                }
                b"--clear" => {
                    if command == Some(Command::CatLog) {
                        inv.catlog_clear = true;
                    } else {
                        cmdline_error = true;
                        break;
                    }
                }
                b"--list" | b"-l" => {
                    if command == Some(Command::Signal) {
                        show_siglist = true;
                    } else {
                        cmdline_error = true;
                        break;
                    }
                }
                b"--services-dir" | b"-d" => {
                    i += 1;
                    match args.get(i) {
                        Some(p) if !p.is_empty() => inv.services_dirs.push(p.clone()),
                        _ => {
                            return Parsed::Error(
                                "dinitctl: '--services-dir' (-d) requires an argument\n".into(),
                            )
                        }
                    }
                }
                b"--offline" | b"-o" => inv.offline = true,
                _ => {
                    return Parsed::Error(format!(
                        "dinitctl: unrecognized/invalid option: {} (use --help for help)\n",
                        String::from_utf8_lossy(arg)
                    ))
                }
            }
        } else if command.is_none() {
            match Command::from_word(arg) {
                Some(c) => command = Some(c),
                None => {
                    return Parsed::Error(format!(
                        "dinitctl: unrecognized command: {} (use --help for help)\n",
                        String::from_utf8_lossy(arg)
                    ))
                }
            }
        } else {
            if arg.is_empty() {
                return Parsed::Error("dinitctl: Invalid empty argument\n".into());
            }
            match command {
                Some(Command::AddDep | Command::RmDep) => {
                    if dep_type.is_none() {
                        dep_type = Some(match arg {
                            b"need" | b"regular" => DependencyType::Regular,
                            b"milestone" => DependencyType::Milestone,
                            b"waits-for" => DependencyType::WaitsFor,
                            _ => {
                                cmdline_error = true;
                                break;
                            }
                        });
                    } else if service.is_none() {
                        service = Some(arg.to_vec());
                    } else if to_service.is_none() {
                        to_service = Some(arg.to_vec());
                    } else {
                        cmdline_error = true;
                        break;
                    }
                }
                Some(Command::Enable | Command::Disable) => {
                    if to_service.is_some() {
                        cmdline_error = true;
                        break;
                    }
                    to_service = Some(arg.to_vec());
                }
                Some(Command::Signal) => {
                    // Extra arguments are an error, but parsing goes on.
                    if show_siglist {
                        cmdline_error = true;
                    } else if sigstr.is_none() {
                        sigstr = Some(arg.to_vec());
                    } else if service.is_none() {
                        service = Some(arg.to_vec());
                    } else {
                        cmdline_error = true;
                    }
                }
                _ => cmd_args.push(arg.to_vec()),
            }
        }
        i += 1;
    }

    // Checks that need the whole command line.
    match command {
        None => {
            if !show_help {
                cmdline_error = true;
            }
        }
        Some(Command::Enable | Command::Disable) => cmdline_error |= to_service.is_none(),
        Some(Command::SetEnv | Command::UnsetEnv) => cmdline_error |= cmd_args.is_empty(),
        Some(Command::Signal) => {
            if show_siglist {
                if sigstr.is_none() {
                    command = Some(Command::SignalList);
                } else {
                    cmdline_error = true;
                }
            } else {
                // Checked even when --help was given, as the real program does.
                let Some(sig) = sigstr.as_deref() else {
                    return Parsed::Error(
                        "dinitctl: signal number/name must be specified\n".into(),
                    );
                };
                if service.is_none() {
                    return Parsed::Error("dinitctl: service name must be specified\n".into());
                }
                match parse_signal(sig) {
                    Some(n) => inv.signal = n,
                    None => {
                        return Parsed::Error(format!(
                            "dinitctl: '{}' is not a valid signal name/number\n",
                            String::from_utf8_lossy(sig)
                        ))
                    }
                }
            }
        }
        Some(Command::List | Command::Shutdown) => cmdline_error |= !cmd_args.is_empty(),
        Some(Command::AddDep | Command::RmDep) => {
            cmdline_error |= dep_type.is_none() || service.is_none() || to_service.is_none();
        }
        Some(_) => {
            if cmd_args.is_empty() {
                cmdline_error = true;
            } else {
                cmdline_error |= cmd_args.len() > 1;
                service = Some(cmd_args[0].clone());
            }
        }
    }

    if show_help {
        return Parsed::Stdout(HELP.into());
    }
    if cmdline_error {
        return Parsed::Error(USAGE_ERROR.into());
    }
    let Some(command) = command else {
        return Parsed::Error(USAGE_ERROR.into());
    };
    inv.command = command;
    inv.service = service;
    inv.to_service = to_service;
    inv.dep_type = dep_type.unwrap_or(DependencyType::Regular);
    inv.env_args = cmd_args;
    Parsed::Run(Box::new(inv))
}

/// Signal names dinitctl knows, in the order `signal --list` prints them
/// (the leading `none`/`NONE` entries mean "no signal" and are not listed).
pub(crate) const SIGNALS: &[(&str, i32)] = &[
    ("none", 0),
    ("NONE", 0),
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
];

/// A signal name from the table, or else a whole decimal `int` as C++
/// `std::stoi` reads it (leading whitespace and sign allowed, nothing
/// after the digits). `none`/`NONE` and non-positive names fall through to
/// the number parse, as in the real program.
fn parse_signal(s: &[u8]) -> Option<i32> {
    if let Some(&(_, n)) = SIGNALS.iter().find(|(name, _)| name.as_bytes() == s) {
        if n > 0 {
            return Some(n);
        }
    }
    let text = std::str::from_utf8(s).ok()?;
    let t = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<i32>().ok()
}

const HELP: &str = "dinitctl:   control Dinit services

Usage:
    dinitctl [options] status <service-name>
    dinitctl [options] is-started <service-name>
    dinitctl [options] is-failed <service-name>
    dinitctl [options] start [options] <service-name>
    dinitctl [options] stop [options] <service-name>
    dinitctl [options] restart [options] <service-name>
    dinitctl [options] wake [options] <service-name>
    dinitctl [options] release [options] <service-name>
    dinitctl [options] unpin <service-name>
    dinitctl [options] unload <service-name>
    dinitctl [options] reload <service-name>
    dinitctl [options] list
    dinitctl [options] shutdown
    dinitctl [options] add-dep <type> <from-service> <to-service>
    dinitctl [options] rm-dep <type> <from-service> <to-service>
    dinitctl [options] enable [--from <from-service>] <to-service>
    dinitctl [options] disable [--from <from-service>] <to-service>
    dinitctl [options] trigger <service-name>
    dinitctl [options] untrigger <service-name>
    dinitctl [options] setenv [name[=value] ...]
    dinitctl [options] unsetenv [name ...]
    dinitctl [options] catlog <service-name>
    dinitctl [options] signal <signal> <service-name>

Note: An activated service continues running when its dependents stop.

General options:
  --help           : show this help
  -s, --system     : control system daemon (default if run as root)
  -u, --user       : control user daemon
  --quiet          : suppress output (except errors)
  --socket-path <path>, -p <path>
                   : specify socket for communication with daemon
  --use-passed-cfd : use the socket file descriptor identified by the DINIT_CS_FD
                     environment variable to communicate with the dinit daemon
  -o, --offline    : do not contact running dinit daemon
  -d, --services-dir <dir>
                   : specify directory for service definitions (offline mode)

Command options:
  --no-wait        : don't wait for service startup/shutdown to complete
  --pin            : pin the service in the requested state
  --force          : force stop even if dependents will be affected
  -l, --list       : (signal) list supported signals
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        std::iter::once("dinitctl")
            .chain(v.iter().copied())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }

    fn run(v: &[&str]) -> Invocation {
        match parse(&args(v), true) {
            Parsed::Run(inv) => *inv,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    fn error(v: &[&str]) -> String {
        match parse(&args(v), true) {
            Parsed::Error(e) => e,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    #[test]
    fn options_before_and_after_the_command() {
        let inv = run(&["--quiet", "stop", "--force", "x", "--pin"]);
        assert_eq!(inv.command, Command::Stop);
        assert!(inv.force && inv.pin && !inv.verbose);
        assert_eq!(inv.service.as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn command_specific_options_only_after_their_command() {
        assert_eq!(error(&["--force", "stop", "x"]), USAGE_ERROR);
        assert_eq!(error(&["start", "--force", "x"]), USAGE_ERROR);
        assert_eq!(error(&["start", "x", "y"]), USAGE_ERROR);
        assert_eq!(error(&["list", "x"]), USAGE_ERROR);
        assert_eq!(error(&["start", ""]), "dinitctl: Invalid empty argument\n");
    }

    #[test]
    fn signals() {
        assert_eq!(run(&["signal", "HUP", "x"]).signal, 1);
        assert_eq!(run(&["signal", " +42", "x"]).signal, 42);
        assert_eq!(
            error(&["signal", "none", "x"]),
            "dinitctl: 'none' is not a valid signal name/number\n"
        );
        assert_eq!(
            error(&["signal", "4x", "x"]),
            "dinitctl: '4x' is not a valid signal name/number\n"
        );
        assert_eq!(
            error(&["signal"]),
            "dinitctl: signal number/name must be specified\n"
        );
        assert_eq!(run(&["signal", "--list"]).command, Command::SignalList);
    }

    #[test]
    fn dependencies() {
        let inv = run(&["add-dep", "waits-for", "a", "b"]);
        assert_eq!(inv.dep_type, DependencyType::WaitsFor);
        assert_eq!(inv.to_service.as_deref(), Some(&b"b"[..]));
        assert_eq!(error(&["add-dep", "soft", "a", "b"]), USAGE_ERROR);
        let inv = run(&["enable", "--from", "a", "b"]);
        assert_eq!(inv.service.as_deref(), Some(&b"a"[..]));
    }
}
