//! Plumbing shared by the stages: a sink that builds the output text and, in aligned mode,
//! maps every output char back through the previous alignment.

use std::ops::Range;

pub(crate) type Align = Vec<Range<usize>>;

/// What every built-in stage implements: rewrite `text`, keeping `align` (one original
/// range per char of `text`) in sync when it is given. With `align == None` only the text
/// is produced; both modes must produce the same text.
pub(crate) trait Apply {
    fn apply(&self, text: &mut String, align: Option<&mut Align>);
}

/// Output of a rewriting stage. Positions passed to [`Out::push`] are *char indices of the
/// stage's input*, which the sink turns into original byte ranges.
pub(crate) struct Out<'a> {
    text: String,
    align: Option<(Align, &'a [Range<usize>])>,
}

impl Out<'_> {
    /// Emits `c`, produced from input chars `from..to` (`to > from`).
    #[inline]
    pub(crate) fn push(&mut self, c: char, from: usize, to: usize) {
        self.text.push(c);
        if let Some((new, old)) = &mut self.align {
            let r = if to == from + 1 {
                old[from].clone()
            } else {
                // Starts are non-decreasing, so the first start is the smallest; ends of
                // merged ranges need not be, so take the largest.
                let end = old[from..to]
                    .iter()
                    .map(|r| r.end)
                    .max()
                    .unwrap_or(old[from].end);
                old[from].start..end
            };
            new.push(r);
        }
    }
}

/// Runs `f` over the current text, replacing text (and alignment) by what it emits.
pub(crate) fn rewrite(
    text: &mut String,
    align: Option<&mut Align>,
    f: impl FnOnce(&str, &mut Out<'_>),
) {
    match align {
        None => {
            let mut out = Out {
                text: String::with_capacity(text.len() + 8),
                align: None,
            };
            f(text, &mut out);
            *text = out.text;
        }
        Some(al) => {
            let (t, a) = {
                let mut out = Out {
                    text: String::with_capacity(text.len() + 8),
                    align: Some((Vec::with_capacity(al.len() + 8), &al[..])),
                };
                f(text, &mut out);
                (out.text, out.align.map(|(a, _)| a).unwrap_or_default())
            };
            *text = t;
            *al = a;
        }
    }
}

/// The char before byte `i` of `s` (`i` on a char boundary).
#[inline]
pub(crate) fn char_before(s: &str, i: usize) -> Option<char> {
    let b = s.as_bytes();
    if i == 0 {
        None
    } else if b[i - 1] < 0x80 {
        Some(b[i - 1] as char)
    } else {
        s[..i].chars().next_back()
    }
}

/// The char at byte `i` of `s` (`i` on a char boundary).
#[inline]
pub(crate) fn char_at(s: &str, i: usize) -> Option<char> {
    let b = s.as_bytes();
    if i >= b.len() {
        None
    } else if b[i] < 0x80 {
        Some(b[i] as char)
    } else {
        s[i..].chars().next()
    }
}

/// A `&'static str` holding the single ASCII char `b`.
#[inline]
pub(crate) fn ascii_str(b: u8) -> &'static str {
    const ALL: &str = "\0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\
        \x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \
        !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`\
        abcdefghijklmnopqrstuvwxyz{|}~\x7f";
    let i = usize::from(b & 0x7f);
    &ALL[i..i + 1]
}

#[cfg(test)]
mod tests {
    #[test]
    fn ascii_str_covers_all_ascii() {
        for b in 0u8..128 {
            assert_eq!(super::ascii_str(b).as_bytes(), &[b]);
        }
    }
}
