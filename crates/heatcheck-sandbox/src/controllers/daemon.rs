//! The chaos daemon: what Chaos Mesh's chaos-daemon (or a Litmus experiment
//! job) does on the node. The controllers only decide which faults should be
//! in effect; each pass here hands exactly those faults to the data plane
//! (synchronously, through [`ControllerConfig::apply_faults`]) and only then
//! reports them injected or recovered in the chaos objects' status. So a
//! client that sees `AllInjected=True` (or a Litmus experiment `Running`)
//! finds the fault already in effect, and the same for recovery.
//!
//! [`ControllerConfig::apply_faults`]: super::ControllerConfig::apply_faults

use tokio::time::Instant;

use super::chaosmesh::{self, confirm_network_chaos};
use super::faults::{chaos_mesh_action, faults_of, network_chaos_id, wants_run};
use super::litmus::{self, confirm_engine};
use super::util::{self, key};
use super::{FaultHook, Reconciler, Scope};
use crate::registry::ResKey;
use crate::store::Store;

pub(crate) struct ChaosDaemon {
    apply: Option<FaultHook>,
}

impl ChaosDaemon {
    pub(crate) fn new(apply: Option<FaultHook>) -> Self {
        ChaosDaemon { apply }
    }
}

impl Reconciler for ChaosDaemon {
    fn watches(&self, key: &ResKey) -> bool {
        // Faults depend on chaos objects only (records name their pods); pod
        // changes reach the data plane through the sandbox's own sync.
        key.group == chaosmesh::GROUP || key.group == litmus::GROUP
    }

    fn global(&self) -> bool {
        // The data plane takes the whole fault set at once.
        true
    }

    fn reconcile(&mut self, store: &Store, _scope: &Scope) -> Option<Instant> {
        // One snapshot for both the faults and the status writes: a write
        // based on it fails (409) if the object changed meanwhile, and that
        // change is an event that brings another pass.
        let ncs = util::list(store, &key(chaosmesh::GROUP, "networkchaos"), None);
        let engines = util::list(store, &key(litmus::GROUP, "chaosengines"), None);
        let faults = faults_of(&ncs, &engines);
        // Always re-applied (not only on change): the data plane may have
        // been rebuilt meanwhile from a newer read of the store.
        if let Some(apply) = &self.apply {
            apply(&faults);
        }
        let applied: Vec<String> = faults.into_iter().map(|f| f.id).collect();
        for nc in &ncs {
            if util::is_terminating(nc) {
                continue;
            }
            // A NetworkChaos action the data plane does not model needs
            // nothing applied.
            let done = wants_run(nc)
                && (applied.contains(&network_chaos_id(nc)) || chaos_mesh_action(nc).is_none());
            if let Some(status) = confirm_network_chaos(nc, done) {
                util::write_status(store, &key(chaosmesh::GROUP, "networkchaos"), nc, status);
            }
        }
        for engine in &engines {
            if let Some(status) = confirm_engine(engine, &applied) {
                util::write_status(store, &key(litmus::GROUP, "chaosengines"), engine, status);
            }
        }
        None
    }
}
