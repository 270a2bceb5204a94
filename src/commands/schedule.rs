//! `auditpack schedule systemd|cron|kubernetes`: ready-to-install units that
//! run a fleet (`auditpack fleet run`) or one organisation (`auditpack run`)
//! every night with the scheduler the machine already has. auditpack never
//! runs a daemon of its own.
//!
//! Only what the units need is read from the config, with a minimal parse
//! that ignores every other key: `[fleet]` `name`, `store` and `include` (a
//! fleet file) or `[organisation]` `name` and `store` (an `auditpack.toml`),
//! and every `*_file` key naming a secret, in the file and in the client
//! files its `include` patterns match.
//!
//! - systemd: a service (oneshot, hardened for a collector that reads the
//!   network and writes only its store, secrets through `LoadCredential=`)
//!   and a timer (`OnCalendar=`, `RandomizedDelaySec=`, `Persistent=true`).
//! - cron: one crontab line.
//! - Kubernetes: a PersistentVolumeClaim for the store and a CronJob
//!   (`concurrencyPolicy: Forbid`) whose Job is Indexed: N pods, pod `I`
//!   running `--shard I/N`, with `backoffLimitPerIndex` so one bad shard
//!   does not use up the Job's retries; config files from a ConfigMap and
//!   secrets from a Secret, both mounted as files at the paths the config
//!   names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::secret::{credential_name, lexical_absolute};

/// The scheduler to write units for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// A systemd service and timer.
    Systemd,
    /// A crontab line.
    Cron,
    /// A Kubernetes CronJob running an Indexed Job.
    Kubernetes,
}

impl std::str::FromStr for Scheduler {
    type Err = Error;

    fn from_str(s: &str) -> Result<Scheduler> {
        match s {
            "systemd" => Ok(Scheduler::Systemd),
            "cron" => Ok(Scheduler::Cron),
            "kubernetes" | "k8s" => Ok(Scheduler::Kubernetes),
            other => Err(Error::invalid(format!(
                "scheduler `{}` is not one of systemd, cron, kubernetes",
                crate::sanitize::terminal_safe(other)
            ))),
        }
    }
}

/// What a config is: a fleet file or one organisation's `auditpack.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `[fleet]`: scheduled as `auditpack fleet run`.
    Fleet,
    /// `[organisation]`: scheduled as `auditpack run`.
    Organisation,
}

/// A secret file a config names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFile {
    /// Where it is named: `file: [table] key`.
    pub key: String,
    /// Its absolute path.
    pub path: PathBuf,
    /// Its credential name ([`credential_name`]).
    pub credential: String,
}

/// What the units are made from.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Fleet or organisation.
    pub kind: Kind,
    /// `[fleet] name` or `[organisation] name`.
    pub name: String,
    /// The config file, absolute.
    pub config: PathBuf,
    /// The client files the fleet's `include` patterns match, absolute.
    pub includes: Vec<PathBuf>,
    /// The store, absolute.
    pub store: PathBuf,
    /// Every secret file named, once per path.
    pub secrets: Vec<SecretFile>,
}

/// `*_file` keys that name a file that is not a secret.
const NOT_SECRETS: &[&str] = &["spec_file"];

/// Read what the units need from `config` (see the module docs).
///
/// # Errors
/// When the file cannot be read or is not TOML, has neither a `[fleet]`
/// nor an `[organisation]` table with a `name`, a fleet lacks its `store`,
/// an include pattern is invalid or matches nothing, or a path holds a
/// control character (it could not be written into a unit safely).
pub fn plan(config: &Path) -> Result<Plan> {
    let config = lexical_absolute(config);
    let base = config.parent().unwrap_or(Path::new("/")).to_owned();
    let doc = read_toml(&config)?;
    let text = |table: &str, key: &str| -> Result<Option<String>> {
        match doc.get(table).and_then(|t| t.get(key)) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(Error::config(format!(
                "{}: [{table}] `{key}` must be a non-empty string",
                config.display()
            ))),
        }
    };
    let (kind, name, store) = if doc.get("fleet").is_some() {
        let name = text("fleet", "name")?.ok_or_else(|| missing(&config, "fleet", "name"))?;
        let store = text("fleet", "store")?.ok_or_else(|| missing(&config, "fleet", "store"))?;
        (Kind::Fleet, name, store)
    } else if doc.get("organisation").is_some() {
        let name = text("organisation", "name")?
            .ok_or_else(|| missing(&config, "organisation", "name"))?;
        let store = text("organisation", "store")?.unwrap_or_else(|| "evidence".to_owned());
        (Kind::Organisation, name, store)
    } else {
        return Err(Error::config(format!(
            "{}: neither a fleet file ([fleet] with name and store) nor an auditpack.toml ([organisation] with name)",
            config.display()
        )));
    };
    let mut includes = Vec::new();
    if kind == Kind::Fleet {
        let patterns = match doc.get("fleet").and_then(|f| f.get("include")) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        Error::config(format!(
                            "{}: [fleet] `include` must be a list of glob patterns",
                            config.display()
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => {
                return Err(Error::config(format!(
                    "{}: [fleet] `include` must be a list of glob patterns",
                    config.display()
                )))
            }
        };
        for pattern in patterns {
            let full = base.join(&pattern);
            let found = glob::glob(&full.to_string_lossy()).map_err(|e| {
                Error::config(format!(
                    "{}: [fleet] include pattern `{pattern}` is not valid: {e}",
                    config.display()
                ))
            })?;
            let mut matched: Vec<PathBuf> = found
                .flatten()
                .filter(|p| p.is_file())
                .map(|p| lexical_absolute(&p))
                .collect();
            if matched.is_empty() {
                return Err(Error::config(format!(
                    "{}: [fleet] include pattern `{pattern}` matches no file",
                    config.display()
                )));
            }
            matched.sort();
            includes.extend(matched);
        }
    }
    let mut secrets: BTreeMap<PathBuf, SecretFile> = BTreeMap::new();
    secret_files(&config, &doc, &mut secrets);
    for file in &includes {
        secret_files(file, &read_toml(file)?, &mut secrets);
    }
    let plan = Plan {
        kind,
        name,
        store: lexical_absolute(&base.join(store)),
        includes,
        config,
        secrets: secrets.into_values().collect(),
    };
    for path in [&plan.config, &plan.store]
        .into_iter()
        .chain(&plan.includes)
        .chain(plan.secrets.iter().map(|s| &s.path))
    {
        if path.to_string_lossy().chars().any(char::is_control) {
            return Err(Error::config(format!(
                "{}: the path {:?} holds a control character; rename it",
                plan.config.display(),
                path
            )));
        }
    }
    Ok(plan)
}

fn missing(config: &Path, table: &str, key: &str) -> Error {
    Error::config(format!("{}: [{table}] has no `{key}`", config.display()))
}

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| Error::config(format!("{} is not valid TOML: {e}", path.display())))
}

/// Every `*_file` key of `doc` (at any depth) that names a secret, resolved
/// against `file`'s folder as the config loader does.
fn secret_files(file: &Path, doc: &toml::Table, out: &mut BTreeMap<PathBuf, SecretFile>) {
    fn walk(file: &Path, table: &toml::Table, at: &str, out: &mut BTreeMap<PathBuf, SecretFile>) {
        let base = file.parent().unwrap_or(Path::new("/"));
        for (key, value) in table {
            let here = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(file, inner, &here, out),
                toml::Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let toml::Value::Table(inner) = item {
                            walk(file, inner, &format!("{here}[{i}]"), out);
                        }
                    }
                }
                toml::Value::String(s)
                    if key.ends_with("_file") && !NOT_SECRETS.contains(&key.as_str()) =>
                {
                    let path = lexical_absolute(&base.join(s));
                    out.entry(path.clone()).or_insert_with(|| SecretFile {
                        key: format!("{}: {here}", file.display()),
                        credential: credential_name(&path),
                        path,
                    });
                }
                _ => {}
            }
        }
    }
    walk(file, doc, "", out);
}

/// Knobs of the units.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time of day the run starts (hour, minute).
    pub at: (u8, u8),
    /// IANA time zone of `at` (systemd, Kubernetes); the machine's when `None`
    /// (Kubernetes: UTC).
    pub time_zone: Option<String>,
    /// Longest random delay added to `at` (systemd), in minutes.
    pub randomized_delay_minutes: u32,
    /// The auditpack binary (on the host for systemd and cron, in the image
    /// for Kubernetes).
    pub binary: String,
    /// The user the run is done as (systemd, cron).
    pub user: String,
    /// Pods of the Kubernetes Job, each taking one shard.
    pub shards: u32,
    /// The container image with auditpack.
    pub image: String,
    /// Kubernetes namespace, if not the current one.
    pub namespace: Option<String>,
    /// Size of the store's PersistentVolumeClaim.
    pub storage: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            at: (2, 0),
            time_zone: None,
            randomized_delay_minutes: 30,
            binary: "/usr/local/bin/auditpack".into(),
            user: "auditpack".into(),
            shards: 1,
            image: format!("auditpack:{}", env!("CARGO_PKG_VERSION")),
            namespace: None,
            storage: "50Gi".into(),
        }
    }
}

/// `HH:MM` (24-hour).
///
/// # Errors
/// When it is not a valid time of day.
pub fn parse_at(s: &str) -> Result<(u8, u8)> {
    let bad = || Error::invalid(format!("--at {s:?} is not a time of day as HH:MM (02:00)"));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

/// One file to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFile {
    /// Its file name.
    pub name: String,
    /// Its content.
    pub text: String,
}

/// The base name of the units: `auditpack-<slug of the name>` (at most 52
/// characters, which a CronJob name allows).
pub fn unit_base(plan: &Plan) -> String {
    let slug: String = crate::pipeline::slug(&plan.name).chars().take(42).collect();
    format!("auditpack-{}", slug.trim_end_matches('-'))
}

/// The arguments after the binary: `fleet run --config F` or `run --config F`.
fn run_args(plan: &Plan) -> Vec<String> {
    let config = plan.config.display().to_string();
    match plan.kind {
        Kind::Fleet => vec!["fleet".into(), "run".into(), "--config".into(), config],
        Kind::Organisation => vec!["run".into(), "--config".into(), config],
    }
}

fn what(plan: &Plan) -> &'static str {
    match plan.kind {
        Kind::Fleet => "fleet",
        Kind::Organisation => "organisation",
    }
}

/// The units for `scheduler`.
///
/// # Errors
/// When an option cannot be written safely into a unit (a control
/// character, a time zone or user name with spaces, zero shards).
pub fn units(plan: &Plan, scheduler: Scheduler, options: &Options) -> Result<Vec<UnitFile>> {
    for (flag, value) in [
        ("--binary", options.binary.as_str()),
        ("--user", options.user.as_str()),
        ("--image", options.image.as_str()),
        ("--storage", options.storage.as_str()),
    ]
    .into_iter()
    .chain(options.time_zone.as_deref().map(|t| ("--time-zone", t)))
    .chain(options.namespace.as_deref().map(|n| ("--namespace", n)))
    {
        let spaced = flag != "--binary" && value.chars().any(char::is_whitespace);
        if value.is_empty() || value.chars().any(char::is_control) || spaced {
            return Err(Error::invalid(format!(
                "{flag} {value:?} cannot go into a unit (empty, or with a control character or space)"
            )));
        }
    }
    match scheduler {
        Scheduler::Systemd => Ok(systemd(plan, options)),
        Scheduler::Cron => Ok(vec![cron(plan, options)]),
        Scheduler::Kubernetes => kubernetes(plan, options).map(|k| vec![k]),
    }
}

/// A value for a systemd unit line: `%` doubled (specifiers), control
/// characters dropped (plans refuse them in paths; names are free text).
fn unit_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('%', "%%")
}

/// One `ExecStart=` word: double-quoted with `\` and `"` escaped when it
/// needs quoting, `%` doubled and `$` doubled (no variable expansion).
fn exec_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@".contains(c));
    let escaped = unit_text(s).replace('$', "$$");
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A path for `ReadWritePaths=` and similar lists: quoted like an
/// `ExecStart=` word.
fn unit_path(p: &Path) -> String {
    exec_word(&p.display().to_string())
}

fn under_home(p: &Path) -> bool {
    ["/home", "/root", "/run/user"]
        .iter()
        .any(|home| p.starts_with(home))
}

fn systemd(plan: &Plan, o: &Options) -> Vec<UnitFile> {
    let base = unit_base(plan);
    let name = unit_text(&plan.name);
    let mut exec = vec![exec_word(&o.binary)];
    exec.extend(run_args(plan).iter().map(|a| exec_word(a)));
    let mut service = format!(
        "# Written by `auditpack schedule systemd` for the {what} \"{name}\".\n\
         # Install: copy {base}.service and {base}.timer to /etc/systemd/system/, then\n\
         #   systemctl daemon-reload && systemctl enable --now {base}.timer\n\
         # The run is done as the system user {user}, who must own the store:\n\
         #   useradd --system --no-create-home --shell /usr/sbin/nologin {user}\n\
         #   chown -R {user}: {store}\n\
         # Secret files stay readable by root only: systemd hands each to the run as a\n\
         # credential (LoadCredential=), and auditpack reads $CREDENTIALS_DIRECTORY/<name>\n\
         # in place of the file the config names.\n\
         [Unit]\n\
         Description=auditpack {what} run: {name}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={exec}\n\
         # 1 means done, with failing or inconclusive controls: the run itself succeeded.\n\
         SuccessExitStatus=1\n\
         TimeoutStartSec=20h\n\
         Environment=AUDITPACK_LOG_FORMAT=json\n\
         User={user}\n\
         Group={user}\n\
         UMask=0077\n\
         Nice=10\n",
        what = what(plan),
        user = unit_text(&o.user),
        store = plan.store.display(),
        exec = exec.join(" "),
    );
    for s in &plan.secrets {
        service.push_str(&format!(
            "# {}\nLoadCredential={}:{}\n",
            unit_text(&s.key),
            s.credential,
            unit_text(&s.path.display().to_string())
        ));
    }
    let mut read_only = vec![plan.config.clone()];
    read_only.extend(plan.includes.iter().cloned());
    let home = read_only.iter().any(|p| under_home(p)) || under_home(&plan.store);
    service.push_str(&format!(
        "# A collector that reads the network and writes only its store.\n\
         ProtectSystem=strict\n\
         ReadWritePaths={store}\n\
         ProtectHome={home}\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         NoNewPrivileges=yes\n\
         CapabilityBoundingSet=\n\
         AmbientCapabilities=\n\
         RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
         RestrictNamespaces=yes\n\
         RestrictRealtime=yes\n\
         RestrictSUIDSGID=yes\n\
         LockPersonality=yes\n\
         MemoryDenyWriteExecute=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectProc=invisible\n\
         ProcSubset=pid\n\
         RemoveIPC=yes\n\
         SystemCallArchitectures=native\n\
         SystemCallFilter=@system-service\n\
         SystemCallFilter=~@privileged @resources\n\
         SystemCallErrorNumber=EPERM\n",
        store = unit_path(&plan.store),
        home = if home { "read-only" } else { "yes" },
    ));
    let zone = o
        .time_zone
        .as_deref()
        .map(|z| format!(" {}", unit_text(z)))
        .unwrap_or_default();
    let timer = format!(
        "# Written by `auditpack schedule systemd`: starts {base}.service every day.\n\
         [Unit]\n\
         Description=Nightly auditpack {what} run: {name}\n\
         \n\
         [Timer]\n\
         OnCalendar=*-*-* {h:02}:{m:02}:00{zone}\n\
         RandomizedDelaySec={delay}m\n\
         # A run missed while the machine was off starts when it is back.\n\
         Persistent=true\n\
         AccuracySec=1m\n\
         Unit={base}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        what = what(plan),
        h = o.at.0,
        m = o.at.1,
        delay = o.randomized_delay_minutes,
    );
    vec![
        UnitFile {
            name: format!("{base}.service"),
            text: service,
        },
        UnitFile {
            name: format!("{base}.timer"),
            text: timer,
        },
    ]
}

/// A word for `/bin/sh`: single-quoted unless plain, `%` escaped for cron.
fn cron_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@".contains(c));
    let quoted = if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    };
    quoted.replace('%', "\\%")
}

fn cron(plan: &Plan, o: &Options) -> UnitFile {
    let base = unit_base(plan);
    let mut command = vec![cron_word(&o.binary)];
    command.extend(run_args(plan).iter().map(|a| cron_word(a)));
    let name: String = plan.name.chars().filter(|c| !c.is_control()).collect();
    let text = format!(
        "# Written by `auditpack schedule cron` for the {what} \"{name}\": every day at\n\
         # {h:02}:{m:02} in this machine's time zone, as {user}. Install with\n\
         #   crontab -u {user} {base}.crontab\n\
         # (or add it to that user's crontab). No flock is needed: auditpack keeps a lock per\n\
         # organisation in its store, so a run still going the next night is skipped, never\n\
         # doubled. Its output (the result table, and log lines on stderr) is mailed to MAILTO.\n\
         {m} {h} * * * {command}\n",
        what = what(plan),
        h = o.at.0,
        m = o.at.1,
        user = o.user,
        command = command.join(" "),
    );
    UnitFile {
        name: format!("{base}.crontab"),
        text,
    }
}

fn kubernetes(plan: &Plan, o: &Options) -> Result<UnitFile> {
    if o.shards == 0 {
        return Err(Error::invalid("--shards must be at least 1"));
    }
    if plan.kind == Kind::Organisation && o.shards > 1 {
        return Err(Error::invalid(
            "--shards splits a fleet; one organisation runs in one pod",
        ));
    }
    let base = unit_base(plan);
    let n = o.shards;
    let mut args: Vec<Value> = run_args(plan).into_iter().map(Value::from).collect();
    if plan.kind == Kind::Fleet {
        args.push("--shard".into());
        args.push(format!("$(JOB_COMPLETION_INDEX)/{n}").into());
        // A pod retried after a crash skips the organisations already done today.
        args.push("--resume".into());
    }
    let configs: Vec<&PathBuf> = std::iter::once(&plan.config)
        .chain(&plan.includes)
        .collect();
    let config_keys: Vec<(String, &PathBuf)> = configs
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{i}-{}", credential_name(p)), *p))
        .collect();
    let mut mounts = vec![
        json!({"name": "store", "mountPath": plan.store.display().to_string()}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    for (key, path) in &config_keys {
        mounts.push(json!({
            "name": "config", "mountPath": path.display().to_string(),
            "subPath": key, "readOnly": true
        }));
    }
    for s in &plan.secrets {
        mounts.push(json!({
            "name": "secrets", "mountPath": s.path.display().to_string(),
            "subPath": s.credential, "readOnly": true
        }));
    }
    let mut volumes = vec![
        json!({"name": "store", "persistentVolumeClaim": {"claimName": format!("{base}-store")}}),
        json!({"name": "tmp", "emptyDir": {}}),
        json!({"name": "config", "configMap": {"name": format!("{base}-config"), "defaultMode": 0o444}}),
    ];
    if !plan.secrets.is_empty() {
        volumes.push(json!({"name": "secrets", "secret": {
            "secretName": format!("{base}-secrets"), "defaultMode": 0o440
        }}));
    }
    let metadata = |name: String| {
        let mut m = json!({"name": name, "labels": {"app.kubernetes.io/name": "auditpack", "app.kubernetes.io/instance": base}});
        if let Some(ns) = &o.namespace {
            m["namespace"] = ns.as_str().into();
        }
        m
    };
    let pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(format!("{base}-store")),
        "spec": {
            "accessModes": [if n > 1 { "ReadWriteMany" } else { "ReadWriteOnce" }],
            "resources": {"requests": {"storage": o.storage}}
        }
    });
    let mut cron_spec = json!({
        "schedule": format!("{} {} * * *", o.at.1, o.at.0),
        "timeZone": o.time_zone.as_deref().unwrap_or("Etc/UTC"),
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 21600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
    });
    cron_spec["jobTemplate"] = json!({
        "metadata": {"labels": {"app.kubernetes.io/name": "auditpack", "app.kubernetes.io/instance": base}},
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": n,
            "podFailurePolicy": {"rules": [
                {"action": "FailIndex", "onExitCodes": {
                    "containerName": "auditpack", "operator": "In", "values": [1, 2]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
            ]},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "auditpack", "app.kubernetes.io/instance": base}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "containers": [{
                        "name": "auditpack",
                        "image": o.image,
                        "command": [o.binary],
                        "args": args,
                        "env": [{"name": "AUDITPACK_LOG_FORMAT", "value": "json"}],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}
                        },
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "512Mi"},
                            "limits": {"memory": "1Gi"}
                        },
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    });
    let cronjob = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(base.clone()),
        "spec": cron_spec,
    });

    let ns = o
        .namespace
        .as_deref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let mut text = format!(
        "# Written by `auditpack schedule kubernetes` for the {what} \"{name}\".\n\
         # Every day at {h:02}:{m:02} ({zone}) an Indexed Job of {n} pod(s) runs; pod I runs\n\
         # shard I/{n} of the organisations. Exit 1 (failing controls) and 2 (could not run)\n\
         # fail that index without a retry; a crash is retried {retries} times per index.\n\
         # Each file stays at the path the config names: config files from the ConfigMap,\n\
         # secret files from the Secret (never in this manifest). Create both first:\n\
         #   kubectl{ns} create configmap {base}-config",
        what = what(plan),
        name = plan
            .name
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>(),
        h = o.at.0,
        m = o.at.1,
        zone = o.time_zone.as_deref().unwrap_or("Etc/UTC"),
        retries = 2,
    );
    for (key, path) in &config_keys {
        text.push_str(&format!(
            " \\\n#     --from-file={key}={}",
            cron_word(&path.display().to_string())
        ));
    }
    if !plan.secrets.is_empty() {
        text.push_str(&format!(
            "\n#   kubectl{ns} create secret generic {base}-secrets"
        ));
        for s in &plan.secrets {
            text.push_str(&format!(
                " \\\n#     --from-file={}={}",
                s.credential,
                cron_word(&s.path.display().to_string())
            ));
        }
    }
    text.push_str(&format!(
        "\n# With more than one shard the store's volume must be ReadWriteMany.\n\
         #   kubectl{ns} apply -f {base}.yaml\n"
    ));
    for doc in [pvc, cronjob] {
        text.push_str("---\n");
        yaml(&doc, 0, &mut text);
    }
    Ok(UnitFile {
        name: format!("{base}.yaml"),
        text,
    })
}

/// `value` as block YAML at `indent`: every string double-quoted (a JSON
/// string is a valid YAML double-quoted scalar), so no value is ever read
/// as another type or breaks the structure.
fn yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&yaml_key(key));
                out.push(':');
                if is_block(v) {
                    out.push('\n');
                    yaml(v, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(v));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    let mut inner = String::new();
                    yaml(item, indent + 2, &mut inner);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(inner.get(indent + 2..).unwrap_or(""));
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn yaml_key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if plain {
        k.to_owned()
    } else {
        Value::from(k).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(parse_at("02:00").ok(), Some((2, 0)));
        assert_eq!(parse_at("7:05").ok(), Some((7, 5)));
        assert_eq!(parse_at("23:59").ok(), Some((23, 59)));
        for bad in [
            "24:00", "12:60", "1200", "12:5", ":30", "aa:bb", "-1:00", "",
        ] {
            assert!(parse_at(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_words_cannot_break_out() {
        assert_eq!(exec_word("/usr/bin/auditpack"), "/usr/bin/auditpack");
        assert_eq!(
            exec_word("/srv/a b/\"x\"$HOME%n"),
            "\"/srv/a b/\\\"x\\\"$$HOME%%n\""
        );
        assert_eq!(
            unit_text("Acme\nExecStart=/bin/sh 100%"),
            "AcmeExecStart=/bin/sh 100%%"
        );
        assert_eq!(cron_word("/srv/it's 100%"), "'/srv/it'\\''s 100\\%'");
    }

    #[test]
    fn yaml_quotes_every_string() {
        let mut out = String::new();
        yaml(
            &json!({"a": {"b": ["x", {"c": "yes", "d": 1}], "e": []}, "f g": "null"}),
            0,
            &mut out,
        );
        assert_eq!(
            out,
            "a:\n  b:\n    - \"x\"\n    - c: \"yes\"\n      d: 1\n  e: []\n\"f g\": \"null\"\n"
        );
    }
}
