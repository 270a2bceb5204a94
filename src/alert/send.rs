//! One delivery attempt on one channel, classified for the retry loop:
//! delivered, worth another try (a network error, 408, 429, 5xx, an SMTP
//! transient reply), or refused for good (any other 4xx, an SMTP permanent
//! reply).
//!
//! Messages never name a URL or a secret: reqwest errors are stripped of
//! their URL, and bodies the receiver answers with are not kept.

use std::time::Duration;

use base64::Engine as _;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{Channel, ChannelKind, EmailChannel, SmtpTls};
use super::render::{self, Message};
use crate::secret::{Secret, SecretRef};

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The receiver took it (HTTP status, or 250 for SMTP).
    Delivered(u16),
    /// Worth another try, after the server's `Retry-After` if it gave one.
    Retry {
        error: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Refused for good; retrying would not help.
    Refused { error: String, status: Option<u16> },
}

/// The key of a `whsec_`-prefixed base64 Standard Webhooks secret.
///
/// # Errors
/// When the secret lacks the prefix or is not base64 (the message never
/// holds the secret).
pub fn webhook_key(secret: &Secret) -> Result<Vec<u8>, String> {
    let text = secret.expose();
    let b64 = text
        .strip_prefix("whsec_")
        .ok_or("the webhook secret must start with `whsec_` (Standard Webhooks)")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the webhook secret after `whsec_` is not base64".to_owned())
        .and_then(|k| {
            if k.is_empty() {
                Err("the webhook secret is empty".to_owned())
            } else {
                Ok(k)
            }
        })
}

/// The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

fn resolve(secret: &SecretRef, stem: &str) -> Result<Secret, Attempt> {
    secret.resolve().map_err(|e| Attempt::Retry {
        error: format!("`{}`: {e}", secret.key(stem)),
        status: None,
        retry_after: None,
    })
}

fn url_of(secret: &SecretRef) -> Result<reqwest::Url, Attempt> {
    let value = resolve(secret, "url")?;
    match reqwest::Url::parse(value.expose()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(Attempt::Retry {
            error: format!("{} does not hold an http(s) URL", secret.describe()),
            status: None,
            retry_after: None,
        }),
    }
}

/// Try once to deliver `message` with id `id` on `channel`.
pub(crate) async fn attempt(
    channel: &Channel,
    id: &str,
    message: &Message,
    http: &reqwest::Client,
    timeout: Duration,
) -> Attempt {
    match &channel.kind {
        ChannelKind::Webhook { url, secret } => {
            let url = match url_of(url) {
                Ok(u) => u,
                Err(a) => return a,
            };
            let key = match resolve(secret, "secret").and_then(|s| {
                webhook_key(&s).map_err(|error| Attempt::Retry {
                    error,
                    status: None,
                    retry_after: None,
                })
            }) {
                Ok(k) => k,
                Err(a) => return a,
            };
            let body = render::generic(id, message);
            // A fresh timestamp per attempt (receivers refuse old ones); the
            // id stays the same, so a receiver can drop a duplicate.
            let timestamp = chrono::Utc::now().timestamp();
            let request = http
                .post(url)
                .timeout(timeout)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", sign(&key, id, timestamp, &body))
                .body(body);
            post(request).await
        }
        ChannelKind::Slack { url } | ChannelKind::Teams { url } => {
            let url = match url_of(url) {
                Ok(u) => u,
                Err(a) => return a,
            };
            let body = match &channel.kind {
                ChannelKind::Slack { .. } => render::slack(message),
                _ => render::teams(message),
            };
            let request = http
                .post(url)
                .timeout(timeout)
                .header("content-type", "application/json")
                .body(body);
            post(request).await
        }
        ChannelKind::Email(mail) => smtp(mail, id, message, timeout).await,
    }
}

async fn post(request: reqwest::RequestBuilder) -> Attempt {
    match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after =
                crate::collect::retry::parse_retry_after(resp.headers().get("retry-after"));
            if resp.status().is_success() {
                Attempt::Delivered(status)
            } else if matches!(status, 408 | 429) || resp.status().is_server_error() {
                Attempt::Retry {
                    error: format!("the receiver answered {status}"),
                    status: Some(status),
                    retry_after,
                }
            } else {
                Attempt::Refused {
                    error: format!("the receiver refused it with {status}"),
                    status: Some(status),
                }
            }
        }
        Err(e) => Attempt::Retry {
            error: format!(
                "cannot reach the receiver: {}",
                error_chain(&e.without_url())
            ),
            status: None,
            retry_after: None,
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

async fn smtp(mail: &EmailChannel, id: &str, message: &Message, timeout: Duration) -> Attempt {
    let retry = |error: String| Attempt::Retry {
        error,
        status: None,
        retry_after: None,
    };
    let password = match &mail.password {
        Some(p) => match resolve(p, "password") {
            Ok(p) => Some(p),
            Err(a) => return a,
        },
        None => None,
    };
    let tls = match mail.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(mail.host.clone());
            if let Some(ca) = &mail.ca_file {
                let pem = match std::fs::read(ca) {
                    Ok(p) => p,
                    Err(e) => return retry(format!("cannot read ca_file {}: {e}", ca.display())),
                };
                match Certificate::from_pem(&pem) {
                    Ok(cert) => params = params.add_root_certificate(cert),
                    Err(e) => {
                        return retry(format!(
                            "ca_file {} is not a PEM certificate: {e}",
                            ca.display()
                        ))
                    }
                }
            }
            let params = match params.build_rustls() {
                Ok(p) => p,
                Err(e) => return retry(format!("TLS setup: {e}")),
            };
            if mode == SmtpTls::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(mail.host.as_str())
        .port(mail.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&mail.username, password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    let transport = builder.build();
    let (subject, text) = render::email(message);
    let mut email = lettre::Message::builder()
        // The same Message-ID on every attempt: mail systems drop duplicates by it.
        .message_id(Some(format!("<{id}@auditpack.invalid>")))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    match mail.from.parse() {
        Ok(from) => email = email.from(from),
        Err(e) => return retry(format!("`from`: {e}")),
    }
    for to in &mail.to {
        match to.parse() {
            Ok(to) => email = email.to(to),
            Err(e) => return retry(format!("`to`: {e}")),
        }
    }
    let email = match email.body(text) {
        Ok(e) => e,
        Err(e) => return retry(format!("cannot build the e-mail: {e}")),
    };
    match transport.send(email).await {
        Ok(resp) => Attempt::Delivered(u16::from(resp.code())),
        Err(e) => {
            let status = e.status().map(u16::from);
            let error = format!("SMTP {}:{}: {}", mail.host, mail.port, error_chain(&e));
            if e.is_permanent() {
                Attempt::Refused { error, status }
            } else {
                Attempt::Retry {
                    error,
                    status,
                    retry_after: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' tests.
    #[test]
    fn signature_matches_the_reference_example() {
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let key = webhook_key(&secret).unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn webhook_secret_needs_its_prefix() {
        assert!(webhook_key(&Secret::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).is_err());
        assert!(webhook_key(&Secret::new("whsec_!!!")).is_err());
    }
}
