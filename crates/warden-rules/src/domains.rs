//! Domain blocklists.

use std::collections::HashSet;
use std::path::Path;

use crate::RulesError;

/// A set of blocked domains. An entry blocks the domain itself and every subdomain.
#[derive(Debug, Clone, Default)]
pub struct DomainList {
    domains: HashSet<String>,
}

/// Lower-cases and strips a leading `*.` or `.` and a trailing `.` (the DNS root).
fn normalize_domain(d: &str) -> String {
    let d = d.trim();
    let d = d
        .strip_prefix("*.")
        .or_else(|| d.strip_prefix('.'))
        .unwrap_or(d);
    let d = d.strip_suffix('.').unwrap_or(d);
    d.to_lowercase()
}

impl DomainList {
    /// Loads a blocklist: one domain per line; `#` starts a comment (whole line or the
    /// rest of a line); blank lines are ignored. Entries are lower-cased and a leading
    /// `*.` or `.` is stripped (`*.example.com` and `.example.com` both mean
    /// `example.com` and everything under it). Hosts-file lines (`0.0.0.0 example.com`,
    /// `127.0.0.1 example.com`) are accepted, so common published blocklists load as
    /// they are. Anything else with spaces, a `/` or a `:` (a URL, say) is an error naming
    /// the file and line.
    pub fn load(path: &Path) -> Result<DomainList, RulesError> {
        let origin = path.display().to_string();
        let s = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut domains = HashSet::new();
        for (i, line) in s.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let entry = match fields.as_slice() {
                [d] => *d,
                ["0.0.0.0" | "127.0.0.1" | "::" | "::1", d] => *d,
                _ => {
                    return Err(RulesError::Line {
                        origin,
                        line: i as u64 + 1,
                        message: format!("expected one domain, got {line:?}"),
                    })
                }
            };
            if entry.contains(['/', ':']) {
                return Err(RulesError::Line {
                    origin,
                    line: i as u64 + 1,
                    message: format!("{entry:?} is not a domain name (a URL?)"),
                });
            }
            let d = normalize_domain(entry);
            if !d.is_empty() {
                domains.insert(d);
            }
        }
        Ok(DomainList { domains })
    }

    /// Builds a list from domain names, normalised as in [`Self::load`]; empty ones are
    /// skipped.
    pub fn from_domains<I: IntoIterator<Item = S>, S: AsRef<str>>(domains: I) -> DomainList {
        DomainList {
            domains: domains
                .into_iter()
                .map(|d| normalize_domain(d.as_ref()))
                .filter(|d| !d.is_empty())
                .collect(),
        }
    }

    /// The entry that blocks `host`: the host itself or its nearest listed parent domain.
    /// `a.b.example.com` is blocked by `example.com` (or `b.example.com`), never by
    /// `ample.com`: parents are only taken at dots. Case-insensitive; a trailing `.` is
    /// ignored.
    pub fn blocked(&self, host: &str) -> Option<&str> {
        if self.domains.is_empty() {
            return None;
        }
        let host = host.trim();
        let host = host.strip_suffix('.').unwrap_or(host);
        let lowered;
        let mut h: &str = if host.chars().any(char::is_uppercase) {
            lowered = host.to_lowercase();
            &lowered
        } else {
            host
        };
        loop {
            if let Some(d) = self.domains.get(h) {
                return Some(d.as_str());
            }
            match h.find('.') {
                Some(i) => h = &h[i + 1..],
                None => return None,
            }
        }
    }

    /// Number of distinct entries.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn blocks_hosts_and_their_subdomains_only() {
        let l =
            DomainList::from_domains(["Example.com", "*.bad.org", ".worse.net", "", "spam.co.uk."]);
        assert_eq!(l.len(), 4);
        assert_eq!(l.blocked("example.com"), Some("example.com"));
        assert_eq!(l.blocked("a.b.EXAMPLE.com"), Some("example.com"));
        assert_eq!(l.blocked("www.example.com."), Some("example.com"));
        assert_eq!(l.blocked("bad.org"), Some("bad.org"));
        assert_eq!(l.blocked("x.worse.net"), Some("worse.net"));
        assert_eq!(l.blocked("mail.spam.co.uk"), Some("spam.co.uk"));
        // Suffixes that are not at a dot do not count.
        assert_eq!(l.blocked("ample.com"), None);
        assert_eq!(l.blocked("notexample.com"), None);
        assert_eq!(l.blocked("example.com.au"), None);
        assert_eq!(l.blocked("co.uk"), None);
        assert_eq!(l.blocked(""), None);
    }

    #[test]
    fn nearest_listed_parent_wins() {
        let l = DomainList::from_domains(["example.com", "b.example.com"]);
        assert_eq!(l.blocked("a.b.example.com"), Some("b.example.com"));
        assert_eq!(l.blocked("c.example.com"), Some("example.com"));
    }

    #[test]
    fn loads_files_with_comments_and_hosts_lines() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "# blocklist\n\nEvil.example  # inline\n0.0.0.0 ads.example.net\n*.tracker.io\n"
        )
        .unwrap();
        let l = DomainList::load(f.path()).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.blocked("x.evil.example"), Some("evil.example"));
        assert_eq!(l.blocked("ads.example.net"), Some("ads.example.net"));
        assert_eq!(l.blocked("example.net"), None);
        assert_eq!(l.blocked("a.tracker.io"), Some("tracker.io"));
    }

    #[test]
    fn load_errors_name_file_and_line() {
        for (text, line) in [
            ("ok.com\nhttps://bad.com/x\n", 2),
            ("a.com\nb.com\ntwo words\n", 3),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(text.as_bytes()).unwrap();
            let e = DomainList::load(f.path()).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{}, line {line}:", f.path().display())),
                "{e}"
            );
        }
        assert!(DomainList::load(Path::new("/nonexistent/list.txt")).is_err());
    }
}
