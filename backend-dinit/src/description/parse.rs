//! Reading a description: the file stack (`@include`), each setting line,
//! and the load-time finishing steps (service environment, checks,
//! post-load substitution).

use std::path::{Path, PathBuf};

use super::envfile::{read_env_file, EnvMap, Environment};
use super::settings::{self as grammar, SETTINGS};
use super::substitute::{substitute, substitute_text};
use super::syntax::{self, classify, continues, read_value, LineKind, Operator, Value};
use super::{
    lookup, split_name, valid_service_name, DepType, Dependency, Diagnostics, IoPrio, LoadError,
    LogType, Pos, Problem, ReadyNotification, RestartSetting, RlimitResource, ServiceDescription,
    ServiceType, Source, UserSetting,
};

/// The environment a service is loaded in.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// dinit's global environment, as changes over `original`.
    pub env: Environment,
    /// The inherited environment.
    pub original: EnvMap,
    /// `DINIT_SERVICE` gets the full name (dinit-check) rather than the
    /// base name (the daemon).
    pub full_name_in_env: bool,
}

struct InputFile {
    name: String,
    lines: Vec<String>,
    next: usize,
    line_num: u32,
    resolve_dir: PathBuf,
}

impl InputFile {
    fn new(name: String, bytes: &[u8], resolve_dir: PathBuf) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        if lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        InputFile {
            name,
            lines,
            next: 0,
            line_num: 0,
            resolve_dir,
        }
    }
}

/// The open files, innermost include last.
struct FileStack(Vec<InputFile>);

impl FileStack {
    fn getline(&mut self) -> Option<String> {
        while let Some(top) = self.0.last_mut() {
            top.line_num += 1;
            if let Some(l) = top.lines.get(top.next) {
                top.next += 1;
                return Some(l.clone());
            }
            self.0.pop();
        }
        None
    }

    fn getline_same_file(&mut self) -> Option<String> {
        let top = self.0.last_mut()?;
        let l = top.lines.get(top.next)?.clone();
        top.next += 1;
        top.line_num += 1;
        Some(l)
    }

    fn top(&self) -> &InputFile {
        // Only called while a line from the top file is being processed.
        self.0
            .last()
            .expect("file stack is not empty while processing a line")
    }
}

struct Parser<'a> {
    desc: ServiceDescription,
    ctx: &'a Context,
    global: EnvMap,
    diag: &'a mut dyn Diagnostics,
    command: Value,
    stop_command: Value,
    logfile_uid_gid: Option<u32>,
    socket_uid_gid: Option<u32>,
}

/// Reads the description in `source` for the service `source.name`.
pub fn parse(
    source: &Source,
    ctx: &Context,
    diag: &mut dyn Diagnostics,
) -> Result<ServiceDescription, LoadError> {
    let name = source.name.clone();
    let (_, arg) = split_name(&name);
    let bytes = match &source.contents {
        Ok(b) => b,
        Err(errno) => {
            return Err(LoadError::Read {
                name,
                file: source.file.clone(),
                errno: *errno,
            })
        }
    };
    let mut p = Parser {
        desc: ServiceDescription::new(source, arg),
        ctx,
        global: ctx.env.build(&ctx.original),
        diag,
        command: Value::default(),
        stop_command: Value::default(),
        logfile_uid_gid: None,
        socket_uid_gid: None,
    };
    let mut stack = FileStack(vec![InputFile::new(
        source.file.clone(),
        bytes,
        source.resolve_dir.clone(),
    )]);
    p.read_files(&mut stack)?;
    p.finish()
}

impl Parser<'_> {
    fn fatal(
        &self,
        message: impl Into<String>,
        pos: Option<Pos>,
        setting: Option<&str>,
    ) -> LoadError {
        LoadError::Fatal {
            name: self.desc.name.clone(),
            message: message.into(),
            pos,
            setting: setting.map(str::to_string),
        }
    }

    /// Pre-load substitution: the global environment and the argument only.
    fn subst_global(&mut self, text: &str) -> Result<String, &'static str> {
        let global = &self.global;
        let diag = &mut *self.diag;
        let mut lookup = |var: &str| {
            diag.variable_lookup();
            global.get(var).cloned()
        };
        substitute_text(text, self.desc.arg.as_deref(), &mut lookup)
    }

    fn read_files(&mut self, stack: &mut FileStack) -> Result<(), LoadError> {
        while let Some(mut line) = stack.getline() {
            let first_line = stack.top().line_num;
            if line.is_empty() {
                continue;
            }
            while continues(&line) {
                line.pop();
                line.push('\n');
                let here =
                    |stack: &FileStack| Pos::new(stack.top().name.clone(), stack.top().line_num);
                let Some(next) = stack.getline_same_file() else {
                    return Err(self.fatal(
                        "end-of-file follows backslash escape character (`\\')",
                        Some(here(stack)),
                        None,
                    ));
                };
                if !next.bytes().next().is_some_and(syntax::is_space) {
                    return Err(self.fatal(
                        "line following line-continuation backslash (`\\') does not begin with whitespace character",
                        Some(here(stack)),
                        None,
                    ));
                }
                line.push_str(&next);
            }
            let file = stack.top().name.clone();
            match classify(&line, first_line) {
                LineKind::Nothing => {}
                LineKind::BadlyFormed => {
                    let pos = Pos::new(file, stack.top().line_num);
                    return Err(self.fatal("badly formed line.", Some(pos), None));
                }
                LineKind::Meta {
                    name,
                    rest_at,
                    line: at,
                } => {
                    let pos = Pos::new(file, at);
                    match name.as_str() {
                        "include" | "include-opt" => {
                            self.include(stack, &name, &line, rest_at, pos)?
                        }
                        "meta" => {
                            let meta = line[rest_at..].trim().to_string();
                            match super::braid_meta::logfile_rotation(&meta) {
                                Some(Ok(rotation)) => self.desc.logfile_rotation = Some(rotation),
                                Some(Err(message)) => {
                                    self.diag.problem(Problem::AtLine { pos, message })
                                }
                                None => {}
                            }
                            self.desc.meta.push(meta);
                        }
                        _ => return Err(self.fatal("bad meta command", Some(pos), None)),
                    }
                }
                LineKind::Setting {
                    name,
                    op,
                    value_at,
                    line: at,
                } => {
                    let pos = Pos::new(file, at);
                    let resolve_dir = stack.top().resolve_dir.clone();
                    if let Err(problem) =
                        self.setting(&name, op, &line, value_at, &pos, &resolve_dir)
                    {
                        self.diag.problem(problem);
                    }
                }
            }
        }
        Ok(())
    }

    fn include(
        &mut self,
        stack: &mut FileStack,
        meta: &str,
        line: &str,
        at: usize,
        pos: Pos,
    ) -> Result<(), LoadError> {
        let value =
            syntax::read_plain(line, at, &pos).map_err(|(p, m)| self.fatal(m, Some(p), None))?;
        if value.parts.len() != 1 {
            return Err(self.fatal(
                format!("'@{meta}' requires a single argument"),
                Some(pos),
                None,
            ));
        }
        let path = self
            .subst_global(&value.text)
            .map_err(|m| self.fatal(m, None, Some(meta)))?;
        let resolve_dir = stack.top().resolve_dir.clone();
        // dinit keeps two descriptors open per file on the stack and has no
        // other limit on nesting, so an include loop ends when descriptors
        // run out; the same bound keeps a loop here finite.
        let opened = if descriptors_exhausted(stack.0.len()) {
            Err(nix::libc::EMFILE)
        } else {
            lookup::open_following_links(&resolve_dir, &path)
        };
        match opened {
            Ok((real_dir, mut file)) => {
                let mut bytes = Vec::new();
                if let Err(e) = std::io::Read::read_to_end(&mut file, &mut bytes) {
                    return Err(LoadError::Read {
                        name: self.desc.name.clone(),
                        file: path,
                        errno: e.raw_os_error().unwrap_or(libc_eio()),
                    });
                }
                stack.0.push(InputFile::new(path, &bytes, real_dir));
                Ok(())
            }
            Err(errno) if meta == "include-opt" && errno == nix::libc::ENOENT => Ok(()),
            Err(errno) => Err(self.fatal(
                format!("{path}: cannot open: {}", super::strerror(errno)),
                None,
                None,
            )),
        }
    }

    /// Processes one setting line.
    fn setting(
        &mut self,
        setting: &str,
        op: Operator,
        line: &str,
        at: usize,
        pos: &Pos,
        resolve_dir: &Path,
    ) -> Result<(), Problem> {
        let at_line = |message: String| Problem::AtLine {
            pos: pos.clone(),
            message,
        };
        let Some(&key) = SETTINGS.iter().find(|s| **s == setting) else {
            return Err(at_line(format!("unknown setting: '{setting}'.")));
        };
        if op == Operator::Append && !grammar::allows_append(key) {
            return Err(at_line(format!("cannot use '+=' with setting '{setting}'")));
        }
        self.desc.positions.push((key, pos.clone()));
        let value_err = |(p, m): (Pos, &'static str)| Problem::AtLine {
            pos: p,
            message: m.to_string(),
        };
        // The whole value as one string.
        let plain = || {
            syntax::read_plain(line, at, pos)
                .map(|v| v.text)
                .map_err(value_err)
        };

        let d = &mut self.desc;
        match key {
            "command" => {
                read_value(&mut self.command, op, line, at, pos, ' ').map_err(value_err)?
            }
            "stop-command" => {
                read_value(&mut self.stop_command, op, line, at, pos, ' ').map_err(value_err)?
            }
            "working-dir" => d.working_dir = plain()?,
            "pid-file" => d.pid_file = plain()?,
            "socket-listen" => d.socket_path = plain()?,
            "run-in-cgroup" => d.run_in_cgroup = plain()?,
            "env-file" => {
                let file = self.resolved(key, plain()?)?;
                self.desc.env_file = Some((file, resolve_dir.to_path_buf()));
            }
            "socket-permissions" | "logfile-permissions" => {
                // dinit reports the setting name as the whole message here.
                let perms = grammar::parse_perms(&plain()?).map_err(|_| at_line(key.into()))?;
                if key == "socket-permissions" {
                    d.socket_perms = perms;
                } else {
                    d.logfile_perms = perms;
                }
            }
            "socket-uid" | "logfile-uid" | "run-as" => {
                let (uid, primary_gid) = grammar::parse_uid(&plain()?, key).map_err(at_line)?;
                let user = Some(UserSetting { uid, primary_gid });
                match key {
                    "socket-uid" => {
                        d.socket_uid = user;
                        self.socket_uid_gid = primary_gid;
                    }
                    "logfile-uid" => {
                        d.logfile_uid = user;
                        self.logfile_uid_gid = primary_gid;
                    }
                    _ => d.run_as = user,
                }
            }
            "socket-gid" => d.socket_gid = Some(grammar::parse_gid(&plain()?, key).map_err(at_line)?),
            "logfile-gid" => {
                d.logfile_gid = Some(grammar::parse_gid(&plain()?, key).map_err(at_line)?)
            }
            "depends-on" | "depends-ms" | "waits-for" | "prepared-by" => {
                let name = self.resolved(key, plain()?)?;
                if !valid_service_name(&name) {
                    return Err(Problem::BadDependencyName {
                        pos: pos.clone(),
                        name,
                    });
                }
                self.desc.deps.push(Dependency {
                    name,
                    kind: dep_type(key),
                    pos: pos.clone(),
                    from_dir: None,
                });
            }
            "depends-on.d" | "depends-ms.d" | "waits-for.d" => {
                let dir = self.resolved(key, plain()?)?;
                self.dep_dir(&dir, dep_type(key.trim_end_matches(".d")), pos);
            }
            "after" | "before" => {
                let name = self.resolved(key, plain()?)?;
                if !valid_service_name(&name) {
                    return Err(at_line(format!("invalid service name '{name}'")));
                }
                if key == "after" {
                    self.desc.after.push(name);
                } else {
                    self.desc.before.push(name);
                }
            }
            "chain-to" => {
                let name = self.resolved(key, plain()?)?;
                let valid = valid_service_name(&name);
                self.desc.chain_to = Some(name.clone());
                if !valid {
                    return Err(at_line(format!("invalid chain-to service name '{name}'")));
                }
            }
            "consumer-of" => {
                let name = self.resolved(key, plain()?)?;
                if !valid_service_name(&name) {
                    return Err(at_line(format!("invalid service name '{name}'")));
                }
                if name == self.desc.name {
                    return Err(at_line("service cannot be its own consumer".into()));
                }
                self.desc.consumer_of = Some(name);
            }
            "logfile" => {
                d.logfile = plain()?;
                if !d.logfile.is_empty() && d.log_type == LogType::None {
                    d.log_type = LogType::File;
                }
            }
            "log-type" => {
                d.log_type = match plain()?.as_str() {
                    "file" => LogType::File,
                    "buffer" => LogType::Buffer,
                    "none" => LogType::None,
                    "pipe" => LogType::Pipe,
                    _ => {
                        return Err(at_line(
                            "log type must be one of: \"file\", \"buffer\", \"pipe\", or \"none\""
                                .into(),
                        ))
                    }
                }
            }
            "log-buffer-size" => {
                d.log_buffer_size = grammar::parse_unum(&plain()?, (u32::MAX / 2) as u64)
                    .map_err(|m| at_line(m.into()))? as u32
            }
            "restart" => {
                d.restart = match plain()?.as_str() {
                    "yes" | "true" => RestartSetting::Yes,
                    "on-failure" => RestartSetting::OnFailure,
                    "no" | "false" => RestartSetting::No,
                    _ => {
                        return Err(at_line(
                            "restart must be one of: \"yes\", \"true\", \"no\", \"false\" or \"on-failure\"".into(),
                        ))
                    }
                }
            }
            "smooth-recovery" => {
                d.smooth_recovery = match plain()?.as_str() {
                    "yes" | "true" => true,
                    "no" | "false" => false,
                    _ => {
                        return Err(at_line(
                            "smooth-recovery must be one of: \"yes\", \"true\", \"no\" or \"false\""
                                .into(),
                        ))
                    }
                }
            }
            "type" => {
                d.service_type = match plain()?.as_str() {
                    "scripted" => ServiceType::Scripted,
                    "process" => ServiceType::Process,
                    "bgprocess" => ServiceType::BgProcess,
                    "internal" => ServiceType::Internal,
                    "triggered" => ServiceType::Triggered,
                    _ => return Err(at_line(
                        "service type must be one of: \"scripted\", \"process\", \"bgprocess\", \"internal\" or \"triggered\"".into(),
                    )),
                }
            }
            "options" => {
                let v = syntax::read_plain(line, at, pos).map_err(value_err)?;
                for opt in v.tokens() {
                    let o = &mut d.options;
                    match opt.as_str() {
                        "starts-rwfs" => o.starts_rwfs = true,
                        "starts-log" => o.starts_log = true,
                        "runs-on-console" => {
                            o.runs_on_console = true;
                            o.starts_on_console = true;
                            o.shares_console = false;
                        }
                        "starts-on-console" => {
                            o.starts_on_console = true;
                            o.shares_console = false;
                        }
                        "shares-console" => {
                            o.shares_console = true;
                            o.runs_on_console = false;
                            o.starts_on_console = false;
                        }
                        "unmask-intr" => o.unmask_intr = true,
                        "pass-cs-fd" => o.pass_cs_fd = true,
                        "start-interruptible" => o.start_interruptible = true,
                        "skippable" => o.skippable = true,
                        "signal-process-only" => o.signal_process_only = true,
                        "always-chain" => o.always_chain = true,
                        "kill-all-on-stop" => o.kill_all_on_stop = true,
                        _ => return Err(at_line(format!("unknown option: {opt}"))),
                    }
                }
            }
            "load-options" => {
                let v = syntax::read_plain(line, at, pos).map_err(value_err)?;
                for opt in v.tokens() {
                    match opt.as_str() {
                        "export-passwd-vars" => d.export_passwd_vars = true,
                        "export-service-name" => d.export_service_name = true,
                        "sub-vars" => {}
                        _ => return Err(at_line(format!("unknown load option: {opt}"))),
                    }
                }
            }
            "term-signal" | "termsignal" => {
                let name = plain()?;
                d.term_signal = grammar::signal_number(&name).ok_or_else(|| {
                    at_line(format!("unknown/unsupported termination signal: {name}"))
                })?;
            }
            "restart-limit-interval" | "restart-delay" | "stop-timeout" | "start-timeout" => {
                let t = grammar::parse_seconds(&plain()?).map_err(|too_large| {
                    let what = if too_large { "too-large value" } else { "bad value" };
                    at_line(format!("{what} for {key}"))
                })?;
                match key {
                    "restart-limit-interval" => d.restart_limit_interval = t,
                    "restart-delay" => d.restart_delay = t,
                    "stop-timeout" => d.stop_timeout = t,
                    _ => d.start_timeout = t,
                }
            }
            "restart-limit-count" => {
                d.restart_limit_count = grammar::parse_unum(&plain()?, i32::MAX as u64)
                    .map_err(|m| at_line(m.into()))? as u32
            }
            "ready-notification" => {
                let v = plain()?;
                if let Some(fd) = v.strip_prefix("pipefd:") {
                    let fd = grammar::parse_unum(fd, i32::MAX as u64).map_err(|m| at_line(m.into()))?;
                    d.ready_notification = Some(ReadyNotification::PipeFd(fd as i32));
                } else if let Some(var) = v.strip_prefix("pipevar:") {
                    if var.is_empty() {
                        return Err(at_line("invalid pipevar variable name".into()));
                    }
                    d.ready_notification = Some(ReadyNotification::PipeVar(var.to_string()));
                } else {
                    return Err(at_line(format!("unrecognised setting: {v}")));
                }
            }
            "inittab-id" | "inittab-line" => {
                let v = plain()?;
                let max = if key == "inittab-id" { 4 } else { 32 };
                if v.len() > max {
                    return Err(at_line(format!("{key} setting is too long")));
                }
                if key == "inittab-id" {
                    d.inittab_id = v;
                } else {
                    d.inittab_line = v;
                }
            }
            "rlimit-nofile" | "rlimit-core" | "rlimit-data" | "rlimit-addrspace" => {
                let resource = match key {
                    "rlimit-nofile" => RlimitResource::NoFile,
                    "rlimit-core" => RlimitResource::Core,
                    "rlimit-data" => RlimitResource::Data,
                    _ => RlimitResource::AddrSpace,
                };
                let v = plain()?;
                let idx = match d.rlimits.iter().position(|(r, _)| *r == resource) {
                    Some(i) => i,
                    None => {
                        d.rlimits.push((resource, Default::default()));
                        d.rlimits.len() - 1
                    }
                };
                d.rlimits[idx].1 = Default::default();
                d.rlimits[idx].1 = grammar::parse_rlimit(&v, key).map_err(at_line)?;
            }
            "nice" => {
                let v = plain()?;
                // Counted as set even when the value is bad (as dinit does).
                d.nice.get_or_insert(0);
                let n = grammar::parse_snum(&v, (i32::MIN / 2) as i64, (i32::MAX / 2) as i64)
                    .map_err(|m| at_line(m.into()))?;
                d.nice = Some(n as i32);
            }
            "oom-score-adj" => {
                let v = plain()?;
                d.oom_score_adj.get_or_insert(0);
                let n = grammar::parse_snum(&v, -1000, 1000).map_err(|m| at_line(m.into()))?;
                d.oom_score_adj = Some(n as i16);
            }
            "ioprio" => {
                let v = plain()?;
                let level = |n: &str| {
                    grammar::parse_unum(n, 7)
                        .map(|n| n as u8)
                        .map_err(|m| at_line(m.into()))
                };
                d.ioprio = Some(if v == "none" {
                    IoPrio::None
                } else if let Some(n) = v.strip_prefix("realtime:") {
                    IoPrio::Realtime(level(n)?)
                } else if let Some(n) = v.strip_prefix("best-effort:") {
                    IoPrio::BestEffort(level(n)?)
                } else if v == "idle" {
                    IoPrio::Idle
                } else {
                    return Err(Problem::AtSetting {
                        pos: pos.clone(),
                        setting: key.to_string(),
                        message: format!("invalid value for ioprio: {v}"),
                    });
                });
            }
            _ => unreachable!("every entry of SETTINGS is handled"),
        }
        Ok(())
    }

    /// [`Self::subst_global`], with errors reported against `setting`.
    fn resolved(&mut self, setting: &'static str, text: String) -> Result<String, Problem> {
        self.subst_global(&text).map_err(|m| Problem::Setting {
            setting: setting.to_string(),
            message: m.to_string(),
        })
    }

    /// Adds an entry of a `*.d` directory as a dependency. The directory is
    /// relative to the directory part of the file name as dinit names it.
    fn dep_dir(&mut self, dir: &str, kind: DepType, pos: &Pos) {
        let path = combine_paths(parent_path(&pos.file), dir);
        let entries = match std::fs::read_dir(if path.is_empty() { "." } else { &path }) {
            Ok(e) => e,
            Err(e) => {
                self.diag.problem(Problem::DepDir {
                    dir: dir.to_string(),
                    path,
                    errno: e.raw_os_error().unwrap_or(libc_eio()),
                });
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_service_name(&name) {
                self.desc.deps.push(Dependency {
                    name,
                    kind,
                    pos: pos.clone(),
                    from_dir: Some(dir.to_string()),
                });
            }
        }
    }

    /// The steps after the last line: service environment, sanity checks,
    /// lint, and post-load substitution.
    fn finish(mut self) -> Result<ServiceDescription, LoadError> {
        let name = self.desc.name.clone();
        let mut srv_env = Environment::default();
        if self.desc.export_passwd_vars {
            let uid = self.desc.run_as.map(|u| u.uid);
            if let Err(message) = passwd_vars(uid, &mut srv_env) {
                self.diag.problem(Problem::Service { message });
            }
        }
        if self.desc.export_service_name {
            let value = if self.ctx.full_name_in_env {
                name.as_str()
            } else {
                split_name(&name).0
            };
            srv_env.set_var("DINIT_SERVICE", value);
        }
        if let Some((file, dir)) = &self.desc.env_file {
            if !file.is_empty() {
                if let Err(e) = read_env_file(Path::new(file), dir, &mut srv_env, &mut |_| {}) {
                    self.diag.problem(Problem::EnvFile {
                        file: file.clone(),
                        errno: e.raw_os_error().unwrap_or(libc_eio()),
                    });
                }
            }
        }
        let service_map = srv_env.build_over(&self.ctx.env, &self.ctx.original);
        self.desc.service_env = srv_env;

        self.checks();

        let arg = self.desc.arg.clone();
        let diag = &mut *self.diag;
        let mut problems = Vec::new();
        let mut lookup = |var: &str| {
            diag.variable_lookup();
            service_map.get(var).cloned()
        };
        let d = &mut self.desc;
        for (setting, field) in [
            ("socket-listen", &mut d.socket_path),
            ("logfile", &mut d.logfile),
            ("working-dir", &mut d.working_dir),
            ("pid-file", &mut d.pid_file),
        ] {
            match substitute_text(field, arg.as_deref(), &mut lookup) {
                Ok(v) => *field = v,
                Err(m) => problems.push(Problem::Service {
                    message: format!("{setting}: {m}"),
                }),
            }
        }
        let cmd = |setting: &str, v: &Value, lookup: &mut dyn FnMut(&str) -> Option<String>| {
            substitute(v, arg.as_deref(), lookup)
                .map(|v| v.tokens())
                .map_err(|m| LoadError::Fatal {
                    name: name.clone(),
                    message: m.to_string(),
                    pos: None,
                    setting: Some(setting.to_string()),
                })
        };
        let command = cmd("command", &self.command, &mut lookup);
        let stop_command = command
            .as_ref()
            .ok()
            .map(|_| cmd("stop-command", &self.stop_command, &mut lookup));
        for p in problems {
            self.diag.problem(p);
        }
        self.desc.command = command?;
        if let Some(stop) = stop_command {
            self.desc.stop_command = stop?;
        }
        if self.desc.log_type != LogType::File {
            self.desc.logfile.clear();
        }
        if self.desc.socket_gid.is_none() {
            self.desc.socket_gid = self.socket_uid_gid;
        }
        if self.desc.logfile_gid.is_none() {
            self.desc.logfile_gid = self.logfile_uid_gid;
        }
        if self.desc.consumer_of.is_some()
            && !matches!(
                self.desc.service_type,
                ServiceType::Process | ServiceType::BgProcess
            )
        {
            self.diag.problem(Problem::Service {
                message: "only a process or bgprocess service can be a log consumer ('consumer-of') another service.".into(),
            });
        }
        Ok(self.desc)
    }

    /// dinit's checks and lint, in dinit's order.
    fn checks(&mut self) {
        let d = &self.desc;
        let mut out: Vec<Problem> = Vec::new();
        let err = |m: &str| Problem::Service { message: m.into() };
        let lint = |m: &str| Problem::Lint { message: m.into() };
        let ignored = "specified, but ignored for the specified (or default) service type.";
        let opt_ignored = "was specified, but ignored for the specified (or default) service type.";
        if d.service_type.runs_command() && self.command.text.is_empty() {
            out.push(err("'command' setting not specified."));
        }
        if matches!(
            d.service_type,
            ServiceType::Internal | ServiceType::Triggered
        ) {
            let mut l = |cond: bool, m: String| {
                if cond {
                    out.push(lint(&m));
                }
            };
            l(
                !self.command.text.is_empty(),
                format!("'command' {ignored}"),
            );
            l(
                !self.stop_command.text.is_empty(),
                format!("'stop-command' {ignored}"),
            );
            l(
                !d.working_dir.is_empty(),
                format!("'working-dir' {ignored}"),
            );
            l(
                !d.run_in_cgroup.is_empty(),
                format!("'run-in-cgroup' {ignored}"),
            );
            l(d.run_as.is_some(), format!("'run-as' {ignored}"));
            l(
                !d.socket_path.is_empty(),
                format!("'socket-listen' {ignored}"),
            );
            l(
                !d.inittab_id.is_empty() || !d.inittab_line.is_empty(),
                format!("'inittab_line' or 'inittab_id' {ignored}"),
            );
            l(
                d.options.signal_process_only || d.options.start_interruptible,
                format!("signal options {}", opt_ignored.replacen("was", "were", 1)),
            );
            l(
                d.options.pass_cs_fd,
                format!("option 'pass_cs_fd' {opt_ignored}"),
            );
            l(
                d.options.skippable,
                format!("option 'skippable' {opt_ignored}"),
            );
            l(
                d.log_type != LogType::None,
                format!("option 'log_type' {opt_ignored}"),
            );
            l(d.nice.is_some(), format!("option 'nice' {opt_ignored}"));
            l(d.ioprio.is_some(), format!("option 'ioprio' {opt_ignored}"));
            l(
                d.oom_score_adj.is_some(),
                format!("option 'oom-score-adj' {opt_ignored}"),
            );
        }
        if d.log_type != LogType::File && !d.logfile.is_empty() {
            out.push(lint(
                "option 'logfile' was specified, but selected log type is not 'file'",
            ));
        }
        if d.log_type == LogType::File && d.logfile.is_empty() {
            out.push(lint(
                "option 'logfile' not set, but selected log type is 'file'",
            ));
        }
        if d.service_type == ServiceType::BgProcess {
            if d.pid_file.is_empty() {
                out.push(err(
                    "process ID file ('pid-file') not specified for bgprocess service.",
                ));
            }
            if d.ready_notification.is_some() {
                out.push(err("readiness notification ('ready-notification') is not supported for bgprocess services."));
            }
        }
        if d.options.kill_all_on_stop
            && !matches!(
                d.service_type,
                ServiceType::Internal | ServiceType::Scripted
            )
        {
            out.push(err(
                "kill-all-on-stop can only be set on scripted or internal services.",
            ));
        }
        for p in out {
            self.diag.problem(p);
        }
    }
}

fn dep_type(setting: &str) -> DepType {
    match setting {
        "depends-on" => DepType::Regular,
        "depends-ms" => DepType::Milestone,
        "waits-for" => DepType::WaitsFor,
        _ => DepType::PreparedBy,
    }
}

/// Whether opening one more included file (two descriptors in dinit: the
/// file and its directory) would run out of descriptor numbers.
fn descriptors_exhausted(files_open: usize) -> bool {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    // Descriptors below the limit that are in use, less the one listing them.
    let in_use = std::fs::read_dir("/proc/self/fd").map_or(3, |d| {
        d.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|&fd| fd < limit)
            .count()
            .saturating_sub(1) as u64
    });
    in_use + 2 * (files_open as u64 + 1) > limit
}

fn libc_eio() -> i32 {
    nix::libc::EIO
}

/// `USER`, `LOGNAME`, `HOME`, `SHELL`, `UID`, `GID` of `uid` (default: the
/// effective uid).
fn passwd_vars(uid: Option<u32>, env: &mut Environment) -> Result<(), String> {
    let uid = uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    let user = match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => u,
        Ok(None) => return Err(format!("user id '{uid}' does not exist in system database")),
        Err(e) => {
            return Err(format!(
                "error accessing user database: {}",
                super::strerror(e as i32)
            ))
        }
    };
    env.set_var("USER", &user.name);
    env.set_var("LOGNAME", &user.name);
    env.set_var("HOME", &user.dir.to_string_lossy());
    env.set_var("SHELL", &user.shell.to_string_lossy());
    env.set_var("UID", &user.uid.to_string());
    env.set_var("GID", &user.gid.to_string());
    Ok(())
}

/// The directory part of `p`: `""` when it has none, `"/"` for the root.
pub fn parent_path(p: &str) -> &str {
    let Some(mut pos) = p.rfind('/') else {
        return "";
    };
    while pos > 0 && p.as_bytes()[pos - 1] == b'/' {
        pos -= 1;
    }
    if pos == 0 {
        "/"
    } else {
        &p[..pos]
    }
}

/// `p2` relative to `p1` (unchanged when absolute).
pub fn combine_paths(p1: &str, p2: &str) -> String {
    if p2.is_empty() {
        return p1.to_string();
    }
    if p1.is_empty() || p2.starts_with('/') {
        return p2.to_string();
    }
    if p1.ends_with('/') {
        format!("{p1}{p2}")
    } else {
        format!("{p1}/{p2}")
    }
}
