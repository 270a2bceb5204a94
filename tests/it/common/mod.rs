//! Shared harness for integration tests: a simulator, a config pointing at it,
//! secrets in files, and a fast retry policy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use auditpack::collect::retry::RetryPolicy;
use auditpack::config::{Config, KeySource, Signing};
use auditpack::package::generate_key;
use auditpack::pipeline::{run, RunOptions, RunOutcome};
use auditpack::simulate::{SimOptions, Simulator, Tenant};

pub const IDENTITY: &str = "tester@auditpack.example";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    pub sim: Simulator,
}

impl Harness {
    pub fn new(tenant: Tenant, options: SimOptions) -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = runtime
            .block_on(Simulator::start(tenant, options))
            .expect("simulator starts");
        Harness {
            dir: tempfile::tempdir().expect("tempdir"),
            runtime,
            sim,
        }
    }

    pub fn demo() -> Harness {
        Harness::new(
            Tenant::demo(chrono::Utc::now()).expect("demo tenant"),
            SimOptions {
                max_page_size: 5,
                ..SimOptions::default()
            },
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write the secrets and a config for both simulated sources; `graph_secret`
    /// overrides the correct Graph secret.
    pub fn config(&self, graph_secret: Option<&str>) -> Config {
        let creds = SimOptions::default().credentials;
        std::fs::write(
            self.path().join("graph.secret"),
            graph_secret.unwrap_or(&creds.graph_secret),
        )
        .expect("write");
        std::fs::write(self.path().join("ninja.secret"), &creds.ninja_secret).expect("write");
        let base = self.sim.base_url();
        let text = format!(
            r#"
[organisation]
name = "Test Clinic"
frameworks = ["hipaa", "pci-dss", "soc2"]
store = "store"

[sources.m365]
type = "m365"
tenant_id = "{}"
client_id = "{}"
client_secret_file = "graph.secret"
authority_url = "{base}"
graph_url = "{base}"

[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "{}"
client_secret_file = "ninja.secret"
"#,
            creds.tenant_id, creds.graph_client_id, creds.ninja_client_id
        );
        let path = self.path().join("auditpack.toml");
        std::fs::write(&path, text).expect("write config");
        let mut config = Config::load(&path).expect("config loads");
        let key = self.path().join("key");
        if !key.exists() {
            generate_key(&key, IDENTITY, None).expect("keygen");
            let signer = auditpack::package::load_signer(&Signing {
                key: KeySource::File(key.clone()),
                passphrase: None,
                identity: IDENTITY.into(),
                tsa_url: None,
            })
            .expect("load key");
            std::fs::write(
                self.allowed_signers(),
                signer.allowed_signers_line().expect("line"),
            )
            .expect("write");
        }
        config.signing = Some(Signing {
            key: KeySource::File(key),
            passphrase: None,
            identity: IDENTITY.into(),
            tsa_url: None,
        });
        config
    }

    /// Write the config file for both simulated sources with its `[signing]`
    /// table (the key is made by [`Harness::config`]), for commands run as a
    /// separate process; its path.
    pub fn signed_config_file(&self) -> PathBuf {
        self.config(None);
        let path = self.path().join("auditpack.toml");
        let mut text = std::fs::read_to_string(&path).expect("config");
        text.push_str(&format!(
            "\n[signing]\nkey_file = \"key\"\nidentity = \"{IDENTITY}\"\n"
        ));
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn allowed_signers(&self) -> PathBuf {
        self.path().join("allowed_signers")
    }

    pub fn run(&self, config: &Config) -> RunOutcome {
        run(config, &fast_options(), &self.runtime).expect("run completes")
    }
}

pub fn fast_options() -> RunOptions {
    RunOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        },
        ..RunOptions::default()
    }
}

/// Every record of a dataset's stored pages, in order.
pub fn stored_records(
    run_dir: &Path,
    source: &str,
    dataset: &str,
    array: fn(&serde_json::Value) -> Option<&Vec<serde_json::Value>>,
) -> Vec<serde_json::Value> {
    let dir = run_dir.join("evidence").join(source).join(dataset);
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    pages.sort();
    pages
        .iter()
        .flat_map(|p| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p).expect("read page")).expect("json page");
            array(&v).cloned().unwrap_or_default()
        })
        .collect()
}

pub fn graph_value(v: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    v.get("value")?.as_array()
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Shrunk limits for the two slow Graph buckets (1 request/s, 5 per 10 s),
/// so tests that page a lot stay fast; tests of the limits leave them out.
pub const FAST_M365_LIMITS: &str =
    r#"rate_limits = { identity_reports = "1000/1s", conditional_access = "1000/1s" }"#;

impl Harness {
    /// A config with only the Microsoft 365 source (Graph, login and Defender
    /// at the simulator), with `extra` lines added to its table; the client
    /// secret file holds `secret`, or the correct one.
    pub fn m365_config(&self, secret: Option<&str>, extra: &str) -> Config {
        let creds = SimOptions::default().credentials;
        std::fs::write(
            self.path().join("graph.secret"),
            secret.unwrap_or(&creds.graph_secret),
        )
        .expect("write");
        let base = self.sim.base_url();
        let credential = if extra.contains("certificate_file") {
            String::new()
        } else {
            "client_secret_file = \"graph.secret\"".to_owned()
        };
        let text = format!(
            r#"
[organisation]
name = "Test Clinic"
frameworks = ["hipaa", "pci-dss", "soc2"]
store = "store"

[sources.m365]
type = "m365"
tenant_id = "{}"
client_id = "{}"
{credential}
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"
export_poll_interval = "10ms"
{extra}
"#,
            creds.tenant_id, creds.graph_client_id
        );
        let path = self.path().join("auditpack.toml");
        std::fs::write(&path, text).expect("write config");
        Config::load(&path).expect("config loads")
    }
}

/// A small package signed by a fresh key: its folder, the signer, and how
/// to verify it (the allowed signers file beside it, naming `identity`).
pub struct SignedPackage {
    pub dir: tempfile::TempDir,
    pub bag: PathBuf,
    pub signer: auditpack::package::Signer,
    pub options: auditpack::package::VerifyOptions,
    /// The allowed_signers line of the key.
    pub signers: String,
}

impl SignedPackage {
    /// The problems verification finds in the bag folder as it is now.
    pub fn folder_problems(&self) -> Vec<String> {
        auditpack::package::verify(&self.bag, &self.options)
            .expect("verify runs")
            .problems
    }

    /// The bag as it is now, zipped, and verified in place.
    pub fn zip_problems(&self) -> Vec<String> {
        let zip = auditpack::package::zip_path(&self.bag);
        let _ = std::fs::remove_file(&zip);
        auditpack::package::write_zip(&self.bag).expect("zip");
        auditpack::package::verify(&zip, &self.options)
            .expect("verify runs")
            .problems
    }

    /// Problems as a folder, then as a zip.
    pub fn both(&self) -> [Vec<String>; 2] {
        [self.folder_problems(), self.zip_problems()]
    }

    /// `rel` inside the bag.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.bag.join(rel)
    }

    /// Write `rel` anew (a payload file is a read-only link: replaced, not
    /// written through).
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let _ = std::fs::remove_file(&path);
        std::fs::write(path, bytes).expect("write");
    }
}

/// Package a run folder holding `files` (relative path, bytes), signed,
/// with a manifest and a tag manifest for each of `algorithms` (SHA-256
/// always), as organisation `organisation`.
pub fn signed_package(
    files: &[(&str, &[u8])],
    algorithms: &[auditpack::package::Algorithm],
    organisation: &str,
    identity: &str,
) -> SignedPackage {
    use auditpack::package::{write_bag_with, BagInfo, BagOptions, VerifyOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    for (rel, bytes) in files {
        let path = run.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    let pair = generate_key(&dir.path().join("key"), identity, None).expect("keygen");
    let signers = pair.signer.allowed_signers_line().expect("line");
    std::fs::write(dir.path().join("allowed_signers"), &signers).expect("write");
    let info = BagInfo {
        organisation: organisation.into(),
        contact_name: None,
        contact_email: None,
        run_id: "r1".into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:00:01Z".into(),
        host: "host".into(),
    };
    let bag = write_bag_with(
        &run,
        &dir.path().join("out"),
        "pkg",
        &info,
        Some(&pair.signer),
        &BagOptions {
            algorithms: algorithms.to_vec(),
            ..BagOptions::default()
        },
    )
    .expect("package");
    SignedPackage {
        options: VerifyOptions {
            allowed_signers: dir.path().join("allowed_signers"),
            identity: Some(identity.into()),
            ..VerifyOptions::default()
        },
        dir,
        bag,
        signer: pair.signer,
        signers,
    }
}
