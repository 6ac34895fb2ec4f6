//! What a chaos object's network fault resolves to, shared by `faults.rs`
//! (which collects the faults in effect) and `litmus.rs` (which reads
//! Litmus experiments and checks which ones the daemon applied).

use std::time::Duration;

use serde_json::Value;

use super::util;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ResolvedAction {
    Delay { latency: Duration, jitter: Duration },
    Loss { percent: f64 },
    Partition,
}

/// The id of a Litmus experiment's fault, as `ResolvedFault::id`.
pub(crate) fn litmus_id(engine: &Value, experiment: &str) -> String {
    format!(
        "chaosengine/{}/{}/{experiment}",
        util::namespace(engine),
        util::name(engine)
    )
}
