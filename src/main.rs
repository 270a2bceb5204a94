//! The `auditpack` binary: parse arguments, call the library, print once, and
//! map the outcome to an exit code (0 all satisfied or valid, 1 findings or
//! invalid, 2 could not do the job).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use auditpack::config::Config;
use auditpack::evaluate::{all_satisfied, count_by_status, ControlResult};
use auditpack::package::{
    generate_key, verify_with, Reevaluate, VerifyOptions, VerifyReport, NAMESPACE, SIGNATURE_FILE,
};
use auditpack::pipeline::{self, RunOptions};
use auditpack::secret::SecretRef;
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run {
            config,
            as_of,
            algorithm,
        } => {
            let config = Config::load(&config)?;
            let as_of = as_of
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let options = RunOptions {
                as_of,
                algorithms: algorithm
                    .iter()
                    .filter(|a| a.as_str() == "sha512")
                    .map(|_| auditpack::package::Algorithm::Sha512)
                    .collect(),
                ..RunOptions::default()
            };
            let outcome = pipeline::run(&config, &options, &runtime()?)?;
            print_sources(&outcome.manifest.sources);
            print_summary(&outcome.results);
            println!("\nrun folder: {}", outcome.run_dir.display());
            println!("package:    {}", outcome.package.display());
            println!("zip:        {}", outcome.archive.display());
            if !outcome.signed {
                println!("warning: no [signing] in the config, so the package is not signed");
            }
            Ok(exit_for(&outcome.results))
        }
        Command::Demo { out } => {
            let demo = auditpack::demo::demo(&out, &runtime()?)?;
            println!("auditpack demo: Contoso Dental (simulated Microsoft 365 tenant and NinjaOne RMM)\n");
            print_sources(&demo.run.manifest.sources);
            print_summary(&demo.run.results);
            println!("\nconfig:          {}", demo.config.display());
            println!("run folder:      {}", demo.run.run_dir.display());
            println!("package:         {}", demo.run.package.display());
            println!("zip:             {}", demo.run.archive.display());
            println!(
                "signing key:     {} ({})",
                demo.fingerprint,
                auditpack::demo::DEMO_IDENTITY
            );
            println!("allowed_signers: {}", demo.allowed_signers.display());
            print_verify(&demo.verify);
            let signers = absolute(&demo.allowed_signers);
            println!(
                "\nAn auditor verifies the package with stock tools, from the package folder:"
            );
            println!("  cd {}", demo.run.package.display());
            println!(
                "  ssh-keygen -Y verify -f {} -I {} -n {NAMESPACE} -s {SIGNATURE_FILE} < tagmanifest-sha256.txt",
                signers.display(),
                auditpack::demo::DEMO_IDENTITY
            );
            println!(
                "  sha256sum -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt"
            );
            println!("or with auditpack:");
            println!(
                "  auditpack verify {} --allowed-signers {} --identity {}",
                demo.run.package.display(),
                demo.allowed_signers.display(),
                auditpack::demo::DEMO_IDENTITY
            );
            Ok(if demo.verify.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Evaluate { run } => {
            let catalog = auditpack::catalog::Catalog::builtin()?;
            let results = pipeline::evaluate_run(&run, &catalog)?;
            print_summary(&results);
            Ok(exit_for(&results))
        }
        Command::Verify {
            package,
            allowed_signers,
            identity,
            reevaluate,
        } => {
            let report = verify_with(
                &package,
                &VerifyOptions {
                    allowed_signers,
                    identity,
                },
                if reevaluate {
                    Reevaluate::Yes
                } else {
                    Reevaluate::No
                },
            )?;
            print_verify(&report);
            Ok(if report.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Keygen {
            out,
            identity,
            passphrase_env,
        } => {
            let passphrase = passphrase_env
                .map(|v| SecretRef::Env(v).resolve())
                .transpose()?;
            let pair = generate_key(&out, &identity, passphrase.as_ref())?;
            println!("private key: {}", out.display());
            println!("fingerprint: {}", pair.signer.fingerprint());
            println!("allowed_signers line (give it to your auditors out of band):");
            print!("{}", pair.signer.allowed_signers_line()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_for(results: &[ControlResult]) -> ExitCode {
    if all_satisfied(results) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_sources(sources: &BTreeMap<String, auditpack::evidence::SourceReport>) {
    println!("sources:");
    for (name, s) in sources {
        let status = serde_json::to_value(s.status).ok();
        let status = status.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        let records: usize = s.datasets.values().map(|d| d.records).sum();
        let pages: usize = s.datasets.values().map(|d| d.pages).sum();
        println!(
            "  {name:<10} {:<9} {status:<9} {records} records in {pages} pages",
            s.source_type
        );
        if let Some(reason) = &s.reason {
            println!("             {}", sanitize(reason));
        }
    }
}

fn print_summary(results: &[ControlResult]) {
    let mut frameworks: Vec<&str> = results.iter().map(|r| r.framework.as_str()).collect();
    frameworks.dedup();
    println!("\ncontrols by status:");
    for f in frameworks {
        let of: Vec<ControlResult> = results
            .iter()
            .filter(|r| r.framework == f)
            .cloned()
            .collect();
        let counts: Vec<String> = count_by_status(&of)
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        println!("  {f:<8} {:>3} controls: {}", of.len(), counts.join(", "));
    }
    println!("\nfailing or inconclusive, by owner:");
    let mut by_owner: BTreeMap<&str, Vec<&ControlResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| {
        matches!(
            r.status,
            auditpack::evaluate::Status::Fail | auditpack::evaluate::Status::Inconclusive
        )
    }) {
        by_owner.entry(r.owner.as_str()).or_default().push(r);
    }
    if by_owner.is_empty() {
        println!("  none");
    }
    for (owner, list) in by_owner {
        let ids: Vec<String> = list
            .iter()
            .map(|r| format!("{} {} ({})", r.framework, r.control_id, r.status))
            .collect();
        println!("  {owner:<10} {}", ids.join(", "));
    }
    let mut gaps: BTreeMap<(&str, &str), (&str, usize, Vec<&str>)> = BTreeMap::new();
    for r in results {
        for c in &r.checks {
            if !c.failing.is_empty() {
                let names = c.failing.iter().take(5).map(|s| s.name.as_str()).collect();
                gaps.insert(
                    (c.responsible.as_str(), c.check.as_str()),
                    (c.title.as_str(), c.failing_count, names),
                );
            }
        }
    }
    if !gaps.is_empty() {
        println!("\ngaps to fix:");
        for ((owner, _), (title, count, names)) in gaps {
            let more = if count > names.len() {
                format!(" and {} more", count - names.len())
            } else {
                String::new()
            };
            println!("  [{owner}] {title}: {}{more}", sanitize(&names.join("; ")));
        }
    }
}

fn print_verify(report: &VerifyReport) {
    if report.is_valid() {
        println!(
            "\nverify: VALID ({} files, {} bytes, signed by {})",
            report.files,
            report.bytes,
            report.signer.as_deref().unwrap_or("?")
        );
        if let Some(n) = report.reevaluated {
            println!("reevaluate: {n} controls re-derived from the evidence, all identical");
        }
    } else {
        println!("\nverify: INVALID, {} problem(s):", report.problems.len());
        for p in &report.problems {
            println!("  - {}", sanitize(p));
        }
    }
}

/// Strip control characters (terminal escapes) from text that may come from an API or a file.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn absolute(p: &Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}
