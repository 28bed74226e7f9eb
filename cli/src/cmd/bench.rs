//! `brenier bench`: latency per stage (load, one network evaluation, OT map, end to end) with
//! percentiles over repeats, and peak RSS.

use std::time::Instant;

use anyhow::Result;
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::NetKey;

use super::common::RunArgs;
use super::translate::Method;

/// Measure latency and memory of a bundle on this machine.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  brenier bench --bundle model.brn --batch 4 --repeat 20\n  brenier bench --bundle model.brn --method ddib --steps 100 --json"
)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[arg(long, value_enum, default_value = "ot-ald")]
    method: Method,
    /// Images per network call [default: 1, or the target's].
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Images for the runs (PNG, folder or .npy), cycled to fill the batch; default: Gaussian
    /// noise (timing does not depend on the values). Give the same file to a peer runtime.
    #[arg(long)]
    input: Option<std::path::PathBuf>,
    /// Network timed in the evaluation stage (`a`, `b`).
    #[arg(long, default_value = "a")]
    net: String,
    /// Time network evaluations only (no OT map, no end-to-end run) and print JSON, as the peer
    /// benchmark (benches/peers/run.sh) reads it.
    #[arg(long)]
    eval_only: bool,
    /// Steps K for the end-to-end run.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Stats {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] * 1e3;
    Stats {
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        mean_ms: v.iter().sum::<f64>() / v.len() as f64 * 1e3,
        n: v.len(),
    }
}

/// Peak resident set size of this process (VmHWM), in MiB; `None` off Linux.
fn peak_rss_mib() -> Option<f64> {
    brenier::pipeline::memory::peak_rss_bytes().map(|b| b as f64 / 1048576.0)
}

pub fn run(a: Args) -> Result<()> {
    let run = a.run.resolve()?;
    let batch = match a.batch {
        Some(b) => b,
        None => run.default_batch(1),
    };
    anyhow::ensure!(a.repeat > 0 && batch > 0, "--repeat and --batch must be at least 1");
    let t0 = Instant::now();
    let engine = run.open()?;
    let open_s = t0.elapsed().as_secs_f64();
    let mut rss = vec![("open", peak_rss_mib())];
    // Device memory in use after each stage, where the backend has a device (the maximum is
    // reported as the peak; the driver gives no high-water mark).
    let mut device = vec![];
    let t1 = Instant::now();
    engine.net(NetKey::A)?;
    engine.net(NetKey::B)?;
    let load_nets_s = t1.elapsed().as_secs_f64();
    rss.push(("load nets", peak_rss_mib()));
    device.extend(engine.backend().device_memory_used());
    run.check_budget(&engine, batch)?;
    let estimate = engine.memory_estimate(batch)?;
    let m = engine.bundle().manifest().clone();
    let d = m.image.elems();
    let x = match &a.input {
        Some(path) => {
            let input = crate::images::read_inputs(path, &m)?;
            input.data.iter().copied().cycle().take(batch * d).collect()
        }
        None => NoiseStream::new(1, 0).normal(batch * d),
    };
    let t = m.t_encode as i64;
    let net = super::common::domain_key(&engine, &a.net)?;
    let mut nt = NetTime::default();
    engine.eps(net, &x, batch, t, "warm-up", &mut nt)?;
    let eps_times: Vec<f64> = (0..a.repeat)
        .map(|_| {
            let s = Instant::now();
            engine.eps(net, &x, batch, t, "bench", &mut nt).map(|_| s.elapsed().as_secs_f64())
        })
        .collect::<brenier::Result<_>>()?;
    if a.eval_only {
        let report = serde_json::json!({
            "bundle": a.run.bundle.display().to_string(),
            "net": net.as_str(),
            "threads": engine.backend().threads(),
            "precision": engine.backend().precision(),
            "batch": batch,
            "network_eval": stats(eps_times),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    rss.push(("network evaluation", peak_rss_mib()));
    device.extend(engine.backend().device_memory_used());
    let map_spec = m.find_map(&brenier::bundle::OtSource::Domain { domain: "a".into() }, NetKey::B).cloned();
    let map_times = match &map_spec {
        Some(spec) => Some(
            (0..a.repeat)
                .map(|_| {
                    let mut lat = x.clone();
                    let s = Instant::now();
                    engine.apply_map(spec, &mut lat, None).map(|_| s.elapsed().as_secs_f64())
                })
                .collect::<brenier::Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let neural_times = match m.find_neural_map(NetKey::A, None) {
        Some((index, _)) => Some(
            (0..a.repeat)
                .map(|_| {
                    let mut lat = x.clone();
                    let s = Instant::now();
                    engine.apply_neural_map(index, &mut lat).map(|_| s.elapsed().as_secs_f64())
                })
                .collect::<brenier::Result<Vec<_>>>()?,
        ),
        None => None,
    };
    rss.push(("OT map", peak_rss_mib()));
    device.extend(engine.backend().device_memory_used());
    let method = match a.method {
        Method::Ddib => TranslateMethod::Ddib,
        Method::OtAld => TranslateMethod::OtAld,
        Method::NeuralOt => TranslateMethod::NeuralOt,
    };
    let opts = TranslateOptions { method, steps: a.steps, ..TranslateOptions::default() };
    let clean = NoiseStream::new(2, 0).normal(batch * d);
    let mut nfe = 0;
    let e2e: Vec<f64> = (0..a.repeat.min(5))
        .map(|_| {
            let s = Instant::now();
            engine.translate(&clean, &opts, &Silent).map(|r| {
                nfe = r.nfe;
                s.elapsed().as_secs_f64() / batch as f64
            })
        })
        .collect::<brenier::Result<_>>()?;
    rss.push(("end to end", peak_rss_mib()));
    device.extend(engine.backend().device_memory_used());
    let report = serde_json::json!({
        "bundle": a.run.bundle.display().to_string(),
        "backend": engine.backend().name(),
        "device": engine.backend().device(),
        "threads": engine.backend().threads(),
        "batch": batch,
        "open_ms": open_s * 1e3,
        "load_nets_ms": load_nets_s * 1e3,
        "precision": engine.backend().precision(),
        // VmHWM after each stage: the peak so far, so each figure includes the stages before.
        "peak_rss_mib_after": rss.iter().map(|(s, v)| serde_json::json!({ "stage": s, "mib": v })).collect::<Vec<_>>(),
        "memory_estimate": estimate,
        "network_eval": stats(eps_times),
        "ot_map": map_times.map(stats),
        "neural_map": neural_times.map(stats),
        "end_to_end_per_image": stats(e2e),
        "end_to_end_method": format!("{:?}", a.method),
        "end_to_end_nfe": nfe,
        "peak_rss_mib": peak_rss_mib(),
        "peak_device_memory_mib": device.iter().max().map(|&b| b as f64 / 1048576.0),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let show = |name: &str, v: &serde_json::Value| {
        if v.is_null() {
            println!("  {name:<24} (none)");
        } else {
            println!(
                "  {name:<24} p50 {:>9.2} ms  p90 {:>9.2} ms  p99 {:>9.2} ms  (n = {})",
                v["p50_ms"].as_f64().unwrap_or(0.0),
                v["p90_ms"].as_f64().unwrap_or(0.0),
                v["p99_ms"].as_f64().unwrap_or(0.0),
                v["n"]
            );
        }
    };
    println!(
        "brenier bench: {} on {} ({} threads, batch {})",
        a.run.bundle.display(),
        engine.backend().name(),
        engine.backend().threads(),
        batch
    );
    println!("  open bundle              {:.2} ms", open_s * 1e3);
    println!("  load + optimise nets     {:.1} ms", load_nets_s * 1e3);
    show("network evaluation", &report["network_eval"]);
    show("OT map (a->b)", &report["ot_map"]);
    show("neural map (a->b)", &report["neural_map"]);
    show(&format!("{:?} per image ({nfe} NFE)", a.method), &report["end_to_end_per_image"]);
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("  peak RSS after each stage (VmHWM, includes the stages before):");
    for (stage, v) in &rss {
        println!("    {stage:<22} {}", v.map_or("n/a".into(), |v| format!("{v:.1} MiB")));
    }
    println!(
        "  estimate (--memory-budget) {:.1} MiB{}: bundle {:.1}, weights {:.1}, activations {:.1}, buffers {:.1}",
        mib(estimate.total_bytes),
        if estimate.measured { " (probe-measured peak + bundle + buffers)" } else { " (counted)" },
        mib(estimate.bundle_bytes),
        mib(estimate.weight_bytes),
        mib(estimate.activation_bytes),
        mib(estimate.working_bytes)
    );
    if let Some(v) = report["peak_device_memory_mib"].as_f64() {
        println!("  device memory in use (max over stages, all processes) {v:.1} MiB");
    }
    Ok(())
}
