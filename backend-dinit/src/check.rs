//! The `dinit-check` program: loads services and everything they name,
//! reports every problem in dinit-check's words, then checks the graph
//! (consumers, dependency depth, cycles).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::description::{
    self, find_description, parse, strerror, Context, Diagnostics, EnvFileWarning, Environment,
    LoadError, LogType, Problem, ServiceDescription, ServiceType,
};

mod online;

const APP: &str = "dinit-check";
const MAX_DEP_DEPTH: usize = 32;

const HELP: &str = "dinit-check: check dinit service descriptions
 --help                       display help
 --services-dir <dir>, -d <dir>
                              set base directory for service description
                              files, can be specified multiple times
 --online, -n                 use service dirs and environment from running
                              dinit instance
 --socket-path <path>, -p <path>
                              use specified socket to connect to daemon (online
                              mode)
 --env-file, -e <file>        read environment from specified file
 --system, -s                 use defaults for system manager mode
 --user, -u                   use defaults for user mode
 <service-name>               check service with name <service-name>
";

/// What the command line asked for.
struct Args {
    dirs: Vec<String>,
    user: bool,
    online: bool,
    socket_path: Option<String>,
    env_file: Option<String>,
    services: Vec<String>,
}

/// Parses the arguments; `Err` holds the exit status after a message (or help).
fn parse_args(argv: &[OsString]) -> Result<Args, i32> {
    let mut args = Args {
        dirs: Vec::new(),
        user: !nix::unistd::getuid().is_root(),
        online: false,
        socket_path: None,
        env_file: None,
        services: Vec::new(),
    };
    let mut it = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = it.next() {
        if !arg.starts_with('-') {
            args.services.push(arg);
            continue;
        }
        let mut value = |msg: &str| match it.next().filter(|v| !v.is_empty()) {
            Some(v) => Ok(v),
            None => {
                eprintln!("{APP}: {msg}");
                Err(1)
            }
        };
        match arg.as_str() {
            "--services-dir" | "-d" => args
                .dirs
                .push(value("'--services-dir' (-d) requires an argument")?),
            "--system" | "-s" => args.user = false,
            "--user" | "-u" => args.user = true,
            "--socket-path" | "-p" => {
                args.socket_path =
                    Some(value("--socket-path/-p should be followed by socket path")?)
            }
            "--online" | "-n" => args.online = true,
            "--env-file" | "-e" => {
                args.env_file = Some(value(
                    "--env-file/-e should be followed by environment file path",
                )?)
            }
            "--help" => {
                print!("{HELP}");
                return Err(0);
            }
            _ => {
                eprintln!("{APP}: unrecognized option: '{arg}' (use '--help' for help)");
                return Err(1);
            }
        }
    }
    Ok(args)
}

/// dinit-check's record of a loaded service.
struct Record {
    service_type: ServiceType,
    /// Dependencies, then (during secondary checks) ordering links.
    deps: Vec<(String, Link)>,
    before: Vec<String>,
    after: Vec<String>,
    consumer_of: Option<String>,
    log_type: LogType,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Dep,
    Before,
    After,
}

/// Prints problems as dinit-check does, as they are found.
struct Reporter<'a> {
    name: &'a str,
    offline: bool,
    warned_subst: bool,
    errors: &'a mut bool,
}

impl Reporter<'_> {
    fn service_line(&mut self, text: &str) {
        eprintln!("Service '{}': {text}", self.name);
        *self.errors = true;
    }
}

impl Diagnostics for Reporter<'_> {
    fn problem(&mut self, problem: Problem) {
        let n = self.name;
        match problem {
            Problem::AtLine { pos, message } | Problem::AtSetting { pos, message, .. } => {
                eprintln!("Service '{n}' ({pos}): {message}")
            }
            Problem::BadDependencyName { pos, name } => {
                eprintln!("Service '{name}' ({pos}): invalid dependency name '{name}'")
            }
            Problem::Setting { setting, message } => {
                eprintln!("Service '{n}' setting '{setting}': {message}")
            }
            Problem::Service { message } => eprintln!("Service '{n}': {message}"),
            Problem::Lint { message } => eprintln!("Service '{n}': warning: {message}"),
            Problem::DepDir { dir, errno, .. } => eprintln!(
                "Service '{n}', error reading dependencies from directory {dir}: {}",
                strerror(errno)
            ),
            Problem::EnvFile { errno, .. } => eprintln!(
                "Service '{n}': could not load environment file: {}",
                strerror(errno)
            ),
        }
        *self.errors = true;
    }

    fn variable_lookup(&mut self) {
        if self.offline && !self.warned_subst {
            eprintln!(
                "{APP}: warning: variable substitution performed by {APP} for file paths may not \
                 match dinit daemon (environment may differ); use --online to avoid this warning"
            );
            self.warned_subst = true;
        }
    }
}

/// The `dinit-check` program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (dirs, ctx) = if args.online {
        let Some(path) = args
            .socket_path
            .clone()
            .or_else(|| online::default_socket_path(args.user))
        else {
            eprintln!("{APP}: cannot locate user home directory (set XDG_RUNTIME_DIR, HOME, check /etc/passwd file, or specify socket path via -p)");
            return 1;
        };
        match online::query(&path) {
            Ok(daemon) => (
                daemon.dirs,
                Context {
                    env: daemon.env,
                    original: description::process_env(),
                    full_name_in_env: true,
                },
            ),
            Err(msg) => {
                eprintln!("{APP}: {msg}");
                return 1;
            }
        }
    } else {
        match offline_config(&args) {
            Ok(config) => config,
            Err(status) => return status,
        }
    };
    let mut services = args.services;
    if services.is_empty() {
        services.push("boot".into());
    }
    let status = Checker {
        dirs,
        ctx,
        offline: !args.online,
        errors: false,
        set: BTreeMap::new(),
        to_check: services.iter().map(|s| (s.clone(), 0)).collect(),
    }
    .run(services.len());
    let _ = std::io::stdout().flush();
    status
}

/// Service directories and environment from the command line and the
/// defaults; `Err` is the exit status after a message.
fn offline_config(args: &Args) -> Result<(Vec<String>, Context), i32> {
    let dirs = if args.dirs.is_empty() {
        description::default_service_dirs(!args.user)
    } else {
        args.dirs.clone()
    };
    let mut ctx = Context {
        env: Environment::default(),
        original: description::process_env(),
        full_name_in_env: true,
    };
    let env_file = args
        .env_file
        .clone()
        .or_else(|| (!args.user).then(|| "/etc/dinit/environment".to_string()));
    if let Some(file) = env_file {
        match std::fs::read(&file) {
            Ok(bytes) => description::apply_env_file(
                &String::from_utf8_lossy(&bytes),
                &mut ctx.env,
                &mut |w| {
                    match w {
                    EnvFileWarning::InvalidSetting(l) => eprintln!(
                        "{APP}: warning: invalid environment variable setting in environment file {file} (line {l})"
                    ),
                    EnvFileWarning::BadCommand(l) => eprintln!(
                        "{APP}: warning: bad command in environment file {file} (line {l})"
                    ),
                }
                },
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "{APP}: error reading environment file {file}: {}",
                    strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
                );
                return Err(1);
            }
        }
    }
    Ok((dirs, ctx))
}

struct Checker {
    dirs: Vec<String>,
    ctx: Context,
    /// Variables substituted from our own environment rather than the
    /// daemon's: warn about it.
    offline: bool,
    errors: bool,
    set: BTreeMap<String, Record>,
    /// Names to check with their dependency depth; grows as checking goes.
    to_check: Vec<(String, usize)>,
}

impl Checker {
    fn run(mut self, named: usize) -> i32 {
        let mut out = std::io::stdout().lock();
        let mut i = 0;
        while i < self.to_check.len() {
            let name = self.to_check[i].0.clone();
            let depth = self.to_check[i].1;
            let _ = writeln!(out, "Checking service: {name}...");
            let _ = out.flush();
            if !self.set.contains_key(&name) {
                match self.load(&name) {
                    Ok(record) => {
                        self.set.insert(name.clone(), record);
                    }
                    Err(e) => {
                        eprintln!("Unable to load service '{name}': {e}");
                        self.errors = true;
                        i += 1;
                        continue;
                    }
                }
            }
            let record = &self.set[&name];
            let mut more: Vec<(String, usize)> = record
                .deps
                .iter()
                .map(|(d, _)| (d.clone(), depth + 1))
                .collect();
            // Ordering links and the consumed service are not real
            // dependencies: depth 0. (dinit-check never follows chain-to.)
            more.extend(record.before.iter().map(|n| (n.clone(), 0)));
            more.extend(record.after.iter().map(|n| (n.clone(), 0)));
            more.extend(record.consumer_of.iter().map(|n| (n.clone(), 0)));
            for (n, d) in more {
                self.add(n, d);
            }
            i += 1;
        }
        let _ = writeln!(out, "Performing secondary checks...");
        let _ = out.flush();
        self.secondary_checks(named);
        eprintln!("Secondary checks complete.");
        if self.errors {
            let _ = writeln!(out, "One or more errors/warnings issued.");
            1
        } else {
            let _ = writeln!(out, "No problems found.");
            0
        }
    }

    fn add(&mut self, name: String, depth: usize) {
        if depth > MAX_DEP_DEPTH + 1 || self.set.contains_key(&name) {
            return;
        }
        match self.to_check.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = entry.1.max(depth),
            None => self.to_check.push((name, depth)),
        }
    }

    /// Loads one service, printing its problems; `Err` is a load failure
    /// whose text follows "Unable to load service 'NAME': ".
    fn load(&mut self, name: &str) -> Result<Record, String> {
        let source = find_description(name, &self.dirs).map_err(|e| e.to_string())?;
        let mut reporter = Reporter {
            name,
            offline: self.offline,
            warned_subst: false,
            errors: &mut self.errors,
        };
        let desc = match parse(&source, &self.ctx, &mut reporter) {
            Ok(d) => d,
            Err(LoadError::Read { file, errno, .. }) => {
                eprintln!(
                    "Service '{name}', error reading service description: {}",
                    strerror(errno)
                );
                self.errors = true;
                return Err(format!("{file}: error while reading service description"));
            }
            Err(e) => return Err(e.to_string()),
        };
        lint_files(&desc, &mut reporter);
        Ok(Record {
            service_type: desc.service_type,
            deps: desc
                .deps
                .iter()
                .map(|d| (d.name.clone(), Link::Dep))
                .collect(),
            before: desc.before.clone(),
            after: desc.after.clone(),
            consumer_of: desc.consumer_of.clone(),
            log_type: desc.log_type,
        })
    }

    fn secondary_checks(&mut self, named: usize) {
        let mut additions: Vec<(String, String, Link)> = Vec::new();
        for (name, rec) in &self.set {
            if let Some(target) = &rec.consumer_of {
                match self.set.get(target) {
                    Some(t) if t.log_type != LogType::Pipe => {
                        eprintln!("Service '{name}': specified as consumer of service '{target}' which has log-type that is not 'pipe'.");
                        self.errors = true;
                    }
                    Some(t) if !t.service_type.runs_command() => {
                        eprintln!("Service '{name}': specified as consumer of service '{target}' which is not a process-based service.");
                        self.errors = true;
                    }
                    Some(_) => {}
                    None => eprintln!("Warning: Service '{name}' specified as consumer of service '{target}' which was not found."),
                }
            }
            for b in &rec.before {
                if self.set.contains_key(b) {
                    additions.push((b.clone(), name.clone(), Link::Before));
                }
            }
            for a in &rec.after {
                if self.set.contains_key(a) {
                    additions.push((name.clone(), a.clone(), Link::After));
                }
            }
        }
        for (owner, target, link) in additions {
            if let Some(r) = self.set.get_mut(&owner) {
                r.deps.push((target, link));
            }
        }
        self.depth_check();
        self.cycle_check(named);
    }

    /// Topological layering from the services nothing depends on; a
    /// service first reached beyond the maximum depth is reported.
    fn depth_check(&self) {
        let mut incoming: BTreeMap<&str, usize> =
            self.set.keys().map(|k| (k.as_str(), 0)).collect();
        let real_deps = |r: &'_ Record| -> Vec<String> {
            r.deps
                .iter()
                .filter(|(_, l)| *l == Link::Dep)
                .map(|(n, _)| n.clone())
                .collect()
        };
        for rec in self.set.values() {
            for d in real_deps(rec) {
                if let Some(c) = incoming.get_mut(d.as_str()) {
                    *c += 1;
                }
            }
        }
        let mut current: Vec<String> = incoming
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| n.to_string())
            .collect();
        let mut depth = 0;
        while !current.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for name in &current {
                for d in real_deps(&self.set[name]) {
                    if let Some(c) = incoming.get_mut(d.as_str()) {
                        *c -= 1;
                        if *c == 0 {
                            if depth > MAX_DEP_DEPTH {
                                eprintln!("Service '{d}' exceeds maximum allowed dependency depth ({MAX_DEP_DEPTH}).");
                            }
                            next.push(d);
                        }
                    }
                }
            }
            current = next;
        }
    }

    /// Depth-first search from each named service; reports the first cycle.
    fn cycle_check(&mut self, named: usize) {
        let mut visited: BTreeMap<String, bool> = BTreeMap::new(); // name → cycle free
        let mut chain: Vec<(String, usize)> = Vec::new();
        for i in 0..named {
            let root = self.to_check[i].0.clone();
            if !self.set.contains_key(&root) || visited.contains_key(&root) {
                continue;
            }
            // (As in dinit-check, the root itself is not marked visited.)
            chain.push((root, 0));
            loop {
                let n = chain.len() - 1;
                let (last, index) = chain[n].clone();
                let deps = &self.set[&last].deps;
                if index >= deps.len() {
                    visited.insert(last, true);
                    chain.pop();
                    if n == 0 {
                        break;
                    }
                    chain[n - 1].1 += 1;
                    continue;
                }
                let next = deps[index].0.clone();
                if !self.set.contains_key(&next) {
                    chain[n].1 += 1;
                    continue;
                }
                match visited.get(&next) {
                    Some(true) => {
                        chain[n].1 += 1;
                        continue;
                    }
                    Some(false) => {
                        let first = chain.iter().position(|(s, _)| *s == next).unwrap_or(0);
                        chain.drain(..first);
                        break;
                    }
                    None => {
                        visited.insert(next.clone(), false);
                        chain.push((next, 0));
                    }
                }
            }
            if !chain.is_empty() {
                break;
            }
        }
        if chain.is_empty() {
            return;
        }
        self.errors = true;
        eprintln!("Found dependency cycle:");
        for (svc, index) in &chain {
            let via = match self.set[svc].deps.get(*index).map(|d| d.1) {
                Some(Link::Before) => " (via 'before')",
                Some(Link::After) => " (via 'after')",
                _ => "",
            };
            eprintln!("    {svc} ->{via}");
        }
        eprintln!("    {}.", chain[0].0);
    }
}

/// dinit-check's checks of the files a loaded service refers to: its
/// working directory, its executables and its log file's directory.
fn lint_files(desc: &ServiceDescription, reporter: &mut Reporter<'_>) {
    let wdir = if desc.working_dir.is_empty() {
        &desc.service_dir
    } else {
        &desc.working_dir
    };
    let base: Option<PathBuf> = match open(
        Path::new(wdir),
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let _ = nix::unistd::close(fd);
            Some(PathBuf::from(wdir))
        }
        Err(e) => {
            reporter.service_line(&format!(
                "warning: could not open service working directory: {}",
                strerror(e as i32)
            ));
            None
        }
    };
    let resolve = |p: &str| match &base {
        Some(b) => b.join(p),
        None => PathBuf::from(p),
    };
    for (what, argv) in [
        ("command", &desc.command),
        ("stop command", &desc.stop_command),
    ] {
        let Some(exe) = argv.first() else { continue };
        if !exe.starts_with('/') {
            reporter.service_line(&format!(
                "warning: {what} executable '{exe}' is not an absolute path"
            ));
            continue;
        }
        match std::fs::metadata(exe) {
            Err(e) => reporter.service_line(&format!(
                "warning: could not stat {what} executable '{exe}': {}",
                strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
            )),
            Ok(m) if !m.file_type().is_file() => reporter.service_line(&format!(
                "warning: {what} executable '{exe}' is not a regular file."
            )),
            Ok(m) if m.mode() & 0o100 == 0 => reporter.service_line(&format!(
                "warning: {what} executable '{exe}' is not executable by owner."
            )),
            Ok(_) => {}
        }
    }
    if desc.log_type == LogType::File && !desc.logfile.is_empty() {
        let dir = description::parent_path(&desc.logfile);
        if !dir.is_empty() {
            match std::fs::metadata(resolve(dir)) {
                Err(e) => reporter.service_line(&format!(
                    "warning: could not access logfile directory '{dir}': {}",
                    strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
                )),
                // dinit tests only the directory bit of the file type.
                Ok(m) if m.mode() & 0o040000 == 0 => reporter.service_line(&format!(
                    "warning: logfile directory '{dir}' exists but is not a directory."
                )),
                Ok(_) => {}
            }
        }
    }
}
