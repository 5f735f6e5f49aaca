//! Inline SVG charts for the HTML report: stacked horizontal bars and small-multiple score
//! histograms. The SVG is meant to sit inside an HTML page, so it carries no `xmlns`
//! (HTML parsers put `<svg>` in the SVG namespace themselves) and references nothing
//! outside itself. Every label is escaped.

use std::fmt::Write as _;

use crate::report::html_escape;

/// Colour of kept documents.
pub(crate) const KEPT: &str = "#1f77b4";
/// Colour of dropped (and, in histograms, all removed) documents.
pub(crate) const DROPPED: &str = "#d62728";
/// Colour of redacted documents.
pub(crate) const REDACTED: &str = "#ff7f0e";

/// One bar of a stacked horizontal bar chart.
pub(crate) struct Bar {
    pub label: String,
    /// `(value, colour, what)` segments, left to right.
    pub segments: Vec<(u64, &'static str, &'static str)>,
}

/// A horizontal stacked bar chart, one row per bar, scaled to the largest total; the total
/// is written after each bar and every segment has a tooltip.
pub(crate) fn hbar_chart(title: &str, bars: &[Bar]) -> String {
    const W: f64 = 720.0;
    const LABEL: f64 = 210.0;
    const VALUE: f64 = 90.0;
    const ROW: f64 = 22.0;
    const TOP: f64 = 28.0;
    let bw = W - LABEL - VALUE;
    let h = TOP + ROW * bars.len().max(1) as f64 + 8.0;
    let max = bars
        .iter()
        .map(|b| b.segments.iter().map(|s| s.0).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg class="chart" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = html_escape(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="0" y="16" font-size="13" font-weight="bold">{}</text>"#,
        html_escape(title)
    );
    if bars.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{LABEL}" y="{:.1}" font-size="12">nothing to show</text>"#,
            TOP + 15.0
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let label = short(&bar.label, 30);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}<title>{}</title></text>"#,
            LABEL - 6.0,
            y + 15.0,
            html_escape(&label),
            html_escape(&bar.label)
        );
        let mut x = LABEL;
        let mut total = 0;
        for &(v, colour, what) in &bar.segments {
            total += v;
            if v == 0 {
                continue;
            }
            let w = (v as f64 / max * bw).max(1.0);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{colour}"><title>{}: {what} {v}</title></rect>"#,
                y + 3.0,
                ROW - 6.0,
                html_escape(&bar.label)
            );
            x += w;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12">{total}</text>"#,
            x + 4.0,
            y + 15.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A small histogram of one category's document scores: kept and removed documents side by
/// side in each of the bins over `[0, 1]`, counts on a log scale (`log10(1 + n)`).
pub(crate) fn histogram(code: &str, kept: &[u64], removed: &[u64]) -> String {
    const W: f64 = 280.0;
    const H: f64 = 170.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 24.0;
    const BOTTOM: f64 = 30.0;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let bins = kept.len().max(removed.len()).max(1);
    let max = kept.iter().chain(removed).copied().max().unwrap_or(0);
    let lmax = ((1 + max) as f64).log10().max(f64::MIN_POSITIVE);
    let y_of = |n: u64| TOP + ph - ((1 + n) as f64).log10() / lmax * ph;
    let title = format!(
        "{code}: {} kept, {} removed",
        kept.iter().sum::<u64>(),
        removed.iter().sum::<u64>()
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg class="hist" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = html_escape(&title)
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="15" font-size="12" font-weight="bold">{}</text>"#,
        html_escape(&title)
    );
    // Axes: x ticks at 0, 0.5, 1; y ticks at 1 and the maximum (log scale).
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    );
    for (v, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let x = LEFT + v * pw;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}">{v}</text>"#,
            TOP + ph + 12.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">score</text>"#,
        LEFT + pw / 2.0,
        H - 4.0
    );
    if max > 0 {
        let mut ticks = vec![max];
        if max > 1 {
            ticks.push(1);
        }
        if max >= 100 {
            ticks.push(10u64.pow((max as f64).log10().floor() as u32));
        }
        ticks.sort_unstable();
        ticks.dedup();
        for t in ticks {
            let y = y_of(t);
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#888"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{t}</text>"##,
                LEFT - 3.0,
                LEFT - 5.0,
                y + 3.5
            );
        }
    } else {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">no scores</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    let bw = pw / bins as f64;
    for i in 0..bins {
        let lo = i as f64 / bins as f64;
        let hi = (i + 1) as f64 / bins as f64;
        for (j, (series, colour, what)) in [(kept, KEPT, "kept"), (removed, DROPPED, "removed")]
            .into_iter()
            .enumerate()
        {
            let n = series.get(i).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let x = LEFT + bw * i as f64 + bw * 0.5 * j as f64 + 0.5;
            let y = y_of(n);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} {lo:.2}–{hi:.2}: {n} {what}</title></rect>"#,
                (bw * 0.5 - 1.0).max(0.5),
                TOP + ph - y,
                html_escape(code)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub(crate) fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_are_standalone() {
        let svg = hbar_chart(
            "t<1>",
            &[Bar {
                label: "<script>alert(1)</script>".into(),
                segments: vec![(3, DROPPED, "dropped"), (0, REDACTED, "redacted")],
            }],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("http"));
        let h = histogram("S&", &[1, 0, 1000], &[0, 5, 0]);
        assert!(h.contains("S&amp;"));
        assert!(!h.contains("http"));
        assert_eq!(h.matches("<rect").count(), 1 + 3);
        let empty = histogram("S", &[0; 20], &[0; 20]);
        assert!(empty.contains("no scores"));
    }
}
