//! `braid check [DIR…]`: lints runit service directories and dinit service
//! descriptions in one pass, as CI would run it.
//!
//! Each problem is one line, `FILE[:LINE]: error|warning: MESSAGE`, then
//! `    hint: FIX` when there is one; a summary line ends the output. Exit
//! status: 0 when there is no error (warnings allowed), 1 when there is
//! one, 2 when a directory cannot be read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use super::session::{load_dir, Finding, Pos, Session};

/// The service dinit sessions gate on (turnstile's readiness).
pub const GATE_TARGET: &str = "login.target";

/// Options of `braid check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Service directories: a runit service directory tree (`~/.config/service`),
    /// a dinit service directory (`~/.config/dinit.d`), or one runit service
    /// directory. Default: `$SVDIR` or `~/.config/service`, and
    /// `~/.config/dinit.d`, those that exist.
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// Kinds of link along which a service waits for another.
pub(crate) const ORDER_KINDS: &[&str] = &[
    "hard",
    "milestone",
    "waits-for",
    "prepared-by",
    "soft",
    "after",
    "before",
];

/// Kinds whose target must start for the dependent to start.
const NEEDS_KINDS: &[&str] = &["hard", "milestone", "prepared-by"];

pub fn run(args: &CheckArgs) -> i32 {
    let dirs = if args.dirs.is_empty() {
        super::default_dirs()
    } else {
        args.dirs.clone()
    };
    let mut session = Session::default();
    for dir in &dirs {
        if let Err(e) = load_dir(&mut session, dir) {
            eprintln!("braid check: {}: {e}", dir.display());
            return 2;
        }
    }
    let findings = check(&session);
    let mut out = std::io::stdout().lock();
    let (mut errors, mut warnings) = (0, 0);
    for f in &findings {
        if f.error {
            errors += 1;
        } else {
            warnings += 1;
        }
        let _ = writeln!(
            out,
            "{}: {}: {}",
            f.at,
            if f.error { "error" } else { "warning" },
            f.message
        );
        if let Some(hint) = &f.hint {
            let _ = writeln!(out, "    hint: {hint}");
        }
    }
    let _ = writeln!(
        out,
        "braid check: {errors} error{}, {warnings} warning{} in {} service{}",
        plural(errors),
        plural(warnings),
        session.services.len(),
        plural(session.services.len())
    );
    i32::from(errors > 0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Every finding: the loaders' own, then missing dependencies, cycles, and
/// services gating `login.target` that can never start.
pub fn check(session: &Session) -> Vec<Finding> {
    let mut findings = session.findings.clone();
    let names: HashSet<&str> = session.services.iter().map(|s| s.name.as_str()).collect();
    // Why each service can never start, as found so far.
    let mut broken: HashMap<String, String> = HashMap::new();
    for f in session.findings.iter().filter(|f| f.error) {
        broken
            .entry(f.service.clone())
            .or_insert_with(|| format!("{} ({})", f.message, f.at));
    }

    for e in &session.edges {
        if names.contains(e.to.as_str()) || !ORDER_KINDS.contains(&e.kind.as_str()) {
            continue;
        }
        let at = e.at.clone().unwrap_or_else(|| Pos {
            file: PathBuf::from(&e.from),
            line: None,
        });
        if e.kind == "before" {
            // `before = X` where X does not exist: nothing to order.
            if e.from != GATE_TARGET {
                findings.push(Finding {
                    service: e.to.clone(),
                    at,
                    error: false,
                    message: format!(
                        "service '{}' is ordered before '{}', which does not exist",
                        e.to, e.from
                    ),
                    hint: Some(format!("add a service '{}' or remove the line", e.from)),
                });
            }
            continue;
        }
        let needed = NEEDS_KINDS.contains(&e.kind.as_str()) || e.kind == "waits-for";
        findings.push(Finding {
            service: e.from.clone(),
            at,
            error: needed,
            message: format!(
                "service '{}' {} '{}', which does not exist",
                e.from,
                link_words(&e.kind),
                e.to
            ),
            hint: Some(format!("add a service '{}' or remove the dependency", e.to)),
        });
        if needed {
            broken
                .entry(e.from.clone())
                .or_insert_with(|| format!("it needs '{}', which does not exist", e.to));
        }
    }

    for cycle in cycles(session) {
        let first = &cycle[0];
        let edge = session.edges.iter().find(|e| {
            &e.from == first && e.to == cycle[1] && ORDER_KINDS.contains(&e.kind.as_str())
        });
        let at = edge.and_then(|e| e.at.clone()).unwrap_or_else(|| Pos {
            file: PathBuf::from(first),
            line: None,
        });
        let path = cycle.join(" -> ");
        findings.push(Finding {
            service: first.clone(),
            at,
            error: true,
            message: format!("dependency cycle: {path}"),
            hint: Some("remove one link of the cycle (braid and dinit refuse to load it)".into()),
        });
        for name in &cycle {
            broken
                .entry(name.clone())
                .or_insert_with(|| format!("it is on the dependency cycle {path}"));
        }
    }

    // Propagate "can never start" to whatever needs a broken service.
    let mut changed = true;
    while changed {
        changed = false;
        for e in &session.edges {
            if !NEEDS_KINDS.contains(&e.kind.as_str()) || broken.contains_key(&e.from) {
                continue;
            }
            if broken.contains_key(&e.to) {
                let why = format!("it needs '{}', which can never start", e.to);
                broken.insert(e.from.clone(), why);
                changed = true;
            }
        }
    }

    let gated: BTreeSet<&str> = session
        .edges
        .iter()
        .filter(|e| e.from == GATE_TARGET && ORDER_KINDS.contains(&e.kind.as_str()))
        .map(|e| e.to.as_str())
        .collect();
    for name in gated {
        if let Some(why) = broken.get(name) {
            let edge = session
                .edges
                .iter()
                .find(|e| e.from == GATE_TARGET && e.to == name);
            let at = edge
                .and_then(|e| e.at.clone())
                .or_else(|| {
                    session
                        .find(name)
                        .and_then(|s| s.source.clone())
                        .map(|file| Pos { file, line: None })
                })
                .unwrap_or_else(|| Pos {
                    file: PathBuf::from(name),
                    line: None,
                });
            findings.push(Finding {
                service: name.to_string(),
                at,
                error: true,
                message: format!(
                    "service '{name}' is ordered before {GATE_TARGET} but can never start: {why}"
                ),
                hint: Some(format!(
                    "fix it, or the session's readiness gate fails; until then remove it from {GATE_TARGET}"
                )),
            });
        }
    }
    findings
}

fn link_words(kind: &str) -> &'static str {
    match kind {
        "hard" => "depends on",
        "milestone" => "depends (milestone) on",
        "waits-for" => "waits for",
        "prepared-by" => "is prepared by",
        "soft" => "softly depends on",
        _ => "is ordered after",
    }
}

/// Each elementary cycle found by a depth-first search, once: the names in
/// order, ending with the first again.
pub(crate) fn cycles(session: &Session) -> Vec<Vec<String>> {
    let mut adjacency: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &session.edges {
        if ORDER_KINDS.contains(&e.kind.as_str()) {
            adjacency.entry(&e.from).or_default().push(&e.to);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = HashMap::new();
    let mut found = Vec::new();
    let mut starts: Vec<&str> = adjacency.keys().copied().collect();
    starts.sort_unstable();
    for start in starts {
        if mark.get(start).copied().unwrap_or(Mark::New) != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next child index).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        mark.insert(start, Mark::OnStack);
        while let Some((node, i)) = stack.last().copied() {
            let children = adjacency.get(node).map_or(&[][..], Vec::as_slice);
            if i < children.len() {
                stack.last_mut().expect("not empty").1 += 1;
                let child = children[i];
                match mark.get(child).copied().unwrap_or(Mark::New) {
                    Mark::New => {
                        mark.insert(child, Mark::OnStack);
                        stack.push((child, 0));
                    }
                    Mark::OnStack => {
                        let from = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(child.to_string());
                        found.push(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    found
}
