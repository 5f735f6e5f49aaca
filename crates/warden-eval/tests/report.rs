use serde_json::{json, Value};
use warden_core::{Label, Record, Taxonomy};
use warden_eval::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn two_cats() -> Taxonomy {
    Taxonomy::from_toml_str(
        "format_version = 1\nname = \"t\"\n\
         [[category]]\ncode = \"S\"\nname = \"sexual\"\n\
         [[category]]\ncode = \"H2\"\nname = \"hate/threatening\"\n",
    )
    .unwrap()
}

use Label::{Negative as N, Positive as P, Unknown as U};

#[test]
fn unknown_labels_are_masked_out_of_a_category() {
    let t = two_cats();
    let labels = vec![vec![P, U], vec![N, U], vec![U, P], vec![N, N], vec![U, U]];
    let scores = vec![
        vec![0.9, 0.99],
        vec![0.2, 0.99],
        vec![0.99, 0.7],
        vec![0.1, 0.3],
        vec![0.5, 0.5],
    ];
    let r = evaluate(&t, &labels, &scores, &[0.5, 0.5], "m");
    assert_eq!(r.rows, 5);
    let s = r.get("S").unwrap();
    // Only rows 0, 1, 3: the 0.99 on row 2 (S unknown) must not count as a false positive.
    assert_eq!((s.n, s.positives), (3, 1));
    assert_eq!(s.auprc, Some(1.0));
    assert_eq!(s.roc_auc, Some(1.0));
    assert_eq!((s.tp, s.fp, s.tn, s.fn_), (1, 0, 2, 0));
    assert_eq!(s.threshold, Some(0.5));
    let h = r.get("hate/threatening").unwrap();
    assert_eq!((h.n, h.positives), (2, 1));
    assert_eq!(h.roc_auc, Some(1.0));
}

#[test]
fn soft_labels_use_the_hard_cut() {
    let t = two_cats();
    let labels = vec![vec![Label::Soft(0.6), U], vec![Label::Soft(0.4), U]];
    let scores = vec![vec![0.2, 0.0], vec![0.8, 0.0]];
    let r = evaluate(&t, &labels, &scores, &[0.5, 0.5], "m");
    let s = r.get("S").unwrap();
    assert_eq!((s.n, s.positives), (2, 1));
    assert_eq!(s.roc_auc, Some(0.0));
    assert_eq!(r.get("H2").unwrap().n, 0);
    assert_eq!(r.get("H2").unwrap().auprc, None);
}

#[test]
fn any_semantics() {
    let t = two_cats();
    let labels = vec![
        vec![P, U], // positive (only S known)
        vec![N, U], // negative: a label is known and none is positive
        vec![N, P], // positive
        vec![U, U], // left out
        vec![N, N], // negative
    ];
    let scores = vec![
        vec![0.6, 0.1],  // flagged by S
        vec![0.1, 0.45], // flagged by H2 (threshold 0.4) although H2 unknown
        vec![0.2, 0.3],  // max 0.3; not flagged (H2 < 0.4)
        vec![0.9, 0.9],  // excluded
        vec![0.05, 0.35],
    ];
    let r = evaluate(&t, &labels, &scores, &[0.5, 0.4], "m");
    let a = &r.any;
    assert_eq!((a.n, a.positives), (4, 2));
    assert_eq!(a.threshold, None);
    // Policy flags: row0 yes (tp), row1 yes (fp), row2 no (fn), row4 no (tn).
    assert_eq!((a.tp, a.fp, a.tn, a.fn_), (1, 1, 1, 1));
    assert!(close(a.precision.unwrap(), 0.5));
    assert!(close(a.recall.unwrap(), 0.5));
    assert!(close(a.fpr.unwrap(), 0.5));
    // Ranking on max score: 0.6(+) 0.45(−) 0.35(−) 0.3(+) → ROC: pos0 beats 2, pos2 beats 0.
    assert!(close(a.roc_auc.unwrap(), 0.5));
    assert!(close(a.auprc.unwrap(), 0.5 * 1.0 + 0.5 * 0.5));
    // A single threshold on the max score would count differently: confirm the policy is
    // what is reported, i.e. not `at_threshold(max, 0.4)`.
    let max = [0.6, 0.45, 0.3, 0.35];
    let lab = [true, false, true, false];
    assert_eq!(at_threshold(&max, &lab, 0.5).fp, 0);
}

#[test]
fn json_shape_and_category_order() {
    let t = Taxonomy::builtin();
    let k = t.len();
    let mut labels = Vec::new();
    let mut scores = Vec::new();
    for i in 0..20 {
        let mut l = vec![U; k];
        l[0] = if i % 4 == 0 { P } else { N };
        l[1] = if i % 5 == 0 { P } else { N };
        labels.push(l);
        scores.push(
            (0..k)
                .map(|c| ((i * 7 + c * 3) % 11) as f32 / 10.0)
                .collect::<Vec<f32>>(),
        );
    }
    let r = evaluate(&t, &labels, &scores, &vec![0.5; k], "warden-fast-v1");
    let text = serde_json::to_string(&r).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "warden-fast-v1");
    assert_eq!(v["rows"], 20);
    assert!(v["categories"]["S"]["auprc"].is_f64());
    assert!(v["any"]["auprc"].is_f64());
    assert_eq!(v["categories"]["S"]["n"], 20);
    assert_eq!(v["categories"]["S"]["positives"], 5);
    // Unannotated category: counts 0, metrics null.
    assert_eq!(v["categories"]["V"]["n"], 0);
    assert_eq!(v["categories"]["V"]["auprc"], Value::Null);
    assert_eq!(v["categories"]["V"]["roc_auc"], Value::Null);
    assert_eq!(v["any"]["threshold"], Value::Null);
    let s = v["categories"]["S"].as_object().unwrap();
    for key in [
        "auprc",
        "roc_auc",
        "n",
        "positives",
        "best_f1",
        "best_f1_threshold",
        "threshold",
        "precision",
        "recall",
        "f1",
        "fpr",
        "tp",
        "fp",
        "tn",
        "fn",
    ] {
        assert!(s.contains_key(key), "missing {key}");
    }
    assert_eq!(s.len(), 15);
    assert_eq!(v.as_object().unwrap().len(), 4);
    // Keys are codes, in taxonomy order in the serialized text.
    let cats = v["categories"].as_object().unwrap();
    assert_eq!(cats.len(), k);
    let mut last = 0;
    for code in t.codes() {
        let pos = text
            .find(&format!("\"{code}\":{{"))
            .unwrap_or_else(|| panic!("no {code}"));
        assert!(pos > last, "{code} out of order");
        last = pos;
    }
    assert!(!text.contains("hate/threatening"));
    let j = r.to_json();
    assert_eq!(j["categories"]["S"]["tp"], v["categories"]["S"]["tp"]);
    assert_eq!(j["categories"]["S"]["threshold"], json!(0.5));
    assert_eq!(
        j["categories"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        cats.keys().collect::<Vec<_>>()
    );
}

#[test]
fn thresholds_serialize_as_written() {
    let r = CategoryReport::compute(&[0.1, 0.9], &[false, true], 0.35);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["threshold"], json!(0.35));
    assert_eq!(v["fn"], 0);
    assert_eq!(v["best_f1"], json!(1.0));
    assert_eq!(v["best_f1_threshold"], json!(0.9));
}

#[test]
fn markdown_table() {
    let t = two_cats();
    let labels = vec![vec![P, U], vec![N, U]];
    let scores = vec![vec![0.9, 0.1], vec![0.2, 0.1]];
    let md = evaluate(&t, &labels, &scores, &[0.5, 0.5], "m|1").to_markdown();
    assert!(md.contains("| Category | n | Positives | AUPRC | ROC-AUC |"));
    assert!(md.contains("| S (sexual) | 2 | 1 | 1.000 | 1.000 |"));
    assert!(md.contains("| H2 (hate/threatening) | 0 | 0 | — | — |"));
    assert!(md.contains("| **any** | 2 | 1 |"));
    assert!(md.contains("m\\|1"));
    // Every table line has the same number of unescaped cells.
    let widths: Vec<usize> = md
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.replace("\\|", "").matches('|').count())
        .collect();
    assert!(
        widths.len() >= 5 && widths.iter().all(|&w| w == widths[0]),
        "{md}"
    );
}

#[test]
fn by_group_and_records() {
    let t = two_cats();
    let labels = vec![vec![P, U], vec![N, U], vec![U, P], vec![U, N]];
    let scores = vec![
        vec![0.9, 0.0],
        vec![0.1, 0.0],
        vec![0.0, 0.2],
        vec![0.0, 0.8],
    ];
    let groups = ["a", "a", "b", "b"];
    let g = evaluate_by_group(&t, &labels, &scores, &[0.5, 0.5], &groups, "m");
    assert_eq!(g.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(g["a"].rows, 2);
    assert_eq!(g["a"].get("S").unwrap().roc_auc, Some(1.0));
    assert_eq!(g["a"].get("H2").unwrap().n, 0);
    assert_eq!(g["b"].get("H2").unwrap().roc_auc, Some(0.0));
    // Attached per-source reports serialize after `any`, categories still in order.
    let all = evaluate(&t, &labels, &scores, &[0.5, 0.5], "m").with_sources(g);
    let text = all.to_json_pretty();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["sources"]["a"]["categories"]["S"]["n"], 2);
    assert!(v["sources"]["a"].get("sources").is_none());
    let (s_at, h2_at, any_at, src_at) = (
        text.find("\"S\"").unwrap(),
        text.find("\"H2\"").unwrap(),
        text.find("\"any\"").unwrap(),
        text.find("\"sources\"").unwrap(),
    );
    assert!(s_at < h2_at && h2_at < any_at && any_at < src_at);

    let records: Vec<Record> = [
        json!({"text": "x", "labels": {"S": 1}}),
        json!({"text": "y", "labels": {"sexual": 0}}),
    ]
    .into_iter()
    .map(|v| Record::from_json(v, &t).unwrap())
    .collect();
    let r = evaluate_records(&t, &records, &[[0.7f32, 0.0], [0.3, 0.0]], &[0.5, 0.5], "m").unwrap();
    assert_eq!(r.get("S").unwrap().auprc, Some(1.0));
    assert_eq!(r.rows, 2);
}

#[test]
fn mismatched_inputs_are_errors() {
    let t = two_cats();
    let l = vec![vec![P, U]];
    assert_eq!(
        try_evaluate(&t, &l, &[vec![0.1f32]], &[0.5, 0.5], "m"),
        Err(EvalError::ScoreWidth {
            row: 0,
            got: 1,
            categories: 2
        })
    );
    assert!(matches!(
        try_evaluate(&t, &l, &[vec![0.1f32, 0.2]], &[0.5], "m"),
        Err(EvalError::ThresholdCount { .. })
    ));
    assert!(matches!(
        try_evaluate(&t, &l, &Vec::<Vec<f32>>::new(), &[0.5, 0.5], "m"),
        Err(EvalError::RowCount { .. })
    ));
    assert!(matches!(
        try_evaluate_by_group(&t, &l, &[vec![0.1f32, 0.2]], &[0.5, 0.5], &["a", "b"], "m"),
        Err(EvalError::GroupCount { .. })
    ));
}

#[test]
fn empty_dataset() {
    let t = two_cats();
    let r = evaluate(
        &t,
        &Vec::<Vec<Label>>::new(),
        &Vec::<Vec<f32>>::new(),
        &[0.5, 0.5],
        "m",
    );
    assert_eq!(r.rows, 0);
    assert_eq!(r.any.n, 0);
    assert_eq!(r.any.auprc, None);
    assert!(r.to_markdown().contains("**any**"));
}
