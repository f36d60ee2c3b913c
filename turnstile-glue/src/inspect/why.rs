//! `braid why SERVICE`: why a service is in its state — which dependency
//! failed (followed down to the one that failed by itself), which restart
//! limit was hit, the last exit status and the last lines of its log.

use std::collections::HashSet;
use std::fmt::Write as _;

use braid_core::text::escape_controls_str;

use super::cli::{gather, Gathered, SessionArgs};
use super::log::recent;
use super::session::Service;

/// Options of `braid why`.
#[derive(Debug, clap::Args)]
pub struct WhyArgs {
    pub service: String,
    #[command(flatten)]
    pub session: SessionArgs,
    /// How many log lines to show.
    #[arg(short = 'n', long = "lines", default_value_t = 5)]
    pub lines: usize,
}

/// Kinds whose failure fails the dependent.
const FAILING_KINDS: &[&str] = &["hard", "milestone", "prepared-by"];

fn reason_text(reason: &str) -> &'static str {
    match reason {
        "dependency-failed" => "a dependency failed or stopped",
        "dependency-restarted" => "a dependency restarted",
        "failed" => "it failed to start (its process exited before it was ready, or its start command failed)",
        "exec-failed" => "its program could not be launched",
        "timed-out" => "it did not become ready within its start timeout",
        "terminated" => "its process exited after it had started",
        _ => "it was stopped",
    }
}

/// The explanation, as lines.
pub fn explain(
    g: &Gathered,
    socket: Option<&std::path::Path>,
    name: &str,
    lines: usize,
) -> Result<String, String> {
    let mut out = String::new();
    let mut seen = HashSet::new();
    explain_one(g, socket, name, lines, 0, &mut seen, &mut out)?;
    Ok(out)
}

fn explain_one(
    g: &Gathered,
    socket: Option<&std::path::Path>,
    name: &str,
    lines: usize,
    depth: usize,
    seen: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), String> {
    let pad = "  ".repeat(depth);
    let s: &Service = g
        .session
        .find(name)
        .ok_or_else(|| format!("no service called {name:?}"))?;
    if !seen.insert(name.to_string()) {
        return Ok(());
    }
    // Names, exit text and log lines come from files and services: their
    // control bytes are shown escaped.
    let label = escape_controls_str(name);
    let Some(live) = &s.live else {
        let _ = writeln!(
            out,
            "{pad}{label}: no supervisor reports it (not running or not loaded)"
        );
        return Ok(());
    };
    let restarts = live.restarts.map_or(String::new(), |r| {
        format!(", {r} restart{}", if r == 1 { "" } else { "s" })
    });
    match live.state.as_str() {
        "started" => {
            let pid = live.pid.map_or(String::new(), |p| format!(", pid {p}"));
            let _ = writeln!(out, "{pad}{label} is started{pid}{restarts}.");
        }
        "starting" => {
            let waiting = needed_not_started(g, name, true);
            let what = if !waiting.is_empty() {
                let waiting: Vec<_> = waiting.iter().map(|w| escape_controls_str(w)).collect();
                format!("waiting for {}", waiting.join(", "))
            } else if live.pid.is_some() {
                "its process runs and has not reported readiness yet".to_string()
            } else {
                "waiting to launch (restart delay)".to_string()
            };
            let _ = writeln!(out, "{pad}{label} is starting: {what}{restarts}.");
        }
        state => {
            let reason = live.stop_reason.as_deref().unwrap_or("normal");
            let wanted = live.target.as_deref() == Some("started");
            let why = if reason == "normal" && wanted {
                "it is wanted up and will be restarted"
            } else {
                reason_text(reason)
            };
            let _ = writeln!(out, "{pad}{label} is {state}: {why}{restarts}.");
        }
    }
    if let Some(exit) = &live.last_exit {
        let _ = writeln!(out, "{pad}  last exit: {exit}");
    }
    if let (Some(r), Some((count, secs))) = (live.restarts, s.detail.restart_limit) {
        if live.state == "stopped"
            && count > 0
            && r >= count
            && live.stop_reason.as_deref() != Some("normal")
        {
            let _ = writeln!(
                out,
                "{pad}  restart limit hit: at most {count} restarts within {secs} s (restart-limit-count / restart-limit-interval)"
            );
        }
    }
    if live.state != "started" {
        // The dependencies that are not up, and why.
        let down = needed_not_started(g, name, false);
        for dep in down {
            let kind = g
                .session
                .edges_from(name)
                .find(|e| e.to == dep)
                .map_or("", |e| e.kind.as_str());
            let shown = escape_controls_str(&dep);
            let _ = writeln!(out, "{pad}  needs {shown} ({kind}), which is not started:");
            if g.session.find(&dep).is_none() {
                let _ = writeln!(out, "{pad}    {shown} does not exist");
            } else {
                explain_one(g, socket, &dep, lines, depth + 2, seen, out)?;
            }
        }
    }
    if lines > 0 {
        if let Ok((from, log)) = recent(g, socket, s, lines) {
            if !log.is_empty() {
                let from = escape_controls_str(&from);
                let _ = writeln!(out, "{pad}  last log lines ({from}):");
                for l in log {
                    let _ = writeln!(out, "{pad}    {}", escape_controls_str(&l));
                }
            }
        }
    }
    Ok(())
}

/// The services `name` needs (hard, milestone, prepared-by; with
/// `waits`, waits-for too) that are not started, missing ones included.
fn needed_not_started(g: &Gathered, name: &str, waits: bool) -> Vec<String> {
    g.session
        .edges_from(name)
        .filter(|e| FAILING_KINDS.contains(&e.kind.as_str()) || (waits && e.kind == "waits-for"))
        .filter(|e| {
            !g.session
                .find(&e.to)
                .and_then(|d| d.live.as_ref())
                .is_some_and(|l| l.state == "started")
        })
        .map(|e| e.to.clone())
        .collect()
}

pub fn run(args: &WhyArgs) -> i32 {
    let g = match gather(&args.session) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("braid why: {e}");
            return 1;
        }
    };
    match explain(
        &g,
        args.session.socket.as_deref(),
        &args.service,
        args.lines,
    ) {
        Ok(text) => {
            out!("{text}");
            0
        }
        Err(e) => {
            eprintln!("braid why: {e}");
            1
        }
    }
}
