//! braid's `svlogd`: reads log lines on stdin and writes them to log
//! directories with rotation, patterns, prefixes, timestamps, processors
//! and UDP, byte for byte as Debian's runit 2.1.2 svlogd does.
//!
//! The structure follows runit's: a byte-at-a-time line loop over a read
//! buffer whose refill step is also where pending work (flushes, rotations,
//! reopening) happens and where signals are taken. The process blocks on
//! stdin and a signalfd, waking early only for a timed rotation.

mod config;
mod input;
mod logdir;
mod message;
mod options;
mod pattern;
mod processor;
mod signals;
mod timestamp;
mod udp;

use crate::supervise::Tai64N;
use input::{Input, Read};
use logdir::LogDir;
use message::{info, warn_errno};
use nix::sys::signal::Signal;
use options::Options;
use signals::Signals;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use timestamp::Style;

/// The longest svlogd waits for input without looking at its timers.
const MAX_IDLE_SECS: u64 = 2744;

/// svlogd cannot go on (exit 111 after the message).
#[derive(Debug)]
struct Fatal(Vec<u8>);

/// A log directory's `config` as svlogd reads it, in `Debug` form. For the
/// property tests, via [`crate::fuzzing`].
pub(crate) fn parse_config(text: &[u8]) -> String {
    format!("{:?}", config::parse(text))
}

/// Entry point of the `svlogd` personality.
pub fn main(argv: Vec<OsString>) -> i32 {
    let argv: Vec<Vec<u8>> = argv.into_iter().map(OsStringExt::into_vec).collect();
    let options = match options::parse(&argv) {
        Ok(o) => o,
        Err(text) => {
            let _ = nix::unistd::write(std::io::stderr(), &text);
            return 111;
        }
    };
    match Svlogd::new(options).and_then(|mut s| s.run()) {
        Ok(()) => 0,
        Err(Fatal(text)) => {
            let mut line = b"svlogd: fatal: ".to_vec();
            line.extend_from_slice(&text);
            line.push(b'\n');
            let _ = nix::unistd::write(std::io::stderr(), &line);
            111
        }
    }
}

struct Svlogd {
    options: Options,
    dirs: Vec<LogDir>,
    input: Input,
    signals: Signals,
    exit_asap: bool,
    rotate_asap: bool,
    reopen_asap: bool,
}

impl Svlogd {
    fn new(options: Options) -> Result<Svlogd, Fatal> {
        let dirs = options
            .dirs
            .iter()
            .map(|d| LogDir::new(d.clone(), options.limits))
            .collect();
        let input = Input::new(options.limits.buf_len);
        let signals = Signals::new().map_err(|e| {
            Fatal(
                format!(
                    "unable to set up signals: {}",
                    crate::errstr::errstr(e as i32)
                )
                .into_bytes(),
            )
        })?;
        Ok(Svlogd {
            options,
            dirs,
            input,
            signals,
            exit_asap: false,
            rotate_asap: false,
            reopen_asap: false,
        })
    }

    fn verbose(&self) -> bool {
        self.options.limits.verbose
    }

    /// Closes and reopens every directory, rereading configs.
    fn reopen(&mut self) -> Result<(), Fatal> {
        let now = Tai64N::now();
        let mut any = false;
        for d in &mut self.dirs {
            d.close();
            any |= d.open(now);
        }
        if any {
            Ok(())
        } else {
            Err(Fatal(b"no functional log directories.".to_vec()))
        }
    }

    fn run(&mut self) -> Result<(), Fatal> {
        self.reopen()?;
        let line_max = self.options.limits.line_max;
        let mut line: Vec<u8> = Vec::new();
        let mut stamp: Vec<u8> = Vec::new();
        loop {
            line.clear();
            while line.len() < line_max {
                let Some(ch) = self.getc()? else {
                    self.exit_asap = true;
                    break;
                };
                if line.is_empty() && self.options.timestamp != Style::None {
                    stamp = timestamp::stamp(self.options.timestamp, Tai64N::now());
                }
                if ch == b'\n' {
                    break;
                }
                line.push(self.replaced(ch));
            }
            // runit: at EOF or after TERM, a line whose end empties the
            // read buffer is dropped, and so is an unterminated one.
            if self.exit_asap && self.input.available() == 0 {
                break;
            }
            let full = line.len() == line_max;
            self.dispatch(&line, &stamp);
            if full {
                self.copy_rest_of_line()?;
            }
            for d in self.dirs.iter_mut().filter(|d| d.is_open()) {
                if d.select_log == b'+' && !d.config.udp_only {
                    d.put(b"\n");
                    d.flush();
                }
            }
        }
        for d in &mut self.dirs {
            if d.processor_pid.is_some() {
                while !d.processor_stop(None) {}
            }
            d.close();
        }
        Ok(())
    }

    /// `-r`/`-R`: unprintable bytes and the listed ones become the
    /// replacement character.
    fn replaced(&self, ch: u8) -> u8 {
        match self.options.replacement {
            Some(r) if !(32..=126).contains(&ch) || self.options.replace.contains(&ch) => r,
            _ => ch,
        }
    }

    /// Sends the first `len` bytes of a line to stderr, UDP and each log
    /// directory as their patterns select.
    /// Lines cut at the `-l` length get `...` on stderr and UDP.
    fn dispatch(&mut self, line: &[u8], stamp: &[u8]) {
        let dots: &[u8] = if line.len() == self.options.limits.line_max {
            b"..."
        } else {
            b""
        };
        for d in self.dirs.iter_mut().filter(|d| d.is_open()) {
            if !d.config.patterns.is_empty() {
                d.select_log = b'+';
                d.select_err = b'E';
                for (kind, p) in &d.config.patterns {
                    if pattern::matches(p, line) {
                        match kind {
                            b'+' | b'-' => d.select_log = *kind,
                            _ => d.select_err = *kind,
                        }
                    }
                }
            }
            if d.select_err == b'e' {
                let text = [stamp, &d.config.prefix, line, dots, b"\n"].concat();
                let _ = nix::unistd::write(std::io::stderr(), &text);
            }
            if d.select_log != b'+' {
                continue;
            }
            if let Some(to) = d.config.udp_target() {
                let payload = [stamp, &d.config.prefix, line, dots, b"\n"].concat();
                match udp::send(to, &payload) {
                    Ok(()) => {}
                    Err(udp::UdpError::NoSocket) => {
                        let prefix = d.config.prefix.clone();
                        for part in [b"warning: no udp socket available: ", stamp, &prefix, line] {
                            d.put(part);
                        }
                        d.put(b"\n");
                        d.flush();
                    }
                    Err(udp::UdpError::SendFailed) => {
                        d.put(b"warning: failure sending through udp: ");
                        d.put(&payload);
                        d.flush();
                    }
                }
            }
            if !d.config.udp_only {
                let prefix = d.config.prefix.clone();
                d.put(stamp);
                d.put(&prefix);
                d.put(line);
            }
        }
    }

    /// The rest of an over-long line goes to the selected logs unchanged.
    fn copy_rest_of_line(&mut self) -> Result<(), Fatal> {
        loop {
            let Some(ch) = self.getc()? else {
                self.exit_asap = true;
                return Ok(());
            };
            if ch == b'\n' {
                return Ok(());
            }
            for d in self.dirs.iter_mut().filter(|d| d.is_open()) {
                if d.select_log == b'+' && !d.config.udp_only {
                    d.put(&[ch]);
                }
            }
        }
    }

    /// The next input byte; `None` at EOF or on a read error.
    fn getc(&mut self) -> Result<Option<u8>, Fatal> {
        if let Some(b) = self.input.take() {
            return Ok(Some(b));
        }
        loop {
            match self.refill()? {
                Read::Data => return Ok(self.input.take()),
                Read::Again => continue,
                Read::Eof | Read::Failed(_) => return Ok(None),
            }
        }
    }

    /// runit's `buffer_pread`: flush, do pending rotations and reopening,
    /// wait for input, a signal or a timer, then read.
    fn refill(&mut self) -> Result<Read, Fatal> {
        for d in &mut self.dirs {
            d.flush();
        }
        if self.rotate_asap {
            for d in &mut self.dirs {
                d.rotate();
            }
            self.rotate_asap = false;
        }
        let mut len = self.options.limits.buf_len;
        if self.exit_asap {
            if self.input.line_complete {
                return Ok(Read::Eof);
            }
            len = 1;
        }
        if self.reopen_asap {
            self.reopen()?;
            self.reopen_asap = false;
        }
        let now = Tai64N::now();
        let mut deadline = timestamp::add_secs(now, MAX_IDLE_SECS);
        for d in self.dirs.iter_mut().filter(|d| d.config.t_max > 0) {
            if d.rotate_at < now {
                d.rotate();
            }
            if d.rotate_at < deadline {
                deadline = d.rotate_at;
            }
        }
        if self.input.wait(&self.signals, deadline) {
            self.take_signals();
        }
        let got = self.input.read(len);
        if let Read::Failed(e) = got {
            warn_errno(b"unable to read standard input", e);
        }
        Ok(got)
    }

    fn take_signals(&mut self) {
        for s in self.signals.take() {
            match s {
                Signal::SIGTERM => {
                    if self.verbose() {
                        info(&[b"sigterm received."]);
                    }
                    self.exit_asap = true;
                }
                Signal::SIGCHLD => {
                    if self.verbose() {
                        info(&[b"sigchild received."]);
                    }
                    while let Some((pid, code)) = processor::reap_any() {
                        if let Some(d) = self.dirs.iter_mut().find(|d| d.processor_pid == Some(pid))
                        {
                            d.processor_pid = None;
                            d.processor_stop(Some(code));
                        }
                    }
                }
                Signal::SIGALRM => {
                    if self.verbose() {
                        info(&[b"sigalarm received."]);
                    }
                    self.rotate_asap = true;
                }
                _ => {
                    if self.verbose() {
                        info(&[b"sighangup received."]);
                    }
                    self.reopen_asap = true;
                }
            }
        }
    }
}
