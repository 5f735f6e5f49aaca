//! Measures matcher throughput and shows which rules fire on a text file.
//!
//! ```sh
//! cargo run --release -p warden-rules --example throughput -- corpus.txt \
//!     [--surge profanity_en.csv] [--ldnoobw en] [--holistic-bias v1.1/] [--docs 4096]
//! ```
//!
//! The file is cut into documents of `--docs` bytes (on char boundaries) and every
//! document is passed to `RuleSet::find` and `IdentityTerms::mentions`, as the curation
//! pipeline does. Prints MB/s and the most frequent hits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use warden_core::Taxonomy;
use warden_rules::{IdentityTerms, RuleList, RuleSet, Severity};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let (mut surge, mut ldnoobw, mut hb, mut doc_len) = (None, None, None, 4096usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--surge" => surge = args.next().map(PathBuf::from),
            "--ldnoobw" => ldnoobw = args.next().map(PathBuf::from),
            "--holistic-bias" => hb = args.next().map(PathBuf::from),
            "--docs" => {
                doc_len = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--docs BYTES")
            }
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let file =
        file.expect("usage: throughput FILE [--surge CSV] [--ldnoobw EN] [--holistic-bias DIR]");
    let text = std::fs::read_to_string(&file).expect("a UTF-8 text file");

    let mut lists = vec![RuleList::builtin()];
    if let Some(p) = surge {
        lists.push(RuleList::load_surge_csv(&p).unwrap());
    }
    if let Some(p) = ldnoobw {
        lists.push(
            RuleList::load_lines(&p, "ldnoobw-en", "S", Severity::Strong, "CC-BY-4.0").unwrap(),
        );
    }
    let t0 = Instant::now();
    let rules = RuleSet::new(lists, &Taxonomy::builtin()).unwrap();
    println!(
        "compiled {} rules in {:.1} ms",
        rules.len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let identity = match hb {
        Some(p) => IdentityTerms::load_holistic_bias(&p).unwrap(),
        None => IdentityTerms::builtin(),
    };

    let mut docs = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let mut cut = doc_len.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (d, r) = rest.split_at(cut);
        docs.push(d);
        rest = r;
    }
    let mb = text.len() as f64 / 1e6;

    let t0 = Instant::now();
    let mut counts: HashMap<(String, String, Severity), usize> = HashMap::new();
    let mut with_hits = 0;
    let mut by_severity: HashMap<Severity, usize> = HashMap::new();
    for d in &docs {
        let hits = rules.find(d);
        with_hits += usize::from(!hits.is_empty());
        if let Some(max) = hits.iter().map(|h| h.severity).max() {
            *by_severity.entry(max).or_default() += 1;
        }
        for h in hits {
            *counts.entry((h.term, h.category, h.severity)).or_default() += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "find: {mb:.1} MB in {} docs, {:.0} MB/s, {with_hits} docs with hits",
        docs.len(),
        mb / secs
    );
    for s in [Severity::Severe, Severity::Strong, Severity::Mild] {
        println!(
            "  docs whose worst hit is {s}: {}",
            by_severity.get(&s).unwrap_or(&0)
        );
    }

    let t0 = Instant::now();
    let mentioning = docs.iter().filter(|d| identity.mentions(d)).count();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "identity ({}, {} terms) mentions: {:.0} MB/s, {mentioning} docs mention one",
        identity.name(),
        identity.len(),
        mb / secs
    );

    let mut top: Vec<_> = counts.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    for ((term, cat, sev), n) in top.iter().take(40) {
        println!("{n:>7}  {cat:<3} {sev:<6} {term}");
    }
}
