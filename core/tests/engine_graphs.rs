//! Generated graphs of 10,000 services in the simulated world, checked
//! against invariants rather than fixed answers.

use std::collections::HashMap;
use std::time::Duration;

use braid_core::engine::sim::{Behaviour, World};
use braid_core::engine::{Command, ServiceEvent, State};
use braid_core::spec::{DepKind, ServiceSpec};

const N: usize = 10_000;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Service `i`'s dependencies, by index; every edge points to a lower
/// index, so the graph has no cycle.
type Graph = Vec<Vec<(usize, DepKind)>>;

fn chain(n: usize) -> Graph {
    (0..n)
        .map(|i| {
            if i == 0 {
                vec![]
            } else {
                vec![(i - 1, DepKind::Hard)]
            }
        })
        .collect()
}

/// One service that everything else needs.
fn fan_out(n: usize) -> Graph {
    (0..n)
        .map(|i| {
            if i == 0 {
                vec![]
            } else {
                vec![(0, DepKind::Hard)]
            }
        })
        .collect()
}

/// Layers of diamonds: each service needs two of the layer below.
fn diamonds(n: usize) -> Graph {
    let width = 50;
    (0..n)
        .map(|i| {
            if i < width {
                vec![]
            } else {
                let below = i - width;
                let other = (i / width - 1) * width + (i + 1) % width;
                vec![(below, DepKind::Hard), (other, DepKind::Hard)]
            }
        })
        .collect()
}

/// A random DAG with every dependency kind.
fn random(n: usize, seed: u64) -> Graph {
    let mut rng = Rng(seed);
    let kinds = [
        DepKind::Hard,
        DepKind::Hard,
        DepKind::Milestone,
        DepKind::WaitsFor,
        DepKind::Soft,
        DepKind::After,
        DepKind::Before,
    ];
    (0..n)
        .map(|i| {
            if i == 0 {
                return vec![];
            }
            let count = rng.below(4);
            let mut deps: Vec<(usize, DepKind)> = (0..count)
                .map(|_| (rng.below(i), kinds[rng.below(kinds.len())]))
                .collect();
            deps.sort_by_key(|d| d.0);
            deps.dedup_by_key(|d| d.0);
            deps
        })
        .collect()
}

fn name(i: usize) -> String {
    format!("s{i}")
}

fn build(graph: &Graph) -> World {
    let mut w = World::new();
    for (i, deps) in graph.iter().enumerate() {
        let mut spec = ServiceSpec::process(name(i), ["sleep", "1000"]);
        for &(d, kind) in deps {
            // `before` is declared by the earlier service about the later
            // one; declare it from here as `after` on the other side.
            let kind = if kind == DepKind::Before {
                DepKind::After
            } else {
                kind
            };
            spec = spec.depends(kind, name(d));
        }
        w.load(spec);
    }
    w
}

/// Replays notifications and checks that nothing reached Started while one
/// of its hard dependencies was not started.
fn check_start_order(w: &World, graph: &Graph) {
    let index: HashMap<String, usize> = (0..graph.len()).map(|i| (name(i), i)).collect();
    let mut started = vec![false; graph.len()];
    for seen in &w.seen {
        let i = index[&seen.service];
        match seen.event {
            ServiceEvent::Started => {
                for &(d, kind) in &graph[i] {
                    if kind.is_hard() {
                        assert!(
                            started[d],
                            "{} started before its hard dependency {}",
                            name(i),
                            name(d)
                        );
                    }
                }
                started[i] = true;
            }
            ServiceEvent::Stopped => started[i] = false,
            _ => {}
        }
    }
}

fn start_all_then_stop_all(graph: &Graph) {
    let mut w = build(graph);
    // Start from the top: the last service, then every one.
    w.cmd(&name(graph.len() - 1), Command::Start { pin: false })
        .unwrap();
    for i in 0..graph.len() {
        w.cmd(&name(i), Command::Start { pin: false }).unwrap();
    }
    assert!(w.settle(Duration::from_secs(60)));
    for i in 0..graph.len() {
        assert_eq!(w.state(&name(i)), State::Started, "{}", name(i));
    }
    check_start_order(&w, graph);
    assert_eq!(w.double_spawns, 0, "a main process was spawned twice");
    assert_eq!(w.spawns, graph.len(), "each service spawned exactly once");
    w.stop_all();
    assert!(w.settle(Duration::from_secs(60)));
    assert!(w.engine.all_stopped());
    assert_eq!(w.running_count(), 0);
}

#[test]
fn chain_of_ten_thousand() {
    start_all_then_stop_all(&chain(N));
}

#[test]
fn fan_out_of_ten_thousand() {
    start_all_then_stop_all(&fan_out(N));
}

#[test]
fn diamonds_of_ten_thousand() {
    start_all_then_stop_all(&diamonds(N));
}

#[test]
fn random_graphs_of_ten_thousand() {
    for seed in [1, 2, 3] {
        start_all_then_stop_all(&random(N, seed));
    }
}

#[test]
fn stopping_the_root_of_a_chain_stops_all_of_it_in_order() {
    let graph = chain(N);
    let mut w = build(&graph);
    w.cmd(&name(N - 1), Command::Start { pin: false }).unwrap();
    w.seen.clear();
    w.cmd(
        &name(0),
        Command::Stop {
            pin: false,
            gentle: false,
        },
    )
    .unwrap();
    assert!(w.settle(Duration::from_secs(60)));
    let stopped: Vec<String> = w
        .seen
        .iter()
        .filter(|s| s.event == ServiceEvent::Stopped)
        .map(|s| s.service.clone())
        .collect();
    let expected: Vec<String> = (0..N).rev().map(name).collect();
    assert_eq!(stopped, expected);
}

/// Failure reaches exactly the services that need a failed one through
/// hard or milestone links, transitively, and nothing else.
#[test]
fn failure_reaches_exactly_the_hard_dependents() {
    for seed in [7, 8] {
        let graph = random(N, seed);
        let mut rng = Rng(seed * 31 + 1);
        let fails: Vec<bool> = (0..N).map(|_| rng.below(50) == 0).collect();
        let mut w = build(&graph);
        for (i, f) in fails.iter().enumerate() {
            if *f {
                w.behave(
                    &name(i),
                    Behaviour {
                        exec_fails: true,
                        ..Default::default()
                    },
                );
            }
        }
        for i in 0..N {
            w.cmd(&name(i), Command::Start { pin: false }).unwrap();
        }
        assert!(w.settle(Duration::from_secs(60)));
        // Expected: up unless it fails itself or a hard/milestone
        // dependency is not up (dependencies have lower indexes).
        let mut up = vec![false; N];
        for i in 0..N {
            up[i] = !fails[i]
                && graph[i]
                    .iter()
                    .all(|&(d, kind)| !(kind.is_hard() || kind == DepKind::Milestone) || up[d]);
        }
        for (i, is_up) in up.iter().enumerate() {
            let want = if *is_up {
                State::Started
            } else {
                State::Stopped
            };
            assert_eq!(w.state(&name(i)), want, "{} (seed {seed})", name(i));
        }
        check_start_order(&w, &graph);
        assert_eq!(w.double_spawns, 0);
        w.stop_all();
        assert!(w.settle(Duration::from_secs(60)));
        assert!(w.engine.all_stopped());
    }
}
