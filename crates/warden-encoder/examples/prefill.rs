//! Fills the embedding cache for JSONL files (`{"text": ...}` per line).
//! `cargo run --release -p warden-encoder --example prefill -- ENCODER_DIR CACHE FILE...`
use std::io::BufRead;
use warden_encoder::{bert::Pooling, cache::EmbeddingCache, Encoder, EncoderOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let enc = Encoder::load(
        std::path::Path::new(&args[1]),
        EncoderOptions { pooling: Pooling::MeanCls, ..Default::default() },
    )
    .unwrap();
    let mut cache = EmbeddingCache::open(std::path::Path::new(&args[2])).unwrap();
    for f in &args[3..] {
        let texts: Vec<String> = std::io::BufReader::new(std::fs::File::open(f).unwrap())
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap()["text"].as_str().unwrap().to_string())
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let t0 = std::time::Instant::now();
        let (_, stats) = enc
            .embed_cached(&refs, &mut cache, 512, &mut |d, t| {
                eprintln!("{f}: {d}/{t} {:.0}s", t0.elapsed().as_secs_f64())
            })
            .unwrap();
        eprintln!("{f}: {stats:?}");
    }
}
