//! `auditpack fleet run`: a fleet file with shared tables and client files
//! laid over them, each organisation run as `auditpack run` would into its
//! own store folder, kept apart from every other; failures, locks, kills,
//! `--resume` and `--shard`; bad fleet files refused before any request.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use auditpack::fleet::lock::{Acquired, OrgLock};
use auditpack::fleet::{FleetFile, FleetOptions, OrgResult};
use auditpack::package::generate_key;
use auditpack::simulate::{SimOptions, Tenant};
use serde_json::json;

fn auditpack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auditpack"))
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
    path
}

/// An endpoint report for `host` with `serial`, generated an hour ago.
fn endpoint_report(host: &str, serial: &str) -> String {
    let generated = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    serde_json::to_string_pretty(&json!({
        "schema": "auditpack.endpoint-report",
        "schema_version": 1,
        "generated_at": generated,
        "generator": {"name": "auditpack-endpoint.ps1", "version": "1.0.0"},
        "host": {"hostname": host, "serial_number": serial, "machine_id": null},
        "os": {"family": "windows", "name": "Windows 11 Pro", "version": "23H2", "build": "22631.4317"},
        "patching": {"last_install": generated, "checked": true, "check_method": "Microsoft.Update.Session", "pending_security_updates": []},
        "security_products": [{"name": "Microsoft Defender Antivirus", "kind": "antivirus", "running": true, "up_to_date": true, "detected_by": "wmi"}],
        "disk_encryption": {"status": "encrypted", "method": "BitLocker", "volumes": [{"name": "C:", "mount": "C:\\", "encrypted": true}]},
        "firewall": {"status": "enabled", "products": ["Windows Firewall"]},
        "screen_lock": {"status": "enabled", "timeout_seconds": 600}
    }))
    .expect("json")
}

/// A signing key for the fleet and its allowed_signers file.
fn fleet_key(dir: &Path) -> PathBuf {
    let key = dir.join("keys/fleet_ed25519");
    let pair = generate_key(&key, common::IDENTITY, None).expect("keygen");
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, pair.signer.allowed_signers_line().expect("line")).expect("write");
    signers
}

/// Three clients, each with its own distinguishable devices, sharing the
/// MSP's Microsoft 365 app (each with its tenant): one inline, one partial
/// client file, one complete `auditpack.toml` used as it is.
struct ThreeClients {
    h: common::Harness,
    fleet: PathBuf,
}

/// Per client: name, store folder, and strings only its evidence holds.
const CLIENTS: &[(&str, &str, &[&str])] = &[
    (
        "Inline Clinic",
        "inline-clinic",
        &["INLINE-WS-7781", "SN-INL-0001"],
    ),
    (
        "Alpha Dental",
        "alpha-dental",
        &["ALPHA-FRONTDESK-01", "SN-ALP-4242"],
    ),
    (
        "Beta Vets",
        "beta-vets",
        &["BETA-SURGERY-PC", "SN-BET-9393"],
    ),
];

const CANARY: &str = "CANARY-graph-secret-4f1c9e";

impl ThreeClients {
    fn new(latency_ms: u64, graph_secret: Option<&str>) -> ThreeClients {
        let h = common::Harness::new(
            Tenant::demo(chrono::Utc::now()).expect("demo tenant"),
            SimOptions {
                max_page_size: 50,
                latency: std::time::Duration::from_millis(latency_ms),
                ..SimOptions::default()
            },
        );
        let dir = h.path().to_owned();
        let creds = SimOptions::default().credentials;
        fleet_key(&dir);
        write(
            &dir,
            "secrets/graph.secret",
            graph_secret.unwrap_or(&creds.graph_secret),
        );
        for (_, slug, marks) in CLIENTS {
            write(
                &dir,
                &format!("drops/{slug}/{}.json", marks[0]),
                &endpoint_report(marks[0], marks[1]),
            );
        }
        let base = h.sim.base_url();
        let fleet = write(
            &dir,
            "fleet.toml",
            &format!(
                r#"[fleet]
name = "Test MSP"
store = "store"
concurrency = 3
include = ["clients/*.toml"]
frameworks = ["hipaa", "soc2"]

[signing]
key_file = "keys/fleet_ed25519"
identity = "{identity}"

[thresholds]
inactive_account_days = 60

[sources.m365]
type = "m365"
client_id = "{client}"
client_secret_file = "secrets/graph.secret"
authority_url = "{base}"
graph_url = "{base}"
{limits}

[[organisations]]
name = "Inline Clinic"
frameworks = ["hipaa"]

[organisations.sources.m365]
tenant_id = "{tenant}"

[organisations.sources.devices]
type = "endpoint-reports"
path = "drops/inline-clinic"
"#,
                identity = common::IDENTITY,
                client = creds.graph_client_id,
                tenant = creds.tenant_id,
                limits = common::FAST_M365_LIMITS,
            ),
        );
        write(
            &dir,
            "clients/alpha.toml",
            &format!(
                r#"# Only what differs from the fleet.
[organisation]
name = "Alpha Dental"

[sources.m365]
tenant_id = "{tenant}"

[sources.devices]
type = "endpoint-reports"
path = "../drops/alpha-dental"
"#,
                tenant = creds.tenant_id
            ),
        );
        write(
            &dir,
            "clients/beta.toml",
            r#"# A complete auditpack.toml, used as it is (its store gives way to the fleet's).
[organisation]
name = "Beta Vets"
frameworks = ["hipaa", "pci-dss"]
store = "elsewhere"

[sources.devices]
type = "endpoint-reports"
path = "../drops/beta-vets"
"#,
        );
        ThreeClients { h, fleet }
    }

    fn dir(&self) -> &Path {
        self.h.path()
    }

    fn store(&self) -> PathBuf {
        self.dir().join("store")
    }
}

fn packages(org: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(org.join("packages"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn text_of(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

#[test]
fn every_organisation_gets_its_own_signed_package_and_sees_no_other_client() {
    let fleet = ThreeClients::new(0, None);
    let output = auditpack()
        .args(["fleet", "run", "--config"])
        .arg(&fleet.fleet)
        .env("AUDITPACK_LOG_FORMAT", "json")
        .env_remove("AUDITPACK_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Every log line of an organisation's run names it and no other client.
    let mut logged = std::collections::BTreeMap::<String, usize>::new();
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        let Some(org) = v["organisation"].as_str() else {
            continue;
        };
        *logged.entry(org.to_owned()).or_default() += 1;
        for (other, _, marks) in CLIENTS.iter().filter(|c| c.0 != org) {
            for needle in std::iter::once(other).chain(marks.iter()) {
                assert!(
                    !line.contains(needle),
                    "{org}'s log line names {needle}: {line}"
                );
            }
        }
    }
    for (name, _, _) in CLIENTS {
        assert!(
            logged.get(*name).is_some_and(|n| *n > 3),
            "{name}: {logged:?}\n{stderr}"
        );
    }
    // The demo tenant has failing controls: done, with findings.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("organisation"), "{stdout}");
    for (name, slug, _) in CLIENTS {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from the table:\n{stdout}"));
        assert!(line.contains("complete"), "{line}");
        assert!(line.contains("failing"), "{line}");
        assert!(line.contains(&format!("store/{slug}/packages/")), "{line}");
    }

    let mut all_files = Vec::new();
    for (name, slug, _) in CLIENTS {
        let org = fleet.store().join(slug);
        let pkgs = packages(&org);
        assert_eq!(pkgs.len(), 1, "one package for {name}");
        assert!(auditpack::package::zip_path(&pkgs[0]).is_file());
        let manifest = auditpack::evidence::RunManifest::read(&pkgs[0].join("data"))
            .expect("run.json in the package");
        assert_eq!(&manifest.organisation, name);
        // Shared thresholds reach every organisation; frameworks are the
        // fleet's unless the client names its own.
        assert_eq!(manifest.thresholds.inactive_account_days, Some(60));
        let frameworks: &[&str] = match *slug {
            "inline-clinic" => &["hipaa"],
            "alpha-dental" => &["hipaa", "soc2"],
            _ => &["hipaa", "pci-dss"],
        };
        assert_eq!(manifest.frameworks, frameworks);
        let expected: BTreeSet<&str> = if *slug == "beta-vets" {
            ["devices"].into()
        } else {
            ["devices", "m365"].into()
        };
        assert_eq!(
            manifest
                .sources
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            expected
        );
        let verify = auditpack()
            .arg("verify")
            .arg(&pkgs[0])
            .arg("--allowed-signers")
            .arg(fleet.dir().join("allowed_signers"))
            .args(["--identity", common::IDENTITY])
            .output()
            .expect("runs");
        assert_eq!(
            verify.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );

        // No other client's name, hosts or serials anywhere in this
        // organisation's folder: run folder, evidence, custody log,
        // reports, package.
        let files = common::all_files(&org);
        assert!(files.len() > 20, "{name}: {} files", files.len());
        for file in &files {
            if file.extension().is_some_and(|e| e == "zip" || e == "pdf") {
                continue; // compressed; the same bytes are checked unpacked
            }
            let text = text_of(file);
            for (other, other_slug, marks) in CLIENTS {
                if other_slug == slug {
                    continue;
                }
                for needle in std::iter::once(other).chain(marks.iter()) {
                    assert!(
                        !text.contains(needle),
                        "{} (of {name}) mentions {needle} of {other}",
                        file.display()
                    );
                }
            }
        }
        let own = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .any(|f| text_of(f).contains(CLIENTS.iter().find(|c| c.1 == *slug).expect("c").2[0]));
        assert!(own, "{name}'s own device is in its evidence");
        all_files.extend(files);
    }
    // The secret never reaches an output.
    std::fs::write(fleet.dir().join("secrets/graph.secret"), CANARY).expect("write");
    let output = auditpack()
        .args(["fleet", "run", "--org", "Alpha Dental", "--config"])
        .arg(&fleet.fleet)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("m365 failed"),
        "a wrong secret fails Alpha's m365: {stdout}"
    );
    assert!(!stdout.contains("Inline Clinic") && !stdout.contains("Beta Vets"));
    for text in [
        stdout.to_string(),
        String::from_utf8_lossy(&output.stderr).into(),
    ] {
        assert!(!text.contains(CANARY));
    }
    for file in common::all_files(&fleet.store()) {
        assert!(
            !std::fs::read(&file)
                .unwrap_or_default()
                .windows(CANARY.len())
                .any(|w| w == CANARY.as_bytes()),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn one_organisation_failing_leaves_the_others_running() {
    let fleet = ThreeClients::new(0, Some("wrong-secret"));
    let loaded = FleetFile::load(&fleet.fleet).expect("fleet loads");
    let outcome = auditpack::fleet::run(
        &loaded,
        &FleetOptions {
            run: common::fast_options(),
            ..FleetOptions::default()
        },
        &fleet.h.runtime,
    )
    .expect("the fleet runs");
    let by_name = |n: &str| {
        outcome
            .organisations
            .iter()
            .find(|o| o.name == n)
            .expect("in the outcome")
    };
    // Inline and Alpha share the app whose secret is wrong: Microsoft 365
    // fails, their devices still come in.
    for name in ["Inline Clinic", "Alpha Dental"] {
        let o = by_name(name);
        match &o.result {
            OrgResult::Partial(reason) => assert!(reason.contains("m365 failed"), "{reason}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(o.package.as_ref().is_some_and(|p| p.is_dir()));
        assert!(o.inconclusive > 0);
    }
    assert_eq!(by_name("Beta Vets").result, OrgResult::Complete);
    assert_eq!(outcome.exit_code(), 1);

    // An organisation whose only source fails could not run at all: 2.
    write(
        fleet.dir(),
        "clients/gamma.toml",
        "[organisation]\nname = \"Gamma Optics\"\n\n[sources.m365]\ntenant_id = \"00000000-0000-0000-0000-000000000001\"\n",
    );
    let loaded = FleetFile::load(&fleet.fleet).expect("fleet loads");
    let outcome = auditpack::fleet::run(
        &loaded,
        &FleetOptions {
            organisations: vec!["gamma-optics".into(), "Beta Vets".into()],
            run: common::fast_options(),
            ..FleetOptions::default()
        },
        &fleet.h.runtime,
    )
    .expect("the fleet runs");
    assert_eq!(outcome.organisations.len(), 2);
    assert!(matches!(
        outcome.organisations[1].result,
        OrgResult::Failed(_)
    ));
    assert_eq!(outcome.organisations[0].result, OrgResult::Complete);
    assert_eq!(outcome.exit_code(), 2);
}

#[test]
fn a_running_organisation_is_skipped_and_a_killed_run_leaves_no_half_package() {
    let fleet = ThreeClients::new(40, None);
    // Another run holds Alpha.
    let alpha = fleet.store().join("alpha-dental");
    let held = match OrgLock::try_acquire(&alpha, "pid 99 on elsewhere").expect("locks") {
        Acquired::Held(l) => l,
        Acquired::Busy(_) => panic!("free lock busy"),
    };
    // Leftovers of a killed run in Beta's folder: a staging package and a
    // run folder that never got its run.json.
    let beta = fleet.store().join("beta-vets");
    write(
        &beta,
        "packages/.auditpack-beta-vets-20260101T000000Z-0001.x1y2/bagit.txt",
        "BagIt",
    );
    write(&beta, "runs/20260101T000000Z-0001/custody.jsonl", "");
    let loaded = FleetFile::load(&fleet.fleet).expect("loads");
    let outcome = auditpack::fleet::run(
        &loaded,
        &FleetOptions {
            run: common::fast_options(),
            ..FleetOptions::default()
        },
        &fleet.h.runtime,
    )
    .expect("runs");
    let alpha_outcome = &outcome.organisations[1];
    assert_eq!(alpha_outcome.name, "Alpha Dental");
    assert_eq!(
        alpha_outcome.result,
        OrgResult::Running("pid 99 on elsewhere".into())
    );
    assert!(packages(&alpha).is_empty(), "never run twice at once");
    let beta_outcome = &outcome.organisations[2];
    assert_eq!(beta_outcome.notes.len(), 2, "{:?}", beta_outcome.notes);
    assert!(beta.join("interrupted/20260101T000000Z-0001").is_dir());
    assert!(!beta.join("runs/20260101T000000Z-0001").exists());
    drop(held);

    // Kill a whole fleet run part-way, then run again with --resume.
    let mut child = auditpack()
        .args(["fleet", "run", "--config"])
        .arg(&fleet.fleet)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let output = auditpack()
        .args(["fleet", "run", "--resume", "--config"])
        .arg(&fleet.fleet)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    // Inline and Beta were packaged earlier today: skipped.
    for name in ["Inline Clinic", "Beta Vets"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .expect("in the table");
        assert!(line.contains("skipped"), "{line}");
    }
    for (_, slug, _) in CLIENTS {
        let org = fleet.store().join(slug);
        let pkgs = packages(&org);
        assert!(!pkgs.is_empty(), "{slug} has a package");
        for entry in std::fs::read_dir(org.join("packages"))
            .expect("packages")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{slug}: half package {name} left");
        }
        for p in &pkgs {
            assert!(auditpack::package::zip_path(p).is_file(), "{}", p.display());
        }
        // Every run folder left in runs/ is a whole run.
        for run in std::fs::read_dir(org.join("runs")).expect("runs").flatten() {
            assert!(run.path().join("results/controls.json").is_file());
        }
    }
}

#[test]
fn two_shards_together_run_exactly_the_organisations_of_one_unsharded_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    fleet_key(dir.path());
    let mut text = String::from(
        "[fleet]\nname = \"Shards\"\nstore = \"store\"\nconcurrency = 4\nframeworks = [\"soc2\"]\n\n\
         [signing]\nkey_file = \"keys/fleet_ed25519\"\nidentity = \"tester@auditpack.example\"\n\n\
         [sources.docs]\ntype = \"manual\"\npath = \"docs\"\n",
    );
    std::fs::create_dir_all(dir.path().join("docs")).expect("mkdir");
    let names: Vec<String> = (0..6).map(|i| format!("Client {i}")).collect();
    for name in &names {
        text.push_str(&format!(
            "\n[[organisations]]\nname = \"{name}\"\n[organisations.sources.docs]\n"
        ));
    }
    let whole = write(
        dir.path(),
        "whole/fleet.toml",
        &text
            .replace("\"docs\"", "\"../docs\"")
            .replace("keys/", "../keys/"),
    );
    let sharded = write(
        dir.path(),
        "sharded/fleet.toml",
        &text
            .replace("\"docs\"", "\"../docs\"")
            .replace("keys/", "../keys/"),
    );
    let run = |config: &Path, shard: Option<&str>| {
        let mut cmd = auditpack();
        cmd.args(["fleet", "run", "--config"]).arg(config);
        if let Some(s) = shard {
            cmd.args(["--shard", s]);
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts")
    };
    let mut children = vec![
        run(&whole, None),
        run(&sharded, Some("0/2")),
        run(&sharded, Some("1/2")),
    ];
    for c in &mut children {
        let status = c.wait().expect("waits");
        assert!(status.code().is_some_and(|c| c < 2), "{status:?}");
    }
    let packaged = |store: &Path| -> BTreeSet<String> {
        std::fs::read_dir(store)
            .expect("store")
            .flatten()
            .filter(|e| !packages(&e.path()).is_empty())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let all = packaged(&dir.path().join("whole/store"));
    assert_eq!(all.len(), names.len());
    assert_eq!(packaged(&dir.path().join("sharded/store")), all);
    // Neither shard is empty for these names, and none ran twice.
    for org in &all {
        assert_eq!(
            packages(&dir.path().join("sharded/store").join(org)).len(),
            1
        );
    }
}

#[test]
fn bad_fleet_files_are_refused_before_any_request_naming_file_and_organisation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let head = "[fleet]\nname = \"Bad\"\nstore = \"store\"\nframeworks = [\"hipaa\"]\n";
    let load = |text: &str| {
        let path = write(d, "fleet.toml", text);
        FleetFile::load(&path).expect_err("refused").to_string()
    };

    // Two organisations of the same name, inline and in a client file.
    write(
        d,
        "clients/a.toml",
        "[organisation]\nname = \"Same Name\"\n",
    );
    let err = load(&format!(
        "{head}include = [\"clients/*.toml\"]\n\n[[organisations]]\nname = \"Same Name\"\n"
    ));
    assert!(
        err.contains("two organisations are named `Same Name`"),
        "{err}"
    );
    assert!(err.contains("clients/a.toml"), "{err}");

    // Names that would share a store folder.
    write(
        d,
        "clients/a.toml",
        "[organisation]\nname = \"Same-Name\"\n",
    );
    let err = load(&format!(
        "{head}include = [\"clients/*.toml\"]\n\n[[organisations]]\nname = \"same name\"\n"
    ));
    assert!(err.contains("share the store folder `same-name`"), "{err}");

    // A client file that does not parse: file, line, column.
    write(d, "clients/a.toml", "[organisation]\nname = = \"Broken\"\n");
    let err = load(&format!("{head}include = [\"clients/*.toml\"]\n"));
    assert!(err.contains("clients/a.toml:2:8:"), "{err}");

    // An include pattern that matches nothing.
    let err = load(&format!("{head}include = [\"nowhere/*.toml\"]\n"));
    assert!(err.contains("`nowhere/*.toml` matches no file"), "{err}");

    // An unknown key in a client's part of a shared source: the client
    // file's line and column, and the organisation.
    write(
        d,
        "clients/a.toml",
        "[organisation]\nname = \"Typo Clinic\"\n\n[sources.m365]\ntenant_idd = \"x\"\n",
    );
    let fleet = write(
        d,
        "fleet.toml",
        &format!(
            "{head}include = [\"clients/*.toml\"]\n\n[sources.m365]\ntype = \"m365\"\nclient_id = \"c\"\nclient_secret_env = \"NO_SUCH_VAR\"\n"
        ),
    );
    let loaded = FleetFile::load(&fleet).expect("the files parse");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let err = auditpack::fleet::run(&loaded, &FleetOptions::default(), &runtime)
        .expect_err("refused before collecting")
        .to_string();
    assert!(err.contains("organisation `Typo Clinic`"), "{err}");
    assert!(err.contains("clients/a.toml:5:1"), "{err}");
    assert!(err.contains("tenant_idd"), "{err}");
    assert!(
        !d.join("store/typo-clinic/runs").exists(),
        "nothing collected"
    );

    // A wrong type in the fleet's shared part points into the fleet file.
    write(d, "clients/a.toml", "[organisation]\nname = \"A\"\n");
    let err = load(&format!(
        "{head}include = [\"clients/*.toml\"]\n\n[thresholds]\ninactive_account_days = \"ninety\"\n"
    ));
    assert!(err.contains("fleet.toml:8:25"), "{err}");
    assert!(err.contains("organisation `A`"), "{err}");

    // An unknown top-level key of the fleet file, and --org naming nobody.
    let err = load(&format!(
        "{head}colour = 1\n[[organisations]]\nname = \"A\"\n"
    ));
    assert!(err.contains("fleet.toml:5:1"), "{err}");
    let fleet = write(
        d,
        "fleet.toml",
        &format!("{head}[[organisations]]\nname = \"Alpha\"\n"),
    );
    let loaded = FleetFile::load(&fleet).expect("loads");
    let err = auditpack::fleet::select(
        &loaded,
        &FleetOptions {
            organisations: vec!["Alhpa".into()],
            ..FleetOptions::default()
        },
    )
    .expect_err("unknown")
    .to_string();
    assert!(err.contains("did you mean `Alpha`"), "{err}");
}

#[test]
fn demo_fleet_keeps_each_generated_tenant_in_its_own_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let output = auditpack()
        .args(["demo", "--fleet", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let size = auditpack::demo::DEMO_FLEET_SIZE;
    // Each generated organisation's users, devices and names carry its label
    // (org001, ORG001-WS-...); none may show in another's folder.
    let labels: Vec<String> = (1..=size).map(|n| format!("org{n:03}")).collect();
    for (i, label) in labels.iter().enumerate() {
        let name = format!("Organisation {:03}", i + 1);
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
        assert!(line.contains("complete"), "{line}");
        let org = out
            .join("fleet-store")
            .join(auditpack::pipeline::slug(&name));
        assert_eq!(packages(&org).len(), 1);
        let mut own = 0;
        for file in common::all_files(&org) {
            if file.extension().is_some_and(|e| e == "zip" || e == "pdf") {
                continue;
            }
            let text = text_of(&file).to_lowercase();
            own += text.matches(label.as_str()).count();
            for other in labels.iter().filter(|l| *l != label) {
                assert!(
                    !text.contains(other.as_str()),
                    "{} (of {name}) holds {other}'s data",
                    file.display()
                );
            }
        }
        assert!(own > 100, "{name}'s own records are there ({own} mentions)");
    }
}

#[test]
fn the_readme_fleet_file_and_client_file_load_as_written() {
    let blocks = crate::config::readme_toml_blocks();
    let fleet = blocks
        .iter()
        .find(|(_, t)| t.contains("[fleet]"))
        .expect("a fleet block");
    let client = blocks
        .iter()
        .find(|(_, t)| t.starts_with("# clients/"))
        .expect("a client block");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "fleet.toml", &fleet.1);
    let name = client
        .1
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':'));
    write(dir.path(), name.expect("the client file's name"), &client.1);
    let loaded = FleetFile::load(&path).unwrap_or_else(|e| panic!("README.md:{}: {e}", fleet.0));
    let names: Vec<&str> = loaded.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Contoso Dental", "Fabrikam Vets"]);
    for m in &loaded.members {
        auditpack::pipeline::prepare(&m.config, &auditpack::pipeline::RunOptions::default())
            .unwrap_or_else(|e| panic!("{}", m.config_error(&e)));
        assert_eq!(m.config.organisation.store, loaded.store.join(&m.slug));
    }
    let fabrikam = &loaded.members[1].config;
    assert_eq!(fabrikam.organisation.frameworks, ["hipaa", "soc2"]);
    let sources: Vec<&str> = fabrikam.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(sources, ["devices", "m365"]);
}

/// A webhook channel to `addr`, its URL and signing secret in files under
/// `dir/secrets/` (the URL holds the alert tests' canary).
fn webhook_channel(dir: &Path, name: &str, addr: std::net::SocketAddr) -> String {
    use crate::alerts::{whsec, CANARY};
    write(
        dir,
        &format!("secrets/{name}.url"),
        &format!("http://{addr}/hooks/{name}/{CANARY}\n"),
    );
    write(dir, &format!("secrets/{name}.whsec"), &whsec());
    format!(
        "\n[alerts.channels.{name}]\ntype = \"webhook\"\nurl_file = \"{root}/secrets/{name}.url\"\nsecret_file = \"{root}/secrets/{name}.whsec\"\n",
        root = dir.display()
    )
}

#[test]
fn each_organisation_alerts_its_own_channel_and_the_msp_gets_the_fleet_summary() {
    use crate::alerts::{assert_no_canary, verify_signature, whsec, Receiver};
    let fleet = ThreeClients::new(0, None);
    let dir = fleet.dir().to_owned();
    let (alpha, beta, msp) = (
        Receiver::default(),
        Receiver::default(),
        Receiver::default(),
    );
    let rt = &fleet.h.runtime;
    let (a, b, m) = (
        rt.block_on(alpha.start()),
        rt.block_on(beta.start()),
        rt.block_on(msp.start()),
    );
    // Beta Vets reads Microsoft 365 with a secret of its own, which the
    // second night lacks: it cannot run.
    let creds = SimOptions::default().credentials;
    write(&dir, "secrets/beta.secret", &creds.graph_secret);
    let append = |rel: &str, text: &str| {
        let path = dir.join(rel);
        let mut all = std::fs::read_to_string(&path).expect("read");
        all.push_str(text);
        std::fs::write(&path, all).expect("write");
    };
    append(
        "clients/beta.toml",
        &format!(
            "\n[sources.m365]\ntenant_id = \"{}\"\nclient_secret_file = \"../secrets/beta.secret\"\n\n[alerts]\n{}",
            creds.tenant_id,
            webhook_channel(&dir, "beta", b)
        ),
    );
    append(
        "clients/alpha.toml",
        &format!("\n[alerts]\n{}", webhook_channel(&dir, "alpha", a)),
    );
    append(
        "fleet.toml",
        &format!("\n[alerts]\n{}", webhook_channel(&dir, "msp", m)),
    );
    let loaded = FleetFile::load(&fleet.fleet).expect("fleet loads");
    assert!(loaded.alerts.is_some(), "the fleet file's own channels");
    let options = FleetOptions {
        run: common::fast_options(),
        ..FleetOptions::default()
    };

    // The first night is the baseline: nothing to say, nothing sent.
    let first = auditpack::fleet::run(&loaded, &options, rt).expect("first night");
    for o in &first.organisations {
        assert!(!matches!(o.result, OrgResult::Failed(_)), "{o:?}");
        let items = o.alerts.as_ref().map_or(0, |r| r.items.len());
        assert_eq!(items, 0, "{}: {:?}", o.name, o.alerts);
    }
    assert!(first.alerts.as_ref().is_some_and(|r| r.items.is_empty()));
    assert!(alpha.accepted().is_empty() && beta.accepted().is_empty() && msp.accepted().is_empty());

    std::fs::remove_file(dir.join("secrets/beta.secret")).expect("remove");
    let second = auditpack::fleet::run(&loaded, &options, rt).expect("second night");
    let beta_outcome = second
        .organisations
        .iter()
        .find(|o| o.name == "Beta Vets")
        .expect("beta");
    assert!(matches!(beta_outcome.result, OrgResult::Failed(_)));
    let beta_report = beta_outcome.alerts.as_ref().expect("beta alerted");
    assert_eq!(beta_report.undelivered(), 0, "{beta_report:?}");

    // Beta hears that it could not run, signed, and nothing of Alpha.
    let got = beta.accepted();
    assert_eq!(got.len(), 1);
    verify_signature(&got[0], &whsec());
    let body = String::from_utf8_lossy(&got[0].body).into_owned();
    assert!(
        body.contains("Beta Vets") && body.contains("could not run"),
        "{body}"
    );
    assert!(
        !body.contains("Alpha") && !body.contains("Inline"),
        "{body}"
    );
    // Alpha did not change: no message.
    assert!(alpha.accepted().is_empty());
    // The MSP gets one fleet summary naming Beta's item.
    let got = msp.accepted();
    assert_eq!(got.len(), 1);
    verify_signature(&got[0], &whsec());
    let summary: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(summary["type"], "auditpack.fleet_summary");
    let titles: Vec<&str> = summary["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert!(!titles.is_empty());
    assert!(
        titles.iter().all(|t| t.starts_with("Beta Vets: ")),
        "{titles:?}"
    );
    let fleet_report = second.alerts.as_ref().expect("fleet alerts");
    assert_eq!(fleet_report.undelivered(), 0, "{fleet_report:?}");
    // The fleet's record sits in the fleet store, each client's in its own.
    assert!(fleet.store().join("alerts").is_dir());
    assert!(fleet.store().join("beta-vets/alerts").is_dir());
    assert_no_canary(&fleet.store());
}
