//! `braid demo --engine`: a built-in example set of services run for real
//! in this process, with each state change shown as it happens.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use braid_core::engine::{Command, Engine, LogLine, Notification, ServiceEvent, State};
use braid_core::runtime::{event_log, Runtime};
use braid_core::spec::{DepKind, Output, RestartMode, ServiceSpec};

use super::DemoArgs;

fn sh(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec::process(name, ["/bin/sh", "-c", script])
}

/// The example: a chain (web needs cache needs db), a service that keeps
/// failing until its restart limit stops it, and a logger fed by a pipe.
fn example() -> Vec<ServiceSpec> {
    let mut db = sh("db", "exec sleep 3600");
    db.description = Some("a database (first of a chain)".into());
    let cache = sh("cache", "exec sleep 3600").depends(DepKind::Hard, "db");
    let web = sh("web", "exec sleep 3600").depends(DepKind::Hard, "cache");

    let mut flaky = sh(
        "flaky",
        "sleep 1; echo 'flaky: lost my connection' >&2; exit 1",
    );
    flaky.restart.mode = RestartMode::OnFailure;
    flaky.restart.delay = Duration::from_millis(500);
    flaky.output = Output::Inherit;

    let mut ticker = sh(
        "ticker",
        "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 1; done",
    );
    ticker.output = Output::Pipe;
    let mut logger = sh(
        "logger",
        "while IFS= read -r line; do echo \"    [logger] $line\"; done",
    );
    logger.input_from = Some("ticker".into());
    logger.output = Output::Inherit;
    let ticker = ticker.depends(DepKind::WaitsFor, "logger");

    vec![db, cache, web, flaky, logger, ticker]
}

fn describe(engine: &Engine, n: &Notification) -> Option<String> {
    let name = engine.name(n.service);
    let status = engine.status(n.service);
    let text = match n.event {
        ServiceEvent::Started => match status.pid {
            Some(pid) => format!("{name:<8} started (pid {pid})"),
            None => format!("{name:<8} started"),
        },
        ServiceEvent::Stopped => match status.last_exit {
            Some(exit) => format!("{name:<8} stopped ({exit})"),
            None => format!("{name:<8} stopped"),
        },
        ServiceEvent::FailedStart => format!("{name:<8} failed to start"),
        ServiceEvent::StartCancelled => format!("{name:<8} start cancelled"),
        ServiceEvent::StopCancelled => format!("{name:<8} stop cancelled"),
        ServiceEvent::ProcessChanged => {
            // Show relaunches of a running service; other process changes
            // are visible through the state changes above.
            if status.state == State::Starting && status.pid.is_some() && status.restarts > 0 {
                format!(
                    "{name:<8} relaunched (pid {}, restart {})",
                    status.pid.unwrap_or(-1),
                    status.restarts
                )
            } else {
                return None;
            }
        }
    };
    Some(text)
}

/// Runs the engine demo; returns the exit status.
pub fn run(args: &DemoArgs) -> std::io::Result<i32> {
    let mut engine = Engine::new();
    let specs = example();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for spec in specs {
        let name = spec.name.clone();
        engine
            .load(spec)
            .map_err(|e| std::io::Error::other(format!("loading {name}: {e:?}")))?;
    }
    let mut rt = Runtime::new(engine)?;
    event_log::install(&mut rt, event_log::Session::Demo);
    let start = Instant::now();
    println!(
        "braid demo: {} services in one process; {}",
        names.len(),
        match args.for_secs {
            Some(s) => format!("stopping after {s} s"),
            None => "Ctrl-C stops them all".to_string(),
        }
    );
    rt.add_listener(move |rt, n| {
        if let Some(text) = describe(rt.engine(), n) {
            println!("{} {text}", stamp_now(start));
        }
    });
    rt.set_log_sink(move |_engine: &Engine, line: &LogLine| {
        println!("{}   note: {}", stamp_now(start), line.text);
    });
    for name in &names {
        let id = rt.engine().lookup(name).expect("loaded above");
        if let Err(e) = rt.command(id, Command::Start { pin: false }) {
            println!("{name}: not started: {e:?}");
        }
    }
    let interrupted = Rc::new(Cell::new(false));
    let code = match args.for_secs {
        Some(secs) => {
            let limit = Duration::from_secs_f64(secs.max(0.0));
            let flag = interrupted.clone();
            rt.on_signal(nix::sys::signal::Signal::SIGINT, move |rt, _| {
                flag.set(true);
                rt.stop_all();
            })?;
            let flag = interrupted.clone();
            rt.run_until(limit, move |_| flag.get())?;
            println!("{} stopping every service", stamp_now(start));
            rt.stop_all();
            let stopped = rt.run_until(Duration::from_secs(30), |rt| {
                rt.engine().all_stopped() && rt.child_count() == 0
            })?;
            if stopped {
                0
            } else {
                1
            }
        }
        None => {
            rt.exit_when_all_stopped(0);
            rt.run()?
        }
    };
    println!("{} all stopped", stamp_now(start));
    Ok(code)
}

fn stamp_now(start: Instant) -> String {
    format!("{:>8.3}s", start.elapsed().as_secs_f64())
}
