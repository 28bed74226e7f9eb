//! The real-data OT path on the Gaussian oracle bundle, where the answer is known: targets are
//! B's training samples encoded to T by B's exact network; the source mixes A's encoded latents
//! with forward-noise samples; the solved cells hold equal mass on held-out samples.

use brenier::bundle::ImageSpec;
use brenier::ot::SolveConfig;
use brenier::pipeline::Silent;
use brenier::rng::NoiseStream;
use brenier::NetKey;
use brenier_train::data::ImageSet;
use brenier_train::ot::{encode_all, solve_map, Source};

fn samples(g: &brenier_export::gaussian::Gaussian, image: ImageSpec, n: usize, seed: u64) -> ImageSet {
    ImageSet {
        image,
        pixels: g.sample_at(1.0, &NoiseStream::new(seed, 0).normal(n * image.elems())),
        labels: vec![0; n],
    }
}

#[test]
fn domain_source_map_equalises_cells_on_heldout_samples() {
    let (path, pair) = brenier_tests::oracle_bundle();
    let engine = brenier_tests::engine(path);
    let image = pair.image;
    let d = image.elems();
    let t = 500;
    let ab = engine.schedule().alpha_bar(t);
    let set_a = samples(&pair.a, image, 400, 1);
    let set_b = samples(&pair.b, image, 128, 2);
    let y_b = encode_all(&engine, NetKey::B, &set_b, t as usize, 50, &Silent).unwrap();
    let lat_a = encode_all(&engine, NetKey::A, &set_a, t as usize, 50, &Silent).unwrap();
    let source = Source::Domain { latents: &lat_a, clean: &set_a, alpha_bar: ab };
    let cfg = SolveConfig { grad_tol: 0.15, max_iters: 3000, patience: 30, ..SolveConfig::default() };
    let s = solve_map("a->b", y_b, d, &source, &cfg, 3, 64_000, |_, _, _, _| {}).unwrap();
    println!(
        "converged {} in {} iterations; held-out max |mass−1/N|·N = {:.3}",
        s.report.converged, s.report.iterations, s.heldout_max_rel_mass_err
    );
    assert!(s.report.converged);
    assert!(s.heldout_max_rel_mass_err < 0.5, "{}", s.heldout_max_rel_mass_err);
}
