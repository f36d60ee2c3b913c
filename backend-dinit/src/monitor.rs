//! braid's `dinit-monitor`: runs a command whenever watched services start,
//! stop or fail, or watched variables of the daemon's activation
//! environment change.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;

use crate::dinitctl::conn::{default_socket_path, strerror, Conn, ConnError, PacketError};
use crate::protocol::{
    Handle, Incoming, Info, Reply, Request, ServiceEvent, ServiceState, StatusVersion,
};

const HELP: &str = "dinit-monitor:   monitor Dinit services

Usage:
    dinit-monitor [options] <service-names|environ-names...>

Options:
  --help           : show this help
  -e, --exit       : exit after the first issued command
  -E, --env        : monitor activation environment changes
  -s, --system     : monitor system daemon (default if run as root)
  -u, --user       : monitor user daemon
  -i, --initial    : also execute command for initial service state
  --str-started <started-text>
                   : specify text describing status when service starts
  --str-stopped <stopped-text>
                   : specify text describing status when service stops
  --str-failed <failed-text>
                   : specify text describing status when service fails
  --socket-path <path>, -p <path>
                   : specify socket for communication with daemon
  -c, --command    : specify command to execute on service status change
                     (%n for service name, %s for status)
";

fn eprint(parts: &[&[u8]]) {
    let _ = std::io::stderr().write_all(&parts.concat());
}

/// The texts substituted for `%s`.
struct Texts {
    started: Vec<u8>,
    stopped: Vec<u8>,
    failed: Vec<u8>,
    set: Vec<u8>,
    unset: Vec<u8>,
}

struct Options {
    names: Vec<Vec<u8>>,
    command: Vec<Vec<u8>>,
    socket_path: Option<Vec<u8>>,
    user: bool,
    initial: bool,
    env: bool,
    exit_after: bool,
    texts: Texts,
}

/// Parses the command line; `Err(exit code)` after printing.
fn parse(args: &[Vec<u8>]) -> Result<Options, i32> {
    let mut show_help = args.len() < 2;
    let mut o = Options {
        names: Vec::new(),
        command: Vec::new(),
        socket_path: None,
        user: !nix::unistd::getuid().is_root(),
        initial: false,
        env: false,
        exit_after: false,
        texts: Texts {
            started: b"started".to_vec(),
            stopped: b"stopped".to_vec(),
            failed: b"failed".to_vec(),
            set: b"set".to_vec(),
            unset: b"unset".to_vec(),
        },
    };
    let mut command: Option<Vec<u8>> = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_slice();
        if arg.first() != Some(&b'-') {
            o.names.push(arg.to_vec());
            i += 1;
            continue;
        }
        // Options taking a value: where it goes and the complaint if absent.
        let slot: Option<(&mut Vec<u8>, &str)> = match arg {
            b"--help" => {
                show_help = true;
                break;
            }
            b"--version" => {
                let version = format!("Dinit version {}.\n", crate::dinitctl::DINIT_VERSION);
                let _ = std::io::stdout().write_all(version.as_bytes());
                return Err(0);
            }
            b"--exit" | b"-e" => {
                o.exit_after = true;
                None
            }
            b"--env" | b"-E" => {
                o.env = true;
                None
            }
            b"--system" | b"-s" => {
                o.user = false;
                None
            }
            b"--user" | b"-u" => {
                o.user = true;
                None
            }
            b"--initial" | b"-i" => {
                o.initial = true;
                None
            }
            b"--str-started" => Some((
                &mut o.texts.started,
                "--str-started should be followed by an argument",
            )),
            b"--str-stopped" => Some((
                &mut o.texts.stopped,
                "--str-stopped should be followed by an argument",
            )),
            b"--str-failed" => Some((
                &mut o.texts.failed,
                "--str-failed should be followed by an argument",
            )),
            b"--str-set" => Some((
                &mut o.texts.set,
                "--str-set should be followed by an argument",
            )),
            b"--str-unset" => Some((
                &mut o.texts.unset,
                "--str-unset should be followed by an argument",
            )),
            b"--socket-path" | b"-p" => {
                i += 1;
                match args.get(i) {
                    Some(p) => o.socket_path = Some(p.clone()),
                    None => {
                        eprint(&[
                            b"dinit-monitor: --socket-path/-p should be followed by socket path\n",
                        ]);
                        return Err(1);
                    }
                }
                None
            }
            b"-c" | b"--command" => {
                i += 1;
                match args.get(i) {
                    Some(c) => command = Some(c.clone()),
                    None => {
                        eprint(&[b"dinit-monitor: --command/-c should be followed by command\n"]);
                        return Err(1);
                    }
                }
                None
            }
            // Unknown options are ignored.
            _ => None,
        };
        if let Some((value, complaint)) = slot {
            i += 1;
            match args.get(i) {
                Some(v) => *value = v.clone(),
                None => {
                    eprint(&[b"dinit-monitor: ", complaint.as_bytes(), b"\n"]);
                    return Err(1);
                }
            }
        }
        i += 1;
    }
    if show_help {
        let _ = std::io::stdout().write_all(HELP.as_bytes());
        return Err(1);
    }
    if o.names.is_empty() && !o.env {
        eprint(&[b"dinit-monitor: specify at least one service name\n"]);
        return Err(1);
    }
    let Some(command) = command else {
        eprint(&[b"dinit-monitor: command must specified\n"]);
        return Err(1);
    };
    o.command = split_command(&command);
    if o.command.is_empty() {
        eprint(&[b"dinit-monitor: specified command is empty\n"]);
        return Err(1);
    }
    Ok(o)
}

/// Splits at whitespace; a `"` keeps whitespace inside one word (the
/// quotes themselves are removed later, with the substitutions).
fn split_command(cmd: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < cmd.len() && is_space(cmd[i]) {
            i += 1;
        }
        if i >= cmd.len() {
            break;
        }
        let start = i;
        while i < cmd.len() && !is_space(cmd[i]) {
            if cmd[i] == b'"' {
                i += 1;
                while i < cmd.len() && cmd[i] != b'"' {
                    i += 1;
                }
            }
            i += 1;
        }
        let end = i.min(cmd.len());
        words.push(cmd[start..end].to_vec());
    }
    words
}

/// C's `isspace` in the classic locale.
fn is_space(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
}

/// One word with `%n`, `%s`, `%v` replaced, `%%` made `%`, a trailing
/// lone `%` kept, other `%x` kept as they are, and quotes removed.
fn expand(word: &[u8], name: &[u8], value: Option<&[u8]>, event: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < word.len() {
        match word[i] {
            b'%' => {
                i += 1;
                match word.get(i) {
                    None => out.push(b'%'),
                    Some(b'n') => out.extend_from_slice(name),
                    Some(b'v') => out.extend_from_slice(value.unwrap_or_default()),
                    Some(b's') => out.extend_from_slice(event),
                    Some(b'%') => out.push(b'%'),
                    Some(&c) => out.extend_from_slice(&[b'%', c]),
                }
            }
            b'"' => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Runs the notification command and waits for it.
fn issue(command: &[Vec<u8>], name: &[u8], value: Option<&[u8]>, event: &[u8]) {
    let argv: Vec<OsString> = command
        .iter()
        .map(|w| OsString::from_vec(expand(w, name, value, event)))
        .collect();
    let Some((program, rest)) = argv.split_first() else {
        return;
    };
    match std::process::Command::new(program).args(rest).status() {
        Ok(status) => {
            if let Some(code) = status.code().filter(|&c| c != 0) {
                eprint(&[format!(
                    "dinit-monitor: notification command terminated with exit status {code}\n"
                )
                .as_bytes()]);
            }
            if let Some(sig) = status.signal() {
                eprint(&[format!(
                    "dinit-monitor: notification command terminated due to signal {sig}\n"
                )
                .as_bytes()]);
            }
        }
        Err(e) => {
            eprint(&[
                b"dinit-monitor: exec: ",
                strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                b"\n",
            ]);
        }
    }
}

/// For `--env`: runs the command for one `NAME=VALUE` / `NAME` entry if the
/// name is watched; says whether it ran.
fn issue_var(o: &Options, watched: &HashSet<Vec<u8>>, entry: &[u8]) -> bool {
    let (name, value) = match entry.iter().position(|&b| b == b'=') {
        Some(eq) => (&entry[..eq], Some(&entry[eq + 1..])),
        None => (entry, None),
    };
    if !watched.is_empty() && !watched.contains(name) {
        return false;
    }
    match value {
        Some(v) => issue(&o.command, name, Some(v), &o.texts.set),
        None => issue(&o.command, name, None, &o.texts.unset),
    }
    true
}

enum Stop {
    Code(i32),
    Conn(ConnError),
}

impl From<ConnError> for Stop {
    fn from(e: ConnError) -> Self {
        Stop::Conn(e)
    }
}

/// Entry point: the whole argv, argv[0] included.
pub fn main(argv: Vec<OsString>) -> i32 {
    let args: Vec<Vec<u8>> = argv.into_iter().map(OsString::into_vec).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(code) => {
            let _ = std::io::stdout().flush();
            return code;
        }
    };
    let path = match o.socket_path.clone().filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => match default_socket_path(o.user) {
            Some(p) => p,
            None => {
                eprint(&[b"dinit-monitor: cannot locate user home directory (set XDG_RUNTIME_DIR, HOME, check /etc/passwd file, or specify socket path via -p)\n"]);
                return 1;
            }
        },
    };
    match watch(&o, &path) {
        Stop::Code(c) => c,
        Stop::Conn(e) => {
            let msg = match e {
                // Reported as a general error: no colon after the action.
                ConnError::Connect { path, errno } => format!(
                    "connecting to socket {}: {}",
                    String::from_utf8_lossy(&path),
                    strerror(errno)
                ),
                other => other.message("server"),
            };
            eprint(&[b"dinit-monitor: ", msg.as_bytes(), b"\n"]);
            1
        }
    }
}

fn watch(o: &Options, path: &[u8]) -> Stop {
    match watch_inner(o, path) {
        Ok(code) | Err(Stop::Code(code)) => Stop::Code(code),
        Err(e) => e,
    }
}

fn watch_inner(o: &Options, path: &[u8]) -> Result<i32, Stop> {
    let mut conn = Conn::connect(path)?;
    let version = conn.negotiate()?;
    let mut handles: HashMap<Handle, Vec<u8>> = HashMap::new();
    let mut initial: Vec<(Vec<u8>, ServiceState)> = Vec::new();
    let watched: HashSet<Vec<u8>> = if o.env {
        o.names.iter().cloned().collect()
    } else {
        HashSet::new()
    };

    if !o.env {
        for name in &o.names {
            conn.send(&Request::LoadService { name: name.clone() })?;
            match conn.reply(StatusVersion::V1)? {
                Reply::ServiceRecord { state, handle, .. } => {
                    handles.insert(handle, name.clone());
                    initial.push((name.clone(), state));
                }
                Reply::NoService => {
                    eprint(&[b"dinit-monitor: cannot load service: ", name, b"\n"]);
                    return Ok(1);
                }
                _ => return Err(ConnError::Protocol.into()),
            }
        }
    }

    if o.env {
        if version < 5 {
            return Err(ConnError::OldServer.into());
        }
        conn.send(&Request::ListenEnv)?;
        if conn.reply(StatusVersion::V1)? != Reply::Ack {
            return Err(ConnError::Protocol.into());
        }
        if o.initial {
            conn.send(&Request::GetAllEnv)?;
            let Reply::AllEnv { block } = conn.reply(StatusVersion::V1)? else {
                return Err(ConnError::Protocol.into());
            };
            if !block.is_empty() && block.last() != Some(&0) {
                return Err(ConnError::Protocol.into());
            }
            for entry in block
                .split(|&b| b == 0)
                .take(block.iter().filter(|&&b| b == 0).count())
            {
                if issue_var(o, &watched, entry) && o.exit_after {
                    return Ok(0);
                }
            }
        }
    } else if o.initial {
        for (name, state) in &initial {
            let text = match state {
                ServiceState::Started => &o.texts.started,
                ServiceState::Stopped => &o.texts.stopped,
                _ => continue,
            };
            issue(&o.command, name, None, text);
            if o.exit_after {
                return Ok(0);
            }
        }
    }

    loop {
        let info = match conn.next(StatusVersion::V1) {
            Ok(Some(Incoming::Info(info))) => info,
            Ok(Some(Incoming::Reply(_))) | Err(PacketError::Malformed) => {
                eprint(&[b"dinit-monitor: protocol error\n"]);
                return Ok(1);
            }
            Ok(None) => {
                eprint(&[b"dinit-monitor: connection closed by server\n"]);
                return Ok(1);
            }
            Err(PacketError::Io(e)) => {
                eprint(&[
                    b"dinit-monitor: read: ",
                    strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                    b"\n",
                ]);
                return Ok(1);
            }
        };
        match info {
            Info::EnvEvent { var, .. } if o.env && issue_var(o, &watched, &var) && o.exit_after => {
                return Ok(0);
            }
            Info::ServiceEvent { handle, event, .. } if !o.env => {
                let Some(name) = handles.get(&handle) else {
                    continue;
                };
                let text = match event {
                    ServiceEvent::Started => &o.texts.started,
                    ServiceEvent::Stopped => &o.texts.stopped,
                    ServiceEvent::FailedStart => &o.texts.failed,
                    _ => continue,
                };
                issue(&o.command, name, None, text);
                if o.exit_after {
                    return Ok(0);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_and_substitution() {
        let words = split_command(br#"  echo "%n is  %s" 100%% %v%x %"#);
        assert_eq!(words.len(), 5);
        assert_eq!(
            expand(&words[1], b"svc", None, b"started"),
            b"svc is  started"
        );
        assert_eq!(expand(&words[2], b"svc", None, b"x"), b"100%");
        assert_eq!(expand(&words[3], b"A", Some(b"1"), b"set"), b"1%x");
        assert_eq!(expand(&words[4], b"A", None, b"x"), b"%");
    }
}
