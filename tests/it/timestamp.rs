//! RFC 3161 timestamps over the package's tag manifest, against a local TSA built
//! from `openssl ts -reply` (installed by scripts/setup-test-tools.sh), and
//! checked both by `auditpack verify` and by `openssl ts -verify`.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use auditpack::config::{KeySource, Signing};
use auditpack::package::{
    generate_key, load_signer, verify, write_bag, write_zip, BagInfo, Signer, Stamp,
    TimestampAuthority, VerifyOptions, TIMESTAMP_FILE,
};
use common::IDENTITY;

/// How the local TSA answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A real reply from `openssl ts -reply`.
    Honest,
    /// HTTP 200 with bytes that are no reply.
    Garbage,
    /// A real reply, but to a request for other data.
    OtherData,
}

/// A certificate authority and a TSA certificate it issued, made by openssl.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// `key` is an `openssl req -newkey` argument: `rsa:2048` or `ec`.
    fn new(dir: &Path, name: &str, key: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ec_params = dir.join("ec.pem");
        let newkey = if key == "ec" {
            openssl(
                &dir,
                &["ecparam", "-name", "prime256v1", "-out"],
                &[&ec_params],
            );
            format!("ec:{}", ec_params.display())
        } else {
            key.to_owned()
        };
        let subject_ca = format!("/CN={name} Root CA");
        let subject_tsa = format!("/CN={name} TSA");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                &newkey,
                "-nodes",
                "-days",
                "3650",
                "-subj",
                &subject_ca,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            &[],
        );
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                &newkey,
                "-nodes",
                "-subj",
                &subject_tsa,
                "-keyout",
                "tsa.key",
                "-out",
                "tsa.csr",
            ],
            &[],
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "extendedKeyUsage=critical,timeStamping\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        )
        .expect("ext");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                "ext.cnf",
                "-out",
                "tsa.pem",
            ],
            &[],
        );
        std::fs::write(dir.join("tsaserial"), "01\n").expect("serial");
        std::fs::write(
            dir.join("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {}\nserial = $dir/tsaserial\n\
                 crypto_device = builtin\nsigner_cert = $dir/tsa.pem\ncerts = $dir/ca.pem\n\
                 signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
                 digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\n\
                 tsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                dir.display()
            ),
        )
        .expect("tsa.cnf");
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

fn openssl(dir: &Path, args: &[&str], paths: &[&Path]) {
    let out = Command::new("openssl")
        .args(args)
        .args(paths)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/setup-test-tools.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TSA on a loopback port answering with `openssl ts -reply`.
struct Tsa {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Tsa {
    fn start(pki: &Pki, mode: Mode) -> Tsa {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/tsr", listener.local_addr().expect("addr"));
        let dir = pki.dir.clone();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut query = vec![0u8; length];
                if reader.read_exact(&mut query).is_err() {
                    continue;
                }
                let query_file = dir.join(format!("q{n}.tsq"));
                let reply_file = dir.join(format!("r{n}.tsr"));
                let body = match mode {
                    Mode::Garbage => b"this is not a timestamp".to_vec(),
                    Mode::Honest | Mode::OtherData => {
                        if mode == Mode::OtherData {
                            std::fs::write(dir.join("other"), b"other data").ok();
                            openssl(
                                &dir,
                                &["ts", "-query", "-sha256", "-cert", "-data", "other", "-out"],
                                &[&query_file],
                            );
                        } else {
                            std::fs::write(&query_file, &query).ok();
                        }
                        openssl(
                            &dir,
                            &["ts", "-reply", "-config", "tsa.cnf", "-queryfile"],
                            &[&query_file, Path::new("-out"), &reply_file],
                        );
                        std::fs::read(&reply_file).unwrap_or_default()
                    }
                };
                let mut stream = reader.into_inner();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Tsa { url, requests }
    }
}

/// A small run folder, a key, and its allowed_signers file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("evidence/m365")).expect("mkdir");
        std::fs::write(run.join("evidence/m365/users.json"), br#"{"value":[]}"#).expect("w");
        std::fs::write(run.join("run.json"), b"{}").expect("w");
        std::fs::write(run.join("custody.jsonl"), b"").expect("w");
        generate_key(&dir.path().join("key"), IDENTITY, None).expect("keygen");
        let fixture = Fixture { dir };
        let line = fixture.signer(None).allowed_signers_line().expect("line");
        std::fs::write(fixture.signers(), line).expect("w");
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn signers(&self) -> PathBuf {
        self.path().join("allowed_signers")
    }

    fn signer(&self, tsa: Option<&str>) -> Signer {
        load_signer(&Signing {
            key: KeySource::File(self.path().join("key")),
            passphrase: None,
            identity: IDENTITY.into(),
            tsa_url: tsa.map(str::to_owned),
        })
        .expect("load key")
    }

    fn package(&self, name: &str, tsa: Option<&str>) -> auditpack::error::Result<PathBuf> {
        Ok(write_bag(
            &self.path().join("run"),
            &self.path().join("out"),
            name,
            &info(),
            Some(&self.signer(tsa)),
        )?)
    }

    fn verify(&self, package: &Path, ca: Option<PathBuf>) -> auditpack::package::VerifyReport {
        verify(
            package,
            &VerifyOptions {
                allowed_signers: self.signers(),
                identity: Some(IDENTITY.into()),
                tsa_certificates: ca,
            },
        )
        .expect("verify runs")
    }
}

fn info() -> BagInfo {
    BagInfo {
        organisation: "Test Clinic".into(),
        contact_name: None,
        contact_email: None,
        run_id: "run-1".into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:01:00Z".into(),
        host: "test".into(),
    }
}

#[test]
fn a_timestamped_package_verifies_with_auditpack_and_openssl() {
    let fixture = Fixture::new();
    for key in ["rsa:2048", "ec"] {
        let name = if key == "ec" { "EcStamp" } else { "RsaStamp" };
        let pki = Pki::new(fixture.path(), name, key);
        let tsa = Tsa::start(&pki, Mode::Honest);
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        let package = fixture.package(name, Some(&tsa.url)).expect("packaged");
        assert_eq!(tsa.requests.load(Ordering::SeqCst), 1);
        assert!(package.join(TIMESTAMP_FILE).is_file());

        for target in [package.clone(), write_zip(&package).expect("zip")] {
            let report = fixture.verify(&target, Some(pki.ca()));
            assert!(report.is_valid(), "{key}: {:?}", report.problems);
            let stamp = report.timestamp.expect("a timestamp");
            assert!(stamp.trusted);
            assert_eq!(stamp.authority, format!("CN={name} TSA"));
            let at = chrono::DateTime::parse_from_rfc3339(&stamp.time).expect("rfc 3339");
            assert!(at >= before && at <= chrono::Utc::now() + chrono::Duration::seconds(5));
        }

        // Without trusted TSA certificates the token is still checked, not trusted.
        let report = fixture.verify(&package, None);
        assert!(report.is_valid(), "{:?}", report.problems);
        assert!(!report.timestamp.expect("a timestamp").trusted);

        // The stock tool agrees, with the command README-VERIFY.txt gives.
        let out = Command::new("openssl")
            .args([
                "ts",
                "-verify",
                "-data",
                "tagmanifest-sha256.txt",
                "-in",
                TIMESTAMP_FILE,
                "-CAfile",
            ])
            .arg(pki.ca())
            .current_dir(&package)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl ts -verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The token is a tag file outside the tag manifest it stamps,
        // so the reference BagIt validator still accepts the bag.
        let out = Command::new("python3")
            .args(["-m", "bagit", "--validate"])
            .arg(&package)
            .output()
            .expect("bagit.py");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let readme = std::fs::read_to_string(package.join("README-VERIFY.txt")).expect("readme");
        assert!(readme.contains(&format!(
            "openssl ts -verify -data tagmanifest-sha256.txt -in {TIMESTAMP_FILE} -CAfile tsa-ca.pem"
        )));
        assert!(readme.contains("--tsa-ca tsa-ca.pem"));
        // Its check that every file is accounted for counts the token among
        // the files no manifest lists.
        let diff: String = readme
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("diff <("))
            .take(2)
            .map(|l| l.trim().trim_end_matches('\\'))
            .collect();
        assert!(diff.contains(TIMESTAMP_FILE), "{diff}");
        let out = Command::new("bash")
            .args(["-c", &diff])
            .current_dir(&package)
            .output()
            .expect("bash");
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "{diff}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_timestamp_from_an_untrusted_tsa_or_for_other_data_fails() {
    let fixture = Fixture::new();
    let pki = Pki::new(fixture.path(), "Stamp", "rsa:2048");
    let stranger = Pki::new(fixture.path(), "Stranger", "rsa:2048");
    let tsa = Tsa::start(&pki, Mode::Honest);
    let first = fixture.package("first", Some(&tsa.url)).expect("first");
    std::fs::write(fixture.path().join("run/evidence/m365/more.json"), b"{}").expect("w");
    let second = fixture.package("second", Some(&tsa.url)).expect("second");

    let report = fixture.verify(&first, Some(stranger.ca()));
    assert!(
        report.problems.iter().any(|p| p.contains("does not chain")),
        "{:?}",
        report.problems
    );

    // The first package's token beside the second's tag manifest.
    std::fs::copy(first.join(TIMESTAMP_FILE), second.join(TIMESTAMP_FILE)).expect("copy");
    let report = fixture.verify(&second, Some(pki.ca()));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(TIMESTAMP_FILE) && p.contains("other data")),
        "{:?}",
        report.problems
    );

    // Any flipped byte in the token is caught.
    let token = std::fs::read(first.join(TIMESTAMP_FILE)).expect("read");
    for at in [token.len() / 3, token.len() / 2, token.len() - 20] {
        let mut bad = token.clone();
        bad[at] ^= 0x01;
        std::fs::write(first.join(TIMESTAMP_FILE), &bad).expect("write");
        let report = fixture.verify(&first, Some(pki.ca()));
        assert!(!report.is_valid(), "a flipped byte at {at} went unnoticed");
        assert!(report.timestamp.is_none());
    }
}

#[test]
fn trusted_tsa_certificates_demand_a_timestamp() {
    let fixture = Fixture::new();
    let pki = Pki::new(fixture.path(), "Stamp", "rsa:2048");
    let package = fixture.package("plain", None).expect("packaged");
    assert!(!package.join(TIMESTAMP_FILE).exists());
    assert!(fixture.verify(&package, None).is_valid());
    let report = fixture.verify(&package, Some(pki.ca()));
    assert_eq!(
        report.problems,
        vec![format!(
            "{TIMESTAMP_FILE}: missing, so the package has no timestamp"
        )]
    );

    let bad_ca = fixture.path().join("not-a-cert.pem");
    std::fs::write(&bad_ca, "nothing here").expect("write");
    let err = verify(
        &package,
        &VerifyOptions {
            allowed_signers: fixture.signers(),
            identity: None,
            tsa_certificates: Some(bad_ca),
        },
    )
    .expect_err("an unreadable CA file is an error");
    assert!(err.to_string().contains("not-a-cert.pem"), "{err}");
}

#[test]
fn a_bad_tsa_reply_fails_packaging_and_leaves_no_package() {
    let fixture = Fixture::new();
    let pki = Pki::new(fixture.path(), "Stamp", "rsa:2048");
    for mode in [Mode::Garbage, Mode::OtherData] {
        let tsa = Tsa::start(&pki, mode);
        let err = fixture
            .package("stamped", Some(&tsa.url))
            .expect_err("a bad reply fails the package");
        let text = err.to_string();
        assert!(text.contains(&tsa.url), "{text}");
        assert!(!fixture.path().join("out/stamped").exists());
        let leftovers: Vec<_> = std::fs::read_dir(fixture.path().join("out"))
            .expect("out")
            .flatten()
            .collect();
        assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    }
    // Nobody listening: a clear error, after bounded retries.
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/", listener.local_addr().expect("addr"))
    };
    let err = TimestampAuthority::new(&url)
        .expect("client")
        .stamp(b"x")
        .expect_err("unreachable");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[test]
fn the_cli_prints_the_time_and_a_config_tsa_url_is_used() {
    let h = common::Harness::demo();
    let pki = Pki::new(h.path(), "Stamp", "ec");
    let tsa = Tsa::start(&pki, Mode::Honest);
    let mut config = h.config(None);
    if let Some(signing) = config.signing.as_mut() {
        signing.tsa_url = Some(tsa.url.clone());
    }
    let outcome = h.run(&config);
    assert!(outcome.package.join(TIMESTAMP_FILE).is_file());
    let out = Command::new(env!("CARGO_BIN_EXE_auditpack"))
        .arg("verify")
        .arg(&outcome.archive)
        .arg("--allowed-signers")
        .arg(h.allowed_signers())
        .arg("--tsa-ca")
        .arg(pki.ca())
        .output()
        .expect("auditpack runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("timestamp: "), "{stdout}");
    assert!(
        stdout.contains("by CN=Stamp TSA (chains to a TSA certificate you gave)"),
        "{stdout}"
    );
}

#[test]
fn a_packaging_failure_after_collection_says_what_finished_and_how_to_package_later() {
    let h = common::Harness::demo();
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/", listener.local_addr().expect("addr"))
    };
    let mut config = h.config(None);
    if let Some(signing) = config.signing.as_mut() {
        signing.tsa_url = Some(url.clone());
    }
    let err = auditpack::pipeline::run(&config, &common::fast_options(), &h.runtime)
        .expect_err("the TSA is unreachable");
    let text = err.to_string();
    let runs: Vec<_> = std::fs::read_dir(h.path().join("store/runs"))
        .expect("the run folder stays")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].display().to_string();
    for needle in [
        "packaging failed: ",
        "cannot reach",
        "Collection, evaluation and reports finished",
        &format!("run folder: {run}"),
        "m365 (m365): complete",
        "ninja (ninjaone): complete",
        &format!("auditpack package {run} --config "),
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(runs[0].join("reports/report.pdf").is_file());
}
