use crate::out::{rewrite, Align, Apply};

/// Shortens runs of three or more identical chars to two: `fuuuuck` → `fuuck`, `!!!!!` →
/// `!!`, `sooooo` → `soo`. Two is kept (not one) so that ordinary doubled letters (`good`,
/// `kill`, `ass`) are never touched and every elongation of a word reads the same.
/// ASCII digits are exempt, so numbers keep their value (`1000` stays `1000`).
///
/// The first char of a run keeps its range; the second covers the rest of the run. Runs
/// shrink to two, never to one, so a second application changes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollapseRepeats;

fn has_long_run(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        if b.len() < 3 {
            return false;
        }
        let (x, y, z) = (&b[..b.len() - 2], &b[1..b.len() - 1], &b[2..]);
        // Branch-free per block so the comparison vectorizes; stop at the first hit block.
        const BLOCK: usize = 512;
        return x
            .chunks(BLOCK)
            .zip(y.chunks(BLOCK))
            .zip(z.chunks(BLOCK))
            .any(|((x, y), z)| {
                x.iter().zip(y).zip(z).fold(false, |acc, ((&a, &b), &c)| {
                    acc | ((a == b) & (b == c) & !a.is_ascii_digit())
                })
            });
    }
    let mut prev = None;
    let mut len = 0;
    for c in s.chars() {
        if Some(c) == prev {
            len += 1;
            if len >= 3 && !c.is_ascii_digit() {
                return true;
            }
        } else {
            prev = Some(c);
            len = 1;
        }
    }
    false
}

impl Apply for CollapseRepeats {
    fn apply(&self, text: &mut String, align: Option<&mut Align>) {
        if !has_long_run(text) {
            return;
        }
        rewrite(text, align, |s, out| {
            let mut chars = s.chars();
            let mut cur = chars.next();
            let mut idx = 0;
            while let Some(c) = cur {
                let start = idx;
                let mut len = 1;
                loop {
                    cur = chars.next();
                    idx += 1;
                    if cur == Some(c) {
                        len += 1;
                    } else {
                        break;
                    }
                }
                if len >= 3 && !c.is_ascii_digit() {
                    out.push(c, start, start + 1);
                    out.push(c, start + 1, start + len);
                } else {
                    for k in start..start + len {
                        out.push(c, k, k + 1);
                    }
                }
            }
        });
    }
}

crate::stage_impl!(CollapseRepeats);
