//! Command-line definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Collect, judge and package compliance evidence for co-managed IT.
#[derive(Debug, Parser)]
#[command(name = "auditpack", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Progress and logs on standard error: `auto` (live progress lines on a
    /// terminal, plain log lines otherwise), `text` or `json` (one JSON
    /// object per line). Default: $AUDITPACK_LOG_FORMAT, else auto. Filter
    /// log lines with AUDITPACK_LOG (or RUST_LOG), e.g. `warn`.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["auto", "text", "json"])]
    pub log_format: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect evidence, evaluate controls, write reports and a signed package.
    Run {
        /// The organisation's config file.
        #[arg(long, default_value = "auditpack.toml")]
        config: PathBuf,
        /// Judge ages and inactivity at this instant (RFC 3339) instead of now.
        #[arg(long)]
        as_of: Option<String>,
        /// Also write SHA-512 manifests (`--algorithm sha512`; SHA-256 is always written).
        #[arg(long, value_parser = ["sha256", "sha512"])]
        algorithm: Vec<String>,
    },
    /// Many organisations from one fleet file (an MSP's clients).
    Fleet {
        /// What to do with the fleet.
        #[command(subcommand)]
        action: FleetAction,
    },
    /// Package a run folder again (signed and timestamped as the config says),
    /// when its package was lost or could not be made.
    Package {
        /// The run folder (holding run.json).
        run: PathBuf,
        /// The organisation's config file (store and signing).
        #[arg(long, default_value = "auditpack.toml")]
        config: PathBuf,
        /// Also write SHA-512 manifests (`--algorithm sha512`; SHA-256 is always written).
        #[arg(long, value_parser = ["sha256", "sha512"])]
        algorithm: Vec<String>,
    },
    /// Run everything on the built-in demo organisation, against a local simulator.
    Demo {
        /// Where to write the config, key, runs and packages.
        #[arg(long, default_value = "auditpack-demo")]
        out: PathBuf,
        /// Run a small fleet of client organisations instead (`auditpack fleet run`).
        #[arg(long)]
        fleet: bool,
    },
    /// Re-derive facts and results of a run folder from its raw evidence.
    Evaluate {
        /// The run folder (holding run.json).
        run: PathBuf,
    },
    /// Render reports of a run folder from its results, run.json and custody log.
    Report {
        /// The run folder (holding run.json).
        run: PathBuf,
        /// Formats to write, comma-separated: html, pdf, csv, json, oscal.
        #[arg(long, value_delimiter = ',', default_value = "html,pdf,csv,json,oscal")]
        format: Vec<String>,
    },
    /// Verify a package: hashes, completeness, custody, signature and timestamp.
    Verify {
        /// The package: a folder, a .zip read in place (never unpacked), or
        /// `s3://bucket/key.zip` read in place with ranged reads.
        package: PathBuf,
        /// For an `s3://` package: the config whose `[store_s3]` says how to
        /// reach the store (endpoint, region, credentials).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The auditor's allowed_signers file (never one from inside the package).
        #[arg(long)]
        allowed_signers: PathBuf,
        /// The signer identity to require.
        #[arg(long)]
        identity: Option<String>,
        /// PEM certificates of the Time-Stamp Authorities you trust: the
        /// package must then carry an RFC 3161 timestamp chaining to one.
        #[arg(long, value_name = "PEM")]
        tsa_ca: Option<PathBuf>,
        /// Also re-derive facts and results from the raw evidence and report
        /// every difference from the packaged results.
        #[arg(long)]
        reevaluate: bool,
    },
    /// Describe this machine as an endpoint report (JSON, schema
    /// collectors/endpoint/schema/endpoint-report-v1.schema.json).
    Probe {
        /// Write the report to this file (atomically) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate an OpenSSH Ed25519 signing key and its allowed_signers line.
    Keygen {
        /// Where to write the private key (the public key goes beside it as .pub).
        #[arg(long)]
        out: PathBuf,
        /// The signer identity (e.g. compliance@msp.example).
        #[arg(long)]
        identity: String,
        /// Encrypt the key with the passphrase in this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
    /// List the controls of the catalogs with their kind and owner, or show one.
    Controls {
        /// Show one control instead of listing.
        #[command(subcommand)]
        action: Option<ControlsAction>,
        /// Only this framework (hipaa, hipaa-2025-proposed, pci-dss, soc2).
        #[arg(long, global = true)]
        framework: Option<String>,
        /// Only controls owned by internal, msp, shared or unassigned.
        #[arg(long)]
        owner: Option<String>,
        /// Ownership template to apply (default co-managed-default, or the config's).
        #[arg(long, global = true)]
        ownership: Option<String>,
        /// Take ownership, overrides, thresholds and frameworks from this config.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// List a run's failing items by responsible party, with the exact users and devices.
    Gaps {
        /// The run folder (or package folder).
        run: PathBuf,
        /// Only the gaps of internal, msp, shared (controls owned jointly) or unassigned.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List the documents each manual or hybrid control still needs, with
    /// its owner and the sidecar to write, from the config's manual folders;
    /// or write a sidecar template beside a document.
    Documents {
        /// Write a sidecar template instead of listing.
        #[command(subcommand)]
        action: Option<DocumentsAction>,
        /// The organisation's config file (frameworks, ownership, manual folders).
        #[arg(long, default_value = "auditpack.toml", global = true)]
        config: PathBuf,
        /// Only this framework.
        #[arg(long)]
        framework: Option<String>,
        /// Only controls owned by internal, msp, shared or unassigned.
        #[arg(long)]
        owner: Option<String>,
    },
    /// The object store of `store = "s3://..."`: list packages with their
    /// retention, download one, read the run summaries.
    Store {
        /// What to do.
        #[command(subcommand)]
        action: StoreAction,
        /// The config (organisation's or fleet's) naming the store and `[store_s3]`.
        #[arg(long, default_value = "auditpack.toml", global = true)]
        config: PathBuf,
    },
    /// Print ready-to-install units that run a fleet (or one organisation)
    /// every night: a systemd service and timer, a crontab line, or a
    /// Kubernetes CronJob of an Indexed Job with one pod per shard.
    Schedule {
        /// systemd, cron or kubernetes.
        #[arg(value_parser = ["systemd", "cron", "kubernetes"])]
        scheduler: String,
        /// The fleet file (`[fleet]`), or one organisation's auditpack.toml.
        #[arg(long, default_value = "fleet.toml")]
        config: PathBuf,
        /// Time of day to start, HH:MM.
        #[arg(long, default_value = "02:00")]
        at: String,
        /// IANA time zone of --at (systemd, kubernetes; default: the machine's, or UTC on Kubernetes).
        #[arg(long)]
        time_zone: Option<String>,
        /// Longest random delay after --at, in minutes (systemd `RandomizedDelaySec=`).
        #[arg(long, default_value_t = 30)]
        randomized_delay: u32,
        /// The auditpack binary (on the host, or in the image for kubernetes).
        #[arg(long, default_value = "/usr/local/bin/auditpack")]
        binary: String,
        /// The user runs are done as (systemd, cron).
        #[arg(long, default_value = "auditpack")]
        user: String,
        /// Pods of the Kubernetes Job, pod I running shard I/N of the fleet.
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// Container image with auditpack (kubernetes).
        #[arg(long)]
        image: Option<String>,
        /// Kubernetes namespace (default: the current one).
        #[arg(long)]
        namespace: Option<String>,
        /// Size of the store's PersistentVolumeClaim (kubernetes).
        #[arg(long, default_value = "50Gi")]
        storage: String,
        /// Write the unit files into this folder instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The runs of an organisation (or of every organisation of a fleet):
    /// counts by status and owner and what changed; or rebuild the index.
    History {
        /// Rebuild the index from the summaries in the store.
        #[command(subcommand)]
        action: Option<HistoryAction>,
        /// An organisation config, or a fleet file (`[fleet] store`).
        #[arg(long, default_value = "auditpack.toml", global = true)]
        config: PathBuf,
        /// Only this organisation (its name, or its folder in a fleet store).
        #[arg(long)]
        org: Option<String>,
        /// Only runs finished on or after this date or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per run (JSON Lines) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// An organisation's KPI series over its runs, as CSV or JSON (for BI tools).
    Kpis {
        /// An organisation config, or a fleet file with --org.
        #[arg(long, default_value = "auditpack.toml")]
        config: PathBuf,
        /// The organisation (its name, or its folder in a fleet store).
        #[arg(long)]
        org: Option<String>,
        /// Output format.
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
        /// Only runs judged on or after this date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only runs judged on or before this date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
    },
    /// The quarterly business review of one organisation: HTML and A4 PDF.
    Qbr {
        /// An organisation config, or a fleet file with --org.
        #[arg(long, default_value = "auditpack.toml")]
        config: PathBuf,
        /// The organisation (its name, or its folder in a fleet store).
        #[arg(long)]
        org: Option<String>,
        /// The quarter, e.g. 2026Q4.
        #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
        quarter: Option<String>,
        /// First day of the period (YYYY-MM-DD), with --to.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last day of the period (YYYY-MM-DD, included), with --from.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// Where to write qbr-<period>.html and .pdf.
        #[arg(long)]
        out: PathBuf,
    },
    /// A static site over a fleet's history: posture, trends, regressions, worst gaps.
    Dashboard {
        /// The fleet file.
        #[arg(long, default_value = "fleet.toml")]
        config: PathBuf,
        /// The folder to write (index.html is its entry page).
        #[arg(long)]
        out: PathBuf,
        /// A last run older than this many hours is overdue.
        #[arg(long, default_value_t = 36)]
        overdue_hours: i64,
        /// Also write each organisation's review of the current quarter.
        #[arg(long)]
        with_qbr: bool,
        /// Build as of this instant (RFC 3339) instead of now.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The alerts not delivered: queued ones (the next run tries again) and
    /// failed ones (refused for good or given up); or send failed ones again.
    Alerts {
        /// Send failed alerts again.
        #[command(subcommand)]
        action: Option<AlertsAction>,
        /// An organisation config, or a fleet file (its own summaries, or an
        /// organisation's alerts with --org).
        #[arg(long, default_value = "auditpack.toml", global = true)]
        config: PathBuf,
        /// The organisation of a fleet file (its name, or its folder in the store).
        #[arg(long, global = true)]
        org: Option<String>,
    },
    /// Compare two runs: new failures, fixed controls, status and failing-subject changes.
    Diff {
        /// The earlier run folder (or package folder).
        run_a: PathBuf,
        /// The later run folder (or package folder).
        run_b: PathBuf,
    },
}

/// `auditpack fleet` subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// Run every organisation of the fleet (or those picked) concurrently,
    /// each as `auditpack run` does, into `<store>/<organisation>/`, and end
    /// with one table: organisation, result, controls failing, package.
    Run {
        /// The fleet file (`[fleet]` with name, store, concurrency, include).
        #[arg(long, default_value = "fleet.toml")]
        config: PathBuf,
        /// Only this organisation, by name or store folder (repeat for several).
        #[arg(long = "org", value_name = "NAME")]
        organisations: Vec<String>,
        /// Only shard I of N (0-based): a stable share of the organisations
        /// by rendezvous hashing of their names, for N machines or pods.
        #[arg(long, value_name = "I/N")]
        shard: Option<auditpack::fleet::Shard>,
        /// Skip organisations that already have a complete package from today (UTC).
        #[arg(long)]
        resume: bool,
        /// Judge ages and inactivity at this instant (RFC 3339) instead of now.
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// `auditpack controls` subcommands.
#[derive(Debug, Subcommand)]
pub enum ControlsAction {
    /// What one control requires, how it is judged and who owns it.
    Show {
        /// Control id (`8.2.6`, `CC6.1`, `164.312(d)`), optionally `framework:id`.
        id: String,
    },
}

/// `auditpack alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Put failed alerts back in the outbox and deliver the outbox now, with
    /// the channels as the config has them today (each message keeps its
    /// id, so a receiver drops one it already took).
    Resend {
        /// Only this message (repeat for several); default: every failed one.
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
    },
}

/// `auditpack history` subcommands.
#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Recreate the index from the run summaries in the store.
    Rebuild,
}

/// `auditpack documents` subcommands.
#[derive(Debug, Subcommand)]
pub enum DocumentsAction {
    /// Write `<file>.evidence.toml` beside a document, dated today, naming
    /// the controls it attests; an existing sidecar is never overwritten.
    Template {
        /// The document (it must exist; the sidecar goes beside it).
        file: PathBuf,
        /// A control it attests, `framework:id` (repeat for several).
        #[arg(long = "control", required = true)]
        controls: Vec<String>,
        /// Its title (default: from the file name).
        #[arg(long)]
        title: Option<String>,
        /// Its owner: internal, msp or shared (default: the controls' owner).
        #[arg(long)]
        owner: Option<String>,
    },
}

/// `auditpack store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// List the packages with their lock mode, retain-until date and legal hold.
    List {
        /// Only this organisation (its name or slug).
        #[arg(long)]
        org: Option<String>,
    },
    /// Download one object (a package zip, summary or retention record).
    Get {
        /// Its key relative to the store's prefix (as `store list` prints
        /// it), or `s3://bucket/key`.
        key: String,
        /// Where to write it (default: its file name, here).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List the run summaries in the store (what the history reads).
    Summaries,
}
