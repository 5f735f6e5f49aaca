//! Encoder throughput: Warden's forward vs candle-transformers' on the same
//! weights, texts/s and achieved GFLOP/s at 32, 128 and 256 tokens.
//!
//! `WARDEN_BENCH_ENCODER=DIR cargo bench -p warden-encoder --bench encoder`
//! (DIR: an encoder directory, e.g. the one `warden model fetch` prints).
//! `bench/encoder.sh` runs it next to numpy's sgemm rate.

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use warden_encoder::bert::{BertModel, Mode};
use warden_encoder::encoder::read_config;

fn time_it(mut f: impl FnMut(), min_secs: f64) -> f64 {
    f(); // warm-up
    let t = Instant::now();
    let mut n = 0;
    while n < 2 || t.elapsed().as_secs_f64() < min_secs {
        f();
        n += 1;
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let Ok(dir) = std::env::var("WARDEN_BENCH_ENCODER") else {
        eprintln!("set WARDEN_BENCH_ENCODER to an encoder directory (warden model fetch prints it)");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let cfg = read_config(&dir).expect("config");
    let dev = Device::Cpu;
    let ours = BertModel::load_safetensors(&dir.join("model.safetensors"), &cfg, &dev).unwrap();
    let stock_cfg: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &dev) }.unwrap();
    let stock = candle_transformers::models::bert::BertModel::load(vb, &stock_cfg).unwrap();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let min_secs: f64 = std::env::var("WARDEN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    println!("encoder {} (d={}, layers={}), threads {threads}", dir.display(), cfg.hidden_size, cfg.num_hidden_layers);
    println!("| tokens | batch | warden texts/s | warden GFLOP/s | candle-transformers texts/s | GFLOP/s | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &(len, batch) in &[(32usize, 32usize), (128, 32), (256, 16)] {
        let ids: Vec<u32> = (0..batch * len).map(|i| 1000 + (i as u32 * 7919) % 20000).collect();
        let ids = Tensor::from_vec(ids, (batch, len), &dev).unwrap();
        let mask = ids.ones_like().unwrap();
        let types = ids.zeros_like().unwrap();
        let a = time_it(|| { ours.forward(&ids, None, &mask, Mode::Infer).unwrap(); }, min_secs);
        let b = time_it(|| { stock.forward(&ids, &types, Some(&mask)).unwrap(); }, min_secs);
        let flops = cfg.forward_flops(len) * batch as f64;
        println!(
            "| {len} | {batch} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}x |",
            batch as f64 / a,
            flops / a / 1e9,
            batch as f64 / b,
            flops / b / 1e9,
            b / a
        );
    }
}
