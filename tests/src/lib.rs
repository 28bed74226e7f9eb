//! Shared helpers for the end-to-end tests: oracle bundles written to temp dirs and sample
//! moment checks.

pub mod bundle_edit;
pub mod cuda_host;
pub mod faults;
pub mod faulty_net;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use brenier::backend::CpuBackend;
use brenier::bundle::{Bundle, ImageSpec};
use brenier::{Engine, NetKey};
use brenier_export::gaussian::{affine_map_network, ot_map_between, Gaussian};
use brenier_export::onnx_build::to_bytes;
use brenier_export::oracle_bundle::{oracle_spec, OraclePair};
use brenier_export::NeuralMapInput;

pub const IMAGE: ImageSpec = ImageSpec { channels: 1, height: 2, width: 3 };

/// Writes the oracle bundle (T = 500, 256 targets) into `dir` and returns its path and pair.
pub fn write_oracle_bundle(dir: &Path) -> (PathBuf, OraclePair) {
    let pair = OraclePair::new(IMAGE, 5);
    let path = dir.join("oracle.brn");
    let spec = oracle_spec(&pair, 500, 25, 256, 17).expect("oracle spec");
    brenier_export::export(&spec, &path).expect("oracle export");
    (path, pair)
}

/// The oracle bundle, built once per test binary (solving its three maps takes seconds).
pub fn oracle_bundle() -> &'static (PathBuf, OraclePair) {
    static CELL: OnceLock<(tempfile::TempDir, (PathBuf, OraclePair))> = OnceLock::new();
    let (_, b) = CELL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = write_oracle_bundle(dir.path());
        (dir, b)
    });
    b
}

/// The train step of the neural map in [`write_neural_map_bundle`].
pub const NEURAL_MAP_T: usize = 500;

/// The oracle bundle plus the exact A→B map at [`NEURAL_MAP_T`] as a neural map, written into
/// `dir`; returns its path, the pair and the map (A, c).
pub fn write_neural_map_bundle(dir: &Path) -> (PathBuf, OraclePair, Vec<f64>, Vec<f64>) {
    let pair = OraclePair::new(IMAGE, 5);
    let mut spec = oracle_spec(&pair, NEURAL_MAP_T, 25, 256, 17).expect("oracle spec");
    let ab = brenier::sched::Schedule::new(&spec.schedule).expect("schedule").alpha_bar(NEURAL_MAP_T as i64);
    let (a, c) = ot_map_between(&pair.a, &pair.b, ab);
    spec.neural_maps.push(NeuralMapInput {
        name: "a->b".into(),
        source: NetKey::A,
        target: NetKey::B,
        t: NEURAL_MAP_T,
        onnx: to_bytes(&affine_map_network(&a, &c, IMAGE)),
        provenance: serde_json::json!({ "oracle": "closed-form Gaussian OT map" }),
        fp16_record: None,
    });
    let path = dir.join("neural.brn");
    brenier_export::export(&spec, &path).expect("neural-map bundle export");
    (path, pair, a, c)
}

pub fn engine(path: &Path) -> Engine {
    Engine::new(Bundle::open(path).expect("open"), Box::new(CpuBackend::new(2).expect("cpu"))).expect("engine")
}

pub use brenier::linalg::sample_moments as moments;

/// Max absolute difference between two slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Latent moments of a Gaussian domain at step t (ᾱ).
pub fn latent_moments(g: &Gaussian, alpha_bar: f64) -> (Vec<f64>, Vec<f64>) {
    (g.mean.iter().map(|m| m * alpha_bar.sqrt()).collect(), g.cov_at(alpha_bar))
}
