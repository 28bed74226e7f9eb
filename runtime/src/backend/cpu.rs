//! CPU backend: networks through tract (optimised once at load), kernels from the CPU reference
//! implementations on a private rayon pool sized by `--threads`.

use std::sync::Arc;

use half::f16;
use rayon::prelude::*;
use tract_onnx::prelude::*;

use super::{Backend, EpsNet, Precision};
use crate::bundle::{ImageSpec, NetSpec, TimeDtype};
use crate::error::{Error, Result};
use crate::ot::{self, Assignment};
use crate::sched::{ddim_update, DdimCoeffs};

type Plan = Arc<TypedRunnableModel>;

pub struct CpuBackend {
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    precision: Precision,
}

impl CpuBackend {
    /// f32 networks; `threads = 0` uses every core.
    pub fn new(threads: usize) -> Result<CpuBackend> {
        Self::with_precision(threads, Precision::F32)
    }

    /// Networks in `precision`. f16 goes through tract's f32→f16 model translation: every float
    /// tensor, weight and op of the graph becomes f16. tract has native f16 kernels on aarch64
    /// with the FP16 extension (Jetson, Apple, Graviton); elsewhere it emulates them, which is
    /// slower than f32 (measured by `brenier calibrate`, recorded per target).
    pub fn with_precision(threads: usize, precision: Precision) -> Result<CpuBackend> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("brenier-cpu-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} CPU threads: {e}")))?;
        Ok(CpuBackend { pool: Arc::new(pool), threads, precision })
    }
}

struct CpuNet {
    plan: Plan,
    /// Position of the image and timestep inputs in the tract model's input list.
    x_pos: usize,
    t_dtype: TimeDtype,
    precision: Precision,
    image: ImageSpec,
    /// The batch the plan is built for (the graph's fixed batch, else 1); inputs run in pieces
    /// of this many images, the last padded.
    plan_batch: usize,
    label: String,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    weight_bytes: usize,
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn threads(&self) -> usize {
        self.threads
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn EpsNet>> {
        let proto = crate::onnx::decode(onnx, label)?;
        crate::onnx::check_ops(&proto, label)?;
        let params: usize = proto
            .graph
            .iter()
            .flat_map(|g| &g.initializer)
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
            .sum();
        let weight_bytes = params * if self.precision == Precision::F16 { 2 } else { 4 };
        let mut model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| Error::tract(format!("parsing {label}"), e))?;
        let names: Vec<String> = model
            .input_outlets()
            .map_err(|e| Error::tract(label, e))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let pos = |name: &str| {
            names.iter().position(|n| n == name).ok_or_else(|| Error::Onnx {
                net: label.into(),
                problem: format!("input `{name}` recorded in the bundle is not an input of the graph ({names:?})"),
            })
        };
        let (x_pos, t_pos) = (pos(&spec.x_input)?, pos(&spec.t_input)?);
        // A graph with a dynamic batch is prepared for a batch of exactly 1 and a job's images
        // run through it one by one, spread over the threads: tract picks its lazy im2col (no
        // materialised patch matrix) only for a concrete batch of 1, and its eager im2col copy
        // loops were a third of the symbolic-batch plan's time (perf, demo UNet). Measured on
        // the demo, 1 thread: 33.9 → 18.4 ms at batch 1, 145 → 104 ms at batch 4.
        let plan_batch = spec.batch.unwrap_or(1);
        let batch: TDim = plan_batch.into();
        let x_shape = tvec![batch.clone(), image.channels.into(), image.height.into(), image.width.into()];
        let t_type = match spec.t_dtype {
            TimeDtype::Int64 => i64::datum_type(),
            TimeDtype::Float => f32::datum_type(),
        };
        model
            .set_input_fact(x_pos, InferenceFact::dt_shape(f32::datum_type(), x_shape))
            .and_then(|_| model.set_input_fact(t_pos, InferenceFact::dt_shape(t_type, tvec![batch])))
            .map_err(|e| Error::tract(format!("setting input shapes of {label}"), e))?;
        let plan = prepare(model, self.precision).map_err(|e| {
            Error::tract(
                format!(
                    "optimising {label} (does the graph accept [N,{},{},{}] images?)",
                    image.channels, image.height, image.width
                ),
                e,
            )
        })?;
        log::debug!("{label}: tract plan ready");
        Ok(Box::new(CpuNet {
            plan,
            x_pos,
            t_dtype: spec.t_dtype,
            precision: self.precision,
            image,
            plan_batch,
            label: label.into(),
            pool: self.pool.clone(),
            threads: self.threads,
            weight_bytes,
        }))
    }

    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>> {
        self.pool.install(|| ot::assign(queries, d, targets, heights))
    }

    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>> {
        self.pool.install(|| ot::soft_map(queries, d, targets, heights, tau))
    }

    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<&[f32]>, c: DdimCoeffs) {
        ddim_update(x, eps, noise, c)
    }
}

/// Whether this CPU runs tract's f16 kernels natively (aarch64 with the FP16 extension, as on
/// Jetson Orin/Xavier). Elsewhere tract emulates f16 one value at a time: measured ~100× slower
/// than f32 on x86_64 (`brenier calibrate` records the ratio).
pub fn f16_native() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("fp16")
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Optimises the model for running, translated to f16 first where asked. The translation
/// runs on the decluttered graph, before tract picks kernels, so it chooses f16 ones.
fn prepare(model: InferenceModel, precision: Precision) -> TractResult<Plan> {
    let mut typed = model.into_typed()?.into_decluttered()?;
    if precision == Precision::F16 {
        use tract_onnx::tract_core::floats::FloatPrecisionTranslator;
        use tract_onnx::tract_core::transform::ModelTransform;
        FloatPrecisionTranslator::new(f32::datum_type(), f16::datum_type()).transform(&mut typed)?;
    }
    typed.into_optimized()?.into_runnable()
}

impl CpuNet {
    /// One tract run on exactly `n` images.
    fn run(&self, x: &[f32], n: usize, t: i64) -> Result<Vec<f32>> {
        let img = self.image;
        let shape = [n, img.channels, img.height, img.width];
        let f16 = self.precision == Precision::F16;
        let xt = if f16 {
            let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            Tensor::from_shape(&shape, &h)
        } else {
            Tensor::from_shape(&shape, x)
        }
        .map_err(|e| Error::tract(format!("building the input of {}", self.label), e))?;
        let tt = match self.t_dtype {
            TimeDtype::Int64 => Tensor::from_shape(&[n], &vec![t; n]),
            // t ≤ 2048 is exact in f16, so a float timestep survives the translation.
            TimeDtype::Float if f16 => Tensor::from_shape(&[n], &vec![f16::from_f32(t as f32); n]),
            TimeDtype::Float => Tensor::from_shape(&[n], &vec![t as f32; n]),
        }
        .map_err(|e| Error::tract(format!("building the timestep of {}", self.label), e))?;
        let inputs: TVec<TValue> =
            if self.x_pos == 0 { tvec![xt.into(), tt.into()] } else { tvec![tt.into(), xt.into()] };
        let out = self.plan.run(inputs).map_err(|e| Error::tract(format!("running {} at t = {t}", self.label), e))?;
        let read = |e| Error::tract(format!("reading the output of {}", self.label), e);
        let (values, found): (Vec<f32>, Vec<usize>) = if f16 {
            let view = out[0].to_plain_array_view::<f16>().map_err(read)?;
            (view.iter().map(|v| v.to_f32()).collect(), view.shape().to_vec())
        } else {
            let view = out[0].to_plain_array_view::<f32>().map_err(read)?;
            (view.iter().copied().collect(), view.shape().to_vec())
        };
        if values.len() != x.len() {
            return Err(Error::Shape {
                what: format!("output of {}", self.label),
                expected: shape.to_vec(),
                found,
                hint: " (an ε-network returns one value per input value)".into(),
            });
        }
        Ok(values)
    }

    /// Runs `x` in pieces of the plan's batch, padding the last piece.
    fn run_pieces(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>> {
        let (d, pb) = (self.image.elems(), self.plan_batch);
        let mut out = Vec::with_capacity(x.len());
        for start in (0..batch).step_by(pb) {
            let n = pb.min(batch - start);
            let chunk = &x[start * d..(start + n) * d];
            if n == pb {
                out.extend(self.run(chunk, n, t)?);
            } else {
                let mut padded = chunk.to_vec();
                padded.resize(pb * d, 0.0);
                out.extend_from_slice(&self.run(&padded, pb, t)?[..n * d]);
            }
        }
        Ok(out)
    }
}

impl EpsNet for CpuNet {
    fn eps(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>> {
        let d = self.image.elems();
        if x.len() != batch * d {
            return Err(Error::Shape {
                what: format!("input of {}", self.label),
                expected: vec![batch, self.image.channels, self.image.height, self.image.width],
                found: vec![x.len()],
                hint: String::new(),
            });
        }
        // tract runs one plan on one thread; split the batch across the pool's threads
        // (data parallel), which is where a 2-core edge CPU gets its second core's worth.
        let parts = batch.div_ceil(self.plan_batch);
        if parts <= 1 || self.threads <= 1 {
            return self.run_pieces(x, batch, t);
        }
        let per_thread = parts.div_ceil(self.threads) * self.plan_batch;
        let pieces: Vec<Result<Vec<f32>>> =
            self.pool.install(|| x.par_chunks(per_thread * d).map(|c| self.run_pieces(c, c.len() / d, t)).collect());
        let mut out = Vec::with_capacity(x.len());
        for p in pieces {
            out.extend(p?);
        }
        Ok(out)
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    fn activation_bytes(&self, batch: usize) -> usize {
        // eps() runs pieces of the plan's batch on up to `threads` plans at once.
        let concurrent = batch.div_ceil(self.plan_batch).min(self.threads).max(1);
        concurrent * activation_peak(&self.plan, self.plan_batch)
    }
}

/// Peak bytes of the values alive during one run of `plan` on `batch` images, replaying the
/// plan's order and freeing each value after its last consumer, as tract's state does.
fn activation_peak(plan: &Plan, batch: usize) -> usize {
    let model = plan.model();
    let values = SymbolValues::default().with(&model.symbols.sym("N"), batch as i64);
    let order = plan.order_without_consts();
    let nodes = model.nodes().len();
    let mut last_use = vec![None::<usize>; nodes];
    for (step, &n) in order.iter().enumerate() {
        for input in &model.node(n).inputs {
            last_use[input.node] = Some(step);
        }
    }
    let outputs: Vec<usize> = model.output_outlets().map(|o| o.iter().map(|o| o.node).collect()).unwrap_or_default();
    let bytes = |n: usize| -> usize {
        model
            .node(n)
            .outputs
            .iter()
            .map(|o| {
                let elems: usize =
                    o.fact.shape.iter().map(|d| d.eval_to_i64(&values).unwrap_or(1).max(0) as usize).product();
                elems * o.fact.datum_type.size_of()
            })
            .sum()
    };
    let mut free_at: Vec<Vec<usize>> = vec![vec![]; order.len()];
    for (step, &n) in order.iter().enumerate() {
        if !outputs.contains(&n) {
            free_at[last_use[n].unwrap_or(step).max(step)].push(n);
        }
    }
    let (mut live, mut peak) = (0usize, 0usize);
    for (step, &n) in order.iter().enumerate() {
        live += bytes(n);
        peak = peak.max(live);
        for &f in &free_at[step] {
            live -= bytes(f);
        }
    }
    peak
}
