//! `braid log SERVICE [-f]`: a service's recent output, whichever face and
//! sink it uses — a runit `log/` service's svlogd directory (`current`), a
//! dinit `logfile`, or a dinit `log-type = buffer` read over the control
//! socket.
//!
//! `-f` keeps printing without polling: a file is watched with inotify
//! (and reopened when rotated away), a buffer is followed with braid's
//! `BraidFollowLog` request, over which braid's daemon pushes new output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::cli::{gather, Gathered, SessionArgs};
use super::dinit_client::Client;
use super::live::default_dinit_socket;
use super::session::Service;

/// Options of `braid log`.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    pub service: String,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Keep printing what the service writes: until interrupted, or (for a
    /// log buffer) until the daemon exits or unloads the service.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to show.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    pub lines: usize,
}

/// Where a service's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    File(PathBuf),
    /// dinit's in-memory buffer, read through the control socket.
    Buffer,
}

/// The directory svlogd writes for a runit `log/` directory: the last
/// argument of the `svlogd` line in `log/run` (relative to `log/`), else
/// `log/main` when it exists.
pub fn svlogd_dir(log_dir: &Path) -> Option<PathBuf> {
    let run = std::fs::read_to_string(log_dir.join("run")).unwrap_or_default();
    let from_run = run
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find(|l| l.contains("svlogd"))
        .and_then(|l| l.split_whitespace().last())
        .filter(|arg| !arg.starts_with('-') && !arg.contains("svlogd"))
        .map(|arg| log_dir.join(arg.trim_matches(['"', '\''])));
    from_run
        .filter(|d| d.is_dir())
        .or_else(|| Some(log_dir.join("main")).filter(|d| d.is_dir()))
}

/// The sink of `s`, if braid can read it.
pub fn sink_of(s: &Service) -> Option<Sink> {
    if let Some(f) = &s.detail.logfile {
        return Some(Sink::File(f.clone()));
    }
    if s.detail.log_buffer {
        return Some(Sink::Buffer);
    }
    s.detail
        .log_dir
        .as_deref()
        .and_then(svlogd_dir)
        .map(|d| Sink::File(d.join("current")))
}

/// The last `n` lines of `bytes`.
pub fn tail_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The service's last `n` lines, with a description of where they came
/// from; `Err` says why there are none.
pub fn recent(
    g: &Gathered,
    args_socket: Option<&Path>,
    s: &Service,
    n: usize,
) -> Result<(String, Vec<String>), String> {
    match sink_of(s) {
        Some(Sink::File(path)) => {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((path.display().to_string(), tail_lines(&bytes, n)))
        }
        Some(Sink::Buffer) => {
            let socket = args_socket
                .map(Path::to_path_buf)
                .or_else(default_dinit_socket)
                .ok_or("no dinit control socket")?;
            let mut c =
                Client::connect(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
            let handle = c
                .find(&s.name)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} is not loaded", s.name))?;
            let data = c
                .log_buffer(handle)
                .map_err(|e| e.to_string())?
                .ok_or("the daemon keeps no log buffer for it")?;
            Ok(("the daemon's log buffer".into(), tail_lines(&data, n)))
        }
        None => Err(match s.face {
            super::session::Face::Runit => format!(
                "{} has no log/ service with an svlogd directory; its output goes to runsvdir's",
                s.name
            ),
            _ if g.logs.iter().any(|l| l.face == "demo") => {
                format!("{}'s output goes to the demo's terminal", s.name)
            }
            _ => format!(
                "{} has no logfile and no log buffer; its output goes to the supervisor's",
                s.name
            ),
        }),
    }
}

pub fn run(args: &LogArgs) -> i32 {
    let g = match gather(&args.session) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("braid log: {e}");
            return 1;
        }
    };
    let Some(s) = g.session.find(&args.service) else {
        eprintln!("braid log: no service called {:?}", args.service);
        return 1;
    };
    let followed = match (args.follow, sink_of(s)) {
        (true, Some(Sink::Buffer)) => Some(follow_buffer(
            args.session.socket.as_deref(),
            &s.name,
            args.lines,
        )),
        (true, Some(Sink::File(path))) => Some(
            follow(&path, args.lines)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        ),
        _ => None,
    };
    match followed {
        None => {}
        Some(Ok(())) => return 0,
        Some(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => return 0,
        Some(Err(e)) => {
            eprintln!("braid log: {e}");
            return 1;
        }
    }
    match recent(&g, args.session.socket.as_deref(), s, args.lines) {
        Ok((_, lines)) => {
            for l in lines {
                outln!("{l}");
            }
        }
        Err(e) => {
            eprintln!("braid log: {e}");
            return 1;
        }
    }
    0
}

/// Prints the last `n` lines of `path`, then what is appended to it as it
/// comes (inotify; a file that is rotated away, as svlogd does with
/// `current`, is finished and the new one opened). The watch is set and the
/// file opened before anything is read, so no line falls between the two.
fn follow(path: &Path, n: usize) -> io::Result<()> {
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    let dir = path.parent().unwrap_or(Path::new("."));
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(errno)?;
    inotify
        .add_watch(
            dir,
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
        )
        .map_err(errno)?;
    let mut file = File::open(path)?;
    let mut out = io::stdout();
    let mut start = Vec::new();
    file.read_to_end(&mut start)?;
    for l in tail_lines(&start, n) {
        writeln!(out, "{l}")?;
    }
    let mut copy = |file: &mut File| -> io::Result<()> {
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        out.write_all(&buf)?;
        out.flush()
    };
    loop {
        copy(&mut file)?;
        let events = inotify.read_events().map_err(errno)?;
        let replaced = events.iter().any(|e| {
            e.name.as_deref() == path.file_name()
                && e.mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
        });
        if replaced {
            // What reached the old file before it was renamed comes first.
            copy(&mut file)?;
            file = File::open(path)?;
        }
    }
}

/// Prints the last `n` lines of a service's log buffer, then what the
/// service writes as braid's daemon pushes it, until the daemon closes the
/// connection.
fn follow_buffer(socket: Option<&Path>, name: &str, n: usize) -> io::Result<()> {
    let socket = socket
        .map(Path::to_path_buf)
        .or_else(default_dinit_socket)
        .ok_or_else(|| io::Error::other("no dinit control socket"))?;
    let in_context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", socket.display()));
    let mut c = Client::connect(&socket).map_err(in_context)?;
    let Some(start) = c.follow_log(name).map_err(in_context)? else {
        return Err(io::Error::other(format!(
            "{name} is not loaded or keeps no log buffer"
        )));
    };
    let mut out = io::stdout();
    for l in tail_lines(&start, n) {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    while let Some(bytes) = c.next_output().map_err(in_context)? {
        out.write_all(&bytes)?;
        out.flush()?;
    }
    Ok(())
}
