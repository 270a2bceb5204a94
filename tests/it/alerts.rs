//! Alerts against real receivers on 127.0.0.1: an HTTP receiver that checks
//! the Standard Webhooks signature on its own (and once through the Standard
//! Webhooks project's own `standardwebhooks` library) and counts deliveries, and
//! aiosmtpd for e-mail (plain, STARTTLS and implicit TLS with a generated
//! certificate). A canary planted in every secret must never appear in a
//! body, a mail or a file of the store.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditpack::alert::{
    fleet_summary, notify_async, notify_fleet, resend, undelivered, AlertReport, AlertsConfig,
    DeliveryOutcome, ItemKind, RunState, RunView,
};
use auditpack::collect::retry::RetryPolicy;
use auditpack::evaluate::{ControlResult, Status};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::common;

pub(crate) const CANARY: &str = "CANARY-5f3a9c";

/// A webhook secret whose base64 text holds the canary.
pub(crate) fn whsec() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CANARY}-key-bytes"))
    )
}

#[derive(Clone, Debug)]
pub(crate) struct Received {
    path: String,
    headers: HeaderMap,
    pub(crate) body: Bytes,
    answered: u16,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    /// Statuses to answer in turn; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn answering(statuses: &[u16]) -> Receiver {
        let r = Receiver::default();
        r.script.lock().unwrap().extend(statuses);
        r
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn accepted(&self) -> Vec<Received> {
        self.seen()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    pub(crate) async fn start(&self) -> SocketAddr {
        async fn handle(
            State(r): State<Receiver>,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> impl IntoResponse {
            let status = r.script.lock().unwrap().pop_front().unwrap_or(200);
            r.seen.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers,
                body,
                answered: status,
            });
            let mut out = HeaderMap::new();
            if status == 429 {
                out.insert("retry-after", "1".parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), out, "")
        }
        let app = axum::Router::new()
            .fallback(axum::routing::post(handle))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

/// Verify a Standard Webhooks delivery from the spec's words alone: the key
/// is the base64 after `whsec_`, the signed content `id.timestamp.body`, the
/// header `v1,` and the base64 HMAC-SHA256.
pub(crate) fn verify_signature(r: &Received, secret: &str) -> String {
    let header = |name: &str| {
        r.headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!(age.abs() < 300, "timestamp within tolerance");
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signature = header("webhook-signature");
    let ok = signature.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    });
    assert!(ok, "signature verifies");
    id
}

/// Verify a delivery with the Standard Webhooks project's own Python library
/// (`standardwebhooks`, installed by scripts/setup-test-tools.sh), which also
/// checks the timestamp's tolerance; returns the body it parsed.
fn verify_with_standard_webhooks(r: &Received, secret: &str) -> serde_json::Value {
    use std::io::Write as _;
    let headers: serde_json::Map<String, serde_json::Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .filter_map(|&name| {
                let value = r.headers.get(name)?.to_str().ok()?;
                Some((name.to_owned(), value.into()))
            })
            .collect();
    let input = serde_json::json!({
        "secret": secret,
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(&r.body),
    });
    let script = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
i = json.load(sys.stdin)
print(json.dumps(Webhook(i["secret"]).verify(base64.b64decode(i["body"]), i["headers"])))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup-test-tools.sh installs standardwebhooks)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks refuses the delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
    }
}

fn control(id: &str, status: Status) -> ControlResult {
    let value = serde_json::json!([{
        "framework": "pci-dss", "control_id": id, "title": format!("Control {id}"),
        "status": status, "owner": "internal", "kind": "automated",
        "checks": [{
            "check": "mfa", "title": "MFA for every user", "outcome": if status == Status::Fail { "fail" } else { "pass" },
            "responsible": "internal", "evaluated": 3,
            "failing_count": if status == Status::Fail { 2 } else { 0 },
            "failing": if status == Status::Fail { serde_json::json!([
                {"id": "m365:u1", "name": "alice@contoso.example", "detail": "no MFA"},
                {"id": "m365:u2", "name": "bob@contoso.example", "detail": "no MFA"}]) } else { serde_json::json!([]) },
            "evidence": [], "summary": "s", "remediation": "r"
        }],
        "manual_evidence": [], "reason": "because",
    }]);
    auditpack::report::json::decode(&serde_json::to_vec(&value).unwrap())
        .unwrap()
        .remove(0)
}

fn at(hour: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_790_000_000 + hour * 3600, 0).unwrap()
}

fn view<'a>(org: &'a str, run_id: &'a str, hour: i64, results: &'a [ControlResult]) -> RunView<'a> {
    RunView {
        organisation: org,
        run_id,
        started: at(hour),
        outcome: RunState::Ran {
            results,
            failed_sources: Vec::new(),
        },
        exceptions: &[],
        drift: None,
    }
}

/// An `[alerts]` with one webhook channel pointing at `addr`, its URL and
/// secret in files beside the config, each holding the canary.
fn webhook_config(dir: &Path, addr: SocketAddr, extra: &str) -> AlertsConfig {
    std::fs::write(
        dir.join("hook.url"),
        format!("http://{addr}/hooks/{CANARY}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("hook.secret"), whsec()).unwrap();
    let text = format!(
        "[alerts]\n{extra}\n[alerts.channels.ops]\ntype = \"webhook\"\nurl_file = \"hook.url\"\nsecret_file = \"hook.secret\"\n"
    );
    let path = dir.join("auditpack.toml");
    std::fs::write(&path, &text).unwrap();
    AlertsConfig::from_toml(&text, &path).unwrap().unwrap()
}

/// Every file under `dir`, read, must not hold the canary.
pub(crate) fn assert_no_canary(dir: &Path) {
    for file in common::all_files(dir) {
        if file
            .extension()
            .is_some_and(|e| e == "url" || e == "secret" || e == "password")
        {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains(CANARY),
            "{} holds the canary",
            file.display()
        );
        assert!(
            !text.contains(&whsec()),
            "{} holds the secret",
            file.display()
        );
    }
}

/// The baseline run, then a regression: the message the second run sends.
async fn baseline_then_regression(
    config: &AlertsConfig,
    store: &Path,
    org: &str,
    retry: &RetryPolicy,
) -> AlertReport {
    let pass = [control("8.4.2", Status::Pass)];
    let first = notify_async(config, store, &view(org, "r1", 0, &pass), retry).await;
    assert!(
        first.items.is_empty() && first.deliveries.is_empty(),
        "{first:?}"
    );
    let fail = [control("8.4.2", Status::Fail)];
    notify_async(config, store, &view(org, "r2", 24, &fail), retry).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_failing_twice_gets_exactly_one_signed_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::answering(&[503, 429]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let started = std::time::Instant::now();
    let report = baseline_then_regression(&config, &store, "Contoso Dental", &fast()).await;
    // The 429 said `Retry-After: 1`; backoff alone would wait milliseconds.
    assert!(started.elapsed() >= Duration::from_secs(1));

    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].kind, ItemKind::Regression);
    assert_eq!(report.deliveries.len(), 1, "{report:?}");
    let d = &report.deliveries[0];
    assert_eq!(
        (d.outcome, d.attempts, d.status),
        (DeliveryOutcome::Delivered, 3, Some(200))
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        receiver.accepted().len(),
        1,
        "exactly one delivery accepted"
    );
    let ids: Vec<String> = seen.iter().map(|r| verify_signature(r, &whsec())).collect();
    assert!(
        ids.iter().all(|id| id == &d.id),
        "one webhook-id throughout: {ids:?}"
    );

    let body = verify_with_standard_webhooks(&seen[2], &whsec());
    assert_eq!(
        body,
        serde_json::from_slice::<serde_json::Value>(&seen[2].body).unwrap()
    );
    assert_eq!(body["type"], "auditpack.alert");
    assert_eq!(body["data"]["name"], "Contoso Dental");
    let item = &body["data"]["items"][0];
    assert_eq!(item["kind"], "regression");
    assert_eq!(item["owner"], "internal");
    assert!(item["title"].as_str().unwrap().contains("pci-dss 8.4.2"));
    assert!(item["detail"]
        .as_str()
        .unwrap()
        .contains("alice@contoso.example"));
    for r in &seen {
        assert!(!String::from_utf8_lossy(&r.body).contains(CANARY));
        assert!(r.path.contains(CANARY), "the URL from the file was used");
    }

    // Nothing changed: nothing is sent again.
    let fail = [control("8.4.2", Status::Fail)];
    let again = notify_async(
        &config,
        &store,
        &view("Contoso Dental", "r3", 48, &fail),
        &fast(),
    )
    .await;
    assert!(again.items.is_empty() && again.deliveries.is_empty());
    assert_eq!(receiver.seen().len(), 3);

    let alerts = store.join("alerts");
    assert!(alerts.join("sent").join(format!("{}.json", d.id)).is_file());
    assert!(alerts.join("runs").join("r2.json").is_file());
    assert_eq!(std::fs::read_dir(alerts.join("outbox")).unwrap().count(), 0);
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_refusing_forever_is_tried_once_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::answering(&[404; 10]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let report = baseline_then_regression(&config, &store, "Org", &fast()).await;
    let d = &report.deliveries[0];
    assert_eq!(
        (d.outcome, d.attempts, d.status),
        (DeliveryOutcome::Refused, 1, Some(404))
    );
    assert_eq!(receiver.seen().len(), 1, "no retry storm");
    let failed = store.join("alerts/failed").join(format!("{}.json", d.id));
    assert!(failed.is_file());
    // Refused for good: the next run does not try it again.
    let fail = [control("8.4.2", Status::Fail)];
    let next = notify_async(&config, &store, &view("Org", "r3", 48, &fail), &fast()).await;
    assert!(next.deliveries.is_empty());
    assert_eq!(receiver.seen().len(), 1);
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_alert_is_listed_and_sent_again_on_request_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    // Refused (the channel is misconfigured), then fixed.
    let receiver = Receiver::answering(&[410]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let report = baseline_then_regression(&config, &store, "Org", &fast()).await;
    let refused = report.deliveries[0].clone();
    assert_eq!(refused.outcome, DeliveryOutcome::Refused);

    let listed = undelivered(&store);
    assert!(listed.outbox.is_empty() && listed.problems.is_empty());
    assert_eq!(listed.failed.len(), 1);
    let failed = &listed.failed[0];
    assert_eq!(
        (&failed.id, &failed.run_id, failed.status, failed.items),
        (&refused.id, &"r2".to_owned(), Some(410), 1)
    );

    // An id that is not there is an error, and nothing is sent.
    let err = resend(&config, &store, &["msg_nothing".to_owned()], &fast())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("msg_nothing"), "{err}");
    assert_eq!(receiver.seen().len(), 1);

    let again = resend(&config, &store, std::slice::from_ref(&refused.id), &fast())
        .await
        .unwrap();
    assert_eq!(again.deliveries.len(), 1, "{again:?}");
    let d = &again.deliveries[0];
    assert_eq!(
        (d.outcome, &d.id),
        (DeliveryOutcome::Delivered, &refused.id)
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        verify_signature(&seen[1], &whsec()),
        refused.id,
        "same webhook-id"
    );
    assert_eq!(seen[0].body, seen[1].body, "the same message");

    let alerts = store.join("alerts");
    assert!(alerts.join("sent").join(format!("{}.json", d.id)).is_file());
    let after = undelivered(&store);
    assert!(after.failed.is_empty() && after.outbox.is_empty());
    let record = again.record.expect("a resend record");
    assert!(
        record.starts_with(alerts.join("runs")),
        "{}",
        record.display()
    );
    // Nothing failed is left: a second resend sends nothing.
    let none = resend(&config, &store, &[], &fast()).await.unwrap();
    assert!(none.deliveries.is_empty());
    assert_eq!(receiver.seen().len(), 2);
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_command_lists_and_resends_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::answering(&[404]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    // The organisation's config: its store and the same [alerts].
    let path = dir.path().join("auditpack.toml");
    let alerts_table = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "[organisation]\nname = \"Org\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n{alerts_table}"
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let report = baseline_then_regression(&config, &store, "Org", &fast()).await;
    let id = report.deliveries[0].id.clone();

    let cli = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_auditpack"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let list = cli.clone();
    let (code, text) = tokio::task::spawn_blocking(move || list(&["alerts"]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("failed (1)") && text.contains(&id), "{text}");
    assert!(
        text.contains("404") && text.contains("outbox: none"),
        "{text}"
    );

    let (code, text) = tokio::task::spawn_blocking(move || cli(&["alerts", "resend"]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 delivered"), "{text}");
    assert_eq!(receiver.accepted().len(), 1);
    assert!(!text.contains(CANARY), "{text}");
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_asking_to_wait_longer_than_a_run_waits_is_left_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // The 429 says `Retry-After: 1`, more than this policy waits.
    let receiver = Receiver::answering(&[429]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let impatient = RetryPolicy {
        max_retry_after: Duration::ZERO,
        ..fast()
    };
    let report = baseline_then_regression(&config, &store, "Org", &impatient).await;
    let d = report.deliveries[0].clone();
    assert_eq!((d.outcome, d.attempts), (DeliveryOutcome::Queued, 1));
    let error = d.error.as_deref().unwrap();
    assert!(error.contains("asked to wait 1 s"), "{error}");
    assert_eq!(receiver.seen().len(), 1, "not asked again early");
    assert!(store
        .join("alerts/outbox")
        .join(format!("{}.json", d.id))
        .is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_message_is_retried_by_the_next_run_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::answering(&[500, 502]);
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let two = RetryPolicy {
        max_attempts: 2,
        ..fast()
    };
    let report = baseline_then_regression(&config, &store, "Org", &two).await;
    let d = report.deliveries[0].clone();
    assert_eq!((d.outcome, d.attempts), (DeliveryOutcome::Queued, 2));
    assert!(d.error.as_deref().unwrap().contains("502"));
    let queued = store.join("alerts/outbox").join(format!("{}.json", d.id));
    assert!(queued.is_file());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("alerts/runs/r2.json")).unwrap()).unwrap();
    assert_eq!(record["deliveries"][0]["outcome"], "queued");

    // The next run has nothing new, but delivers what is queued, same id.
    let fail = [control("8.4.2", Status::Fail)];
    let next = notify_async(&config, &store, &view("Org", "r3", 48, &fail), &two).await;
    assert!(next.items.is_empty());
    assert_eq!(next.deliveries.len(), 1);
    assert_eq!(next.deliveries[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(next.deliveries[0].id, d.id);
    assert_eq!(next.deliveries[0].run_id, "r2");
    let ids: Vec<String> = receiver
        .seen()
        .iter()
        .map(|r| verify_signature(r, &whsec()))
        .collect();
    assert_eq!(ids, [d.id.clone(), d.id.clone(), d.id.clone()]);
    assert_eq!(receiver.accepted().len(), 1);
    assert!(!queued.exists());
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_and_a_missing_secret_are_queued_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    let two = RetryPolicy {
        max_attempts: 2,
        ..fast()
    };
    let report = baseline_then_regression(&config, &store, "Org", &two).await;
    let d = &report.deliveries[0];
    assert_eq!(d.outcome, DeliveryOutcome::Queued);
    let error = d.error.as_deref().unwrap();
    assert!(error.contains("cannot reach the receiver"), "{error}");
    assert!(
        !error.contains(CANARY),
        "the URL is never in a message: {error}"
    );

    std::fs::remove_file(dir.path().join("hook.secret")).unwrap();
    let fail = [control("8.4.2", Status::Fail)];
    let next = notify_async(&config, &store, &view("Org", "r3", 48, &fail), &two).await;
    let error = next.deliveries[0].error.as_deref().unwrap();
    assert!(
        error.contains("secret_file") && error.contains("hook.secret"),
        "{error}"
    );
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_teams_receive_their_own_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    std::fs::write(
        dir.path().join("slack.url"),
        format!("http://{addr}/slack/{CANARY}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("teams.url"),
        format!("http://{addr}/teams/{CANARY}"),
    )
    .unwrap();
    let text = "[alerts]\n[alerts.channels.chat]\ntype = \"slack\"\nurl_file = \"slack.url\"\n\
                [alerts.channels.room]\ntype = \"teams\"\nurl_file = \"teams.url\"\n";
    let path = dir.path().join("auditpack.toml");
    let config = AlertsConfig::from_toml(text, &path).unwrap().unwrap();
    let store = dir.path().join("store");
    let report = baseline_then_regression(&config, &store, "Fabrikam <Ops>", &fast()).await;
    assert_eq!(report.deliveries.len(), 2);
    assert!(report
        .deliveries
        .iter()
        .all(|d| d.outcome == DeliveryOutcome::Delivered));
    let seen = receiver.seen();
    let body = |prefix: &str| -> serde_json::Value {
        let r = seen.iter().find(|r| r.path.starts_with(prefix)).unwrap();
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.headers.get("webhook-signature").is_none());
        serde_json::from_slice(&r.body).unwrap()
    };
    let slack = body("/slack/");
    assert!(slack["text"]
        .as_str()
        .unwrap()
        .contains("Fabrikam &lt;Ops&gt;"));
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["mrkdwn"], false);
    let runs: Vec<&str> = slack["blocks"][1]["elements"][0]["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert!(
        runs.contains(&"Regression") && runs.contains(&" (owner: internal)"),
        "{runs:?}"
    );
    let teams = body("/teams/");
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let texts: Vec<&str> = card["content"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["inlines"].as_array().unwrap())
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("pci-dss 8.4.2")),
        "{texts:?}"
    );
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_organisation_hears_only_of_itself_and_the_msp_gets_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, msp) = (
        Receiver::default(),
        Receiver::default(),
        Receiver::default(),
    );
    let (addr_a, addr_b, addr_msp) = (a.start().await, b.start().await, msp.start().await);
    let dirs: Vec<PathBuf> = ["a", "b", "msp"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let config_a = webhook_config(&dirs[0], addr_a, "");
    let config_b = webhook_config(&dirs[1], addr_b, "");
    let config_msp = webhook_config(&dirs[2], addr_msp, "");
    let report_a =
        baseline_then_regression(&config_a, &dirs[0].join("store"), "Alpha Clinic", &fast()).await;
    let mut failed = view("Beta Dental", "r2", 24, &[]);
    failed.outcome = RunState::CouldNotRun {
        reason: "environment variable BETA_SECRET is not set".into(),
    };
    let report_b = notify_async(&config_b, &dirs[1].join("store"), &failed, &fast()).await;
    assert_eq!(report_b.items[0].kind, ItemKind::CouldNotRun);

    let text = |r: &Receiver| -> String {
        r.accepted()
            .iter()
            .map(|x| String::from_utf8_lossy(&x.body).into_owned())
            .collect()
    };
    assert!(text(&a).contains("Alpha Clinic") && !text(&a).contains("Beta"));
    assert!(text(&b).contains("Beta Dental") && !text(&b).contains("Alpha"));

    let summary = fleet_summary(
        "Northwind MSP",
        "fleet-1",
        at(24),
        &[("Alpha Clinic", &report_a), ("Beta Dental", &report_b)],
    );
    let report = notify_fleet(
        &config_msp,
        &dirs[2].join("store"),
        "fleet-1",
        summary,
        &fast(),
    )
    .await;
    assert_eq!(report.deliveries[0].outcome, DeliveryOutcome::Delivered);
    let body: serde_json::Value = serde_json::from_slice(&msp.accepted()[0].body).unwrap();
    assert_eq!(body["type"], "auditpack.fleet_summary");
    let titles: Vec<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(titles
        .iter()
        .any(|t| t.starts_with("Alpha Clinic: pci-dss 8.4.2")));
    assert!(titles
        .iter()
        .any(|t| t.starts_with("Beta Dental: Beta Dental could not run")));
    assert!(fleet_summary("F", "x", at(0), &[("Quiet", &AlertReport::default())]).is_none());
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_newer_state_is_a_recorded_problem_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    let config = webhook_config(dir.path(), addr, "");
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("alerts")).unwrap();
    let fail = [control("8.4.2", Status::Fail)];
    for (bytes, want) in [
        (&b"{ not json"[..], "is not a valid alert state"),
        (&br#"{"schema_version": 99}"#[..], "newer auditpack"),
    ] {
        std::fs::write(store.join("alerts/state.json"), bytes).unwrap();
        let report = notify_async(&config, &store, &view("Org", "r9", 0, &fail), &fast()).await;
        assert!(report.items.is_empty());
        assert!(report.problems[0].contains(want), "{:?}", report.problems);
        assert!(report.problems[0].contains("state.json"));
        assert_eq!(
            std::fs::read(store.join("alerts/state.json")).unwrap(),
            bytes,
            "left as it is"
        );
    }
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Smtp {
    child: Child,
    out: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start aiosmtpd on a free port; `None` (with the reason printed) when
/// python3 or aiosmtpd is missing outside CI. In CI it must run.
#[allow(clippy::print_stderr)] // the skip reason belongs in the test output
fn start_smtp(
    dir: &Path,
    mode: &str,
    tls: Option<(&Path, &Path)>,
    password: &str,
) -> Option<(Smtp, u16)> {
    let available = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have python3 and aiosmtpd (scripts/setup-test-tools.sh installs them)"
        );
        eprintln!(
            "skipped: python3 with aiosmtpd is not installed (run scripts/setup-test-tools.sh)"
        );
        return None;
    }
    let out = dir.join(format!("mail-{mode}"));
    std::fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/smtp_sink.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(port.to_string()).arg(&out).arg(mode);
    if let Some((cert, key)) = tls {
        cmd.arg(cert)
            .arg(key)
            .arg("alerts@msp.example")
            .arg(password);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    use std::io::BufRead as _;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "smtp sink started");
    Some((Smtp { child, out }, port))
}

fn mails(out: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| String::from_utf8(std::fs::read(f).unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_smtp_plain_starttls_and_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl makes a certificate");
    let password = format!("{CANARY}-smtp-password");
    std::fs::write(dir.path().join("smtp.password"), &password).unwrap();

    for mode in ["plain", "starttls", "tls"] {
        let tls_files = (mode != "plain").then_some((cert.as_path(), key.as_path()));
        let Some((smtp, port)) = start_smtp(dir.path(), mode, tls_files, &password) else {
            return;
        };
        let login = if mode == "plain" {
            "tls = \"none\"\n".to_owned()
        } else {
            format!(
                "tls = \"{}\"\nusername = \"alerts@msp.example\"\npassword_file = \"smtp.password\"\nca_file = \"cert.pem\"\n",
                if mode == "tls" { "tls" } else { "starttls" }
            )
        };
        let text = format!(
            "[alerts]\n[alerts.channels.mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n{login}\
             from = \"auditpack <alerts@msp.example>\"\nto = [\"vcio@msp.example\", \"it@contoso.example\"]\n"
        );
        let config = AlertsConfig::from_toml(&text, &dir.path().join("auditpack.toml"))
            .unwrap()
            .unwrap();
        let store = dir.path().join(format!("store-{mode}"));
        let report = baseline_then_regression(&config, &store, "Contoso Dental", &fast()).await;
        let d = &report.deliveries[0];
        assert_eq!(d.outcome, DeliveryOutcome::Delivered, "{mode}: {d:?}");
        let received = mails(&smtp.out);
        assert_eq!(received.len(), 1, "{mode}");
        let mail = &received[0];
        assert!(
            mail.contains("Subject: auditpack Contoso Dental: 1 regression"),
            "{mail}"
        );
        assert!(
            mail.contains("pci-dss 8.4.2 Control 8.4.2: pass -> fail (owner: internal)"),
            "{mail}"
        );
        assert!(mail.contains("alice@contoso.example"), "{mail}");
        assert!(
            mail.contains(&format!("Message-ID: <{}@auditpack.invalid>", d.id)),
            "{mail}"
        );
        assert!(
            mail.contains("To: vcio@msp.example, it@contoso.example"),
            "{mail}"
        );
        assert!(!mail.contains(CANARY), "{mode}: no secret in the mail");
        if mode != "plain" {
            let logins = std::fs::read_to_string(smtp.out.join("logins.txt")).unwrap();
            assert_eq!(
                logins.trim(),
                "PLAIN ok",
                "{mode}: logged in with the password"
            );
        }
    }
    assert_no_canary(dir.path());
}

#[test]
fn a_run_alerts_after_its_package_is_sealed() {
    let h = common::Harness::demo();
    let receiver = Receiver::default();
    let addr = h.runtime.block_on(receiver.start());
    let mut config = h.config(None);
    let good_secret = std::fs::read_to_string(h.path().join("graph.secret")).unwrap();
    webhook_config(h.path(), addr, "persist_runs = 1");
    let alerts_table = std::fs::read_to_string(h.path().join("auditpack.toml")).unwrap();
    let base = h.sim.base_url();
    let creds = auditpack::simulate::SimOptions::default().credentials;
    let text = format!(
        "[organisation]\nname = \"Test Clinic\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n\
         [sources.m365]\ntype = \"m365\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"graph.secret\"\n\
         authority_url = \"{base}\"\ngraph_url = \"{base}\"\n\n{alerts_table}",
        creds.tenant_id, creds.graph_client_id
    );
    std::fs::write(h.path().join("auditpack.toml"), &text).unwrap();
    let signing = config.signing.take();
    config = auditpack::config::Config::load(&h.path().join("auditpack.toml")).unwrap();
    config.signing = signing;

    // The first run is the baseline: nothing to alert.
    let first = h.run(&config);
    assert!(first.alerts.items.is_empty(), "{:?}", first.alerts.items);
    assert!(receiver.seen().is_empty());

    // A wrong Graph secret: the m365 source fails; every control it judged
    // loses its evidence (as drift.json says), and the source is named.
    std::fs::write(
        h.path().join("graph.secret"),
        format!("{CANARY}-wrong-graph-secret"),
    )
    .unwrap();
    let outcome = h.run(&config);
    assert!(outcome.package.is_dir() && outcome.archive.is_file());
    let drift = auditpack::history::read_drift(&outcome.run_dir)
        .unwrap()
        .unwrap();
    let items = &outcome.alerts.items;
    assert!(
        items
            .iter()
            .any(|i| i.key == "source:m365" && i.kind == ItemKind::LostEvidence),
        "{items:?}"
    );
    let lost: Vec<&str> = items
        .iter()
        .filter_map(|i| i.key.strip_prefix("lost:"))
        .collect();
    let drift_lost: Vec<&str> = drift
        .lost_evidence
        .iter()
        .filter(|c| c.after == Some(Status::Inconclusive))
        .map(|c| c.control.as_str())
        .collect();
    assert!(!lost.is_empty());
    assert_eq!(lost, drift_lost, "alerts and drift.json agree");
    assert_eq!(
        outcome.alerts.deliveries[0].outcome,
        DeliveryOutcome::Delivered
    );
    let seen = receiver.accepted();
    assert_eq!(seen.len(), 1);
    verify_signature(&seen[0], &whsec());
    // The package holds no alert files: alerting came after it was sealed.
    assert!(!common::all_files(&outcome.package)
        .iter()
        .any(|f| f.components().any(|c| c.as_os_str() == "alerts")));

    // Fixed: the next run says each alerted change is resolved.
    std::fs::write(h.path().join("graph.secret"), good_secret).unwrap();
    let fixed = h.run(&config);
    let resolved = fixed
        .alerts
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Resolved)
        .count();
    assert_eq!(resolved, items.len(), "{:?}", fixed.alerts.items);
    assert_eq!(receiver.accepted().len(), 2);
    assert_no_canary(&h.path().join("store"));
    for r in receiver.seen() {
        assert!(!String::from_utf8_lossy(&r.body).contains(CANARY));
    }
}

#[test]
fn a_literal_webhook_url_in_the_config_is_refused_before_collection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auditpack.toml");
    std::fs::write(
        &path,
        format!(
            "[organisation]\nname = \"X\"\nframeworks = [\"hipaa\"]\n\n[alerts.channels.chat]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/{CANARY}\"\n"
        ),
    )
    .unwrap();
    let config = auditpack::config::Config::load(&path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = auditpack::pipeline::run(&config, &common::fast_options(), &runtime)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("auditpack.toml:7:") && e.contains("literal secret"),
        "{e}"
    );
    assert!(!e.contains(CANARY));
    assert!(!dir.path().join("evidence").exists(), "nothing collected");
}

#[test]
fn a_run_that_cannot_start_alerts_that_it_could_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = Receiver::default();
    let addr = runtime.block_on(receiver.start());
    webhook_config(dir.path(), addr, "");
    let alerts_table = std::fs::read_to_string(dir.path().join("auditpack.toml")).unwrap();
    let path = dir.path().join("auditpack.toml");
    std::fs::write(
        &path,
        format!(
            "[organisation]\nname = \"Gamma Vets\"\nframeworks = [\"hipaa\"]\nstore = \"store\"\n\n\
             [sources.ninja]\ntype = \"ninjaone\"\nbase_url = \"http://{addr}\"\nclient_id = \"x\"\n\
             client_secret_env = \"AUDITPACK_TEST_UNSET_NINJA_SECRET\"\n\n{alerts_table}"
        ),
    )
    .unwrap();
    let config = auditpack::config::Config::load(&path).unwrap();
    let options = common::fast_options();
    let e = auditpack::pipeline::run(&config, &options, &runtime).unwrap_err();
    let report = runtime
        .block_on(auditpack::pipeline::alert_could_not_run(
            &config,
            &e.to_string(),
            &options,
        ))
        .unwrap();
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].kind, ItemKind::CouldNotRun);
    assert!(report.items[0]
        .detail
        .contains("AUDITPACK_TEST_UNSET_NINJA_SECRET"));
    assert_eq!(report.deliveries[0].outcome, DeliveryOutcome::Delivered);
    let body: serde_json::Value = serde_json::from_slice(&receiver.accepted()[0].body).unwrap();
    assert_eq!(
        body["data"]["items"][0]["title"],
        "Gamma Vets could not run"
    );
    // The same failure again is no news.
    let again = runtime
        .block_on(auditpack::pipeline::alert_could_not_run(
            &config,
            &e.to_string(),
            &options,
        ))
        .unwrap();
    assert!(again.items.is_empty() && again.deliveries.is_empty());
    assert_eq!(receiver.seen().len(), 1);
}
