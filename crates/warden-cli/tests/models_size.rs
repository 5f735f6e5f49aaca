//! The committed models (embedded in the binary by build.rs) stay within the 20 MB the
//! issues allow for `models/`.

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

#[test]
fn committed_models_fit_in_20_mb() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let total = dir_size(&models);
    assert!(total > 1_000_000, "models/ holds only {total} bytes: is the default model missing?");
    assert!(total <= 20_000_000, "models/ holds {total} bytes, over the 20 MB limit");
}
