//! Markdown datasheet for a build.

use std::fmt::Write;

use warden_core::Taxonomy;

use crate::build::{CategoryCounts, DataStats, SourceStats};

fn cell(c: &CategoryCounts) -> String {
    if c.positive == 0 && c.negative == 0 {
        return "–".into();
    }
    let mut s = format!("{} / {}", c.positive, c.negative);
    if c.soft > 0 {
        let _ = write!(s, " ({} soft)", c.soft);
    }
    s
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn label_table(out: &mut String, stats: &DataStats, codes: &[String], pick: fn(&SourceStats) -> &Vec<CategoryCounts>) {
    let _ = write!(out, "| source | rows |");
    for c in codes {
        let _ = write!(out, " {c} |");
    }
    out.push('\n');
    out.push_str("| --- | ---: |");
    for _ in codes {
        out.push_str(" ---: |");
    }
    out.push('\n');
    let mut totals: Vec<CategoryCounts> = codes
        .iter()
        .map(|c| CategoryCounts { code: c.clone(), ..Default::default() })
        .collect();
    let mut total_rows = 0;
    for s in &stats.sources {
        let counts = pick(s);
        let rows = counts.first().map_or(0, |c| c.positive + c.negative + c.unknown);
        total_rows += rows;
        let _ = write!(out, "| {} | {rows} |", md(&s.name));
        for code in codes {
            match counts.iter().find(|c| &c.code == code) {
                Some(c) => {
                    let _ = write!(out, " {} |", cell(c));
                    if let Some(t) = totals.iter_mut().find(|t| &t.code == code) {
                        t.positive += c.positive;
                        t.negative += c.negative;
                        t.soft += c.soft;
                        t.unknown += c.unknown;
                    }
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    let _ = write!(out, "| **total** | {total_rows} |");
    for t in &totals {
        let _ = write!(out, " {} |", cell(t));
    }
    out.push_str("\n\n");
}

/// Renders the datasheet: sources and licences, label counts per source × category, rows
/// dropped and why, split sizes and file hashes.
pub fn datasheet_markdown(stats: &DataStats, taxonomy: &Taxonomy) -> String {
    let codes: Vec<String> = if stats.codes.is_empty() {
        taxonomy.codes().map(str::to_owned).collect()
    } else {
        stats.codes.clone()
    };
    let mut o = String::new();
    o.push_str("# Warden training data: datasheet\n\n");
    let _ = writeln!(
        o,
        "Taxonomy `{}` ({}). {} train rows, {} dev rows (dev fraction {}, split by the SHA-256 of the normalised text). \
         Held-out decontamination list: {} hashes{}.\n",
        stats.taxonomy,
        codes.join(", "),
        stats.train_rows,
        stats.dev_rows,
        stats.dev_fraction,
        stats.decontamination_hashes,
        if stats.decontamination_list.is_empty() {
            String::new()
        } else {
            format!(" (`{}`)", stats.decontamination_list)
        }
    );

    o.push_str("## Sources\n\n");
    o.push_str("| source | license | research-only | priority | description |\n| --- | --- | --- | ---: | --- |\n");
    for s in &stats.sources {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            md(&s.name),
            md(&s.license),
            if s.research_only { "**yes**" } else { "no" },
            s.priority,
            md(&s.description)
        );
    }
    o.push('\n');
    if !stats.excluded.is_empty() {
        o.push_str("Excluded sources:\n\n");
        for e in &stats.excluded {
            let _ = writeln!(o, "- {} ({}): {}", e.name, e.license, e.reason);
        }
        o.push('\n');
    }

    o.push_str("## Labels of the kept rows (train + dev)\n\n");
    o.push_str(
        "Each cell is `positives / negatives` (a soft label counts as positive when ≥ 0.5); \
         every other row of that source is *unknown* for the category; `–` means the source \
         says nothing about it.\n\n",
    );
    label_table(&mut o, stats, &codes, |s| &s.kept_labels);

    o.push_str("## Rows dropped and why\n\n");
    o.push_str(
        "| source | rows | empty text | no known label | held-out (decontaminated) | duplicate, same source | duplicate, other source | kept | train | dev | labels filled from duplicates | conflicting duplicates |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut t = [0usize; 11];
    for s in &stats.sources {
        let v = [
            s.rows,
            s.dropped_empty,
            s.dropped_unlabelled,
            s.dropped_decontaminated,
            s.dropped_duplicate_same_source,
            s.dropped_duplicate_other_source,
            s.kept,
            s.train,
            s.dev,
            s.labels_filled_from_duplicates,
            s.duplicates_with_conflicting_labels,
        ];
        let _ = write!(o, "| {} |", md(&s.name));
        for (i, x) in v.iter().enumerate() {
            t[i] += x;
            let _ = write!(o, " {x} |");
        }
        o.push('\n');
    }
    o.push_str("| **total** |");
    for x in t {
        let _ = write!(o, " {x} |");
    }
    o.push_str("\n\n");
    o.push_str(
        "Duplicates are rows whose normalised text (NFKC, lowercase, punctuation removed, \
         whitespace collapsed) equals a kept row's; the kept row comes from the highest-priority \
         source, and its unknown labels are filled from the duplicates where the hierarchy allows.\n\n",
    );

    o.push_str("## Split\n\n| split | rows | SHA-256 |\n| --- | ---: | --- |\n");
    let _ = writeln!(o, "| train | {} | {} |", stats.train_rows, stats.train_sha256.as_deref().unwrap_or("(not written)"));
    let _ = writeln!(o, "| dev | {} | {} |", stats.dev_rows, stats.dev_sha256.as_deref().unwrap_or("(not written)"));
    o.push('\n');

    o.push_str("## Labels as loaded (before decontamination and dedup)\n\n");
    label_table(&mut o, stats, &codes, |s| &s.loaded_labels);

    let notes: Vec<&SourceStats> = stats.sources.iter().filter(|s| !s.notes.is_empty()).collect();
    if !notes.is_empty() {
        o.push_str("## Loader notes\n\n");
        for s in notes {
            for n in &s.notes {
                let _ = writeln!(o, "- {}: {}", s.name, md(n));
            }
        }
        o.push('\n');
    }
    o
}
