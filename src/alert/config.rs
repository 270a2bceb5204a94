//! `[alerts]`: the rules' settings and the named channels, in an
//! organisation's `auditpack.toml` (its own channels) or a fleet file (the
//! MSP's channels for the fleet summary).
//!
//! ```toml
//! [alerts]
//! persist_runs = 1              # alert once a change has lasted this many runs
//! max_age_hours = 36            # a previous run older than this: runs were missed
//! exception_warn_days = 14      # an exception expiring within this many days
//!
//! [alerts.channels.ops]
//! type = "webhook"              # Standard Webhooks signed POST
//! url_env = "OPS_HOOK_URL"      # or url_file
//! secret_env = "OPS_HOOK_SECRET" # whsec_... ; or secret_file
//!
//! [alerts.channels.chat]
//! type = "slack"                # or "teams" (a Workflows webhook)
//! url_file = "secrets/slack-url"
//!
//! [alerts.channels.mail]
//! type = "email"
//! host = "smtp.example.com"
//! port = 587                    # default: 587 for starttls, 465 for tls
//! tls = "starttls"              # starttls | tls | none (none: local relays only)
//! username = "alerts@msp.example"
//! password_env = "SMTP_PASSWORD"
//! from = "auditpack <alerts@msp.example>"
//! to = ["vcio@msp.example"]
//! ca_file = "certs/relay-ca.pem" # optional extra root for a private relay
//! ```
//!
//! Webhook URLs and the signing secret and SMTP password are secrets: they
//! are only ever named (`*_env`, `*_file`); a literal value is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{parse_at, Config, RefuseLiteralSecret};
use crate::error::{Error, Result};
use crate::secret::SecretRef;

/// A parsed `[alerts]` table.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// A change is alerted once it has lasted this many runs in a row (1:
    /// at once). Events (a missed schedule, an expired exception) alert at once.
    pub persist_runs: u32,
    /// The schedule's bound: a previous run older than this many hours when
    /// the next one starts means runs were missed. `None`: not checked.
    pub max_age_hours: Option<u32>,
    /// An exception expiring within this many days is alerted.
    pub exception_warn_days: u32,
    /// The channels, by name, in name order.
    pub channels: Vec<Channel>,
}

/// One named channel.
#[derive(Clone, Debug)]
pub struct Channel {
    /// The table name under `[alerts.channels]`; part of every message id.
    pub name: String,
    /// Where and how it delivers.
    pub kind: ChannelKind,
}

/// The kinds of channel.
#[derive(Clone, Debug)]
pub enum ChannelKind {
    /// A generic webhook, signed the Standard Webhooks way.
    Webhook {
        /// The endpoint URL (a secret: it often carries a token).
        url: SecretRef,
        /// The `whsec_`-prefixed base64 signing secret.
        secret: SecretRef,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The hook URL.
        url: SecretRef,
    },
    /// A Microsoft Teams Workflows webhook (Adaptive Card).
    Teams {
        /// The workflow URL.
        url: SecretRef,
    },
    /// E-mail over SMTP.
    Email(EmailChannel),
}

impl ChannelKind {
    /// The `type` spelling.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::Email(_) => "email",
        }
    }
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, never optional).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on the same host or network; no password allowed.
    None,
}

/// An e-mail channel.
#[derive(Clone, Debug)]
pub struct EmailChannel {
    /// The SMTP server's host name (also the name its certificate must hold).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// The login name, if the server wants one.
    pub username: Option<String>,
    /// The login password.
    pub password: Option<SecretRef>,
    /// The `From` mailbox.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// An extra trusted root certificate (PEM), for a private relay.
    pub ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    alerts: Option<RawAlerts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default = "one")]
    persist_runs: u32,
    #[serde(default)]
    max_age_hours: Option<u32>,
    #[serde(default = "fourteen")]
    exception_warn_days: u32,
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
}

fn one() -> u32 {
    1
}

fn fourteen() -> u32 {
    14
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    #[serde(rename = "type")]
    kind: String,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    #[allow(dead_code)]
    url: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    secret: Option<RefuseLiteralSecret>,
    #[serde(default)]
    #[allow(dead_code)]
    password: Option<RefuseLiteralSecret>,
}

impl AlertsConfig {
    /// The `[alerts]` of an organisation's config, if it has one.
    ///
    /// # Errors
    /// As [`AlertsConfig::from_toml`].
    pub fn from_config(config: &Config) -> Result<Option<AlertsConfig>> {
        match &config.alerts {
            Some(table) => AlertsConfig::from_toml(&table.text, &table.path),
            None => Ok(None),
        }
    }

    /// The top-level `[alerts]` of any TOML file (an `auditpack.toml` or a
    /// fleet file); other tables are ignored. Relative paths resolve against
    /// the file's folder.
    ///
    /// # Errors
    /// On unknown keys, wrong types, a literal secret, or a channel whose keys
    /// do not fit its type; the message names the file (and line and column,
    /// or the channel).
    pub fn from_toml(text: &str, path: &Path) -> Result<Option<AlertsConfig>> {
        let doc: Doc = parse_at(text, path, |de| Doc::deserialize(de))?;
        let Some(raw) = doc.alerts else {
            return Ok(None);
        };
        let base = path.parent().unwrap_or(Path::new("."));
        if raw.persist_runs == 0 {
            return Err(Error::config(format!(
                "{}: [alerts] persist_runs must be at least 1",
                path.display()
            )));
        }
        let mut channels = Vec::new();
        for (name, ch) in raw.channels {
            if !valid_name(&name) {
                return Err(Error::config(format!(
                    "{}: alert channel name `{}` must be lower-case letters, digits, `-` or `_`",
                    path.display(),
                    crate::sanitize::terminal_safe(&name)
                )));
            }
            let kind = ch.resolve(base).map_err(|e| {
                Error::config(format!("{}: [alerts.channels.{name}]: {e}", path.display()))
            })?;
            channels.push(Channel { name, kind });
        }
        Ok(Some(AlertsConfig {
            path: path.to_owned(),
            persist_runs: raw.persist_runs,
            max_age_hours: raw.max_age_hours,
            exception_warn_days: raw.exception_warn_days,
            channels,
        }))
    }

    /// The channel named `name`.
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl RawChannel {
    fn resolve(self, base: &Path) -> Result<ChannelKind> {
        let email_keys = self.host.is_some()
            || self.port.is_some()
            || self.tls.is_some()
            || self.username.is_some()
            || self.password_env.is_some()
            || self.password_file.is_some()
            || self.from.is_some()
            || !self.to.is_empty()
            || self.ca_file.is_some();
        let url = || {
            SecretRef::from_pair(
                "url",
                self.url_env.as_deref(),
                self.url_file.as_deref(),
                base,
            )
        };
        let no_email = |kind: &str| {
            if email_keys {
                Err(Error::config(format!(
                    "a `{kind}` channel takes no e-mail keys (host, port, tls, username, password_*, from, to, ca_file)"
                )))
            } else {
                Ok(())
            }
        };
        let no_signing = |kind: &str| {
            if self.secret_env.is_some() || self.secret_file.is_some() {
                Err(Error::config(format!(
                    "a `{kind}` channel is not signed; `secret_env` / `secret_file` belong to `webhook` channels"
                )))
            } else {
                Ok(())
            }
        };
        match self.kind.as_str() {
            "webhook" => {
                no_email("webhook")?;
                Ok(ChannelKind::Webhook {
                    url: url()?,
                    secret: SecretRef::from_pair(
                        "secret",
                        self.secret_env.as_deref(),
                        self.secret_file.as_deref(),
                        base,
                    )?,
                })
            }
            "slack" => {
                no_email("slack")?;
                no_signing("slack")?;
                Ok(ChannelKind::Slack { url: url()? })
            }
            "teams" => {
                no_email("teams")?;
                no_signing("teams")?;
                Ok(ChannelKind::Teams { url: url()? })
            }
            "email" => {
                no_signing("email")?;
                if self.url_env.is_some() || self.url_file.is_some() {
                    return Err(Error::config(
                        "an `email` channel takes `host`, not `url_env` / `url_file`",
                    ));
                }
                let host = self
                    .host
                    .filter(|h| !h.trim().is_empty())
                    .ok_or_else(|| Error::config("missing `host` (the SMTP server)"))?;
                let tls = match self.tls.as_deref().unwrap_or("starttls") {
                    "starttls" => SmtpTls::StartTls,
                    "tls" => SmtpTls::Implicit,
                    "none" => SmtpTls::None,
                    _ => {
                        return Err(Error::config(
                            "`tls` must be \"starttls\", \"tls\" or \"none\"",
                        ))
                    }
                };
                let password = match (&self.password_env, &self.password_file) {
                    (None, None) => None,
                    (env, file) => Some(SecretRef::from_pair(
                        "password",
                        env.as_deref(),
                        file.as_deref(),
                        base,
                    )?),
                };
                if password.is_some() && self.username.is_none() {
                    return Err(Error::config("a password needs a `username`"));
                }
                if password.is_some() && tls == SmtpTls::None {
                    return Err(Error::config(
                        "`tls = \"none\"` would send the password in clear; use \"starttls\" or \"tls\"",
                    ));
                }
                let from = self
                    .from
                    .ok_or_else(|| Error::config("missing `from` (the sender's address)"))?;
                check_mailbox("from", &from)?;
                if self.to.is_empty() {
                    return Err(Error::config("missing `to` (a list of recipients)"));
                }
                for to in &self.to {
                    check_mailbox("to", to)?;
                }
                let port = self.port.unwrap_or(match tls {
                    SmtpTls::Implicit => 465,
                    SmtpTls::StartTls => 587,
                    SmtpTls::None => 25,
                });
                Ok(ChannelKind::Email(EmailChannel {
                    host,
                    port,
                    tls,
                    username: self.username,
                    password,
                    from,
                    to: self.to,
                    ca_file: self.ca_file.map(|f| base.join(f)),
                }))
            }
            other => Err(Error::config(format!(
                "unknown channel type `{}`; known: webhook, slack, teams, email",
                crate::sanitize::terminal_safe(other)
            ))),
        }
    }
}

fn check_mailbox(key: &str, value: &str) -> Result<()> {
    value
        .parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            Error::config(format!(
                "`{key}` value `{}` is not an e-mail address: {e}",
                crate::sanitize::terminal_safe(value)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<AlertsConfig>> {
        AlertsConfig::from_toml(text, Path::new("/cfg/auditpack.toml"))
    }

    #[test]
    fn parses_every_channel_type() {
        let cfg = parse(
            r#"
[organisation]
name = "x"
[alerts]
persist_runs = 2
max_age_hours = 30
[alerts.channels.hook]
type = "webhook"
url_env = "U"
secret_file = "s/whsec"
[alerts.channels.chat]
type = "slack"
url_env = "S"
[alerts.channels.teams]
type = "teams"
url_file = "t"
[alerts.channels.mail]
type = "email"
host = "smtp.example.com"
tls = "tls"
username = "u"
password_env = "P"
from = "auditpack <a@example.com>"
to = ["b@example.com"]
"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(cfg.persist_runs, 2);
        assert_eq!(cfg.max_age_hours, Some(30));
        assert_eq!(cfg.exception_warn_days, 14);
        let names: Vec<_> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["chat", "hook", "mail", "teams"]);
        let ChannelKind::Email(mail) = &cfg.channel("mail").unwrap().kind else {
            panic!("email");
        };
        assert_eq!(mail.port, 465);
        assert_eq!(mail.tls, SmtpTls::Implicit);
        let ChannelKind::Webhook { secret, .. } = &cfg.channel("hook").unwrap().kind else {
            panic!("webhook");
        };
        assert_eq!(secret.describe(), "secret file /cfg/s/whsec");
    }

    #[test]
    fn no_table_no_alerts() {
        assert!(parse("[organisation]\nname = \"x\"\n").unwrap().is_none());
    }

    #[test]
    fn refuses_literal_secrets_without_echoing_them() {
        for (key, value) in [
            ("url", "https://hooks.slack.com/services/CANARY"),
            ("secret", "whsec_CANARY"),
            ("password", "CANARY"),
        ] {
            let text = format!("[alerts.channels.x]\ntype = \"webhook\"\n{key} = \"{value}\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("literal secret"), "{e}");
            assert!(e.contains("auditpack.toml:3:"), "{e}");
            assert!(!e.contains("CANARY"), "{e}");
        }
    }

    #[test]
    fn refuses_mismatched_keys() {
        let cases = [
            ("type = \"slack\"\nurl_env = \"U\"\nhost = \"h\"", "no e-mail keys"),
            ("type = \"teams\"\nurl_env = \"U\"\nsecret_env = \"S\"", "not signed"),
            ("type = \"webhook\"\nurl_env = \"U\"", "secret_env"),
            ("type = \"pager\"", "unknown channel type `pager`"),
            ("type = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"", "missing `to`"),
            ("type = \"email\"\nhost = \"h\"\nfrom = \"not an address\"\nto = [\"a@b.c\"]", "not an e-mail address"),
            ("type = \"email\"\nhost = \"h\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"P\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]", "in clear"),
            ("type = \"email\"\nhost = \"h\"\ntls = \"maybe\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]", "`tls` must be"),
        ];
        for (body, want) in cases {
            let e = parse(&format!("[alerts.channels.c]\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body}: {e}");
            assert!(e.contains("[alerts.channels.c]"), "{e}");
        }
        let e = parse("[alerts]\npersist_runs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse("[alerts]\npersist_run = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `persist_runs`"), "{e}");
        assert!(e.contains(":2:1"), "{e}");
    }
}
