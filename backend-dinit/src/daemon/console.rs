//! dinit's two log sinks: the console (always stdout) and the main log
//! (the `-l` file; in user mode without `-l` there is none), with the
//! service status lines (`[  OK  ] name`) that go to the console only.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use braid_core::engine::LogLevel;

use super::options::Level;

#[derive(Debug)]
pub struct Console {
    /// Print the `[  OK  ]`/`[FAILED]`/`[STOPPD]` lines.
    status_lines: bool,
    console_level: Level,
    log_level: Level,
    log_file: Option<File>,
}

impl Console {
    pub fn new(quiet: bool, console_level: Level, log_level: Level) -> Console {
        Console {
            status_lines: !quiet,
            console_level,
            log_level,
            log_file: None,
        }
    }

    /// Opens the `-l` file (appending, created 0644).
    pub fn open_log_file(&mut self, path: &str) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(path)?;
        self.log_file = Some(file);
        Ok(())
    }

    /// A message: `dinit: <text>` on each sink whose level lets it through.
    pub fn log(&mut self, level: Level, text: &str) {
        let line = format!("dinit: {text}\n");
        if level >= self.console_level && self.console_level != Level::None {
            write_stdout(line.as_bytes());
        }
        self.log_main(level, &line);
    }

    fn log_main(&mut self, level: Level, line: &str) {
        if level < self.log_level || self.log_level == Level::None {
            return;
        }
        if let Some(f) = &mut self.log_file {
            // A log that cannot be written is not worth stopping for.
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// A log line from the engine, at its level.
    pub fn engine_line(&mut self, level: LogLevel, text: &str) {
        let level = match level {
            LogLevel::Debug | LogLevel::Info => Level::Debug,
            LogLevel::Notice => Level::Notice,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        };
        self.log(level, text);
    }

    pub fn service_started(&mut self, name: &str) {
        self.status_line("[  OK  ] ", name);
        self.log_main(Level::Notice, &format!("dinit: service {name} started.\n"));
    }

    pub fn service_failed(&mut self, name: &str) {
        self.status_line("[FAILED] ", name);
        self.log_main(
            Level::Error,
            &format!("dinit: service {name} failed to start.\n"),
        );
    }

    pub fn service_stopped(&mut self, name: &str) {
        self.status_line("[STOPPD] ", name);
        self.log_main(Level::Notice, &format!("dinit: service {name} stopped.\n"));
    }

    fn status_line(&mut self, tag: &str, name: &str) {
        if self.status_lines {
            write_stdout(format!("{tag}{name}\n").as_bytes());
        }
    }
}

/// Writes straight to fd 1, unbuffered, so that lines interleave with what
/// console services write in the order they happened.
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}
