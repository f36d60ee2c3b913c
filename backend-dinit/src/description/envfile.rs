//! Environments as dinit layers them, and the environment-file format
//! (`dinit -e`, `env-file`, dinit-check's `-e`).
//!
//! An [`Environment`] is a set of changes over an *original* environment
//! (the process environment it inherits): variables set, variables unset,
//! and after `!clear` only explicitly imported ones inherited.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

use super::syntax::is_space;

/// Resolved variables: name → value.
pub type EnvMap = BTreeMap<String, String>;

/// The process environment as an [`EnvMap`] (names and values that are not
/// valid UTF-8 are converted lossily; variables without a name are skipped).
pub fn process_env() -> EnvMap {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    keep_parent: bool,
    import: BTreeSet<String>,
    undefine: BTreeSet<String>,
    set: EnvMap,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            keep_parent: true,
            import: BTreeSet::new(),
            undefine: BTreeSet::new(),
            set: EnvMap::new(),
        }
    }
}

impl Environment {
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.import.remove(name);
        self.undefine.remove(name);
        self.set.insert(name.to_string(), value.to_string());
    }

    pub fn unset_var(&mut self, name: &str) {
        self.import.remove(name);
        self.set.remove(name);
        if self.keep_parent {
            self.undefine.insert(name.to_string());
        }
    }

    pub fn import_var(&mut self, name: &str) {
        self.undefine.remove(name);
        self.set.remove(name);
        if !self.keep_parent {
            self.import.insert(name.to_string());
        }
    }

    /// `!clear`: forget everything, including inheritance.
    pub fn clear(&mut self) {
        *self = Environment {
            keep_parent: false,
            ..Environment::default()
        };
    }

    /// Whether the original environment is inherited (no `!clear`).
    pub fn inherits(&self) -> bool {
        self.keep_parent
    }

    /// The variables this environment sets itself.
    pub fn set_vars(&self) -> &EnvMap {
        &self.set
    }

    /// The variables this environment removes from what it inherits.
    pub fn unset_vars(&self) -> &BTreeSet<String> {
        &self.undefine
    }

    fn get(&self, name: &str, original: &EnvMap) -> Option<String> {
        if let Some(v) = self.set.get(name) {
            return Some(v.clone());
        }
        if !self.keep_parent && !self.import.contains(name) {
            return None;
        }
        original.get(name).cloned()
    }

    fn build_excluding(&self, original: &EnvMap, exclude: &BTreeSet<String>) -> EnvMap {
        let mut map: EnvMap = if self.keep_parent {
            original
                .iter()
                .filter(|(k, _)| !self.undefine.contains(*k) && !exclude.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            self.import
                .iter()
                .filter_map(|k| original.get(k).map(|v| (k.clone(), v.clone())))
                .collect()
        };
        for (k, v) in &self.set {
            if !exclude.contains(k) {
                map.insert(k.clone(), v.clone());
            }
        }
        map
    }

    /// This environment applied to `original`.
    pub fn build(&self, original: &EnvMap) -> EnvMap {
        self.build_excluding(original, &BTreeSet::new())
    }

    /// This environment layered over `parent`, itself over `original`.
    pub fn build_over(&self, parent: &Environment, original: &EnvMap) -> EnvMap {
        let mut map = if self.keep_parent {
            parent.build_excluding(original, &self.undefine)
        } else {
            self.import
                .iter()
                .filter_map(|k| parent.get(k, original).map(|v| (k.clone(), v)))
                .collect()
        };
        for (k, v) in &self.set {
            map.insert(k.clone(), v.clone());
        }
        map
    }
}

/// A line of an environment file that was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFileWarning {
    /// Not `NAME=VALUE` (or starts with `=`), at this line.
    InvalidSetting(u32),
    /// An unknown `!command`, at this line.
    BadCommand(u32),
}

/// Applies the environment file `text` to `env`, reporting lines not
/// understood to `warn`.
pub fn apply_env_file(text: &str, env: &mut Environment, warn: &mut dyn FnMut(EnvFileWarning)) {
    for (idx, line) in text.split('\n').enumerate() {
        let line_num = idx as u32 + 1;
        let line = line.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('=') {
            warn(EnvFileWarning::InvalidSetting(line_num));
            continue;
        }
        if let Some(cmd_line) = line.strip_prefix('!') {
            let mut words = cmd_line.split(|c: char| c.is_ascii() && is_space(c as u8));
            let cmd = words.next().unwrap_or("");
            let args = words.filter(|w| !w.is_empty());
            match cmd {
                "clear" => env.clear(),
                "unset" => args.for_each(|a| env.unset_var(a)),
                "import" => args.for_each(|a| env.import_var(a)),
                _ => warn(EnvFileWarning::BadCommand(line_num)),
            }
            continue;
        }
        // The first character always belongs to the name.
        let first_len = line.chars().next().map_or(0, char::len_utf8);
        let name_end = line[first_len..]
            .find(|c: char| c == '=' || (c.is_ascii() && is_space(c as u8)))
            .map_or(line.len(), |p| p + first_len);
        let after =
            line[name_end..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        match after.strip_prefix('=') {
            Some(value) => env.set_var(&line[..name_end], value),
            None => warn(EnvFileWarning::InvalidSetting(line_num)),
        }
    }
}

/// Reads the environment file at `path` (relative paths against
/// `resolve_dir`) into `env`.
pub fn read_env_file(
    path: &Path,
    resolve_dir: &Path,
    env: &mut Environment,
    warn: &mut dyn FnMut(EnvFileWarning),
) -> io::Result<()> {
    let bytes = std::fs::read(resolve_dir.join(path))?;
    apply_env_file(&String::from_utf8_lossy(&bytes), env, warn);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orig() -> EnvMap {
        [("HOME", "/h"), ("PATH", "/bin"), ("X", "o")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn apply(text: &str) -> (Environment, Vec<EnvFileWarning>) {
        let mut env = Environment::default();
        let mut warnings = vec![];
        apply_env_file(text, &mut env, &mut |w| warnings.push(w));
        (env, warnings)
    }

    #[test]
    fn settings_are_verbatim() {
        let (env, w) = apply("A=1\n  B = two words  \n# c\n\nC=\"q\"\n");
        assert!(w.is_empty());
        let m = env.build(&orig());
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], " two words  ");
        assert_eq!(m["C"], "\"q\"");
        assert_eq!(m["HOME"], "/h");
    }

    #[test]
    fn commands() {
        let (env, w) = apply("!clear\n!import HOME\nA=1\n!unset A\n!frob\nnoequals\n=x\n");
        assert_eq!(
            w,
            [
                EnvFileWarning::BadCommand(5),
                EnvFileWarning::InvalidSetting(6),
                EnvFileWarning::InvalidSetting(7)
            ]
        );
        let m = env.build(&orig());
        assert_eq!(m.len(), 1);
        assert_eq!(m["HOME"], "/h");
    }

    #[test]
    fn unset_blocks_inheritance_and_layers() {
        let (global, _) = apply("!unset PATH\nG=g\n");
        let (svc, _) = apply("X=s\n!unset G\n");
        let m = svc.build_over(&global, &orig());
        assert_eq!(m.get("PATH"), None);
        assert_eq!(m.get("G"), None);
        assert_eq!(m["X"], "s");
        assert_eq!(m["HOME"], "/h");
    }
}
