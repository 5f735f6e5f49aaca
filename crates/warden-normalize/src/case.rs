use crate::out::{rewrite, Align, Apply};

/// Full lowercase mapping (`char::to_lowercase`): `KiLL` → `kill`, `ΑΣ` → `ασ`, `İ` → `i̇`.
/// ASCII text is lowercased in place (one char stays one char, so the alignment is
/// untouched); a char that lowercases to several chars gives each of them its range.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseFold;

fn changes(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    let mut l = c.to_lowercase();
    l.next() != Some(c) || l.next().is_some()
}

impl Apply for CaseFold {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        if text.is_ascii() {
            text.make_ascii_lowercase();
            return;
        }
        if !text.chars().any(changes) {
            return;
        }
        rewrite(text, align, |s, out| {
            for (i, c) in s.chars().enumerate() {
                if c.is_ascii() {
                    out.push(c.to_ascii_lowercase(), i, i + 1);
                } else {
                    for l in c.to_lowercase() {
                        out.push(l, i, i + 1);
                    }
                }
            }
        });
    }
}

crate::stage_impl!(CaseFold);
