//! Config errors name the file, line and key, and never echo a secret.

use std::path::Path;

use auditpack::config::Config;
use auditpack::sources::build_collectors;

fn load(text: &str) -> Result<Config, String> {
    Config::from_str_at(text, Path::new("/etc/auditpack/clinic.toml")).map_err(|e| e.to_string())
}

const ORG: &str = "[organisation]\nname = \"X\"\nframeworks = [\"hipaa\"]\n";

#[test]
fn unknown_top_level_key_names_file_line_and_key() {
    let err = load(&format!("{ORG}colour = \"blue\"\n")).expect_err("unknown key is refused");
    assert!(err.starts_with("/etc/auditpack/clinic.toml:4:"), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn unknown_key_in_a_source_names_line_and_key() {
    let text = format!("{ORG}\n[sources.ninja]\ntype = \"ninjaone\"\nclient_id = \"c\"\nclient_secret_env = \"V\"\nregion = \"eu\"\n");
    let config = load(&text).expect("the top level is valid");
    let err = build_collectors(&config.sources)
        .err()
        .expect("unknown source key is refused")
        .to_string();
    assert!(err.contains("clinic.toml:9:"), "{err}");
    assert!(err.contains("region"), "{err}");
    assert!(err.contains("[sources.ninja]"), "{err}");
}

#[test]
fn literal_secret_is_refused_without_echoing_it() {
    let canary = "CANARY-literal-9f8e7d";
    let text = format!(
        "{ORG}\n[sources.m365]\ntype = \"m365\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"{canary}\"\n"
    );
    let config = load(&text).expect("the top level is valid");
    let err = build_collectors(&config.sources)
        .err()
        .expect("literal secret is refused")
        .to_string();
    assert!(err.contains("clinic.toml:9:"), "{err}");
    assert!(err.contains("literal secret"), "{err}");
    assert!(err.contains("client_secret_env"), "{err}");
    assert!(
        !err.contains(canary),
        "the error must not echo the secret: {err}"
    );
}

#[test]
fn literal_signing_key_is_refused() {
    let text = format!(
        "{ORG}\n[signing]\nidentity = \"a@b\"\nkey = \"-----BEGIN OPENSSH PRIVATE KEY-----\"\n"
    );
    let err = load(&text).expect_err("literal key is refused");
    assert!(
        err.contains("literal secret") && !err.contains("BEGIN OPENSSH"),
        "{err}"
    );
}

#[test]
fn a_tsa_url_with_credentials_or_another_scheme_is_refused_without_echoing_it() {
    let canary = "CANARY-tsa-4b3a";
    let signing = "[signing]\nidentity = \"a@b\"\nkey_file = \"k\"\n";
    for (url, says) in [
        (
            format!("https://user:{canary}@tsa.example/tsr"),
            "credentials",
        ),
        (format!("ftp://tsa.example/{canary}"), "not an http(s) URL"),
        (format!("tsa.example/{canary}"), "not a URL"),
    ] {
        let err = load(&format!("{ORG}\n{signing}tsa_url = \"{url}\"\n")).expect_err("refused");
        assert!(err.contains(says), "{err}");
        assert!(
            !err.contains(canary),
            "the error must not echo the URL: {err}"
        );
    }
    let config = load(&format!(
        "{ORG}\n{signing}tsa_url = \"https://tsa.example/tsr\"\n"
    ))
    .expect("a plain https URL is accepted");
    let signing = config.signing.expect("signing");
    assert_eq!(signing.tsa_url.as_deref(), Some("https://tsa.example/tsr"));
}

#[test]
fn missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/auditpack.toml"))
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("/nonexistent/auditpack.toml"), "{err}");
}

#[test]
fn unknown_source_type_lists_the_known_ones() {
    let config =
        load(&format!("{ORG}\n[sources.x]\ntype = \"kaseya\"\n")).expect("valid top level");
    let err = build_collectors(&config.sources)
        .err()
        .expect("unknown type")
        .to_string();
    assert!(
        err.contains("kaseya") && err.contains("m365") && err.contains("ninjaone"),
        "{err}"
    );
}

#[test]
fn source_needs_exactly_one_secret_reference() {
    let both = format!("{ORG}\n[sources.n]\ntype = \"ninjaone\"\nclient_id = \"c\"\nclient_secret_env = \"V\"\nclient_secret_file = \"f\"\n");
    let err = build_collectors(&load(&both).expect("valid").sources)
        .err()
        .expect("both refused")
        .to_string();
    assert!(err.contains("only one"), "{err}");
    let none = format!("{ORG}\n[sources.n]\ntype = \"ninjaone\"\nclient_id = \"c\"\n");
    let err = build_collectors(&load(&none).expect("valid").sources)
        .err()
        .expect("none refused")
        .to_string();
    assert!(err.contains("client_secret_env"), "{err}");
}

#[test]
fn hostile_source_names_are_refused() {
    let err =
        load(&format!("{ORG}\n[sources.\"../evil\"]\ntype = \"m365\"\n")).expect_err("refused");
    assert!(err.contains("source name"), "{err}");
}

#[test]
fn wrong_type_names_the_line() {
    let err = load("[organisation]\nname = \"X\"\nframeworks = \"hipaa\"\n").expect_err("refused");
    assert!(err.starts_with("/etc/auditpack/clinic.toml:3:"), "{err}");
}

#[test]
fn a_valid_config_resolves_paths_against_its_folder() {
    let text = format!("{ORG}store = \"runs\"\n\n[ownership.overrides]\n\"pci-dss:8.2.6\" = \"internal\"\n\n[thresholds]\ncritical_patch_days = 14\n");
    let config = load(&text).expect("valid");
    assert_eq!(config.organisation.store, Path::new("/etc/auditpack/runs"));
    assert_eq!(config.thresholds.critical_patch_days, Some(14));
    assert_eq!(config.ownership_overrides.len(), 1);
}

/// Every ```toml block of the README, with its first line number; the
/// indentation of a block inside a list item is removed.
pub(crate) fn readme_toml_blocks() -> Vec<(usize, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```toml") => {
                current = Some((i + 2, line.len() - trimmed.len(), String::new()));
            }
            Some((start, _, text)) if trimmed.starts_with("```") => {
                blocks.push((*start, std::mem::take(text)));
                current = None;
            }
            Some((_, indent, text)) => {
                let cut = line.len() - line.trim_start().len();
                text.push_str(&line[cut.min(*indent)..]);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```toml block in README.md");
    blocks
}

#[test]
fn every_toml_block_of_the_readme_parses_as_copied() {
    let blocks = readme_toml_blocks();
    assert!(blocks.len() >= 4, "found {} blocks", blocks.len());
    let mut configs = 0;
    for (line, text) in &blocks {
        let at = format!("README.md:{line}");
        toml::from_str::<toml::Table>(text).unwrap_or_else(|e| panic!("{at}: not TOML: {e}"));
        let is_sidecar = text.lines().any(|l| l.starts_with("evidence_date"));
        if is_sidecar {
            continue; // a manual-evidence sidecar, not a config
        }
        if text.contains("[[exception]]") {
            // An exceptions.toml, judged on a fixed day before its expiry.
            let catalog = auditpack::catalog::Catalog::builtin().expect("catalog");
            let day = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("time")
                .with_timezone(&chrono::Utc);
            let frameworks = ["hipaa", "pci-dss", "soc2"].map(String::from);
            auditpack::exceptions::Exceptions::parse(text, &at, &catalog, &frameworks, day)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            continue;
        }
        if text.contains("[fleet]") || text.starts_with("# clients/") {
            continue; // a fleet file or a client file of one: tests/it/fleet.rs
        }
        // A whole config as it stands, a fragment below the least config.
        let full = if text.contains("[organisation]") {
            text.clone()
        } else {
            format!("{ORG}\n{text}")
        };
        let config = Config::from_str_at(&full, Path::new("auditpack.toml"))
            .unwrap_or_else(|e| panic!("{at}: {e}\n{full}"));
        build_collectors(&config.sources).unwrap_or_else(|e| panic!("{at}: {e}\n{full}"));
        configs += 1;
    }
    assert!(configs >= 3, "{configs} config blocks");
}

#[test]
fn type_errors_say_what_a_value_should_be() {
    let err = load(&format!(
        "{ORG}\n[thresholds]\ninactive_account_days = \"ninety\"\n"
    ))
    .expect_err("a string is not a number of days");
    assert!(err.contains("clinic.toml:6:"), "{err}");
    assert!(err.contains("a whole number of days"), "{err}");
    assert!(!err.contains("u32"), "{err}");
}

#[test]
fn an_unknown_source_type_names_its_line_and_the_nearest_type() {
    let config = load(&format!(
        "{ORG}\n[sources.tenant]\ntype = \"m356\"\ntenant_id = \"t\"\n"
    ))
    .expect("the top level is valid");
    let err = build_collectors(&config.sources)
        .err()
        .expect("unknown type")
        .to_string();
    assert!(err.starts_with("/etc/auditpack/clinic.toml:6:8:"), "{err}");
    assert!(err.contains("did you mean `m365`?"), "{err}");
}

#[test]
fn unknown_key_hints_never_offer_a_refused_key() {
    let config = load(&format!(
        "{ORG}\n[sources.ninja]\ntype = \"ninjaone\"\nbase_url = \"https://x.example\"\nclient_id = \"c\"\nclient_secrt = \"V\"\n"
    ))
    .expect("the top level is valid");
    let err = build_collectors(&config.sources)
        .err()
        .expect("unknown key")
        .to_string();
    assert!(err.contains("unknown key `client_secrt`"), "{err}");
    assert!(err.contains("did you mean `client_secret_env`?"), "{err}");
    assert!(
        !err.split([' ', ','])
            .any(|w| w == "client_secret" || w == "`client_secret`"),
        "{err}"
    );
}
