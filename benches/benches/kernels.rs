//! DDIM update throughput and bundle open time / RSS for a ~100 MB bundle (goal: open ≤ 50 ms,
//! RSS growing only with the pages touched).

use std::time::Instant;

use brenier::bundle::Bundle;
use brenier::rng::NoiseStream;
use brenier::sched::{ddim_update, DdimCoeffs, Schedule, ScheduleSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn ddim(c: &mut Criterion) {
    let s = Schedule::new(&ScheduleSpec::default()).unwrap();
    let coeffs = DdimCoeffs::new(&s, 500, 480, 0.5);
    let n = 64 * 784;
    let mut x = NoiseStream::new(1, 0).normal(n);
    let e = NoiseStream::new(1, 1).normal(n);
    let z = NoiseStream::new(1, 2).normal(n);
    let mut g = c.benchmark_group("ddim_update");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("64x784_eta0.5", |b| b.iter(|| ddim_update(&mut x, &e, Some(&z), coeffs)));
    g.finish();
}

fn bundle_open(c: &mut Criterion) {
    // A DDIB+OT bundle with 100 MB of f16 targets: the oracle networks plus a large map.
    use brenier_export::oracle_bundle::{oracle_spec, OraclePair};
    let image = brenier::bundle::ImageSpec { channels: 3, height: 32, width: 32 };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.brn");
    let small = OraclePair::new(brenier::bundle::ImageSpec { channels: 1, height: 2, width: 2 }, 1);
    let spec0 = oracle_spec(&small, 500, 25, 8, 1).unwrap();
    let mut sections = brenier_export::build_sections(&spec0).unwrap().0;
    // Swap in a 100 MB targets section of the right shape for a 3×32×32 image.
    let n = 100_000_000 / (2 * image.elems());
    let y: Vec<half::f16> = (0..n * image.elems()).map(|i| half::f16::from_f32((i % 97) as f32 * 0.01)).collect();
    sections.retain(|s| !s.name.starts_with("ot.") && s.name != "manifest");
    let mut m: serde_json::Value =
        serde_json::from_slice(&brenier_export::build_sections(&spec0).unwrap().1.to_json()).unwrap();
    m["image"] = serde_json::json!({"channels": 3, "height": 32, "width": 32});
    m["ot_maps"] = serde_json::json!([{ "name": "a->b", "source": {"kind": "domain", "domain": "a"}, "target": "b", "t": 500,
        "heights": "ot.heights.0", "targets": "ot.targets.0", "count": n }]);
    sections.insert(
        0,
        brenier::bundle::Section::bytes(
            "manifest",
            brenier::bundle::SectionKind::Manifest,
            serde_json::to_vec(&m).unwrap(),
        ),
    );
    sections.push(brenier::bundle::Section::f16_tensor("ot.targets.0", &[n, 3, 32, 32], &y));
    sections.push(brenier::bundle::Section::f32_tensor("ot.heights.0", &[n], &vec![0.0; n]));
    drop(y);
    let size = brenier::bundle::write_bundle(&path, &sections).unwrap();
    drop(sections);
    let rss0 = rss_mib();
    let t = Instant::now();
    let b = Bundle::open(&path).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss1 = rss_mib();
    println!(
        "bundle open: {:.1} MB file opened in {open_ms:.2} ms; RSS {rss0:.1} → {rss1:.1} MiB (+{:.1} MiB for a {:.0} MiB file)",
        size as f64 / 1e6,
        rss1 - rss0,
        size as f64 / 1048576.0
    );
    drop(b);
    c.bench_function("bundle_open_100MB", |bch| bch.iter(|| Bundle::open(&path).unwrap()));
}

criterion_group!(benches, ddim, bundle_open);
criterion_main!(benches);
