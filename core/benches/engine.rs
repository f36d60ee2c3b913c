//! Engine benchmark: start-all and stop-all of 10,000 services with no real
//! processes (launches succeed at once, stop signals end them at once), and
//! the engine's memory per service. Run with `cargo bench -p braid-core`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use braid_core::engine::{Command, Effect, Engine, Event, ExitStatus, Role, ServiceId, Time};
use braid_core::spec::{DepKind, ServiceSpec};
use nix::sys::signal::Signal;

/// Counts live heap bytes, to report the engine's state per service.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 10_000;

/// Answers every effect at once, as a world where launching and stopping
/// take no time.
fn drive(engine: &mut Engine, now: Time) {
    loop {
        let effects = engine.take_effects();
        if effects.is_empty() {
            return;
        }
        for effect in effects {
            match effect {
                Effect::Spawn { service, role, .. } => engine.event(
                    now,
                    Event::Spawned {
                        service,
                        role,
                        pid: 1000 + service.0 as i32,
                    },
                ),
                Effect::Signal {
                    service,
                    signal: Signal::SIGTERM,
                    ..
                } => engine.event(
                    now,
                    Event::Exited {
                        service,
                        role: Role::Main,
                        status: ExitStatus::Signaled(Signal::SIGTERM),
                    },
                ),
                _ => {}
            }
        }
    }
}

fn spec(i: usize) -> ServiceSpec {
    ServiceSpec::process(format!("service-{i}"), ["/bin/sleep", "1000"])
}

struct Figures {
    load: Duration,
    start: Duration,
    stop: Duration,
    bytes_per_service: usize,
}

fn run(shape: &str, build: impl Fn(usize) -> ServiceSpec, roots: &[usize]) -> Figures {
    let before = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut engine = Engine::new();
    for i in 0..N {
        engine.load(build(i)).expect("valid spec");
    }
    let load = t.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed) - before;

    let now = Time::ZERO;
    let t = Instant::now();
    for &r in roots {
        let id = ServiceId(r as u32);
        engine
            .command(now, id, Command::Start { pin: false })
            .expect("start");
        drive(&mut engine, now);
    }
    let start = t.elapsed();
    let started = engine
        .ids()
        .filter(|id| engine.status(*id).state == braid_core::engine::State::Started)
        .count();
    assert_eq!(started, N, "{shape}: all started");

    let t = Instant::now();
    engine.stop_all(now);
    drive(&mut engine, now);
    let stop = t.elapsed();
    assert!(engine.all_stopped(), "{shape}: all stopped");
    Figures {
        load,
        start,
        stop,
        bytes_per_service: bytes / N,
    }
}

fn main() {
    println!("engine, {N} simulated services (best of 5 runs; bytes/service = live heap of the engine, specs included)");
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>14}",
        "shape", "load ms", "start-all ms", "stop-all ms", "bytes/service"
    );
    type Shape = (&'static str, fn(usize) -> ServiceSpec, Vec<usize>);
    let shapes: Vec<Shape> = vec![
        (
            "chain (each needs previous)",
            |i| {
                let s = spec(i);
                if i == 0 {
                    s
                } else {
                    s.depends(DepKind::Hard, format!("service-{}", i - 1))
                }
            },
            vec![N - 1],
        ),
        (
            "fan-out (all need one)",
            |i| {
                let s = spec(i);
                if i == 0 {
                    s
                } else {
                    s.depends(DepKind::Hard, "service-0")
                }
            },
            (1..N).collect(),
        ),
        (
            "fan-in (one needs all)",
            |i| {
                let mut s = spec(i);
                if i == N - 1 {
                    for d in 0..N - 1 {
                        s = s.depends(DepKind::Hard, format!("service-{d}"));
                    }
                }
                s
            },
            vec![N - 1],
        ),
    ];
    for (name, build, roots) in shapes {
        let mut best: Option<Figures> = None;
        for _ in 0..5 {
            let f = run(name, build, &roots);
            best = Some(match best {
                Some(b) if b.start + b.stop <= f.start + f.stop => b,
                _ => f,
            });
        }
        let f = best.expect("five runs");
        println!(
            "{:<28} {:>10.2} {:>12.2} {:>12.2} {:>14}",
            name,
            f.load.as_secs_f64() * 1e3,
            f.start.as_secs_f64() * 1e3,
            f.stop.as_secs_f64() * 1e3,
            f.bytes_per_service
        );
    }
}
