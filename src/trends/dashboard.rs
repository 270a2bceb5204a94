//! `auditpack dashboard`: a static site over a fleet's history, one folder
//! that any web server or object store can serve (`index.html` its entry;
//! no script, style or font from anywhere else).
//!
//! - `index.html`: every organisation with its posture (controls passing of
//!   those in scope, in its latest run), a sparkline of that share over the
//!   last [`SPARK_DAYS`] days, its open gaps, regressions in the last 7 days
//!   and the state of its last run; the organisations whose last run failed
//!   (a source failed) or is overdue; the regressions of the week; and the
//!   worst open gaps across the fleet. Tables sort (click a header) and
//!   filter (the box above them) with a small inline script.
//! - `orgs/<slug>.html`: one organisation alone (never another's data):
//!   its KPIs, open gaps with their age, sources, and links to its latest
//!   report (copied to `orgs/<slug>/report.html` and `.pdf`) and its QBR
//!   (`orgs/<slug>/qbr-<quarter>.html`, written with `--with-qbr`, or put
//!   there by `auditpack qbr --out`).
//!
//! The sparklines and weekly regressions come from the history index (one
//! query over the fleet); each organisation's latest summary is read once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{html_escape as e, show_value, slug, svg, trim_number, Organisation, Period};
use crate::error::{Result, ResultExt};
use crate::evaluate::Status;
use crate::evidence::{write_atomic, SourceStatus};
use crate::history::index::{HistoryScope, Index, RunFilter, RunRow};
use crate::history::kpis::{self, party_label, KpiStatus};
use crate::history::{LocalStore, RunSummary, SummaryStore};

/// Days of history in a sparkline.
pub const SPARK_DAYS: i64 = 30;
/// Worst gaps listed across the fleet.
pub const WORST_GAPS: usize = 25;
/// Threads writing the organisation pages.
const WRITERS: usize = 8;

/// How to build the dashboard.
#[derive(Clone, Debug)]
pub struct Options {
    /// The fleet's name.
    pub fleet: String,
    /// The fleet store (its history index lives there).
    pub store: PathBuf,
    /// "Now" (tests and benchmarks fix it).
    pub now: DateTime<Utc>,
    /// A last run older than this is overdue.
    pub overdue_hours: i64,
    /// Also write each organisation's review of the current quarter.
    pub with_qbr: bool,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Organisations on the dashboard.
    pub organisations: usize,
    /// Organisations without any run.
    pub never_run: usize,
    /// Files written.
    pub files: usize,
}

struct OrgView {
    org: Organisation,
    page: String,
    latest: Option<RunSummary>,
    posture: Option<(usize, usize)>,
    spark: Vec<Option<f64>>,
    regressions_week: usize,
    failed_sources: Vec<String>,
    overdue: bool,
    report: Option<String>,
    qbr: Option<String>,
}

fn posture(s: &RunSummary) -> (usize, usize) {
    let get = |st: Status| s.counts.by_status.get(&st).copied().unwrap_or(0);
    let total: usize = s.counts.by_status.values().sum::<usize>() - get(Status::NotApplicable);
    (get(Status::Pass) + get(Status::ManualAttested), total)
}

fn row_posture(r: &RunRow) -> Option<f64> {
    let get = |st: Status| r.by_status.get(&st).copied().unwrap_or(0);
    let total = r.by_status.values().sum::<usize>() - get(Status::NotApplicable);
    (total > 0)
        .then(|| 100.0 * (get(Status::Pass) + get(Status::ManualAttested)) as f64 / total as f64)
}

fn pct((good, total): (usize, usize)) -> String {
    if total == 0 {
        "not applicable".to_owned()
    } else {
        format!("{}%", trim_number(100.0 * good as f64 / total as f64))
    }
}

fn copy_if_exists(from: &Path, to: &Path) -> Result<bool> {
    match std::fs::read(from) {
        Ok(bytes) => {
            write_atomic(to, &bytes).context(|| format!("cannot write {}", to.display()))?;
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).context(|| format!("cannot read {}", from.display())),
    }
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;color:#1c2333;margin:0;background:#fff}main{max-width:1100px;margin:0 auto;padding:20px}h1{color:#1f3b5e;margin:0 0 4px}h2{color:#1f3b5e;border-bottom:2px solid #1f3b5e;padding-bottom:3px;margin-top:28px}.muted{color:#5c6475}table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #d9dde6;vertical-align:middle}th{background:#f5f6f9;color:#5c6475;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:' ▲'}th[aria-sort=descending]::after{content:' ▼'}.bad{color:#c0392b;font-weight:bold}.good{color:#2e7d4f}input[type=search]{padding:4px 6px;width:260px;font-size:13px}a{color:#1f3b5e}";

/// The inline script: click a header to sort its table (numbers by
/// `data-v`, else text); type in a filter box to hide rows without the text.
const SCRIPT: &str = r#"(function(){
function key(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim().toLowerCase():parseFloat(v);}
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var asc=th.getAttribute('aria-sort')!=='ascending';
      table.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',asc?'ascending':'descending');
      var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);if(x<y)return asc?-1:1;if(x>y)return asc?1:-1;return 0;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
document.querySelectorAll('input[data-filter]').forEach(function(input){
  var table=document.getElementById(input.getAttribute('data-filter'));
  if(!table)return;
  input.addEventListener('input',function(){
    var q=input.value.trim().toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows,function(r){r.hidden=q!==''&&r.textContent.toLowerCase().indexOf(q)<0;});
  });
});
})();"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>{body}</main><script>{SCRIPT}</script></body></html>\n",
        e(title)
    )
}

/// Build the site into `out`.
///
/// # Errors
/// When the history cannot be read (a malformed summary is named) or a
/// file cannot be written.
pub fn write(orgs: &[Organisation], options: &Options, out: &Path) -> Result<Written> {
    let orgs_dir = out.join("orgs");
    std::fs::create_dir_all(&orgs_dir)
        .context(|| format!("cannot create {}", orgs_dir.display()))?;
    let scope = HistoryScope::fleet(&options.store)?;
    let index = Index::open(&scope)?;
    let since = crate::evidence::format_time(options.now - chrono::Duration::days(SPARK_DAYS));
    let rows = index.runs(&RunFilter {
        organisation: None,
        since: Some(since),
    })?;
    let mut by_org: BTreeMap<String, Vec<&RunRow>> = BTreeMap::new();
    for r in &rows {
        by_org
            .entry(r.organisation.to_lowercase())
            .or_default()
            .push(r);
    }
    let week = crate::evidence::format_time(options.now - chrono::Duration::days(7));
    let quarter = Period::quarter_of(options.now.date_naive());
    let mut written = Written::default();
    let mut views = Vec::with_capacity(orgs.len());
    let mut used_pages: BTreeMap<String, usize> = BTreeMap::new();
    for org in orgs {
        let mut page = slug(&org.slug);
        let n = used_pages.entry(page.clone()).or_default();
        *n += 1;
        if *n > 1 {
            page = format!("{page}-{n}");
        }
        let store = LocalStore::new(&org.store);
        let mut latest = None;
        for id in store.list()?.iter().rev() {
            let s = store.read(id)?;
            if s.organisation.eq_ignore_ascii_case(&org.name) {
                latest = Some(s);
                break;
            }
        }
        if let Some(s) = &mut latest {
            if s.kpis.is_none() {
                s.kpis = Some(kpis::compute(s, None, &[], &org.settings));
            }
        }
        let recent = by_org.get(&org.name.to_lowercase());
        let spark: Vec<Option<f64>> = recent
            .map(|rs| rs.iter().map(|r| row_posture(r)).collect())
            .unwrap_or_default();
        let regressions_week = recent
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.finished >= week)
                    .filter_map(|r| r.changes.as_ref().map(|c| c.regressions))
                    .sum()
            })
            .unwrap_or(0);
        let failed_sources: Vec<String> = latest
            .as_ref()
            .map(|s| {
                s.sources
                    .iter()
                    .filter(|(_, v)| v.status == SourceStatus::Failed)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let overdue = latest.as_ref().is_none_or(|s| {
            kpis::run_time(s)
                .is_none_or(|t| options.now - t > chrono::Duration::hours(options.overdue_hours))
        });
        let org_dir = orgs_dir.join(&page);
        let mut report = None;
        if let Some(s) = &latest {
            let reports = org.store.join("runs").join(&s.run_id).join("reports");
            let mut any = false;
            for (name, link) in [("report.html", true), ("report.pdf", false)] {
                let copied = copy_if_exists(&reports.join(name), &org_dir.join(name))?;
                written.files += usize::from(copied);
                any |= copied && link;
            }
            if any {
                report = Some(format!("{page}/report.html"));
            }
        }
        let qbr_name = format!("qbr-{}.html", slug(&quarter.label));
        if options.with_qbr && latest.is_some() {
            match super::qbr::build(org, &quarter) {
                Ok(q) => {
                    written.files += super::qbr::write(&q, &org_dir)?.len();
                }
                Err(err) if err.to_string().contains("no runs of") => {}
                Err(err) => return Err(err),
            }
        }
        let qbr = org_dir
            .join(&qbr_name)
            .is_file()
            .then(|| format!("{page}/{qbr_name}"));
        written.never_run += usize::from(latest.is_none());
        views.push(OrgView {
            org: org.clone(),
            page,
            posture: latest.as_ref().map(posture),
            latest,
            spark,
            regressions_week,
            failed_sources,
            overdue,
            report,
            qbr,
        });
    }
    // Each page is synced to disk as it is written: write them from a few
    // threads so the waits overlap.
    let chunk = views.len().div_ceil(WRITERS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = views
            .chunks(chunk)
            .map(|part| {
                let orgs_dir = &orgs_dir;
                scope.spawn(move || -> Result<()> {
                    for v in part {
                        let path = orgs_dir.join(format!("{}.html", v.page));
                        write_atomic(&path, org_page(v, options).as_bytes())
                            .context(|| format!("cannot write {}", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(crate::error::Error::invalid(
                    "a dashboard page writer panicked",
                ))
            })
        })
    })?;
    written.files += views.len();
    let path = out.join("index.html");
    write_atomic(&path, index_page(&views, options, &rows, &week).as_bytes())
        .context(|| format!("cannot write {}", path.display()))?;
    written.files += 1;
    written.organisations = views.len();
    Ok(written)
}

fn last_run_cell(v: &OrgView) -> (String, bool) {
    match &v.latest {
        None => ("never run".to_owned(), true),
        Some(s) => {
            let mut text = e(&s.finished_at);
            let mut bad = false;
            if !v.failed_sources.is_empty() {
                let _ = write!(text, " · failed: {}", e(&v.failed_sources.join(", ")));
                bad = true;
            }
            if v.overdue {
                text.push_str(" · overdue");
                bad = true;
            }
            (text, bad)
        }
    }
}

fn open_gaps(v: &OrgView) -> usize {
    v.latest
        .as_ref()
        .and_then(|s| s.kpis.as_ref())
        .map_or(0, |k| k.open.len())
}

fn index_page(views: &[OrgView], o: &Options, rows: &[RunRow], week: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<h1>{}: compliance dashboard</h1><p class=\"muted\">{} organisation(s) · as of {}</p>",
        e(&o.fleet),
        views.len(),
        e(&crate::evidence::format_time(o.now))
    );
    s.push_str("<h2>Organisations</h2><p><input type=\"search\" placeholder=\"Filter organisations\" data-filter=\"orgs\" aria-label=\"Filter organisations\"></p><table id=\"orgs\" class=\"sortable\"><thead><tr><th>Organisation</th><th>Posture</th><th>Trend</th><th>Open gaps</th><th>Regressions (7 days)</th><th>Last run</th></tr></thead><tbody>");
    for v in views {
        let (last, bad) = last_run_cell(v);
        let posture_v = v
            .posture
            .filter(|p| p.1 > 0)
            .map_or(-1.0, |(g, t)| 100.0 * g as f64 / t as f64);
        let _ = write!(
            s,
            "<tr><td><a href=\"orgs/{page}.html\" class=\"org\">{name}</a></td><td data-v=\"{posture_v:.2}\">{posture}</td><td>{spark}</td><td data-v=\"{gaps}\">{gaps}</td><td data-v=\"{reg}\"{regc}>{reg}</td><td{lastc}>{last}</td></tr>",
            page = e(&v.page),
            name = e(&v.org.name),
            posture = v.posture.map_or_else(|| "no runs".to_owned(), pct),
            spark = svg::sparkline(&v.spark, 120.0, 24.0),
            gaps = open_gaps(v),
            reg = v.regressions_week,
            regc = if v.regressions_week > 0 { " class=\"bad\"" } else { "" },
            lastc = if bad { " class=\"bad\"" } else { "" },
        );
    }
    s.push_str("</tbody></table>");

    s.push_str("<h2>Last run failed or overdue</h2>");
    let attention: Vec<&OrgView> = views
        .iter()
        .filter(|v| v.overdue || !v.failed_sources.is_empty())
        .collect();
    if attention.is_empty() {
        s.push_str("<p class=\"good\">Every organisation ran on time with every source.</p>");
    } else {
        s.push_str("<table id=\"attention\" class=\"sortable\"><thead><tr><th>Organisation</th><th>Last run</th></tr></thead><tbody>");
        for v in attention {
            let _ = write!(
                s,
                "<tr><td><a href=\"orgs/{}.html\">{}</a></td><td class=\"bad\">{}</td></tr>",
                e(&v.page),
                e(&v.org.name),
                last_run_cell(v).0
            );
        }
        s.push_str("</tbody></table>");
    }

    s.push_str("<h2>Regressions this week</h2>");
    let pages: BTreeMap<String, (&str, &str)> = views
        .iter()
        .map(|v| {
            (
                v.org.name.to_lowercase(),
                (v.page.as_str(), v.org.name.as_str()),
            )
        })
        .collect();
    let regressions: Vec<&RunRow> = rows
        .iter()
        .filter(|r| r.finished.as_str() >= week)
        .filter(|r| r.changes.as_ref().is_some_and(|c| c.regressions > 0))
        .filter(|r| pages.contains_key(&r.organisation.to_lowercase()))
        .collect();
    if regressions.is_empty() {
        s.push_str("<p class=\"good\">No control regressed in the last 7 days.</p>");
    } else {
        s.push_str("<table id=\"regressions\" class=\"sortable\"><thead><tr><th>Organisation</th><th>Run</th><th>Finished</th><th>Controls newly failing</th></tr></thead><tbody>");
        for r in regressions.iter().rev() {
            let (page, name) = pages[&r.organisation.to_lowercase()];
            let n = r.changes.as_ref().map_or(0, |c| c.regressions);
            let _ = write!(
                s,
                "<tr><td><a href=\"orgs/{}.html\">{}</a></td><td>{}</td><td>{}</td><td data-v=\"{n}\" class=\"bad\">{n}</td></tr>",
                e(page),
                e(name),
                e(&r.run_id),
                e(&r.finished)
            );
        }
        s.push_str("</tbody></table>");
    }

    s.push_str("<h2>Worst open gaps across the fleet</h2>");
    let now = o.now;
    let mut worst: Vec<(f64, &OrgView, String, crate::config::Owner, usize, f64)> = Vec::new();
    for v in views {
        let Some(s) = &v.latest else { continue };
        let Some(k) = &s.kpis else { continue };
        let mut per: BTreeMap<(&str, crate::config::Owner), (usize, f64, f64)> = BTreeMap::new();
        for g in &k.open {
            let age = DateTime::parse_from_rfc3339(&g.since)
                .map(|t| (now - t.with_timezone(&Utc)).num_seconds().max(0) as f64 / 86_400.0)
                .unwrap_or(0.0);
            let entry = per.entry((g.check.as_str(), g.owner)).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(age);
            entry.2 += age + 1.0;
        }
        for ((check, owner), (n, oldest, weight)) in per {
            let title = s
                .checks
                .iter()
                .find(|c| c.check == check)
                .map_or(check, |c| c.title.as_str());
            worst.push((weight, v, title.to_owned(), owner, n, oldest));
        }
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    worst.truncate(WORST_GAPS);
    if worst.is_empty() {
        s.push_str("<p class=\"good\">No open gaps.</p>");
    } else {
        s.push_str("<p><input type=\"search\" placeholder=\"Filter gaps\" data-filter=\"worst\" aria-label=\"Filter gaps\"></p><table id=\"worst\" class=\"sortable\"><thead><tr><th>Organisation</th><th>Gap</th><th>Owner</th><th>Subjects</th><th>Oldest (days)</th><th>Subject-days open</th></tr></thead><tbody>");
        for (weight, v, title, owner, n, oldest) in worst {
            let _ = write!(
                s,
                "<tr><td><a href=\"orgs/{}.html\">{}</a></td><td>{}</td><td>{}</td><td data-v=\"{n}\">{n}</td><td data-v=\"{oldest:.2}\">{}</td><td data-v=\"{weight:.2}\">{}</td></tr>",
                e(&v.page),
                e(&v.org.name),
                e(&title),
                party_label(owner),
                trim_number(oldest),
                trim_number(weight)
            );
        }
        s.push_str("</tbody></table>");
    }
    page(&format!("{}: compliance dashboard", o.fleet), &s)
}

fn org_page(v: &OrgView, o: &Options) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<p><a href=\"../index.html\" id=\"back\">← {}</a></p><h1 id=\"org-name\">{}</h1>",
        e(&o.fleet),
        e(&v.org.name)
    );
    let Some(latest) = &v.latest else {
        s.push_str("<p class=\"bad\">No run in the history yet.</p>");
        return page(&v.org.name, &s);
    };
    let (last, bad) = last_run_cell(v);
    let _ = write!(
        s,
        "<p>Posture: <strong id=\"posture\">{}</strong> of controls in scope pass or are attested (run {}). Last run: <span{}>{}</span></p>{}",
        v.posture.map_or_else(|| "no runs".to_owned(), pct),
        e(&latest.run_id),
        if bad { " class=\"bad\"" } else { "" },
        last,
        svg::sparkline(&v.spark, 360.0, 60.0)
    );
    s.push_str("<p>");
    match &v.report {
        Some(r) => {
            let _ = write!(s, "<a href=\"{}\" id=\"report\">Latest report</a>", e(r));
        }
        None => s.push_str("<span class=\"muted\">The latest report is not in the store.</span>"),
    }
    s.push_str(" · ");
    match &v.qbr {
        Some(q) => {
            let _ = write!(s, "<a href=\"{}\" id=\"qbr\">Quarterly business review</a>", e(q));
        }
        None => s.push_str("<span class=\"muted\">No review for this quarter yet (auditpack dashboard --with-qbr, or auditpack qbr).</span>"),
    }
    let _ = write!(
        s,
        "</p><p>Regressions in the last 7 days: <strong>{}</strong></p>",
        v.regressions_week
    );
    if let Some(k) = &latest.kpis {
        s.push_str("<h2>KPIs</h2><table id=\"kpis\" class=\"sortable\"><thead><tr><th>KPI</th><th>Value</th><th>Numerator / denominator</th><th>Evidence</th></tr></thead><tbody>");
        for kpi in k.kpis.iter().filter(|k| !k.id.starts_with("mttr.check.")) {
            let basis = match kpi.denominator {
                Some(d) => format!("{} / {}", trim_number(kpi.numerator), trim_number(d)),
                None => trim_number(kpi.numerator),
            };
            let _ = write!(
                s,
                "<tr><td>{}</td><td data-v=\"{}\"{}>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
                e(&kpi.title),
                kpi.value.unwrap_or(-1.0),
                if kpi.status == KpiStatus::Inconclusive { " class=\"bad\"" } else { "" },
                e(&show_value(kpi)),
                e(&basis),
                e(&kpi.evidence.join(", "))
            );
        }
        s.push_str("</tbody></table>");
        s.push_str("<h2>Open gaps</h2>");
        if k.open.is_empty() {
            s.push_str("<p class=\"good\">None.</p>");
        } else {
            s.push_str("<p><input type=\"search\" placeholder=\"Filter gaps\" data-filter=\"gaps\" aria-label=\"Filter gaps\"></p><table id=\"gaps\" class=\"sortable\"><thead><tr><th>Owner</th><th>Check</th><th>Subject</th><th>Failing since</th><th>Age (days)</th></tr></thead><tbody>");
            let names: BTreeMap<(&str, &str), &str> = latest
                .checks
                .iter()
                .flat_map(|c| {
                    c.failing
                        .iter()
                        .map(move |f| ((c.check.as_str(), f.id.as_str()), f.name.as_str()))
                })
                .collect();
            for g in &k.open {
                let age = DateTime::parse_from_rfc3339(&g.since)
                    .map(|t| (o.now - t.with_timezone(&Utc)).num_seconds().max(0) as f64 / 86_400.0)
                    .unwrap_or(0.0);
                let name = names
                    .get(&(g.check.as_str(), g.subject.as_str()))
                    .copied()
                    .unwrap_or(g.subject.as_str());
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-v=\"{age:.2}\">{}</td></tr>",
                    party_label(g.owner),
                    e(&g.check),
                    e(name),
                    e(&g.since),
                    trim_number(age)
                );
            }
            s.push_str("</tbody></table>");
        }
    }
    s.push_str("<h2>Sources in the last run</h2><table id=\"sources\"><thead><tr><th>Source</th><th>Type</th><th>Status</th><th>Reason</th></tr></thead><tbody>");
    for (name, src) in &latest.sources {
        let status = match src.status {
            SourceStatus::Complete => "complete",
            SourceStatus::Partial => "partial",
            SourceStatus::Failed => "failed",
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td{}>{status}</td><td>{}</td></tr>",
            e(name),
            e(&src.source_type),
            if src.status == SourceStatus::Complete {
                ""
            } else {
                " class=\"bad\""
            },
            e(src.reason.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</tbody></table>");
    page(&v.org.name, &s)
}
