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
    /// Run everything on the built-in demo organisation, against a local simulator.
    Demo {
        /// Where to write the config, key, runs and packages.
        #[arg(long, default_value = "auditpack-demo")]
        out: PathBuf,
    },
    /// Re-derive facts and results of a run folder from its raw evidence.
    Evaluate {
        /// The run folder (holding run.json).
        run: PathBuf,
    },
    /// Verify a package: hashes, completeness, custody and signature.
    Verify {
        /// The package: a folder, or a .zip read in place (never unpacked).
        package: PathBuf,
        /// The auditor's allowed_signers file (never one from inside the package).
        #[arg(long)]
        allowed_signers: PathBuf,
        /// The signer identity to require.
        #[arg(long)]
        identity: Option<String>,
        /// Also re-derive facts and results from the raw evidence and report
        /// every difference from the packaged results.
        #[arg(long)]
        reevaluate: bool,
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
}
