//! One run of sv: the first pass that sends commands (or prints status) and
//! the wait loop that checks the result, with runit's output lines and exit
//! codes.
//!
//! Like runit's sv, this changes the process's working directory to each
//! service in turn and back, and decides liveness by opening
//! `supervise/ok` for writing without blocking (ENXIO: no runsv).

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use braid_core::text::escape_controls;

use super::command::{self, Act, Command, Wait};
use super::getopt::{scan_ulong, Getopt, Opt};
use crate::errstr::errstr;
use crate::supervise::{ReadStatusError, SuperviseFiles, Tai64N, STATUS_LEN};

const USAGE: &str = " [-v] [-w sec] command service ...";
const USAGE_LSB: &str = " [-w sec] command";
/// The version line Debian's runit 2.1.2-54 `sv -V` prints; kept identical
/// so that anything comparing it sees the sv it expects.
const VERSION: &str = "$Id: 900314260c6d52c986c5357673bea2f3bd3f4698 $";
/// Debian's default service directory.
const DEFAULT_SVDIR: &[u8] = b"/etc/service/";
const DEFAULT_WAIT_SECS: u64 = 7;
const POLL_INTERVAL: Duration = Duration::from_millis(420);

/// Ends the run early with this exit status (usage, fatal, LSB status).
#[derive(Debug)]
struct Exit(i32);

/// The status-read outcome, as runit's `svstatus_get` encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    /// Could not read it (a `warning:` line was printed).
    Error,
    /// No runsv (a `fail:`/`ok:` line was printed).
    NotRunning,
    Status,
}

/// Outcome of one check or control step for a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Drop the service: an error was reported.
    Failed,
    /// Still waiting.
    Pending,
    /// Done with this service.
    Done,
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

fn chdir(path: &[u8]) -> io::Result<()> {
    std::env::set_current_dir(OsStr::from_bytes(path))
}

/// Opens `path` for writing without blocking, as sv probes FIFOs.
fn open_write(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
}

fn write_stderr(bytes: &[u8]) {
    let mut e = io::stderr().lock();
    let _ = e.write_all(bytes);
    let _ = e.flush();
}

struct Session {
    progname: Vec<u8>,
    lsb: bool,
    svdir: Vec<u8>,
    wait_secs: u64,
    verbose: bool,
    command: Command,
    rc: u32,
    /// Messages name the logger (`NAME/log`) while its status is handled.
    islog: bool,
    /// The service being handled, as given on the command line.
    service: Vec<u8>,
    /// The last status record read (kept between reads, as sv does).
    status: [u8; STATUS_LEN],
    tstart: Tai64N,
    tnow: Tai64N,
    /// Pending stdout bytes; written at the same points as runit's buffer.
    out: Vec<u8>,
    curdir: Option<File>,
}

/// Runs sv with `argv` (argv[0] included) and returns the exit status.
pub(super) fn run(argv: Vec<Vec<u8>>) -> i32 {
    let progname = basename(argv.first().map_or(&[][..], Vec::as_slice)).to_vec();
    let now = Tai64N::now();
    let mut session = Session {
        lsb: progname != b"sv",
        progname,
        svdir: std::env::var_os("SVDIR")
            .map_or_else(|| DEFAULT_SVDIR.to_vec(), |v| v.as_bytes().to_vec()),
        wait_secs: std::env::var_os("SVWAIT")
            .map_or(DEFAULT_WAIT_SECS, |v| scan_ulong(v.as_bytes())),
        verbose: false,
        command: Command {
            act: Act::Nothing,
            letters: b"s",
            wait: Wait::Never,
            kill: false,
        },
        rc: 0,
        islog: false,
        service: Vec::new(),
        status: [0; STATUS_LEN],
        tstart: now,
        tnow: now,
        out: Vec::new(),
        curdir: None,
    };
    // Like runit's sv, nothing is flushed at exit: every line is written
    // out when it is complete.
    let code = match session.main(&argv) {
        Ok(code) => code,
        Err(Exit(code)) => code,
    };
    session.restore_cwd();
    code
}

impl Session {
    fn main(&mut self, argv: &[Vec<u8>]) -> Result<i32, Exit> {
        let mut getopt = Getopt::new(argv, b"w:vV");
        while let Some(opt) = getopt.next_opt() {
            match opt {
                Opt::Flag(b'w', value) => {
                    self.wait_secs = scan_ulong(value.unwrap_or_default());
                    self.verbose = true;
                }
                Opt::Flag(b'v', _) => self.verbose = true,
                Opt::Flag(_, _) => {
                    write_stderr(format!("{VERSION}\n").as_bytes());
                    return Err(self.usage());
                }
                Opt::Illegal(c) => {
                    self.option_problem("illegal option", c);
                    return Err(self.usage());
                }
                Opt::MissingValue(c) => {
                    self.option_problem("option requires an argument", c);
                    return Err(self.usage());
                }
            }
        }
        let rest = &argv[getopt.optind.min(argv.len())..];
        let Some((action, names)) = rest.split_first() else {
            return Err(self.usage());
        };
        let services: Vec<Vec<u8>> = if self.lsb {
            vec![self.progname.clone()]
        } else {
            names.to_vec()
        };
        if services.is_empty() {
            return Err(self.usage());
        }

        match File::open(".") {
            Ok(f) => self.curdir = Some(f),
            Err(e) => return Err(self.fatal("unable to open current directory", &e)),
        }
        self.command = command::parse(action, self.lsb).ok_or_else(|| self.usage())?;
        let waits = match self.command.wait {
            Wait::Never => false,
            Wait::IfVerbose => self.verbose,
            Wait::Always => true,
        };

        let mut pending: Vec<Option<Vec<u8>>> = Vec::with_capacity(services.len());
        for name in services {
            self.service = name.clone();
            let entered = if !name.is_empty()
                && name[0] != b'/'
                && name[0] != b'.'
                && name.last() != Some(&b'/')
            {
                chdir(&self.svdir).and_then(|()| chdir(&name))
            } else {
                chdir(&name)
            };
            let mut keep = match entered {
                Ok(()) => true,
                Err(e) => {
                    self.fail("unable to change to service directory", errno_of(&e));
                    false
                }
            };
            if keep {
                keep = match self.command.act {
                    Act::Status => {
                        self.status_act()?;
                        true
                    }
                    Act::Control => self.control(self.command.letters) != Step::Failed,
                    Act::Nothing => true,
                };
            }
            self.back_to_cwd()?;
            pending.push(keep.then_some(name));
        }

        if waits {
            self.wait_loop(&mut pending)?;
        }
        Ok(self.rc.min(99) as i32)
    }

    fn wait_loop(&mut self, pending: &mut [Option<Vec<u8>>]) -> Result<(), Exit> {
        loop {
            let elapsed = self.tnow.since(self.tstart).as_secs_f64();
            let mut done = true;
            for slot in pending.iter_mut() {
                let Some(name) = slot.clone() else { continue };
                self.service = name.clone();
                // This pass only tests the first character (a trailing `/`
                // does not make the name relative), as runit's sv does.
                let entered = if name.first() != Some(&b'/') && name.first() != Some(&b'.') {
                    chdir(&self.svdir).and_then(|()| chdir(&name))
                } else {
                    chdir(&name)
                };
                if let Err(e) = entered {
                    self.fail("unable to change to service directory", errno_of(&e));
                    *slot = None;
                }
                if slot.is_some() {
                    if self.check(self.command.letters) != Step::Pending {
                        *slot = None;
                    } else {
                        done = false;
                    }
                }
                if slot.is_some() && elapsed > self.wait_secs as f64 {
                    self.outs(if self.command.kill {
                        "kill: "
                    } else {
                        "timeout: "
                    });
                    if self.svstatus_get() == Got::Status {
                        self.svstatus_print(&name);
                        self.rc += 1;
                    }
                    self.flush("\n");
                    if self.command.kill {
                        self.control(b"k");
                    }
                    *slot = None;
                }
                self.back_to_cwd()?;
            }
            if done {
                return Ok(());
            }
            std::thread::sleep(POLL_INTERVAL);
            self.tnow = Tai64N::now();
        }
    }

    // ---- output ----

    fn outs(&mut self, s: impl AsRef<[u8]>) {
        self.out.extend_from_slice(s.as_ref());
    }

    fn flush(&mut self, s: &str) {
        self.outs(s);
        if !self.out.is_empty() {
            let mut o = io::stdout().lock();
            let _ = o.write_all(&self.out);
            let _ = o.flush();
            self.out.clear();
        }
    }

    /// `PREFIX NAME[/log]: MESSAGE[: ERR]` on stdout.
    fn line(&mut self, prefix: &str, msg: &str, errno: i32) {
        self.outs(prefix);
        let name = escape_controls(&self.service).into_owned();
        self.outs(name);
        if self.islog {
            self.outs("/log");
        }
        self.outs(": ");
        self.outs(msg);
        if errno != 0 {
            self.outs(": ");
            self.outs(errstr(errno));
        }
        self.flush("\n");
    }

    fn fail(&mut self, msg: &str, errno: i32) {
        self.rc += 1;
        self.line("fail: ", msg, errno);
    }

    fn warn(&mut self, msg: &str, errno: i32) {
        self.rc += 1;
        self.line("warning: ", msg, errno);
    }

    fn ok(&mut self, msg: &str) {
        self.line("ok: ", msg, 0);
    }

    /// `warning: WHAT NAME/FILE: ERR` on stderr (stat/check problems).
    fn warn_stderr(&self, what: &str, file: &str, errno: i32) {
        let mut m = Vec::new();
        m.extend_from_slice(b"warning: ");
        m.extend_from_slice(what.as_bytes());
        m.extend_from_slice(&escape_controls(&self.service));
        m.extend_from_slice(file.as_bytes());
        m.extend_from_slice(b": ");
        m.extend_from_slice(errstr(errno).as_bytes());
        m.push(b'\n');
        write_stderr(&m);
    }

    fn option_problem(&self, what: &str, c: u8) {
        let mut m = self.progname.clone();
        m.extend_from_slice(format!(": {what} -- ").as_bytes());
        m.extend_from_slice(&[c, b'\n']);
        write_stderr(&m);
    }

    fn usage(&self) -> Exit {
        let mut m = b"usage: ".to_vec();
        m.extend_from_slice(&self.progname);
        m.extend_from_slice(if self.lsb { USAGE_LSB } else { USAGE }.as_bytes());
        m.extend_from_slice(b"\n\n");
        write_stderr(&m);
        Exit(if self.lsb { 2 } else { 100 })
    }

    fn fatal(&self, msg: &str, err: &io::Error) -> Exit {
        write_stderr(format!("fatal: {msg}: {}\n", errstr(errno_of(err))).as_bytes());
        Exit(if self.lsb { 151 } else { 100 })
    }

    // ---- working directory ----

    fn back_to_cwd(&mut self) -> Result<(), Exit> {
        let Some(dir) = &self.curdir else {
            return Ok(());
        };
        nix::unistd::fchdir(dir.as_raw_fd()).map_err(|e| {
            self.fatal(
                "unable to change to original directory",
                &io::Error::from_raw_os_error(e as i32),
            )
        })
    }

    fn restore_cwd(&mut self) {
        if let Some(dir) = self.curdir.take() {
            let _ = nix::unistd::fchdir(dir.as_raw_fd());
        }
    }

    // ---- talking to runsv ----

    fn svstatus_get(&mut self) -> Got {
        match open_write("supervise/ok") {
            Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => {
                if self.command.letters[0] == b'x' {
                    self.ok("runsv not running");
                } else {
                    self.fail("runsv not running", 0);
                }
                return Got::NotRunning;
            }
            Err(e) => {
                self.warn("unable to open supervise/ok", errno_of(&e));
                return Got::Error;
            }
            Ok(_) => {}
        }
        match SuperviseFiles::new("supervise").read_status() {
            Ok(s) => {
                self.status = s.0;
                Got::Status
            }
            Err(ReadStatusError::Open(e)) => {
                self.warn("unable to open supervise/status", errno_of(&e));
                Got::Error
            }
            Err(ReadStatusError::Read(e)) => {
                self.warn("unable to read supervise/status", errno_of(&e));
                Got::Error
            }
            Err(ReadStatusError::BadFormat(_)) => {
                self.warn("unable to read supervise/status: bad format", 0);
                Got::Error
            }
        }
    }

    fn pid(&self) -> u32 {
        u32::from_le_bytes([
            self.status[12],
            self.status[13],
            self.status[14],
            self.status[15],
        ])
    }

    fn status_secs(&self) -> u64 {
        u64::from_be_bytes(self.status[..8].try_into().unwrap_or_default())
    }

    /// Appends the status line for `name` (without newline). Returns 1 if a
    /// process exists, 2 if not, 0 if `down` could not be checked.
    fn svstatus_print(&mut self, name: &[u8]) -> u32 {
        let normally_up = match fs::metadata("down") {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                self.warn_stderr("unable to stat ", "/down", errno_of(&e));
                return 0;
            }
        };
        let pid = self.pid();
        let s = self.status;
        match s[19] {
            0 => self.outs("down: "),
            1 => self.outs("run: "),
            2 => self.outs("finish: "),
            _ => {}
        }
        self.outs(escape_controls(name));
        self.outs(": ");
        if s[19] != 0 {
            // C prints the int pid as unsigned long (sign-extended).
            self.outs(format!("(pid {}) ", pid as i32 as i64 as u64));
        }
        let now = self.tnow.secs.0;
        let since = self.status_secs();
        self.outs(format!("{}s", now.saturating_sub(since)));
        if pid != 0 && !normally_up {
            self.outs(", normally down");
        }
        if pid == 0 && normally_up {
            self.outs(", normally up");
        }
        if pid != 0 && s[16] != 0 {
            self.outs(", paused");
        }
        if pid == 0 && s[17] == b'u' {
            self.outs(", want up");
        }
        if pid != 0 && s[17] == b'd' {
            self.outs(", want down");
        }
        if pid != 0 && s[18] != 0 {
            self.outs(", got TERM");
        }
        if pid != 0 {
            1
        } else {
            2
        }
    }

    /// The `status` command for the service in the cwd, and its logger.
    fn status_act(&mut self) -> Result<(), Exit> {
        match self.svstatus_get() {
            Got::Error if self.lsb => return Err(Exit(4)),
            Got::Error | Got::NotRunning => return Ok(()),
            Got::Status => {}
        }
        let name = self.service.clone();
        let mut shown = self.svstatus_print(&name);
        self.islog = true;
        match chdir(b"log") {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.outs("\n"),
            Err(e) => {
                self.outs("; ");
                self.warn("unable to change directory", errno_of(&e));
            }
            Ok(()) => {
                self.outs("; ");
                // As in runit, a logger status that cannot be read still
                // prints the last record read, under the name `log`.
                if self.svstatus_get() != Got::NotRunning {
                    shown = self.svstatus_print(b"log");
                    self.outs("\n");
                }
            }
        }
        self.islog = false;
        self.flush("");
        if self.lsb {
            return Err(Exit(match shown {
                1 => 0,
                2 => 3,
                _ => 4,
            }));
        }
        Ok(())
    }

    /// Sends `letters` unless runsv already wants what the first one asks
    /// (`d` is still sent when TERM was not, so `down` stops a `once`).
    fn control(&mut self, letters: &[u8]) -> Step {
        if self.svstatus_get() != Got::Status {
            return Step::Failed;
        }
        if self.status[17] == letters[0] && (letters[0] != b'd' || self.status[18] == 1) {
            return Step::Pending;
        }
        let mut fifo = match open_write("supervise/control") {
            Ok(f) => f,
            Err(e) => {
                if e.raw_os_error() != Some(Errno::ENXIO as i32) {
                    self.warn("unable to open supervise/control", errno_of(&e));
                } else if letters[0] == b'x' {
                    self.ok("runsv not running");
                } else {
                    self.fail("runsv not running", 0);
                }
                return Step::Failed;
            }
        };
        match fifo.write(letters) {
            Ok(n) if n == letters.len() => Step::Done,
            Ok(_) => {
                self.warn("unable to write to supervise/control", 0);
                Step::Failed
            }
            Err(e) => {
                self.warn("unable to write to supervise/control", errno_of(&e));
                Step::Failed
            }
        }
    }

    /// Evaluates the check letters for the service in the cwd; on success
    /// prints `ok: ` and its status line.
    fn check(&mut self, letters: &[u8]) -> Step {
        let got = self.svstatus_get();
        if got == Got::Error {
            return Step::Failed;
        }
        for &letter in letters {
            if got == Got::NotRunning {
                return if letter == b'x' {
                    Step::Done
                } else {
                    Step::Failed
                };
            }
            let pid = self.pid();
            let s = self.status;
            let passed = match letter {
                b'x' => false,
                b'u' => pid != 0 && s[19] == 1 && self.checkscript(),
                b'd' => pid == 0 && s[19] == 0,
                b'C' => pid == 0 || self.checkscript(),
                b't' | b'k' => {
                    (pid == 0 && s[17] == b'd')
                        || (self.tstart.secs.0 <= self.status_secs()
                            && pid != 0
                            && s[18] == 0
                            && self.checkscript())
                }
                b'o' => {
                    !((pid == 0 && self.tstart.secs.0 > self.status_secs())
                        || (pid != 0 && s[17] != b'd'))
                }
                b'p' => pid == 0 || s[16] != 0,
                b'c' => pid == 0 || s[16] == 0,
                _ => true,
            };
            if !passed {
                return Step::Pending;
            }
        }
        self.outs("ok: ");
        let name = self.service.clone();
        self.svstatus_print(&name);
        self.flush("\n");
        Step::Done
    }

    /// Runs `./check` if the service has one: stdout closed, stderr
    /// inherited. A check that cannot be executed counts as passed, as does
    /// one killed by a signal (runit looks at `status >> 8` only).
    fn checkscript(&mut self) -> bool {
        match fs::metadata("check") {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(e) => {
                self.warn_stderr("unable to stat ", "/check", errno_of(&e));
                return false;
            }
        }
        // Everything the child needs is prepared before fork.
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let mut exec_failed = b"warning: unable to run ".to_vec();
        exec_failed.extend_from_slice(&escape_controls(&self.service));
        exec_failed.extend_from_slice(b"/check: ");
        self.flush("");

        // SAFETY: sv is single-threaded, and the child only closes a
        // descriptor, execs, writes to stderr and _exits.
        match unsafe { fork() } {
            Err(e) => {
                self.warn_stderr("unable to fork for ", "/check", e as i32);
                false
            }
            Ok(ForkResult::Child) => {
                let _ = nix::unistd::close(1);
                let err = match nix::unistd::execve(c"check", &[c"./check"], &env) {
                    Err(e) => e as i32,
                    Ok(never) => match never {},
                };
                let stderr = io::stderr();
                let _ = nix::unistd::write(&stderr, &exec_failed);
                let _ = nix::unistd::write(&stderr, errstr(err).as_bytes());
                let _ = nix::unistd::write(&stderr, b"\n");
                // SAFETY: _exit is always safe to call; it skips the
                // parent's atexit work, which must not run twice.
                unsafe { nix::libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        self.warn_stderr("unable to wait for child ", "/check", e as i32);
                        return false;
                    }
                    Ok(WaitStatus::Exited(_, code)) => return code == 0,
                    Ok(_) => return true,
                }
            },
        }
    }
}
