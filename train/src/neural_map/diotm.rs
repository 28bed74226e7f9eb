//! DIOTM training: a forward map T (μ → ν), a backward map S (ν → μ) and a value function
//! V(t, y), trained on the displacement interpolants of both maps with alternating updates.
//!
//! For the cost α‖x − y‖², the interpolant at time t is the weighted barycentre
//! argmin_ρ (1 − t)·W(μ, ρ) + t·W(ρ, ν), whose dual with the c-transform written through the
//! maps gives, per t (after dividing out the common factor t(1 − t)):
//!
//!   L(V, T, S) = E_x∼μ[ α·t·‖x − T(x)‖² − V_t((1 − t)·x + t·T(x)) ]
//!              + E_z∼ν[ α·(1 − t)·‖z − S(z)‖² + V_t(t·z + (1 − t)·S(z)) ],
//!
//! max over V, min over T and S, with t ∼ U(0, 1) per sample. At t = 1 the forward term is the
//! OTM objective. At the saddle point ∇V_t is 2α times the (constant) displacement velocity,
//! so V solves the Hamilton–Jacobi equation ∂_t V + ‖∇_y V‖² / (4α) = 0; its squared residual
//! at both maps' interpolants is the HJB regulariser, weighted by `hjb`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use brenier::rng::NoiseStream;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use super::nets::{MapNet, ValueNet};
use crate::{checkpoint, params};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiotmConfig {
    /// Cost intensity α of c(x, y) = α‖x − y‖².
    pub alpha: f32,
    /// Weight of the HJB regulariser (0 = off).
    pub hjb: f32,
    pub steps: usize,
    pub batch: usize,
    pub lr_map: f64,
    pub lr_value: f64,
    /// Adam β1, β2 (GAN-style training likes a small β1).
    pub betas: (f32, f32),
    /// Map updates per value-function update.
    pub map_steps: usize,
    /// Per-parameter gradient norm clip.
    pub grad_clip: f32,
    /// Hidden widths of the value function, and its number of time harmonics.
    pub value_hidden: Vec<usize>,
    pub harmonics: usize,
    pub seed: u64,
    pub checkpoint_every: usize,
}

impl Default for DiotmConfig {
    fn default() -> Self {
        DiotmConfig {
            alpha: 1.0,
            hjb: 1.0,
            steps: 2000,
            batch: 256,
            lr_map: 1e-3,
            lr_value: 1e-3,
            betas: (0.5, 0.9),
            map_steps: 1,
            grad_clip: 10.0,
            value_hidden: vec![128, 128],
            harmonics: 3,
            seed: 0,
            checkpoint_every: 500,
        }
    }
}

/// Where training batches come from: points of the source measure μ and the target ν.
pub trait Measures {
    fn dim(&self) -> usize;
    /// `n` points of μ, `[n, d]`, for step `step` (deterministic in `seed` and `step`).
    fn source(&self, n: usize, seed: u64, step: usize) -> Vec<f32>;
    /// `n` points of ν, `[n, d]`.
    fn target(&self, n: usize, seed: u64, step: usize) -> Vec<f32>;
}

/// One logged step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepLog {
    pub step: usize,
    /// L(V, T, S) at the maps' update: the objective both sides fight over.
    pub objective: f32,
    /// E V(forward interpolants) − E V(backward interpolants): the value function's loss.
    pub value_gap: f32,
    /// Mean squared HJB residual at the interpolants (computed even when its weight is 0).
    pub hjb_residual: f32,
    /// Mean transport cost α‖x − T(x)‖² of the forward map.
    pub cost: f32,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    config: DiotmConfig,
    dim: usize,
    step: usize,
    log: Vec<StepLog>,
    seconds: f64,
    sizes: [Vec<usize>; 3],
}

/// The result of a run: both maps and the value function (on the plain CPU device), the log.
pub struct Trained<M> {
    pub forward: M,
    pub backward: M,
    pub value: ValueNet,
    pub log: Vec<StepLog>,
    pub seconds: f64,
}

fn tensor(v: Vec<f32>, n: usize, d: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [n, d]), device)
}

fn scalar(t: Tensor<1>) -> f32 {
    params::host(t).first().copied().unwrap_or(f32::NAN)
}

/// t ∼ U(0, 1) per sample, from the run's seed and step.
fn times(seed: u64, step: usize, n: usize) -> Vec<f32> {
    const SCALE: usize = 1 << 24;
    let s = NoiseStream::new(seed, 0x7157_0000 + step as u64);
    (0..n).map(|i| (s.index(i as u64, SCALE) as f32 + 0.5) / SCALE as f32).collect()
}

/// The interpolants of both maps at `t` (`[n, 1]`): (1 − t)x + tT(x) and tz + (1 − t)S(z).
fn interpolants(x: Tensor<2>, tx: Tensor<2>, z: Tensor<2>, sz: Tensor<2>, t: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let one_minus = t.clone().neg().add_scalar(1.0);
    let fwd = x * one_minus.clone() + tx * t.clone();
    let bwd = z * t + sz * one_minus;
    (fwd, bwd)
}

fn row_sq(a: Tensor<2>) -> Tensor<1> {
    let n = a.dims()[0];
    a.powf_scalar(2.0).sum_dim(1).reshape([n])
}

/// Mean squared HJB residual ∂_t V + ‖∇V‖²/(4α) at `y`.
fn hjb_residual(value: &ValueNet, y: Tensor<2>, t: Tensor<1>, alpha: f32) -> Tensor<1> {
    let d = value.derivs(y, t);
    (d.dt + row_sq(d.grad_y).div_scalar(4.0 * alpha)).powf_scalar(2.0).mean()
}

fn optimizer(cfg: &DiotmConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(cfg.betas.0)
        .with_beta_2(cfg.betas.1)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.grad_clip)))
        .init()
}

/// Trains T, S and V on `data`, checkpointing into `out` (`resume` continues from there; the
/// configuration must match). `make_map` builds an untrained map on a device.
pub fn train<M: MapNet + Clone>(
    data: &dyn Measures,
    cfg: &DiotmConfig,
    make_map: impl Fn(&Device) -> M,
    out: &Path,
    resume: bool,
    mut on_step: impl FnMut(&StepLog),
) -> Result<Trained<M>> {
    if cfg.batch == 0 || cfg.alpha <= 0.0 || !cfg.alpha.is_finite() || cfg.hjb < 0.0 || cfg.map_steps == 0 {
        bail!("neural map: batch and map steps must be ≥ 1, alpha > 0 and hjb ≥ 0 (got {cfg:?})");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let device = Device::flex().autodiff();
    let d = data.dim();
    // Each network its own id range, so the three optimizers' saved states find their parameters.
    let mut fwd = params::stable_ids(make_map(&device), 1 << 32);
    let mut bwd = params::stable_ids(make_map(&device), 2 << 32);
    let mut value = params::stable_ids(ValueNet::new(d, &cfg.value_hidden, cfg.harmonics, &device), 3 << 32);
    let (mut opt_f, mut opt_b, mut opt_v) = (optimizer(cfg), optimizer(cfg), optimizer(cfg));
    let sizes = |p: Vec<Vec<f32>>| p.iter().map(Vec::len).collect::<Vec<_>>();
    let all_sizes = [sizes(params::collect(&fwd)), sizes(params::collect(&bwd)), sizes(params::collect(&value))];
    let mut state = State { config: cfg.clone(), dim: d, step: 0, log: vec![], seconds: 0.0, sizes: all_sizes.clone() };
    let ckpt = checkpoint::dir(out);
    if resume && ckpt.join("state.json").exists() {
        let s: State = serde_json::from_slice(&std::fs::read(ckpt.join("state.json"))?)?;
        let same = DiotmConfig { steps: cfg.steps, checkpoint_every: cfg.checkpoint_every, ..s.config.clone() } == *cfg;
        if !same || s.sizes != all_sizes || s.dim != d {
            bail!(
                "checkpoint in {} was made with another configuration; start afresh without --resume",
                ckpt.display()
            );
        }
        fn load<N: burn::module::Module>(m: N, ckpt: &Path, name: &str, sizes: &[usize]) -> Result<N> {
            params::load(m, &checkpoint::read_params(ckpt, name, sizes)?).map_err(anyhow::Error::msg)
        }
        fwd = load(fwd, &ckpt, "forward", &all_sizes[0])?;
        bwd = load(bwd, &ckpt, "backward", &all_sizes[1])?;
        value = load(value, &ckpt, "value", &all_sizes[2])?;
        // The committed runs ship without their Adam states (docs/DESIGN.md, "Training runs"):
        // resuming one restarts Adam's moments from zero on the loaded weights.
        let opt = |o: ModuleOptimizer, name: &str| {
            if !ckpt.join(name).exists() {
                log::warn!("{} has no optimizer state {name}: Adam restarts from zero moments", ckpt.display());
                return Ok(o);
            }
            o.load(ckpt.join(name)).map_err(|e| anyhow::anyhow!("loading optimizer state {name}: {e:?}"))
        };
        opt_f = opt(opt_f, "forward.bpk")?;
        opt_b = opt(opt_b, "backward.bpk")?;
        opt_v = opt(opt_v, "value.bpk")?;
        log::info!("resumed from step {}", s.step);
        state = State { config: cfg.clone(), ..s };
    }
    let mut csv = std::fs::File::create(out.join("loss.csv"))?;
    writeln!(csv, "step,objective,value_gap,hjb_residual,cost")?;
    for l in &state.log {
        writeln!(csv, "{},{},{},{},{}", l.step, l.objective, l.value_gap, l.hjb_residual, l.cost)?;
    }
    let started = Instant::now();
    let base_seconds = state.seconds;
    let b = cfg.batch;
    let alpha = cfg.alpha;
    while state.step < cfg.steps {
        let step = state.step;
        let x = tensor(data.source(b, cfg.seed, step), b, d, &device);
        let z = tensor(data.target(b, cfg.seed, step), b, d, &device);
        let t1 = Tensor::<1>::from_floats(times(cfg.seed, step, b).as_slice(), &device);
        let t2 = t1.clone().reshape([b, 1]);

        // Maps: minimise L with V fixed.
        let mut objective = 0.0;
        let mut cost = 0.0;
        for _ in 0..cfg.map_steps {
            let (tx, sz) = (fwd.transport(x.clone()), bwd.transport(z.clone()));
            let sq_f = row_sq(x.clone() - tx.clone());
            // The unweighted ‖x − T(x)‖² is logged as the transport cost; the objective weights it by t.
            cost = scalar(sq_f.clone().detach().mean().mul_scalar(alpha));
            let cost_f = sq_f * t1.clone().mul_scalar(alpha);
            let cost_b = row_sq(z.clone() - sz.clone()) * t1.clone().neg().add_scalar(1.0).mul_scalar(alpha);
            let (yf, yb) = interpolants(x.clone(), tx.clone(), z.clone(), sz, t2.clone());
            let loss = (cost_f - value.value(yf, t1.clone())).mean() + (cost_b + value.value(yb, t1.clone())).mean();
            objective = scalar(loss.clone());
            let mut grads = loss.backward();
            let gf = GradientsParams::from_module(&mut grads, &fwd);
            let gb = GradientsParams::from_module(&mut grads, &bwd);
            fwd = opt_f.step(cfg.lr_map, fwd, gf);
            bwd = opt_b.step(cfg.lr_map, bwd, gb);
        }

        // Value function: maximise L (minimise the gap) at the maps' detached interpolants.
        let (tx, sz) = (fwd.transport(x.clone()).detach(), bwd.transport(z.clone()).detach());
        let (yf, yb) = interpolants(x, tx, z, sz, t2);
        let gap = value.value(yf.clone(), t1.clone()).mean() - value.value(yb.clone(), t1.clone()).mean();
        let residual =
            (hjb_residual(&value, yf, t1.clone(), alpha) + hjb_residual(&value, yb, t1, alpha)).div_scalar(2.0);
        let value_gap = scalar(gap.clone());
        let hjb = scalar(residual.clone());
        let loss = if cfg.hjb > 0.0 { gap + residual.mul_scalar(cfg.hjb) } else { gap };
        let grads = GradientsParams::from_grads(loss.backward(), &value);
        value = opt_v.step(cfg.lr_value, value, grads);

        let entry = StepLog { step: step + 1, objective, value_gap, hjb_residual: hjb, cost };
        if ![objective, value_gap, hjb, cost].iter().all(|v| v.is_finite()) {
            bail!(
                "neural map training diverged at step {}: {entry:?}; lower the learning rates or raise --hjb",
                step + 1
            );
        }
        state.step += 1;
        state.log.push(entry);
        state.seconds = base_seconds + started.elapsed().as_secs_f64();
        writeln!(csv, "{},{},{},{},{}", entry.step, objective, value_gap, hjb, cost)?;
        on_step(&entry);
        if state.step.is_multiple_of(cfg.checkpoint_every.max(1)) || state.step == cfg.steps {
            checkpoint::write(out, |tmp| {
                checkpoint::write_params(tmp, "forward", &params::collect(&fwd))?;
                checkpoint::write_params(tmp, "backward", &params::collect(&bwd))?;
                checkpoint::write_params(tmp, "value", &params::collect(&value))?;
                for (o, name) in [(&opt_f, "forward.bpk"), (&opt_b, "backward.bpk"), (&opt_v, "value.bpk")] {
                    o.save(tmp.join(name)).map_err(|e| anyhow::anyhow!("saving optimizer state {name}: {e:?}"))?;
                }
                std::fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(&state)?)?;
                Ok(())
            })?;
        }
    }
    let cpu = Device::flex();
    let plain = |m: &M| params::load(make_map(&cpu), &params::collect(m)).map_err(anyhow::Error::msg);
    Ok(Trained {
        forward: plain(&fwd)?,
        backward: plain(&bwd)?,
        value: params::load(ValueNet::new(d, &cfg.value_hidden, cfg.harmonics, &cpu), &params::collect(&value))
            .map_err(anyhow::Error::msg)?,
        log: state.log,
        seconds: state.seconds,
    })
}

/// Applies a map to host points `[n, d]`.
pub fn apply<M: MapNet>(map: &M, x: &[f32], d: usize) -> Vec<f32> {
    let n = x.len() / d;
    params::host(map.transport(tensor(x.to_vec(), n, d, &Device::flex())))
}
