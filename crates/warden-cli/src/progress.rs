use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr, hidden when stderr is not a terminal or under CI, so logs
/// stay clean and piping output never garbles it.
pub fn bar(len: u64, what: &str, bytes: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    let tmpl = if bytes {
        "{msg:>10} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{msg:>10} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {per_sec} ETA {eta}"
    };
    pb.set_style(ProgressStyle::with_template(tmpl).unwrap().progress_chars("=> "));
    pb.set_message(what.to_owned());
    pb
}

pub fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]").unwrap());
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

fn target() -> ProgressDrawTarget {
    if std::env::var_os("CI").is_some() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}
