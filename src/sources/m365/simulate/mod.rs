//! The simulated Microsoft 365 APIs: the OAuth2 token endpoint (secrets and
//! certificate assertions), Microsoft Graph and the Defender for Endpoint API.

mod assertion;
mod defender;
mod graph;

pub use defender::{paths as defender_paths, DefenderTenant};
pub use graph::{export_archive, paths as graph_paths, GraphTenant};

use crate::simulate::SimRouter;

/// Every Microsoft 365 route.
pub(crate) fn routes(router: SimRouter) -> SimRouter {
    defender::routes(graph::routes(router))
}
