//! `auditpack schedule`: systemd units checked with `systemd-analyze
//! verify`, a crontab line, a Kubernetes CronJob checked with
//! `kubernetes-validate`, secrets as systemd credentials, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditpack::secret::credential_name;
use serde_json::Value;

const CANARY: &str = "canary-secret-value-93e1aa";

fn auditpack() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auditpack"));
    for var in [
        "RUST_LOG",
        "AUDITPACK_LOG",
        "AUDITPACK_LOG_FORMAT",
        "CREDENTIALS_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fleet in `dir/msp fleet/` (a space in the path) with a client file, a
/// certificate, a signing key and an RMM key, each file holding the canary.
fn fleet(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join("msp fleet");
    std::fs::create_dir_all(root.join("clients")).expect("mkdir");
    std::fs::create_dir_all(root.join("keys")).expect("mkdir");
    for key in ["entra.pem", "signing_ed25519", "datto.key"] {
        std::fs::write(root.join("keys").join(key), CANARY).expect("write");
    }
    let fleet = root.join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            r#"
[fleet]
name = {name:?}
store = "evidence"
concurrency = 4
include = ["clients/*.toml"]

[sources.m365]
type = "m365"
certificate_file = "keys/entra.pem"

[signing]
key_file = "keys/signing_ed25519"
identity = "compliance@msp.example"
"#
        ),
    )
    .expect("write");
    std::fs::write(
        root.join("clients/contoso.toml"),
        r#"
[organisation]
name = "Contoso Dental"

[sources.datto]
type = "datto-rmm"
api_key_file = "../keys/datto.key"
api_secret_env = "DATTO_SECRET"

[sources.rmm]
type = "rmm-spec"
spec_file = "tactical.toml"
"#,
    )
    .expect("write");
    fleet
}

fn secrets(fleet: &Path) -> Vec<PathBuf> {
    let root = fleet.parent().expect("folder");
    ["entra.pem", "signing_ed25519", "datto.key"]
        .iter()
        .map(|k| root.join("keys").join(k))
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn systemd_units_verify_and_hand_secrets_over_as_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A name that would inject a directive, and a specifier.
    let fleet = fleet(dir.path(), "Northwind 100%\nExecStartPre=/bin/false");
    let units = dir.path().join("units");
    let out = auditpack()
        .args([
            "schedule",
            "systemd",
            "--at",
            "03:15",
            "--randomized-delay",
            "45",
        ])
        .arg("--config")
        .arg(&fleet)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_auditpack"))
        .arg("--out")
        .arg(&units)
        .output()
        .expect("runs");
    ok(&out);
    let base = "auditpack-northwind-100-execstartpre-bin-false";
    let service_path = units.join(format!("{base}.service"));
    let timer_path = units.join(format!("{base}.timer"));
    let service = std::fs::read_to_string(&service_path).expect("service");
    let timer = std::fs::read_to_string(&timer_path).expect("timer");
    assert!(!service.contains(CANARY) && !timer.contains(CANARY));
    assert!(
        !service.lines().any(|l| l.starts_with("ExecStartPre")),
        "{service}"
    );
    assert!(service.contains("Description=auditpack fleet run: Northwind 100%%ExecStartPre"));
    let root = fleet.parent().expect("folder");
    assert!(
        service.contains(&format!(
            "ExecStart={} fleet run --config \"{}\"",
            env!("CARGO_BIN_EXE_auditpack"),
            fleet.display()
        )),
        "{service}"
    );
    for line in [
        "Type=oneshot",
        "SuccessExitStatus=1",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "User=auditpack",
    ] {
        assert!(service.lines().any(|l| l == line), "{line}\n{service}");
    }
    assert!(service.contains(&format!(
        "ReadWritePaths=\"{}\"",
        root.join("evidence").display()
    )));
    for secret in secrets(&fleet) {
        let line = format!(
            "LoadCredential={}:{}",
            credential_name(&secret),
            secret.display()
        );
        assert!(service.lines().any(|l| l == line), "{line}\n{service}");
    }
    assert_eq!(
        service
            .lines()
            .filter(|l| l.starts_with("LoadCredential="))
            .count(),
        3,
        "spec_file is not a secret"
    );
    for line in [
        "OnCalendar=*-*-* 03:15:00",
        "RandomizedDelaySec=45m",
        "Persistent=true",
        &format!("Unit={base}.service"),
        "WantedBy=timers.target",
    ] {
        assert!(timer.lines().any(|l| l == line), "{line}\n{timer}");
    }

    assert!(
        have("systemd-analyze"),
        "systemd-analyze is missing: scripts/setup-test-tools.sh installs Debian's systemd"
    );
    let verify = |paths: &[&Path]| {
        Command::new("systemd-analyze")
            .arg("verify")
            .args(paths)
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .output()
            .expect("systemd-analyze runs")
    };
    let good = verify(&[&service_path, &timer_path]);
    assert!(
        good.status.success() && good.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    // The check can fail: a unit with a broken directive does not verify.
    let broken = units.join("broken.service");
    std::fs::write(&broken, service.replace("Type=oneshot", "Type=once")).expect("write");
    let bad = verify(&[&broken]);
    assert!(
        !bad.status.success() || !bad.stderr.is_empty(),
        "systemd-analyze caught nothing"
    );
}

#[test]
fn an_organisation_config_is_scheduled_as_one_run_and_printed_without_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("auditpack.toml");
    std::fs::write(
        &config,
        "[organisation]\nname = \"Contoso Dental\"\nstore = \"/srv/auditpack/contoso\"\n\
         [sources.ninja]\ntype = \"ninjaone\"\nclient_id = \"x\"\nclient_secret_file = \"ninja.secret\"\n",
    )
    .expect("write");
    let text = ok(&auditpack()
        .args(["schedule", "systemd", "--config"])
        .arg(&config)
        .output()
        .expect("runs"));
    assert!(text.contains("# ==> auditpack-contoso-dental.service <=="));
    assert!(text.contains("# ==> auditpack-contoso-dental.timer <=="));
    assert!(text.contains(&format!(
        "ExecStart=/usr/local/bin/auditpack run --config {}",
        config.display()
    )));
    assert!(text.contains("ReadWritePaths=/srv/auditpack/contoso"));
    assert!(text.contains("OnCalendar=*-*-* 02:00:00"));
    assert!(text.contains(&format!(
        "LoadCredential={}:{}",
        credential_name(&dir.path().join("ninja.secret")),
        dir.path().join("ninja.secret").display()
    )));
    let out = auditpack()
        .args(["schedule", "kubernetes", "--shards", "2", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shards splits a fleet"));
}

#[test]
fn a_crontab_line_quotes_paths_for_the_shell_and_cron() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = fleet(&dir.path().join("100%"), "Northwind");
    let text = ok(&auditpack()
        .args(["schedule", "cron", "--at", "23:05", "--config"])
        .arg(&fleet)
        .output()
        .expect("runs"));
    assert!(!text.contains(CANARY));
    let line = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a crontab line");
    let quoted = format!("'{}'", fleet.display()).replace('%', "\\%");
    assert_eq!(
        line,
        format!("5 23 * * * /usr/local/bin/auditpack fleet run --config {quoted}")
    );
    assert!(text.contains("flock"), "says why no flock is needed");
}

#[test]
fn the_kubernetes_cronjob_runs_one_shard_per_pod_and_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = fleet(dir.path(), "Northwind");
    let out_dir = dir.path().join("k8s");
    ok(&auditpack()
        .args([
            "schedule",
            "kubernetes",
            "--shards",
            "4",
            "--image",
            "registry.example/auditpack:1.0",
            "--namespace",
            "compliance",
            "--at",
            "01:30",
            "--time-zone",
            "Europe/London",
            "--config",
        ])
        .arg(&fleet)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs"));
    let manifest = out_dir.join("auditpack-northwind.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(
        !text.contains(CANARY),
        "secret values never in the manifest"
    );
    for secret in secrets(&fleet) {
        assert!(text.contains(&format!(
            "--from-file={}='{}'",
            credential_name(&secret),
            secret.display()
        )));
    }

    assert!(
        have("kubernetes-validate"),
        "kubernetes-validate is missing: scripts/setup-test-tools.sh installs it from PyPI"
    );
    let validate = |path: &Path| {
        Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.31"])
            .arg(path)
            .output()
            .expect("kubernetes-validate runs")
    };
    let checked = validate(&manifest);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let broken = out_dir.join("broken.yaml");
    std::fs::write(&broken, text.replace("parallelism:", "paralelism:")).expect("write");
    assert!(
        !validate(&broken).status.success(),
        "the validator can fail"
    );

    // Read the YAML back (PyYAML comes with kubernetes-validate).
    let json = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(&manifest)
        .output()
        .expect("python3 runs");
    let docs: Vec<Value> = serde_json::from_slice(&json.stdout).expect("YAML as JSON");
    let cron = docs
        .iter()
        .find(|d| d["kind"] == "CronJob")
        .expect("a CronJob");
    assert_eq!(cron["metadata"]["namespace"], "compliance");
    assert_eq!(cron["spec"]["schedule"], "30 1 * * *");
    assert_eq!(cron["spec"]["timeZone"], "Europe/London");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    assert!(cron["spec"]["startingDeadlineSeconds"].as_u64().is_some());
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    assert_eq!(job["completions"], 4);
    assert_eq!(job["parallelism"], 4);
    assert!(job["backoffLimitPerIndex"].as_u64().is_some());
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/auditpack:1.0");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let config = fleet.display().to_string();
    assert_eq!(
        args,
        [
            "fleet",
            "run",
            "--config",
            config.as_str(),
            "--shard",
            "$(JOB_COMPLETION_INDEX)/4",
            "--resume"
        ]
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for path in secrets(&fleet).iter().chain([
        &fleet,
        &fleet.parent().expect("dir").join("clients/contoso.toml"),
    ]) {
        assert!(mounts.contains(&path.to_str().expect("utf-8")), "{path:?}");
    }
    let pvc = docs
        .iter()
        .find(|d| d["kind"] == "PersistentVolumeClaim")
        .expect("a PVC");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
}

#[test]
fn a_run_under_systemd_reads_a_secret_from_its_credential() {
    use crate::common::Harness;
    let h = Harness::demo();
    // The file the config names holds a wrong secret; the credential the
    // unit would load holds the right one.
    h.config(Some("wrong-secret"));
    let config = h.path().join("auditpack.toml");
    let credentials = h.path().join("credentials");
    std::fs::create_dir_all(&credentials).expect("mkdir");
    let named = h.path().join("graph.secret");
    std::fs::write(
        credentials.join(credential_name(&named)),
        auditpack::simulate::SimOptions::default()
            .credentials
            .graph_secret,
    )
    .expect("write");
    let run = |with_credentials: bool| {
        let mut cmd = auditpack();
        cmd.arg("run").arg("--config").arg(&config);
        if with_credentials {
            cmd.env("CREDENTIALS_DIRECTORY", &credentials);
        }
        let out = cmd.output().expect("runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let under_systemd = run(true);
    let m365 = under_systemd
        .lines()
        .find(|l| l.trim_start().starts_with("m365"))
        .unwrap_or_default()
        .to_owned();
    assert!(m365.contains("complete"), "{under_systemd}");
    let from_a_shell = run(false);
    assert!(
        from_a_shell.contains("authentication failed"),
        "without the credential the file is read: {from_a_shell}"
    );
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let cases = [
        (dir.path().join("missing.toml"), "cannot read"),
        (
            write("broken.toml", "[fleet]\nname = \"x\nstore = 1\n"),
            "broken.toml is not valid TOML",
        ),
        (
            write("neither.toml", "[sources.x]\ntype = \"m365\"\n"),
            "neither a fleet file",
        ),
        (
            write("nostore.toml", "[fleet]\nname = \"x\"\n"),
            "[fleet] has no `store`",
        ),
        (
            write(
                "empty.toml",
                "[fleet]\nname = \"x\"\nstore = \"s\"\ninclude = [\"nothing/*.toml\"]\n",
            ),
            "`nothing/*.toml` matches no file",
        ),
    ];
    for (config, needle) in cases {
        let out = auditpack()
            .args(["schedule", "cron", "--config"])
            .arg(&config)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{config:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let good = write("good.toml", "[organisation]\nname = \"x\"\n");
    for (args, needle) in [
        (["--at", "25:00"], "not a time of day"),
        (["--user", "a b"], "--user"),
    ] {
        let out = auditpack()
            .args(["schedule", "systemd", "--config"])
            .arg(&good)
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle));
    }
}
