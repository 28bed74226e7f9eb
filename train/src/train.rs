//! The training loop: ε-prediction loss on the manifest's VP schedule, AdamW with gradient
//! clipping, EMA weights, seeded sampling, checkpoints every few hundred steps and `--resume`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use brenier::rng::NoiseStream;
use brenier::sched::{Schedule, ScheduleSpec};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::checkpoint;
use crate::data::ImageSet;
use crate::model::{UNet, UNetConfig};
use crate::params;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct TrainConfig {
    pub unet: UNetConfig,
    pub schedule: ScheduleSpec,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f32,
    pub ema_decay: f32,
    /// Per-parameter gradient norm clip.
    pub grad_clip: f32,
    pub seed: u64,
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            unet: UNetConfig::default(),
            schedule: ScheduleSpec::default(),
            steps: 3000,
            batch: 64,
            lr: 1e-3,
            weight_decay: 1e-4,
            ema_decay: 0.999,
            grad_clip: 1.0,
            seed: 0,
            checkpoint_every: 200,
        }
    }
}

/// What a run leaves: the EMA network (for export and sampling) and the loss trace.
pub struct Trained {
    pub ema: UNet,
    pub losses: Vec<(usize, f32)>,
    pub seconds: f64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    config: TrainConfig,
    step: usize,
    losses: Vec<(usize, f32)>,
    seconds: f64,
    sizes: Vec<usize>,
    image: brenier::bundle::ImageSpec,
}

/// Writes a checkpoint (see [`checkpoint::write`]: an interrupted save keeps the previous one).
fn save(
    dir: &Path,
    state: &State,
    model: &[Vec<f32>],
    ema: &[Vec<f32>],
    optim: &burn::optim::ModuleOptimizer,
) -> Result<()> {
    checkpoint::write(dir, |tmp| {
        checkpoint::write_params(tmp, "model", model)?;
        checkpoint::write_params(tmp, "ema", ema)?;
        optim.save(tmp.join("optim.bpk")).map_err(|e| anyhow::anyhow!("saving optimizer state: {e:?}"))?;
        std::fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(state)?)?;
        Ok(())
    })
}

pub fn checkpoint_dir(out: &Path) -> PathBuf {
    checkpoint::dir(out)
}

/// Trains on `set` (labels are the classes the network is conditioned on), checkpointing into
/// `out`. With `resume`, continues from `out/ckpt` (the configuration must match).
pub fn train(
    set: &ImageSet,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    mut on_step: impl FnMut(usize, f32),
) -> Result<Trained> {
    if set.is_empty() {
        bail!("no training images");
    }
    let [h, w] = [set.image.height, set.image.width];
    if h % 4 != 0 || w % 4 != 0 || set.image.channels != cfg.unet.in_channels {
        bail!(
            "images {:?} must have {} channel(s) and sides divisible by 4 (28 or 32)",
            set.image,
            cfg.unet.in_channels
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let device = Device::flex().autodiff();
    let schedule = Schedule::new(&cfg.schedule)?;
    // Stable parameter ids: the saved optimizer state is keyed by them (see params::stable_ids).
    let mut model = params::stable_ids(UNet::new(&cfg.unet, &device), 1 << 32);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.grad_clip)))
        .init();
    let sizes: Vec<usize> = params::collect(&model).iter().map(Vec::len).collect();
    log::info!("UNet {:?}: {} parameters in {} tensors", cfg.unet.channels, sizes.iter().sum::<usize>(), sizes.len());
    let mut state =
        State { config: cfg.clone(), step: 0, losses: vec![], seconds: 0.0, sizes: sizes.clone(), image: set.image };
    let mut ema = params::collect(&model);
    let ckpt = checkpoint_dir(out);
    if resume && ckpt.join("state.json").exists() {
        let s: State = serde_json::from_slice(&std::fs::read(ckpt.join("state.json"))?)?;
        // The step budget and checkpoint interval may change on resume (train longer); the rest
        // defines the run.
        let same = TrainConfig { steps: cfg.steps, checkpoint_every: cfg.checkpoint_every, ..s.config.clone() } == *cfg;
        if !same || s.sizes != sizes || s.image != set.image {
            bail!(
                "checkpoint in {} was made with another configuration; start afresh without --resume",
                ckpt.display()
            );
        }
        model = params::load(model, &checkpoint::read_params(&ckpt, "model", &sizes)?).map_err(anyhow::Error::msg)?;
        ema = checkpoint::read_params(&ckpt, "ema", &sizes)?;
        // The committed runs ship without their Adam state (docs/DESIGN.md, "Training runs"):
        // resuming one restarts Adam's moments from zero on the loaded weights.
        if ckpt.join("optim.bpk").exists() {
            optim =
                optim.load(ckpt.join("optim.bpk")).map_err(|e| anyhow::anyhow!("loading optimizer state: {e:?}"))?;
        } else {
            log::warn!("{} has no optimizer state (optim.bpk): Adam restarts from zero moments", ckpt.display());
        }
        log::info!("resumed from step {}", s.step);
        state = State { config: cfg.clone(), ..s };
    }
    let d = set.image.elems();
    let n_train = schedule.n_train();
    let pick = NoiseStream::new(cfg.seed, 1);
    let t_pick = NoiseStream::new(cfg.seed, 2);
    let started = Instant::now();
    let base_seconds = state.seconds;
    // loss.csv restarts from what the checkpoint holds: steps logged after the last checkpoint
    // of an interrupted run are redone, not duplicated.
    let mut csv = std::fs::File::create(out.join("loss.csv"))?;
    for (s, l) in &state.losses {
        writeln!(csv, "{s},{l}")?;
    }
    while state.step < cfg.steps {
        let step = state.step;
        let b = cfg.batch;
        let mut x = Vec::with_capacity(b * d);
        let mut labels = Vec::with_capacity(b);
        let mut ts = Vec::with_capacity(b);
        let eps = NoiseStream::new(cfg.seed, 1000 + step as u64).normal(b * d);
        for j in 0..b {
            let i = pick.index((step * b + j) as u64, set.len());
            let t = t_pick.index((step * b + j) as u64, n_train);
            let ab = schedule.alpha_bar(t as i64);
            x.extend(brenier::sched::noise_forward(ab, set.get(i), &eps[j * d..(j + 1) * d]));
            labels.push(set.labels[i] as i64);
            ts.push(t as f32);
        }
        let shape = [b, set.image.channels, h, w];
        let xt = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
        let target = Tensor::<4>::from_data(TensorData::new(eps, shape), &device);
        let tt = Tensor::<1>::from_floats(ts.as_slice(), &device);
        let ct = Tensor::<1, Int>::from_ints(labels.as_slice(), &device);
        let pred = model.forward(xt, tt, (cfg.unet.num_classes > 0).then_some(ct));
        let loss = (pred - target).powf_scalar(2.0).mean();
        let loss_value = params::host(loss.clone()).first().copied().unwrap_or(f32::NAN);
        if !loss_value.is_finite() {
            bail!("loss became {loss_value} at step {step}; lower --lr or check the data");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(cfg.lr, model, grads);
        params::ema_update(&mut ema, &params::collect(&model), cfg.ema_decay);
        state.step += 1;
        state.losses.push((state.step, loss_value));
        state.seconds = base_seconds + started.elapsed().as_secs_f64();
        writeln!(csv, "{},{loss_value}", state.step)?;
        on_step(state.step, loss_value);
        if state.step.is_multiple_of(cfg.checkpoint_every.max(1)) || state.step == cfg.steps {
            save(out, &state, &params::collect(&model), &ema, &optim)?;
        }
    }
    let ema_net = params::load(UNet::new(&cfg.unet, &Device::flex()), &ema).map_err(anyhow::Error::msg)?;
    Ok(Trained { ema: ema_net, losses: state.losses, seconds: state.seconds })
}

/// Loads the EMA network of a finished (or interrupted) run from its checkpoint, with the
/// configuration and the image shape it was trained on.
pub fn load_ema(out: &Path) -> Result<(UNet, TrainConfig, brenier::bundle::ImageSpec)> {
    let ckpt = checkpoint_dir(out);
    let s: State = serde_json::from_slice(
        &std::fs::read(ckpt.join("state.json")).with_context(|| format!("no checkpoint in {}", ckpt.display()))?,
    )?;
    let ema = checkpoint::read_params(&ckpt, "ema", &s.sizes)?;
    let net = params::load(UNet::new(&s.config.unet, &Device::flex()), &ema).map_err(anyhow::Error::msg)?;
    Ok((net, s.config, s.image))
}
