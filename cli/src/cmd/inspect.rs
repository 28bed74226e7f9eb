//! `brenier inspect`: sections, sizes, checksum status and the manifest of a bundle.

use std::path::PathBuf;

use anyhow::Result;
use brenier::backend::{BackendKind, Precision};
use brenier::bundle::Bundle;
use brenier::NetKey;

/// Show a bundle's sections (with checksum status) and manifest.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  brenier inspect model.brn\n  brenier inspect model.brn --json | jq .manifest.ot_maps\n  brenier inspect model.brn --extract net.a --output a.onnx   # e.g. to run it in onnxruntime"
)]
pub struct Args {
    bundle: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Write the payload of this section (checksum-verified) to --output instead.
    #[arg(long, requires = "output")]
    extract: Option<String>,
    #[arg(long)]
    output: Option<PathBuf>,
    /// With `cuda`: list the network nodes tract keeps on the CPU under its CUDA runtime (needs
    /// a GPU and a build with `--features cuda`).
    #[arg(long)]
    backend: Option<BackendKind>,
    /// Precision for `--backend cuda`.
    #[arg(long, default_value = "f16")]
    precision: Precision,
}

pub fn run(a: Args) -> Result<()> {
    let b = Bundle::open(&a.bundle)?;
    if let (Some(name), Some(out)) = (&a.extract, &a.output) {
        let bytes = b.bytes(name)?;
        brenier::io::write_atomic(out, bytes)?;
        println!("wrote section `{name}` ({} bytes) to {}", bytes.len(), out.display());
        return Ok(());
    }
    if a.backend == Some(BackendKind::Cuda) {
        return cuda_fallback(&b, a.precision, a.json);
    }
    if a.json {
        let mut out = b.report();
        out["path"] = a.bundle.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&out)?);
        let damaged = out["sections"].as_array().into_iter().flatten().find(|s| s["checksum_ok"] == false);
        if let Some(s) = damaged {
            anyhow::bail!(
                "section `{}` is damaged: {}",
                s["name"].as_str().unwrap_or("?"),
                s["error"].as_str().unwrap_or("?")
            );
        }
        return Ok(());
    }
    let calibration = b.calibration();
    let status: Vec<(String, Result<(), String>)> =
        b.sections().iter().map(|s| (s.name.clone(), b.verify(&s.name).map_err(|e| e.to_string()))).collect();
    let m = b.manifest();
    println!("{}  (format v{}, {:.2} MB)", a.bundle.display(), b.header().version, b.file_len() as f64 / 1e6);
    println!("  domains   {}, {}", m.domain_label(NetKey::A), m.domain_label(NetKey::B));
    println!(
        "  image     {}x{}x{} (C×H×W), model range [{}, {}]",
        m.image.channels, m.image.height, m.image.width, m.normalization.low, m.normalization.high
    );
    println!("  schedule  {}; default T = {}, K = {}, η = {}", m.schedule, m.t_encode, m.steps, m.eta);
    for key in [NetKey::A, NetKey::B] {
        let n = m.net(key);
        println!(
            "  net {}     inputs x=`{}` t=`{}` ({}), output `{}`, batch {}",
            key.as_str(),
            n.x_input,
            n.t_input,
            n.t_dtype,
            n.output,
            n.batch.map_or("dynamic".into(), |b| b.to_string())
        );
        println!("            fp16: {}", n.fp16);
    }
    for map in &m.ot_maps {
        println!("  OT map    {:<10} {} at t = {}, {} targets", map.name, m.ot_map_direction(map), map.t, map.count);
        if let Some(r) = &map.solve {
            println!("            solve: {r}");
            println!("            targets: {}; source: {}", r.targets, r.source);
        }
    }
    for map in &m.neural_maps {
        println!(
            "  neural map {:<7} {} at t = {}, network `{}`",
            map.name,
            m.neural_map_direction(map),
            map.t,
            map.net.section
        );
        println!("            fp16: {}", map.net.fp16);
    }
    match &calibration {
        Ok(Some(r)) => {
            println!(
                "  calibrated on {} {} ({} threads), {} sweep points; quick check {} at T = {}, K = {}",
                r.machine.arch,
                r.machine.cpu,
                r.machine.threads,
                r.sweep.len(),
                r.quick.map.as_deref().unwrap_or("ddib"),
                r.quick.t,
                r.quick.k
            );
            for x in &r.recommended {
                println!(
                    "  recommended on {} ({}): {} T = {}, K = {} ({:.1} ms/image)",
                    x.target, x.precision, x.method, x.t, x.k, x.ms_per_image
                );
            }
        }
        Ok(None) => println!("  not calibrated (run `brenier calibrate`)"),
        Err(e) => println!("  calibration record unreadable: {e}"),
    }
    println!(
        "  {:<16} {:<12} {:<6} {:<22} {:>12} {:>12}  checksum",
        "section", "kind", "dtype", "shape", "offset", "bytes"
    );
    for (s, (_, st)) in b.sections().iter().zip(&status) {
        println!(
            "  {:<16} {:<12} {:<6} {:<22} {:>12} {:>12}  {}",
            s.name,
            format!("{:?}", s.kind).to_lowercase(),
            format!("{:?}", s.dtype).to_lowercase(),
            format!("{:?}", s.shape),
            s.offset,
            s.len,
            match st {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("BAD: {e}"),
            }
        );
    }
    if let Some((name, Err(e))) = status.iter().find(|(_, s)| s.is_err()) {
        anyhow::bail!("section `{name}` is damaged: {e}");
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda_fallback(b: &Bundle, precision: Precision, json: bool) -> Result<()> {
    let report = brenier::backend::cuda::bundle_fallback(b, precision)?;
    if json {
        let nets: serde_json::Map<String, serde_json::Value> =
            report.iter().map(|(l, n)| (l.clone(), serde_json::to_value(n).unwrap_or_default())).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "cpu_fallback": nets }))?);
        return Ok(());
    }
    for (label, nodes) in report {
        if nodes.is_empty() {
            println!("{label}: every node runs on CUDA ({precision})");
        } else {
            println!("{label}: {} node(s) stay on the CPU under CUDA ({precision}):", nodes.len());
            for n in nodes {
                println!("  {:<40} {}", n.node, n.op);
            }
        }
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn cuda_fallback(_: &Bundle, _: Precision, _: bool) -> Result<()> {
    anyhow::bail!(
        "this brenier was built without CUDA support: rebuild with `cargo build --release --features cuda` (no CUDA toolkit needed) to list what runs on the GPU"
    )
}
