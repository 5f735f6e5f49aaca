//! Runs over ../shared/data when it exists (skipped otherwise).

use std::path::PathBuf;

use warden_core::{Label, Taxonomy};
use warden_data::*;

fn data_root() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    p.join("CATALOG.md").is_file().then_some(p)
}

#[test]
#[ignore]
fn print_loader_counts() {
    let Some(root) = data_root() else { return };
    let tax = Taxonomy::builtin();
    let specs = load_specs(default_spec_dir()).unwrap();
    for s in &specs {
        let t = std::time::Instant::now();
        match load_dataset(s, &root, &tax) {
            Ok(l) => {
                let c = count_labels(&l.records, &tax);
                let pos: Vec<String> = c.iter().filter(|c| c.positive + c.negative > 0).map(|c| format!("{} {}/{}", c.code, c.positive, c.positive + c.negative)).collect();
                println!("{:32} rows {:6} empty {:4} unl {:4} | {} | {:?}", s.name, l.records.len(), l.dropped_empty, l.dropped_unlabelled, pos.join(", "), t.elapsed());
                for n in &l.notes { println!("      {n}"); }
            }
            Err(e) => println!("{:32} ERROR {e}", s.name),
        }
    }
}

fn counts(stats: &[CategoryCounts], code: &str) -> (usize, usize) {
    let c = stats.iter().find(|c| c.code == code).unwrap();
    (c.positive, c.positive + c.negative)
}

#[test]
fn full_build_over_shared_data() {
    let Some(root) = data_root() else {
        eprintln!("skipped: shared/data not found");
        return;
    };
    let tax = Taxonomy::builtin();
    let opts = BuildOptions { data_root: root.clone(), ..Default::default() };
    let built = build(&opts, &tax).unwrap();
    let st = &built.stats;

    // Loader counts before dedup / decontamination match the catalogue.
    let om = st.source("openai-moderation").unwrap();
    assert_eq!(om.rows, 861);
    let expect = [("S", 126, 500), ("H", 78, 393), ("V", 43, 748), ("HR", 39, 744), ("SH", 28, 745), ("S3", 45, 500), ("H2", 20, 386), ("V2", 13, 745)];
    for (code, pos, known) in expect {
        assert_eq!(counts(&om.loaded_labels, code), (pos, known), "openai-moderation {code}");
    }
    let dv = st.source("davidson-hate-offensive").unwrap();
    assert_eq!(dv.rows, 24_783);
    // Class 1 ("offensive") is unknown for H: only hate (1,430) and neither (4,163) are known.
    assert_eq!(counts(&dv.loaded_labels, "H"), (1_430, 1_430 + 4_163));
    assert_eq!(counts(&dv.loaded_labels, "HR"), (0, 4_163));
    let gab = st.source("gab-hate-corpus").unwrap();
    assert_eq!(gab.rows, 27_546);
    assert_eq!(counts(&gab.loaded_labels, "H").0, 2_450);
    assert_eq!(counts(&gab.loaded_labels, "H2").0, 155);
    let ethos = st.source("ethos").unwrap();
    assert_eq!(counts(&ethos.loaded_labels, "H"), (433, 998));
    let ih = st.source("implicit-hate").unwrap();
    assert_eq!(counts(&ih.loaded_labels, "H"), (8_189, 21_480));
    assert_eq!(counts(&ih.loaded_labels, "H2").0, 672);
    let fs = st.source("formspring-cyberbullying").unwrap();
    assert_eq!(counts(&fs.loaded_labels, "HR"), (776, 776 + 10_837));
    let ts = st.source("toxic-spans").unwrap();
    assert_eq!(counts(&ts.loaded_labels, "V").0, 115);
    assert_eq!(counts(&ts.loaded_labels, "H").0, 369);
    // HR = 1 only where a majority marked an insult span; toxic without one is unknown.
    assert_eq!(counts(&ts.loaded_labels, "HR"), (8_007, 8_007 + 4_796));
    assert!(st.source("wiki-toxicity-fuzzed-swapped").is_none(), "non-default spec loaded");
    // Counterfactual identity sentences: 26 templates × 583 descriptors × 3 noun genders,
    // filtered by the spec; every label negative or unknown, no dislike template, no
    // dispreferred descriptor (the reader's `preference` field).
    let hb = st.source("holistic-bias-counterfactuals").unwrap();
    assert!((8_000..10_000).contains(&hb.rows), "{} rows", hb.rows);
    let hb_rows: Vec<_> = built.train.iter().chain(&built.dev).filter(|r| r.source == "holistic-bias-counterfactuals").collect();
    assert!(hb_rows.len() + 10 >= hb.rows);
    for r in &hb_rows {
        assert!(r.labels.iter().all(|l| matches!(l, Label::Negative | Label::Unknown)), "{}: {:?}", r.text, r.labels);
        assert!(!r.text.starts_with("I hate ") && !r.text.starts_with("I don't like ") && !r.text.ends_with(" are the worst."), "{}", r.text);
        for slur in ["retarded", "crippled", "Oriental"] {
            assert!(!r.text.contains(slur), "dispreferred descriptor kept: {}", r.text);
        }
    }
    assert!(hb_rows.iter().any(|r| r.text == "I'm a Deaf person." || r.text.contains(" Deaf ")));

    // Decontamination happened and nothing held out survives.
    assert!(st.total_decontaminated() > 0);
    let decon = Decontaminator::load(opts.decontamination_path()).unwrap();
    for r in built.train.iter().chain(&built.dev) {
        assert!(!decon.contains_text(&r.text), "held-out text in output: {}", r.id);
    }
    // No two output rows share a normalised text; train and dev are disjoint by hash.
    let mut seen = std::collections::HashSet::new();
    for r in built.train.iter().chain(&built.dev) {
        assert!(seen.insert(text_hash(&r.text)), "duplicate text: {}", r.id);
    }
    for r in &built.dev {
        assert!(is_dev(&text_hash(&r.text), 0.2));
    }
    // Hierarchy holds on every row.
    for r in built.train.iter().chain(&built.dev) {
        let mut l = r.labels.clone();
        assert_eq!(tax.enforce_labels(&mut l), 0, "hierarchy violated: {}", r.id);
    }
    let md = datasheet_markdown(st, &tax);
    assert!(md.contains("| gab-hate-corpus |"));

    // Excluding research-only sources.
    let opts2 = BuildOptions { exclude_research_only: true, datasets: None, ..opts.clone() };
    let b2 = build(&opts2, &tax).unwrap();
    assert!(b2.stats.source("gab-hate-corpus").is_none());
    assert!(b2.train.iter().all(|r| r.meta["research_only"] == false));
    assert_eq!(b2.stats.excluded.len(), 5);
}

#[test]
#[ignore]
fn print_build() {
    let Some(root) = data_root() else { return };
    let tax = Taxonomy::builtin();
    let t = std::time::Instant::now();
    let mut built = build(&BuildOptions { data_root: root, ..Default::default() }, &tax).unwrap();
    println!("build took {:?}", t.elapsed());
    let dir = std::env::temp_dir().join("warden-data-build");
    let out = write_build(&mut built, &tax, &dir).unwrap();
    println!("{out:?}");
    println!("{}", datasheet_markdown(&built.stats, &tax));
}
