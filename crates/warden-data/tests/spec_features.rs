//! Every spec feature on tiny hand-written fixtures.

use std::io::Write;
use std::path::{Path, PathBuf};

use warden_core::{Label, Record, Taxonomy};
use warden_data::*;

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn new() -> Self {
        Fx { dir: tempfile::tempdir().unwrap() }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn specs(&self) -> PathBuf {
        self.dir.path().join("specs")
    }
    fn file(&self, rel: &str, content: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if rel.ends_with(".gz") {
            let f = std::fs::File::create(&p).unwrap();
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            gz.write_all(content.as_bytes()).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(p, content).unwrap();
        }
    }
    fn spec(&self, name: &str, toml: &str) -> DatasetSpec {
        std::fs::create_dir_all(self.specs()).unwrap();
        let p = self.specs().join(format!("{name}.toml"));
        std::fs::write(&p, toml).unwrap();
        DatasetSpec::load(&p).unwrap_or_else(|e| panic!("{e}"))
    }
    fn load(&self, spec: &DatasetSpec) -> LoadedDataset {
        load_dataset(spec, &self.root(), &Taxonomy::builtin()).unwrap()
    }
    fn heldout(&self, texts: &[&str]) -> PathBuf {
        let mut s = String::new();
        for t in texts {
            s.push_str(&hex::encode(text_hash(t)));
            s.push('\n');
        }
        self.file("heldout.txt.gz", &s);
        self.root().join("heldout.txt.gz")
    }
    fn opts(&self, heldout: PathBuf) -> BuildOptions {
        BuildOptions {
            data_root: self.root(),
            spec_dir: self.specs(),
            datasets: None,
            exclude_datasets: Vec::new(),
            exclude_research_only: false,
            dev_fraction: 0.2,
            decontamination: Some(heldout),
        }
    }
}

fn label(r: &Record, code: &str) -> Label {
    r.labels[Taxonomy::builtin().index_of(code).unwrap()]
}

const HEAD: &str = "format_version = 1\nlicense = \"MIT\"\n";

#[test]
fn csv_template_rules_unknown_soft_meta_and_hierarchy() {
    let fx = Fx::new();
    fx.file(
        "d/a.csv.gz",
        ",count,hate,class,title,body\n0,3,3,0,Hi,\"there, \"\"you\"\"\"\n1,3,1,1,T,b\n2,4,0,2,  ,  \n7,3,0,5,x,y\n",
    );
    let spec = fx.spec(
        "a",
        &format!(
            "{HEAD}name = \"a\"\ntext = \"{{title}}\\n\\n{{body}}\"\nid = \"{{_c0}}\"\nmeta = [\"class\"]\n\
             [source]\nfiles = [\"d/*.csv.gz\"]\nformat = \"csv\"\n\
             [labels]\nH = \"if(class == 0, 1, if(class == 2, 0, if(class == 1, hate / count, ())))\"\n\
             H2 = \"if(class == 0, 1, ())\"\nHR = \"if(class == 5, true, ())\"\n"
        ),
    );
    let l = fx.load(&spec);
    assert_eq!(l.dropped_empty, 1, "whitespace-only text is dropped");
    assert_eq!(l.records.len(), 3);
    let r0 = &l.records[0];
    assert_eq!(r0.id, "a:0");
    assert_eq!(r0.text, "Hi\n\nthere, \"you\"");
    assert_eq!(r0.source, "a");
    assert_eq!(r0.meta["class"], 0);
    assert_eq!(r0.meta["license"], "MIT");
    assert_eq!(r0.meta["research_only"], false);
    assert_eq!(label(r0, "H"), Label::Positive);
    assert_eq!(label(r0, "S"), Label::Unknown, "no rule -> unknown, never negative");
    let r1 = &l.records[1];
    assert_eq!(label(r1, "H"), Label::Soft(1.0 / 3.0));
    assert_eq!(label(r1, "H2"), Label::Unknown);
    let r3 = &l.records[2];
    assert_eq!(r3.id, "a:7");
    assert_eq!(label(r3, "H"), Label::Unknown);
    assert_eq!(label(r3, "HR"), Label::Positive);

    // Hierarchy: a positive child raises an unknown parent.
    let spec = fx.spec(
        "b",
        &format!("{HEAD}name = \"b\"\ntext = \"{{title}}\"\n[source]\nfiles = [\"d/a.csv.gz\"]\nformat = \"csv\"\n[labels]\nV2 = \"1\"\n"),
    );
    let l = fx.load(&spec);
    assert_eq!(label(&l.records[0], "V"), Label::Positive);
    assert_eq!(l.records[0].id, "b:0", "default id is the row number");
}

#[test]
fn rule_errors_name_the_row() {
    let fx = Fx::new();
    fx.file("d/a.csv", "t,x\nok,0\nbad,7\n");
    let spec = fx.spec(
        "a",
        &format!("{HEAD}name = \"a\"\ntext = \"{{t}}\"\n[source]\nfiles = [\"d/a.csv\"]\nformat = \"csv\"\n[labels]\nH = \"x\"\n"),
    );
    let e = load_dataset(&spec, &fx.root(), &Taxonomy::builtin()).unwrap_err().to_string();
    assert!(e.contains("d/a.csv") && e.contains("row 1") && e.contains("outside [0, 1]"), "{e}");
    // Bad expressions and unknown codes fail at load time.
    std::fs::create_dir_all(fx.specs()).unwrap();
    let p = fx.specs().join("bad.toml");
    std::fs::write(&p, format!("{HEAD}name = \"bad\"\ntext = \"{{t}}\"\n[source]\nfiles = [\"d/a.csv\"]\nformat = \"csv\"\n[labels]\nH = \"if(x ==\"\n")).unwrap();
    assert!(DatasetSpec::load(&p).unwrap_err().to_string().contains("label H"));
    let spec = fx.spec(
        "c",
        &format!("{HEAD}name = \"c\"\ntext = \"{{t}}\"\n[source]\nfiles = [\"d/a.csv\"]\nformat = \"csv\"\n[labels]\nXX = \"1\"\n"),
    );
    assert!(load_dataset(&spec, &fx.root(), &Taxonomy::builtin()).is_err());
    // Missing files are an error naming the pattern.
    let spec = fx.spec(
        "m",
        &format!("{HEAD}name = \"m\"\ntext = \"{{t}}\"\n[source]\nfiles = [\"nope/*.csv\"]\nformat = \"csv\"\n"),
    );
    let e = load_dataset(&spec, &fx.root(), &Taxonomy::builtin()).unwrap_err().to_string();
    assert!(e.contains("nope/*.csv"), "{e}");
}

#[test]
fn tsv_with_quotes_and_jsonl_with_missing_keys() {
    let fx = Fx::new();
    fx.file("t/x.tsv", "text\thd\tcv\n\"a \"\"quoted\"\" post\"\t1\t0\nplain\t0\t0\n");
    let spec = fx.spec(
        "t",
        &format!("{HEAD}name = \"t\"\ntext = \"{{text}}\"\n[source]\nfiles = [\"t/x.tsv\"]\nformat = \"tsv\"\n[labels]\nH = \"hd\"\nH2 = \"cv\"\n"),
    );
    let l = fx.load(&spec);
    assert_eq!(l.records[0].text, "a \"quoted\" post");
    assert_eq!(label(&l.records[0], "H"), Label::Positive);
    assert_eq!(label(&l.records[1], "H"), Label::Negative);

    fx.file("j/x.jsonl", "{\"prompt\": \"one\", \"S\": 1, \"S3\": 0}\n\n{\"prompt\": \"two\", \"V\": 0, \"SH\": 1}\n");
    let spec = fx.spec(
        "j",
        &format!("{HEAD}name = \"j\"\ntext = \"{{prompt}}\"\n[source]\nfiles = [\"j/x.jsonl\"]\nformat = \"jsonl\"\n[labels]\nS = \"S\"\nS3 = \"S3\"\nV = \"V\"\nSH = \"SH\"\n"),
    );
    let l = fx.load(&spec);
    assert_eq!(l.records.len(), 2);
    assert_eq!(label(&l.records[0], "S"), Label::Positive);
    assert_eq!(label(&l.records[0], "V"), Label::Unknown, "missing key -> unknown");
    assert_eq!(label(&l.records[1], "S"), Label::Unknown);
    assert_eq!(label(&l.records[1], "SH"), Label::Positive);
}

#[test]
fn explode_lines_and_file_name_field() {
    let fx = Fx::new();
    fx.file("g/hate_x_1k.txt.gz", "- bad one\\n- bad two\\n-\n- bad one\\n-\n");
    fx.file("g/neutral_x_1k.txt.gz", "- good one\\n-\n\n");
    let spec = fx.spec(
        "g",
        &format!(
            "{HEAD}name = \"g\"\ntext = \"{{line}}\"\n[source]\nfiles = [\"g/*.txt.gz\"]\nformat = \"lines\"\n\
             explode = {{ field = \"line\", separator = '\\n', strip_prefix = \"-\" }}\n\
             [labels]\nH = \"if(str::starts_with(_file, \\\"hate_\\\"), 1, if(str::starts_with(_file, \\\"neutral_\\\"), 0, ()))\"\n"
        ),
    );
    let l = fx.load(&spec);
    let texts: Vec<_> = l.records.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["bad one", "bad two", "bad one", "good one"]);
    assert_eq!(l.records[1].id, "g:hate_x_1k.txt.gz:0.1");
    assert_eq!(label(&l.records[0], "H"), Label::Positive);
    assert_eq!(label(&l.records[3], "H"), Label::Negative);
}

#[test]
fn group_aggregations_and_joins() {
    let fx = Fx::new();
    fx.file("s/comments.csv", "comment_id,comment_text\n1,first post\n2,second post\n3,third post\n");
    fx.file(
        "s/annotations.csv",
        "annotation,comment_id,worker,not toxic\n10,1,a,False\n11,1,b,False\n12,1,c,True\n20,2,a,True\n21,2,b,True\n22,2,c,False\n",
    );
    fx.file("s/spans.csv", "annotation,type\n10,Threat\n10,Insult\n11,Threat\n12,Insu\n20,Insult\n");
    std::fs::create_dir_all(fx.specs()).unwrap();
    let spec = fx.spec(
        "s",
        &format!(
            r#"{HEAD}name = "s"
text = "{{comment_text}}"
id = "{{comment_id}}"
meta = ["raters", "threat_frac", "labels_seen"]
[source]
files = ["s/comments.csv"]
format = "csv"
[[source.join]]
table = "per_post"
left = "comment_id"
[tables.per_post]
files = ["s/annotations.csv"]
format = "csv"
join = [{{ table = "per_ann", left = "annotation" }}]
[tables.per_post.group]
by = ["comment_id"]
[tables.per_post.group.agg]
raters = {{ op = "count" }}
threat_frac = {{ op = "mean", expr = "coalesce(threat, 0)" }}
not_toxic_frac = {{ op = "mean", expr = "if(not_toxic == \"True\", 1, 0)" }}
insulted = {{ op = "count", expr = "coalesce(insult, 0)" }}
labels_seen = {{ op = "sum", expr = "coalesce(n_spans, 0)" }}
worker_major = {{ op = "majority", expr = "worker" }}
[tables.per_ann]
files = ["s/spans.csv"]
format = "csv"
[tables.per_ann.group]
by = ["annotation"]
[tables.per_ann.group.agg]
threat = {{ op = "any", expr = "type == \"Threat\"" }}
insult = {{ op = "any", expr = "str::starts_with(type, \"Insu\")" }}
n_spans = {{ op = "count" }}
[labels]
V = "if(threat_frac > 0.5, 1, ())"
HR = "if(is_empty(raters), (), if(coalesce(not_toxic_frac, 0) > 0.5, 0, 1))"
H = "if(coalesce(insulted, 0) >= 2, 1, ())"
"#
        ),
    );
    let l = fx.load(&spec);
    assert_eq!(l.records.len(), 3);
    let (a, b, c) = (&l.records[0], &l.records[1], &l.records[2]);
    assert_eq!(a.meta["raters"], 3);
    assert_eq!(a.meta["labels_seen"], 4);
    assert_eq!(label(a, "V"), Label::Positive); // 2 of 3 raters marked a threat
    assert_eq!(label(a, "HR"), Label::Positive);
    assert_eq!(label(a, "H"), Label::Positive); // two raters have an insult span
    assert_eq!(label(b, "V"), Label::Unknown);
    assert_eq!(label(b, "HR"), Label::Negative); // 2 of 3 said not toxic
    assert_eq!(label(c, "HR"), Label::Unknown, "unmatched left-join row has empty fields");
    assert!(l.notes.iter().any(|n| n.contains("2 of 3 rows matched")), "{:?}", l.notes);
}

#[test]
fn join_on_normalized_text_and_inner_join() {
    let fx = Fx::new();
    fx.file("e/bin.csv", "comment;isHate\nYou are  awful!;0.9\nnice;0.0\n");
    fx.file("e/multi.csv", "comment;violence\nyou are awful;0.6\n");
    let spec = fx.spec(
        "e",
        &format!(
            "{HEAD}name = \"e\"\ntext = \"{{comment}}\"\n[source]\nfiles = [\"e/bin.csv\"]\nformat = \"csv\"\ndelimiter = \";\"\n\
             [[source.join]]\ntable = \"m\"\nleft = \"comment\"\nkey = \"normalized\"\nhow = \"inner\"\n\
             [tables.m]\nfiles = [\"e/multi.csv\"]\nformat = \"csv\"\ndelimiter = \";\"\n\
             [labels]\nH = \"isHate\"\nH2 = \"violence\"\n"
        ),
    );
    let l = fx.load(&spec);
    assert_eq!(l.records.len(), 1);
    assert_eq!(label(&l.records[0], "H"), Label::Soft(0.9));
    assert_eq!(label(&l.records[0], "H2"), Label::Soft(0.6));
}

fn two_source_fixture(fx: &Fx) {
    fx.file("hi/a.csv", "t,h\nSame text!,1\nheld out text,1\nonly in hi,0\nonly in hi,0\n");
    fx.file("lo/b.csv", "t,h,s3\nsame   TEXT,0,1\nlow only,1,0\nanother,0,0\n");
    fx.spec(
        "hi",
        &format!("{HEAD}name = \"hi\"\npriority = 10\ntext = \"{{t}}\"\n[source]\nfiles = [\"hi/a.csv\"]\nformat = \"csv\"\n[labels]\nH = \"h\"\n"),
    );
    fx.spec(
        "lo",
        "format_version = 1\nlicense = \"none\"\nresearch_only = true\nname = \"lo\"\npriority = 1\ntext = \"{t}\"\n[source]\nfiles = [\"lo/b.csv\"]\nformat = \"csv\"\n[labels]\nH = \"h\"\nS3 = \"s3\"\n",
    );
    fx.spec(
        "extra",
        &format!("{HEAD}name = \"extra\"\ndefault = false\ntext = \"{{t}}\"\n[source]\nfiles = [\"lo/b.csv\"]\nformat = \"csv\"\n"),
    );
}

#[test]
fn dedup_priority_fill_decontamination_and_split() {
    let fx = Fx::new();
    two_source_fixture(&fx);
    let held = fx.heldout(&["Held out, TEXT."]);
    let tax = Taxonomy::builtin();
    let built = build(&fx.opts(held.clone()), &tax).unwrap();
    let all: Vec<&Record> = built.train.iter().chain(&built.dev).collect();
    assert_eq!(all.len(), 4, "{all:?}");
    let hi = built.stats.source("hi").unwrap();
    let lo = built.stats.source("lo").unwrap();
    assert_eq!(hi.dropped_decontaminated, 1);
    assert_eq!(hi.dropped_duplicate_same_source, 1);
    assert_eq!(lo.dropped_duplicate_other_source, 1);
    assert_eq!(lo.duplicates_with_conflicting_labels, 1, "H disagrees");
    assert!(built.stats.source("extra").is_none(), "default = false is not loaded");
    // The high-priority row wins; its unknown S3 is filled from the duplicate, and the
    // hierarchy raises S.
    let same = all.iter().find(|r| r.text == "Same text!").unwrap();
    assert_eq!(same.source, "hi");
    assert_eq!(label(same, "H"), Label::Positive);
    assert_eq!(label(same, "S3"), Label::Positive);
    assert_eq!(label(same, "S"), Label::Positive);
    assert_eq!(same.meta["duplicate_sources"], serde_json::json!(["lo"]));
    assert!(!all.iter().any(|r| r.text.contains("held out")));
    // Split by hash, stable and sorted.
    for r in &built.dev {
        assert!(is_dev(&text_hash(&r.text), 0.2));
    }
    for r in &built.train {
        assert!(!is_dev(&text_hash(&r.text), 0.2));
    }
    assert!(built.train.windows(2).all(|w| w[0].id < w[1].id));

    // Byte-for-byte reproducible output.
    let mut b1 = built.clone();
    let mut b2 = build(&fx.opts(held.clone()), &tax).unwrap();
    let o1 = write_build(&mut b1, &tax, fx.dir.path().join("out1")).unwrap();
    let o2 = write_build(&mut b2, &tax, fx.dir.path().join("out2")).unwrap();
    assert_eq!(o1.train_sha256, o2.train_sha256);
    assert_eq!(o1.dev_sha256, o2.dev_sha256);
    let back = read_jsonl(&o1.train, &tax).unwrap();
    assert_eq!(back, b1.train);
    let md = std::fs::read_to_string(&o1.datasheet).unwrap();
    assert!(md.contains(&o1.train_sha256));
    assert!(md.contains("| lo | none | **yes** |"));
    let stats: DataStats = serde_json::from_str(&std::fs::read_to_string(&o1.stats).unwrap()).unwrap();
    assert_eq!(stats, b1.stats);

    // Research-only sources can be excluded with one flag; explicit names load
    // non-default specs.
    let mut o = fx.opts(held.clone());
    o.exclude_research_only = true;
    let b = build(&o, &tax).unwrap();
    assert!(b.stats.source("lo").is_none());
    assert_eq!(b.stats.excluded[0].name, "lo");
    let mut o = fx.opts(held);
    o.datasets = Some(vec!["extra".into()]);
    let b = build(&o, &tax).unwrap();
    assert_eq!(b.stats.sources.len(), 1);
    o.datasets = Some(vec!["nope".into()]);
    assert!(build(&o, &tax).is_err());
    // Named exclusions leave a default spec out and say so; an unknown name is an error.
    o.datasets = None;
    o.exclude_datasets = vec!["hi".into()];
    let b = build(&o, &tax).unwrap();
    assert!(b.stats.source("hi").is_none() && b.stats.source("lo").is_some());
    assert_eq!(b.stats.excluded.len(), 1);
    assert_eq!((b.stats.excluded[0].name.as_str(), b.stats.excluded[0].reason.as_str()), ("hi", "excluded by option"));
    o.exclude_datasets = vec!["hii".into()];
    let e = build(&o, &tax).unwrap_err().to_string();
    assert!(e.contains("hii"), "{e}");
}

#[test]
fn split_fraction_is_roughly_right_and_deterministic() {
    let n = 20_000;
    let dev = (0..n).filter(|i| is_dev(&text_hash(&format!("text number {i}")), 0.2)).count();
    assert!((3_600..4_400).contains(&dev), "{dev}");
    assert!(is_dev(&text_hash("Hello, World"), 0.2) == is_dev(&text_hash("hello world!!"), 0.2));
    assert!(!is_dev(&text_hash("x"), 0.0));
    assert!(is_dev(&text_hash("x"), 1.0));
}

#[test]
fn decontaminator_loads_plain_and_gz() {
    let fx = Fx::new();
    let p = fx.heldout(&["Hello,   World!"]);
    let d = Decontaminator::load(&p).unwrap();
    assert_eq!(d.len(), 1);
    assert!(d.contains_text("hello world"));
    assert!(!d.contains_text("hello worlds"));
    fx.file("bad.txt", "zz\n");
    assert!(Decontaminator::load(fx.root().join("bad.txt")).is_err());
}

#[test]
fn repository_specs_parse() {
    let specs = load_specs(default_spec_dir()).unwrap();
    assert!(specs.len() >= 16, "{}", specs.len());
    let tax = Taxonomy::builtin();
    for s in &specs {
        s.check_codes(&tax).unwrap();
    }
    let ro: Vec<_> = specs.iter().filter(|s| s.research_only).map(|s| s.name.as_str()).collect();
    assert_eq!(
        ro,
        [
            "formspring-cyberbullying",
            "gab-hate-corpus",
            "reddit-cssrs-suicide",
            "sdcnl-suicide-depression",
            "suicidal-intention-posts"
        ]
    );
}

fn python3() -> Option<PathBuf> {
    let ok = std::process::Command::new("python3").arg("-c").arg("import re, unicodedata").output().ok()?;
    ok.status.success().then(|| PathBuf::from("python3"))
}

#[test]
fn normalization_matches_python() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    let mut cases: Vec<String> = vec![
        "Hello,   World!".into(),
        "ＡＢＣ".into(),
        "İstanbul ΣΑΣ ὈΔΥΣΣΕΎΣ".into(),
        "e\u{301}té\u{1c}x\u{1f}y\u{85}z\u{a0}w\u{2028}v\u{200b}u".into(),
        "snake_case ½ Ⅻ ² ① ﬁ ß ẞ".into(),
        "tab\tnew\nline\r\n  end  ".into(),
        "😀 emoji 👍🏽 zwj 👩‍👩‍👧".into(),
        "Ǆ ǅ ǆ ﬃ ㎏ ㍻".into(),
        "中文，标点。日本語「かな」".into(),
        "عربي، فارسی؟ हिन्दी।".into(),
        "don't-stop @user #tag http://x.y/z?q=1".into(),
        "\u{feff}bom \u{3000}ideographic space".into(),
        "".into(),
        "   ".into(),
        "!!!".into(),
    ];
    // Every code point of a few interesting blocks, in chunks.
    for block in [(0x0000u32, 0x0250u32), (0x0300, 0x0370), (0x1E00, 0x1F00), (0x2000, 0x2200), (0x3000, 0x3100), (0xFB00, 0xFB50), (0xFF00, 0xFFF0), (0x1D400, 0x1D500)] {
        let mut s = String::new();
        for cp in block.0..block.1 {
            if let Some(c) = char::from_u32(cp) {
                s.push(c);
                if cp % 7 == 0 {
                    s.push(' ');
                }
            }
        }
        cases.push(s);
    }
    let json = serde_json::to_string(&cases).unwrap();
    let script = r#"
import json, re, sys, unicodedata
cases = json.loads(sys.stdin.read())
out = []
for t in cases:
    # Code points unassigned in this Python's Unicode version are left out of the check.
    t = "".join(c for c in t if unicodedata.category(c) != "Cn")
    src = t
    t = unicodedata.normalize("NFKC", t).lower()
    t = re.sub(r"[^\w\s]", "", t)
    out.append([src, " ".join(t.split())])
sys.stdout.write(json.dumps(out))
"#;
    let mut child = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let expected: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(expected.len(), cases.len());
    for (c, e) in &expected {
        assert_eq!(&decontam_normalize(c), e, "input {c:?}");
    }
}

#[allow(dead_code)]
fn _unused(_: &Path) {}

#[test]
fn holistic_bias_generates_template_descriptor_noun_rows() {
    let fx = Fx::new();
    fx.file(
        "hb/descriptors.json",
        r#"{"ability": {"auditory": [{"descriptor": "Deaf", "preference": "reviewed"},
                                     {"descriptor": "slur-ish", "preference": "dispreferred"}]},
            "nonce": ["blicket"],
            "sexual_orientation": {"queer": ["LGBTQ"]}}"#,
    );
    fx.file("hb/nouns.json", r#"{"female": [["woman", "women"], ["mom", "moms"]], "neutral": [["person", "people"]]}"#);
    fx.file(
        "hb/sentence_templates.json",
        r#"{"I'm {noun_phrase}.": {}, "{plural_noun_phrase} are great.": {}, "I hate {plural_noun_phrase}.": {}}"#,
    );
    let spec = fx.spec(
        "hb",
        &format!(
            "{HEAD}name = \"hb\"\ntext = \"{{sentence}}\"\nid = \"{{_row}}\"\nmeta = [\"axis\", \"noun_gender\"]\n\
             [source]\nfiles = [\"hb/descriptors.json\"]\nformat = \"holistic-bias\"\n\
             filter = '''preference != \"dispreferred\" && template != \"I hate {{plural_noun_phrase}}.\"'''\n\
             [labels]\nH = \"0\"\nS = 'if(axis == \"nonce\", (), 0)'\n"
        ),
    );
    let l = fx.load(&spec);
    let texts: Vec<_> = l.records.iter().map(|r| r.text.as_str()).collect();
    // 2 templates kept × 3 descriptors kept × 2 noun genders, in the files' order; the
    // female noun rotates with the template's and the descriptor's index.
    assert_eq!(
        texts,
        [
            "I'm a Deaf woman.",
            "I'm a Deaf person.",
            "I'm a blicket woman.",
            "I'm a blicket person.",
            "I'm an LGBTQ mom.",
            "I'm an LGBTQ person.",
            "Deaf moms are great.",
            "Deaf people are great.",
            "Blicket moms are great.",
            "Blicket people are great.",
            "LGBTQ women are great.",
            "LGBTQ people are great.",
        ],
        "rows in template, descriptor, gender order; the dispreferred descriptor and the hate template filtered out"
    );
    assert!(l.records.iter().all(|r| label(r, "H") == Label::Negative));
    assert_eq!(label(&l.records[2], "S"), Label::Unknown, "the nonce axis leaves S unknown");
    assert_eq!(label(&l.records[0], "S"), Label::Negative);
    assert_eq!(l.records[1].meta["noun_gender"], "neutral");

    // A template without a placeholder is an error that names the file.
    fx.file("hb/sentence_templates.json", r#"{"No placeholder here.": {}}"#);
    let e = load_dataset(&spec, &fx.root(), &Taxonomy::builtin()).unwrap_err().to_string();
    assert!(e.contains("sentence_templates.json") && e.contains("No placeholder here."), "{e}");
    // So is a missing sibling file.
    std::fs::remove_file(fx.root().join("hb/nouns.json")).unwrap();
    let e = load_dataset(&spec, &fx.root(), &Taxonomy::builtin()).unwrap_err().to_string();
    assert!(e.contains("nouns.json"), "{e}");
}
