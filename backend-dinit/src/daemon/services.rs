//! Services loaded by name on demand, each with the dependencies it names,
//! through the description loader into the engine; reload and unload.
//!
//! As in dinit, a service whose load fails (a missing or broken
//! description, a dependency that failed, a cycle) is taken out again, and
//! so is every dependent whose load was waiting on it; dependencies that
//! loaded completely stay loaded. Services
//! are listed in the order their loads began (a service before its
//! dependencies), so each is inserted first without links, its
//! dependencies are loaded, and then its full spec is linked in.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use braid_core::engine::{Engine, LoadError as EngineError, ServiceId};

use super::console::Console;
use super::options::Level;
use crate::description::{LoadError, Loader, LogType, Pos, Problem, ServiceType};

/// Deeper dependency chains than this fail to load.
const MAX_DEP_DEPTH: usize = 32;

/// What the daemon keeps about a loaded service besides the engine's spec.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// The service directory the file was found in, as configured.
    pub service_dir: String,
    pub mtime: Option<SystemTime>,
    pub service_type: ServiceType,
    pub log_type: LogType,
}

impl ServiceInfo {
    /// Whether the daemon keeps this service's output in a log buffer
    /// (what CATLOG and `braid log -f` read): only a service with a process
    /// can have one.
    pub fn has_log_buffer(&self) -> bool {
        self.service_type != ServiceType::Internal
            && self.service_type != ServiceType::Triggered
            && self.log_type == LogType::Buffer
    }
}

/// Why a load failed, as the protocol and the log tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound {
        name: String,
    },
    /// An error in a description (SERVICE_DESC_ERR).
    Description(DescError),
    /// Any other (SERVICE_LOAD_ERR): I/O, cycles, a dependency that failed.
    Load {
        name: String,
        text: String,
    },
}

/// A description error with what dinit knows of where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescError {
    pub name: String,
    pub pos: Option<Pos>,
    pub setting: Option<String>,
    pub text: String,
}

impl DescError {
    /// dinit's wording of a description error in its log.
    pub fn log_text(&self) -> String {
        let name = &self.name;
        match (&self.pos, &self.setting) {
            (Some(p), None) => format!(
                "Error in service description for '{name}' (file {}, line {}): {}",
                p.file, p.line, self.text
            ),
            (Some(p), Some(s)) => format!(
                "Error in service description for '{name}': setting '{s}' (file {}, line {}): {}",
                p.file, p.line, self.text
            ),
            (None, s) => format!(
                "Error in service description for '{name}' setting '{}': {}",
                s.as_deref().unwrap_or(""),
                self.text
            ),
        }
    }
}

impl Failure {
    /// The line a control-requested load logs.
    pub fn control_log_text(&self) -> String {
        match self {
            Failure::NotFound { name } => {
                format!("Could not load service {name}: service description not found.")
            }
            Failure::Description(d) => d.log_text(),
            Failure::Load { name, text } => format!("Could not load service {name}: {text}"),
        }
    }

    /// The line a load at startup (a service named on the command line) logs.
    pub fn startup_log_text(&self) -> String {
        match self {
            Failure::NotFound { name } => format!("{name}: could not find service description."),
            Failure::Description(d) => d.log_text(),
            Failure::Load { name, text } => format!("{name}: error loading: {text}"),
        }
    }
}

fn failure_from(err: LoadError) -> Failure {
    let name = err.service_name().to_string();
    let desc = |pos: Option<Pos>, setting: Option<String>, text: String| {
        Failure::Description(DescError {
            name: name.clone(),
            pos,
            setting,
            text,
        })
    };
    match err {
        LoadError::NotFound { name } => Failure::NotFound { name },
        LoadError::Fatal {
            message,
            pos,
            setting,
            ..
        } => desc(pos, setting, message),
        LoadError::Invalid { problem, .. } => match problem {
            Problem::AtLine { pos, message } => desc(Some(pos), None, message),
            Problem::AtSetting {
                pos,
                setting,
                message,
            } => desc(Some(pos), Some(setting), message),
            Problem::BadDependencyName { pos, name: dep } => {
                desc(Some(pos), None, format!("invalid dependency name '{dep}'"))
            }
            Problem::Setting { setting, message } => desc(None, Some(setting), message),
            other => Failure::Load {
                name: name.clone(),
                text: other.to_string(),
            },
        },
        other => Failure::Load {
            name: name.clone(),
            text: other.to_string(),
        },
    }
}

#[derive(Debug)]
pub struct Services {
    pub loader: Loader,
    info: HashMap<ServiceId, ServiceInfo>,
}

/// One load in progress: the services between insertion and linking (a
/// dependency on one of them closes a cycle).
#[derive(Default)]
struct Txn {
    loading: HashSet<String>,
}

impl Services {
    pub fn new(loader: Loader) -> Services {
        Services {
            loader,
            info: HashMap::new(),
        }
    }

    /// Whether `id` is loaded and keeps its output in a log buffer.
    pub fn has_log_buffer(&self, id: ServiceId) -> bool {
        self.info(id).is_some_and(ServiceInfo::has_log_buffer)
    }

    pub fn info(&self, id: ServiceId) -> Option<&ServiceInfo> {
        self.info.get(&id)
    }

    /// The loaded service `name`, loading it (and its dependencies) if it
    /// is not loaded yet. Failures of dependencies are logged here; the
    /// caller logs the returned failure as its context words it.
    pub fn load(
        &mut self,
        engine: &mut Engine,
        console: &mut Console,
        name: &str,
    ) -> Result<ServiceId, Failure> {
        if let Some(id) = engine.lookup(name) {
            return Ok(id);
        }
        self.load_in(engine, console, name, 0, &mut Txn::default())
    }

    fn load_in(
        &mut self,
        engine: &mut Engine,
        console: &mut Console,
        name: &str,
        depth: usize,
        txn: &mut Txn,
    ) -> Result<ServiceId, Failure> {
        if txn.loading.contains(name) {
            return Err(Failure::Load {
                name: name.to_string(),
                text: "has cyclic dependency.".into(),
            });
        }
        if let Some(id) = engine.lookup(name) {
            return Ok(id);
        }
        if depth >= MAX_DEP_DEPTH {
            return Err(Failure::Load {
                name: name.to_string(),
                text: "maximum recursion depth exceeded".into(),
            });
        }
        let loaded = self.loader.load(name).map_err(failure_from)?;
        for warning in &loaded.warnings {
            console.log(Level::Warn, &warning.to_string());
        }
        let mut bare = loaded.spec.clone();
        bare.deps.clear();
        let id = engine.load(bare).map_err(|e| engine_failure(name, e))?;
        txn.loading.insert(name.to_string());
        let linked = self.link_in(engine, console, name, id, loaded, depth, txn);
        txn.loading.remove(name);
        if linked.is_err() {
            // As dinit: the failed service goes; dependencies that loaded
            // completely stay loaded. It was never started, so unloading
            // cannot fail.
            let _ = engine.unload(id);
            self.info.remove(&id);
        }
        linked.map(|()| id)
    }

    /// Loads the dependencies of the just-inserted `id` and links its spec.
    #[allow(clippy::too_many_arguments)]
    fn link_in(
        &mut self,
        engine: &mut Engine,
        console: &mut Console,
        name: &str,
        id: ServiceId,
        loaded: crate::description::LoadedService,
        depth: usize,
        txn: &mut Txn,
    ) -> Result<(), Failure> {
        let mut spec = loaded.spec;
        let mut unresolved: Vec<String> = Vec::new();
        for dep in &loaded.description.deps {
            match self.load_in(engine, console, &dep.name, depth + 1, txn) {
                Ok(_) => {}
                Err(Failure::NotFound { .. }) if dep.from_dir.is_some() => {
                    console.log(
                        Level::Warn,
                        &format!(
                            "Ignoring unresolved dependency '{}' in dependency directory '{}' for {name} service.",
                            dep.name,
                            dep.from_dir.as_deref().unwrap_or("")
                        ),
                    );
                    unresolved.push(dep.name.clone());
                }
                Err(failure) => {
                    console.log(Level::Error, &failure.control_log_text());
                    return Err(Failure::Load {
                        name: name.to_string(),
                        text: "could not load dependency.".into(),
                    });
                }
            }
        }
        spec.deps.retain(|d| !unresolved.contains(&d.name));
        engine
            .reload(id, spec)
            .map_err(|e| engine_failure(name, e))?;
        self.info.insert(
            id,
            ServiceInfo {
                service_dir: loaded.description.service_dir.clone(),
                mtime: loaded.mtime,
                service_type: loaded.description.service_type,
                log_type: loaded.description.log_type,
            },
        );
        Ok(())
    }

    /// Re-reads a loaded service's description and applies it. Failures
    /// are returned in the words dinit logs after "Could not reload
    /// service X: ".
    pub fn reload(
        &mut self,
        engine: &mut Engine,
        console: &mut Console,
        id: ServiceId,
    ) -> Result<(), String> {
        let name = engine.name(id).to_string();
        let loaded = self.loader.load(&name).map_err(|e| match failure_from(e) {
            Failure::NotFound { .. } => "service description not found.".to_string(),
            Failure::Description(d) => d.text,
            Failure::Load { text, .. } => text,
        })?;
        let mut txn = Txn::default();
        txn.loading.insert(name.clone());
        let mut spec = loaded.spec;
        let mut unresolved = Vec::new();
        let mut failed = None;
        for dep in &loaded.description.deps {
            match self.load_in(engine, console, &dep.name, 1, &mut txn) {
                Ok(_) => {}
                Err(Failure::NotFound { .. }) if dep.from_dir.is_some() => {
                    unresolved.push(dep.name.clone());
                }
                Err(f) => {
                    console.log(Level::Error, &f.control_log_text());
                    failed = Some("could not load dependency.".to_string());
                    break;
                }
            }
        }
        spec.deps.retain(|d| !unresolved.contains(&d.name));
        let result = match failed {
            Some(text) => Err(text),
            None => engine
                .reload(id, spec)
                .map_err(|e| match engine_failure(&name, e) {
                    Failure::Load { text, .. } => text,
                    other => other.control_log_text(),
                }),
        };
        result?;
        self.info.insert(
            id,
            ServiceInfo {
                service_dir: loaded.description.service_dir.clone(),
                mtime: loaded.mtime,
                service_type: loaded.description.service_type,
                log_type: loaded.description.log_type,
            },
        );
        Ok(())
    }

    /// Unloads a stopped service nothing depends on.
    pub fn unload(&mut self, engine: &mut Engine, id: ServiceId) -> bool {
        if engine.unload(id).is_err() {
            return false;
        }
        self.info.remove(&id);
        true
    }
}

fn engine_failure(name: &str, e: EngineError) -> Failure {
    let text = match e {
        EngineError::Cycle(_) => "has cyclic dependency.".to_string(),
        EngineError::NotNow(text) => text,
        EngineError::Invalid(e) => e.to_string(),
    };
    Failure::Load {
        name: name.to_string(),
        text,
    }
}
