//! What the benchmarks share: one machine-readable line per figure, which
//! `scripts/bench.sh` collects into its table, the size factor of a quick
//! run, and the peak memory of each stage.
//!
//! A figure line is tab-separated:
//! `@figure <name> <value> <unit> <target> <verdict>`, where `<target>` is
//! `<=N`, `>=N` or `-` (context, no target) and `<verdict>` is `met`,
//! `missed` or `-`. The human lines around it stay as they were.
#![allow(dead_code)]

/// What a figure is held against.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// At most this much (times, ratios to a floor, memory).
    AtMost(f64),
    /// At least this much (speed-ups).
    AtLeast(f64),
    /// Context only.
    None,
}

impl Target {
    /// Whether `value` meets the target (`None` for context figures).
    pub fn met(self, value: f64) -> Option<bool> {
        match self {
            Target::AtMost(t) => Some(value <= t),
            Target::AtLeast(t) => Some(value >= t),
            Target::None => None,
        }
    }
}

/// Print one figure line for `scripts/bench.sh`.
pub fn figure(name: &str, value: f64, unit: &str, target: Target) {
    let target_text = match target {
        Target::AtMost(t) => format!("<={t}"),
        Target::AtLeast(t) => format!(">={t}"),
        Target::None => "-".to_owned(),
    };
    let verdict = match target.met(value) {
        Some(true) => "met",
        Some(false) => "missed",
        None => "-",
    };
    println!("@figure\t{name}\t{value:.3}\t{unit}\t{target_text}\t{verdict}");
}

/// The size factor of this run: `AUDITPACK_BENCH_SCALE` (1 when unset),
/// e.g. 0.1 for the quick run of `scripts/bench.sh --quick`.
pub fn scale() -> f64 {
    std::env::var("AUDITPACK_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0)
}

/// `n` times the size factor, at least one.
pub fn scaled(n: usize) -> usize {
    ((n as f64 * scale()).round() as usize).max(1)
}

/// Bytes in a MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// Peak resident memory of this process since the last [`reset_peak`], in
/// bytes (`VmHWM` of `/proc/self/status`); `None` where there is no such
/// file.
pub fn peak_rss() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Start a new stage's peak from the memory in use now (Linux: `5` into
/// `/proc/self/clear_refs`). Returns whether it could.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Print a stage's peak memory, human and machine-readable, against
/// `target` bytes (or none).
pub fn report_peak(name: &str, label: &str, target: Option<f64>) {
    let Some(peak) = peak_rss() else {
        println!("  peak RSS {label}: not available here");
        return;
    };
    let mib = peak / MIB;
    match target {
        Some(t) => println!(
            "  peak RSS {label}: {mib:.0} MiB (target < {:.0} MiB: {})",
            t / MIB,
            if peak < t { "met" } else { "MISSED" }
        ),
        None => println!("  peak RSS {label}: {mib:.0} MiB"),
    }
    figure(
        name,
        mib,
        "MiB",
        target.map_or(Target::None, |t| Target::AtMost(t / MIB)),
    );
}

/// The value after `name` on the command line (`--orgs 20`), or `default`
/// when it is absent or does not parse.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The identity the benchmarks sign packages as.
pub const IDENTITY: &str = "bench@auditpack.example";

/// A new signing key in `dir`, its signer, and the verification options
/// that trust it alone.
pub fn signing(
    dir: &std::path::Path,
) -> Result<
    (
        auditpack::package::Signer,
        auditpack::package::VerifyOptions,
    ),
    String,
> {
    use auditpack::config::{KeySource, Signing};
    use auditpack::package::{generate_key, load_signer, VerifyOptions};

    let key = dir.join("signing_key");
    generate_key(&key, IDENTITY, None).map_err(|e| e.to_string())?;
    let signer = load_signer(&Signing {
        key: KeySource::File(key),
        passphrase: None,
        identity: IDENTITY.into(),
        tsa_url: None,
    })
    .map_err(|e| e.to_string())?;
    let allowed_signers = dir.join("allowed_signers");
    std::fs::write(
        &allowed_signers,
        signer.allowed_signers_line().map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let options = VerifyOptions {
        allowed_signers,
        identity: Some(IDENTITY.into()),
        ..VerifyOptions::default()
    };
    Ok((signer, options))
}
