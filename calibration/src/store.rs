//! The whole calibration of one bundle, and writing its record into the bundle (a new file
//! renamed over the old one: the old bundle stays intact on any failure).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use brenier::backend::{CpuBackend, Precision};
use brenier::bundle::calibration::*;
use brenier::bundle::{rewrite_sections, Bundle, LoadMode, OtSource, Section};
use brenier::pipeline::{NetTime, PlanMap, Silent, TranslateMethod, TranslateOptions};
use brenier::{Engine, NetKey};

use crate::agreement::ot_agreement;
use crate::classify::ClassifierRunner;
use crate::error::Result;
use crate::parity::{net_parity, reduced_precisions};
use crate::quick::{self, QuickPlan, QUICK_COUNT};
use crate::recommend::{recommend, this_target};
use crate::set::{default_dir, CalibSet};
use crate::sweep::{methods_at, sweep, SweepConfig, SWEEP_K, SWEEP_T};

#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// Precision the sweep and the recommendation are measured in.
    pub precision: Precision,
    /// Parity, agreement and the quick references only (no T×K sweep).
    pub quick: bool,
    /// The calibration set folder (default: beside the bundle, `model.calib/`).
    pub set_dir: Option<PathBuf>,
    pub threads: usize,
    /// Source images used by the sweep (at most the set's).
    pub count: usize,
    /// Images used for parity and OT agreement.
    pub parity_count: usize,
    pub ts: Vec<usize>,
    pub ks: Vec<usize>,
    pub tau: f32,
    /// Run the reduced precision through whole pipelines (OT agreement of its latents, the
    /// quick translation), not only single evaluations. Default: where f16 is native; emulated
    /// f16 (x86_64) is two orders of magnitude slower (the record's parity table measures it) and
    /// whole pipelines would take an hour.
    pub reduced_pipelines: bool,
    /// Reduced precisions to compare with f32 (default: f16).
    pub reduced: Vec<Precision>,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions {
            precision: Precision::F32,
            quick: false,
            set_dir: None,
            threads: 0,
            count: 64,
            parity_count: 16,
            ts: SWEEP_T.to_vec(),
            ks: SWEEP_K.to_vec(),
            tau: 1.0,
            reduced_pipelines: brenier::backend::cpu::f16_native(),
            reduced: reduced_precisions().to_vec(),
        }
    }
}

/// Progress reported while calibrating.
pub enum Event<'a> {
    Stage(&'a str),
    SweepStart(usize),
    Point(&'a SweepPoint),
}

pub struct Outcome {
    pub record: CalibrationRecord,
    pub bundle_size: u64,
}

fn engine(path: &Path, threads: usize, precision: Precision) -> Result<Engine> {
    // Read, not mapped: the same file is replaced at the end.
    let bundle = Bundle::open_with(path, LoadMode::Read)?;
    Ok(Engine::new(bundle, Box::new(CpuBackend::with_precision(threads, precision)?))?)
}

fn machine(engine: &Engine) -> MachineInfo {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    MachineInfo {
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
        cpu,
        threads: engine.backend().threads(),
        backend: engine.backend().name().into(),
        brenier_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Calibrates the bundle at `path` and writes the record into it.
pub fn calibrate(path: &Path, opts: &CalibrateOptions, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let started = Instant::now();
    let e32 = engine(path, opts.threads, Precision::F32)?;
    let m = e32.bundle().manifest().clone();
    let d = m.image.elems();
    let set_dir = opts.set_dir.clone().unwrap_or_else(|| default_dir(path));
    let mut set = CalibSet::load(&set_dir, &m)?;
    set.sources.truncate(opts.count.max(QUICK_COUNT) * d);
    let n = set.sources.len() / d;
    let runner = ClassifierRunner::new(&set.classifier_onnx, m.image, m.normalization)?;
    let mut wanted = opts.reduced.clone();
    if opts.precision != Precision::F32 && !wanted.contains(&opts.precision) {
        wanted.push(opts.precision);
    }
    let reduced: Vec<(Precision, Engine)> = wanted
        .into_iter()
        .filter(|&p| p != Precision::F32)
        .map(|p| Ok((p, engine(path, opts.threads, p)?)))
        .collect::<Result<_>>()?;
    let work = match reduced.iter().find(|(q, _)| *q == opts.precision) {
        Some((_, e)) => e,
        None => &e32,
    };

    on(Event::Stage("network parity"));
    let px = &set.sources[..opts.parity_count.min(n) * d];
    let last = m.schedule.n_train() as i64 - 1;
    // 0, 100, T and the last step, as far as the schedule has them.
    let mut parity_ts: Vec<i64> = [0, 100, m.t_encode as i64, last].into_iter().filter(|&t| t <= last).collect();
    parity_ts.dedup();
    // Emulated f16 gets two images: enough for the error and the speed ratio, in seconds.
    let reduced_px = if opts.reduced_pipelines { px } else { &px[..2.min(px.len() / d) * d] };
    let mut parity = vec![];
    for (_, e) in &reduced {
        parity.extend(net_parity(&e32, e, reduced_px, &parity_ts, 0)?);
    }

    on(Event::Stage("OT assignment agreement"));
    let mut agreement = vec![];
    let source = OtSource::Domain { domain: NetKey::A };
    for spec in m.maps_between(&source, NetKey::B) {
        // The encode stage of the OT-ALD plan with this map at the bundle's default K.
        let plan = TranslateOptions { method: TranslateMethod::OtAld, t: Some(spec.t), ..TranslateOptions::default() };
        let map = PlanMap::Ot(spec);
        let mut lat = px.to_vec();
        e32.plan_with(&plan, map)?.encode(&mut lat, &Silent, &mut NetTime::default())?;
        let mut lat_p = px.to_vec();
        let by_reduced = match reduced.first() {
            Some((p, e)) if opts.reduced_pipelines => {
                e.plan_with(&plan, map)?.encode(&mut lat_p, &Silent, &mut NetTime::default())?;
                Some((p.as_str(), lat_p.as_slice()))
            }
            _ => None,
        };
        agreement.extend(ot_agreement(&e32, spec, &lat, by_reduced, opts.tau)?);
    }

    let old = e32.bundle().calibration().ok().flatten();
    // A quick run keeps the sweep of an earlier full run in the same precision.
    let mut sweep_points = match &old {
        Some(r) if opts.quick && r.precision == opts.precision => r.sweep.clone(),
        _ => vec![],
    };
    if !opts.quick {
        let cfg = SweepConfig { ts: &opts.ts, ks: &opts.ks, eta: m.eta, seed: 0 };
        let mut total = 0;
        for &t in &opts.ts {
            total += opts.ks.iter().filter(|&&k| k <= t + 1).count() * methods_at(work, t)?;
        }
        on(Event::Stage("T×K sweep"));
        on(Event::SweepStart(total));
        sweep_points = sweep(work, &set, &runner, &cfg, |p| on(Event::Point(p)))?;
    }

    let target = this_target();
    let mut recommended: Vec<Recommendation> = old
        .as_ref()
        .map(|r| {
            r.recommended.iter().filter(|x| x.target != target || x.precision != opts.precision).cloned().collect()
        })
        .unwrap_or_default();
    let mine = recommend(&sweep_points, m.t_encode, &target, opts.precision).or_else(|| {
        // A quick run keeps what a full run recommended for this target before.
        old.as_ref()?.recommended.iter().find(|x| x.target == target && x.precision == opts.precision).cloned()
    });
    recommended.extend(mine.clone());

    on(Event::Stage("quick references"));
    let plan = QuickPlan::new(&e32, mine.as_ref());
    let qx = &set.sources[..QUICK_COUNT.min(n) * d];
    let reference = quick::run(&e32, &plan, qx)?;
    let mut reduced_runs = vec![];
    for (p, e) in reduced.iter().filter(|_| opts.reduced_pipelines) {
        reduced_runs.push((*p, quick::run(e, &plan, qx)?));
    }
    let quick_record = quick::record(&m, &plan, &reference, &reduced_runs, d);

    let record = CalibrationRecord {
        version: RECORD_VERSION,
        created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or(0),
        machine: machine(work),
        precision: opts.precision,
        inputs: InputsInfo {
            source: set.spec.description.clone(),
            count: n,
            reference_count: set.references.len() / d,
            classifier: Some(set.spec.classifier.clone()),
        },
        parity,
        ot_agreement: agreement,
        sweep: sweep_points,
        recommended,
        quick: quick_record,
    };
    e32.bundle().check_unchanged()?;
    drop((e32, reduced));

    on(Event::Stage("writing the record into the bundle"));
    let bundle_size = write_record(path, &record, &plan, &reference, qx)?;
    log::info!("calibration of {} took {:.0} s", path.display(), started.elapsed().as_secs_f64());
    Ok(Outcome { record, bundle_size })
}

/// Writes `record` and the quick check's f32 references (`reference`, run on `inputs` as `plan`
/// says) into the bundle at `path`, replacing an earlier record (atomic whole-file rewrite).
pub fn write_record(
    path: &Path,
    record: &CalibrationRecord,
    plan: &QuickPlan,
    reference: &quick::QuickRun,
    inputs: &[f32],
) -> Result<u64> {
    let img = Bundle::open_with(path, LoadMode::Read)?.manifest().image;
    let d = img.elems();
    let qx = inputs;
    let q = reference.outputs.len() / d;
    let json = serde_json::to_vec_pretty(record).map_err(|e| crate::CalibError::Invalid(format!("record: {e}")))?;
    let mut sections = vec![
        Section::bytes(CALIBRATION_SECTION, brenier::bundle::SectionKind::Calibration, json),
        Section::f32_tensor(QUICK_INPUTS_SECTION, &img.shape(q), qx),
        Section::f32_tensor(
            QUICK_EPS_SECTION,
            // [net, t, image] flattened into the batch axis (tensor sections have rank ≤ 4).
            &img.shape(2 * plan.eps_ts.len() * q),
            &reference.eps,
        ),
        Section::f32_tensor(QUICK_LATENTS_SECTION, &img.shape(q), &reference.latents),
        Section::f32_tensor(QUICK_OUTPUTS_SECTION, &img.shape(q), &reference.outputs),
    ];
    // A record without neural maps must not leave an earlier record's references behind.
    let mut remove = vec![];
    match plan.neural.len() {
        0 => remove.push(QUICK_NEURAL_SECTION),
        maps => sections.push(Section::f32_tensor(QUICK_NEURAL_SECTION, &img.shape(maps * q), &reference.neural)),
    }
    Ok(rewrite_sections(path, sections, &remove)?)
}
