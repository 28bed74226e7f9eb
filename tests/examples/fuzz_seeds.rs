//! Writes the fuzzers' seed corpus: valid inputs of every kind the readers accept, plus
//! truncations, so the fuzzers start deep inside the formats instead of at the magic bytes.
//!
//!     cargo run -p brenier-tests --example fuzz_seeds -- fuzz/seeds
//!
//! Bundles: an OT bundle (four maps, shared targets), a DDIB-only bundle, one with a
//! calibration section, each cut at every section boundary. Manifests: theirs, and an explicit
//! β schedule. `.npy`: f32/f16, format versions 1 and 2, rank 0..4. PNG: every colour type and
//! bit depth the decoder expands, and a real demo input.

use std::path::{Path, PathBuf};

use brenier::bundle::Section;
use brenier::bundle::{Bundle, ImageSpec, SectionKind, MANIFEST_SECTION};
use brenier::sched::ScheduleSpec;
use brenier_export::oracle_bundle::{oracle_spec, OraclePair};
use brenier_tests::bundle_edit::encode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/seeds".into()));
    bundles_and_manifests(&root)?;
    record_seeds(&root.join("record"))?;
    npy_seeds(&root.join("npy"))?;
    png_seeds(&root.join("png"))?;
    println!("seeds written under {}", root.display());
    Ok(())
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

/// A valid ε-network of a few hundred bytes, ε = 10⁻³·t·x: the reader never runs it, and small
/// seeds keep the fuzzer fast (the Gaussian oracle nets carry a 170 KB per-step table).
fn tiny_net() -> Vec<u8> {
    use brenier_export::onnx_build::*;
    let graph = pb_types::GraphProto {
        name: "tiny".into(),
        node: vec![
            node("Cast", "tf", &["t"], &["tf"], vec![attr_int("to", FLOAT as i64)]),
            node("Reshape", "col", &["tf", "shape"], &["tc"], vec![]),
            node("Mul", "scale", &["tc", "k"], &["s"], vec![]),
            node("Mul", "eps", &["x", "s"], &["eps"], vec![]),
        ],
        initializer: vec![tensor_f32("k", &[], &[1e-3]), tensor_i64("shape", &[4], &[-1, 1, 1, 1])],
        input: vec![value_info("x", FLOAT, &[None, Some(1), Some(2), Some(3)]), value_info("t", INT64, &[None])],
        output: vec![value_info("eps", FLOAT, &[None, Some(1), Some(2), Some(3)])],
        ..Default::default()
    };
    to_bytes(&model(graph, 17, "fuzz-seeds"))
}

fn bundles_and_manifests(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let image = ImageSpec { channels: 1, height: 2, width: 3 };
    let pair = OraclePair::new(image, 5);
    let mut ot_spec = oracle_spec(&pair, 500, 25, 16, 17)?;
    ot_spec.net_a = tiny_net();
    ot_spec.net_b = tiny_net();
    let mut ddib_spec = ot_spec.clone();
    ddib_spec.maps.clear();
    let (ot_sections, _) = brenier_export::build_sections(&ot_spec)?;
    let (ddib_sections, _) = brenier_export::build_sections(&ddib_spec)?;
    let mut calibrated = ot_sections.clone();
    calibrated.push(Section::bytes(
        "calibration",
        SectionKind::Calibration,
        br#"{"precision":"f16","nets":{"a":{"max_rel_err":0.0004}}}"#.to_vec(),
    ));
    for (name, sections) in [("ot", &ot_sections), ("ddib", &ddib_sections), ("calibrated", &calibrated)] {
        let bytes = encode(sections);
        put(&root.join("bundle"), &format!("{name}.brn"), &bytes)?;
        let b = Bundle::from_bytes(&bytes)?;
        for (i, s) in b.sections().iter().enumerate() {
            put(&root.join("bundle"), &format!("{name}-cut{i}.brn"), &bytes[..s.offset as usize])?;
        }
        put(&root.join("manifest"), &format!("{name}.json"), b.bytes(MANIFEST_SECTION)?)?;
    }
    let mut betas = ddib_spec.clone();
    betas.schedule = ScheduleSpec::Betas { betas: vec![0.1, 0.2, 0.3, 0.4] };
    betas.t_encode = 3;
    betas.steps = 2;
    let (_, m) = brenier_export::build_sections(&betas)?;
    put(&root.join("manifest"), "betas.json", &m.to_json())?;
    // The shipped bundle's manifest (real nets, three maps); its 4 MB body is too large a seed.
    let demo = Bundle::open("assets/demo.brn")?;
    put(&root.join("manifest"), "demo.json", demo.bytes(MANIFEST_SECTION)?)?;
    Ok(())
}

/// Calibration records valid against the `record` target's manifest (fuzz/src/exercise.rs):
/// with an OT map and a neural map, and plain DDIB with a sweep and a recommendation.
fn record_seeds(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use brenier::backend::Precision;
    use brenier::bundle::calibration::*;
    let record = CalibrationRecord {
        version: RECORD_VERSION,
        created_unix: 1_800_000_000,
        machine: MachineInfo {
            arch: "x86_64".into(),
            os: "linux".into(),
            cpu: "seed".into(),
            threads: 2,
            backend: "cpu".into(),
            brenier_version: "0.1.0".into(),
        },
        precision: Precision::F32,
        inputs: InputsInfo { source: "seed".into(), count: 8, reference_count: 8, classifier: None },
        parity: vec![NetParity {
            net: "a".into(),
            precision: Precision::F16,
            ts: vec![0, 250, 500, 999],
            max_rel_err: 0.014,
            mean_rel_err: 0.005,
            ms_per_image_f32: 10.0,
            ms_per_image: 900.0,
        }],
        ot_agreement: vec![],
        sweep: vec![],
        recommended: vec![],
        quick: QuickRecord {
            count: 8,
            map: Some("a->b".into()),
            t: 500,
            k: 10,
            eps_ts: vec![0, 250, 500],
            assignments: vec![0, 3, 15, 7, 7, 1, 2, 9],
            eps_rel_err: vec![(Precision::F16, 0.012)],
            output_rms: vec![(Precision::F16, 0.03)],
            latent_agreement: vec![(Precision::F16, 0.875)],
            ms_per_nfe: 12.5,
            neural_maps: vec!["a->b".into()],
            neural_rel_err: vec![],
        },
    };
    put(dir, "ot-neural.json", &serde_json::to_vec_pretty(&record)?)?;
    let mut ddib = record.clone();
    ddib.quick.map = None;
    ddib.quick.assignments.clear();
    ddib.sweep.push(SweepPoint {
        method: "ddib".into(),
        t: 999,
        k: 100,
        nfe: 200,
        ms_per_image: 900.0,
        quality: Quality {
            count: 8,
            target_accuracy: 1.0,
            frechet: 50.0,
            ssim_to_source: Some(0.2),
            rms_to_source: None,
        },
    });
    ddib.recommended.push(Recommendation {
        target: "cpu-x86_64".into(),
        precision: Precision::F32,
        method: "ddib".into(),
        t: 999,
        k: 100,
        ms_per_image: 900.0,
        reason: "seed".into(),
    });
    put(dir, "ddib-sweep.json", &serde_json::to_vec_pretty(&ddib)?)?;
    Ok(())
}

fn npy_header(version: u8, descr: &str, shape: &str) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let pre = if version == 1 { 10 } else { 12 };
    let total = pre + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out
}

fn npy_seeds(dir: &Path) -> std::io::Result<()> {
    let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 3.0).collect();
    put(dir, "f32-4d.npy", &brenier::io::npy::encode(&[2, 3, 2, 2], &values))?;
    put(dir, "f32-1d.npy", &brenier::io::npy::encode(&[5], &values[..5]))?;
    let mut scalar = npy_header(1, "<f4", "()");
    scalar.extend_from_slice(&1.5f32.to_le_bytes());
    put(dir, "f32-scalar.npy", &scalar)?;
    let mut f16 = npy_header(2, "<f2", "(1, 1, 2, 3)");
    for v in &values[..6] {
        f16.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
    }
    put(dir, "f16-v2.npy", &f16)?;
    put(dir, "f32-empty-v3.npy", &npy_header(3, "<f4", "(0, 1, 2, 3)"))
}

fn png_seeds(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use png::{BitDepth, ColorType};
    let cases: &[(&str, ColorType, BitDepth, u32, u32)] = &[
        ("gray8-28x28", ColorType::Grayscale, BitDepth::Eight, 28, 28),
        ("gray1-16x8", ColorType::Grayscale, BitDepth::One, 16, 8),
        ("gray16-5x7", ColorType::Grayscale, BitDepth::Sixteen, 5, 7),
        ("graya8-4x4", ColorType::GrayscaleAlpha, BitDepth::Eight, 4, 4),
        ("rgb8-8x8", ColorType::Rgb, BitDepth::Eight, 8, 8),
        ("rgba16-3x3", ColorType::Rgba, BitDepth::Sixteen, 3, 3),
        ("palette4-6x6", ColorType::Indexed, BitDepth::Four, 6, 6),
    ];
    for &(name, color, depth, w, h) in cases {
        let bits = color.samples() * depth as usize;
        let row = (w as usize * bits).div_ceil(8);
        let data: Vec<u8> = (0..row * h as usize).map(|i| (i * 37 % 251) as u8).collect();
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(color);
            enc.set_depth(depth);
            if color == ColorType::Indexed {
                enc.set_palette((0..16u8).flat_map(|i| [i * 16, 255 - i * 16, i * 8]).collect::<Vec<u8>>());
            }
            enc.add_text_chunk("brenier:seed".into(), name.into())?;
            let mut wr = enc.write_header()?;
            wr.write_image_data(&data)?;
        }
        put(dir, &format!("{name}.png"), &out)?;
    }
    for entry in std::fs::read_dir("assets/demo-inputs")?.flatten().take(1) {
        put(dir, "demo-input.png", &std::fs::read(entry.path())?)?;
    }
    Ok(())
}
