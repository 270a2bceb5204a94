//! `auditpack demo`: the whole pipeline on the built-in demo organisation,
//! against the simulator on a free loopback port, with the real collectors,
//! a real config file and a freshly generated signing key.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::config::{Config, KeySource, Signing};
use crate::error::{Error, Result, ResultExt};
use crate::evidence::write_atomic;
use crate::package::{generate_key, load_signer, verify, VerifyOptions, VerifyReport};
use crate::pipeline::{run, RunOptions, RunOutcome};
use crate::simulate::{demo_documents, SimOptions, Simulator, Tenant};

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
