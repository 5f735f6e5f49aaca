//! The corpus audit report, as Markdown and as one self-contained HTML page.
//!
//! Both renderers walk the same list of blocks built by [`build`], so they say the same
//! things; the HTML adds SVG charts (the Markdown shows histograms as text sparklines).
//! Everything that comes from the corpus or the caller is escaped: examples are untrusted
//! text and may contain markup, pipes, backticks, newlines or bidirectional overrides.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::example::Example;
use crate::stats::{
    Disparity, GroupRate, LayerComparison, RunStats, SourceStats, DISPARITY_RATIO, HIST_BINS,
    MAX_EXAMPLES, OTHER_SOURCES, TOP_SOURCES,
};
use crate::svg::{self, Bar, DROPPED, KEPT, REDACTED};
use crate::types::Layer;

/// What the report says about the run besides its statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// The report's title.
    pub title: String,
    /// The run: its output directory or id.
    pub run: String,
    /// The policy applied (name or file).
    pub policy: String,
    /// The model used (name or directory).
    pub model: String,
    /// Number of input files.
    pub inputs: usize,
    /// Name of the identity-term list used for the over-filtering check.
    pub identity_terms: String,
    /// Free-form notes, one paragraph each.
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Document model
// ---------------------------------------------------------------------------------------

enum Inline {
    /// Plain text.
    T(String),
    /// Emphasised label (bold).
    B(String),
    /// The offending span of an example: bold in Markdown, `<mark>` in HTML.
    Mark(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Plain,
    Warning,
    Ok,
    Note,
}

impl Class {
    fn css(self) -> &'static str {
        match self {
            Class::Plain => "",
            Class::Warning => " class=\"warning\"",
            Class::Ok => " class=\"ok\"",
            Class::Note => " class=\"note\"",
        }
    }
}

struct Table {
    head: Vec<&'static str>,
    /// Right-aligned (numeric) columns.
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

enum Block {
    H2(&'static str, &'static str),
    H3(String),
    P(Class, Vec<Inline>),
    Meta(Vec<(&'static str, String)>),
    List(Vec<String>),
    Table(Table),
    /// HTML only: a legend of coloured swatches.
    Legend(Vec<(&'static str, &'static str)>),
    /// HTML only: one chart.
    Svg(String),
    /// HTML only: small multiples.
    Grid(Vec<String>),
    /// Markdown only.
    MdOnly(Box<Block>),
    Example {
        meta: Vec<Inline>,
        quote: Option<Vec<Inline>>,
    },
}

fn p(parts: Vec<Inline>) -> Block {
    Block::P(Class::Plain, parts)
}

fn text(s: impl Into<String>) -> Block {
    p(vec![Inline::T(s.into())])
}

// ---------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------

/// `1234567` → `"1,234,567"`.
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(num: u64, den: u64) -> String {
    if den == 0 {
        "—".to_owned()
    } else {
        percent(num as f64 / den as f64)
    }
}

fn percent(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{} B", int(n));
    }
    let mut v = n as f64;
    let mut u = 0;
    v /= 1024.0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{} B ({v:.1} {})", int(n), UNITS[u])
}

fn rate_ci(g: &GroupRate) -> String {
    match (g.rate, g.interval) {
        (Some(r), Some((lo, hi))) => format!(
            "{} ({}–{})",
            percent(r),
            percent(lo).trim_end_matches('%'),
            percent(hi)
        ),
        _ => "—".to_owned(),
    }
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_infinite() => "∞".to_owned(),
        Some(r) => format!("{r:.2}×"),
        None => "—".to_owned(),
    }
}

fn score(s: f32) -> String {
    format!("{s:.3}")
}

/// Text sparkline of a histogram on a log scale; `·` marks an empty bin.
fn spark(hist: &[u64]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = hist.iter().copied().max().unwrap_or(0);
    let lmax = ((1 + max) as f64).ln();
    hist.iter()
        .map(|&n| {
            if n == 0 {
                '·'
            } else {
                let l = (((1 + n) as f64).ln() / lmax * 8.0).ceil() as usize;
                LEVELS[l.clamp(1, 8) - 1]
            }
        })
        .collect()
}

fn layer_what(l: Layer) -> &'static str {
    match l {
        Layer::Domain => "url host on a domain blocklist",
        Layer::Rules => "word or phrase list matched",
        Layer::Fast => "fast classifier score at or above the threshold",
        Layer::Encoder => "second-tier (encoder) score at or above the threshold",
    }
}

/// Characters that must not reach the output as they are: line breaks become a visible
/// `↵`, other control characters and bidirectional overrides (which can make displayed
/// text lie about its order) become spaces.
fn clean(c: char) -> Option<char> {
    match c {
        '\n' => Some('↵'),
        '\r' => None,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => Some(' '),
        '\u{2028}' | '\u{2029}' => Some('↵'),
        c if c.is_control() => Some(' '),
        c => Some(c),
    }
}

/// Escapes text for HTML element content and attribute values (and SVG inside HTML).
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars().filter_map(clean) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Markdown (CommonMark / GitHub), safe in a paragraph, a list item and a
/// table cell: no markup of the text survives (emphasis, code, links, raw HTML, entities,
/// table pipes), no line break, and no block structure at its start.
pub(crate) fn md_escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter_map(clean).collect();
    let mut out = String::with_capacity(s.len() + 8);
    // An ordered-list marker at the start: 1–9 digits then `.` or `)` then a space or the end.
    let list_number = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let ordered_marker = (1..=9).contains(&list_number)
        && matches!(chars.get(list_number), Some('.' | ')'))
        && chars.get(list_number + 1).is_none_or(|c| c.is_whitespace());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' => {
                out.push('\\');
                out.push(c);
            }
            // List markers, setext underlines and thematic breaks at the start.
            '-' | '+' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '.' | ')' if ordered_marker && i == list_number => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------

fn build(stats: &RunStats, meta: &ReportMeta) -> Vec<Block> {
    let mut b = Vec::new();
    let removed = stats.removed();

    // Run meta.
    let mut m = vec![
        ("Run", meta.run.clone()),
        ("Policy", meta.policy.clone()),
        ("Model", meta.model.clone()),
        ("Input files", int(meta.inputs as u64)),
        ("Identity terms", meta.identity_terms.clone()),
        ("Categories", stats.categories.join(", ")),
    ];
    m.retain(|(_, v)| !v.is_empty());
    b.push(Block::Meta(m));
    if !meta.notes.is_empty() {
        b.push(Block::List(meta.notes.clone()));
    }

    // Totals.
    b.push(Block::H2("totals", "Totals"));
    let mut rows = vec![
        vec![
            "documents read".into(),
            int(stats.docs),
            pct(stats.docs, stats.docs),
        ],
        vec!["kept".into(), int(stats.kept), pct(stats.kept, stats.docs)],
        vec![
            "dropped".into(),
            int(stats.dropped),
            pct(stats.dropped, stats.docs),
        ],
        vec![
            "redacted".into(),
            int(stats.redacted),
            pct(stats.redacted, stats.docs),
        ],
        vec![
            "removed (dropped + redacted)".into(),
            int(removed),
            pct(removed, stats.docs),
        ],
        vec![
            "unreadable lines or rows".into(),
            int(stats.errors),
            "—".into(),
        ],
        vec![
            "bytes in".into(),
            bytes(stats.bytes_in),
            pct(stats.bytes_in, stats.bytes_in),
        ],
        vec![
            "bytes removed (dropped documents + redacted spans)".into(),
            bytes(stats.bytes_removed),
            pct(stats.bytes_removed, stats.bytes_in),
        ],
    ];
    if stats.pii_masked > 0 {
        rows.push(vec![
            "PII matches masked".into(),
            int(stats.pii_masked),
            "—".into(),
        ]);
    }
    b.push(Block::Table(Table {
        head: vec!["", "count", "share"],
        right: vec![false, true, true],
        rows,
    }));
    if stats.removed_without_reason > 0 {
        b.push(Block::P(
            Class::Warning,
            vec![Inline::T(format!(
                "{} removed documents have no reason recorded: a provenance gap in the run.",
                int(stats.removed_without_reason)
            ))],
        ));
    }

    // Removal by category.
    b.push(Block::H2("categories", "Removals by category"));
    b.push(text(
        "A removed document counts once in every category its reasons name, so the rows can \
         add up to more than the removed total.",
    ));
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut cat_row = |label: String, r: &crate::stats::Removals| {
        rows.push(vec![
            label.clone(),
            int(r.dropped),
            int(r.redacted),
            int(r.removed()),
            pct(r.removed(), stats.docs),
            pct(r.removed(), removed),
        ]);
        bars.push(Bar {
            label,
            segments: vec![
                (r.dropped, DROPPED, "dropped"),
                (r.redacted, REDACTED, "redacted"),
            ],
        });
    };
    for cs in &stats.by_category {
        cat_row(cs.code.clone(), &cs.removals);
    }
    if stats.uncategorized.removed() > 0 {
        cat_row("(no category: domain blocks)".into(), &stats.uncategorized);
    }
    if stats.unlisted_categories.removed() > 0 {
        cat_row(
            "(category not in the taxonomy)".into(),
            &stats.unlisted_categories,
        );
    }
    b.push(Block::Table(Table {
        head: vec![
            "category",
            "dropped",
            "redacted",
            "removed",
            "% of documents",
            "% of removed",
        ],
        right: vec![false, true, true, true, true, true],
        rows,
    }));
    b.push(Block::Legend(vec![
        (DROPPED, "dropped"),
        (REDACTED, "redacted"),
    ]));
    b.push(Block::Svg(svg::hbar_chart(
        "Removed documents by category",
        &bars,
    )));

    // Removal by layer.
    b.push(Block::H2("layers", "Removals by layer"));
    b.push(text(
        "The safeguards run in this order; a removed document counts once under every layer \
         that gave one of its reasons.",
    ));
    let rows = stats
        .by_layer
        .iter()
        .map(|(l, r)| {
            vec![
                l.as_str().to_owned(),
                layer_what(*l).to_owned(),
                int(r.dropped),
                int(r.redacted),
                int(r.removed()),
                pct(r.removed(), stats.docs),
            ]
        })
        .collect();
    b.push(Block::Table(Table {
        head: vec![
            "layer",
            "fires when",
            "dropped",
            "redacted",
            "removed",
            "% of documents",
        ],
        right: vec![false, false, true, true, true, true],
        rows,
    }));

    // Sources.
    build_sources(&mut b, stats);

    // Score distributions.
    b.push(Block::H2("scores", "Score distributions"));
    b.push(text(format!(
        "Per category, the document score (the highest chunk score the decision used) in \
         {HIST_BINS} bins from 0 to 1, for kept and for removed documents, counts on a log \
         scale. Removed documents with a low score in a category were removed for another \
         category or by another layer; a pile of kept documents just below the threshold is \
         where a small policy change moves the most documents."
    )));
    b.push(Block::Legend(vec![(KEPT, "kept"), (DROPPED, "removed")]));
    b.push(Block::Grid(
        stats
            .by_category
            .iter()
            .map(|cs| svg::histogram(&cs.code, &cs.hist_kept, &cs.hist_removed))
            .collect(),
    ));
    b.push(Block::MdOnly(Box::new(Block::Table(Table {
        head: vec![
            "category",
            "kept",
            "kept, score 0 → 1 (log)",
            "removed",
            "removed, score 0 → 1 (log)",
        ],
        right: vec![false, true, false, true, false],
        rows: stats
            .by_category
            .iter()
            .map(|cs| {
                vec![
                    cs.code.clone(),
                    int(cs.hist_kept.iter().sum()),
                    spark(&cs.hist_kept),
                    int(cs.hist_removed.iter().sum()),
                    spark(&cs.hist_removed),
                ]
            })
            .collect(),
    }))));

    // Over-filtering.
    build_over_filtering(&mut b, stats, meta);

    // Errors.
    b.push(Block::H2("errors", "Unreadable lines"));
    if stats.errors == 0 {
        b.push(text("No unreadable lines or rows."));
    } else {
        b.push(text(format!(
            "{} lines or rows could not be read; they are not counted as documents.",
            int(stats.errors)
        )));
        b.push(Block::Table(Table {
            head: vec!["kind", "count", "share"],
            right: vec![false, true, true],
            rows: stats
                .error_kinds
                .iter()
                .map(|(k, n)| vec![k.clone(), int(*n), pct(*n, stats.errors)])
                .collect(),
        }));
    }

    // Examples.
    b.push(Block::H2("examples", "Examples"));
    b.push(text(format!(
        "Up to {MAX_EXAMPLES} removed documents per category: the first observed (shards in \
         merge order), each with up to {} bytes of context on either side of the offending \
         span, which is highlighted. The text is quoted from the corpus and may be offensive; \
         line breaks are shown as ↵.",
        crate::example::CONTEXT_BYTES
    )));
    for cs in &stats.by_category {
        b.push(Block::H3(format!(
            "{} ({} removed)",
            cs.code,
            int(cs.removals.removed())
        )));
        if cs.examples.is_empty() {
            b.push(text("No removals in this category."));
        }
        for ex in &cs.examples {
            b.push(example(ex, Some(&cs.code)));
        }
    }
    if !stats.uncategorized_examples.is_empty() {
        b.push(Block::H3(format!(
            "Domain blocks and other reasons without a category ({} removed)",
            int(stats.uncategorized.removed())
        )));
        for ex in &stats.uncategorized_examples {
            b.push(example(ex, None));
        }
    }
    b
}

fn build_sources(b: &mut Vec<Block>, stats: &RunStats) {
    let removed = stats.removed();
    b.push(Block::H2("sources", "Sources with the most removals"));
    b.push(text(format!(
        "Up to {TOP_SOURCES} sources, those that contribute the most removed documents — the \
         fine-tuning guide's latent risk clusters. A high removal rate marks a source to block \
         or review as a whole; a large share of all removals marks a source that dominates \
         what the filter takes out (and whose removal says most about the filter)."
    )));
    let top = stats.top_sources(TOP_SOURCES);
    let main_category = |s: &SourceStats| -> String {
        let mut best: Option<(usize, u64)> = None;
        for (i, &n) in s.by_category.iter().enumerate() {
            if n > 0 && best.is_none_or(|(_, m)| n > m) {
                best = Some((i, n));
            }
        }
        match best {
            Some((i, n)) => format!("{} ({})", stats.categories[i], int(n)),
            None => "—".to_owned(),
        }
    };
    let row = |rank: String, name: &str, s: &SourceStats| {
        vec![
            rank,
            name.to_owned(),
            int(s.docs),
            int(s.removals.dropped),
            int(s.removals.redacted),
            pct(s.removals.removed(), s.docs),
            pct(s.removals.removed(), removed),
            main_category(s),
        ]
    };
    if top.is_empty() {
        b.push(text("No source had removals."));
    } else {
        let mut rows: Vec<Vec<String>> = top
            .iter()
            .enumerate()
            .map(|(i, (name, s))| row((i + 1).to_string(), name, s))
            .collect();
        if stats.other_sources.removals.removed() > 0 {
            rows.push(row("—".into(), OTHER_SOURCES, &stats.other_sources));
        }
        b.push(Block::Table(Table {
            head: vec![
                "#",
                "source",
                "documents",
                "dropped",
                "redacted",
                "removal rate",
                "share of removals",
                "main category",
            ],
            right: vec![true, false, true, true, true, true, true, false],
            rows,
        }));
        b.push(Block::Legend(vec![
            (DROPPED, "dropped"),
            (REDACTED, "redacted"),
        ]));
        let bars: Vec<Bar> = top
            .iter()
            .map(|(name, s)| Bar {
                label: (*name).to_owned(),
                segments: vec![
                    (s.removals.dropped, DROPPED, "dropped"),
                    (s.removals.redacted, REDACTED, "redacted"),
                ],
            })
            .collect();
        b.push(Block::Svg(svg::hbar_chart(
            "Removed documents by source",
            &bars,
        )));
    }
    let mut note = format!(
        "{} sources tracked by name (at most {}).",
        int(stats.sources.len() as u64),
        int(stats.source_cap as u64)
    );
    if stats.other_sources.docs > 0 {
        let _ = write!(
            note,
            " {} documents from about {} further sources (an estimate) are counted together \
             as {OTHER_SOURCES}: {} removed, removal rate {}.",
            int(stats.other_sources.docs),
            int(stats.folded_sources_estimate()),
            int(stats.other_sources.removals.removed()),
            pct(
                stats.other_sources.removals.removed(),
                stats.other_sources.docs
            )
        );
    }
    b.push(Block::P(Class::Note, vec![Inline::T(note)]));
}

fn build_over_filtering(b: &mut Vec<Block>, stats: &RunStats, meta: &ReportMeta) {
    let of = stats.over_filtering();
    b.push(Block::H2("over-filtering", "Over-filtering check"));
    let list = if meta.identity_terms.is_empty() {
        "the identity-term list".to_owned()
    } else {
        format!("the identity-term list “{}”", meta.identity_terms)
    };
    b.push(text(format!(
        "Does the filter remove documents that mention identity groups (religions, \
         nationalities, ethnicities, genders, sexual orientations, disabilities — terms from \
         {list}) more often than other documents? A filter that does silences the groups it \
         is meant to protect, and a model fine-tuned on its output learns less about them. \
         The check compares the two removal rates with Wilson 95% intervals and flags a \
         disparity when the identity-mention rate is more than {DISPARITY_RATIO}× the other \
         and the intervals do not overlap."
    )));
    let o = &of.overall;
    let verdict = match o.disparity {
        Disparity::Warning => Block::P(
            Class::Warning,
            vec![
                Inline::B("WARNING:".into()),
                Inline::T(format!(
                    " documents that mention an identity group are removed {} as often as \
                     other documents ({} vs {}; the 95% intervals do not overlap). The filter \
                     may be silencing minority groups: check the per-layer and per-category \
                     rates below and read the examples.",
                    ratio(o.ratio),
                    rate_ci(&o.identity),
                    rate_ci(&o.others)
                )),
            ],
        ),
        Disparity::NotDetected => Block::P(
            Class::Ok,
            vec![Inline::T(format!(
                "No disparity detected at this sample size: documents that mention an identity \
                 group are removed at {} and other documents at {} (ratio {}).",
                rate_ci(&o.identity),
                rate_ci(&o.others),
                ratio(o.ratio)
            ))],
        ),
        Disparity::NoData => Block::P(
            Class::Note,
            vec![Inline::T(format!(
                "Not enough data for the check: {} documents mention an identity group and {} \
                 do not.",
                int(o.identity.docs),
                int(o.others.docs)
            ))],
        ),
    };
    b.push(verdict);
    b.push(Block::Table(Table {
        head: vec![
            "documents",
            "count",
            "removed",
            "removal rate (95% interval)",
        ],
        right: vec![false, true, true, true],
        rows: vec![
            vec![
                "mention an identity group".into(),
                int(o.identity.docs),
                int(o.identity.removed),
                rate_ci(&o.identity),
            ],
            vec![
                "other documents".into(),
                int(o.others.docs),
                int(o.others.removed),
                rate_ci(&o.others),
            ],
        ],
    }));
    let flagged: Vec<&str> = of
        .by_layer
        .iter()
        .chain(&of.by_category)
        .filter(|c| c.disparity == Disparity::Warning)
        .map(|c| c.name.as_str())
        .collect();
    if !flagged.is_empty() {
        b.push(Block::P(
            Class::Note,
            vec![Inline::T(format!(
                "Disparity by the same test in: {}.",
                flagged.join(", ")
            ))],
        ));
    }
    let cmp_rows = |v: &[LayerComparison]| -> Vec<Vec<String>> {
        v.iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    rate_ci(&c.identity),
                    rate_ci(&c.others),
                    ratio(c.ratio),
                    match c.disparity {
                        Disparity::Warning => "disparity".into(),
                        Disparity::NotDetected => "none detected".into(),
                        Disparity::NoData => "no data".into(),
                    },
                ]
            })
            .collect()
    };
    b.push(Block::H3("By layer".into()));
    b.push(Block::Table(Table {
        head: vec![
            "layer",
            "identity mentions: removal rate (95%)",
            "others: removal rate (95%)",
            "ratio",
            "verdict",
        ],
        right: vec![false, true, true, true, false],
        rows: cmp_rows(&of.by_layer),
    }));
    b.push(Block::H3("By category".into()));
    b.push(Block::Table(Table {
        head: vec![
            "category",
            "identity mentions: removal rate (95%)",
            "others: removal rate (95%)",
            "ratio",
            "verdict",
        ],
        right: vec![false, true, true, true, false],
        rows: cmp_rows(&of.by_category),
    }));
    b.push(Block::H3("By document length".into()));
    b.push(Block::P(
        Class::Note,
        vec![Inline::T(
            "Long documents have more chunks, so more chances to be flagged, and they mention \
             identity groups more often: a disparity that persists within each length band is \
             not an artefact of length."
                .into(),
        )],
    ));
    b.push(Block::Table(Table {
        head: vec![
            "length",
            "identity mentions: removal rate (95%)",
            "others: removal rate (95%)",
            "ratio",
            "verdict",
        ],
        right: vec![false, true, true, true, false],
        rows: cmp_rows(&of.by_length),
    }));
    b.push(Block::P(
        Class::Note,
        vec![
            Inline::B("Limits.".into()),
            Inline::T(
                " A mention is not the same as being about a group, and a term list both \
                 misses mentions and matches words used otherwise. Toxic documents mention \
                 groups more often than benign ones, so even a fair filter removes \
                 identity-mention documents somewhat more often: a flag is a prompt to look, \
                 not a verdict, and no flag is not proof of fairness (small samples give wide \
                 intervals). Compare per layer — a word list that also matches reclaimed or \
                 descriptive uses shows up in the rules row — and read the examples."
                    .into(),
            ),
        ],
    ));
}

fn example(ex: &Example, category: Option<&str>) -> Block {
    let mut m = format!(" by {}", ex.layer.as_str());
    if let Some(c) = category {
        let _ = write!(m, " · {c}");
    }
    match (ex.score, ex.threshold) {
        (Some(s), Some(t)) => {
            let _ = write!(m, " · score {} ≥ {}", score(s), score(t));
        }
        (Some(s), None) => {
            let _ = write!(m, " · score {}", score(s));
        }
        _ => {}
    }
    if let Some(d) = &ex.detail {
        let what = match ex.layer {
            Layer::Domain => "host",
            Layer::Rules => "term",
            _ => "detail",
        };
        let _ = write!(m, " · {what}: {d}");
    }
    let _ = write!(m, " · id {} · line {}", ex.id, ex.line);
    if let Some(s) = &ex.source {
        let _ = write!(m, " · source {s}");
    }
    let meta = vec![Inline::B(ex.action.as_str().to_owned()), Inline::T(m)];
    let quote = if ex.span.is_some()
        && !(ex.before.is_empty() && ex.matched.is_empty() && ex.after.is_empty())
    {
        let ell = |cut: bool| if cut { "…" } else { "" };
        Some(vec![
            Inline::T(format!("“{}{}", ell(ex.cut_before), ex.before)),
            Inline::Mark(format!("{}{}", ex.matched, ell(ex.cut_span))),
            Inline::T(format!("{}{}”", ex.after, ell(ex.cut_after))),
        ])
    } else {
        None
    };
    Block::Example { meta, quote }
}

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

fn md_inlines(parts: &[Inline]) -> String {
    let mut s = String::new();
    for part in parts {
        match part {
            Inline::T(t) => s.push_str(&md_escape(t)),
            Inline::B(t) => {
                let _ = write!(s, "**{}**", md_escape(t));
            }
            Inline::Mark(t) => {
                // Emphasis delimiters must touch non-space text: keep surrounding spaces out.
                let core = t.trim();
                if core.is_empty() {
                    s.push_str(&md_escape(t));
                } else {
                    let lead = &t[..t.len() - t.trim_start().len()];
                    let trail = &t[t.trim_end().len()..];
                    let _ = write!(
                        s,
                        "{}**{}**{}",
                        md_escape(lead),
                        md_escape(core),
                        md_escape(trail)
                    );
                }
            }
        }
    }
    s
}

fn md_table(s: &mut String, t: &Table) {
    let head: Vec<String> = t
        .head
        .iter()
        .map(|h| {
            if h.is_empty() {
                " ".to_owned()
            } else {
                md_escape(h)
            }
        })
        .collect();
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let align: Vec<&str> = t
        .right
        .iter()
        .map(|&r| if r { "---:" } else { "---" })
        .collect();
    let _ = writeln!(s, "| {} |", align.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| md_escape(c)).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s.push('\n');
}

fn md_block(s: &mut String, block: &Block) {
    match block {
        Block::H2(_, t) => {
            let _ = writeln!(s, "## {}\n", md_escape(t));
        }
        Block::H3(t) => {
            let _ = writeln!(s, "### {}\n", md_escape(t));
        }
        Block::P(_, parts) => {
            let _ = writeln!(s, "{}\n", md_inlines(parts));
        }
        Block::Meta(items) => {
            for (k, v) in items {
                let _ = writeln!(s, "- **{}:** {}", md_escape(k), md_escape(v));
            }
            s.push('\n');
        }
        Block::List(items) => {
            for item in items {
                let _ = writeln!(s, "- {}", md_escape(item));
            }
            s.push('\n');
        }
        Block::Table(t) => md_table(s, t),
        Block::MdOnly(inner) => md_block(s, inner),
        Block::Example { meta, quote } => {
            let _ = writeln!(s, "- {}", md_inlines(meta));
            if let Some(q) = quote {
                let _ = writeln!(s, "\n  > {}", md_inlines(q));
            }
            s.push('\n');
        }
        Block::Legend(_) | Block::Svg(_) | Block::Grid(_) => {}
    }
}

/// The audit report as Markdown (GitHub-flavoured tables). Deterministic: the same
/// statistics and meta give the same bytes.
pub fn render_markdown(stats: &RunStats, meta: &ReportMeta) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", md_escape(&title(meta)));
    for block in build(stats, meta) {
        md_block(&mut s, &block);
    }
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}

fn title(meta: &ReportMeta) -> String {
    if meta.title.is_empty() {
        "Corpus audit report".to_owned()
    } else {
        meta.title.clone()
    }
}

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; font-size: 0.9rem; }
nav a { color: #1f5fa8; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td { overflow-wrap: anywhere; }
p.warning { background: #fdecea; border-left: 4px solid #d62728; padding: 0.6rem 0.8rem; }
p.ok { background: #edf7ed; border-left: 4px solid #2ca02c; padding: 0.6rem 0.8rem; }
p.note { color: #555; font-size: 0.92rem; }
.legend { font-size: 0.85rem; margin: 0.3rem 0; }
.legend span.sw { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: -0.1em; margin: 0 0.3em 0 0.8em; }
.grid { display: flex; flex-wrap: wrap; gap: 0.6rem; }
svg { max-width: 100%; height: auto; font-family: inherit; }
.example { margin: 0.5rem 0 1rem; }
.example p { margin: 0.2rem 0; font-size: 0.9rem; overflow-wrap: anywhere; }
.example blockquote { margin: 0.2rem 0 0 1rem; padding: 0.4rem 0.7rem; border-left: 3px solid #bbb; background: #fafafa; overflow-wrap: anywhere; }
mark { background: #ffe08a; padding: 0 0.1em; }
"#;

fn html_inlines(parts: &[Inline]) -> String {
    let mut s = String::new();
    for part in parts {
        match part {
            Inline::T(t) => s.push_str(&html_escape(t)),
            Inline::B(t) => {
                let _ = write!(s, "<strong>{}</strong>", html_escape(t));
            }
            Inline::Mark(t) => {
                let _ = write!(s, "<mark>{}</mark>", html_escape(t));
            }
        }
    }
    s
}

fn html_table(s: &mut String, t: &Table) {
    let class = |i: usize| {
        if t.right.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        }
    };
    s.push_str("<table>\n<thead><tr>");
    for (i, h) in t.head.iter().enumerate() {
        let _ = write!(s, "<th{}>{}</th>", class(i), html_escape(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        s.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = write!(s, "<td{}>{}</td>", class(i), html_escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
}

fn html_block(s: &mut String, block: &Block) {
    match block {
        Block::H2(id, t) => {
            let _ = writeln!(
                s,
                "</section>\n<section id=\"{id}\">\n<h2>{}</h2>",
                html_escape(t)
            );
        }
        Block::H3(t) => {
            let _ = writeln!(s, "<h3>{}</h3>", html_escape(t));
        }
        Block::P(class, parts) => {
            let _ = writeln!(s, "<p{}>{}</p>", class.css(), html_inlines(parts));
        }
        Block::Meta(items) => {
            s.push_str("<dl class=\"meta\">\n");
            for (k, v) in items {
                let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", html_escape(k), html_escape(v));
            }
            s.push_str("</dl>\n");
        }
        Block::List(items) => {
            s.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(s, "<li>{}</li>", html_escape(item));
            }
            s.push_str("</ul>\n");
        }
        Block::Table(t) => html_table(s, t),
        Block::Legend(items) => {
            s.push_str("<div class=\"legend\">");
            for (colour, what) in items {
                let _ = write!(
                    s,
                    "<span class=\"sw\" style=\"background:{colour}\"></span>{}",
                    html_escape(what)
                );
            }
            s.push_str("</div>\n");
        }
        Block::Svg(svg) => {
            let _ = writeln!(s, "<figure>\n{svg}</figure>");
        }
        Block::Grid(svgs) => {
            s.push_str("<div class=\"grid\">\n");
            for svg in svgs {
                s.push_str(svg);
            }
            s.push_str("</div>\n");
        }
        Block::MdOnly(_) => {}
        Block::Example { meta, quote } => {
            let _ = writeln!(s, "<div class=\"example\">\n<p>{}</p>", html_inlines(meta));
            if let Some(q) = quote {
                let _ = writeln!(s, "<blockquote>{}</blockquote>", html_inlines(q));
            }
            s.push_str("</div>\n");
        }
    }
}

/// The audit report as one static, self-contained HTML page: inline CSS and inline SVG
/// charts, no JavaScript and no external assets. Deterministic.
pub fn render_html(stats: &RunStats, meta: &ReportMeta) -> String {
    let blocks = build(stats, meta);
    let title = html_escape(&title(meta));
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n<nav><ul>"
    );
    for block in &blocks {
        if let Block::H2(id, t) = block {
            let _ = write!(s, "<li><a href=\"#{id}\">{}</a></li>", html_escape(t));
        }
    }
    s.push_str("</ul></nav>\n<section id=\"run\">\n");
    for block in &blocks {
        html_block(&mut s, block);
    }
    s.push_str("</section>\n</main>\n</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(pct(1, 3), "33.33%");
        assert_eq!(pct(1, 0), "—");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1,536 B (1.5 KiB)");
        assert_eq!(ratio(Some(f64::INFINITY)), "∞");
        assert_eq!(ratio(Some(2.0)), "2.00×");
        assert_eq!(spark(&[0, 1, 100]), "·▂█");
        assert_eq!(spark(&[1, 1_000_000]), "▁█");
        assert_eq!(spark(&[0, 0]), "··");
    }

    #[test]
    fn md_escape_neutralises_markup() {
        assert_eq!(md_escape("a|b"), "a\\|b");
        assert_eq!(md_escape("`x`"), "\\`x\\`");
        assert_eq!(md_escape("a\nb\r\n"), "a↵b↵");
        assert_eq!(md_escape("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(md_escape("- item"), "\\- item");
        assert_eq!(md_escape("12. x"), "12\\. x");
        assert_eq!(md_escape("a-b 1.5"), "a-b 1.5");
        assert_eq!(md_escape("100.00%"), "100.00%");
        assert_eq!(md_escape("3)"), "3\\)");
        assert_eq!(md_escape("**[x](y)**"), "\\*\\*\\[x\\](y)\\*\\*");
        assert_eq!(md_escape("a\u{202E}b"), "a b");
    }

    #[test]
    fn html_escape_neutralises_markup() {
        assert_eq!(
            html_escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
