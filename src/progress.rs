//! What a run shows while it works, on standard error: live progress lines
//! when stderr is a terminal, one structured log line per event otherwise
//! (cron, systemd, CI), never both. Standard output keeps only the final
//! result the binary prints.
//!
//! The collection layer and the pipeline emit [`tracing`] events; this module
//! only installs what renders them ([`install`]). Every event carries a field
//! `event` naming what happened, and sits in spans that say whose it is:
//!
//! | span | fields |
//! |---|---|
//! | `run` | `organisation` |
//! | `source` | `source`, `source_type` |
//! | `dataset` | `dataset` |
//!
//! | `event` | from | fields |
//! |---|---|---|
//! | `stage` | pipeline | `stage` (`collect`, `evaluate`, `report`, `package`), `run_id` |
//! | `source_started` | collect | |
//! | `dataset_started` | collect/dataset | |
//! | `page_stored` | collect/dataset | `page`, `records` |
//! | `request_incomplete` | collect/dataset | `status`, `http_status`, `reason` |
//! | `retry` | collect/http, token endpoints | `attempt`, `max_attempts`, `delay_ms`, `http_status`, `retry_after_ms`, `throttled`, `reason`, `endpoint` |
//! | `rate_limit_wait` | collect/http | `waited_ms` (`info` from 1 s, `debug` below) |
//! | `throttle_block_wait` | collect/http | `wait`, `max_waits`, `delay_ms`, `endpoint` |
//! | `token_refresh` | collect/http | `endpoint` (`debug`) |
//! | `dataset_finished` | collect | `dataset`, `status`, `pages`, `records`, `reason` |
//! | `source_finished` | collect | `status`, `datasets`, `pages`, `records`, `reason` |
//! | `run_finished` | pipeline | `run_id`, `controls`, `all_satisfied`, `signed` |
//!
//! No event carries a secret, a header, a token or a URL's query string:
//! `endpoint` is scheme, host and path only, and reasons are the ones
//! `run.json` records. Only events of auditpack's own code are ever written
//! (the HTTP and TLS libraries' own logs, which may show headers, never
//! are), whatever the filter says.
//!
//! Log lines: [`LogFormat::Text`] is `tracing-subscriber`'s plain format;
//! [`LogFormat::Json`] is one JSON object per line with `timestamp`,
//! `level`, `target`, the fields of every enclosing span (so `organisation`,
//! `source` and `dataset` are top-level keys), then the event's own fields
//! and its `message`.
//!
//! The terminal view keeps one line per organisation (its stage) and, under
//! it, one live line per source of that organisation (its current dataset,
//! pages, records, retries and throttling waits), keyed by organisation and
//! source so that many organisations can run in one process. A finished
//! source's line goes away; a finished organisation leaves one summary line.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::error::{Error, Result};
use crate::sanitize::terminal_safe;

/// The environment variable that picks the log format when `--log-format`
/// is not given.
pub const FORMAT_ENV: &str = "AUDITPACK_LOG_FORMAT";
/// The environment variable holding the log filter (`RUST_LOG` syntax, e.g.
/// `info`, `warn`, `auditpack::collect=debug`); `RUST_LOG` is read when it is
/// unset, and `info` is the default.
pub const FILTER_ENV: &str = "AUDITPACK_LOG";

/// How the user asked for progress and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Progress lines on a terminal, plain log lines otherwise.
    #[default]
    Auto,
    /// Plain log lines, even on a terminal.
    Text,
    /// JSON log lines, even on a terminal.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(LogFormat::Auto),
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::invalid(format!(
                "log format `{}` is not one of auto, text, json",
                terminal_safe(other)
            ))),
        }
    }
}

/// What is written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Live progress lines (stderr is a terminal).
    Progress,
    /// One plain log line per event.
    Text,
    /// One JSON object per event and line.
    Json,
}

impl Output {
    /// The output for `format`: an explicit `text` or `json` always wins;
    /// `auto` shows progress only when stderr is a terminal that can redraw
    /// lines (`TERM` is not `dumb`), and plain log lines otherwise.
    pub fn choose(format: LogFormat, stderr_is_terminal: bool, term: Option<&str>) -> Output {
        match format {
            LogFormat::Text => Output::Text,
            LogFormat::Json => Output::Json,
            LogFormat::Auto if stderr_is_terminal && term != Some("dumb") => Output::Progress,
            LogFormat::Auto => Output::Text,
        }
    }
}

/// The log format from `--log-format` when given, else from
/// [`FORMAT_ENV`], else [`LogFormat::Auto`].
///
/// # Errors
/// When the variable holds something other than `auto`, `text` or `json`.
pub fn format_from_env(flag: Option<LogFormat>) -> Result<LogFormat> {
    if let Some(format) = flag {
        return Ok(format);
    }
    match std::env::var(FORMAT_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .parse()
            .map_err(|e: Error| Error::invalid(format!("{FORMAT_ENV}: {e}"))),
        _ => Ok(LogFormat::Auto),
    }
}

/// The log filter from [`FILTER_ENV`], else `RUST_LOG`, else `info`, and the
/// variable it came from.
pub fn filter_from_env() -> (String, &'static str) {
    for var in [FILTER_ENV, "RUST_LOG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return (v, var);
            }
        }
    }
    ("info".to_owned(), "default")
}

/// What [`install`] set up; [`Logging::finish`] clears what is left of the
/// progress lines before the final result is printed.
#[derive(Debug)]
pub struct Logging {
    multi: Option<MultiProgress>,
}

impl Logging {
    /// Remove any live progress line (after an error, say).
    pub fn finish(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

/// Install the process-wide subscriber for `output`, with `filter`
/// (`RUST_LOG` syntax; `origin` names where it came from, for the error)
/// applied to log lines. Only auditpack's own events pass, whatever the
/// filter.
///
/// # Errors
/// When the filter does not parse, or a subscriber is installed already.
pub fn install(output: Output, filter: &str, origin: &str) -> Result<Logging> {
    let env = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(filter)
        .map_err(|e| {
            Error::invalid(format!(
                "log filter {:?} ({origin}) is not valid: {e}",
                terminal_safe(filter)
            ))
        })?;
    let ours = || Targets::new().with_target("auditpack", LevelFilter::TRACE);
    let registry = tracing_subscriber::registry();
    let (result, multi) = match output {
        Output::Progress => {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let layer = ProgressLayer::new(multi.clone())
                .with_filter(LevelFilter::DEBUG)
                .with_filter(ours());
            (
                tracing::subscriber::set_global_default(registry.with(layer)),
                Some(multi),
            )
        }
        Output::Text => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false)
                .with_filter(env)
                .with_filter(ours());
            (
                tracing::subscriber::set_global_default(registry.with(layer)),
                None,
            )
        }
        Output::Json => {
            let layer = tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines)
                .with_writer(std::io::stderr)
                .with_filter(env)
                .with_filter(ours());
            (
                tracing::subscriber::set_global_default(registry.with(layer)),
                None,
            )
        }
    };
    result.map_err(|e| Error::invalid(format!("cannot install logging: {e}")))?;
    Ok(Logging { multi })
}

/// One JSON object per event: time, level, target, every enclosing span's
/// fields (outermost first), then the event's fields.
#[derive(Debug, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(serde_json::Value::Object(fields)) =
                    serde_json::from_str::<serde_json::Value>(&fields.fields)
                {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Event fields into a JSON object, numbers and booleans as themselves.
struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Fields of an event and its spans, as text, by name.
#[derive(Clone, Debug, Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn number(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

/// The terminal view: renders events as live lines (see the module docs).
pub struct ProgressLayer {
    multi: MultiProgress,
    board: Mutex<Board>,
}

impl ProgressLayer {
    /// A layer drawing on `multi`.
    pub fn new(multi: MultiProgress) -> ProgressLayer {
        ProgressLayer {
            multi,
            board: Mutex::new(Board::default()),
        }
    }
}

impl<S> Layer<S> for ProgressLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    fields.0.extend(f.0.iter().map(|(k, v)| (*k, v.clone())));
                }
            }
        }
        event.record(&mut fields);
        if let Ok(mut board) = self.board.lock() {
            board.apply(&self.multi, &fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.name() != "run" {
            return;
        }
        let org = span
            .extensions()
            .get::<Fields>()
            .and_then(|f| f.get("organisation").map(str::to_owned));
        if let (Some(org), Ok(mut board)) = (org, self.board.lock()) {
            board.close(&org);
        }
    }
}

/// The live lines, by organisation, then source.
#[derive(Default)]
struct Board {
    orgs: BTreeMap<String, OrgLine>,
}

struct OrgLine {
    bar: ProgressBar,
    stage: String,
    sources: BTreeMap<String, SourceLine>,
    finished: Vec<String>,
}

#[derive(Default)]
struct SourceLine {
    bar: Option<ProgressBar>,
    source_type: String,
    current: String,
    pages: u64,
    records: u64,
    started: u64,
    done: u64,
    retries: u64,
    waited: Duration,
    note: String,
}

impl Board {
    fn org<'a>(&'a mut self, multi: &MultiProgress, name: &str) -> &'a mut OrgLine {
        self.orgs.entry(name.to_owned()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style("{spinner} {wide_msg} {elapsed}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            OrgLine {
                bar,
                stage: "starting".into(),
                sources: BTreeMap::new(),
                finished: Vec::new(),
            }
        })
    }

    fn apply(&mut self, multi: &MultiProgress, f: &Fields) {
        let Some(org_name) = f.get("organisation").map(str::to_owned) else {
            return;
        };
        let event = f.get("event").unwrap_or("");
        if event == "run_finished" {
            let org = self.org(multi, &org_name);
            let line = format!(
                "{}: done, {} controls judged; {}",
                terminal_safe(&org_name),
                f.number("controls"),
                if org.finished.is_empty() {
                    "no sources".to_owned()
                } else {
                    org.finished.join(", ")
                }
            );
            let _ = multi.println(line);
            return;
        }
        let org = self.org(multi, &org_name);
        if event == "stage" {
            org.stage = f.get("stage").unwrap_or("").to_owned();
        }
        if let Some(source) = f.get("source") {
            org.source_event(multi, source, event, f);
        }
        let running = org.sources.len();
        let done = org.finished.len();
        let message = if org.stage == "collect" && running + done > 0 {
            format!(
                "{}: collecting, {done} of {} sources done",
                terminal_safe(&org_name),
                running + done
            )
        } else if org.stage == "collect" {
            format!("{}: collecting", terminal_safe(&org_name))
        } else {
            format!("{}: {}", terminal_safe(&org_name), org.stage)
        };
        org.bar.set_message(message);
    }

    fn close(&mut self, org: &str) {
        if let Some(line) = self.orgs.remove(org) {
            for source in line.sources.values() {
                if let Some(bar) = &source.bar {
                    bar.finish_and_clear();
                }
            }
            line.bar.finish_and_clear();
        }
    }
}

impl OrgLine {
    fn source_event(&mut self, multi: &MultiProgress, source: &str, event: &str, f: &Fields) {
        if event == "source_finished" {
            if let Some(line) = self.sources.remove(source) {
                if let Some(bar) = line.bar {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
            self.finished.push(format!(
                "{} {} ({} records)",
                terminal_safe(source),
                f.get("status").unwrap_or("?"),
                f.number("records")
            ));
            return;
        }
        let after = self
            .sources
            .values()
            .filter_map(|s| s.bar.clone())
            .next_back()
            .unwrap_or_else(|| self.bar.clone());
        let line = self.sources.entry(source.to_owned()).or_default();
        if line.bar.is_none() {
            let bar = multi.insert_after(&after, ProgressBar::new_spinner());
            bar.set_style(style("  {wide_msg}"));
            line.bar = Some(bar);
            line.source_type = f.get("source_type").unwrap_or("").to_owned();
        }
        line.apply(event, f);
        if let Some(bar) = &line.bar {
            bar.set_message(line.render(source));
        }
    }
}

impl SourceLine {
    fn apply(&mut self, event: &str, f: &Fields) {
        let dataset = f.get("dataset").unwrap_or("");
        match event {
            "dataset_started" => {
                self.started += 1;
                dataset.clone_into(&mut self.current);
                self.note.clear();
            }
            "page_stored" => {
                self.pages += 1;
                self.records += f.number("records");
                dataset.clone_into(&mut self.current);
                self.note.clear();
            }
            "dataset_finished" => self.done += 1,
            "retry" => {
                self.retries += 1;
                let why = match f.get("http_status") {
                    Some(status) => format!("HTTP {status}"),
                    None => "no answer".to_owned(),
                };
                self.note = format!(
                    "retrying in {:.1} s ({why})",
                    Duration::from_millis(f.number("delay_ms")).as_secs_f64()
                );
            }
            "throttle_block_wait" => {
                self.note = format!(
                    "blocked by the server, waiting {:.0} s",
                    Duration::from_millis(f.number("delay_ms")).as_secs_f64()
                );
            }
            "rate_limit_wait" => {
                self.waited += Duration::from_millis(f.number("waited_ms"));
            }
            "request_incomplete" => {
                self.note = format!("{dataset}: {}", f.get("status").unwrap_or("incomplete"));
            }
            _ => {}
        }
    }

    fn render(&self, source: &str) -> String {
        let mut text = format!("{} ({})", terminal_safe(source), self.source_type);
        if !self.current.is_empty() {
            text.push_str(&format!(" {}", terminal_safe(&self.current)));
        }
        text.push_str(&format!(
            ": {} records in {} pages, {} of {} datasets done",
            self.records,
            self.pages,
            self.done,
            self.started.max(self.done)
        ));
        if self.retries > 0 {
            text.push_str(&format!(", {} retries", self.retries));
        }
        if self.waited >= Duration::from_secs(1) {
            text.push_str(&format!(
                ", {:.0} s waiting for rate limits",
                self.waited.as_secs_f64()
            ));
        }
        if !self.note.is_empty() {
            text.push_str(&format!(" ({})", terminal_safe(&self.note)));
        }
        text
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_only_on_a_terminal_that_redraws_unless_asked_otherwise() {
        use LogFormat::{Auto, Json, Text};
        let cases = [
            (Auto, true, Some("xterm-256color"), Output::Progress),
            (Auto, true, None, Output::Progress),
            (Auto, true, Some("dumb"), Output::Text),
            (Auto, false, Some("xterm"), Output::Text),
            (Auto, false, None, Output::Text),
            (Json, true, Some("xterm"), Output::Json),
            (Json, false, None, Output::Json),
            (Text, true, Some("xterm"), Output::Text),
        ];
        for (format, tty, term, want) in cases {
            assert_eq!(
                Output::choose(format, tty, term),
                want,
                "{format:?} tty={tty} TERM={term:?}"
            );
        }
    }

    #[test]
    fn formats_parse_and_bad_ones_are_named() {
        assert_eq!("JSON".parse::<LogFormat>().ok(), Some(LogFormat::Json));
        assert_eq!(" text ".parse::<LogFormat>().ok(), Some(LogFormat::Text));
        assert_eq!("auto".parse::<LogFormat>().ok(), Some(LogFormat::Auto));
        let e = "yaml\u{1b}[2J"
            .parse::<LogFormat>()
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(
            e.contains("yaml?[2j") && !e.contains('\u{1b}') && e.contains("auto, text, json"),
            "{e}"
        );
    }

    fn fields(pairs: &[(&'static str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    #[test]
    fn lines_are_keyed_by_organisation_and_source() {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let mut board = Board::default();
        for (org, source, records) in [("A Clinic", "m365", "5"), ("B Dental", "m365", "7")] {
            for (event, extra) in [
                ("source_started", ("", "")),
                ("dataset_started", ("dataset", "users")),
                ("page_stored", ("records", records)),
                ("page_stored", ("records", records)),
                ("retry", ("http_status", "429")),
            ] {
                let mut f = fields(&[
                    ("organisation", org),
                    ("source", source),
                    ("source_type", "m365"),
                    ("dataset", "users"),
                    ("event", event),
                    ("delay_ms", "1500"),
                ]);
                if !extra.0.is_empty() {
                    f.0.insert(extra.0, extra.1.to_owned());
                }
                board.apply(&multi, &f);
            }
        }
        assert_eq!(board.orgs.len(), 2);
        let a = &board.orgs["A Clinic"].sources["m365"];
        let b = &board.orgs["B Dental"].sources["m365"];
        assert_eq!((a.pages, a.records, a.retries), (2, 10, 1));
        assert_eq!((b.pages, b.records, b.retries), (2, 14, 1));
        let text = a.render("m365");
        assert!(
            text.contains("m365 (m365) users: 10 records in 2 pages")
                && text.contains("1 retries")
                && text.contains("retrying in 1.5 s (HTTP 429)"),
            "{text}"
        );

        board.apply(
            &multi,
            &fields(&[
                ("organisation", "A Clinic"),
                ("source", "m365"),
                ("event", "source_finished"),
                ("status", "complete"),
                ("records", "10"),
            ]),
        );
        assert!(board.orgs["A Clinic"].sources.is_empty());
        assert_eq!(
            board.orgs["A Clinic"].finished,
            ["m365 complete (10 records)"]
        );
        assert_eq!(board.orgs["B Dental"].sources.len(), 1);
        board.close("A Clinic");
        assert!(!board.orgs.contains_key("A Clinic"));
        assert!(board.orgs.contains_key("B Dental"));
    }

    #[test]
    fn names_are_made_terminal_safe() {
        let line = SourceLine {
            source_type: "m365".into(),
            current: "users\u{1b}]0;owned\u{7}".into(),
            ..SourceLine::default()
        };
        assert!(!line.render("src\u{1b}[2J").contains('\u{1b}'));
    }
}
