//! Loading specs into the graph: names to ids, dependency links, cycle
//! checks, unloading and reloading.

use super::record::{Backlink, Edge, Record};
use super::{Engine, LoadError, ServiceId, State, Work};
use crate::spec::{DepKind, Kind, ServiceSpec};

impl Engine {
    /// Adds a service. Dependencies may name services not loaded yet: they
    /// become placeholders that cannot start until loaded.
    pub fn load(&mut self, spec: ServiceSpec) -> Result<ServiceId, LoadError> {
        spec.validate().map_err(LoadError::Invalid)?;
        let id = match self.by_name.get(&spec.name).copied() {
            Some(id) if self.rec(id).loaded => {
                return Err(LoadError::NotNow(format!(
                    "service {} is already loaded",
                    spec.name
                )))
            }
            Some(id) => {
                // A placeholder becomes the real thing; links to it stay.
                self.rec_mut(id).spec = spec;
                self.rec_mut(id).loaded = true;
                id
            }
            None => self.insert(spec, true),
        };
        if let Err(e) = self.link_declared(id) {
            self.unlink_declared(id);
            let r = self.rec_mut(id);
            r.loaded = false;
            return Err(e);
        }
        Ok(id)
    }

    /// Removes a stopped service that nothing depends on (ordering links
    /// from others are kept on a placeholder).
    pub fn unload(&mut self, id: ServiceId) -> Result<(), LoadError> {
        let r = self.rec(id);
        if r.state != State::Stopped || r.procs.main_alive() {
            return Err(LoadError::NotNow("service is not stopped".into()));
        }
        let has_dependents = r.dependents.iter().any(|b| self.edge(*b).kind.holds());
        if has_dependents {
            return Err(LoadError::NotNow("service has dependents".into()));
        }
        self.unlink_declared(id);
        let name = self.rec(id).spec.name.clone();
        let r = self.rec_mut(id);
        r.loaded = false;
        r.spec = ServiceSpec::new(name, Kind::Internal);
        Ok(())
    }

    /// Replaces a service's spec. A stopped service takes any change; a
    /// started one keeps its kind, and new hard dependencies must already
    /// be started.
    pub fn reload(&mut self, id: ServiceId, spec: ServiceSpec) -> Result<(), LoadError> {
        spec.validate().map_err(LoadError::Invalid)?;
        let r = self.rec(id);
        match r.state {
            State::Stopped => {}
            State::Started => {
                if std::mem::discriminant(&r.spec.kind) != std::mem::discriminant(&spec.kind) {
                    return Err(LoadError::NotNow(
                        "cannot change type of non-stopped service.".into(),
                    ));
                }
                for dep in spec.deps.iter().filter(|d| d.kind.is_hard()) {
                    let started = self
                        .by_name
                        .get(&dep.name)
                        .is_some_and(|d| self.rec(*d).state == State::Started);
                    if !started {
                        return Err(LoadError::NotNow(format!(
                            "cannot add non-started dependency '{}'.",
                            dep.name
                        )));
                    }
                }
            }
            State::Starting | State::Stopping => {
                return Err(LoadError::NotNow(
                    "cannot alter settings for service which is currently starting/stopping."
                        .into(),
                ))
            }
        }
        let old = std::mem::replace(&mut self.rec_mut(id).spec, spec);
        // Keep holds on dependencies that stay; release those that go.
        let old_holding: Vec<(ServiceId, DepKind)> = self
            .rec(id)
            .deps
            .iter()
            .filter(|e| e.holding)
            .map(|e| (e.to, e.kind))
            .collect();
        self.unlink_declared(id);
        if let Err(e) = self.link_declared(id) {
            self.unlink_declared(id);
            self.rec_mut(id).spec = old;
            self.link_declared(id)
                .expect("the previous spec was linked without a cycle");
            self.restore_holds(id, &old_holding);
            return Err(e);
        }
        self.restore_holds(id, &old_holding);
        if self.rec(id).state != State::Stopped {
            // New links of a running service acquire their targets now.
            for i in 0..self.rec(id).deps.len() {
                let e = &self.rec(id).deps[i];
                if e.kind.holds() && !e.holding {
                    let to = e.to;
                    self.rec_mut(id).deps[i].holding = true;
                    self.require(to);
                }
            }
            self.run_queue();
        }
        Ok(())
    }

    /// Adds one dependency link at run time (dinitctl add-dep / enable).
    pub fn add_dependency(
        &mut self,
        from: ServiceId,
        to: ServiceId,
        kind: DepKind,
    ) -> Result<(), LoadError> {
        if from == to {
            return Err(LoadError::NotNow(
                "a service cannot depend on itself".into(),
            ));
        }
        if self.edges_between(from, to).any(|e| e.kind == kind) {
            return Ok(());
        }
        if kind.is_hard()
            && self.rec(from).state != State::Stopped
            && self.rec(to).state != State::Started
        {
            return Err(LoadError::NotNow(
                "dependency is not started while the dependent runs".into(),
            ));
        }
        self.add_edge(from, to, kind);
        if let Some(path) = self.find_cycle(from) {
            self.remove_edge(from, to, kind);
            return Err(LoadError::Cycle(path));
        }
        // As dinit: a new link holds its target at once only if the
        // dependent is running and the link is hard or the target is up.
        let from_active = matches!(self.rec(from).state, State::Starting | State::Started);
        let to_up = matches!(self.rec(to).state, State::Starting | State::Started);
        if from_active && kind.holds() && (kind.is_hard() || to_up) {
            let e = self
                .rec_mut(from)
                .deps
                .iter_mut()
                .rev()
                .find(|e| e.to == to && e.kind == kind)
                .expect("edge was just added");
            e.holding = true;
            self.require(to);
            self.run_queue();
        }
        Ok(())
    }

    /// Removes one dependency link; returns whether there was one.
    pub fn remove_dependency(&mut self, from: ServiceId, to: ServiceId, kind: DepKind) -> bool {
        let holding = match self.edges_between(from, to).find(|e| e.kind == kind) {
            Some(e) => e.holding,
            None => return false,
        };
        self.remove_edge(from, to, kind);
        if holding {
            self.release(to);
        }
        self.push(Work::Transition(from));
        self.run_queue();
        true
    }

    fn insert(&mut self, spec: ServiceSpec, loaded: bool) -> ServiceId {
        let id = ServiceId(self.records.len() as u32);
        self.by_name.insert(spec.name.clone(), id);
        self.records.push(Box::new(Record::new(spec, loaded)));
        id
    }

    /// The id for `name`, creating a placeholder when it is unknown.
    fn id_or_placeholder(&mut self, name: &str) -> ServiceId {
        match self.by_name.get(name) {
            Some(id) => *id,
            None => self.insert(ServiceSpec::new(name, Kind::Internal), false),
        }
    }

    /// The edge a backlink points at.
    pub(super) fn edge(&self, b: Backlink) -> &Edge {
        &self.rec(b.from).deps[b.edge as usize]
    }

    pub(super) fn edge_mut(&mut self, b: Backlink) -> &mut Edge {
        &mut self.rec_mut(b.from).deps[b.edge as usize]
    }

    pub(super) fn edges_between(
        &self,
        from: ServiceId,
        to: ServiceId,
    ) -> impl Iterator<Item = &Edge> + '_ {
        self.rec(from).deps.iter().filter(move |e| e.to == to)
    }

    fn add_edge(&mut self, from: ServiceId, to: ServiceId, kind: DepKind) {
        let deps = &mut self.rec_mut(from).deps;
        let edge = deps.len() as u32;
        deps.push(Edge {
            to,
            kind,
            holding: false,
        });
        self.rec_mut(to).dependents.push(Backlink { from, edge });
    }

    fn remove_edge(&mut self, from: ServiceId, to: ServiceId, kind: DepKind) {
        if let Some(pos) = self
            .rec(from)
            .deps
            .iter()
            .position(|e| e.to == to && e.kind == kind)
        {
            self.remove_edge_at(from, pos);
        }
    }

    /// Removes `records[from].deps[pos]`, keeping every backlink exact: the
    /// last edge moves into the hole, so its backlink is renumbered.
    fn remove_edge_at(&mut self, from: ServiceId, pos: usize) {
        let removed = self.rec_mut(from).deps.swap_remove(pos);
        let target = self.rec_mut(removed.to);
        let gone = Backlink {
            from,
            edge: pos as u32,
        };
        if let Some(p) = target.dependents.iter().position(|b| *b == gone) {
            target.dependents.swap_remove(p);
            target.dependents_scanned = 0;
        }
        let last = self.rec(from).deps.len() as u32;
        if (pos as u32) < last {
            let moved_to = self.rec(from).deps[pos].to;
            let old = Backlink { from, edge: last };
            for b in self.rec_mut(moved_to).dependents.iter_mut() {
                if *b == old {
                    b.edge = pos as u32;
                }
            }
        }
    }

    /// Creates the links a service's spec declares. `before = X` is stored
    /// on X as a `Before` edge pointing back here: "X starts after us".
    fn link_declared(&mut self, id: ServiceId) -> Result<(), LoadError> {
        // The producer a service reads from gets an id now (a placeholder if
        // not loaded), so that the pipe between them can exist before it.
        if let Some(producer) = self.rec(id).spec.input_from.clone() {
            self.id_or_placeholder(&producer);
        }
        let deps = self.rec(id).spec.deps.clone();
        for dep in &deps {
            let other = self.id_or_placeholder(&dep.name);
            if other == id {
                continue;
            }
            match dep.kind {
                DepKind::Before => self.add_edge(other, id, DepKind::Before),
                kind => self.add_edge(id, other, kind),
            }
        }
        // Links are rarely added later; keep no spare capacity.
        self.rec_mut(id).deps.shrink_to_fit();
        let touched_before = deps.iter().any(|d| d.kind == DepKind::Before);
        if !self.rec(id).dependents.is_empty() || touched_before {
            if let Some(path) = self.find_cycle(id) {
                return Err(LoadError::Cycle(path));
            }
        }
        Ok(())
    }

    /// Removes the links this service's spec declared (its own outgoing
    /// edges, and the `Before` edges it placed on others).
    fn unlink_declared(&mut self, id: ServiceId) {
        // Before edges on this service were declared by others: keep them.
        let mut pos = 0;
        while pos < self.rec(id).deps.len() {
            if self.rec(id).deps[pos].kind == DepKind::Before {
                pos += 1;
            } else {
                self.remove_edge_at(id, pos);
            }
        }
        let befores: Vec<ServiceId> = self
            .rec(id)
            .dependents
            .iter()
            .filter(|b| self.edge(**b).kind == DepKind::Before)
            .map(|b| b.from)
            .collect();
        for other in befores {
            self.remove_edge(other, id, DepKind::Before);
        }
    }

    fn restore_holds(&mut self, id: ServiceId, held: &[(ServiceId, DepKind)]) {
        for (to, kind) in held {
            let kept = self
                .rec_mut(id)
                .deps
                .iter_mut()
                .find(|e| e.to == *to && e.kind == *kind && !e.holding);
            match kept {
                Some(e) => e.holding = true,
                None => self.release(*to),
            }
        }
    }

    /// A cycle through `start`, following "starts after" links, as the
    /// list of names along it (the first name repeated at the end).
    pub(super) fn find_cycle(&self, start: ServiceId) -> Option<Vec<String>> {
        let mut parent: std::collections::HashMap<ServiceId, ServiceId> =
            std::collections::HashMap::new();
        let mut stack = vec![start];
        let mut seen = std::collections::HashSet::new();
        while let Some(node) = stack.pop() {
            for e in &self.rec(node).deps {
                if e.to == start {
                    let mut path = vec![self.name(start).to_string()];
                    let mut back = vec![node];
                    let mut cur = node;
                    while cur != start {
                        cur = parent[&cur];
                        back.push(cur);
                    }
                    back.pop();
                    path.extend(back.iter().rev().map(|id| self.name(*id).to_string()));
                    path.push(self.name(start).to_string());
                    return Some(path);
                }
                if seen.insert(e.to) {
                    parent.insert(e.to, node);
                    stack.push(e.to);
                }
            }
        }
        None
    }
}
