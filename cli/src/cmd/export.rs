//! `brenier export`: freeze two ε-networks and OT maps into a bundle.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brenier::bundle::manifest::OtSource;
use brenier::bundle::ImageSpec;
use brenier::io::npy;
use brenier::NetKey;
use brenier_export::{export, ExportSpec, MapInput, NeuralMapInput};

/// Freeze two ONNX ε-networks and OT maps into one .brn bundle.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
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
    target: &str,
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
    Ok((MapInput { name: name.into(), source, target: target.into(), t, heights: h.data, targets: y.data }, shape))
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
        d @ ("a" | "b") => OtSource::Domain { domain: d.into() },
        other => bail!("--ot-map source `{other}`: expected a, b or noise"),
    };
    let t = kv.get("t").map(|v| v.parse()).transpose().context("--ot-map t= must be an integer")?.unwrap_or(default_t);
    read_map(get("name")?, source, get("target")?, t, Path::new(get("targets")?), Path::new(get("heights")?))
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
        let (map, shape) = read_map("a->b", OtSource::Domain { domain: "a".into() }, "b", a.t, t, h)?;
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
    let (manifest, size) = export(&spec, &a.output)?;
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

/// `a->b=map.onnx[@T]`.
fn parse_neural_map(arg: &str, default_t: usize) -> Result<NeuralMapInput> {
    let usage = || format!("--neural-map `{arg}`: expected a->b=FILE or a->b=FILE@T (or b->a)");
    let (dir, rest) = arg.split_once('=').with_context(usage)?;
    let (source, target) = match dir {
        "a->b" => ("a", "b"),
        "b->a" => ("b", "a"),
        _ => bail!("{}", usage()),
    };
    let (file, t) = match rest.rsplit_once('@') {
        Some((f, t)) => (f, t.parse::<usize>().with_context(|| format!("{}: `{t}` is not a train step", usage()))?),
        None => (rest, default_t),
    };
    let onnx = std::fs::read(file).with_context(|| format!("reading neural map {file}"))?;
    Ok(NeuralMapInput {
        name: if t == default_t { dir.to_string() } else { format!("{dir}@t{t}") },
        source: source.into(),
        target: target.into(),
        t,
        onnx,
        provenance: serde_json::json!({ "file": file }),
        fp16_record: None,
    })
}
