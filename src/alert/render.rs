//! One alert message and its shape on each channel: a generic JSON event
//! (Standard Webhooks payload form), Slack blocks, a Teams Adaptive Card in
//! the Workflows message envelope, and a plain-text e-mail.
//!
//! Rendering is pure and deterministic, so a message retried on a later run
//! has the same body as the first attempt.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::rules::{Item, ItemKind};

/// What a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One organisation's run.
    Organisation,
    /// A whole fleet run (for the MSP).
    Fleet,
}

/// One message: everything that changed for one organisation in one run (or
/// for the fleet in one fleet run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Organisation or fleet.
    pub scope: Scope,
    /// The organisation's (or fleet's) display name.
    pub name: String,
    /// The run it reports.
    pub run_id: String,
    /// When the run started (RFC 3339, UTC).
    pub created: String,
    /// The changes, in kind order.
    pub items: Vec<Item>,
}

impl Message {
    /// One line: who, and how many of each kind.
    pub fn headline(&self) -> String {
        let mut counts: Vec<(ItemKind, usize)> = Vec::new();
        for item in &self.items {
            match counts.iter_mut().find(|(k, _)| *k == item.kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((item.kind, 1)),
            }
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.label().to_lowercase()))
            .collect();
        let what = match self.scope {
            Scope::Organisation => "",
            Scope::Fleet => "fleet ",
        };
        format!("auditpack {what}{}: {}", self.name, parts.join(", "))
    }

    /// The event type of the generic webhook payload.
    pub fn event_type(&self) -> &'static str {
        match self.scope {
            Scope::Organisation => "auditpack.alert",
            Scope::Fleet => "auditpack.fleet_summary",
        }
    }
}

/// The generic webhook body: `{"type", "timestamp", "data"}` as the Standard
/// Webhooks specification suggests, `data` holding the message and its id.
pub fn generic(id: &str, message: &Message) -> Vec<u8> {
    let body = json!({
        "type": message.event_type(),
        "timestamp": message.created,
        "data": {
            "id": id,
            "scope": message.scope,
            "name": message.name,
            "run_id": message.run_id,
            "items": message.items,
        },
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Slack allows this many blocks in a message.
const SLACK_BLOCKS: usize = 50;
/// Slack's limit on a section's text, kept for each rich text run too.
const SLACK_SECTION: usize = 3000;
/// Slack's limit on a header's text.
const SLACK_HEADER: usize = 150;

/// The Slack incoming-webhook body: `text` (the notification fallback, not
/// parsed as mrkdwn) and blocks, a header then one `rich_text` block per
/// item. Names from a tenant go in rich text runs, which Slack shows as they
/// are: in a mrkdwn section, a device named `*urgent*` or `~x~` would turn
/// bold or struck through, and escaping covers only `&`, `<` and `>`.
pub fn slack(message: &Message) -> Vec<u8> {
    let headline = message.headline();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&headline, SLACK_HEADER)},
    })];
    let room = SLACK_BLOCKS - 2; // the header and a possible "more" line
    for item in message.items.iter().take(room) {
        let mut runs = vec![
            json!({"type": "text", "text": item.kind.label(), "style": {"bold": true}}),
            json!({"type": "text", "text": cut(&format!(": {}", item.title), SLACK_SECTION)}),
        ];
        if let Some(owner) = item.owner {
            runs.push(json!({"type": "text", "text": format!(" (owner: {owner})"), "style": {"italic": true}}));
        }
        if !item.detail.is_empty() {
            runs.push(
                json!({"type": "text", "text": cut(&format!("\n{}", item.detail), SLACK_SECTION)}),
            );
        }
        blocks.push(json!({
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": runs}],
        }));
    }
    if message.items.len() > room {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "plain_text", "text": format!("and {} more; see the run's alert record", message.items.len() - room)}],
        }));
    }
    let body = json!({"text": slack_escape(&headline), "mrkdwn": false, "blocks": blocks});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Slack's three control characters in text, escaped as its docs require.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Teams Workflows body: a `message` whose one attachment is an Adaptive
/// Card (schema 1.4), as the "post to a channel when a webhook request is
/// received" workflow expects. Text is in `RichTextBlock`s of `TextRun`s,
/// which Adaptive Cards never read as Markdown (a `TextBlock` would turn a
/// device named `[Sign in](https://...)` into a link in the channel).
pub fn teams(message: &Message) -> Vec<u8> {
    let mut body = vec![rich_text(vec![
        json!({"type": "TextRun", "text": message.headline(), "weight": "Bolder", "size": "Medium"}),
    ])];
    for item in &message.items {
        let mut title = format!(": {}", item.title);
        if let Some(owner) = item.owner {
            title.push_str(&format!(" (owner: {owner})"));
        }
        let mut block = rich_text(vec![
            json!({"type": "TextRun", "text": item.kind.label(), "weight": "Bolder"}),
            json!({"type": "TextRun", "text": title}),
        ]);
        block["separator"] = json!(true);
        body.push(block);
        if !item.detail.is_empty() {
            let mut detail = rich_text(vec![
                json!({"type": "TextRun", "text": item.detail, "isSubtle": true}),
            ]);
            detail["spacing"] = json!("None");
            body.push(detail);
        }
    }
    body.push(rich_text(vec![
        json!({"type": "TextRun", "text": format!("run {}", message.run_id), "isSubtle": true, "size": "Small"}),
    ]));
    let card = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    });
    serde_json::to_vec(&card).unwrap_or_default()
}

/// A `RichTextBlock` of the given runs.
fn rich_text(inlines: Vec<Value>) -> Value {
    json!({"type": "RichTextBlock", "inlines": inlines})
}

/// The e-mail's subject and plain-text body.
pub fn email(message: &Message) -> (String, String) {
    let mut text = format!("{}\n", message.headline());
    text.push_str(&format!(
        "run {} started {}\n",
        message.run_id, message.created
    ));
    let mut kind = None;
    for item in &message.items {
        if kind != Some(item.kind) {
            kind = Some(item.kind);
            text.push_str(&format!("\n{}\n", item.kind.label()));
        }
        text.push_str(&format!("- {}", item.title));
        if let Some(owner) = item.owner {
            text.push_str(&format!(" (owner: {owner})"));
        }
        text.push('\n');
        for line in item.detail.lines() {
            text.push_str(&format!("    {line}\n"));
        }
    }
    (message.headline(), text)
}

/// `text` cut to at most `max` characters, marked with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Parse a rendered body back, for tests and records.
pub fn as_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Owner;

    fn message(n: usize) -> Message {
        Message {
            scope: Scope::Organisation,
            name: "Contoso <Dental> & Co".into(),
            run_id: "20260101T000000Z-abcd".into(),
            created: "2026-01-01T00:00:00Z".into(),
            items: (0..n)
                .map(|i| Item {
                    kind: if i == 0 {
                        ItemKind::Regression
                    } else {
                        ItemKind::LostEvidence
                    },
                    key: format!("k{i}"),
                    title: format!("hipaa 164.{i} <Access>: pass -> fail"),
                    detail: "alice, bob".into(),
                    owner: Some(Owner::Internal),
                })
                .collect(),
        }
    }

    #[test]
    fn headline_counts_each_kind() {
        assert_eq!(
            message(3).headline(),
            "auditpack Contoso <Dental> & Co: 1 regression, 2 lost evidence"
        );
    }

    #[test]
    fn slack_escapes_and_stays_within_limits() {
        let v = as_json(&slack(&message(80)));
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), SLACK_BLOCKS);
        assert!(v["text"]
            .as_str()
            .unwrap()
            .contains("&lt;Dental&gt; &amp; Co"));
        assert_eq!(v["mrkdwn"], false);
        assert_eq!(blocks[1]["type"], "rich_text");
        assert!(blocks[49]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("and 32 more"));
    }

    #[test]
    fn slack_text_is_never_read_as_mrkdwn() {
        let mut m = message(1);
        m.items[0].title = "*urgent* _now_ ~gone~ `x` <https://example.invalid|Sign in>".into();
        m.items[0].detail = "> quoted & <!channel>".into();
        let v = as_json(&slack(&m));
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks
            .iter()
            .all(|b| b["type"] != "section" && b.to_string().matches("mrkdwn").count() == 0));
        let section = &blocks[1]["elements"][0];
        assert_eq!(section["type"], "rich_text_section");
        let runs: Vec<&str> = section["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["type"], "text");
                r["text"].as_str().unwrap()
            })
            .collect();
        // Text runs are shown as written: nothing to escape, nothing parsed.
        assert_eq!(
            runs,
            [
                "Regression",
                ": *urgent* _now_ ~gone~ `x` <https://example.invalid|Sign in>",
                " (owner: internal)",
                "\n> quoted & <!channel>",
            ]
        );
        assert_eq!(section["elements"][0]["style"]["bold"], true);
    }

    #[test]
    fn teams_is_an_adaptive_card_in_a_message() {
        let v = as_json(&teams(&message(1)));
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["version"], "1.4");
    }

    #[test]
    fn teams_text_is_never_read_as_markdown() {
        let mut m = message(1);
        m.items[0].detail = "[Sign in](https://example.invalid) **now**".into();
        let v = as_json(&teams(&m));
        let body = v["attachments"][0]["content"]["body"].as_array().unwrap();
        assert!(body.iter().all(|b| b["type"] == "RichTextBlock"));
        let runs: Vec<&str> = body
            .iter()
            .flat_map(|b| b["inlines"].as_array().unwrap())
            .map(|r| {
                assert_eq!(r["type"], "TextRun");
                r["text"].as_str().unwrap()
            })
            .collect();
        assert!(runs.contains(&"[Sign in](https://example.invalid) **now**"));
    }

    #[test]
    fn generic_and_email_are_stable() {
        let m = message(2);
        assert_eq!(generic("msg_1", &m), generic("msg_1", &m));
        let v = as_json(&generic("msg_1", &m));
        assert_eq!(v["type"], "auditpack.alert");
        assert_eq!(v["data"]["items"][0]["owner"], "internal");
        let (subject, body) = email(&m);
        assert!(subject.contains("1 regression"));
        assert!(body.contains("\nRegression\n- hipaa 164.0"));
        assert!(body.contains("    alice, bob\n"));
    }
}
