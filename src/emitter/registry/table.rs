//! Where the event names of one tenant lead: the routing table the registry
//! keeps per tenant, so that an emit looks only at its own tenant's
//! emitters, however many tenants share its name.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::Addr;

use crate::emitter::report::Reporter;
use crate::emitter::worker::Worker;
use crate::model::subscription::{covers, is_pattern};
use crate::model::Event;

/// Where an event name leads.
pub(super) struct Route {
    pub id: Arc<str>,
    pub worker: Addr<Worker>,
    pub reporter: Arc<Reporter>,
    /// The emitter's channels: an event sent to channels reaches it only if
    /// it shares one.
    pub channels: Arc<[Arc<str>]>,
}

/// One tenant's routes, by what each emitter is attached to.
#[derive(Default)]
pub(super) struct Table {
    /// By event name or pattern.
    routes: HashMap<Arc<str>, Vec<Route>>,
    /// The patterns among `routes`' keys (`*`, `order.*`), looked through on
    /// every emit; usually none or few.
    patterns: Vec<Arc<str>>,
}

impl Table {
    /// Routes events named (or matching) `subscription` to `route` too.
    pub fn add(&mut self, subscription: &Arc<str>, route: Route) {
        if is_pattern(subscription) && !self.routes.contains_key(subscription) {
            self.patterns.push(subscription.clone());
        }
        self.routes
            .entry(subscription.clone())
            .or_default()
            .push(route);
    }

    /// Stops routing `subscription` to emitter `id`.
    pub fn remove(&mut self, subscription: &Arc<str>, id: &str) {
        if let Some(routes) = self.routes.get_mut(subscription) {
            routes.retain(|r| *r.id != *id);
            if routes.is_empty() {
                self.routes.remove(subscription);
                self.patterns.retain(|p| p != subscription);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Emitter `id`'s route for `subscription`, to replace its worker.
    pub fn route_mut(&mut self, subscription: &str, id: &str) -> Option<&mut Route> {
        self.routes
            .get_mut(subscription)?
            .iter_mut()
            .find(|r| *r.id == *id)
    }

    /// The routes of every emitter whose names or patterns cover `event`,
    /// each once, and the metrics label of the event: its name if an emitter
    /// is attached to it, else the (first) pattern that covers it (patterns
    /// are as few as the emitters' subscriptions), else none.
    pub fn covering(&self, event: &Event) -> (Vec<&Route>, Option<Arc<str>>) {
        let exact = self.routes.get(event.name());
        let mut label = exact.map(|_| event.shared_name());
        if self.patterns.is_empty() {
            return (exact.into_iter().flatten().collect(), label);
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut covering = Vec::new();
        let by_pattern = self
            .patterns
            .iter()
            .filter(|pattern| covers(pattern, event.name()))
            .flat_map(|pattern| {
                label.get_or_insert_with(|| pattern.clone());
                self.routes.get(pattern).into_iter().flatten()
            });
        for route in exact.into_iter().flatten().chain(by_pattern) {
            if seen.insert(&route.id) {
                covering.push(route);
            }
        }
        (covering, label)
    }
}
