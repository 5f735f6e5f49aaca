//! Small self-contained SVG charts for the active-learning report: a grid of line panels
//! (a metric per iteration, one line per strategy, with a min–max band over seeds) and a
//! horizontal bar chart on a log scale (positive-rate multipliers).

use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One line of a panel: per x position, `(mean, min, max)` or `None` when undefined.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<Option<(f64, f64, f64)>>,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

/// A grid of line panels sharing the x labels; each panel's y axis spans its own data
/// (padded, clamped to [0, 1]).
pub fn line_panels_svg(title: &str, x_labels: &[String], y_label: &str, panels: &[Panel], columns: usize) -> String {
    let cols = columns.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph) = (260.0, 200.0);
    let (ml, mr, mt, mb) = (48.0, 12.0, 28.0, 34.0);
    let head = 56.0;
    let w = cols as f64 * pw;
    let h = head + rows as f64 * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="20" text-anchor="middle" font-size="15">{}</text>"#, w / 2.0, esc(title));
    // Legend from the first panel's series.
    if let Some(p) = panels.first() {
        let mut x = 12.0;
        for se in &p.series {
            let _ = writeln!(
                s,
                r#"<line x1="{x}" y1="40" x2="{}" y2="40" stroke="{}" stroke-width="2.5"/><text x="{}" y="44">{}</text>"#,
                x + 22.0,
                se.color,
                x + 27.0,
                esc(&se.name)
            );
            x += 40.0 + 7.0 * se.name.len() as f64;
        }
        let _ = writeln!(s, r##"<text x="{}" y="44" text-anchor="end" fill="#555">{}</text>"##, w - 12.0, esc(y_label));
    }
    let nx = x_labels.len().max(1);
    for (pi, p) in panels.iter().enumerate() {
        let ox = (pi % cols) as f64 * pw;
        let oy = head + (pi / cols) as f64 * ph;
        let (x0, x1, y0, y1) = (ox + ml, ox + pw - mr, oy + mt, oy + ph - mb);
        let vals: Vec<f64> =
            p.series.iter().flat_map(|se| se.points.iter().flatten().flat_map(|&(m, a, b)| [m, a, b])).collect();
        let (mut lo, mut hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.15).max(0.02);
        lo = (lo - pad).max(0.0);
        hi = (hi + pad).min(1.0);
        let xp = |i: usize| if nx == 1 { (x0 + x1) / 2.0 } else { x0 + (x1 - x0) * i as f64 / (nx - 1) as f64 };
        let yp = |v: f64| y1 - (y1 - y0) * (v - lo) / (hi - lo);
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{}</text>"#, (x0 + x1) / 2.0, oy + 18.0, esc(&p.title));
        let _ = writeln!(s, r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#999"/>"##, x1 - x0, y1 - y0);
        for t in 0..=4 {
            let v = lo + (hi - lo) * t as f64 / 4.0;
            let y = yp(v);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{v:.2}</text>"##,
                x0 - 4.0,
                y + 4.0
            );
        }
        for (i, l) in x_labels.iter().enumerate() {
            let _ = writeln!(s, r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##, xp(i), y1 + 14.0, esc(l));
        }
        for se in &p.series {
            // Min–max band, then the mean line and dots.
            let band: Vec<(usize, (f64, f64, f64))> =
                se.points.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
            if band.len() >= 2 && band.iter().any(|&(_, (_, a, b))| b > a) {
                let mut d = String::new();
                for (j, &(i, (_, _, b))) in band.iter().enumerate() {
                    let _ = write!(d, "{}{:.1},{:.1} ", if j == 0 { "M" } else { "L" }, xp(i), yp(b));
                }
                for &(i, (_, a, _)) in band.iter().rev() {
                    let _ = write!(d, "L{:.1},{:.1} ", xp(i), yp(a));
                }
                let _ = writeln!(s, r#"<path d="{d}Z" fill="{}" fill-opacity="0.15" stroke="none"/>"#, se.color);
            }
            let mut d = String::new();
            let mut pen_up = true;
            for (i, v) in se.points.iter().enumerate() {
                match v {
                    Some((m, _, _)) => {
                        let _ = write!(d, "{}{:.1},{:.1} ", if pen_up { "M" } else { "L" }, xp(i), yp(*m));
                        pen_up = false;
                    }
                    None => pen_up = true,
                }
            }
            if !d.is_empty() {
                let _ = writeln!(s, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"/>"#, se.color);
            }
            for (i, v) in se.points.iter().enumerate() {
                if let Some((m, _, _)) = v {
                    let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.8" fill="{}"/>"#, xp(i), yp(*m), se.color);
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// One bar: label, value (`None`: not measurable, drawn as a note), and a text shown right
/// of the bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub note: String,
}

/// Horizontal bars on a log10 axis with a dashed reference line at `reference` (e.g. 1×).
pub fn log_bars_svg(title: &str, x_label: &str, bars: &[Bar], reference: f64) -> String {
    let (w, ml, mr, mt, row) = (640.0, 70.0, 170.0, 50.0, 28.0);
    let h = mt + row * bars.len() as f64 + 46.0;
    let vals: Vec<f64> = bars.iter().filter_map(|b| b.value).filter(|v| *v > 0.0).chain([reference]).collect();
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min).log10().floor().min(-0.0);
    let hi = vals.iter().copied().fold(0.0, f64::max).log10().ceil().max(lo + 1.0);
    let x0 = ml;
    let x1 = w - mr;
    let xp = |v: f64| x0 + (x1 - x0) * (v.max(1e-9).log10() - lo) / (hi - lo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#, w / 2.0, esc(title));
    let y_end = mt + row * bars.len() as f64;
    let mut e = lo as i32;
    while e as f64 <= hi {
        let v = 10f64.powi(e);
        let x = xp(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{y_end}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{}×</text>"##,
            y_end + 16.0,
            if v >= 1.0 { format!("{v:.0}") } else { format!("{v}") }
        );
        e += 1;
    }
    let _ = writeln!(s, r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>"##, (x0 + x1) / 2.0, y_end + 36.0, esc(x_label));
    // Bars grow from the reference line: right when above it, left when below.
    let base = xp(reference);
    for (i, b) in bars.iter().enumerate() {
        let y = mt + row * i as f64;
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, x0 - 8.0, y + row / 2.0 + 4.0, esc(&b.label));
        if let Some(v) = b.value.filter(|v| *v > 0.0) {
            let (a, c) = (base.min(xp(v)), base.max(xp(v)));
            let fill = if v >= reference { "#2b6cb0" } else { "#c05621" };
            let _ = writeln!(s, r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#, y + 5.0, (c - a).max(1.0), row - 10.0);
        }
        let _ = writeln!(s, r##"<text x="{}" y="{:.1}" fill="#333">{}</text>"##, x1 + 8.0, y + row / 2.0 + 4.0, esc(&b.note));
    }
    let xr = xp(reference);
    let _ = writeln!(s, r##"<line x1="{xr:.1}" y1="{}" x2="{xr:.1}" y2="{y_end}" stroke="#333" stroke-dasharray="4 3"/>"##, mt - 6.0);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed() {
        let p = Panel {
            title: "S".into(),
            series: vec![
                Series { name: "active".into(), color: "#2b6cb0".into(), points: vec![Some((0.2, 0.1, 0.3)), None, Some((0.5, 0.5, 0.5))] },
                Series { name: "random".into(), color: "#c05621".into(), points: vec![None, None, None] },
            ],
        };
        let s = line_panels_svg("AUPRC <dev>", &["0".into(), "1".into(), "2".into()], "AUPRC", &[p], 3);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("&lt;dev&gt;") && !s.contains("NaN"));
        let b = log_bars_svg(
            "x",
            "AL / random",
            &[Bar { label: "S".into(), value: Some(12.0), note: "12×".into() }, Bar { label: "H".into(), value: None, note: "n/a".into() }],
            1.0,
        );
        assert!(b.contains("<rect") && !b.contains("NaN") && !b.contains("inf"));
    }
}
