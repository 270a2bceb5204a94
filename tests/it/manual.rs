//! Manual evidence: documents with sidecars are hashed and copied into the
//! run under safe names, become facts, travel in the signed package, and bad
//! inputs are refused one by one with a reason.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use auditpack::config::{Config, KeySource, Owner, Signing};
use auditpack::evidence::{read_custody, DatasetStatus};
use auditpack::facts::{FactKind, Facts};
use auditpack::package::{generate_key, verify, VerifyOptions};
use sha2::{Digest, Sha256};

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

const RISK: &str = r#"title = "Security risk analysis 2026"
controls = ["hipaa:164.308(a)(1)(ii)(A)", "soc2:CC3.2"]
owner = "internal"
evidence_date = 2026-03-02
expires = 2027-03-02
"#;

const RESTORE: &str = r#"title = "Backup restore test, Q3"
controls = ["hipaa:164.308(a)(7)(ii)(D)"]
owner = "msp"
evidence_date = 2026-09-14T10:30:00Z
"#;

#[test]
fn documents_with_sidecars_become_hashed_evidence_and_facts() {
    let work = tempfile::tempdir().expect("tempdir");
    let docs = work.path().join("manual-evidence");
    let pdf = b"%PDF-1.7 risk analysis body \x00\x01\x02".to_vec();
    let restore = b"restore log: 214 files restored, checksums match\n".to_vec();
    write(&docs, "Risk Analysis 2026.PDF", &pdf);
    write(
        &docs,
        "Risk Analysis 2026.PDF.evidence.toml",
        RISK.as_bytes(),
    );
    write(&docs, "backups/restore-test.log", &restore);
    write(
        &docs,
        "backups/restore-test.log.evidence.toml",
        RESTORE.as_bytes(),
    );
    // Refused one by one:
    write(&docs, "training-roster.xlsx", b"no sidecar");
    write(&docs, "baa-dentalcloud.pdf.evidence.toml", RISK.as_bytes());
    write(&docs, "policy.docx", b"policy");
    write(
        &docs,
        "policy.docx.evidence.toml",
        b"title = \"Policy\"\ncontrols = [\"164.308\"]\nevidence_date = 2026-01-01\n",
    );
    write(&docs, "expired-wrongly.txt", b"x");
    write(
        &docs,
        "expired-wrongly.txt.evidence.toml",
        b"title = \"X\"\ncontrols = [\"hipaa:164.316(b)(1)\"]\nevidence_date = 2026-05-01\nexpires = 2026-01-01\n",
    );
    std::os::unix::fs::symlink("/etc/hostname", docs.join("link.txt")).expect("symlink");

    let key = work.path().join("key");
    let pair = generate_key(&key, common::IDENTITY, None).expect("keygen");
    let signers = work.path().join("allowed_signers");
    std::fs::write(&signers, pair.signer.allowed_signers_line().expect("line")).expect("write");
    let config_path = work.path().join("auditpack.toml");
    std::fs::write(
        &config_path,
        "[organisation]\nname = \"Manual\"\nframeworks = [\"hipaa\", \"soc2\"]\nstore = \"store\"\n\n[sources.docs]\ntype = \"manual\"\npath = \"manual-evidence\"\n",
    )
    .expect("config");
    let mut config = Config::load(&config_path).expect("config loads");
    config.signing = Some(Signing {
        key: KeySource::File(key),
        passphrase: None,
        identity: common::IDENTITY.into(),
        tsa_url: None,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome =
        auditpack::pipeline::run(&config, &common::fast_options(), &runtime).expect("run");

    let src = &outcome.manifest.sources["docs"];
    let reasons: BTreeMap<&str, &str> = src
        .rejected
        .iter()
        .map(|r| (r.input.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        BTreeMap::from([
            ("baa-dentalcloud.pdf.evidence.toml", "orphan-sidecar"),
            ("expired-wrongly.txt.evidence.toml", "bad-sidecar"),
            ("link.txt", "symlink"),
            ("policy.docx.evidence.toml", "bad-sidecar"),
            ("training-roster.xlsx", "missing-sidecar"),
        ])
    );
    assert_eq!(src.datasets["documents"].status, DatasetStatus::Partial);
    assert_eq!(src.datasets["documents"].records, 2);

    // Copies are byte-identical, under counter names, with custody entries.
    let run = &outcome.run_dir;
    assert_eq!(
        std::fs::read(run.join("manual/docs/doc-00001.pdf")).expect("pdf"),
        pdf
    );
    assert_eq!(
        std::fs::read(run.join("manual/docs/doc-00002.log")).expect("log"),
        restore
    );
    assert_eq!(
        std::fs::read_to_string(run.join("manual/docs/doc-00001.evidence.toml")).expect("sidecar"),
        RISK
    );
    let custody = read_custody(&run.join("custody.jsonl")).expect("custody");
    let pdf_entry = custody
        .iter()
        .find(|c| c.path == "manual/docs/doc-00001.pdf")
        .expect("custody of the pdf");
    assert_eq!(pdf_entry.sha256, hex::encode(Sha256::digest(&pdf)));
    assert_eq!(pdf_entry.request, "FILE Risk Analysis 2026.PDF");

    let facts: Facts =
        serde_json::from_slice(&std::fs::read(run.join("facts/facts.json")).expect("facts"))
            .expect("facts parse");
    assert_eq!(facts.manual.len(), 2);
    let risk = &facts.manual[0];
    assert_eq!(risk.title, "Security risk analysis 2026");
    assert_eq!(risk.controls, ["hipaa:164.308(a)(1)(ii)(A)", "soc2:CC3.2"]);
    assert_eq!(risk.owner, Some(Owner::Internal));
    assert_eq!(risk.sha256, hex::encode(Sha256::digest(&pdf)));
    assert!(risk.expires.is_some() && risk.evidence_date.is_some());
    assert_eq!(facts.manual[1].owner, Some(Owner::Msp));
    assert!(facts.manual[1].expires.is_none());
    assert!(facts
        .evidence(FactKind::ManualEvidence)
        .any(|e| e == "manual/docs/doc-00002.log"));

    // The documents travel in the signed package, and it verifies.
    assert!(outcome
        .package
        .join("data/manual/docs/doc-00001.pdf")
        .exists());
    let report = verify(
        &outcome.package,
        &VerifyOptions {
            allowed_signers: signers,
            identity: Some(common::IDENTITY.into()),
            ..VerifyOptions::default()
        },
    )
    .expect("verify runs");
    assert!(report.is_valid(), "{:?}", report.problems);
}
