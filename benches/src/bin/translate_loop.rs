//! The Rust side of benches/interfaces: `translate_loop BUNDLE IN.npy CALLS WARMUP THREADS`
//! times `Engine::translate` (OT-ALD, K = 10, one batch) CALLS times after WARMUP untimed calls
//! and prints `{"interface": "rust", "seconds": [...]}`. The C and Python loops beside
//! run.sh make the same call through their interfaces, timed the same way.

use std::path::Path;
use std::time::Instant;

use brenier::backend::{self, BackendKind, Precision};
use brenier::bundle::Bundle;
use brenier::io::npy;
use brenier::pipeline::{Silent, TranslateOptions};
use brenier::Engine;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bundle, input, calls, warmup, threads] = &args[..] else {
        return Err("usage: translate_loop BUNDLE IN.npy CALLS WARMUP THREADS".into());
    };
    let engine = Engine::new(
        Bundle::open(Path::new(bundle))?,
        backend::open(BackendKind::Cpu, Precision::F32, threads.parse()?)?,
    )?;
    let x = npy::read(Path::new(input))?;
    let opts = TranslateOptions { steps: Some(10), ..Default::default() };
    for _ in 0..warmup.parse::<usize>()? {
        engine.translate(&x.data, &opts, &Silent)?;
    }
    let mut seconds = Vec::new();
    for _ in 0..calls.parse::<usize>()? {
        let t0 = Instant::now();
        let y = engine.translate(&x.data, &opts, &Silent)?;
        seconds.push(t0.elapsed().as_secs_f64());
        std::hint::black_box(y);
    }
    println!("{}", serde_json::json!({ "interface": "rust", "seconds": seconds }));
    Ok(())
}
