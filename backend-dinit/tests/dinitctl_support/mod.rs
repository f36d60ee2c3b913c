//! Shared by the dinitctl/dinit-monitor interop tests: finding the real
//! dinit programs and braid's binary, running a real `dinit --user` on
//! private service files (killed on drop), and running a client program.
#![allow(dead_code)] // each test file uses its own subset

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use braid_tests::dinit_peer_dir as peer_dir;

/// The `braid` binary (up to date with the sources).
pub fn braid_binary() -> PathBuf {
    braid_tests::braid_binary().expect("braid binary")
}

pub use braid_tests::TempDir;

/// What a program printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// A real `dinit --user` on its own socket and service directory.
pub struct Daemon {
    child: Child,
    pub dir: TempDir,
    pub socket: PathBuf,
    pub services: PathBuf,
    /// Directory holding `dinitctl` / `dinit-monitor` links to braid.
    pub braid_links: PathBuf,
    peer: PathBuf,
}

impl Daemon {
    /// Writes the service files (name, contents) and starts the daemon with
    /// no initial service, waiting for its ready fd.
    pub fn start(peer: &Path, files: &[(&str, &str)]) -> Daemon {
        let dir = TempDir::new("dinitctl");
        let services = dir.0.join("sd");
        let run = dir.0.join("run");
        let home = dir.0.join("home");
        let links = dir.0.join("bin");
        for d in [&services, &run, &home, &links] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (name, text) in files {
            let p = services.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let socket = run.join("dinitctl");
        let (read_end, write_end) = braid_tests::ready_pipe();
        let log = std::fs::File::create(dir.0.join("dinit.log")).unwrap();
        let child = Command::new(peer.join("dinit"))
            .arg("--user")
            .arg("--socket-path")
            .arg(&socket)
            .arg("--services-dir")
            .arg(&services)
            .arg("--ready-fd")
            .arg(write_end.as_raw_fd().to_string())
            .arg("--log-file")
            .arg(dir.0.join("main.log"))
            // "boot" is started: the daemon exits once nothing is active.
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DINIT_SOCKET_PATH")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dinit");
        drop(write_end);
        let daemon = Daemon {
            child,
            dir,
            socket,
            services,
            braid_links: links,
            peer: peer.to_path_buf(),
        };
        // The ready fd gets the socket path and a NUL once listening.
        if let Err(why) = braid_tests::await_ready(&read_end, Duration::from_secs(20)) {
            let log = std::fs::read_to_string(daemon.dir.0.join("dinit.log")).unwrap_or_default();
            panic!("dinit did not become ready: {why:?}\n{log}");
        }
        daemon
    }

    /// The real program called `name`.
    pub fn real(&self, name: &str) -> PathBuf {
        self.peer.join(name)
    }

    /// braid's program called `name`: a link to the braid binary (built on
    /// first use).
    pub fn braid(&self, name: &str) -> PathBuf {
        let link = self.braid_links.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(braid_binary(), &link).unwrap();
        }
        link
    }

    /// A command for a client program in this daemon's environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", self.dir.0.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.0.join("run"))
            .env_remove("DINIT_SOCKET_PATH")
            .env_remove("DINIT_CS_FD")
            .stdin(Stdio::null());
        c
    }

    /// Runs a client with `args` (the socket given with `-p`), bounded.
    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        let mut c = self.command(program);
        c.arg("-p").arg(&self.socket).args(args);
        run_bounded(c)
    }
}

/// Runs to completion, killing the program if it takes over 30 s.
pub fn run_bounded(mut c: Command) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r.expect("wait client"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            );
            panic!("client {c:?} did not finish within 30 s");
        }
    };
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM makes dinit stop its services and exit; SIGKILL if it
        // does not within the deadline.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// Replaces the digits after each marker (pids) with `N`.
pub fn normalise(text: &str) -> String {
    let mut s = text.to_string();
    for marker in ["(pid: ", "Process ID: "] {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(p) = rest.find(marker) {
            out.push_str(&rest[..p + marker.len()]);
            rest = &rest[p + marker.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push('N');
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// Path text as bytes, for building arguments.
pub fn path_str(p: &Path) -> &str {
    std::str::from_utf8(OsStr::as_bytes(p.as_os_str())).expect("utf-8 path")
}
