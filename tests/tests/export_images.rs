//! The exporter's own OT solve (`brenier_export::from_images`, what `brenier export --images-a
//! --images-b` runs) on the Gaussian oracle, where the answer is known: the images are samples of
//! the two domains' Gaussians as `.npy` files, the networks their exact ε. Each map's solve
//! record is in the manifest, and its cells hold equal mass on fresh samples the solver never
//! drew, within the certificate.

use brenier::bundle::manifest::OtSource;
use brenier::bundle::Bundle;
use brenier::bundle::MapDirection;
use brenier::io::batch::ReadOptions;
use brenier::rng::NoiseStream;
use brenier::NetKey;
use brenier_export::from_images::{export_from_images, ExportObserver, Images, ImagesSpec, TargetKind};
use brenier_export::ot::SolveConfig;
use brenier_tests::{oracle_bundle, IMAGE};

struct Quiet;
impl brenier::pipeline::Observer for Quiet {}
impl ExportObserver for Quiet {}

/// The oracle bundle's networks and settings, without its maps.
fn base() -> brenier_export::ExportSpec {
    let b = Bundle::open(&oracle_bundle().0).unwrap();
    let names: Vec<String> = b.manifest().ot_maps.iter().map(|m| m.name.clone()).collect();
    brenier_export::spec_from_bundle(&b, &names, &[]).unwrap()
}

fn spec(dir: &std::path::Path, targets: TargetKind) -> ImagesSpec {
    let pair = &oracle_bundle().1;
    let d = IMAGE.elems();
    let write = |name: &str, g: &brenier_export::gaussian::Gaussian, seed: u64, n: usize| {
        let path = dir.join(name);
        let x = g.sample_at(1.0, &NoiseStream::new(seed, 0).normal(n * d));
        brenier::io::npy::write(&path, &IMAGE.shape(n), &x).unwrap();
        path
    };
    ImagesSpec {
        images: [Images::Path(write("a.npy", &pair.a, 1, 3000)), Images::Path(write("b.npy", &pair.b, 2, 400))],
        read: ReadOptions::default(),
        maps: vec![MapDirection::Domain(NetKey::A), MapDirection::Noise(NetKey::B)],
        t: None,
        num_targets: 200,
        targets,
        encode_steps: 20,
        work_dir: dir.join("work"),
        solve: SolveConfig { tol: 0.15, ..SolveConfig::default() },
        backend: brenier::backend::BackendKind::Cpu,
        precision: brenier::backend::Precision::F32,
        threads: 2,
    }
}

#[test]
fn maps_solved_from_npy_images_are_certified_and_hold_on_fresh_samples() {
    let pair = &oracle_bundle().1;
    let d = IMAGE.elems();
    for kind in [TargetKind::Encoded, TargetKind::Forward] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("solved.brn");
        let r = export_from_images(&base(), &spec(dir.path(), kind), &out, &Quiet).unwrap();
        assert_eq!(r.images, [3000, 400]);
        let b = Bundle::open(&out).unwrap();
        let m = b.manifest();
        assert_eq!(m.ot_maps.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["a->b", "noise->b"]);
        let ab = brenier::sched::Schedule::new(&m.schedule).unwrap().alpha_bar(m.t_encode as i64);
        for map in &m.ot_maps {
            let rec = map.solve.as_ref().expect("a solved map carries its record");
            assert!(rec.certified && rec.rms_rel_mass_err.powi(2) + rec.margin < 0.15f32.powi(2), "{rec}");
            assert_eq!(map.count, 200);
            // Fresh samples of the map's true source measure at T, from a seed the solver never
            // saw: A's latent law is exactly the Gaussian at ᾱ, the noise map's is N(0, I).
            let m_samples = 60_000;
            let z = NoiseStream::new(99, map.name.len() as u64).normal(m_samples * d);
            let x = match map.source {
                OtSource::Domain { .. } => pair.a.sample_at(ab, &z),
                OtSource::Gaussian => z,
            };
            let (h, y) = b.ot_map(map).unwrap();
            let mut counts = vec![0usize; map.count];
            for a in brenier::ot::assign(&x, d, y, h).unwrap() {
                counts[a.index] += 1;
            }
            let n = map.count as f64;
            let rel2: f64 = counts.iter().map(|&c| (c as f64 / m_samples as f64 * n - 1.0).powi(2)).sum::<f64>() / n;
            // The certified error plus this check's own binomial noise, √(N/m) = 0.058.
            let rms = rel2.sqrt();
            assert!(rms < 0.15 + 0.07, "{kind:?} {}: fresh-sample RMS relative cell-mass error {rms}", map.name);
        }
    }
}

#[test]
fn too_few_images_and_a_wrong_channel_count_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), TargetKind::Forward);
    s.num_targets = 401;
    let out = dir.path().join("never.brn");
    let e = export_from_images(&base(), &s, &out, &Quiet).unwrap_err().to_string();
    assert!(e.contains("needs 401 target images of b") && e.contains("holds 400"), "{e}");
    let wrong = dir.path().join("rgb.npy");
    brenier::io::npy::write(&wrong, &[4, 3, 2, 3], &[0.0; 72]).unwrap();
    s.num_targets = 10;
    s.images[1] = Images::Path(wrong);
    let e = export_from_images(&base(), &s, &out, &Quiet).unwrap_err().to_string();
    assert!(e.contains("rgb.npy") && e.contains("[4, 3, 2, 3]") && e.contains("[0, 1, 2, 3]"), "{e}");
    assert!(!out.exists(), "a refused export left a bundle");
}

/// The solve checkpoints its heights in the work folder: a rerun starts from them (its first
/// iteration's fit error is already near the end of the first run's), and a damaged checkpoint
/// is ignored, not trusted.
#[test]
fn a_rerun_resumes_the_solve_from_its_checkpointed_heights() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), TargetKind::Forward);
    let out = dir.path().join("solved.brn");
    let first = export_from_images(&base(), &s, &out, &Quiet).unwrap();
    let checkpoints: Vec<_> = std::fs::read_dir(&s.work_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("heights-"))
        .collect();
    assert_eq!(checkpoints.len(), 2, "one checkpoint per map: {checkpoints:?}");
    let second = export_from_images(&base(), &s, &out, &Quiet).unwrap();
    for ((name, a), (_, b)) in first.solves.iter().zip(&second.solves) {
        let (a0, b0) = (a.mass_err[0], b.mass_err[0]);
        assert!(b0 < 0.5 * a0, "{name}: rerun starts at fit error {b0}, the first run at {a0}");
        assert!(b.converged, "{name}: {:?}", b.certificate);
    }
    for p in &checkpoints {
        std::fs::write(p, b"not a checkpoint").unwrap();
    }
    let third = export_from_images(&base(), &s, &out, &Quiet).unwrap();
    for ((name, a), (_, c)) in first.solves.iter().zip(&third.solves) {
        assert_eq!(a.mass_err[0], c.mass_err[0], "{name}: a damaged checkpoint must be ignored");
    }
}
