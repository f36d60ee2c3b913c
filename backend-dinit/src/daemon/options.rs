//! The `dinit` command line, parsed as the real daemon parses it: options
//! and service names in any order, errors worded as dinit words them.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

use crate::description::valid_service_name;

/// Console and log levels, lowest first (`none` shows nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    /// dinit's `info` (its NOTICE level).
    Notice,
    Warn,
    Error,
    None,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub system: bool,
    pub service_dirs: Vec<String>,
    pub env_file: Option<String>,
    pub socket_path: Option<Vec<u8>>,
    pub ready_fd: Option<RawFd>,
    pub log_file: Option<String>,
    /// `--cgroup-path`: the base of a relative `run-in-cgroup`.
    pub cgroup_path: Option<String>,
    /// No `[  OK  ]` status lines.
    pub quiet: bool,
    pub console_level: Level,
    pub log_level: Level,
    /// Services to start, in order (`boot` when none is named).
    pub services: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Options),
    /// Help or version was printed: exit 0.
    Done,
    /// An error was printed: exit 1.
    Failed,
}

const HELP: &str = "dinit: init/service manager daemon
 --help                       display (this) help
 --version                    display version
 --env-file <file>, -e <file>
                              environment variable initialisation file
 --services-dir <dir>, -d <dir>
                              set base directory for service description
                              files, can be specified multiple times
 --system, -s                 run as the system service manager
 --system-mgr, -m             run as system manager (perform shutdown etc)
 --user, -u                   run as a user service manager
 --container, -o              run in container mode (do not manage system)
 --auto-recovery, -r          auto-run recovery service on system manager boot failure
 --socket-path <path>, -p <path>
                              path to control socket
 --ready-fd <fd>, -F <fd>
                              file descriptor to report readiness
 --cgroup-path <path>, -b <path>
                              cgroup base path (for resolving relative paths)
 --log-file <file>, -l <file> log to the specified file
 --quiet, -q                  disable output to standard output
 <service-name>, --service <service-name>, -t <service-name>
                              start service with name <service-name>
";

pub const VERSION: &str = "0.23.0pre";

fn fail(text: &str) -> Parsed {
    eprintln!("dinit: {text}");
    Parsed::Failed
}

/// Parses `argv` (argv[0] included).
pub fn parse(argv: &[OsString]) -> Parsed {
    let mut o = Options {
        system: nix::unistd::getuid().is_root(),
        service_dirs: Vec::new(),
        env_file: None,
        socket_path: None,
        ready_fd: None,
        log_file: None,
        cgroup_path: None,
        quiet: false,
        console_level: Level::Warn,
        log_level: Level::Notice,
        services: Vec::new(),
    };
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())
        .collect();
    let mut i = 0;
    // The value after option `i`, if there is a non-empty one.
    let value = |i: usize| args.get(i + 1).filter(|v| !v.is_empty()).cloned();
    while i < args.len() {
        let arg = args[i].as_str();
        if !arg.starts_with('-') {
            if arg.is_empty() {
                return fail("error: empty command-line argument");
            }
            if !valid_service_name(arg) {
                return fail(&format!("error: invalid service name '{arg}'."));
            }
            o.services.push(arg.to_string());
            i += 1;
            continue;
        }
        match arg {
            "--env-file" | "-e" => match value(i) {
                Some(v) => o.env_file = Some(v),
                None => return fail("'--env-file' (-e) requires an argument"),
            },
            "--services-dir" | "-d" => match value(i) {
                Some(v) => o.service_dirs.push(v),
                None => return fail("'--services-dir' (-d) requires an argument"),
            },
            "--socket-path" | "-p" => match value(i) {
                // Kept as bytes: a path need not be UTF-8.
                Some(_) => o.socket_path = Some(argv[i + 2].as_bytes().to_vec()),
                None => return fail("'--socket-path' (-p) requires an argument"),
            },
            "--log-file" | "-l" => match value(i) {
                Some(v) => o.log_file = Some(v),
                None => return fail("'--log-file' (-l) requires an argument"),
            },
            "--cgroup-path" | "-b" => match value(i) {
                Some(v) => o.cgroup_path = Some(v),
                None => return fail("'--cgroup-path' (-b) requires an argument"),
            },
            "--service" | "-t" => match value(i) {
                Some(v) => o.services.push(v),
                None => return fail("'--service' (-t) requires an argument"),
            },
            "--ready-fd" | "-F" => {
                let Some(v) = args.get(i + 1) else {
                    return fail("'--ready-fd' (-F) requires an argument");
                };
                let Some(fd) = parse_fd(v) else {
                    return fail("'--ready-fd' (-F) requires a numerical argument");
                };
                let open = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok();
                if fd == 0 || !open {
                    return fail("'--ready-fd' (-F) requires an open file descriptor");
                }
                o.ready_fd = Some(fd);
                i += 1;
            }
            "--console-level" | "--log-level" => {
                let level = match args.get(i + 1).map(String::as_str) {
                    None | Some("") => return fail(&format!("'{arg}' requires an argument")),
                    Some("none") => Level::None,
                    Some("error") => Level::Error,
                    Some("warn") => Level::Warn,
                    Some("info") => Level::Notice,
                    Some("debug") => Level::Debug,
                    Some(_) => {
                        return fail(&format!(
                        "'{arg}' accepts only arguments: 'none', 'error', 'warn', 'info', 'debug'"
                    ))
                    }
                };
                if arg == "--console-level" {
                    o.console_level = level;
                } else {
                    o.log_level = level;
                }
                i += 1;
            }
            "--system" | "-s" => o.system = true,
            "--user" | "-u" => o.system = false,
            // System-manager duties are out of scope; accepted as dinit
            // accepts them outside PID 1.
            "--system-mgr" | "-m" | "--container" | "-o" | "--auto-recovery" | "-r" => {}
            "--quiet" | "-q" => {
                o.quiet = true;
                o.console_level = Level::None;
            }
            "--version" => {
                print!("Dinit version {VERSION}.\nSupported features: cgroups supplemental-groups io-priority oom-score-adjust\n");
                return Parsed::Done;
            }
            "--help" => {
                print!("{HELP}");
                return Parsed::Done;
            }
            _ => return fail(&format!("unrecognized option: {arg}")),
        }
        if matches!(
            arg,
            "--env-file"
                | "-e"
                | "--services-dir"
                | "-d"
                | "--socket-path"
                | "-p"
                | "--log-file"
                | "-l"
                | "--service"
                | "-t"
                | "--cgroup-path"
                | "-b"
        ) {
            i += 1;
        }
        i += 1;
    }
    if o.services.is_empty() {
        o.services.push("boot".to_string());
    }
    Parsed::Run(o)
}

/// C `strtoul(s, &end, 10)` that must consume the whole (non-empty) text.
fn parse_fd(s: &str) -> Option<RawFd> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Out-of-range numbers name no open fd.
    Some(t.parse::<RawFd>().unwrap_or(-1))
}

/// The control socket path dinit uses when `-p` is not given: in user mode
/// `$XDG_RUNTIME_DIR/dinitctl` when the variable is set (even empty), else
/// `<home>/.dinitctl`; the system socket otherwise.
pub fn default_socket_path(system: bool) -> Vec<u8> {
    const SYSTEM_SOCKET: &[u8] = b"/run/dinitctl";
    if system {
        return SYSTEM_SOCKET.to_vec();
    }
    let (dir, name): (Vec<u8>, &[u8]) = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => (d.as_bytes().to_vec(), b"dinitctl"),
        None => match home_dir() {
            Some(h) => (h, b".dinitctl"),
            None => return SYSTEM_SOCKET.to_vec(),
        },
    };
    let mut path = dir;
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

fn home_dir() -> Option<Vec<u8>> {
    if let Some(h) = std::env::var_os("HOME") {
        return Some(h.as_bytes().to_vec());
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok()??;
    Some(user.dir.as_os_str().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        std::iter::once("dinit")
            .chain(a.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn names_and_options() {
        let Parsed::Run(o) = parse(&args(&[
            "-u",
            "-d",
            "a",
            "--services-dir",
            "b",
            "x",
            "-t",
            "y",
            "-q",
        ])) else {
            panic!("should parse");
        };
        assert!(!o.system);
        assert_eq!(o.service_dirs, ["a", "b"]);
        assert_eq!(o.services, ["x", "y"]);
        assert!(o.quiet);
        let Parsed::Run(o) = parse(&args(&["--user"])) else {
            panic!("should parse");
        };
        assert_eq!(o.services, ["boot"]);
    }

    #[test]
    fn errors() {
        assert!(matches!(parse(&args(&["-d"])), Parsed::Failed));
        assert!(matches!(parse(&args(&["--frob"])), Parsed::Failed));
        assert!(matches!(parse(&args(&[".x"])), Parsed::Failed));
        assert!(matches!(parse(&args(&["-F", "x1"])), Parsed::Failed));
        assert!(matches!(
            parse(&args(&["--log-level", "loud"])),
            Parsed::Failed
        ));
    }
}
