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
    let source = Source::Domain { latents: &lat_a, clean: &set_a, alpha_bar: ab, latent_share: 0.5 };
    let cfg = SolveConfig { grad_tol: 0.1, max_iters: 3000, patience: 30, ..SolveConfig::default() };
    let s = solve_map("a->b", y_b, d, &source, &cfg, 3, 64_000, |_| {}).unwrap();
    println!(
        "converged {} in {} iterations (n_mc {}); held-out |mass−1/N|·N max {:.3} rms {:.3}",
        s.report.converged,
        s.report.iterations,
        s.report.final_n_mc,
        s.heldout_max_rel_mass_err,
        s.heldout_rms_rel_mass_err
    );
    assert!(s.report.converged);
    // Certified RMS below 0.1, plus √(128/64000) = 0.045 of held-out sampling noise; the worst
    // of 128 cells may sit ~3 RMS out.
    assert!(s.heldout_rms_rel_mass_err < 0.1 + 0.05, "{}", s.heldout_rms_rel_mass_err);
    assert!(s.heldout_max_rel_mass_err < 0.45, "{}", s.heldout_max_rel_mass_err);
}

/// The solver on the real problem's geometry without a network: Fashion-MNIST sneakers and boots
/// diffused forward to T = 500 (q(x_T | x_0)), N = 500 targets in 784-D. Needs the Debian package
/// dataset-fashion-mnist; `cargo test -p brenier-train --release -- --ignored forward_noise`.
#[test]
#[ignore = "needs dataset-fashion-mnist and ~1 min in release"]
fn forward_noise_fashion_latents_converge() {
    use brenier::sched::Schedule;
    use brenier_train::data::{load_fashion_mnist, Split, FASHION_DIR};
    let train = load_fashion_mnist(FASHION_DIR.as_ref(), Split::Train).unwrap();
    let sneakers = train.filter_classes(&[7]);
    let boots = train.filter_classes(&[9]).take(500);
    let d = boots.image.elems();
    let ab = Schedule::new(&Default::default()).unwrap().alpha_bar(500);
    let (sa, sn) = (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32);
    let z = NoiseStream::new(1, 0).normal(boots.pixels.len());
    let targets: Vec<f32> = boots.pixels.iter().zip(&z).map(|(x, e)| sa * x + sn * e).collect();
    let source = Source::Domain { latents: &[], clean: &sneakers, alpha_bar: ab, latent_share: 0.0 };
    let cfg = SolveConfig { grad_tol: 0.05, max_iters: 1500, ..SolveConfig::default() };
    let start = std::time::Instant::now();
    let s = solve_map("sneaker->boot", targets, d, &source, &cfg, 5, 100_000, |s| {
        if s.iter % 25 == 0 {
            println!(
                "{:4} E {:.4} |g| {:.5} mass err {:.3} empty {} n_mc {}",
                s.iter, s.energy, s.grad_norm, s.mass_err, s.empty, s.n_mc
            );
        }
    })
    .unwrap();
    println!(
        "σ {:.2} lr {:.3}: converged {} in {} iterations, {} restarts, final n_mc {}, {:.0} s; held-out |mass−1/N|·N max {:.3} rms {:.3}",
        s.report.score_scale,
        s.report.lr_abs,
        s.report.converged,
        s.report.iterations,
        s.report.restarts,
        s.report.final_n_mc,
        start.elapsed().as_secs_f64(),
        s.heldout_max_rel_mass_err,
        s.heldout_rms_rel_mass_err
    );
    assert!(s.report.converged);
    // 100 000 held-out samples over 500 cells: binomial noise alone gives an RMS of 0.07 and a
    // max near 0.25.
    assert!(s.heldout_rms_rel_mass_err < 0.12, "{}", s.heldout_rms_rel_mass_err);
    assert!(s.heldout_max_rel_mass_err < 0.5, "{}", s.heldout_max_rel_mass_err);
}
