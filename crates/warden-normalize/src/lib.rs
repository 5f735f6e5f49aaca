//! Offset-keeping text normalization for Warden.
//!
//! Obfuscated abuse — `k1ll`, `ｆｕｃｋ`, `w h o r e s`, `рussу` with Cyrillic letters,
//! `ki\u{200B}ll` with a zero-width space, `fuuuuck` — should look to the classifiers like
//! the word it imitates. At the same time every span found later (a matched rule word, a
//! chunk to redact) is found in *normalized* text but must point at the user's *original*
//! bytes. So every stage here rewrites a [`Normalized`] value and keeps its alignment: one
//! original byte range per char of the normalized text.
//!
//! # Stages
//!
//! One public struct per stage, each implementing [`Normalizer`] (and [`Stage`], which adds
//! an alignment-free text path); [`Sequence`] composes stages and is a stage itself, in the
//! style of huggingface/tokenizers. [`default_pipeline`] runs, in this order:
//!
//! 1. [`StripInvisible`] — zero-width chars, bidi controls, soft hyphens, variation
//!    selectors, tags: they split words without being seen. Runs first so that NFKC can
//!    compose a letter with a mark that an invisible char separated from it.
//! 2. [`Nfkc`] — compatibility forms to plain forms: fullwidth, ligatures, mathematical
//!    alphanumerics, circled letters, superscripts; composes letters with their marks.
//! 3. [`FoldConfusables`] — homoglyphs (Cyrillic/Greek/Armenian look-alikes, small capitals,
//!    enclosed letters) to ASCII, accented Latin letters to their base letter, marks stacked on
//!    ASCII dropped. Runs before case folding because its table is case-sensitive (`Η` looks
//!    like `H`, `η` like `n`).
//! 4. [`CaseFold`] — lowercase.
//! 5. [`Leetspeak`] — digits and `@ $ !` read as letters inside words only (`k1ll`, `$hit`),
//!    numbers stay numbers (`2024`, `1st`, `covid19`).
//! 6. [`Despace`] — three or more single letters separated by one space, `.`, `-` or `_`
//!    are joined (`w h o r e s`, `f.u.c.k`); two never are (`U.S.`); a leading article stays
//!    apart (`a w h o r e` → `a whore`, but `a s s h o l e` → `asshole`).
//! 7. [`CollapseRepeats`] — runs of three or more identical chars become two (`fuuuuck` →
//!    `fuuck`), digits exempt.
//!
//! Each stage's documentation states its exact rule.
//!
//! # Guarantees
//!
//! * **Alignment.** After any stage, `alignment().len()` equals the number of chars of the
//!   text, every range lies on char boundaries inside the original, and range starts never
//!   decrease. A char produced from one original char carries that char's range (`ﬁ` → `f`,
//!   `i` both carry it); a char produced from several (a collapsed run) spans all of them;
//!   deleted chars (invisibles, joined separators, dropped marks) simply vanish. Hence
//!   [`Normalized::original_span`] of a word found in normalized text covers exactly the
//!   original bytes it came from: `whores` in `you are a w h o r e s ok` maps back to
//!   `w h o r e s`.
//! * **Idempotence.** `p(p(x)) == p(x)` for the default pipeline `p`: the stage order is
//!   chosen so that no later stage creates input an earlier one would still change, and
//!   every stage is idempotent on its own.
//! * **Two paths, one text.** [`Stage::normalize_in_place`] / [`TextNormalizer::normalize_text`]
//!   skip building the alignment (the hot path for classification) and produce exactly the
//!   text that the aligned [`Normalizer::normalize`] path produces.
//!
//! The test suite proves these with proptest on arbitrary and adversarial strings, plus an
//! exhaustive check over every Unicode scalar value.
//!
//! # Speed
//!
//! ASCII is NFKC-invariant, has no invisibles and no homoglyphs, so those stages return at
//! once on ASCII text; case folding of ASCII is done in place; leetspeak, joining and
//! collapsing scan bytes and only copy when they find something to change. No stage
//! allocates per char.

mod case;
mod collapse;
mod confusables;
mod despace;
mod invisible;
mod leet;
mod nfkc;
mod out;

pub use case::CaseFold;
pub use collapse::CollapseRepeats;
pub use confusables::{fold_char, FoldConfusables};
pub use despace::{Despace, ARTICLE_EXCEPTIONS};
pub use invisible::{is_invisible, StripInvisible};
pub use leet::Leetspeak;
pub use nfkc::Nfkc;
pub use warden_core::{Normalized, Normalizer};

/// Identifies the default pipeline's behaviour. Bump it whenever the text the default
/// pipeline produces changes, so that models trained on normalized text can refuse to load
/// under a different normalization.
pub const PIPELINE_ID: &str = "warden-normalize/1";

/// A [`Normalizer`] that can also produce its text without building an alignment.
///
/// [`Stage::normalize_in_place`] must leave `text` exactly equal to what
/// `self.normalize_str(text).text()` would be. The provided implementation does just that
/// through the aligned path, so any normalizer can become a stage with
/// `impl Stage for MyNormalizer {}` (or be wrapped in [`AlignedOnly`]); the built-in stages
/// override it with a faster path.
pub trait Stage: Normalizer {
    fn normalize_in_place(&self, text: &mut String) {
        let n = self.normalize_str(text);
        *text = n.into_parts().1;
    }
}

/// Runs the internal `Apply` of a built-in stage in aligned mode on a [`Normalized`].
pub(crate) fn apply_aligned<A: out::Apply + ?Sized>(stage: &A, n: &mut Normalized) {
    let (original_len, mut text, mut align) =
        std::mem::replace(n, Normalized::new("")).into_parts();
    stage.apply(&mut text, Some(&mut align));
    *n = Normalized::from_parts(original_len, text, align);
}

macro_rules! stage_impl {
    ($t:ty) => {
        impl $crate::Normalizer for $t {
            fn normalize(&self, text: &mut $crate::Normalized) {
                $crate::apply_aligned(self, text)
            }
        }

        impl $crate::Stage for $t {
            fn normalize_in_place(&self, text: &mut String) {
                $crate::out::Apply::apply(self, text, None)
            }
        }
    };
}
pub(crate) use stage_impl;

/// Makes any [`Normalizer`] a [`Stage`] whose text-only path goes through the aligned one.
#[derive(Debug, Clone, Default)]
pub struct AlignedOnly<N>(pub N);

impl<N: Normalizer> Normalizer for AlignedOnly<N> {
    fn normalize(&self, text: &mut Normalized) {
        self.0.normalize(text)
    }
}

impl<N: Normalizer> Stage for AlignedOnly<N> {}

/// Stages applied one after another; itself a stage. Each stage sees the previous stage's
/// text, and alignments compose: the result still points into the original.
#[derive(Default)]
pub struct Sequence(pub Vec<Box<dyn Stage>>);

impl Sequence {
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        Self(stages)
    }

    /// Appends a stage.
    pub fn with(mut self, stage: impl Stage + 'static) -> Self {
        self.0.push(Box::new(stage));
        self
    }

    pub fn stages(&self) -> &[Box<dyn Stage>] {
        &self.0
    }

    /// The normalized text of `s`, without alignment.
    pub fn normalize_text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        self.normalize_in_place(&mut out);
        out
    }
}

impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sequence({} stages)", self.0.len())
    }
}

impl Normalizer for Sequence {
    fn normalize(&self, text: &mut Normalized) {
        for stage in &self.0 {
            stage.normalize(text);
        }
    }
}

impl Stage for Sequence {
    fn normalize_in_place(&self, text: &mut String) {
        for stage in &self.0 {
            stage.normalize_in_place(text);
        }
    }
}

/// The default pipeline: [`StripInvisible`] → [`Nfkc`] → [`FoldConfusables`] → [`CaseFold`]
/// → [`Leetspeak`] → [`Despace`] → [`CollapseRepeats`]. Idempotent.
pub fn default_pipeline() -> Sequence {
    Sequence::default()
        .with(StripInvisible)
        .with(Nfkc)
        .with(FoldConfusables)
        .with(CaseFold)
        .with(Leetspeak)
        .with(Despace)
        .with(CollapseRepeats)
}

/// The default pipeline behind a convenient API: aligned normalization through
/// [`Normalizer`], and [`TextNormalizer::normalize_text`] / [`TextNormalizer::normalize_into`]
/// for the classifier's hot path, which skip the alignment and give the same text.
///
/// ```
/// use warden_normalize::{Normalizer, TextNormalizer};
///
/// let norm = TextNormalizer::new();
/// assert_eq!(norm.normalize_text("You are a K1LLER, ｆｕｃｋ"), "you are a killer, fuck");
///
/// let original = "you are a w h o r e s ok";
/// let n = norm.normalize_str(original);
/// assert_eq!(n.text(), "you are a whores ok");
/// let at = n.text().find("whores").unwrap();
/// assert_eq!(&original[n.original_span(at..at + 6)], "w h o r e s");
/// ```
#[derive(Debug)]
pub struct TextNormalizer {
    pipeline: Sequence,
}

impl TextNormalizer {
    /// The [`default_pipeline`].
    pub fn new() -> Self {
        Self {
            pipeline: default_pipeline(),
        }
    }

    /// A custom pipeline.
    pub fn with_pipeline(pipeline: Sequence) -> Self {
        Self { pipeline }
    }

    pub fn pipeline(&self) -> &Sequence {
        &self.pipeline
    }

    /// The normalized text of `s`, without alignment.
    pub fn normalize_text(&self, s: &str) -> String {
        self.pipeline.normalize_text(s)
    }

    /// Writes the normalized text of `s` into `out` (cleared first), without alignment.
    pub fn normalize_into(&self, s: &str, out: &mut String) {
        out.clear();
        out.push_str(s);
        self.pipeline.normalize_in_place(out);
    }
}

impl Default for TextNormalizer {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Sequence> for TextNormalizer {
    fn from(pipeline: Sequence) -> Self {
        Self { pipeline }
    }
}

impl Normalizer for TextNormalizer {
    fn normalize(&self, text: &mut Normalized) {
        self.pipeline.normalize(text)
    }
}

impl Stage for TextNormalizer {
    fn normalize_in_place(&self, text: &mut String) {
        self.pipeline.normalize_in_place(text)
    }
}
