//! `braid graph`: the dependency graph of a session — each service with its
//! face and state, each link with its kind — as text, Graphviz DOT, an SVG
//! drawn by braid, or JSON.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use braid_core::text::escape_controls_str;
use serde::Serialize;

use super::check::ORDER_KINDS;
use super::cli::{gather, SessionArgs};
use super::session::{load_dir, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Dot,
    Svg,
    Json,
}

/// Options of `braid graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Read these service directories offline (no states) instead of a
    /// running session.
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &GraphArgs) -> i32 {
    let session = if args.dirs.is_empty() {
        match gather(&args.session) {
            Ok(g) => g.session,
            Err(e) => {
                eprintln!("braid graph: {e}");
                return 1;
            }
        }
    } else {
        let mut s = Session::default();
        for dir in &args.dirs {
            if let Err(e) = load_dir(&mut s, dir) {
                eprintln!("braid graph: {}: {e}", dir.display());
                return 1;
            }
        }
        s
    };
    let format = if args.json { Format::Json } else { args.format };
    let text = match format {
        Format::Text => text(&session),
        Format::Dot => dot(&session),
        Format::Svg => super::svg::graph(&session),
        Format::Json => json(&session),
    };
    match &args.output {
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("braid graph: {}: {e}", path.display());
                1
            }
        },
        None => {
            out!("{text}");
            0
        }
    }
}

/// The state shown for a service: its live state, else `-` (offline).
pub fn state_of(session: &Session, name: &str) -> String {
    match session.find(name) {
        Some(s) => s
            .live
            .as_ref()
            .map_or_else(|| "-".to_string(), |l| l.state.clone()),
        None => "missing".to_string(),
    }
}

/// One block per service: `NAME (FACE, STATE)`, then one line per link,
/// `  KIND -> TARGET (STATE)`.
pub fn text(session: &Session) -> String {
    let mut out = String::new();
    for s in &session.services {
        let _ = writeln!(
            out,
            "{} ({}, {})",
            escape_controls_str(&s.name),
            s.face.name(),
            state_of(session, &s.name)
        );
        for e in session.edges_from(&s.name) {
            // A `before = X` written in the other service reads "X after it".
            let (kind, note) = match e.kind.as_str() {
                "before" => (
                    "after",
                    format!(
                        " [before = {} in {}]",
                        escape_controls_str(&e.from),
                        escape_controls_str(&e.to)
                    ),
                ),
                k => (k, String::new()),
            };
            let _ = writeln!(
                out,
                "  {kind:<11} -> {} ({}){note}",
                escape_controls_str(&e.to),
                state_of(session, &e.to)
            );
        }
    }
    out
}

/// Fill colour of a node by state.
pub fn state_colour(state: &str) -> &'static str {
    match state {
        "started" => "#c8e6c9",
        "starting" => "#fff3b0",
        "stopping" => "#ffe0b2",
        "stopped" => "#e0e0e0",
        "missing" => "#ffcdd2",
        _ => "#ffffff",
    }
}

/// DOT style of an edge by kind.
fn dot_style(kind: &str) -> &'static str {
    match kind {
        "hard" | "prepared-by" => "solid",
        "milestone" => "bold",
        "waits-for" => "dashed",
        "log" | "consumer" | "chain" => "solid\", color=\"#1565c0",
        _ => "dotted",
    }
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz: one node per service (label NAME\nSTATE, filled by state;
/// missing dependencies in red), one edge per link labelled with its kind.
pub fn dot(session: &Session) -> String {
    let mut out = String::from(
        "digraph session {\n  rankdir=RL;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    let mut names: Vec<&str> = session.services.iter().map(|s| s.name.as_str()).collect();
    for e in &session.edges {
        for n in [&e.from, &e.to] {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    for name in &names {
        let state = state_of(session, name);
        let face = session.find(name).map_or("", |s| s.face.name());
        let _ = writeln!(
            out,
            "  {} [label={}, fillcolor=\"{}\"];",
            dot_quote(name),
            dot_quote(&format!("{name}\\n{face} {state}")).replace("\\\\n", "\\n"),
            state_colour(&state)
        );
    }
    for e in &session.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, style=\"{}\"];",
            dot_quote(&e.from),
            dot_quote(&e.to),
            dot_quote(&e.kind),
            dot_style(&e.kind)
        );
    }
    out.push_str("}\n");
    out
}

#[derive(Debug, Serialize)]
struct GraphJson {
    format: u32,
    services: Vec<NodeJson>,
    edges: Vec<EdgeJson>,
}

#[derive(Debug, Serialize)]
struct NodeJson {
    name: String,
    face: &'static str,
    state: Option<String>,
    source: Option<String>,
}

#[derive(Debug, Serialize)]
struct EdgeJson {
    from: String,
    to: String,
    kind: String,
    at: Option<String>,
}

pub fn json(session: &Session) -> String {
    let doc = GraphJson {
        format: super::status_json::FORMAT_VERSION,
        services: session
            .services
            .iter()
            .map(|s| NodeJson {
                name: s.name.clone(),
                face: s.face.name(),
                state: s.live.as_ref().map(|l| l.state.clone()),
                source: s.source.as_ref().map(|p| p.display().to_string()),
            })
            .collect(),
        edges: session
            .edges
            .iter()
            .map(|e| EdgeJson {
                from: e.from.clone(),
                to: e.to.clone(),
                kind: e.kind.clone(),
                at: e.at.as_ref().map(|p| p.to_string()),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Each node's layer: 0 for services that wait for nothing, else one more
/// than the deepest service they wait for (links on cycles are ignored).
pub fn layers(session: &Session, names: &[&str]) -> HashMap<String, usize> {
    let mut layer: HashMap<String, usize> = names.iter().map(|n| (n.to_string(), 0)).collect();
    // Bellman-Ford style relaxation, bounded by the node count (cycles).
    for _ in 0..names.len() {
        let mut changed = false;
        for e in &session.edges {
            if !ORDER_KINDS.contains(&e.kind.as_str()) && e.kind != "log" {
                continue;
            }
            let to = layer.get(&e.to).copied().unwrap_or(0);
            let from = layer.entry(e.from.clone()).or_insert(0);
            if *from < to + 1 && to + 1 < names.len().max(1) {
                *from = to + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}
