use warden_core::{Label, Taxonomy};
use warden_eval::*;

#[test]
fn writes_one_plot_per_category_plus_any() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let s3 = t.index_of("S3").unwrap();
    let h2 = t.index_of("hate/threatening").unwrap();
    let mut labels = Vec::new();
    let mut scores = Vec::new();
    for i in 0..50usize {
        let mut l = vec![Label::Unknown; k];
        l[0] = if i % 3 == 0 {
            Label::Positive
        } else {
            Label::Negative
        };
        l[s3] = if i % 7 == 0 {
            Label::Positive
        } else {
            Label::Negative
        };
        l[h2] = Label::Negative; // no positives: undefined curve
        labels.push(l);
        scores.push(
            (0..k)
                .map(|c| ((i * 13 + c * 5) % 17) as f32 / 16.0)
                .collect::<Vec<f32>>(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plots/nested");
    let paths =
        write_pr_curves_svg(&t, &labels, &scores, &vec![0.5; k], "model <&> \"x\"", &out).unwrap();
    assert_eq!(paths.len(), k + 1);
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[0], "pr-S.svg");
    assert_eq!(names[s3], "pr-S3.svg");
    assert_eq!(names[h2], "pr-H2.svg");
    assert_eq!(names[k], "pr-any.svg");
    for p in &paths {
        assert_eq!(p.parent().unwrap(), out, "{p:?} escaped the plot directory");
        let svg = std::fs::read_to_string(p).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{p:?}"
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("AUPRC"));
        assert!(svg.contains("&lt;&amp;&gt; &quot;x&quot;"));
        assert!(!svg.contains("<&>"));
        assert_balanced(&svg);
    }
    let s = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(s.contains("<polyline"));
    assert!(s.contains("<circle"));
    assert!(s.contains("Recall") && s.contains("Precision"));
    assert!(std::fs::read_to_string(&paths[k])
        .unwrap()
        .contains("<polyline"));
    let h = std::fs::read_to_string(&paths[h2]).unwrap();
    assert!(!h.contains("<polyline"));
    assert!(h.contains("undefined"));
}

/// Every `<tag ...>` is either self-closing or closed by a matching `</tag>`, in order.
fn assert_balanced(svg: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').expect("unterminated tag") + i;
        let tag = &rest[i + 1..j];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_owned());
        }
        assert!(!rest[i + 1..j].contains('<'), "stray < in {tag}");
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

#[test]
fn unsafe_codes_become_safe_file_names() {
    let t = Taxonomy::from_toml_str(
        "format_version = 1\nname = \"t\"\n\
         [[category]]\ncode = \"a/b\"\nname = \"x\"\n\
         [[category]]\ncode = \"a_b\"\nname = \"y\"\n\
         [[category]]\ncode = \"any\"\nname = \"z\"\n\
         [[category]]\ncode = \"../up\"\nname = \"w\"\n",
    )
    .unwrap();
    let labels = vec![vec![Label::Positive; 4], vec![Label::Negative; 4]];
    let scores = vec![vec![0.9f32; 4], vec![0.1; 4]];
    let dir = tempfile::tempdir().unwrap();
    let paths = write_pr_curves_svg(&t, &labels, &scores, &[0.5; 4], "", dir.path()).unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "pr-a_b.svg",
            "pr-a_b-2.svg",
            "pr-any-2.svg",
            "pr-___up.svg",
            "pr-any.svg"
        ]
    );
    for p in &paths {
        assert_eq!(p.parent().unwrap(), dir.path());
        assert!(p.exists());
    }
    assert_eq!(safe_file_stem("hate/threatening"), "hate_threatening");
}

#[test]
fn curve_area_matches_auprc_in_title() {
    let s = [0.1, 0.4, 0.35, 0.8];
    let l = [false, false, true, true];
    let c = pr_curve(&s, &l).unwrap();
    let svg = pr_curve_svg(
        "S",
        Some(&c),
        Some(OperatingPoint {
            recall: 0.5,
            precision: 1.0,
            threshold: Some(0.5),
        }),
    );
    assert!(svg.contains("AUPRC 0.833"));
    assert!(svg.contains("policy threshold 0.5: P 1.000, R 0.500"));
}

#[test]
fn bad_inputs_are_invalid_input() {
    let t = Taxonomy::builtin();
    let dir = tempfile::tempdir().unwrap();
    let e = write_pr_curves_svg(
        &t,
        &[vec![Label::Unknown]],
        &[vec![0.1f32]],
        &[0.5],
        "m",
        dir.path(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn polyline_has_no_redundant_points() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let mut labels = Vec::new();
    let mut scores = Vec::new();
    let mut x: u64 = 12345;
    for i in 0..5000usize {
        let pos = i % 10 == 0;
        let mut l = vec![Label::Unknown; k];
        l[0] = if pos {
            Label::Positive
        } else {
            Label::Negative
        };
        labels.push(l);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x % 100_000) as f32 / 100_000.0;
        scores.push(vec![if pos { 0.3 + 0.7 * noise } else { 0.6 * noise }; k]);
    }
    let dir = tempfile::tempdir().unwrap();
    let paths = write_pr_curves_svg(&t, &labels, &scores, &vec![0.5; k], "m", dir.path()).unwrap();
    let svg = std::fs::read_to_string(&paths[0]).unwrap();
    let start = svg.find("points=\"").unwrap() + 8;
    let end = start + svg[start..].find('"').unwrap();
    let pts: Vec<(f64, f64)> = svg[start..end]
        .split(' ')
        .map(|p| {
            let (a, b) = p.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(
        pts.len() > 10 && pts.len() < 2 * 5000,
        "{} points",
        pts.len()
    );
    for w in pts.windows(3) {
        let (a, b, c) = (w[0], w[1], w[2]);
        assert!(
            a != b && !(a.0 == b.0 && b.0 == c.0) && !(a.1 == b.1 && b.1 == c.1),
            "{w:?}"
        );
    }
    // Starts at recall 0 and ends at recall 1 (x = 60 and 460 px).
    assert_eq!(pts[0].0, 60.0);
    assert_eq!(pts.last().unwrap().0, 460.0);
}
