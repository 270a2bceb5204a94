//! The simulated Microsoft 365 APIs: the OAuth2 token endpoint (secrets and
//! certificate assertions), Microsoft Graph (security incidents included) and
//! the Defender for Endpoint API.

mod assertion;
mod defender;
mod graph;
mod incidents;

pub use defender::{paths as defender_paths, DefenderTenant};
pub use graph::{export_archive, paths as graph_paths, GraphTenant};
pub use incidents::paths as incident_paths;

use crate::simulate::SimRouter;

/// Every Microsoft 365 route.
pub(crate) fn routes(router: SimRouter) -> SimRouter {
    incidents::routes(defender::routes(graph::routes(router)))
}
