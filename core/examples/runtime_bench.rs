//! Measures the runtime with real processes: how fast it starts and stops
//! N services (`sleep` processes), and how often an idle loop wakes up.
//!
//! ```text
//! cargo run --release -p braid-core --example runtime_bench -- [N] [flat|chain]
//! ```
//!
//! `flat`: N independent services, each started by a command; `chain`: each
//! service depends on the previous one, and starting the last starts all.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use braid_core::engine::{Command, Engine, ServiceId, State};
use braid_core::runtime::Runtime;
use braid_core::spec::{DepKind, ServiceSpec};

const LIMIT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let count: usize = match args.next().map(|a| a.parse()) {
        None => 1000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: runtime_bench [N] [flat|chain]");
            return ExitCode::from(2);
        }
    };
    let chain = match args.next().as_deref() {
        None | Some("flat") => false,
        Some("chain") => true,
        Some(other) => {
            eprintln!("runtime_bench: unknown shape {other:?} (flat or chain)");
            return ExitCode::from(2);
        }
    };
    match run(count, chain) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runtime_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(count: usize, chain: bool) -> Result<(), String> {
    let mut engine = Engine::new();
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let mut spec = ServiceSpec::process(format!("s{i}"), ["sleep", "1000"]);
        if chain && i > 0 {
            spec = spec.depends(DepKind::Hard, format!("s{}", i - 1));
        }
        ids.push(engine.load(spec).map_err(|e| format!("load s{i}: {e:?}"))?);
    }
    let mut rt = Runtime::new(engine).map_err(|e| format!("runtime: {e}"))?;
    let all_in = |rt: &Runtime, ids: &[ServiceId], s: State| {
        ids.iter().all(|&id| rt.engine().status(id).state == s)
    };

    let begin = Instant::now();
    let to_start: &[ServiceId] = if chain { &ids[count - 1..] } else { &ids };
    for &id in to_start {
        rt.command(id, Command::Start { pin: false })
            .map_err(|e| format!("start: {e:?}"))?;
    }
    let started = rt
        .run_until(LIMIT, |rt| all_in(rt, &ids, State::Started))
        .map_err(|e| e.to_string())?;
    if !started {
        return Err(format!("not all {count} services started within {LIMIT:?}"));
    }
    report("started", count, begin.elapsed());

    let before = rt.stats().wakeups;
    rt.run_until(Duration::from_secs(1), |_| false)
        .map_err(|e| e.to_string())?;
    println!(
        "idle: {} wake-up(s) in 1 s with {} processes running",
        rt.stats().wakeups - before,
        rt.child_count()
    );

    let begin = Instant::now();
    rt.stop_all();
    let stopped = rt
        .run_until(LIMIT, |rt| {
            rt.engine().all_stopped() && rt.child_count() == 0
        })
        .map_err(|e| e.to_string())?;
    if !stopped {
        return Err(format!("not all {count} services stopped within {LIMIT:?}"));
    }
    report("stopped", count, begin.elapsed());
    let stats = rt.stats();
    println!(
        "spawned {}, reaped {}, loop wake-ups {}",
        stats.spawned, stats.reaped, stats.wakeups
    );
    Ok(())
}

fn report(what: &str, count: usize, took: Duration) {
    println!(
        "{what} {count} services in {:.1} ms ({:.0} per second)",
        took.as_secs_f64() * 1000.0,
        count as f64 / took.as_secs_f64()
    );
}
