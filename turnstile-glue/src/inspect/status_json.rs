//! `braid status [--json]`: every service of the session, either face, with
//! its state, readiness, pid, uptime, last exit and restart count. The JSON
//! field names are stable; `doc/STATUS-JSON.md` documents them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use braid_core::text::escape_controls_str;

use super::cli::{gather, SessionArgs};
use super::session::{Exit, Service};

/// Options of `braid status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Print JSON (see doc/STATUS-JSON.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The version of the JSON layout; bumped only when a field changes
/// meaning or goes away (new fields may be added without it).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct StatusDoc {
    pub format: u32,
    pub sources: Vec<String>,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub face: &'static str,
    /// `stopped`, `starting`, `started`, `stopping`, or `unknown` when no
    /// supervisor reported it.
    pub state: String,
    pub target: Option<String>,
    pub ready: bool,
    pub pid: Option<i64>,
    /// Unix time of the last state change.
    pub since: Option<f64>,
    /// Seconds since `since`, while started.
    pub uptime: Option<f64>,
    pub last_exit: Option<ExitJson>,
    pub restarts: Option<u32>,
    pub stop_reason: Option<String>,
    pub paused: bool,
    pub source: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitJson {
    Code(i64),
    Signal(String),
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One service's status as JSON fields.
pub fn service_status(s: &Service, now: f64) -> ServiceStatus {
    let live = s.live.clone().unwrap_or_default();
    let known = s.live.is_some();
    ServiceStatus {
        name: s.name.clone(),
        face: s.face.name(),
        state: if known {
            live.state.clone()
        } else {
            "unknown".into()
        },
        target: live.target.clone(),
        ready: live.ready,
        pid: live.pid,
        since: live.since,
        uptime: live
            .since
            .filter(|_| live.state == "started")
            .map(|t| ((now - t).max(0.0) * 1000.0).round() / 1000.0),
        last_exit: live.last_exit.as_ref().map(|e| match e {
            Exit::Code(c) => ExitJson::Code(*c),
            Exit::Signal(s) => ExitJson::Signal(s.clone()),
        }),
        restarts: live.restarts,
        stop_reason: live.stop_reason.clone(),
        paused: live.paused,
        source: s.source.as_ref().map(|p| p.display().to_string()),
    }
}

pub fn run(args: &StatusArgs) -> i32 {
    let g = match gather(&args.session) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("braid status: {e}");
            return 1;
        }
    };
    let now = now();
    let services: Vec<ServiceStatus> = g
        .session
        .services
        .iter()
        .map(|s| service_status(s, now))
        .collect();
    if args.json {
        let doc = StatusDoc {
            format: FORMAT_VERSION,
            sources: g.sources,
            services,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("braid status: {e}");
                return 1;
            }
        }
        return 0;
    }
    // Names come from files: their control bytes are shown escaped.
    let names: Vec<_> = services
        .iter()
        .map(|s| escape_controls_str(&s.name))
        .collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(7);
    outln!(
        "{:<width$}  {:<6}  {:<8}  {:>7}  {:>9}  {:>8}  LAST EXIT",
        "SERVICE",
        "FACE",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS"
    );
    for (s, name) in services.iter().zip(&names) {
        outln!(
            "{:<width$}  {:<6}  {:<8}  {:>7}  {:>9}  {:>8}  {}",
            name,
            s.face,
            s.state,
            s.pid.map_or("-".to_string(), |p| p.to_string()),
            s.uptime.map_or("-".to_string(), duration_text),
            s.restarts.map_or("-".to_string(), |r| r.to_string()),
            match &s.last_exit {
                None => "-".to_string(),
                Some(ExitJson::Code(c)) => format!("exit {c}"),
                Some(ExitJson::Signal(sig)) => sig.clone(),
            }
        );
    }
    0
}

/// `12s`, `3m04s`, `2h05m`, `4d03h`.
pub fn duration_text(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}
