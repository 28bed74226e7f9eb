//! `brenier translate`: A→B (or B→A) with OT-ALD or the DDIB baseline.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use brenier::pipeline::{TranslateMethod, TranslateOptions};

use super::common::{domain_key, ms, RunArgs};
use crate::images::{read_inputs, write_outputs};
use crate::progress::Bars;

/// Translate images between the bundle's domains.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  brenier translate --bundle model.brn --method ot-ald --input sneakers/ --output boots/
  brenier translate --bundle model.brn --method ddib --t 999 --steps 100 --input x.npy --output y.npy
  brenier translate --bundle model.brn --from b --input boot.png --output sneaker.png")]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// ddib, ot-ald, or neural-ot (OT-ALD with the bundle's neural map, `brenier export --neural-map`).
    #[arg(long, default_value = "ot-ald")]
    method: TranslateMethod,
    /// Source domain (`a`, `b`, or its name); the target is the other one.
    #[arg(long, default_value = "a")]
    from: String,
    /// Encode time T (default: the OT map's T for OT-ALD, the manifest's for DDIB).
    #[arg(long)]
    t: Option<usize>,
    /// Steps K for each of encode and decode.
    #[arg(long)]
    steps: Option<usize>,
    /// DDIM η for decoding (0 = deterministic probability flow).
    #[arg(long)]
    eta: Option<f32>,
    /// Soft OT map temperature τ (OT-ALD only; omitted = hard map).
    #[arg(long)]
    tau: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per network call (0 = all at once) [default: 0, or the target's].
    #[arg(long)]
    batch: Option<usize>,
    /// A PNG or JPEG, a folder of them, or a .npy [N,C,H,W] in model space.
    #[arg(long)]
    input: PathBuf,
    /// Crop images of another size to the bundle's aspect ratio and resample them (default:
    /// refuse them, naming both sizes).
    #[arg(long)]
    resize: bool,
    /// A PNG or JPEG (by extension), a folder (of PNGs), or a .npy (matching the input's form).
    #[arg(long)]
    output: PathBuf,
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let run = a.run.resolve()?;
    let t0 = Instant::now();
    let engine = run.open()?;
    let m = engine.bundle().manifest().clone();
    let input = read_inputs(&a.input, &m, a.resize)?;
    let batch = match a.batch {
        Some(b) => b,
        None => run.default_batch(0),
    };
    run.check_budget(&engine, if batch == 0 { input.count } else { batch.min(input.count) })?;
    let opts = TranslateOptions {
        method: a.method,
        from: domain_key(&engine, &a.from)?,
        t: a.t,
        steps: a.steps,
        eta: a.eta,
        tau: a.tau,
        seed: a.seed,
    };
    let d = m.image.elems();
    let per = if batch == 0 { input.count } else { batch };
    let bars = Bars::new(a.quiet).with_images(input.count, input.count.div_ceil(per));
    let mut out = Vec::with_capacity(input.data.len());
    let mut last = None;
    let (mut enc_s, mut dec_s, mut map_s, mut nfe) = (0.0, 0.0, 0.0, 0);
    for chunk in input.data.chunks(per * d) {
        let r = engine.translate(chunk, &opts, &bars)?;
        enc_s += r.encode.seconds;
        dec_s += r.decode.seconds;
        map_s += r.map.as_ref().map_or(0.0, |s| s.seconds);
        nfe += r.nfe;
        out.extend_from_slice(&r.images);
        bars.images_done(chunk.len() / d);
        last = Some(r);
    }
    bars.finish();
    let Some(r) = last else { anyhow::bail!("no input images") };
    let meta = [
        ("brenier:method", a.method.to_string()),
        ("brenier:T", r.t.to_string()),
        ("brenier:K", r.steps.to_string()),
        ("brenier:eta", r.eta.to_string()),
        ("brenier:seed", a.seed.to_string()),
        ("brenier:bundle", a.run.bundle.display().to_string()),
    ];
    let written = write_outputs(&a.output, &m, &out, &input.names, &meta)?;
    let total = t0.elapsed().as_secs_f64();
    println!(
        "{} image(s) {} T={} K={} η={}: {} NFE per image ({} batched network calls); encode {}, OT map {}, decode {}, total {} ({} per image) → {} file(s) at {}",
        input.count, a.method, r.t, r.steps, r.eta, r.nfe, nfe, ms(enc_s), ms(map_s), ms(dec_s), ms(total), ms(total / input.count as f64),
        written.len(), a.output.display()
    );
    if let Some(s) = &r.map {
        if a.tau.is_some() {
            let mean = s.nearest_target_distance.iter().sum::<f32>() / s.nearest_target_distance.len().max(1) as f32;
            println!(
                "  soft map: mean distance to nearest stored target {mean:.3} (target RMS norm {:.3})",
                s.target_rms
            );
        } else {
            println!(
                "  hard map: each latent is a stored target (nearest-target distance 0; use --tau for a soft map)"
            );
        }
    }
    Ok(())
}
