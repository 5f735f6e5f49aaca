//! Statistics, merging and the rendered report, through the public API.

use warden_audit::{
    render_html, render_markdown, wilson_interval, Action, AuditError, DocAttributes, Layer,
    Reason, ReportMeta, RunStats, Span, MAX_EXAMPLES, NO_SOURCE,
};

fn cats() -> Vec<String> {
    ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn keep(id: &str, source: &str, text: &str) -> DocAttributes {
    DocAttributes {
        id: id.to_owned(),
        line: 1,
        byte_offset: Some(0),
        source: Some(source.to_owned()),
        bytes: text.len() as u64,
        action: Action::Keep,
        reasons: Vec::new(),
        scores: vec![0.05; 8],
        chunks: Vec::new(),
        rule_hits: Vec::new(),
        redacted: Vec::new(),
        identity: false,
        pii_masked: 0,
            rule_hits_omitted: 0,
    }
}

fn reason(layer: Layer, cat: &str, span: Span) -> Reason {
    Reason {
        layer,
        category: Some(cat.to_owned()),
        score: Some(0.91),
        threshold: Some(0.5),
        span: Some(span),
        detail: None,
    }
}

/// A removed document whose offending span is `needle` in `text`.
fn removed(
    id: &str,
    source: &str,
    text: &str,
    action: Action,
    layer: Layer,
    cat: &str,
    needle: &str,
) -> DocAttributes {
    let start = text.find(needle).expect("needle in text");
    let span = Span::new(start, start + needle.len());
    let mut d = keep(id, source, text);
    d.action = action;
    d.reasons = vec![reason(layer, cat, span)];
    if action == Action::Redact {
        d.redacted = vec![span];
    }
    let i = cats().iter().position(|c| c == cat).unwrap();
    d.scores[i] = 0.91;
    d
}

fn meta() -> ReportMeta {
    ReportMeta {
        title: "Audit of test run".into(),
        run: "out/run-1".into(),
        policy: "default".into(),
        model: "fast-v1".into(),
        inputs: 2,
        identity_terms: "identity-en".into(),
        notes: vec!["synthetic data".into()],
    }
}

/// Three shards with a mix of decisions, errors, sources and identity mentions.
fn shards() -> Vec<RunStats> {
    let mut out = Vec::new();
    for shard in 0..3u64 {
        let mut s = RunStats::new(&cats());
        for i in 0..(10 + shard * 7) {
            let id = format!("{shard}-{i}");
            let src = format!("site{}.example", i % 4);
            let text = format!("document {id} says something awful here and more");
            let mut d = match i % 5 {
                0 => removed(&id, &src, &text, Action::Drop, Layer::Fast, "H", "awful"),
                1 => removed(&id, &src, &text, Action::Redact, Layer::Rules, "V", "awful"),
                _ => keep(&id, &src, &text),
            };
            d.identity = i % 3 == 0;
            s.observe(&d, &text);
        }
        for _ in 0..shard {
            s.observe_error("invalid_json");
        }
        s.observe_error("missing_text");
        out.push(s);
    }
    out
}

fn counts(s: &RunStats) -> RunStats {
    // Everything but the examples (whose selection depends on merge order by design).
    let mut c = s.clone();
    for cs in &mut c.by_category {
        cs.examples.clear();
    }
    c.uncategorized_examples.clear();
    c
}

#[test]
fn observe_totals() {
    let mut s = RunStats::new(&cats());
    let t1 = "all fine";
    let t2 = "this is awful stuff";
    let t3 = "redact the awful word";
    s.observe(&keep("a", "x.example", t1), t1);
    s.observe(
        &removed(
            "b",
            "x.example",
            t2,
            Action::Drop,
            Layer::Fast,
            "H",
            "awful",
        ),
        t2,
    );
    s.observe(
        &removed(
            "c",
            "y.example",
            t3,
            Action::Redact,
            Layer::Rules,
            "V",
            "awful",
        ),
        t3,
    );
    s.observe_error("invalid_json");
    s.observe_error("invalid_json");
    s.observe_error("line_too_long");
    assert_eq!(
        (s.docs(), s.kept(), s.dropped(), s.redacted(), s.errors()),
        (3, 1, 1, 1, 3)
    );
    assert_eq!(s.error_kinds["invalid_json"], 2);
    assert_eq!(s.error_kinds["line_too_long"], 1);
    assert_eq!(s.bytes_in, (t1.len() + t2.len() + t3.len()) as u64);
    assert_eq!(s.bytes_removed, (t2.len() + "awful".len()) as u64);
    assert_eq!(s.by_category[1].removals.dropped, 1);
    assert_eq!(s.by_category[2].removals.redacted, 1);
    assert_eq!(s.by_layer[&Layer::Fast].dropped, 1);
    assert_eq!(s.by_layer[&Layer::Rules].redacted, 1);
    assert_eq!(s.sources["x.example"].docs, 2);
    assert_eq!(s.sources["x.example"].removals.removed(), 1);
    assert_eq!(s.sources["y.example"].by_category[2], 1);

    let mut d = keep("n", "", "t");
    d.source = None;
    s.observe(&d, "t");
    assert_eq!(s.sources[NO_SOURCE].docs, 1);
}

#[test]
fn merge_adds_totals() {
    let parts = shards();
    let mut all = RunStats::new(&cats());
    for p in &parts {
        all.merge(p).unwrap();
    }
    let docs: u64 = parts.iter().map(|p| p.docs()).sum();
    assert_eq!(all.docs(), docs);
    assert_eq!(all.docs(), 10 + 17 + 24);
    assert_eq!(all.errors(), 3 + 3);
    assert_eq!(all.error_kinds["invalid_json"], 3);
    assert_eq!(all.error_kinds["missing_text"], 3);
    assert_eq!(
        all.kept() + all.dropped() + all.redacted(),
        all.docs(),
        "every document has one action"
    );
    assert_eq!(
        all.dropped(),
        parts.iter().map(|p| p.dropped()).sum::<u64>()
    );
    assert_eq!(
        all.by_category[1].hist_removed.iter().sum::<u64>()
            + all.by_category[1].hist_kept.iter().sum::<u64>(),
        all.docs()
    );
    assert_eq!(all.identity.docs + all.others.docs, all.docs());
    // Examples: appended in merge order, then truncated.
    assert_eq!(all.by_category[1].examples.len(), MAX_EXAMPLES);
    assert_eq!(all.by_category[1].examples[0].id, "0-0");
    assert_eq!(all.by_category[1].examples[2].id, "1-0");
}

#[test]
fn merge_is_associative_on_counts() {
    let p = shards();
    let (a, b, c) = (&p[0], &p[1], &p[2]);
    let mut left = a.clone();
    left.merge(b).unwrap();
    left.merge(c).unwrap();
    let mut bc = b.clone();
    bc.merge(c).unwrap();
    let mut right = a.clone();
    right.merge(&bc).unwrap();
    assert_eq!(
        left, right,
        "examples too: first MAX_EXAMPLES of a ++ b ++ c"
    );
    // Counts do not depend on the order at all.
    let mut other = c.clone();
    other.merge(a).unwrap();
    other.merge(b).unwrap();
    assert_eq!(counts(&other), counts(&left));
    // Merging an empty stats is the identity.
    let mut e = left.clone();
    e.merge(&RunStats::new(&cats())).unwrap();
    assert_eq!(e, left);
}

#[test]
fn merge_rejects_other_categories() {
    let mut a = RunStats::new(&cats());
    let mut reordered = cats();
    reordered.swap(0, 1);
    let b = RunStats::new(&reordered);
    let before = a.clone();
    let err = a.merge(&b).unwrap_err();
    assert!(matches!(err, AuditError::CategoryMismatch { .. }), "{err}");
    assert!(err.to_string().contains("category lists differ"));
    assert_eq!(a, before);
    let c = RunStats::new(&cats()[..7]);
    assert!(a.merge(&c).is_err());
}

#[test]
fn example_capture_with_multibyte_context() {
    let mut s = RunStats::new(&cats());
    // 3-byte characters so that 200 bytes before / after fall inside a character.
    let before = "€".repeat(100);
    let after = "日本".repeat(60);
    let text = format!("{before}hateful words{after}");
    let d = removed(
        "m",
        "src",
        &text,
        Action::Drop,
        Layer::Fast,
        "H",
        "hateful words",
    );
    s.observe(&d, &text);
    let ex = &s.by_category[1].examples[0];
    assert_eq!(ex.matched, "hateful words");
    assert!(!ex.cut_span);
    assert!(ex.cut_before && ex.cut_after);
    assert!(ex.before.len() <= 200 && ex.before.len() >= 198);
    assert!(ex.before.chars().all(|c| c == '€'));
    assert!(ex.after.len() <= 200 && ex.after.len() >= 198);
    assert!(text.contains(&format!("{}{}{}", ex.before, ex.matched, ex.after)));
    assert_eq!(ex.layer, Layer::Fast);
    assert_eq!(ex.action, Action::Drop);
    assert_eq!(ex.score, Some(0.91));
    assert_eq!(ex.threshold, Some(0.5));
    assert_eq!(ex.source.as_deref(), Some("src"));

    // A long span is truncated on a character boundary.
    let long = "é".repeat(400);
    let text2 = format!("x{long}y");
    let d = removed("n", "src", &text2, Action::Drop, Layer::Rules, "H", &long);
    s.observe(&d, &text2);
    let ex = &s.by_category[1].examples[1];
    assert!(ex.cut_span);
    assert!(ex.matched.len() <= 300);
    assert!(ex.matched.chars().all(|c| c == 'é'));
    assert_eq!(ex.before, "x");
    assert_eq!(ex.after, "y");

    // A span that does not fit the text (a stale sidecar) does not panic.
    let mut d = removed(
        "o",
        "src",
        "short text",
        Action::Drop,
        Layer::Fast,
        "H",
        "text",
    );
    d.reasons[0].span = Some(Span { start: 7, end: 999 });
    s.observe(&d, "短い");
    assert_eq!(s.by_category[1].examples.len(), 3);

    // Domain blocks have no span: the host is shown.
    let mut d = keep("p", "bad.example", "whatever");
    d.action = Action::Drop;
    d.reasons = vec![Reason {
        layer: Layer::Domain,
        category: None,
        score: None,
        threshold: None,
        span: None,
        detail: Some("bad.example".into()),
    }];
    s.observe(&d, "whatever");
    assert_eq!(s.uncategorized.dropped, 1);
    assert_eq!(s.by_layer[&Layer::Domain].dropped, 1);
    let ex = &s.uncategorized_examples[0];
    assert_eq!(ex.detail.as_deref(), Some("bad.example"));
    assert!(ex.matched.is_empty());
    let md = render_markdown(&s, &meta());
    assert!(
        md.contains("host: bad\\.example") || md.contains("host: bad.example"),
        "{md}"
    );
    let html = render_html(&s, &meta());
    assert!(html.contains("host: bad.example"));
    assert!(html.contains("<mark>hateful words</mark>"));
    assert!(md.contains("**hateful words**"));
}

#[test]
fn examples_keep_the_first_five() {
    let mut s = RunStats::new(&cats());
    for i in 0..12 {
        let t = format!("doc {i} is awful");
        s.observe(
            &removed(
                &i.to_string(),
                "s",
                &t,
                Action::Drop,
                Layer::Fast,
                "S",
                "awful",
            ),
            &t,
        );
    }
    let ids: Vec<&str> = s.by_category[0]
        .examples
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4"]);
}

fn hostile_stats() -> RunStats {
    let mut s = RunStats::new(&cats());
    let text = "before <script>alert('x')</script> | `tick` **bold** [l](u)\n# heading\n| a | b |";
    let d = removed(
        "<img src=x onerror=alert(1)>",
        "evil|source`",
        text,
        Action::Drop,
        Layer::Fast,
        "H",
        "<script>alert('x')</script>",
    );
    s.observe(&d, text);
    s
}

#[test]
fn html_escapes_hostile_examples() {
    let html = render_html(&hostile_stats(), &meta());
    assert!(
        !html.to_lowercase().contains("<script"),
        "no script element"
    );
    assert!(!html.contains("<img"));
    assert!(html.contains("<mark>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</mark>"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn markdown_escapes_hostile_examples() {
    let md = render_markdown(&hostile_stats(), &meta());
    // The example stays on its own (quote) line: the newlines in it are made visible.
    let quote = md
        .lines()
        .find(|l| l.contains("alert") && l.starts_with("  > "))
        .expect("quote line");
    assert!(quote.contains("↵\\# heading↵"), "{quote}");
    assert!(!quote.contains("<script>"));
    assert!(
        quote.contains("**&lt;script&gt;alert('x')&lt;/script&gt;**"),
        "{quote}"
    );
    // Every pipe and backtick of the example is escaped.
    let unescaped = |line: &str, c: char| {
        let b = line.as_bytes();
        line.char_indices()
            .any(|(i, ch)| ch == c && (i == 0 || b[i - 1] != b'\\'))
    };
    assert!(!unescaped(quote, '|'), "{quote}");
    assert!(!unescaped(quote, '`'), "{quote}");
    assert!(quote.contains("\\*\\*bold\\*\\*"));
    // The hostile id and source do not break the meta line either.
    let meta_line = md.lines().find(|l| l.contains("onerror")).unwrap();
    assert!(meta_line.starts_with("- **drop**"));
    assert!(meta_line.contains("&lt;img"));
    assert!(meta_line.contains("evil\\|source\\`"));
    // Tables stay intact: every table row has the same number of unescaped pipes as its header.
    let top_row = md
        .lines()
        .find(|l| l.contains("evil") && l.starts_with("| 1 |"))
        .unwrap();
    let header = md
        .lines()
        .find(|l| l.starts_with("| \\# | source"))
        .unwrap();
    let pipes = |l: &str| {
        let b = l.as_bytes();
        l.char_indices()
            .filter(|&(i, c)| c == '|' && (i == 0 || b[i - 1] != b'\\'))
            .count()
    };
    assert_eq!(pipes(top_row), pipes(header));
}

#[test]
fn wilson_matches_known_values() {
    // Reference values (Wilson score interval, z = 1.96).
    let close = |a: f64, b: f64| (a - b).abs() < 5e-5;
    let (lo, hi) = wilson_interval(5, 10).unwrap();
    assert!(close(lo, 0.2366) && close(hi, 0.7634), "{lo} {hi}");
    let (lo, hi) = wilson_interval(10, 100).unwrap();
    assert!(close(lo, 0.0552) && close(hi, 0.1744), "{lo} {hi}");
    let (lo, hi) = wilson_interval(1, 20).unwrap();
    assert!(close(lo, 0.0089) && close(hi, 0.2361), "{lo} {hi}");
    let (lo, hi) = wilson_interval(0, 10).unwrap();
    assert!(lo == 0.0 && close(hi, 0.2775), "{lo} {hi}");
    assert_eq!(wilson_interval(3, 0), None);
}

/// `n_id` identity-mention documents of which `r_id` removed, and likewise for the others.
fn groups(n_id: u64, r_id: u64, n_other: u64, r_other: u64) -> RunStats {
    let mut s = RunStats::new(&cats());
    let text = "a document that mentions a group";
    for (identity, n, r) in [(true, n_id, r_id), (false, n_other, r_other)] {
        for i in 0..n {
            let id = format!("{identity}-{i}");
            let mut d = if i < r {
                removed(&id, "s", text, Action::Drop, Layer::Rules, "H", "group")
            } else {
                keep(&id, "s", text)
            };
            d.identity = identity;
            s.observe(&d, text);
        }
    }
    s
}

#[test]
fn disparity_warning_appears_only_when_disparate() {
    let disparate = groups(200, 60, 2000, 100); // 30% vs 5%
    let of = disparate.over_filtering();
    assert_eq!(of.overall.disparity, warden_audit::Disparity::Warning);
    assert!((of.overall.ratio.unwrap() - 6.0).abs() < 1e-9);
    let rules = of.by_layer.iter().find(|c| c.name == "rules").unwrap();
    assert_eq!(rules.disparity, warden_audit::Disparity::Warning);
    let md = render_markdown(&disparate, &meta());
    let html = render_html(&disparate, &meta());
    assert!(md.contains("**WARNING:**"), "{md}");
    assert!(html.contains("<strong>WARNING:</strong>"));
    assert!(md.contains("6.00×"));
    assert!(md.contains("30.00% (24.07–36.68%)"), "{md}");

    let equal = groups(200, 10, 2000, 100); // 5% vs 5%
    assert_eq!(
        equal.over_filtering().overall.disparity,
        warden_audit::Disparity::NotDetected
    );
    for out in [
        render_markdown(&equal, &meta()),
        render_html(&equal, &meta()),
    ] {
        assert!(!out.contains("WARNING"));
        assert!(out.contains("No disparity detected at this sample size"));
    }

    // A large ratio on a tiny sample has overlapping intervals: not flagged.
    let small = groups(5, 1, 50, 2); // 20% vs 4%
    assert_eq!(
        small.over_filtering().overall.disparity,
        warden_audit::Disparity::NotDetected
    );
    assert!(!render_markdown(&small, &meta()).contains("WARNING"));

    // No identity mentions at all: no data, no warning.
    let none = groups(0, 0, 50, 2);
    assert_eq!(
        none.over_filtering().overall.disparity,
        warden_audit::Disparity::NoData
    );
    assert!(render_markdown(&none, &meta()).contains("Not enough data"));
}

#[test]
fn json_round_trip() {
    let mut s = RunStats::new(&cats());
    for p in shards() {
        s.merge(&p).unwrap();
    }
    let h = hostile_stats();
    s.merge(&h).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: RunStats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(RunStats::from_json(&json).unwrap(), s);
    assert!(json.contains("\"fast\""), "layers are keyed by name");
    // A truncated histogram is rejected by from_json (and by merge).
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["by_category"][0]["hist_kept"]
        .as_array_mut()
        .unwrap()
        .pop();
    let err = RunStats::from_json(&v.to_string()).unwrap_err();
    assert!(matches!(err, AuditError::Inconsistent(_)), "{err}");
    assert!(matches!(
        RunStats::from_json("{\"docs\": 1"),
        Err(AuditError::Json(_))
    ));
}

#[test]
fn html_is_self_contained() {
    let mut s = RunStats::new(&cats());
    for p in shards() {
        s.merge(&p).unwrap();
    }
    let html = render_html(&s, &meta());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("http://"), "no external reference");
    assert!(!html.contains("https://"), "no external reference");
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("<link"));
    assert!(!html.contains("src="));
    assert!(!html.contains("url("));
    assert!(html.contains("<style>"));
    assert!(html.matches("<svg").count() >= 2 + cats().len());
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert_eq!(
        html.matches("<section").count(),
        html.matches("</section>").count()
    );
}

#[test]
fn reports_have_the_same_sections_and_are_deterministic() {
    let mut s = RunStats::new(&cats());
    for p in shards() {
        s.merge(&p).unwrap();
    }
    let md = render_markdown(&s, &meta());
    let html = render_html(&s, &meta());
    assert_eq!(md, render_markdown(&s.clone(), &meta()));
    assert_eq!(html, render_html(&s.clone(), &meta()));
    for heading in [
        "Totals",
        "Removals by category",
        "Removals by layer",
        "Sources with the most removals",
        "Score distributions",
        "Over-filtering check",
        "Unreadable lines",
        "Examples",
    ] {
        assert!(md.contains(&format!("## {heading}")), "md lacks {heading}");
        assert!(
            html.contains(&format!("<h2>{heading}</h2>")),
            "html lacks {heading}"
        );
    }
    for needle in [
        "out/run-1",
        "fast-v1",
        "identity-en",
        "synthetic data",
        "invalid\\_json",
    ] {
        assert!(md.contains(needle), "md lacks {needle}");
    }
    assert!(html.contains("invalid_json"));
    // Top sources: sorted by removals, ties broken by name.
    let top = s.top_sources(20);
    assert!(!top.is_empty());
    for w in top.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (ra, rb) = (a.1.removals.removed(), b.1.removals.removed());
        assert!(ra > rb || (ra == rb && a.0 < b.0), "{} before {}", a.0, b.0);
    }
    assert!(md.contains(&format!("| 1 | {} |", top[0].0)), "{md}");
}

#[test]
fn stats_file_round_trip_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats-0.json");
    let s = shards().remove(2);
    std::fs::write(&path, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    let back = RunStats::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, s);
}
