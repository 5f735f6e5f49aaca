//! Turning a parsed record into a [`Document`] (shared by the JSONL and Parquet readers).

use serde_json::Value;

use crate::{Document, FieldMap, Item, Location, ReadError, ReadErrorKind, EXCERPT_BYTES};

/// First ≤ [`EXCERPT_BYTES`] bytes of `bytes`, decoded lossily.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let end = bytes.len().min(EXCERPT_BYTES);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub(crate) fn error(location: Location, kind: ReadErrorKind, excerpt_bytes: &[u8]) -> Item {
    Item::Error(ReadError {
        location,
        kind,
        excerpt: excerpt(excerpt_bytes),
    })
}

/// Renders a scalar-ish field value as a string: strings as is, everything else as
/// compact JSON. `None` for null.
fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Builds a document from a parsed record. `excerpt_bytes` is what goes into the excerpt
/// of an error (the raw line for JSONL); `line` is the exact line (JSONL only).
pub(crate) fn to_item(
    raw: Value,
    fields: &FieldMap,
    stem: &str,
    location: Location,
    excerpt_bytes: &[u8],
    line: Option<&str>,
) -> Item {
    let Value::Object(map) = &raw else {
        return error(location, ReadErrorKind::NotAnObject, excerpt_bytes);
    };
    let text = match map.get(&fields.text) {
        None | Some(Value::Null) => {
            return error(location, ReadErrorKind::MissingText, excerpt_bytes)
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return error(location, ReadErrorKind::TextNotString, excerpt_bytes),
    };
    let id = map
        .get(&fields.id)
        .and_then(render)
        .unwrap_or_else(|| format!("{stem}:{}", location.line));
    let source_field = fields.source.as_deref().unwrap_or("source");
    let source = map
        .get(source_field)
        .and_then(render)
        .filter(|s| !s.is_empty())
        .or_else(|| match map.get(&fields.url) {
            Some(Value::String(u)) => url_host(u),
            _ => None,
        });
    Item::Doc(Document {
        id,
        text,
        source,
        raw,
        line: line.map(str::to_owned),
        location,
    })
}

/// The host of a URL, lower-cased (ASCII), without scheme, userinfo, port, path, trailing
/// dot or IPv6 brackets: `https://User:pw@Sub.Example.COM:8080/x` → `sub.example.com`.
/// A URL without `scheme://` is read as `host[:port][/path]` (`example.com/a` →
/// `example.com`). `www.` is kept. `None` when no host can be found.
///
/// Parsed by hand (no IDNA processing: internationalised hosts are kept as written,
/// lower-cased only in their ASCII letters) to keep the dependency tree small.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url.strip_prefix("//").unwrap_or(url),
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let hostport = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let host = if let Some(stripped) = hostport.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        stripped.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::url_host;

    #[test]
    fn hosts() {
        assert_eq!(
            url_host("https://User:pw@Sub.Example.COM:8080/x").as_deref(),
            Some("sub.example.com")
        );
        assert_eq!(url_host("http://www.a.org").as_deref(), Some("www.a.org"));
        assert_eq!(url_host("http://a.org./p?q#f").as_deref(), Some("a.org"));
        assert_eq!(url_host("https://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(url_host("example.com/a").as_deref(), Some("example.com"));
        assert_eq!(url_host("//cdn.x.net/a").as_deref(), Some("cdn.x.net"));
        assert_eq!(url_host("http://a.org?x=@b").as_deref(), Some("a.org"));
        assert_eq!(url_host(""), None);
        assert_eq!(url_host("https:///path"), None);
        assert_eq!(url_host("not a url"), None);
    }
}
