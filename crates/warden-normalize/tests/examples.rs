//! The documented examples, one by one.

use warden_normalize::*;

fn norm(s: &str) -> String {
    let p = TextNormalizer::new();
    let text = p.normalize_text(s);
    assert_eq!(
        p.normalize_str(s).text(),
        text,
        "aligned and text-only paths differ on {s:?}"
    );
    text
}

/// The original bytes behind the first occurrence of `needle` in the normalized `s`.
fn span_of<'a>(s: &'a str, needle: &str) -> &'a str {
    let n = TextNormalizer::new().normalize_str(s);
    let at = n
        .text()
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {:?}", n.text()));
    &s[n.original_span(at..at + needle.len())]
}

#[test]
fn leetspeak_inside_words() {
    assert_eq!(norm("k1ll"), "kill");
    assert_eq!(norm("D3ath"), "death");
    assert_eq!(norm("$hit"), "shit");
    assert_eq!(norm("@ss"), "ass");
    assert_eq!(norm("a$$"), "ass");
    assert_eq!(norm("sh1t"), "shit");
    assert_eq!(norm("b!tch"), "bitch");
    assert_eq!(norm("p0rn and n00bs"), "porn and noobs");
    assert_eq!(norm("I will k1ll you"), "i will kill you");
    assert_eq!(Leetspeak.normalize_str("K1LL").text(), "KiLL");
}

#[test]
fn numbers_and_punctuation_stay_readable() {
    for s in [
        "2024", "1st", "3pm", "covid19", "9/11", "mp3", "$5", "100%", "10:30", "1000",
    ] {
        assert_eq!(norm(s), s);
    }
    assert_eq!(norm("U.S."), "u.s.");
    assert_eq!(norm("e.g. a b"), "e.g. a b");
    assert_eq!(norm("Hello! How are you?"), "hello! how are you?");
    assert_eq!(
        norm("On 9/11/2001 at 8:46am, 1st responders arrived."),
        "on 9/11/2001 at 8:46am, 1st responders arrived."
    );
    assert_eq!(
        norm("The U.S. and the U.K. met in 2024!!"),
        "the u.s. and the u.k. met in 2024!!"
    );
    assert_eq!(norm("Wow!!!"), "wow!!");
}

#[test]
fn spaced_letters_are_joined() {
    assert_eq!(norm("w h o r e s"), "whores");
    assert_eq!(norm("you are a w h o r e s ok"), "you are a whores ok");
    assert_eq!(norm("f.u.c.k"), "fuck");
    assert_eq!(norm("f.u.c.k."), "fuck.");
    assert_eq!(norm("k-i-l-l yourself"), "kill yourself");
    assert_eq!(norm("s_l_u_t"), "slut");
    assert_eq!(norm("U.S.A."), "usa.");
    assert_eq!(norm("a s s h o l e"), "asshole");
    assert_eq!(norm("i d i o t"), "idiot");
    assert_eq!(norm("i h a t e you"), "i hate you");
    assert_eq!(norm("a s s"), "ass");
    assert_eq!(norm("a b"), "a b");
    assert_eq!(norm("f  u  c  k"), "f  u  c  k");
}

#[test]
fn compatibility_forms_and_homoglyphs() {
    assert_eq!(norm("ｆｕｃｋ"), "fuck");
    assert_eq!(norm("ﬁlthy"), "filthy");
    assert_eq!(norm("𝐤𝐢𝐥𝐥"), "kill");
    assert_eq!(norm("ⓚⓘⓛⓛ"), "kill");
    assert_eq!(norm("рussу"), "pussy"); // Cyrillic р, у
    assert_eq!(norm("ΗΕLLΟ"), "hello"); // Greek capitals
    assert_eq!(norm("ᴋɪʟʟ"), "kill");
    assert_eq!(norm("🅺🅸🅻🅻"), "kill");
    assert_eq!(norm("über café naïve"), "uber cafe naive");
    assert_eq!(norm("cafe\u{301}"), "cafe");
    assert_eq!(norm("k\u{332}i\u{332}l\u{332}l\u{332}"), "kill");
    assert_eq!(norm("straße"), "strasse");
    // other scripts keep their letters and marks
    assert_eq!(norm("नमस्ते"), "नमस्ते");
    assert_eq!(norm("日本語"), "日本語");
}

#[test]
fn invisible_chars_are_removed() {
    assert_eq!(norm("ki\u{200B}ll"), "kill");
    assert_eq!(norm("k\u{200D}i\u{2060}l\u{FEFF}l\u{00AD}"), "kill");
    assert_eq!(norm("\u{202E}llik\u{202C}"), "llik");
}

#[test]
fn repeats_collapse_to_two() {
    assert_eq!(norm("fuuuuck"), "fuuck");
    assert_eq!(norm("!!!!!"), "!!");
    assert_eq!(norm("good"), "good");
    assert_eq!(norm("sooooo gooood"), "soo good");
}

#[test]
fn spans_map_back_to_the_obfuscated_original() {
    assert_eq!(span_of("you are a w h o r e s ok", "whores"), "w h o r e s");
    assert_eq!(span_of("I will k1ll you", "kill"), "k1ll");
    assert_eq!(span_of("so ｆｕｃｋ off", "fuck"), "ｆｕｃｋ");
    assert_eq!(span_of("fuuuuck off", "fuuck"), "fuuuuck");
    assert_eq!(span_of("ki\u{200B}ll me", "kill"), "ki\u{200B}ll");
    assert_eq!(span_of("big рussу cat", "pussy"), "рussу");
    assert_eq!(span_of("ﬁlthy", "f"), "ﬁ");
    assert_eq!(span_of("ﬁlthy", "i"), "ﬁ");
    assert_eq!(span_of("Ü", "u"), "Ü");
    assert_eq!(span_of("u\u{308}ber", "u"), "u\u{308}");
    assert_eq!(span_of("k.i.l.l them", "kill"), "k.i.l.l");
}

#[test]
fn stages_compose_as_a_sequence() {
    let seq = Sequence::default().with(CaseFold).with(Leetspeak);
    assert_eq!(seq.normalize_text("K1LL"), "kill");
    let nested = Sequence::default().with(seq).with(CollapseRepeats);
    assert_eq!(nested.normalize_str("K1LLLL").text(), "kill");
    assert_eq!(
        TextNormalizer::from(Sequence::default()).normalize_text("AbC"),
        "AbC"
    );

    struct Reverse;
    impl Normalizer for Reverse {
        fn normalize(&self, text: &mut Normalized) {
            let (len, t, mut a) = std::mem::replace(text, Normalized::new("")).into_parts();
            a.reverse();
            *text = Normalized::from_parts(len, t.chars().rev().collect(), a);
        }
    }
    let custom = Sequence::default()
        .with(AlignedOnly(Reverse))
        .with(CaseFold);
    assert_eq!(custom.normalize_text("AbC"), "cba");
}

#[test]
fn default_pipeline_is_idempotent_on_examples() {
    let p = TextNormalizer::new();
    for s in [
        "you are a w h o r e s ok",
        "k1ll D3ath $hit @ss a$$ sh1t b!tch",
        "ｆｕｃｋ fuuuuck рussу ki\u{200B}ll",
        "a b c d e f g h",
        "x.a b c d.e.f",
    ] {
        let once = p.normalize_text(s);
        assert_eq!(p.normalize_text(&once), once, "{s:?}");
    }
}

/// Rough throughput of the text-only path on ASCII prose. Run with
/// `cargo test --release -p warden-normalize --test examples -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_ascii_prose() {
    let para = "The quick brown fox jumps over the lazy dog. I think that's a really \
        good idea, don't you? We met on 9/11/2021 at 3pm -- it was the 1st time in years! \
        Honestly, people like that should learn to read before they post anything online. ";
    let text: String = para.repeat(64 * 1024 * 1024 / para.len());
    let p = TextNormalizer::new();
    let mut out = String::new();
    for (name, chunk) in [
        ("1 MiB docs", 1 << 20),
        ("4 KiB docs", 4096),
        ("256 B docs", 256),
    ] {
        let docs: Vec<&str> = text
            .as_bytes()
            .chunks(chunk)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let start = std::time::Instant::now();
        let mut total = 0;
        for d in &docs {
            p.normalize_into(d, &mut out);
            total += out.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "text-only, {name}: {:.0} MB/s ({total} bytes out)",
            text.len() as f64 / secs / 1e6
        );
    }
    let doc = &text[..16 << 20];
    let start = std::time::Instant::now();
    let n = p.normalize_str(doc);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "aligned, 16 MiB: {:.0} MB/s ({} chars)",
        doc.len() as f64 / secs / 1e6,
        n.alignment().len()
    );
}
