//! The Intune `DefenderAgents` report through an export job: create the job,
//! poll it until it completes, download the pre-signed file. Every answer is
//! stored in the job's dataset; the download, a ZIP archive, byte for byte.

use serde_json::{json, Value};

use super::export;
use super::fetch::{forbidden, is_job_id, Ctx, Outcome};
use super::{dataset, SOURCE};
use crate::collect::auth::AuthError;
use crate::collect::dataset::{fetch_file, fetch_one, PageCounter};
use crate::collect::http::Method;
use crate::evidence::{DatasetReport, DatasetStatus};

/// Why an export job ended before its report could be downloaded.
enum JobStop {
    /// Credentials failed: fatal for the source.
    Auth(AuthError),
    /// The job could not be created, polled or completed.
    Failed {
        /// HTTP status of the refused request, if one was refused.
        status: Option<u16>,
        /// What happened, for `run.json`.
        reason: String,
    },
}

impl JobStop {
    fn failed(reason: String) -> JobStop {
        JobStop::Failed {
            status: None,
            reason,
        }
    }

    /// The answer of one job request; `step` names it in the reason.
    fn check(
        got: std::result::Result<std::result::Result<Value, (Option<u16>, String)>, AuthError>,
        step: &str,
    ) -> std::result::Result<Value, JobStop> {
        match got {
            Err(e) => Err(JobStop::Auth(e)),
            Ok(Err((status, reason))) => Err(JobStop::Failed {
                status,
                reason: format!("{step} failed: {reason}"),
            }),
            Ok(Ok(value)) => Ok(value),
        }
    }
}

/// The two export datasets when the job did not complete after `pages` stored
/// answers: the job partial or failed, the report failed, both saying why.
fn export_failed(pages: usize, status: Option<u16>, reason: String) -> Vec<Outcome> {
    let hint = if status == Some(403) {
        format!("; {}", forbidden::EXPORT)
    } else {
        String::new()
    };
    let job = DatasetReport {
        status: if pages == 0 {
            DatasetStatus::Failed
        } else {
            DatasetStatus::Partial
        },
        pages,
        records: 0,
        reason: Some(format!("{reason}{hint}")),
    };
    let export = DatasetReport {
        status: DatasetStatus::Failed,
        pages: 0,
        records: 0,
        reason: Some(format!("the export job did not complete: {reason}{hint}")),
    };
    vec![
        (dataset::PROTECTION_EXPORT_JOB, Ok(job)),
        (dataset::PROTECTION_EXPORT, Ok(export)),
    ]
}

/// Columns asked of the `DefenderAgents` export.
pub const EXPORT_COLUMNS: &[&str] = &[
    "DeviceId",
    "DeviceName",
    "DeviceState",
    "MalwareProtectionEnabled",
    "RealTimeProtectionEnabled",
    "SignatureUpdateOverdue",
    "QuickScanOverdue",
    "FullScanOverdue",
    "RebootRequired",
    "SignatureVersion",
    "EngineVersion",
    "LastReportedDateTime",
    "ProductStatus",
];

impl Ctx<'_> {
    /// The `DefenderAgents` report through an Intune export job: create it,
    /// poll its status, download the file (without the bearer token: the URL
    /// is pre-signed). Every answer is stored; the download, a ZIP archive
    /// holding one CSV report, byte for byte as a `.zip` evidence file.
    pub(super) async fn export_protection_state(&self) -> Vec<Outcome> {
        let me = self.me;
        let counter = PageCounter::default();
        let job = match self.export_job(&counter).await {
            Ok(job) => job,
            Err(JobStop::Auth(e)) => {
                return vec![
                    (dataset::PROTECTION_EXPORT_JOB, Err(e.clone())),
                    (dataset::PROTECTION_EXPORT, Err(e)),
                ]
            }
            Err(JobStop::Failed { status, reason }) => {
                return export_failed(counter.pages(), status, reason)
            }
        };
        let job_report = DatasetReport {
            status: DatasetStatus::Complete,
            pages: counter.pages(),
            records: 1,
            reason: None,
        };
        let url = job.get("url").and_then(Value::as_str).unwrap_or_default();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            let mut out = export_failed(
                counter.pages(),
                None,
                "the completed export job has no download URL".into(),
            );
            out[0].1 = Ok(job_report);
            return out;
        }
        let download = PageCounter::default();
        let meta = (
            me.name.as_str(),
            SOURCE.source_type,
            dataset::PROTECTION_EXPORT,
        );
        let fetched = fetch_file(
            &self.ctx.http,
            &self.ctx.evidence,
            meta,
            url,
            "zip",
            None,
            &[],
            &download,
        )
        .await;
        let failed = |reason: String| DatasetReport {
            status: DatasetStatus::Failed,
            pages: download.pages(),
            records: 0,
            reason: Some(reason),
        };
        let export = match fetched {
            Err(e) => Err(e),
            Ok(Err((status, reason))) => Ok(failed(format!(
                "downloading the report failed: {reason}{}",
                if status == Some(403) {
                    "; the download link expired or was refused"
                } else {
                    ""
                }
            ))),
            Ok(Ok((path, bytes))) => Ok(match export::read_report(&bytes) {
                Ok(report) => DatasetReport {
                    status: DatasetStatus::Complete,
                    pages: download.pages(),
                    records: report.rows.len(),
                    reason: None,
                },
                Err(e) => failed(format!("the downloaded report {path} is unusable: {e}")),
            }),
        };
        vec![
            (dataset::PROTECTION_EXPORT_JOB, Ok(job_report)),
            (dataset::PROTECTION_EXPORT, export),
        ]
    }

    /// Create the export job and poll it until it completes; the completed job.
    async fn export_job(&self, counter: &PageCounter) -> std::result::Result<Value, JobStop> {
        let me = self.me;
        let jobs = format!("{}/v1.0/deviceManagement/reports/exportJobs", me.graph);
        let body = json!({
            "reportName": "DefenderAgents",
            "format": "csv",
            "localizationType": "localizedValuesAsAdditionalColumn",
            "select": EXPORT_COLUMNS,
        });
        let mut job = self
            .job_request(
                Method::Post(&body),
                &jobs,
                counter,
                "creating the export job",
            )
            .await?;
        let Some(id) = job
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_job_id(id))
            .map(str::to_owned)
        else {
            return Err(JobStop::failed("the export job has no usable id".into()));
        };
        let started = tokio::time::Instant::now();
        loop {
            match job.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(job),
                Some("failed") => {
                    return Err(JobStop::failed(format!("the export job {id} failed")))
                }
                _ => {}
            }
            if started.elapsed() > me.export_timeout {
                return Err(JobStop::failed(format!(
                    "the export job {id} did not complete within {:?}",
                    me.export_timeout
                )));
            }
            tokio::time::sleep(me.export_poll).await;
            job = self
                .job_request(
                    Method::Get,
                    &format!("{jobs}('{id}')"),
                    counter,
                    "polling the export job",
                )
                .await?;
        }
    }

    /// One request about the export job, stored in its dataset.
    async fn job_request(
        &self,
        method: Method<'_>,
        url: &str,
        counter: &PageCounter,
        step: &str,
    ) -> std::result::Result<Value, JobStop> {
        let me = self.me;
        let b = &me.buckets;
        let meta = (
            me.name.as_str(),
            SOURCE.source_type,
            dataset::PROTECTION_EXPORT_JOB,
        );
        let got = fetch_one(
            &self.ctx.http,
            &self.ctx.evidence,
            meta,
            method,
            url,
            Some(self.graph),
            &[&b.intune, &b.global],
            counter,
        )
        .await;
        JobStop::check(got, step)
    }
}
