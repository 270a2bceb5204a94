//! The patch-status vocabulary RMMs report per device (Datto RMM's words,
//! onto which RMM spec files map their own): what a status says about
//! installs, and whether it says patches are pending without their ages.

/// What a patch status (Datto's words, also used by RMM specs) says about
/// installs: `InstallError` failing, `FullyPatched` not; others say nothing.
pub fn install_failing(status: &str) -> Option<bool> {
    match status {
        "InstallError" => Some(true),
        "FullyPatched" => Some(false),
        _ => None,
    }
}

/// Patch statuses (Datto's words, also used by RMM specs) that say patches
/// are pending without listing them or their ages.
pub fn pending_without_age(status: &str) -> bool {
    matches!(
        status,
        "ApprovedPending" | "RebootRequired" | "InstallError"
    )
}
