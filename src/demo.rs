//! `auditpack demo`: the whole pipeline on the built-in demo organisation,
//! against the simulator on a free loopback port, with the real collectors,
//! a real config file and a freshly generated signing key.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::config::{Config, KeySource, Signing};
use crate::error::{Error, Result, ResultExt};
use crate::evidence::write_atomic;
use crate::fleet::{FleetFile, FleetOptions, FleetOutcome};
use crate::package::{generate_key, load_signer, verify, VerifyOptions, VerifyReport};
use crate::pipeline::{run, RunOptions, RunOutcome};
use crate::simulate::{demo_documents, FleetSpec, SimOptions, Simulator, Tenant};

/// The identity the demo key signs as.
pub const DEMO_IDENTITY: &str = "demo-signer@auditpack.example";

/// What the demo produced.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The run.
    pub run: RunOutcome,
    /// The package's verification.
    pub verify: VerifyReport,
    /// The `allowed_signers` file for the demo key.
    pub allowed_signers: PathBuf,
    /// The config file the demo wrote and ran.
    pub config: PathBuf,
    /// Fingerprint of the signing key.
    pub fingerprint: String,
}

/// Run the demo into `out` (created if needed; earlier demo runs are kept).
///
/// # Errors
/// When the simulator cannot start or any stage fails.
pub fn demo(out: &Path, runtime: &tokio::runtime::Runtime) -> Result<DemoOutcome> {
    std::fs::create_dir_all(out).context(|| format!("cannot create {}", out.display()))?;
    let now = Utc::now();
    let tenant = Tenant::demo(now).map_err(Error::invalid)?;
    let options = SimOptions {
        max_page_size: 10,
        ..SimOptions::default()
    };
    let creds = options.credentials.clone();
    let sim = runtime
        .block_on(Simulator::start(tenant, options))
        .context(|| "cannot start the simulator on 127.0.0.1")?;
    let base = sim.base_url();

    // Credentials go into files the config names, as a real deployment would.
    let secrets = out.join("secrets");
    write_secret(&secrets.join("graph-client-secret"), &creds.graph_secret)?;
    write_secret(&secrets.join("ninja-client-secret"), &creds.ninja_secret)?;
    let veeam = &sim.tenant().veeam;
    write_secret(&secrets.join("veeam-password"), &veeam.password)?;

    // The practice's policy documents, each with its sidecar: most current,
    // one expired, so both attested and pending controls show.
    let manual = out.join("manual");
    for (name, bytes) in demo_documents(now).map_err(Error::invalid)? {
        let path = manual.join(&name);
        write_atomic(&path, &bytes).context(|| format!("cannot write {}", path.display()))?;
    }

    let config_text = format!(
        r#"# Written by `auditpack demo`: the simulated Contoso Dental tenant and RMM.
[organisation]
name = "Contoso Dental"
frameworks = ["hipaa", "pci-dss", "soc2"]
ownership = "co-managed-default"
store = "."
contact_name = "Sam Patel"
contact_email = "sam.patel@contosodental.example"
critical_devices = ["CD-BILLING-01"]

[sources.m365]
type = "m365"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "secrets/graph-client-secret"
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"
export_poll_interval = "100ms"

[sources.ninja]
type = "ninjaone"
base_url = "{base}"
client_id = "{ninja_client}"
client_secret_file = "secrets/ninja-client-secret"

[sources.veeam]
type = "veeam"
base_url = "{base}"
username = "{veeam_user}"
password_file = "secrets/veeam-password"

[sources.documents]
type = "manual"
path = "manual"
"#,
        veeam_user = veeam.username.replace('\\', "\\\\"),
        tenant = creds.tenant_id,
        client = creds.graph_client_id,
        ninja_client = creds.ninja_client_id,
    );
    let config_path = out.join("auditpack.toml");
    write_atomic(&config_path, config_text.as_bytes())
        .context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)?;

    let (signer, key_path) = demo_key(out)?;
    let allowed_signers = out.join("allowed_signers");
    write_atomic(&allowed_signers, signer.allowed_signers_line()?.as_bytes())
        .context(|| format!("cannot write {}", allowed_signers.display()))?;
    let config = Config {
        signing: Some(Signing {
            key: KeySource::File(key_path),
            passphrase: None,
            identity: DEMO_IDENTITY.into(),
            tsa_url: None,
        }),
        ..config
    };

    let outcome = run(&config, &RunOptions::default(), runtime);
    runtime.block_on(sim.stop());
    let outcome = outcome?;
    let report = verify(
        &outcome.package,
        &VerifyOptions {
            allowed_signers: allowed_signers.clone(),
            identity: Some(DEMO_IDENTITY.into()),
            ..VerifyOptions::default()
        },
    )?;
    Ok(DemoOutcome {
        run: outcome,
        verify: report,
        allowed_signers,
        config: config_path,
        fingerprint: signer.fingerprint(),
    })
}

/// How many client organisations `auditpack demo --fleet` runs.
pub const DEMO_FLEET_SIZE: usize = 4;

/// What `auditpack demo --fleet` produced.
#[derive(Debug)]
pub struct FleetDemoOutcome {
    /// The fleet run, one outcome per organisation.
    pub fleet: FleetOutcome,
    /// The fleet file the demo wrote and ran.
    pub config: PathBuf,
    /// The `allowed_signers` file for the demo key.
    pub allowed_signers: PathBuf,
    /// Fingerprint of the signing key.
    pub fingerprint: String,
}

/// Run a small fleet into `out`: an MSP's multi-tenant Microsoft 365 app
/// shared by [`DEMO_FLEET_SIZE`] generated client organisations, each its
/// own tenant on the simulator, through a real fleet file and
/// `auditpack fleet run`'s runner.
///
/// # Errors
/// When the simulator cannot start, a file cannot be written, or the fleet
/// file does not load.
pub fn demo_fleet(out: &Path, runtime: &tokio::runtime::Runtime) -> Result<FleetDemoOutcome> {
    std::fs::create_dir_all(out).context(|| format!("cannot create {}", out.display()))?;
    let spec = FleetSpec {
        organisations: DEMO_FLEET_SIZE,
        users: 30,
        devices: 15,
        include_demo: false,
        max_page_size: 50,
        ..FleetSpec::default()
    };
    let sim = runtime
        .block_on(Simulator::start_fleet(spec))
        .context(|| "cannot start the simulator on 127.0.0.1")?;
    let base = sim.base_url();
    let accounts = sim.fleet_accounts();
    write_secret(
        &out.join("secrets/msp-graph-client-secret"),
        &accounts.graph_secret,
    )?;
    let (signer, key_path) = demo_key(out)?;
    let allowed_signers = out.join("allowed_signers");
    write_atomic(&allowed_signers, signer.allowed_signers_line()?.as_bytes())
        .context(|| format!("cannot write {}", allowed_signers.display()))?;

    let mut text = format!(
        r#"# Written by `auditpack demo --fleet`: an MSP's clients, each its own
# simulated Microsoft 365 tenant, through the MSP's one multi-tenant app.
[fleet]
name = "Demo MSP"
store = "fleet-store"
concurrency = 4
frameworks = ["hipaa", "soc2"]
ownership = "co-managed-default"

[signing]
key_file = "{key}"
identity = "{DEMO_IDENTITY}"

# Shared by every client that names [sources.m365]; each adds its tenant_id.
[sources.m365]
type = "m365"
client_id = "{client}"
client_secret_file = "secrets/msp-graph-client-secret"
authority_url = "{base}"
graph_url = "{base}"
defender_url = "{base}"
export_poll_interval = "100ms"
"#,
        key = key_path.strip_prefix(out).unwrap_or(&key_path).display(),
        client = accounts.graph_client_id,
    );
    for org in sim.fleet() {
        text.push_str(&format!(
            "
[[organisations]]
name = {}

[organisations.sources.m365]
tenant_id = {}
",
            toml::Value::String(org.name().to_owned()),
            toml::Value::String(org.tenant_id().to_owned()),
        ));
    }
    let config = out.join("fleet.toml");
    write_atomic(&config, text.as_bytes())
        .context(|| format!("cannot write {}", config.display()))?;
    let fleet = FleetFile::load(&config);
    let outcome = fleet.and_then(|f| crate::fleet::run(&f, &FleetOptions::default(), runtime));
    runtime.block_on(sim.stop());
    Ok(FleetDemoOutcome {
        fleet: outcome?,
        config,
        allowed_signers,
        fingerprint: signer.fingerprint(),
    })
}

/// The demo's signing key under `out` (made on first use) and its path.
fn demo_key(out: &Path) -> Result<(crate::package::Signer, PathBuf)> {
    let key_path = out.join("keys/auditpack_demo_ed25519");
    let signer = if key_path.exists() {
        load_signer(&Signing {
            key: KeySource::File(key_path.clone()),
            passphrase: None,
            identity: DEMO_IDENTITY.into(),
            tsa_url: None,
        })?
    } else {
        generate_key(&key_path, DEMO_IDENTITY, None)?.signer
    };
    Ok((signer, key_path))
}

fn write_secret(path: &Path, value: &str) -> Result<()> {
    write_atomic(path, value.as_bytes()).context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}
