//! Emulated Gateway API data plane (see the module docs of the submodules).

pub mod hostname;
pub mod matcher;
pub mod policy;
pub mod routing;
pub mod selector;
pub mod view;

pub use view::{ActiveFault, ClusterView, Direction, FaultAction};
