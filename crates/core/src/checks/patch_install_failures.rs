//! `patch_install_failures`: no device has patches failing to install.
//!
//! **What it tests.** Each reconciled device whose patch-management source
//! reports install results: Datto's `InstallError` patch status, a NinjaOne
//! install with status `FAILED` newer than the device's last successful
//! install, or an RMM spec mapping a status to `InstallError`, fails the
//! device with the source named. A report of no failures (Datto
//! `FullyPatched`, NinjaOne with no failure since the last success) passes it;
//! where several sources report and each carries a report time, the newest
//! decides. Devices whose sources report no install results are not judged
//! here (their pending patches are judged by the patch-latency checks); when
//! no source reports install results at all the check is inconclusive.
//!
//! **Why it matters.** A patch that keeps failing leaves the flaw open while
//! the patch policy looks approved: PCI DSS 6.3.3 and HIPAA
//! 164.308(a)(1)(ii)(B) judge what is installed, not what was approved.
//!
//! **Evidence.** Datto device patch status, NinjaOne `os-patch-installs`
//! (installed and failed, with times), RMM spec patch statuses.
//!
//! **How to fix.** Read the failed install's error in the RMM (disk space,
//! servicing stack, pending reboot, a broken Windows Update component), fix
//! it and re-run the install; reboot devices waiting for one.

use super::{judge_devices, Check, CheckInput, Outcome, Reading, State};
use crate::facts::{Device, FactKind};

pub(super) const CHECK: Check = Check {
    id: "patch_install_failures",
    source: include_str!("patch_install_failures.rs"),
    title: "No device with patches failing to install",
    thresholds: &[],
    remediation: "Read the failed install's error in the RMM, fix the cause (disk space, servicing stack, pending reboot) and re-run the install.",
    needs: &[FactKind::Devices, FactKind::PatchState],
    per_subject: &[FactKind::PatchState],
    run,
};

fn installs(d: &Device) -> (Reading, Option<chrono::DateTime<chrono::Utc>>) {
    let reading = match d.patch.as_ref().and_then(|p| p.install_failing) {
        Some(false) => Reading::Good,
        Some(true) => Reading::Bad(match d.patch.as_ref().and_then(|p| p.status.as_deref()) {
            Some(status) => format!("patches failing to install ({status})"),
            None => "patches failing to install".to_owned(),
        }),
        None => Reading::Silent,
    };
    (reading, d.last_seen)
}

fn run(input: &CheckInput<'_>) -> Outcome {
    let out = judge_devices(
        input,
        FactKind::PatchState,
        &|_, records: &[&Device]| {
            records.iter().any(|d| {
                d.patch
                    .as_ref()
                    .is_some_and(|p| p.install_failing.is_some())
            })
        },
        &[State {
            what: "patch installs",
            required: true,
            read: &installs,
        }],
        "devices reporting patch installs",
    );
    if out.evaluated == 0 {
        return Outcome::inconclusive("no source reports patch install results");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{days_ago, device, ids, run_on_devices};
    use crate::checks::{Limits, Verdict};
    use crate::facts::PatchReport;

    fn rmm(source: &str, name: &str, failing: Option<bool>, seen: i64) -> Device {
        Device {
            last_seen: Some(days_ago(seen)),
            patch: Some(PatchReport {
                reporting: true,
                status: failing.map(|f| if f { "InstallError" } else { "FullyPatched" }.into()),
                last_install: None,
                install_failing: failing,
                pending_without_age: false,
            }),
            ..device(source, name, name)
        }
    }

    fn judge(devices: Vec<Device>) -> Outcome {
        run_on_devices(&CHECK, devices, &Limits::DEFAULT)
    }

    #[test]
    fn failures_surface_and_the_newest_report_decides() {
        let out = judge(vec![
            rmm("datto", "PC1", Some(true), 1),
            rmm("datto", "PC2", Some(false), 1),
            rmm("datto", "PC3", None, 1),
            // An older failure, a newer success: the newest decides.
            rmm("datto", "PC4", Some(true), 5),
            rmm("ninja", "PC4", Some(false), 1),
            // A newer failure is never masked by an older success.
            rmm("datto", "PC5", Some(false), 5),
            rmm("ninja", "PC5", Some(true), 1),
        ]);
        assert_eq!(out.verdict, Verdict::Fail);
        assert_eq!(ids(&out), ["device:serial:SN-PC1", "device:serial:SN-PC5"]);
        assert!(
            out.summary.contains("newer healthy report"),
            "{}",
            out.summary
        );
        assert_eq!(
            judge(vec![rmm("datto", "PC3", None, 1)]).verdict,
            Verdict::Inconclusive
        );
    }
}
