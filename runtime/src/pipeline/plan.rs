//! One translation, resolved before any network runs: the method, the source and target domains,
//! T, K, η, and the map between encode and decode. `Engine::translate`, the bench, the
//! calibration sweep, its quick check and the quality report all run a [`TranslationPlan`], so
//! which map and which T a method uses is decided in one place.

use super::engine::{Engine, NetSlot, NetTime, Observer};
use super::mapping::MapStats;
use super::translate::{TranslateMethod, TranslateOptions, Translation};
use crate::bundle::{NetKey, OtMapSpec, OtSource};
use crate::error::{Error, Result};

/// The map a plan applies to the latents at T.
#[derive(Debug, Clone, Copy)]
pub enum PlanMap<'e> {
    /// DDIB: the latents go to the decoder unchanged.
    None,
    /// OT-ALD: the semi-discrete map, hard, or soft with the plan's τ.
    Ot(&'e OtMapSpec),
    /// The manifest's neural map number `index`.
    Neural { index: usize },
}

/// A resolved translation: encode with `from`'s network to `t` in `steps` steps, apply `map`,
/// decode with `to`'s network in `steps` steps with DDIM η = `eta`.
#[derive(Clone, Copy)]
pub struct TranslationPlan<'e> {
    engine: &'e Engine,
    pub method: TranslateMethod,
    pub from: NetKey,
    pub to: NetKey,
    pub t: usize,
    pub steps: usize,
    pub eta: f32,
    pub seed: u64,
    pub map: PlanMap<'e>,
    /// Soft OT map temperature (OT-ALD only; `None` = the hard map).
    pub tau: Option<f32>,
}

impl std::fmt::Debug for TranslationPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslationPlan")
            .field("method", &self.method)
            .field("from", &self.from)
            .field("t", &self.t)
            .field("steps", &self.steps)
            .field("eta", &self.eta)
            .field("map", &self.map)
            .field("tau", &self.tau)
            .finish()
    }
}

impl Engine {
    /// Resolves `opts` against the bundle: the map (for OT-ALD the one from the source domain
    /// to the other at `opts.t`, else at the manifest's `t_encode`, else the first; for the neural
    /// method the neural map likewise), T (given, else the map's, else `t_encode`), K (given,
    /// else the manifest's, at most T + 1) and η. Fails naming what the bundle lacks.
    pub fn plan(&self, opts: &TranslateOptions) -> Result<TranslationPlan<'_>> {
        let map = self.resolve_map(opts)?;
        self.plan_with(opts, map)
    }

    /// [`Engine::plan`], or `None` where the bundle has no map for the method (DDIB always has
    /// a plan); other errors stay errors.
    pub fn plan_if_present(&self, opts: &TranslateOptions) -> Result<Option<TranslationPlan<'_>>> {
        match self.plan(opts) {
            Ok(plan) => Ok(Some(plan)),
            Err(Error::NoOtMap { .. } | Error::NoNeuralMap { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The plan of `opts` with a map chosen by the caller (a recorded map by name, say): T, K
    /// and η resolve as in [`Engine::plan`]; the map must lead from `opts.from` to the other
    /// domain at the plan's T, and suit `opts.method`.
    pub fn plan_with<'e>(&'e self, opts: &TranslateOptions, map: PlanMap<'e>) -> Result<TranslationPlan<'e>> {
        let m = self.bundle().manifest();
        let (from, to) = (opts.from, opts.from.other());
        let fits = match (opts.method, map) {
            (TranslateMethod::Ddib, PlanMap::None) => true,
            (TranslateMethod::OtAld, PlanMap::Ot(spec)) => {
                spec.source == (OtSource::Domain { domain: from }) && spec.target == to
            }
            (TranslateMethod::NeuralOt, PlanMap::Neural { index }) => {
                m.neural_maps.get(index).is_some_and(|n| n.source == from && n.target == to)
            }
            _ => false,
        };
        if !fits {
            let name = match map {
                PlanMap::None => "none",
                PlanMap::Ot(spec) => &spec.name,
                PlanMap::Neural { index } => m.neural_maps.get(index).map_or("(no such neural map)", |n| &n.name),
            };
            return Err(Error::InvalidArgument(format!(
                "{} from {} to {} cannot use the map `{name}`",
                opts.method,
                from.as_str(),
                to.as_str()
            )));
        }
        if opts.tau.is_some() && !matches!(map, PlanMap::Ot(_)) {
            return Err(Error::InvalidArgument(
                "tau (the soft-map temperature) applies to the semi-discrete OT map (method ot-ald); DDIB and the neural map have none".into(),
            ));
        }
        let map_t = match map {
            PlanMap::Ot(spec) => Some(spec.t),
            PlanMap::Neural { index } => Some(m.neural_maps[index].t),
            PlanMap::None => None,
        };
        let t = opts.t.or(map_t).unwrap_or(m.t_encode);
        if let Some(mt) = map_t.filter(|&mt| mt != t) {
            return Err(Error::InvalidArgument(format!("the map was solved at t = {mt}, the plan encodes to t = {t}")));
        }
        if t >= self.schedule().n_train() {
            return Err(Error::InvalidArgument(format!(
                "the encode time t = {t} must be below the schedule's {} steps",
                self.schedule().n_train()
            )));
        }
        let steps = opts.steps.unwrap_or(m.steps.min(t + 1));
        let eta = opts.eta.unwrap_or(m.eta);
        if !(0.0..=1.0).contains(&eta) {
            return Err(Error::InvalidArgument(format!("η = {eta} must be in [0, 1]")));
        }
        let (method, seed, tau) = (opts.method, opts.seed, opts.tau);
        Ok(TranslationPlan { engine: self, method, from, to, t, steps, eta, seed, map, tau })
    }

    /// Every method the bundle can run from `from` at exactly T = `t` with `steps` steps: DDIB,
    /// then the neural map and OT-ALD where the bundle has such maps solved at `t` (the T×K
    /// sweep measures these).
    pub fn plans_at(
        &self,
        from: NetKey,
        t: usize,
        steps: usize,
        eta: f32,
        seed: u64,
    ) -> Result<Vec<TranslationPlan<'_>>> {
        let m = self.bundle().manifest();
        let source = OtSource::Domain { domain: from };
        let opts =
            |method| TranslateOptions { method, from, t: Some(t), steps: Some(steps), eta: Some(eta), tau: None, seed };
        let mut plans = vec![self.plan_with(&opts(TranslateMethod::Ddib), PlanMap::None)?];
        if let Some((index, _)) = m.find_neural_map(from, Some(t)) {
            plans.push(self.plan_with(&opts(TranslateMethod::NeuralOt), PlanMap::Neural { index })?);
        }
        if let Some(spec) = m.find_map_at(&source, from.other(), t) {
            plans.push(self.plan_with(&opts(TranslateMethod::OtAld), PlanMap::Ot(spec))?);
        }
        Ok(plans)
    }

    /// The map `opts` asks for, as [`Engine::plan`] documents.
    fn resolve_map(&self, opts: &TranslateOptions) -> Result<PlanMap<'_>> {
        let m = self.bundle().manifest();
        let (from, to) = (opts.from, opts.from.other());
        let wanted = format!("{}->{}", from.as_str(), to.as_str());
        Ok(match opts.method {
            TranslateMethod::Ddib => PlanMap::None,
            TranslateMethod::OtAld => {
                let source = OtSource::Domain { domain: from };
                let found = match opts.t {
                    Some(t) => m.find_map_at(&source, to, t),
                    None => m.find_map(&source, to),
                };
                let spec = found.ok_or_else(|| match (opts.t, m.find_map(&source, to)) {
                    // A map exists, at other times: OT-ALD must encode to the time its targets live at.
                    (Some(t), Some(_)) => Error::InvalidArgument(format!(
                        "the bundle's OT maps {wanted} were solved between latents at t = {}; OT-ALD must \
                         encode to one of those (got t = {t})",
                        m.maps_between(&source, to).map(|s| s.t.to_string()).collect::<Vec<_>>().join(", ")
                    )),
                    _ => Error::NoOtMap { wanted: wanted.clone(), available: m.map_names() },
                })?;
                PlanMap::Ot(spec)
            }
            TranslateMethod::NeuralOt => {
                let (index, _) = m.find_neural_map(from, opts.t).ok_or_else(|| Error::NoNeuralMap {
                    wanted: match opts.t {
                        Some(t) => format!("{wanted} at t = {t}"),
                        None => wanted.clone(),
                    },
                    available: m.neural_map_names(),
                })?;
                PlanMap::Neural { index }
            }
        })
    }
}

impl TranslationPlan<'_> {
    /// Stage 1: DDIM-encodes model-space images (B×C×H×W) in place to latents at T.
    pub fn encode(&self, x: &mut [f32], obs: &dyn Observer, time: &mut NetTime) -> Result<()> {
        self.engine.encode(self.from, x, self.t, self.steps, obs, time)
    }

    /// Stage 2: applies the plan's map to latents at T in place (`None` for DDIB).
    pub fn map(&self, latents: &mut [f32]) -> Result<Option<MapStats>> {
        match self.map {
            PlanMap::None => Ok(None),
            PlanMap::Ot(spec) => self.engine.apply_map(spec, latents, self.tau).map(Some),
            PlanMap::Neural { index } => self.engine.apply_neural_map(index, latents).map(Some),
        }
    }

    /// Stage 3: DDIM-decodes latents at T in place to model-space images of the target domain.
    pub fn decode(&self, x: &mut [f32], obs: &dyn Observer, time: &mut NetTime) -> Result<()> {
        self.engine.decode(self.to, x, self.t, self.steps, self.eta, self.seed, obs, time)
    }

    /// The networks the plan runs: the encoder, the decoder and a neural map where it has one.
    pub fn net_slots(&self) -> Vec<NetSlot> {
        let mut nets = vec![NetSlot::Domain(self.from), NetSlot::Domain(self.to)];
        if let PlanMap::Neural { index } = self.map {
            nets.push(NetSlot::NeuralMap(index));
        }
        nets
    }

    /// The three stages on a copy of `images`, timed per stage (the encode stage refuses a
    /// batch of the wrong size or with non-finite values). The plan's networks are prepared
    /// first, side by side where the backend can ([`Engine::prepare`]); network times count
    /// evaluations only.
    pub fn run(&self, images: &[f32], obs: &dyn Observer) -> Result<Translation> {
        // Refuse a bad batch before paying for the networks.
        self.engine.check_batch(images, "encoder input")?;
        self.engine.prepare(&self.net_slots())?;
        let mut x = images.to_vec();
        let (mut encode, mut decode) = (NetTime::default(), NetTime::default());
        self.encode(&mut x, obs, &mut encode)?;
        let map = self.map(&mut x)?;
        self.decode(&mut x, obs, &mut decode)?;
        // The OT targets were read in place from the mapping: refuse results computed from a
        // file that changed underneath.
        self.engine.bundle().check_unchanged()?;
        Ok(Translation {
            images: x,
            t: self.t,
            steps: self.steps,
            eta: self.eta,
            nfe: encode.nfe + decode.nfe,
            encode,
            decode,
            map,
        })
    }
}
