//! Uploading packages to an S3 store with Object Lock, and verifying them in
//! place, against boto3 in the same run.
//!
//! `cargo bench --bench store` starts SeaweedFS (`weed`, installed by
//! `scripts/setup-test-tools.sh`) on 127.0.0.1 free ports with a bucket that
//! has Object Lock, builds (a) one signed 2 GiB package zip and (b) a
//! fleet's 200 signed small packages (256 KiB each), and times:
//! - auditpack's upload (`S3Store::upload_file`, multipart with parts in
//!   flight for (a), `S3Store::upload_many`, 16 objects in flight, for (b)),
//!   each object in compliance mode with a retain-until date and a SHA-256
//!   checksum the server verifies;
//! - boto3's `upload_file` of the same files to the same server with the same
//!   Object Lock headers and `ChecksumAlgorithm=SHA256` (its default
//!   `TransferConfig`: 8 MiB parts, 10 threads), one file after the other as
//!   a script calling it does;
//! - verifying in place with ranged reads (`verify_remote` over
//!   `RemoteObject`: every payload hash, the manifests and the signature),
//!   next to boto3 merely downloading the same objects (for context).
//!
//! Targets (issue 22): (a) upload within 1.2x of boto3; (b) faster than
//! boto3. `AUDITPACK_BENCH_SCALE=0.1` runs a tenth of the sizes (a quick
//! smoke run, not for the README).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auditpack::config::S3Location;
use auditpack::package::{verify_remote, write_bag, write_zip, BagInfo, Signer};
use auditpack::store::{RemoteObject, S3Store};
use common::{figure, Target, MIB};

const ACCESS_KEY: &str = "AKIDAUDITPACKBENCH";
const SECRET_KEY: &str = "bench-secret-not-a-real-one";
const BUCKET: &str = "bench-evidence";

/// `weed server`, stopped when dropped.
struct Weed(Child);

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("store benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn start_weed(dir: &Path) -> Result<(Weed, String), String> {
    std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    for _ in 0..8 {
        ports.push(free_port()?);
    }
    let log = std::fs::File::create(dir.join("weed.log")).map_err(|e| e.to_string())?;
    let child = Command::new("weed")
        .arg("server")
        .arg(format!("-dir={}", dir.join("data").display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
        .arg(format!("-master.port={}", ports[0]))
        .arg(format!("-master.port.grpc={}", ports[1]))
        .arg(format!("-volume.port={}", ports[2]))
        .arg(format!("-volume.port.grpc={}", ports[3]))
        .arg(format!("-filer.port={}", ports[4]))
        .arg(format!("-filer.port.grpc={}", ports[5]))
        .arg("-s3")
        .arg(format!("-s3.port={}", ports[6]))
        .arg(format!("-s3.port.grpc={}", ports[7]))
        .arg(format!("-s3.config={}", config.display()))
        .args([
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=0",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-iam=false",
            "-metricsPort=0",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start weed (scripts/setup-test-tools.sh installs it): {e}"))?;
    Ok((Weed(child), format!("http://127.0.0.1:{}", ports[6])))
}

fn settings(dir: &Path, endpoint: &str) -> Result<auditpack::config::StoreS3, String> {
    std::fs::write(dir.join("key_id"), ACCESS_KEY).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("secret"), SECRET_KEY).map_err(|e| e.to_string())?;
    let table: toml::Value = toml::from_str(&format!(
        "endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\npath_style = true\nretention_days = 1\n\
         access_key_id_file = \"key_id\"\nsecret_access_key_file = \"secret\"\n"
    ))
    .map_err(|e| e.to_string())?;
    auditpack::config::store_s3_from_toml(
        Some(table),
        S3Location {
            bucket: BUCKET.into(),
            prefix: "evidence".into(),
        },
        dir,
    )
    .map_err(|e| e.to_string())
}

/// Incompressible bytes from a xorshift generator.
fn fill(f: &mut impl std::io::Write, mut left: u64, state: &mut u64) -> Result<(), String> {
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).map_err(|e| e.to_string())?;
        for chunk in buf[..n].chunks_mut(8) {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    Ok(())
}

/// One signed package zip of `bytes` of evidence, in `dir`; the run
/// folder and package folder are removed again (only the zip is kept).
fn make_package(dir: &Path, name: &str, bytes: u64, signer: &Signer) -> Result<PathBuf, String> {
    let run = dir.join(format!("{name}-run"));
    std::fs::create_dir_all(run.join("evidence")).map_err(|e| e.to_string())?;
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (name.len() as u64) ^ fastrand::u64(..);
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(run.join("evidence/export.bin")).map_err(|e| e.to_string())?,
    );
    fill(&mut f, bytes, &mut state)?;
    f.flush().map_err(|e| e.to_string())?;
    drop(f);
    // A run folder's custody log (packaged at the top and under data/);
    // empty, as the payload here was not collected.
    std::fs::write(run.join("custody.jsonl"), b"").map_err(|e| e.to_string())?;
    let info = BagInfo {
        organisation: name.into(),
        contact_name: None,
        contact_email: None,
        run_id: name.into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:00:00Z".into(),
        host: "bench".into(),
    };
    let bag = write_bag(&run, dir, name, &info, Some(signer)).map_err(|e| e.to_string())?;
    let zip = write_zip(&bag).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&run).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&bag).map_err(|e| e.to_string())?;
    Ok(zip)
}

/// boto3's `upload_file` of each file, one after the other, to `<key>`,
/// then (for context) downloading each to nowhere; returns the seconds
/// of each, as the script measured them (interpreter start excluded).
fn boto3(endpoint: &str, files: &[(PathBuf, String)], dir: &Path) -> Result<(f64, f64), String> {
    const SCRIPT: &str = r#"
import datetime, json, sys, time
import boto3
from botocore.config import Config
endpoint, listing = sys.argv[1], sys.argv[2]
files = json.load(open(listing))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
extra = {"ChecksumAlgorithm": "SHA256", "ObjectLockMode": "COMPLIANCE",
         "ObjectLockRetainUntilDate": until}
start = time.perf_counter()
for path, key in files:
    s3.upload_file(path, "bench-evidence", key, ExtraArgs=extra)
up = time.perf_counter() - start
class Sink:
    def write(self, b):
        return len(b)
start = time.perf_counter()
for path, key in files:
    s3.download_fileobj("bench-evidence", key, Sink())
down = time.perf_counter() - start
print(up, down)
"#;
    let listing = dir.join("boto3-files.json");
    let pairs: Vec<(String, String)> = files
        .iter()
        .map(|(p, k)| (p.display().to_string(), k.clone()))
        .collect();
    std::fs::write(
        &listing,
        serde_json::to_vec(&pairs).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(endpoint)
        .arg(&listing)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    match (it.next(), it.next()) {
        (Some(Ok(up)), Some(Ok(down))) => Ok((up, down)),
        _ => Err(format!("boto3 printed {text:?}")),
    }
}

fn bench() -> Result<(), String> {
    let scale = common::scale();
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_weed, endpoint) = start_weed(&root.path().join("weed"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let store = runtime
        .block_on(S3Store::connect(&settings(root.path(), &endpoint)?))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        let made = runtime.block_on(
            store
                .client()
                .create_bucket()
                .bucket(BUCKET)
                .object_lock_enabled_for_bucket(true)
                .send(),
        );
        if made.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("SeaweedFS did not start: {made:?}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    runtime
        .block_on(store.check_bucket())
        .map_err(|e| e.to_string())?;

    let (signer, options) = common::signing(root.path())?;
    let packages = root.path().join("packages");
    std::fs::create_dir_all(&packages).map_err(|e| e.to_string())?;
    let until = store.retain_until(chrono::Utc::now());

    // (a) one large package.
    let large_bytes = ((2048.0 * scale).round() as u64).max(32) << 20;
    let large = make_package(&packages, "large", large_bytes, &signer)?;
    let zip_bytes = std::fs::metadata(&large).map_err(|e| e.to_string())?.len();
    let mb = zip_bytes as f64 / MIB;
    println!("(a) one package zip of {mb:.0} MiB");
    let t = Instant::now();
    let up = runtime
        .block_on(store.upload_file(&large, "org/packages/large.zip", until))
        .map_err(|e| e.to_string())?;
    let ours_up = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (object, info) =
        RemoteObject::open(&store, &up.key, runtime.handle().clone()).map_err(|e| e.to_string())?;
    let report = verify_remote(&object, &options, None).map_err(|e| e.to_string())?;
    let ours_verify = t.elapsed().as_secs_f64();
    if !report.is_valid() || info.lock.mode.as_deref() != Some("COMPLIANCE") {
        return Err(format!(
            "the large package did not verify in place: {:?} {:?}",
            report.problems, info.lock
        ));
    }
    let (boto_up, boto_down) = boto3(
        &endpoint,
        &[(large.clone(), "boto3/packages/large.zip".into())],
        root.path(),
    )?;
    println!(
        "  auditpack upload {ours_up:.2} s ({:.0} MiB/s), boto3 upload_file {boto_up:.2} s ({:.0} MiB/s)",
        mb / ours_up,
        mb / boto_up
    );
    println!(
        "  auditpack verify in place {ours_verify:.2} s ({:.0} MiB/s), boto3 download {boto_down:.2} s",
        mb / ours_verify
    );
    figure(
        "store_large_upload_mib_s",
        mb / ours_up,
        "MiB/s",
        Target::None,
    );
    figure(
        "store_large_upload_vs_boto3",
        ours_up / boto_up,
        "x",
        Target::AtMost(1.2),
    );
    figure(
        "store_large_verify_in_place_mib_s",
        mb / ours_verify,
        "MiB/s",
        Target::None,
    );
    figure(
        "store_large_verify_vs_boto3_download",
        ours_verify / boto_down,
        "x",
        Target::None,
    );
    std::fs::remove_file(&large).map_err(|e| e.to_string())?;

    // (b) a fleet's small packages.
    let count = common::scaled(200);
    let mut small = Vec::with_capacity(count);
    for i in 0..count {
        let zip = make_package(&packages, &format!("org{i:03}"), 256 << 10, &signer)?;
        small.push((zip, format!("org{i:03}/packages/run.zip")));
    }
    let total: u64 = small
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "(b) {count} package zips, {:.1} MiB in all",
        total as f64 / MIB
    );
    let t = Instant::now();
    let uploaded = runtime
        .block_on(store.upload_many(&small, until))
        .map_err(|e| e.to_string())?;
    let ours_up = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for u in &uploaded {
        let (object, _) = RemoteObject::open(&store, &u.key, runtime.handle().clone())
            .map_err(|e| e.to_string())?;
        let report = verify_remote(&object, &options, None).map_err(|e| e.to_string())?;
        if !report.is_valid() {
            return Err(format!("{} did not verify: {:?}", u.key, report.problems));
        }
    }
    let ours_verify = t.elapsed().as_secs_f64();
    let theirs: Vec<(PathBuf, String)> = small
        .iter()
        .map(|(p, k)| (p.clone(), format!("boto3/{k}")))
        .collect();
    let (boto_up, boto_down) = boto3(&endpoint, &theirs, root.path())?;
    println!(
        "  auditpack upload {ours_up:.2} s ({:.0} packages/s), boto3 upload_file {boto_up:.2} s ({:.0} packages/s)",
        count as f64 / ours_up,
        count as f64 / boto_up
    );
    println!(
        "  auditpack verify in place {ours_verify:.2} s ({:.0} packages/s), boto3 download {boto_down:.2} s",
        count as f64 / ours_verify
    );
    figure(
        "store_small_upload_packages_s",
        count as f64 / ours_up,
        "pkg/s",
        Target::None,
    );
    figure(
        "store_small_upload_speedup_vs_boto3",
        boto_up / ours_up,
        "x",
        Target::AtLeast(1.0),
    );
    figure(
        "store_small_verify_in_place_packages_s",
        count as f64 / ours_verify,
        "pkg/s",
        Target::None,
    );
    Ok(())
}
