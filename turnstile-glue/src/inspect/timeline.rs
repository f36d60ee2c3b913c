//! `braid timeline`: for a running session (from its event log), each
//! service's start request, launch, readiness, stop and restarts on one
//! time axis, with the critical path to the readiness gate marked.
//!
//! Phases of a service: `waiting` (asked to start, waiting for its
//! dependencies or its restart delay), `launched` (process running, not
//! ready yet), `ready` (started), `stopping`. The gate is `login.target`
//! when the session has one, else `--to SERVICE`, else the service that
//! became ready last. The critical path walks back from the gate, each
//! time to the dependency that became ready last before it started: the
//! chain that decided when the gate opened.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use braid_core::text::escape_controls_str;
use serde::Serialize;

use super::check::{GATE_TARGET, ORDER_KINDS};
use super::cli::{gather, SessionArgs};
use super::events::Log;
use super::session::Session;

/// Options of `braid timeline`.
#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Also write the timeline as an SVG picture to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Mark the critical path to this service instead of the gate.
    #[arg(long, value_name = "SERVICE")]
    pub to: Option<String>,
    /// Width of the text chart in columns [default: $COLUMNS or 80].
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Waiting,
    Launched,
    Ready,
    Stopping,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Launched => "launched",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }

    fn glyph(self) -> char {
        match self {
            Phase::Waiting => '.',
            Phase::Launched => '-',
            Phase::Ready => '#',
            Phase::Stopping => '~',
        }
    }
}

/// A stretch of one phase, in seconds from the session's start.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub phase: Phase,
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// First start request, launch and readiness (seconds), if any.
    pub requested: Option<f64>,
    pub launched: Option<f64>,
    pub ready: Option<f64>,
    pub stopped: Option<f64>,
    pub restarts: Vec<f64>,
    pub critical: bool,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub title: String,
    /// Unix time of second 0.
    pub origin: f64,
    /// Seconds covered.
    pub span: f64,
    pub gate: String,
    pub critical_path: Vec<String>,
    pub rows: Vec<Row>,
}

/// Builds the timeline of `log` up to `now` (Unix time); `session` gives
/// the links for the critical path.
pub fn build(log: &Log, session: &Session, now: f64, to: Option<&str>) -> Timeline {
    let origin = log.changes.iter().map(|c| c.t).fold(log.begun, f64::min);
    let end = log.changes.iter().map(|c| c.t).fold(now, f64::max);
    let mut order: Vec<String> = Vec::new();
    for c in &log.changes {
        if !order.contains(&c.name) {
            order.push(c.name.clone());
        }
    }
    let mut rows = Vec::new();
    for name in &order {
        let mut row = Row {
            name: name.clone(),
            requested: None,
            launched: None,
            ready: None,
            stopped: None,
            restarts: Vec::new(),
            critical: false,
            bars: Vec::new(),
        };
        let mut open: Option<(Phase, f64)> = None;
        let mut restarts = 0;
        for c in log.changes.iter().filter(|c| &c.name == name) {
            let t = c.t - origin;
            if c.restarts > restarts {
                row.restarts.push(t);
                restarts = c.restarts;
            }
            let phase = match c.state.as_str() {
                "starting" if c.pid.is_some() => Some(Phase::Launched),
                "starting" => Some(Phase::Waiting),
                "started" => Some(Phase::Ready),
                "stopping" => Some(Phase::Stopping),
                _ => None,
            };
            match phase {
                Some(Phase::Waiting) if row.requested.is_none() => row.requested = Some(t),
                Some(Phase::Launched) => {
                    row.requested.get_or_insert(t);
                    row.launched.get_or_insert(t);
                }
                Some(Phase::Ready) => {
                    row.requested.get_or_insert(t);
                    row.launched.get_or_insert(t);
                    row.ready.get_or_insert(t);
                }
                None => row.stopped = Some(t),
                _ => {}
            }
            if open.map(|(p, _)| Some(p)) != Some(phase) {
                if let Some((p, from)) = open.take() {
                    row.bars.push(Bar {
                        phase: p,
                        from,
                        to: t,
                    });
                }
                open = phase.map(|p| (p, t));
            }
        }
        if let Some((p, from)) = open {
            row.bars.push(Bar {
                phase: p,
                from,
                to: end - origin,
            });
        }
        rows.push(row);
    }

    let ready_at: HashMap<&str, f64> = rows
        .iter()
        .filter_map(|r| r.ready.map(|t| (r.name.as_str(), t)))
        .collect();
    let gate = to
        .map(str::to_string)
        .or_else(|| {
            ready_at
                .contains_key(GATE_TARGET)
                .then(|| GATE_TARGET.to_string())
        })
        .or_else(|| {
            ready_at
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(n, _)| n.to_string())
        })
        .unwrap_or_default();
    let critical_path = critical_path(session, &rows, &gate);
    for r in &mut rows {
        r.critical = critical_path.contains(&r.name);
    }
    Timeline {
        title: format!("braid timeline: {} session, pid {}", log.face, log.pid),
        origin,
        span: end - origin,
        gate,
        critical_path,
        rows,
    }
}

/// From the gate back: each time, of the services the current one waits
/// for, the one that became ready last (no later than the current one
/// did). Listed first to last.
fn critical_path(session: &Session, rows: &[Row], gate: &str) -> Vec<String> {
    let ready: HashMap<&str, f64> = rows
        .iter()
        .filter_map(|r| r.ready.map(|t| (r.name.as_str(), t)))
        .collect();
    let mut path = Vec::new();
    let mut current = gate.to_string();
    if !ready.contains_key(current.as_str()) {
        return path;
    }
    while !path.contains(&current) {
        path.push(current.clone());
        let limit = ready[current.as_str()];
        let next = session
            .edges_from(&current)
            .filter(|e| ORDER_KINDS.contains(&e.kind.as_str()))
            .filter_map(|e| ready.get(e.to.as_str()).map(|t| (e.to.clone(), *t)))
            .filter(|(_, t)| *t <= limit + 1e-6)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((name, _)) => current = name,
            None => break,
        }
    }
    path.reverse();
    path
}

/// The text chart: a header line, an axis, one line per service
/// (`*` marks the critical path), a legend and the critical path.
pub fn text(t: &Timeline, width: usize) -> String {
    let name_w = t
        .rows
        .iter()
        .map(|r| escape_controls_str(&r.name).len())
        .max()
        .unwrap_or(4)
        .max(7)
        + 2;
    let cols = width.saturating_sub(name_w + 22).max(20);
    let span = t.span.max(0.001);
    let col_of = |s: f64| (((s / span) * cols as f64) as usize).min(cols - 1);
    let mut out = String::new();
    let _ = writeln!(out, "{} ({:.3} s shown)", t.title, t.span);
    // Axis: labels at the start, middle and end.
    let mut axis = vec![' '; cols];
    for (pos, label) in [
        (0, "0s".to_string()),
        (cols / 2, format!("{:.1}s", span / 2.0)),
        (cols.saturating_sub(1), format!("{span:.1}s")),
    ] {
        let start = if pos + label.len() > cols {
            cols - label.len()
        } else {
            pos
        };
        for (i, ch) in label.chars().enumerate() {
            if let Some(slot) = axis.get_mut(start + i) {
                *slot = ch;
            }
        }
    }
    let _ = writeln!(
        out,
        "{:<name_w$}|{}|  ready    restarts",
        "SERVICE",
        axis.iter().collect::<String>()
    );
    for row in &t.rows {
        let mut line = vec![' '; cols];
        for bar in &row.bars {
            let (a, b) = (col_of(bar.from), col_of(bar.to));
            for slot in &mut line[a..=b.max(a)] {
                *slot = bar.phase.glyph();
            }
        }
        for &r in &row.restarts {
            line[col_of(r)] = '!';
        }
        let mark = if row.critical { '*' } else { ' ' };
        let _ = writeln!(
            out,
            "{mark}{:<w$}|{}|  {:<7}  {}",
            escape_controls_str(&row.name),
            line.iter().collect::<String>(),
            row.ready.map_or("-".to_string(), |r| format!("{r:.3}s")),
            row.restarts.len(),
            w = name_w - 1
        );
    }
    let _ = writeln!(
        out,
        "legend: . waiting  - launched  # ready  ~ stopping  ! restart  * critical path"
    );
    if t.critical_path.is_empty() {
        let _ = writeln!(out, "critical path: none (nothing became ready)");
    } else {
        let _ = writeln!(
            out,
            "critical path to {}: {}",
            escape_controls_str(&t.gate),
            t.critical_path
                .iter()
                .map(|n| escape_controls_str(n))
                .collect::<Vec<_>>()
                .join(" -> ")
        );
    }
    out
}

pub fn run(args: &TimelineArgs) -> i32 {
    let g = match gather(&args.session) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("braid timeline: {e}");
            return 1;
        }
    };
    let Some(log) = g.logs.first() else {
        eprintln!(
            "braid timeline: no braid event log for {} (the timeline needs braid's supervisor; \
             runit's and dinit's own keep no history)",
            g.sources.join(", ")
        );
        return 1;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // A log of a session that has ended ends with its last change.
    let alive = i32::try_from(log.pid)
        .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    let end = if alive { now } else { 0.0 };
    let t = build(log, &g.session, end, args.to.as_deref());
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, super::svg::timeline(&t)) {
            eprintln!("braid timeline: {}: {e}", path.display());
            return 1;
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&t) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("braid timeline: {e}");
                return 1;
            }
        }
    } else {
        let width = args
            .width
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .unwrap_or(80);
        out!("{}", text(&t, width));
    }
    0
}
