//! OT hard map throughput next to a plain f32 sgemm of the same shape on the same threads.
//! The map reads f16 targets and adds an argmax; the goal is ≥ 0.7 of the sgemm's throughput.
//! A summary line per shape prints the ratio measured side by side in this run.

use std::time::Instant;

use brenier::ot::assign;
use brenier::rng::NoiseStream;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::f16;
use rayon::prelude::*;

const N: usize = 10_000;

/// Y·Xᵀ in f32 with the same target split across threads as the map (so threading is equal).
fn sgemm(y: &[f32], x: &[f32], d: usize, b: usize, out: &mut [f32]) {
    out.par_chunks_mut(1024 * b).zip(y.par_chunks(1024 * d)).for_each(|(o, yc)| {
        let rows = yc.len() / d;
        // SAFETY: yc is rows×d, x is b×d (read transposed), o is rows×b.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                d,
                b,
                1.0,
                yc.as_ptr(),
                d as isize,
                1,
                x.as_ptr(),
                1,
                d as isize,
                0.0,
                o.as_mut_ptr(),
                b as isize,
                1,
            );
        }
    });
}

fn time(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let t = Instant::now();
    (0..reps).for_each(|_| f());
    t.elapsed().as_secs_f64() / reps as f64
}

fn bench(c: &mut Criterion) {
    for &d in &[784usize, 3072] {
        let yf = NoiseStream::new(1, 0).normal(N * d);
        let y16: Vec<f16> = yf.iter().map(|&v| f16::from_f32(v)).collect();
        let h = NoiseStream::new(1, 1).normal(N);
        for &b in &[1usize, 64] {
            let x = NoiseStream::new(1, 2).normal(b * d);
            let mut out = vec![0f32; N * b];
            let mut g = c.benchmark_group(format!("ot_map/N{N}_D{d}_B{b}"));
            g.throughput(Throughput::Elements((N * b) as u64));
            g.sample_size(10);
            g.bench_function("brenier_assign_f16", |bch| bch.iter(|| assign(&x, d, &y16, &h).unwrap()));
            g.bench_function("sgemm_f32", |bch| bch.iter(|| sgemm(&yf, &x, d, b, &mut out)));
            g.finish();
            let reps = if b == 1 { 50 } else { 5 };
            let t_map = time(|| drop(assign(&x, d, &y16, &h).unwrap()), reps);
            let t_gemm = time(|| sgemm(&yf, &x, d, b, &mut out), reps);
            println!(
                "ratio N={N} D={d} B={b}: OT map {:.2} ms, sgemm {:.2} ms → map throughput = {:.2} × sgemm ({} threads)",
                t_map * 1e3,
                t_gemm * 1e3,
                t_gemm / t_map,
                rayon::current_num_threads()
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
