//! Charts as inline SVG, drawn here (no script, no remote asset): a line
//! chart of one or more series over a period, with a gap in a line where a
//! value is missing (a framework out of scope, a KPI not measured), and a
//! sparkline. The QBR's PDF draws the same [`Chart`] with its own pen.

use std::fmt::Write as _;

use super::{html_escape, trim_number};

/// Line colours, in order.
pub const COLOURS: [&str; 6] = [
    "#1f3b5e", "#2e7d4f", "#c0392b", "#d68a10", "#6a4c93", "#11888f",
];

/// One line: a value (or a gap) at a position along the period.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Points: position 0..=1 along the x axis, and the value or `None`
    /// for a gap.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A chart: its title, unit, scale and lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// `%`, `days`...
    pub unit: String,
    /// Top of the y axis (100 for a percentage).
    pub y_max: f64,
    /// The lines.
    pub lines: Vec<Line>,
    /// Labels under the x axis: first and last day.
    pub x_labels: (String, String),
}

impl Chart {
    /// The y axis top for these lines: 100 for a percentage, else the
    /// largest value rounded up (at least 1).
    pub fn scale(unit: &str, lines: &[Line]) -> f64 {
        if unit == "%" {
            return 100.0;
        }
        let max = lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .fold(0.0_f64, f64::max);
        if max <= 1.0 {
            1.0
        } else {
            let step = 10f64.powf(max.log10().floor());
            (max / step).ceil() * step
        }
    }

    /// The runs of consecutive present values of a line (each run of the
    /// line between gaps), as (x, y) in 0..=1 by 0..=1.
    pub fn segments(&self, line: &Line) -> Vec<Vec<(f64, f64)>> {
        let mut out = Vec::new();
        let mut current = Vec::new();
        for (x, v) in &line.points {
            match v {
                Some(v) => current.push((x.clamp(0.0, 1.0), (v / self.y_max).clamp(0.0, 1.0))),
                None => {
                    if !current.is_empty() {
                        out.push(std::mem::take(&mut current));
                    }
                }
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// The chart as an SVG element (`role="img"` with a title for readers).
pub fn chart(c: &Chart, width: f64, height: f64) -> String {
    let (left, right, top, bottom) = (44.0, 10.0, 26.0, 40.0);
    let pw = width - left - right;
    let ph = height - top - bottom;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"><title>{t}</title><text x="{left}" y="16" font-size="13" font-weight="bold" fill="#1f3b5e">{t}</text>"##,
        t = html_escape(&c.title)
    );
    for i in 0..=4 {
        let frac = f64::from(i) / 4.0;
        let y = top + ph - frac * ph;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#d9dde6" stroke-width="0.6"/><text x="{tx:.1}" y="{ty:.1}" font-size="9" text-anchor="end" fill="#5c6475">{label}</text>"##,
            x2 = left + pw,
            tx = left - 4.0,
            ty = y + 3.0,
            label = html_escape(&format!(
                "{}{}",
                trim_number(c.y_max * frac),
                if c.unit == "%" { "%" } else { "" }
            ))
        );
    }
    let _ = write!(
        s,
        r##"<text x="{left}" y="{y:.1}" font-size="9" fill="#5c6475">{a}</text><text x="{r:.1}" y="{y:.1}" font-size="9" text-anchor="end" fill="#5c6475">{b}</text>"##,
        y = top + ph + 13.0,
        r = left + pw,
        a = html_escape(&c.x_labels.0),
        b = html_escape(&c.x_labels.1)
    );
    for (i, line) in c.lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for seg in c.segments(line) {
            if let [(x, y)] = seg.as_slice() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                    left + x * pw,
                    top + ph - y * ph
                );
                continue;
            }
            let pts: Vec<String> = seg
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", left + x * pw, top + ph - y * ph))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
        }
        // Legend under the axis labels.
        let lx = left + (i % 3) as f64 * (pw / 3.0);
        let ly = top + ph + 26.0 + (i / 3) as f64 * 11.0;
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="{:.1}" width="8" height="8" fill="{colour}"/><text x="{:.1}" y="{ly:.1}" font-size="9" fill="#1c2333">{}</text>"##,
            ly - 7.0,
            lx + 11.0,
            html_escape(&line.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A sparkline of values (gaps for `None`), scaled to 0..=100.
pub fn sparkline(values: &[Option<f64>], width: f64, height: f64) -> String {
    let n = values.len().max(2) - 1;
    let line = Line {
        label: String::new(),
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 / n as f64, *v))
            .collect(),
    };
    let chart = Chart {
        title: String::new(),
        unit: "%".to_owned(),
        y_max: 100.0,
        lines: vec![],
        x_labels: (String::new(), String::new()),
    };
    let mut s = format!(
        r##"<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true"><rect x="0" y="0" width="{width}" height="{height}" fill="#f5f6f9"/>"##
    );
    for seg in chart.segments(&line) {
        let pts: Vec<String> = seg
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    1.0 + x * (width - 2.0),
                    height - 1.0 - y * (height - 2.0)
                )
            })
            .collect();
        if pts.len() == 1 {
            let _ = write!(
                s,
                r##"<circle cx="{}" r="1.5" fill="#1f3b5e"/>"##,
                pts[0].replacen(',', "\" cy=\"", 1)
            );
        } else {
            let _ = write!(
                s,
                r##"<polyline fill="none" stroke="#1f3b5e" stroke-width="1.5" points="{}"/>"##,
                pts.join(" ")
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_splits_the_line() {
        let c = Chart {
            title: "t".into(),
            unit: "%".into(),
            y_max: 100.0,
            lines: vec![],
            x_labels: (String::new(), String::new()),
        };
        let line = Line {
            label: "x".into(),
            points: vec![
                (0.0, Some(50.0)),
                (0.3, Some(60.0)),
                (0.5, None),
                (0.7, Some(70.0)),
                (1.0, Some(80.0)),
            ],
        };
        let segs = c.segments(&line);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0], vec![(0.0, 0.5), (0.3, 0.6)]);
        let svg = chart(
            &Chart {
                lines: vec![line],
                ..c
            },
            400.0,
            200.0,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(!svg.contains("http://www.w3.org/2000/svg\" href"));
    }
}
