//! The quick calibration: a few held-out inputs pushed through one translation path, with the
//! f32 references stored in the bundle so `brenier selftest` can repeat it on a device and compare.

use brenier::backend::Precision;
use brenier::bundle::calibration::{QuickRecord, Recommendation};
use brenier::bundle::{Manifest, OtMapSpec, OtSource};
use brenier::pipeline::{NetTime, PlanMap, Silent, TranslateMethod, TranslateOptions};
use brenier::{Engine, NetKey};

use crate::error::Result;
use crate::parity::{eps_at, neural_map_at, relative_error};

/// Inputs of the quick check (stored in the bundle: 8 × D f32).
pub const QUICK_COUNT: usize = 8;

/// What the quick check runs: OT-ALD with `map` at (t, k), or DDIB when the bundle has no map.
#[derive(Debug, Clone)]
pub struct QuickPlan {
    pub map: Option<OtMapSpec>,
    pub t: usize,
    pub k: usize,
    pub eps_ts: Vec<i64>,
    /// Neural maps checked (manifest indices).
    pub neural: Vec<usize>,
    pub seed: u64,
}

impl QuickPlan {
    /// OT-ALD at the recommended (T, K) where the bundle has an A→B OT map at that T, whichever
    /// method won (the check exercises the device, and the recommended K keeps it as short as
    /// the shipped default), else the bundle's defaults.
    pub fn new(engine: &Engine, rec: Option<&Recommendation>) -> QuickPlan {
        let m = engine.bundle().manifest();
        let source = OtSource::Domain { domain: NetKey::A };
        let rec_map = rec.and_then(|r| m.find_map_at(&source, NetKey::B, r.t).map(|map| (map.clone(), r.t, r.k)));
        let (map, t, k) = match rec_map {
            Some((map, t, k)) => (Some(map), t, k),
            None => match m.find_map(&source, NetKey::B) {
                Some(map) => (Some(map.clone()), map.t, m.steps.min(map.t + 1)),
                None => (None, m.t_encode, m.steps),
            },
        };
        let mut eps_ts = vec![0, (t / 2) as i64, t as i64];
        eps_ts.dedup();
        let neural = (0..m.neural_maps.len()).collect();
        QuickPlan { map, t, k, eps_ts, neural, seed: 0 }
    }

    pub fn from_record(engine: &Engine, q: &QuickRecord) -> Result<QuickPlan> {
        let m = engine.bundle().manifest();
        let map = match &q.map {
            Some(name) => Some(
                m.ot_maps
                    .iter()
                    .find(|s| &s.name == name)
                    .cloned()
                    .ok_or_else(|| brenier::Error::NoOtMap { wanted: name.clone(), available: m.map_names() })?,
            ),
            None => None,
        };
        let neural = q
            .neural_maps
            .iter()
            .map(|name| {
                m.neural_maps.iter().position(|s| &s.name == name).ok_or_else(|| brenier::Error::NoNeuralMap {
                    wanted: name.clone(),
                    available: m.neural_map_names(),
                })
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(QuickPlan { map, t: q.t, k: q.k, eps_ts: q.eps_ts.clone(), neural, seed: 0 })
    }
}

/// One run of the quick path on some engine.
pub struct QuickRun {
    pub eps: Vec<f32>,
    pub latents: Vec<f32>,
    pub assignments: Vec<usize>,
    pub outputs: Vec<f32>,
    /// Each planned neural map's output on the inputs noised to its time, concatenated.
    pub neural: Vec<f32>,
    pub ms_per_nfe: f64,
}

/// ε of both nets at the plan's times, the neural maps, then the translation plan's encode →
/// map → decode.
pub fn run(engine: &Engine, plan: &QuickPlan, inputs: &[f32]) -> Result<QuickRun> {
    let mut eps = eps_at(engine, NetKey::A, inputs, &plan.eps_ts, plan.seed)?.0;
    eps.extend(eps_at(engine, NetKey::B, inputs, &plan.eps_ts, plan.seed)?.0);
    let mut neural = vec![];
    for &i in &plan.neural {
        neural.extend(neural_map_at(engine, i, inputs, plan.seed)?.0);
    }
    let opts = TranslateOptions {
        method: if plan.map.is_some() { TranslateMethod::OtAld } else { TranslateMethod::Ddib },
        from: NetKey::A,
        t: Some(plan.t),
        steps: Some(plan.k),
        eta: None,
        tau: None,
        seed: plan.seed,
    };
    let map = match &plan.map {
        Some(spec) => PlanMap::Ot(spec),
        None => PlanMap::None,
    };
    let path = engine.plan_with(&opts, map)?;
    let mut x = inputs.to_vec();
    let mut time = NetTime::default();
    path.encode(&mut x, &Silent, &mut time)?;
    let latents = x.clone();
    let assignments = path.map(&mut x)?.map(|s| s.assignments).unwrap_or_default();
    path.decode(&mut x, &Silent, &mut time)?;
    Ok(QuickRun {
        eps,
        latents,
        assignments,
        outputs: x,
        neural,
        ms_per_nfe: time.seconds / time.nfe.max(1) as f64 * 1e3,
    })
}

/// RMS difference over the images whose assignment matches the reference (an image mapped to
/// another target decodes to another image; agreement is measured separately), and how many
/// images that covers.
pub fn matched_rms(got: &QuickRun, reference: &[f32], ref_assign: &[usize], d: usize) -> (f64, usize) {
    let (mut sum, mut count) = (0f64, 0usize);
    for (i, (g, r)) in got.outputs.chunks(d).zip(reference.chunks(d)).enumerate() {
        if got.assignments.get(i) != ref_assign.get(i) {
            continue;
        }
        sum += g.iter().zip(r).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        count += 1;
    }
    ((sum / (count * d).max(1) as f64).sqrt(), count)
}

/// The record's quick part: the f32 reference and each reduced precision measured against it.
pub fn record(
    manifest: &Manifest,
    plan: &QuickPlan,
    reference: &QuickRun,
    reduced: &[(Precision, QuickRun)],
    d: usize,
) -> QuickRecord {
    let agree = |r: &QuickRun| {
        r.assignments.iter().zip(&reference.assignments).filter(|(a, b)| a == b).count() as f64
            / reference.assignments.len().max(1) as f64
    };
    QuickRecord {
        count: reference.outputs.len() / d,
        map: plan.map.as_ref().map(|m| m.name.clone()),
        t: plan.t,
        k: plan.k,
        eps_ts: plan.eps_ts.clone(),
        assignments: reference.assignments.clone(),
        eps_rel_err: reduced.iter().map(|(p, r)| (*p, relative_error(&r.eps, &reference.eps).0)).collect(),
        output_rms: reduced
            .iter()
            .map(|(p, r)| (*p, matched_rms(r, &reference.outputs, &reference.assignments, d).0))
            .collect(),
        latent_agreement: reduced.iter().map(|(p, r)| (*p, if plan.map.is_some() { agree(r) } else { 1.0 })).collect(),
        ms_per_nfe: reference.ms_per_nfe,
        neural_maps: plan.neural.iter().map(|&i| manifest.neural_maps[i].name.clone()).collect(),
        neural_rel_err: if plan.neural.is_empty() {
            vec![]
        } else {
            reduced.iter().map(|(p, r)| (*p, relative_error(&r.neural, &reference.neural).0)).collect()
        },
    }
}
