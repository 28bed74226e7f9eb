//! Network parity: each ε-network run in a reduced precision against f32, on held-out images
//! noised to the times the pipelines evaluate.

use std::time::Instant;

use brenier::backend::Precision;
use brenier::bundle::calibration::NetParity;
use brenier::rng::NoiseStream;
use brenier::{Engine, NetKey};

use crate::error::Result;

/// Inputs a network sees at time t: x_t = √ᾱ_t x0 + √(1−ᾱ_t) z with fixed noise (stream per t),
/// so every run and every machine evaluates the same tensors.
pub fn noised(engine: &Engine, x0: &[f32], t: i64, seed: u64) -> Vec<f32> {
    let ab = engine.schedule().alpha_bar(t);
    let z = NoiseStream::new(seed, 1000 + t as u64).normal(x0.len());
    x0.iter().zip(&z).map(|(x, z)| (ab.sqrt() * *x as f64 + (1.0 - ab).sqrt() * *z as f64) as f32).collect()
}

/// ε of `key` at each t in `ts` on `x0` noised to t, concatenated [ts, n, D], with the seconds
/// the evaluations took.
pub fn eps_at(engine: &Engine, key: NetKey, x0: &[f32], ts: &[i64], seed: u64) -> Result<(Vec<f32>, f64)> {
    let n = engine.check_batch(x0, "parity input")?;
    let mut out = Vec::with_capacity(ts.len() * x0.len());
    let mut time = brenier::pipeline::NetTime::default();
    // One untimed evaluation: the first run of a tract plan allocates its scratch space.
    engine.eps(key, &x0[..engine.dim()], 1, ts[0], "warm-up", &mut time)?;
    time = Default::default();
    for &t in ts {
        out.extend(engine.eps(key, &noised(engine, x0, t, seed), n, t, "parity", &mut time)?);
    }
    Ok((out, time.seconds))
}

/// Output of the manifest's neural map number `index` on `x0` noised to the map's time (samples
/// of the source marginal at T, which is what the map is trained on and fed), with the seconds
/// the evaluation took.
pub fn neural_map_at(engine: &Engine, index: usize, x0: &[f32], seed: u64) -> Result<(Vec<f32>, f64)> {
    let n = engine.check_batch(x0, "parity input")?;
    let (spec, net) = engine.neural_map(index)?;
    let t = spec.t as i64;
    let x = noised(engine, x0, t, seed);
    // One untimed evaluation: the first run of a tract plan allocates its scratch space.
    net.run(&x[..engine.dim()], 1, t)?;
    let t0 = Instant::now();
    let out = net.run(&x, n, t)?;
    Ok((out, t0.elapsed().as_secs_f64()))
}

/// Error of `got` against `reference` relative to the reference's scale (max and mean).
pub fn relative_error(got: &[f32], reference: &[f32]) -> (f64, f64) {
    let scale_max = reference.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-12);
    let scale_mean = (reference.iter().map(|v| v.abs() as f64).sum::<f64>() / reference.len().max(1) as f64).max(1e-12);
    let diffs = got.iter().zip(reference).map(|(a, b)| (*a as f64 - *b as f64).abs());
    let (max, sum) = diffs.fold((0f64, 0f64), |(m, s), d| (m.max(d), s + d));
    (max / scale_max, sum / reference.len().max(1) as f64 / scale_mean)
}

/// Parity of both networks and of every neural map: `reduced` against `f32` on `x0`, the
/// ε-networks at each of `ts`, the maps at their own time.
pub fn net_parity(f32_engine: &Engine, reduced: &Engine, x0: &[f32], ts: &[i64], seed: u64) -> Result<Vec<NetParity>> {
    let n = f32_engine.check_batch(x0, "parity input")?;
    let entry = |net: String, ts: Vec<i64>, (want, s32): (Vec<f32>, f64), (got, s): (Vec<f32>, f64)| {
        let evals = (n * ts.len()) as f64;
        let (max_rel_err, mean_rel_err) = relative_error(&got, &want);
        NetParity {
            net,
            precision: reduced.backend().precision(),
            ts,
            max_rel_err,
            mean_rel_err,
            ms_per_image_f32: s32 / evals * 1e3,
            ms_per_image: s / evals * 1e3,
        }
    };
    let mut out = vec![];
    for key in [NetKey::A, NetKey::B] {
        let want = eps_at(f32_engine, key, x0, ts, seed)?;
        let t0 = Instant::now();
        let got = eps_at(reduced, key, x0, ts, seed)?;
        log::debug!("parity of net {}: {:.1} s", key.as_str(), t0.elapsed().as_secs_f64());
        out.push(entry(key.as_str().into(), ts.to_vec(), want, got));
    }
    for (i, spec) in f32_engine.bundle().manifest().neural_maps.iter().enumerate() {
        let (want, got) = (neural_map_at(f32_engine, i, x0, seed)?, neural_map_at(reduced, i, x0, seed)?);
        out.push(entry(format!("map {}", spec.name), vec![spec.t as i64], want, got));
    }
    Ok(out)
}

/// The precisions worth measuring against f32 here.
pub fn reduced_precisions() -> [Precision; 1] {
    [Precision::F16]
}

#[cfg(test)]
mod tests {
    use super::relative_error;

    #[test]
    fn relative_error_is_scaled_by_the_reference() {
        let r = [1.0f32, -2.0, 4.0, -1.0];
        assert_eq!(relative_error(&r, &r), (0.0, 0.0));
        // One element off by 0.4: max 0.4/4 = 0.1; mean (0.4/4) / (8/4) = 0.05.
        let g = [1.0f32, -2.0, 4.4, -1.0];
        let (max, mean) = relative_error(&g, &r);
        assert!((max - 0.1).abs() < 1e-6 && (mean - 0.05).abs() < 1e-6, "{max} {mean}");
    }
}
