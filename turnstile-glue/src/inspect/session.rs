//! A session as braid's inspection commands see it: services of either face,
//! the links between them (with their kind and where they are written), and
//! — when the session is running — each service's state.
//!
//! Read offline from files ([`load_dir`]: a runit service directory tree or
//! dinit service directories, told apart entry by entry), then completed
//! online by [`super::live`] and [`super::events`].

use std::fs;
use std::path::{Path, PathBuf};

use braid_dinit::description::{
    self, find_description, parse, process_env, Context, DepType, Problem,
};
use braid_runit::service_dir;

/// Which face a service is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Runit,
    Dinit,
    /// Known only from an event log (e.g. `braid demo`).
    Engine,
}

impl Face {
    pub fn name(self) -> &'static str {
        match self {
            Face::Runit => "runit",
            Face::Dinit => "dinit",
            Face::Engine => "engine",
        }
    }
}

/// A place in a file, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: PathBuf,
    pub line: Option<u32>,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// A link from a service to another: `kind` is a dependency kind
/// (`hard`, `milestone`, `waits-for`, `prepared-by`, `soft`), an ordering
/// (`after`; `before` links are stored reversed, as `after` on the other
/// service, but keep their name), or a data link (`log`: the runit logger
/// reads the service's output; `consumer`; `chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: String,
    pub at: Option<Pos>,
}

/// A running service's state, as its supervisor reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// `stopped`, `starting`, `started`, `stopping`.
    pub state: String,
    /// Where it is going (`started`/`stopped`), when known.
    pub target: Option<String>,
    pub ready: bool,
    pub pid: Option<i64>,
    /// Unix time of the last state change, when known.
    pub since: Option<f64>,
    /// `{"code": N}` / `{"signal": "SIGTERM"}` as text: `exited 1`, `SIGTERM`.
    pub last_exit: Option<Exit>,
    pub restarts: Option<u32>,
    /// Why it last stopped (`failed`, `dependency-failed`, …), when known.
    pub stop_reason: Option<String>,
    pub paused: bool,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i64),
    Signal(String),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => write!(f, "killed by {s}"),
        }
    }
}

/// One service.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub face: Face,
    /// The service directory (runit) or description file (dinit).
    pub source: Option<PathBuf>,
    /// Offline: the service's own settings (dinit type and log sink, runit
    /// log dir). Empty for services known only online.
    pub detail: Detail,
    pub live: Option<Live>,
}

/// What the files say beyond links, for `why` and `log`.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// dinit `logfile`, resolved.
    pub logfile: Option<PathBuf>,
    /// dinit `log-type = buffer`.
    pub log_buffer: bool,
    /// runit `log/` directory.
    pub log_dir: Option<PathBuf>,
    /// Restart limit: count within seconds (dinit's or the engine default).
    pub restart_limit: Option<(u32, f64)>,
}

/// A problem found while reading files; `check` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The service the file belongs to.
    pub service: String,
    pub at: Pos,
    pub error: bool,
    pub message: String,
    pub hint: Option<String>,
}

/// Services, links and what was wrong.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub services: Vec<Service>,
    pub edges: Vec<Edge>,
    pub findings: Vec<Finding>,
}

impl Session {
    pub fn find(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut Service> {
        self.services.iter_mut().find(|s| s.name == name)
    }

    /// Adds a service known only by name (online), unless it is there.
    pub fn ensure(&mut self, name: &str, face: Face) -> &mut Service {
        let index = match self.services.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.services.push(Service {
                    name: name.to_string(),
                    face,
                    source: None,
                    detail: Detail::default(),
                    live: None,
                });
                self.services.len() - 1
            }
        };
        &mut self.services[index]
    }

    /// The links out of `name`.
    pub fn edges_from<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| e.from == name)
    }

    fn finding(
        &mut self,
        service: &str,
        at: Pos,
        error: bool,
        message: String,
        hint: Option<&str>,
    ) {
        self.findings.push(Finding {
            service: service.to_string(),
            at,
            error,
            message,
            hint: hint.map(str::to_string),
        });
    }
}

/// What a directory holds, decided entry by entry: directories are runit
/// service directories (except dinit's `*.d` dependency directories and
/// dot entries), regular files are dinit service descriptions. A
/// directory that is itself a runit service directory (it has `run`) is
/// read as that one service.
pub fn load_dir(session: &mut Session, dir: &Path) -> std::io::Result<()> {
    if dir.join("run").is_file() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        load_runit(session, dir, &name);
        return Ok(());
    }
    let mut entries: Vec<(String, PathBuf)> = fs::read_dir(dir)?
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    entries.sort();
    let mut dinit_names = Vec::new();
    for (name, path) in &entries {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                session.finding(
                    name,
                    Pos {
                        file: path.clone(),
                        line: None,
                    },
                    true,
                    format!("cannot read: {e}"),
                    Some("remove the dangling link or point it at a service"),
                );
                continue;
            }
        };
        if meta.is_dir() {
            if !name.ends_with(".d") {
                load_runit(session, path, name);
            }
        } else if meta.is_file() {
            dinit_names.push(name.clone());
        }
    }
    let dirs = vec![dir.to_string_lossy().into_owned()];
    for name in dinit_names {
        load_dinit_service(session, &dirs, &name);
    }
    Ok(())
}

fn at(file: &Path, line: Option<u32>) -> Pos {
    Pos {
        file: file.to_path_buf(),
        line,
    }
}

/// Runit's service directory files braid or runsv read: anything else is
/// the user's, except near misses of these (likely typos).
const RUNIT_FILES: &[&str] = &[
    "run",
    "finish",
    "down",
    "log",
    "check",
    "control",
    "supervise",
    "dependencies",
    "notification-fd",
    "conf",
    "env",
];

fn load_runit(session: &mut Session, dir: &Path, name: &str) {
    let run = dir.join("run");
    match fs::metadata(&run) {
        Err(_) => session.finding(
            name,
            at(&run, None),
            true,
            format!("runit service '{name}' has no run file: it can never start"),
            Some("create an executable ./run that execs the service in the foreground"),
        ),
        Ok(m) if !is_executable(&m) => session.finding(
            name,
            at(&run, None),
            true,
            format!("runit service '{name}': run is not executable"),
            Some("chmod +x run"),
        ),
        Ok(_) => {}
    }
    let finish = dir.join("finish");
    if let Ok(m) = fs::metadata(&finish) {
        if !is_executable(&m) {
            session.finding(
                name,
                at(&finish, None),
                false,
                format!("runit service '{name}': finish is not executable"),
                Some("chmod +x finish"),
            );
        }
    }
    let log_run = dir.join("log/run");
    if dir.join("log").is_dir() && !log_run.is_file() {
        session.finding(
            name,
            at(&log_run, None),
            true,
            format!("runit service '{name}': log/ has no run file, its logger can never start"),
            Some("create an executable log/run, e.g. `exec svlogd -tt ./main`"),
        );
    }
    if let Ok(entries) = fs::read_dir(dir) {
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for file in names {
            if RUNIT_FILES.contains(&file.as_str()) {
                continue;
            }
            if let Some(meant) = RUNIT_FILES
                .iter()
                .find(|known| known.len() > 3 && edit_distance(&file, known) <= 2)
            {
                session.finding(
                    name,
                    at(&dir.join(&file), None),
                    false,
                    format!("runit service '{name}': unknown file '{file}' is ignored"),
                    Some(&format!("did you mean '{meant}'? rename it")),
                );
            }
        }
    }

    let mut detail = Detail {
        restart_limit: None,
        ..Detail::default()
    };
    if dir.join("log").is_dir() {
        detail.log_dir = Some(dir.join("log"));
    }
    match service_dir::load(dir, name) {
        Ok(sd) => {
            let deps_file = dir.join("dependencies");
            let text = fs::read_to_string(&deps_file).unwrap_or_default();
            for dep in &sd.service.deps {
                let line = text
                    .lines()
                    .position(|l| l.trim() == dep.name)
                    .map(|i| i as u32 + 1);
                session.edges.push(Edge {
                    from: name.to_string(),
                    to: dep.name.clone(),
                    kind: "hard".into(),
                    at: Some(at(&deps_file, line)),
                });
            }
            if sd.logger.is_some() {
                let logger = format!("{name}/log");
                session.edges.push(Edge {
                    from: logger.clone(),
                    to: name.to_string(),
                    kind: "log".into(),
                    at: None,
                });
                session.services.push(Service {
                    name: logger,
                    face: Face::Runit,
                    source: Some(dir.join("log")),
                    detail: Detail::default(),
                    live: None,
                });
            }
        }
        Err(e) => {
            let (file, line, hint) = match &e {
                service_dir::LoadError::Dependencies(p) => (
                    p.file.clone(),
                    Some(p.line as u32),
                    "list one service name per line (no '/', not starting with '.')",
                ),
                service_dir::LoadError::NotificationFd(_) => (
                    dir.join("notification-fd"),
                    Some(1),
                    "write one file descriptor number, e.g. 3",
                ),
                _ => (dir.to_path_buf(), None, "fix the directory's permissions"),
            };
            let message = match &e {
                // Its text already starts with FILE:LINE.
                service_dir::LoadError::Dependencies(p) => {
                    format!("runit service '{name}': not a service name: {}", p.text)
                }
                other => format!("runit service '{name}': {other}"),
            };
            session.finding(name, at(&file, line), true, message, Some(hint));
        }
    }
    // Listed after its logger so that the service comes first in output.
    let logger_index = session
        .services
        .iter()
        .position(|s| s.name == format!("{name}/log"));
    let service = Service {
        name: name.to_string(),
        face: Face::Runit,
        source: Some(dir.to_path_buf()),
        detail,
        live: None,
    };
    match logger_index {
        Some(i) => session.services.insert(i, service),
        None => session.services.push(service),
    }
}

/// Reads the description of the dinit service `name` from the first of
/// `dirs` that has it.
pub fn load_dinit_service(session: &mut Session, dirs: &[String], name: &str) {
    let ctx = Context {
        env: Default::default(),
        original: process_env(),
        full_name_in_env: true,
    };
    let first = dirs.first().map_or("", |d| d.trim_end_matches('/'));
    let mut file = PathBuf::from(format!("{first}/{name}"));
    let source = match find_description(name, dirs) {
        Ok(s) => {
            file = PathBuf::from(&s.file);
            s
        }
        Err(e) => {
            session.finding(name, at(&file, None), true, format!("{name}: {e}"), None);
            return;
        }
    };
    let mut problems: Vec<Problem> = Vec::new();
    let parsed = parse(&source, &ctx, &mut problems);
    for p in &problems {
        let (pos, hint) = match p {
            Problem::AtLine { pos, message } | Problem::AtSetting { pos, message, .. } => (
                Some(pos),
                Some(if message.starts_with("unknown setting") {
                    "see dinit-service(5) for the settings dinit knows; remove or correct it"
                } else {
                    "correct the value"
                }),
            ),
            Problem::BadDependencyName { pos, .. } => (
                Some(pos),
                Some("a service name must not start with '.' or '@'"),
            ),
            _ => (None, None),
        };
        let pos = pos.map_or_else(|| at(&file, None), dinit_pos);
        let message = match p {
            Problem::AtLine { message, .. } | Problem::AtSetting { message, .. } => {
                format!("dinit service '{name}': {message}")
            }
            Problem::BadDependencyName { name: dep, .. } => {
                format!("dinit service '{name}': invalid dependency name '{dep}'")
            }
            other => format!("dinit service '{name}': {other}"),
        };
        session.finding(name, pos, p.is_error(), message, hint);
    }
    let desc = match parsed {
        Ok(d) => d,
        Err(e) => {
            let pos = match &e {
                description::LoadError::Fatal { pos: Some(p), .. } => dinit_pos(p),
                _ => at(&file, None),
            };
            let hint = e.to_string().starts_with("unknown setting").then_some(
                "see dinit-service(5) for the settings dinit knows; remove or correct it",
            );
            session.finding(
                name,
                pos,
                true,
                format!("dinit service '{name}': {e}"),
                hint.or(Some("correct the line")),
            );
            session.services.push(Service {
                name: name.to_string(),
                face: Face::Dinit,
                source: Some(file),
                detail: Detail::default(),
                live: None,
            });
            return;
        }
    };
    let pos_of = |setting: &str| desc.position(setting).map(dinit_pos);
    for dep in &desc.deps {
        let kind = match dep.kind {
            DepType::Regular => "hard",
            DepType::Milestone => "milestone",
            DepType::WaitsFor => "waits-for",
            DepType::PreparedBy => "prepared-by",
        };
        session.edges.push(Edge {
            from: name.to_string(),
            to: dep.name.clone(),
            kind: kind.into(),
            at: Some(dinit_pos(&dep.pos)),
        });
    }
    for after in &desc.after {
        session.edges.push(Edge {
            from: name.to_string(),
            to: after.clone(),
            kind: "after".into(),
            at: pos_of("after"),
        });
    }
    for before in &desc.before {
        // `before = X`: X starts after us.
        session.edges.push(Edge {
            from: before.clone(),
            to: name.to_string(),
            kind: "before".into(),
            at: pos_of("before"),
        });
    }
    if let Some(chain) = &desc.chain_to {
        session.edges.push(Edge {
            from: chain.clone(),
            to: name.to_string(),
            kind: "chain".into(),
            at: pos_of("chain-to"),
        });
    }
    if let Some(producer) = &desc.consumer_of {
        session.edges.push(Edge {
            from: name.to_string(),
            to: producer.clone(),
            kind: "consumer".into(),
            at: pos_of("consumer-of"),
        });
    }
    let logfile = (desc.log_type == description::LogType::File && !desc.logfile.is_empty())
        .then(|| desc.resolve_dir.join(&desc.logfile));
    session.services.push(Service {
        name: name.to_string(),
        face: Face::Dinit,
        source: Some(file),
        detail: Detail {
            logfile,
            log_buffer: desc.log_type == description::LogType::Buffer,
            log_dir: None,
            restart_limit: Some((
                desc.restart_limit_count,
                desc.restart_limit_interval.as_secs_f64(),
            )),
        },
        live: None,
    });
}

fn dinit_pos(p: &description::Pos) -> Pos {
    Pos {
        file: PathBuf::from(&p.file),
        line: (p.line > 0).then_some(p.line),
    }
}

fn is_executable(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn near_misses() {
        assert_eq!(edit_distance("dependancies", "dependencies"), 1);
        assert_eq!(edit_distance("finsh", "finish"), 1);
        assert!(edit_distance("README", "run") > 2);
    }
}
