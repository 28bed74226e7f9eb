//! `brenier bench`: latency per stage (load, one network evaluation, OT map, end to end) with
//! percentiles over repeats, peak RSS, and (`--memory`) the memory estimate against the peak a
//! real run reaches at several batch sizes.

use std::time::Instant;

use anyhow::{Context, Result};
use brenier::backend::op_profile::OpProfile;
use brenier::pipeline::memory::{peak_rss_bytes, MemoryEstimate, MemoryProbe};
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::Engine;

use super::common::{Run, RunArgs};

/// Measure latency and memory of a bundle on this machine.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  brenier bench --bundle model.brn --batch 4 --repeat 20
  brenier bench --bundle model.brn --method ddib --steps 100 --json
  brenier bench --bundle model.brn --memory            # estimate vs measured peak, batch 1/4/16/64/256
  brenier bench --bundle model.brn --eval-only --profile --repeat 50   # time per operator")]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// ddib, ot-ald or neural-ot: the method of the end-to-end run.
    #[arg(long, default_value = "ot-ald")]
    method: TranslateMethod,
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
    /// With --eval-only: also the time per operator over --repeat runs of one piece (the CPU
    /// backend's tract plan, brenier's own operators included), slowest first.
    #[arg(long, requires = "eval_only")]
    profile: bool,
    /// Steps K for the end-to-end run.
    #[arg(long)]
    steps: Option<usize>,
    /// Instead of latency: the memory estimate (what --memory-budget checks) next to the peak
    /// RSS a translation really reaches, each batch size measured in a fresh process.
    #[arg(long)]
    memory: bool,
    /// Batch sizes of the --memory table.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64, 256])]
    memory_batches: Vec<usize>,
    /// Internal (used by --memory): run one translation of this many images in this process and
    /// print its peak RSS.
    #[arg(long, hide = true)]
    memory_run: Option<usize>,
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

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// Peak resident set size of this process (VmHWM), in MiB; `None` off Linux.
fn peak_rss_mib() -> Option<f64> {
    peak_rss_bytes().map(mib)
}

/// Time of network evaluations only (`--eval-only`), as benches/peers reads it.
#[derive(serde::Serialize)]
struct EvalReport {
    bundle: String,
    net: &'static str,
    threads: usize,
    precision: brenier::backend::Precision,
    batch: usize,
    /// Bundle open + this network's graph prepared + its first evaluation at `batch` (reading
    /// the input images excluded), in ms; `None` under a memory budget, whose probe runs the
    /// networks before that first evaluation.
    open_to_first_eps_ms: Option<f64>,
    /// How a run of one piece (one image on a batch-1 plan) spends the threads: `serial`,
    /// `kernels` (brenier's convolutions shared) or `all` (every operator split)
    /// (`BRENIER_INTRA_OP`, runtime/src/backend/intra_op.rs).
    one_piece: &'static str,
    network_eval: Stats,
    /// `--profile`: where one piece's time goes, per operator (absent where the backend cannot say).
    #[serde(skip_serializing_if = "Option::is_none")]
    op_profile: Option<OpProfile>,
}

#[derive(serde::Serialize)]
struct StagePeak {
    stage: &'static str,
    mib: Option<f64>,
}

#[derive(serde::Serialize)]
struct LatencyReport {
    bundle: String,
    backend: &'static str,
    device: Option<String>,
    threads: usize,
    /// The network `network_eval` and `open_to_first_eps_ms` time.
    net: &'static str,
    batch: usize,
    open_ms: f64,
    load_nets_ms: f64,
    /// Open + the benched network's graph prepared + its first evaluation at `batch` (`None`
    /// under a memory budget: its probe runs the networks first).
    open_to_first_eps_ms: Option<f64>,
    precision: brenier::backend::Precision,
    /// VmHWM after each stage: the peak so far, so each figure includes the stages before.
    peak_rss_mib_after: Vec<StagePeak>,
    memory_estimate: MemoryEstimate,
    network_eval: Stats,
    ot_map: Option<Stats>,
    neural_map: Option<Stats>,
    end_to_end_per_image: Stats,
    end_to_end_method: &'static str,
    end_to_end_nfe: usize,
    peak_rss_mib: Option<f64>,
    peak_device_memory_mib: Option<f64>,
}

/// One row of `--memory`: the estimate for a batch against the peak of a real run.
#[derive(serde::Serialize)]
struct MemoryRow {
    batch: usize,
    estimate: MemoryEstimate,
    /// The whole estimate, and its host part (without device memory), which the measured peak
    /// RSS is compared with.
    estimate_mib: f64,
    host_estimate_mib: f64,
    measured_peak_mib: f64,
    /// (host estimate − measured) / measured.
    relative_error: f64,
    /// Device memory in use after the measured run (all processes: the driver's figure).
    device_used_mib: Option<f64>,
}

#[derive(serde::Serialize)]
struct MemoryReport {
    bundle: String,
    backend: &'static str,
    threads: usize,
    /// What each measured run did: one translation of the batch by every method the bundle has,
    /// K = 1 (memory does not grow with K), in a fresh process.
    measured_run: String,
    /// The probe runs the estimates extrapolate from (their batches, images in flight and peaks).
    probe: MemoryProbe,
    rows: Vec<MemoryRow>,
}

pub fn run(a: Args) -> Result<()> {
    let run = a.run.resolve()?;
    if let Some(batch) = a.memory_run {
        return memory_run(&run, batch);
    }
    if a.memory {
        return memory_table(&a, &run);
    }
    let batch = match a.batch {
        Some(b) => b,
        None => run.default_batch(1),
    };
    anyhow::ensure!(a.repeat > 0 && batch > 0, "--repeat and --batch must be at least 1");
    let t0 = Instant::now();
    let engine = run.open()?;
    let open_s = t0.elapsed().as_secs_f64();
    let mut rss = vec![StagePeak { stage: "open", mib: peak_rss_mib() }];
    // Device memory in use after each stage, where the backend has a device (the maximum is
    // reported as the peak; the driver gives no high-water mark).
    let mut device = vec![];
    let net = super::common::domain_key(&engine, &a.net)?;
    // The benched network first: open → its graph prepared → its first ε is the latency to the
    // first result (issue 19's "open to first ε"); the other network loads after it.
    let t1 = Instant::now();
    engine.net(net)?;
    let load_net_s = t1.elapsed().as_secs_f64();
    // `--eval-only` times one network: the other is loaded only for the full report.
    if !a.eval_only {
        engine.net(net.other())?;
    }
    let load_nets_s = t1.elapsed().as_secs_f64();
    rss.push(StagePeak { stage: "load nets", mib: peak_rss_mib() });
    device.extend(engine.backend().device_memory_used());
    let budget = run.check_budget(&engine, batch)?;
    let m = engine.bundle().manifest().clone();
    let d = m.image.elems();
    let x = match &a.input {
        Some(path) => {
            let input = crate::images::read_inputs(path, &m, false)?;
            input.data.iter().copied().cycle().take(batch * d).collect()
        }
        None => NoiseStream::new(1, 0).normal(batch * d),
    };
    let t = m.t_encode as i64;
    let mut nt = NetTime::default();
    let first = Instant::now();
    engine.eps(net, &x, batch, t, "warm-up", &mut nt)?;
    let open_to_first_eps_ms = budget.is_none().then(|| (open_s + load_net_s + first.elapsed().as_secs_f64()) * 1e3);
    let eps_times: Vec<f64> = (0..a.repeat)
        .map(|_| {
            let s = Instant::now();
            engine.eps(net, &x, batch, t, "bench", &mut nt).map(|_| s.elapsed().as_secs_f64())
        })
        .collect::<brenier::Result<_>>()?;
    if a.eval_only {
        let op_profile = if a.profile {
            let profile = engine.net(net)?.op_profile(&x, t, a.repeat)?;
            Some(
                profile
                    .with_context(|| format!("the {} backend cannot time its operators", engine.backend().name()))?,
            )
        } else {
            None
        };
        let report = EvalReport {
            bundle: a.run.bundle.display().to_string(),
            net: net.as_str(),
            threads: engine.backend().threads(),
            precision: engine.backend().precision(),
            batch,
            open_to_first_eps_ms,
            one_piece: engine.net(net)?.one_piece().name(),
            network_eval: stats(eps_times),
            op_profile,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    rss.push(StagePeak { stage: "network evaluation", mib: peak_rss_mib() });
    device.extend(engine.backend().device_memory_used());
    // After the timed evaluations: the probe resets the process's peak RSS.
    let estimate = match budget {
        Some(e) => e,
        None => engine.memory_estimate(batch)?,
    };
    let repeat = |f: &dyn Fn(&mut Vec<f32>) -> brenier::Result<()>| -> brenier::Result<Vec<f64>> {
        (0..a.repeat)
            .map(|_| {
                let mut lat = x.clone();
                let s = Instant::now();
                f(&mut lat).map(|_| s.elapsed().as_secs_f64())
            })
            .collect()
    };
    // The map stage of the plans `translate` would run (A→B at the bundle's T).
    let map_stage = |method| -> brenier::Result<Option<Stats>> {
        let opts = TranslateOptions { method, ..TranslateOptions::default() };
        match engine.plan_if_present(&opts)? {
            Some(plan) => Ok(Some(stats(repeat(&|lat| plan.map(lat).map(|_| ()))?))),
            None => Ok(None),
        }
    };
    let ot_map = map_stage(TranslateMethod::OtAld)?;
    let neural_map = map_stage(TranslateMethod::NeuralOt)?;
    rss.push(StagePeak { stage: "OT map", mib: peak_rss_mib() });
    device.extend(engine.backend().device_memory_used());
    let opts = TranslateOptions { method: a.method, steps: a.steps, ..TranslateOptions::default() };
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
    rss.push(StagePeak { stage: "end to end", mib: peak_rss_mib() });
    device.extend(engine.backend().device_memory_used());
    let report = LatencyReport {
        bundle: a.run.bundle.display().to_string(),
        backend: engine.backend().name(),
        device: engine.backend().device(),
        threads: engine.backend().threads(),
        batch,
        net: net.as_str(),
        open_ms: open_s * 1e3,
        load_nets_ms: load_nets_s * 1e3,
        open_to_first_eps_ms,
        precision: engine.backend().precision(),
        peak_rss_mib_after: rss,
        memory_estimate: estimate,
        network_eval: stats(eps_times),
        ot_map,
        neural_map,
        end_to_end_per_image: stats(e2e),
        end_to_end_method: a.method.as_str(),
        end_to_end_nfe: nfe,
        peak_rss_mib: peak_rss_mib(),
        peak_device_memory_mib: device.iter().max().map(|&b| mib(b)),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_latency(&report);
    }
    Ok(())
}

fn print_latency(r: &LatencyReport) {
    let show = |name: &str, v: Option<&Stats>| match v {
        None => println!("  {name:<24} (none)"),
        Some(v) => println!(
            "  {name:<24} p50 {:>9.2} ms  p90 {:>9.2} ms  p99 {:>9.2} ms  (n = {})",
            v.p50_ms, v.p90_ms, v.p99_ms, v.n
        ),
    };
    println!("brenier bench: {} on {} ({} threads, batch {})", r.bundle, r.backend, r.threads, r.batch);
    println!("  open bundle              {:.2} ms", r.open_ms);
    println!("  load + optimise nets     {:.1} ms", r.load_nets_ms);
    match r.open_to_first_eps_ms {
        Some(ms) => println!("  open to first ε          {ms:.1} ms (net {}, batch {})", r.net, r.batch),
        None => println!("  open to first ε          not measured: the memory budget's probe ran the networks first"),
    }
    show("network evaluation", Some(&r.network_eval));
    show("OT map (a->b)", r.ot_map.as_ref());
    show("neural map (a->b)", r.neural_map.as_ref());
    show(&format!("{} per image ({} NFE)", r.end_to_end_method, r.end_to_end_nfe), Some(&r.end_to_end_per_image));
    println!("  peak RSS after each stage (VmHWM; the estimate's probe resets it, so later stages count from there):");
    for s in &r.peak_rss_mib_after {
        println!("    {:<22} {}", s.stage, s.mib.map_or("n/a".into(), |v| format!("{v:.1} MiB")));
    }
    let e = &r.memory_estimate;
    println!("  estimate (--memory-budget) {:.1} MiB: {}", mib(e.total_bytes), e.detail());
    if let Some(v) = r.peak_device_memory_mib {
        println!("  device memory in use (max over stages, all processes) {v:.1} MiB");
    }
}

/// The translations a `--memory` run measures: every method the bundle can run, K = 1.
fn measured_methods(engine: &Engine) -> brenier::Result<Vec<TranslateMethod>> {
    let mut methods = vec![];
    for method in TranslateMethod::ALL {
        if engine.plan_if_present(&TranslateOptions { method, ..TranslateOptions::default() })?.is_some() {
            methods.push(method);
        }
    }
    Ok(methods)
}

/// What a `--memory-run` child process reports to its parent (one JSON line on stdout).
#[derive(serde::Serialize, serde::Deserialize)]
struct MemoryRunPeak {
    batch: usize,
    peak_rss_bytes: u64,
    device_used_bytes: Option<u64>,
}

/// `--memory-run B`: one translation of B images by each method, then this process's peak.
fn memory_run(run: &Run, batch: usize) -> Result<()> {
    anyhow::ensure!(batch > 0, "--memory-run needs at least one image");
    let engine = run.open()?;
    let x = NoiseStream::new(2, 0).normal(batch * engine.dim()).iter().map(|v| v.clamp(-1.0, 1.0)).collect::<Vec<_>>();
    for method in measured_methods(&engine)? {
        let opts = TranslateOptions { method, steps: Some(1), ..TranslateOptions::default() };
        engine.translate(&x, &opts, &Silent)?;
    }
    let peak = peak_rss_bytes().context("peak RSS is not readable on this system (no /proc/self/status)")?;
    let device = engine.backend().device_memory_used();
    let peak = MemoryRunPeak { batch, peak_rss_bytes: peak, device_used_bytes: device };
    println!("{}", serde_json::to_string(&peak)?);
    Ok(())
}

/// `--memory`: the estimate for each batch, made here from one probe (as `--memory-budget` makes
/// it), against the peak of a translation at that batch in a fresh process of its own.
fn memory_table(a: &Args, run: &Run) -> Result<()> {
    let engine = run.open()?;
    let probe = engine.memory_probe()?;
    anyhow::ensure!(probe.measured, "peak RSS is not readable on this system: only the counted estimate exists");
    let methods: Vec<&str> = measured_methods(&engine)?.iter().map(|m| m.as_str()).collect();
    let exe = std::env::current_exe().context("locating the brenier binary")?;
    let mut rows = vec![];
    for &batch in &a.memory_batches {
        let estimate = engine.estimate_memory(&probe, batch)?;
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench").args(run.child_args()).arg("--memory-run").arg(batch.to_string());
        let out = cmd.output().context("running the measured translation")?;
        anyhow::ensure!(
            out.status.success(),
            "the measured run at batch {batch} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let peak: MemoryRunPeak = serde_json::from_slice(&out.stdout).context("reading the measured run's peak")?;
        anyhow::ensure!(peak.batch == batch, "the measured run reports batch {}, not {batch}", peak.batch);
        let measured = peak.peak_rss_bytes;
        let host = estimate.total_bytes - estimate.device_bytes;
        rows.push(MemoryRow {
            batch,
            estimate_mib: mib(estimate.total_bytes),
            host_estimate_mib: mib(host),
            measured_peak_mib: mib(measured),
            relative_error: (host as f64 - measured as f64) / measured as f64,
            device_used_mib: peak.device_used_bytes.map(mib),
            estimate,
        });
    }
    let report = MemoryReport {
        bundle: a.run.bundle.display().to_string(),
        backend: engine.backend().name(),
        threads: engine.backend().threads(),
        measured_run: format!("one translation per method ({}), K = 1, in a fresh process", methods.join(", ")),
        probe,
        rows,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "brenier bench --memory: {} on {} ({} threads); measured: {}",
        report.bundle, report.backend, report.threads, report.measured_run
    );
    println!("  {:>6} {:>18} {:>18} {:>8}", "batch", "host estimate MiB", "measured peak MiB", "error");
    for r in &report.rows {
        println!(
            "  {:>6} {:>18.1} {:>18.1} {:>+7.1}%{}",
            r.batch,
            r.host_estimate_mib,
            r.measured_peak_mib,
            100.0 * r.relative_error,
            r.device_used_mib.map_or(String::new(), |d| format!(
                "   device: estimate {:.1} MiB of {:.1}, in use after the run {d:.1}",
                mib(r.estimate.device_bytes),
                r.estimate_mib
            )),
        );
    }
    if let Some(r) = report.rows.last() {
        println!("  estimate at batch {}: {}", r.batch, r.estimate.detail());
    }
    Ok(())
}
