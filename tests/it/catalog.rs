//! The shipped control catalogs and ownership templates: complete against the
//! public lists of the standards, and validated at load.

use std::collections::BTreeSet;

use auditpack::catalog::{Catalog, ControlKind};
use auditpack::checks::CHECKS;
use auditpack::config::Owner;

fn catalog() -> Catalog {
    Catalog::builtin().expect("shipped catalogs validate")
}

fn ids(catalog: &Catalog, framework: &str) -> Vec<String> {
    catalog
        .framework(framework)
        .unwrap_or_else(|| panic!("{framework} ships"))
        .controls
        .iter()
        .map(|c| c.id.clone())
        .collect()
}

#[test]
fn hipaa_has_all_60_standards_and_specifications_in_order() {
    let tsv = include_str!("data/hipaa-security-rule.tsv");
    let expected: Vec<(String, String)> = tsv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_owned(), cols[3].to_owned())
        })
        .collect();
    assert_eq!(expected.len(), 60);
    let catalog = catalog();
    for framework in ["hipaa", "hipaa-2025-proposed"] {
        let got = ids(&catalog, framework);
        let want: Vec<String> = expected.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(got, want, "{framework}");
    }
    let hipaa = catalog.framework("hipaa").expect("hipaa");
    for (control, (_, req)) in hipaa.controls.iter().zip(&expected) {
        let want = match req.as_str() {
            "R" | "(R)" => "required",
            "A" => "addressable",
            _ => "standard",
        };
        assert_eq!(control.requirement.as_deref(), Some(want), "{}", control.id);
    }
}

#[test]
fn the_proposed_hipaa_profile_is_labelled_and_stricter() {
    let catalog = catalog();
    let proposed = catalog.framework("hipaa-2025-proposed").expect("ships");
    assert_eq!(proposed.framework.status, "proposed");
    assert!(proposed.framework.description.contains("PROPOSED"));
    assert_eq!(proposed.defaults.critical_patch_days, Some(15));
    assert_eq!(proposed.defaults.backup_max_age_hours, Some(48));
    let current = catalog.framework("hipaa").expect("ships");
    assert!(proposed.defaults.critical_patch_days < current.defaults.critical_patch_days);
}

#[test]
fn pci_dss_has_every_requirement_of_1_to_12_and_the_appendices() {
    let reference: Vec<&str> = include_str!("data/pci-dss-requirement-ids.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let catalog = catalog();
    let got: BTreeSet<String> = ids(&catalog, "pci-dss").into_iter().collect();
    let missing: Vec<&&str> = reference.iter().filter(|id| !got.contains(**id)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    let extra: Vec<&String> = got
        .iter()
        .filter(|id| !reference.contains(&id.as_str()))
        .collect();
    assert!(extra.is_empty(), "not in the standard: {extra:?}");
    for requirement in 1..=12 {
        let prefix = format!("{requirement}.");
        let n = got.iter().filter(|id| id.starts_with(&prefix)).count();
        assert!(
            n >= 5,
            "requirement {requirement} has only {n} sub-requirements"
        );
    }
    assert_eq!(got.len(), 280);
}

#[test]
fn pci_dss_thresholds_follow_the_standard() {
    let catalog = catalog();
    let pci = catalog.framework("pci-dss").expect("ships");
    assert_eq!(pci.defaults.inactive_account_days, Some(90), "8.2.6");
    assert_eq!(pci.defaults.critical_patch_days, Some(30), "6.3.3");
    assert_eq!(pci.defaults.access_review_days, Some(180), "7.2.4");
    let control = |id: &str| pci.controls.iter().find(|c| c.id == id).expect(id);
    assert!(control("8.2.6")
        .checks
        .contains(&"inactive_accounts".to_owned()));
    assert!(control("6.3.3")
        .checks
        .contains(&"patch_latency_critical".to_owned()));
    assert!(control("7.2.4")
        .checks
        .contains(&"access_review_completed".to_owned()));
    assert!(control("12.8.5")
        .checks
        .contains(&"responsibility_matrix".to_owned()));
    assert_eq!(
        control("12.9.1").applies_to.as_deref(),
        Some("service-provider")
    );
}

#[test]
fn soc2_has_every_criterion() {
    let mut want = Vec::new();
    for (series, n) in [
        (1, 5),
        (2, 3),
        (3, 4),
        (4, 2),
        (5, 3),
        (6, 8),
        (7, 5),
        (8, 1),
        (9, 2),
    ] {
        for i in 1..=n {
            want.push(format!("CC{series}.{i}"));
        }
    }
    want.extend((1..=3).map(|i| format!("A1.{i}")));
    want.extend((1..=2).map(|i| format!("C1.{i}")));
    want.extend((1..=5).map(|i| format!("PI1.{i}")));
    for (series, n) in [
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 3),
        (5, 2),
        (6, 7),
        (7, 1),
        (8, 1),
    ] {
        for i in 1..=n {
            want.push(format!("P{series}.{i}"));
        }
    }
    let catalog = catalog();
    let got: BTreeSet<String> = ids(&catalog, "soc2").into_iter().collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(*id)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(got.len(), want.len(), "extra criteria: {got:?}");
}

#[test]
fn every_control_is_complete_and_every_check_used() {
    let catalog = catalog();
    assert!(catalog.validate().is_empty());
    let mut used = BTreeSet::new();
    for fw in catalog.frameworks() {
        for c in &fw.controls {
            assert!(!c.title.trim().is_empty(), "{}:{}", fw.framework.id, c.id);
            assert!(!c.summary.trim().is_empty(), "{}:{}", fw.framework.id, c.id);
            if c.kind != ControlKind::Automated {
                assert!(
                    !c.manual_evidence.is_empty(),
                    "{}:{}",
                    fw.framework.id,
                    c.id
                );
            }
            used.extend(c.checks.iter().cloned());
        }
    }
    for check in CHECKS {
        assert!(used.contains(check.id), "{} unused", check.id);
    }
}

#[test]
fn every_template_owns_every_control_and_names_a_party_per_check() {
    let catalog = catalog();
    assert!(catalog.templates().len() >= 3);
    for t in catalog.templates() {
        for fw in catalog.frameworks() {
            for c in &fw.controls {
                let key = format!("{}:{}", fw.framework.id, c.id);
                let owner = t.controls.get(&key);
                assert!(
                    matches!(owner, Some(Owner::Internal | Owner::Msp | Owner::Shared)),
                    "{}: {key} has no owner",
                    t.template.id
                );
            }
        }
        for check in CHECKS {
            assert!(
                matches!(t.checks.get(check.id), Some(Owner::Internal | Owner::Msp)),
                "{}: check {} has no responsible party",
                t.template.id,
                check.id
            );
        }
    }
}

/// A control with one owner puts every failure of its checks on that party,
/// so each of its checks must be one the template gives that party too;
/// where the parties differ the control is shared.
#[test]
fn a_single_owner_control_holds_only_checks_its_owner_acts_on() {
    let catalog = catalog();
    for t in catalog.templates() {
        for fw in catalog.frameworks() {
            for c in &fw.controls {
                let key = format!("{}:{}", fw.framework.id, c.id);
                let Some(owner @ (Owner::Internal | Owner::Msp)) = t.controls.get(&key) else {
                    continue;
                };
                for check in &c.checks {
                    assert_eq!(
                        t.checks.get(check.as_str()),
                        Some(owner),
                        "{}: {key} is owned by {owner:?} alone but the template gives check \
                         {check} to another party; make the control shared",
                        t.template.id
                    );
                }
            }
        }
    }
}

const META: &str = r#"
[framework]
id = "test"
name = "Test"
version = "1"
status = "final"
description = "A test catalog."
"#;

fn every_check_control() -> String {
    let checks: Vec<String> = CHECKS.iter().map(|c| format!("\"{}\"", c.id)).collect();
    format!(
        "[[control]]\nid = \"ALL\"\ntitle = \"All\"\nsummary = \"Uses every check.\"\nkind = \"automated\"\nchecks = [{}]\n",
        checks.join(", ")
    )
}

fn problems(controls: &str) -> String {
    let text = format!("{META}\n{}\n{controls}", every_check_control());
    match Catalog::from_sources(&[("frameworks/test.toml".into(), text.as_str())], &[]) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_catalog_loads() {
    assert_eq!(problems(""), "");
}

#[test]
fn validation_catches_duplicate_ids() {
    let dup = "[[control]]\nid = \"A\"\ntitle = \"A\"\nsummary = \"s\"\nkind = \"manual\"\nmanual_evidence = [\"doc\"]\n";
    let err = problems(&format!("{dup}\n{dup}"));
    assert!(err.contains("test:A: duplicate control id"), "{err}");
}

#[test]
fn validation_catches_unknown_checks() {
    let err = problems(
        "[[control]]\nid = \"B\"\ntitle = \"B\"\nsummary = \"s\"\nkind = \"automated\"\nchecks = [\"no_such_check\"]\n",
    );
    assert!(err.contains("unknown check `no_such_check`"), "{err}");
}

#[test]
fn validation_catches_missing_titles() {
    let err = problems(
        "[[control]]\nid = \"C\"\ntitle = \" \"\nsummary = \"s\"\nkind = \"manual\"\nmanual_evidence = [\"doc\"]\n",
    );
    assert!(err.contains("test:C: missing title or summary"), "{err}");
}

#[test]
fn validation_catches_unused_checks() {
    let text = format!(
        "{META}\n[[control]]\nid = \"D\"\ntitle = \"D\"\nsummary = \"s\"\nkind = \"automated\"\nchecks = [\"mfa_registered\"]\n"
    );
    let err = Catalog::from_sources(&[("frameworks/test.toml".into(), text.as_str())], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("check `stale_devices` is used by no control"),
        "{err}"
    );
    assert!(
        !err.contains("check `mfa_registered` is used by no control"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_rejected_naming_the_file() {
    let text = format!("{META}\n{}\nsurprise = 1\n", every_check_control());
    let err = Catalog::from_sources(&[("frameworks/test.toml".into(), text.as_str())], &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("controls/frameworks/test.toml"), "{err}");
    assert!(err.contains("surprise"), "{err}");
}

#[test]
fn validation_catches_unknown_applicability() {
    let err = problems(
        "[[control]]\nid = \"E\"\ntitle = \"E\"\nsummary = \"s\"\nkind = \"manual\"\nmanual_evidence = [\"doc\"]\napplies_to = \"service-providers\"\n",
    );
    assert!(
        err.contains("test:E: applies_to `service-providers`"),
        "{err}"
    );
}
