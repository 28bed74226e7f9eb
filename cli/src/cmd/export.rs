//! `brenier export`: freeze two ε-networks and OT maps into a bundle.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brenier::bundle::manifest::{MapDirection, OtSource};
use brenier::bundle::ImageSpec;
use brenier::io::npy;
use brenier::NetKey;
use brenier_export::{export, ExportSpec, MapInput, NeuralMapInput};

/// Solving OT maps from two sets of images (`--images-a`, `--images-b`).
#[derive(clap::Args, Debug)]
struct ImagesArgs {
    /// Images of domain A: a folder of PNG/JPEG files (searched recursively) or a .npy
    /// [N,C,H,W] in model space. With --images-b, the exporter solves the maps itself.
    #[arg(long, requires = "images_b", conflicts_with_all = ["targets", "heights"])]
    images_a: Option<PathBuf>,
    /// Images of domain B (as --images-a).
    #[arg(long, requires = "images_a")]
    images_b: Option<PathBuf>,
    /// Maps to solve, of a->b, b->a, noise->a, noise->b.
    #[arg(long, value_delimiter = ',', default_value = "a->b,b->a,noise->b")]
    maps: Vec<MapDirection>,
    /// Targets per map: images of the target domain (a seeded choice when there are more).
    #[arg(long, default_value_t = 2000)]
    num_targets: usize,
    /// How targets are made: `forward` (forward noise to T: no network cost, outputs that are not
    /// copies of the images) or `encoded` (DDIM to T with the domain's network, --encode-steps
    /// steps: N·K network evaluations, cached in --work-dir; keeps more of the source in a
    /// translation). See docs/DESIGN.md, "OT targets".
    #[arg(long, default_value = "forward")]
    targets_kind: brenier_export::from_images::TargetKind,
    #[arg(long, default_value_t = 25)]
    encode_steps: usize,
    /// Work folder: encoded targets and the solver's height checkpoints are kept there, so a
    /// killed export resumes [default: <output>.work beside the bundle].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Crop to the bundle's aspect ratio and resample images of another size (default: refuse).
    #[arg(long)]
    resize: bool,
    /// Leave out image files that cannot be read, counting them (default: refuse naming the file).
    #[arg(long)]
    skip_bad: bool,
    /// Certificate tolerance: RMS relative cell-mass error on held-out samples.
    #[arg(long, default_value_t = 0.1)]
    tol: f32,
    /// The largest fit set of the solver, in samples per target.
    #[arg(long, default_value_t = 512)]
    max_per_target: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend encoding the targets: cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    backend: brenier::backend::BackendKind,
    /// Threads for encoding and solving (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Freeze two ONNX ε-networks and OT maps into one .brn bundle.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  brenier export --net-a cat.onnx --net-b dog.onnx --images-a cats/ --images-b dogs/ \\
      --t 500 --maps a->b,b->a,noise->b --num-targets 5000 -o catdog.brn
  brenier export --net-a sneaker.onnx --net-b boot.onnx --targets y.npy --heights h.npy --t 500 -o model.brn
  brenier export --net-a a.onnx --net-b b.onnx -o ddib-only.brn
  brenier export --net-a a.onnx --net-b b.onnx --targets y.npy --heights h.npy \\
      --ot-map name=noise->b,source=noise,target=b,t=500,targets=y.npy,heights=hn.npy -o model.brn")]
pub struct Args {
    /// ε-network of domain A (ONNX).
    #[arg(long)]
    net_a: PathBuf,
    /// ε-network of domain B (ONNX).
    #[arg(long)]
    net_b: PathBuf,
    #[command(flatten)]
    images: ImagesArgs,
    /// Target latents of the A→B map, [N,C,H,W] f32 or f16 .npy.
    #[arg(long, requires = "heights")]
    targets: Option<PathBuf>,
    /// Heights of the A→B map, [N] f32 .npy.
    #[arg(long, requires = "targets")]
    heights: Option<PathBuf>,
    /// Further maps: name=..,source=a|b|noise,target=a|b,t=..,targets=..,heights=.. (repeatable).
    #[arg(long = "ot-map")]
    ot_maps: Vec<String>,
    /// Neural OT maps: `a->b=map.onnx` or `a->b=map.onnx@T` (default T: --t), an ONNX network
    /// with the ε-networks' x/t inputs from `brenier-train neural-map` (repeatable).
    #[arg(long = "neural-map", value_name = "DIR=FILE[@T]")]
    neural_maps: Vec<String>,
    /// Encode time T (train step) of the OT maps and the default translation.
    #[arg(long, default_value_t = 500)]
    t: usize,
    /// Default step count K.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Default DDIM η for decoding.
    #[arg(long, default_value_t = 0.0)]
    eta: f32,
    #[arg(long, default_value = "a")]
    name_a: String,
    #[arg(long, default_value = "b")]
    name_b: String,
    /// Image shape C,H,W when the networks declare a symbolic one.
    #[arg(long, value_delimiter = ',', num_args = 3)]
    image: Option<Vec<usize>>,
    /// Keep the weights f32 (default stores Conv/Gemm/MatMul weights as fp16).
    #[arg(long)]
    no_fp16: bool,
    /// Output bundle.
    #[arg(short, long)]
    output: PathBuf,
}

fn read_map(
    name: &str,
    source: OtSource,
    target: NetKey,
    t: usize,
    targets: &std::path::Path,
    heights: &std::path::Path,
) -> Result<(MapInput, Vec<usize>)> {
    let y = npy::read(targets)?;
    let h = npy::read(heights)?;
    if h.shape.len() != 1 {
        bail!("{}: heights must be a 1-D [N] array, found shape {:?}", heights.display(), h.shape);
    }
    if h.was_f16 {
        bail!("{}: heights must be float32 (they are differences of large scores; f16 loses them)", heights.display());
    }
    if y.shape.len() != 4 || y.shape[0] != h.shape[0] {
        bail!(
            "{}: targets must be [N,C,H,W] with N = {} (the heights' length), found {:?}",
            targets.display(),
            h.shape[0],
            y.shape
        );
    }
    let shape = y.shape.clone();
    Ok((MapInput { name: name.into(), source, target, t, heights: h.data, targets: y.data, solve: None }, shape))
}

fn parse_map(s: &str, default_t: usize) -> Result<(MapInput, Vec<usize>)> {
    let mut kv = std::collections::HashMap::new();
    for part in s.split(',') {
        let (k, v) = part.split_once('=').with_context(|| format!("--ot-map `{s}`: `{part}` is not key=value"))?;
        kv.insert(k.trim(), v.trim());
    }
    let get = |k: &str| kv.get(k).copied().with_context(|| format!("--ot-map `{s}` needs {k}="));
    let source = match get("source")? {
        "noise" | "gaussian" => OtSource::Gaussian,
        domain => OtSource::Domain {
            domain: domain.parse().with_context(|| format!("--ot-map source `{domain}`: expected a, b or noise"))?,
        },
    };
    let t = kv.get("t").map(|v| v.parse()).transpose().context("--ot-map t= must be an integer")?.unwrap_or(default_t);
    let target: NetKey = get("target")?.parse().context("--ot-map target")?;
    read_map(get("name")?, source, target, t, Path::new(get("targets")?), Path::new(get("heights")?))
}

pub fn run(a: Args) -> Result<()> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut spec = ExportSpec::new(read(&a.net_a)?, read(&a.net_b)?);
    spec.t_encode = a.t;
    spec.steps = a.steps;
    spec.eta = a.eta;
    spec.name_a = a.name_a.clone();
    spec.name_b = a.name_b.clone();
    spec.fp16 = !a.no_fp16;
    spec.image = a.image.as_ref().map(|v| ImageSpec { channels: v[0], height: v[1], width: v[2] });
    let mut target_shapes = vec![];
    if let (Some(t), Some(h)) = (&a.targets, &a.heights) {
        let ab = MapDirection::Domain(NetKey::A);
        let (map, shape) = read_map(ab.as_str(), ab.source(), ab.target(), a.t, t, h)?;
        spec.maps.push(map);
        target_shapes.push(shape);
    }
    for m in &a.ot_maps {
        let (map, shape) = parse_map(m, a.t)?;
        spec.maps.push(map);
        target_shapes.push(shape);
    }
    if spec.image.is_some()
        && target_shapes.iter().any(|s| spec.image.is_some_and(|i| s[1..] != [i.channels, i.height, i.width]))
    {
        bail!("--image {:?} disagrees with the targets' shapes {target_shapes:?}", a.image);
    }
    if spec.image.is_none() {
        // Targets fix the image shape when the networks leave it symbolic.
        spec.image = target_shapes.first().map(|s| ImageSpec { channels: s[1], height: s[2], width: s[3] });
    }
    for m in &a.neural_maps {
        spec.neural_maps.push(parse_neural_map(m, a.t)?);
    }
    spec.provenance = serde_json::json!({
        "net_a": a.net_a.display().to_string(),
        "net_b": a.net_b.display().to_string(),
    });
    let (manifest, size) = match (&a.images.images_a, &a.images.images_b) {
        (Some(ia), Some(ib)) => from_images(&a, &spec, ia, ib)?,
        _ => export(&spec, &a.output)?,
    };
    println!("wrote {} ({:.2} MB)", a.output.display(), size as f64 / 1e6);
    for key in [NetKey::A, NetKey::B] {
        let n = manifest.net(key);
        println!(
            "  net {}: x = `{}`, t = `{}` ({}), batch {}; fp16: {}",
            manifest.domain_label(key),
            n.x_input,
            n.t_input,
            n.t_dtype,
            n.batch.map_or("dynamic".to_string(), |b| b.to_string()),
            n.fp16
        );
    }
    for m in &manifest.ot_maps {
        if let Some(r) = &m.solve {
            println!("  OT map {}: {r}", m.name);
        }
        println!(
            "  OT map {}: {}, {} targets at t = {} ({})",
            m.name,
            manifest.ot_map_direction(m),
            m.count,
            m.t,
            m.targets
        );
    }
    for m in &manifest.neural_maps {
        println!("  neural map {}: t = {} ({}); fp16: {}", m.name, m.t, m.net.section, m.net.fp16);
    }
    Ok(())
}

/// The exporter's own solve: images → targets → heights → bundle, with progress per stage.
fn from_images(a: &Args, base: &ExportSpec, ia: &Path, ib: &Path) -> Result<(brenier::Manifest, u64)> {
    use brenier_export::from_images::{export_from_images, Images, ImagesSpec};
    let i = &a.images;
    let spec = ImagesSpec {
        images: [Images::Path(ia.to_path_buf()), Images::Path(ib.to_path_buf())],
        read: brenier::io::batch::ReadOptions {
            fit: if i.resize { brenier::io::image::Fit::CropResize } else { brenier::io::image::Fit::Exact },
            recursive: true,
            skip_bad: i.skip_bad,
        },
        maps: i.maps.clone(),
        t: None,
        num_targets: i.num_targets,
        targets: i.targets_kind,
        encode_steps: i.encode_steps,
        work_dir: i.work_dir.clone().unwrap_or_else(|| brenier_export::encode::default_work_dir(&a.output)),
        solve: brenier_export::ot::SolveConfig {
            tol: i.tol,
            max_per_target: i.max_per_target,
            seed: i.seed,
            ..Default::default()
        },
        backend: i.backend,
        precision: brenier::backend::Precision::F32,
        threads: i.threads,
    };
    let bars = crate::progress::Bars::new(false);
    let out = export_from_images(base, &spec, &a.output, &bars)?;
    if !out.skipped.is_empty() {
        eprintln!("skipped {} unreadable image file(s) (--skip-bad):", out.skipped.len());
        for (f, why) in out.skipped.iter().take(10) {
            eprintln!("  {}: {why}", f.display());
        }
    }
    println!(
        "read {} images of a and {} of b; solved {} map(s) in {:.0} s",
        out.images[0],
        out.images[1],
        out.solves.len(),
        out.seconds
    );
    let bundle = brenier::Bundle::open(&a.output)?;
    Ok((bundle.manifest().clone(), out.bundle_bytes))
}

/// `a->b=map.onnx[@T]`.
fn parse_neural_map(arg: &str, default_t: usize) -> Result<NeuralMapInput> {
    let usage = || format!("--neural-map `{arg}`: expected a->b=FILE or a->b=FILE@T (or b->a)");
    let (dir, rest) = arg.split_once('=').with_context(usage)?;
    let direction: MapDirection = dir.parse().ok().with_context(usage)?;
    let MapDirection::Domain(source) = direction else { bail!("{}", usage()) };
    let (file, t) = match rest.rsplit_once('@') {
        Some((f, t)) => (f, t.parse::<usize>().with_context(|| format!("{}: `{t}` is not a train step", usage()))?),
        None => (rest, default_t),
    };
    let onnx = std::fs::read(file).with_context(|| format!("reading neural map {file}"))?;
    Ok(NeuralMapInput {
        name: direction.name_at(t, default_t),
        source,
        target: direction.target(),
        t,
        onnx,
        provenance: serde_json::json!({ "file": file }),
        fp16_record: None,
    })
}
