//! Precision–recall curves as small, self-contained SVG files.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use warden_core::{Label, Taxonomy};

use crate::metrics::{PrCurve, Ranked};
use crate::report::{columns, validate};

const W: f64 = 480.0;
const H: f64 = 400.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;
const PW: f64 = W - LEFT - RIGHT;
const PH: f64 = H - TOP - BOTTOM;

fn x_of(recall: f64) -> f64 {
    LEFT + recall.clamp(0.0, 1.0) * PW
}

fn y_of(precision: f64) -> f64 {
    TOP + (1.0 - precision.clamp(0.0, 1.0)) * PH
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The policy's operating point on a PR plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    pub recall: f64,
    pub precision: f64,
    /// Shown in the legend; `None` for a composite policy (`any`).
    pub threshold: Option<f32>,
}

/// Renders one precision–recall plot: recall on x, precision on y, both 0–1 with ticks
/// every 0.2, the step-wise curve whose area is the average precision (shown in the title),
/// a dashed prevalence baseline and the policy operating point as a dot. With `curve`
/// `None` (no positive rows) the plot says the curve is undefined.
pub fn pr_curve_svg(title: &str, curve: Option<&PrCurve>, point: Option<OperatingPoint>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let ap = curve.map(|c| {
        let mut prev = 0.0;
        let mut ap = 0.0;
        for (&p, &r) in c.precision.iter().zip(&c.recall) {
            ap += (r - prev) * p;
            prev = r;
        }
        ap
    });
    let heading = match ap {
        Some(ap) => format!("{title} — AUPRC {ap:.3}"),
        None => format!("{title} — AUPRC undefined"),
    };
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        xml_escape(&heading)
    );
    // Grid, ticks and tick labels.
    for i in 0..=5 {
        let v = i as f64 / 5.0;
        let (x, y) = (x_of(v), y_of(v));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/>"##,
            TOP + PH
        );
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
            LEFT + PW
        );
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text>"##,
            TOP + PH,
            TOP + PH + 5.0,
            TOP + PH + 18.0
        );
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">Recall</text>"#,
        LEFT + PW / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">Precision</text>"#,
        TOP + PH / 2.0,
        TOP + PH / 2.0
    );
    match curve.filter(|c| !c.is_empty()) {
        Some(c) => {
            if let Some(&prevalence) = c.precision.last() {
                let y = y_of(prevalence);
                let _ = writeln!(
                    s,
                    r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#999999" stroke-dasharray="4 4"><title>prevalence {prevalence:.3}</title></line>"##,
                    LEFT + PW
                );
            }
            let _ = writeln!(
                s,
                r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
                step_points(c)
            );
        }
        None => {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no positive rows: curve undefined</text>"#,
                LEFT + PW / 2.0,
                TOP + PH / 2.0
            );
        }
    }
    if let Some(p) = point {
        let (x, y) = (x_of(p.recall), y_of(p.precision));
        let what = match p.threshold {
            Some(t) => format!("policy threshold {t}"),
            None => "policy".to_owned(),
        };
        let legend = format!("{what}: P {:.3}, R {:.3}", p.precision, p.recall);
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="#d62728"><title>{}</title></circle>"##,
            xml_escape(&legend)
        );
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#d62728"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            LEFT + 12.0,
            TOP + PH - 14.0,
            LEFT + 22.0,
            TOP + PH - 10.0,
            xml_escape(&legend)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The step curve `(0, P₁) → (R₁, P₁) → (R₁, P₂) → (R₂, P₂) …` whose area is the average
/// precision, in pixels, with points that lie on a straight horizontal or vertical run
/// dropped so huge datasets still give small files.
fn step_points(c: &PrCurve) -> String {
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(2 * c.len());
    let mut push = |x: f64, y: f64| {
        let (x, y) = ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0);
        loop {
            if pts.last() == Some(&(x, y)) {
                return;
            }
            let n = pts.len();
            if n >= 2 {
                let (a, b) = (pts[n - 2], pts[n - 1]);
                if (a.0 == b.0 && b.0 == x) || (a.1 == b.1 && b.1 == y) {
                    // `b` is the middle of a straight run: drop it and look again.
                    pts.pop();
                    continue;
                }
            }
            pts.push((x, y));
            return;
        }
    };
    let mut prev_r = 0.0;
    for (&p, &r) in c.precision.iter().zip(&c.recall) {
        push(x_of(prev_r), y_of(p));
        push(x_of(r), y_of(p));
        prev_r = r;
    }
    let mut out = String::with_capacity(pts.len() * 12);
    for (i, (x, y)) in pts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{x:.1},{y:.1}");
    }
    out
}

/// A file-name-safe version of a category code: ASCII letters, digits, `-` and `_` kept,
/// anything else (`/`, `.`, spaces, non-ASCII) replaced by `_`.
pub fn safe_file_stem(code: &str) -> String {
    let s: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".to_owned()
    } else {
        s
    }
}

/// Writes `pr-<CODE>.svg` for every taxonomy category and `pr-any.svg` for `any` into
/// `dir` (created if missing) and returns the paths, categories in taxonomy order then
/// `any`. File names come from category codes made safe by [`safe_file_stem`] (never
/// from names such as `hate/threatening`), de-duplicated case-insensitively with a `-2`,
/// `-3`… suffix. Each plot's operating point is the policy's: `score >= thresholds[c]`
/// for a category, any category at or above its threshold for `any` (as in
/// [`crate::EvalReport::any`]). Categories without positives get a plot saying so.
///
/// Inputs are as for [`crate::evaluate`]; when they do not fit together the error has
/// kind [`io::ErrorKind::InvalidInput`].
pub fn write_pr_curves_svg<L: AsRef<[Label]>, S: AsRef<[f32]>>(
    taxonomy: &Taxonomy,
    labels: &[L],
    scores: &[S],
    thresholds: &[f32],
    model_name: &str,
    dir: &Path,
) -> io::Result<Vec<PathBuf>> {
    validate(taxonomy, labels, scores, thresholds)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    std::fs::create_dir_all(dir)?;
    let cols = columns(taxonomy, labels, scores, thresholds);
    let mut used: HashSet<String> = HashSet::new();
    used.insert("any".to_owned());
    let mut paths = Vec::with_capacity(cols.len());
    for col in &cols {
        let is_any = col.threshold.is_none();
        let stem = if is_any {
            "any".to_owned()
        } else {
            let base = safe_file_stem(&col.code);
            let mut stem = base.clone();
            let mut i = 2;
            while !used.insert(stem.to_ascii_lowercase()) {
                stem = format!("{base}-{i}");
                i += 1;
            }
            stem
        };
        let curve = Ranked::new(&col.scores, &col.labels).pr_curve();
        let at = col.metrics_at_policy();
        let point = match (at.precision, at.recall) {
            (Some(precision), Some(recall)) => Some(OperatingPoint {
                recall,
                precision,
                threshold: col.threshold,
            }),
            _ => None,
        };
        let category = if is_any || col.name == col.code {
            col.code.clone()
        } else {
            format!("{} ({})", col.code, col.name)
        };
        let title = if model_name.is_empty() {
            category
        } else {
            format!("{category}, {model_name}")
        };
        let path = dir.join(format!("pr-{stem}.svg"));
        std::fs::write(&path, pr_curve_svg(&title, curve.as_ref(), point))?;
        paths.push(path);
    }
    Ok(paths)
}
