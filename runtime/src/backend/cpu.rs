//! CPU backend: networks through tract (optimised once at load), kernels from the CPU reference
//! implementations on a private rayon pool sized by `--threads`.

use std::sync::{Arc, Mutex};

use half::f16;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan;

use super::crew::Crew;
use super::graph::Graph;
use super::intra_op::{self, IntraOp, IntraOpPolicy};
use super::op_profile::{OpClock, OpProfile};
use super::{conv, natural_consts, row_sum, Backend, Network, OnePiece, Precision};
use crate::bundle::{ImageSpec, NetSpec};
use crate::error::{Error, Result};
use crate::ot::{self, Assignment};
use crate::rng::NoiseStream;
use crate::sched::{ddim_update, DdimCoeffs};

type Plan = Arc<TypedRunnableModel>;

pub struct CpuBackend {
    pool: Arc<rayon::ThreadPool>,
    /// The helpers of one-piece runs that share brenier's convolutions only (intra_op.rs).
    crew: Arc<Crew>,
    threads: usize,
    precision: Precision,
    intra_op: IntraOpPolicy,
    kernels: conv::Kernels,
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
        Ok(CpuBackend {
            pool: Arc::new(pool),
            crew: Arc::new(Crew::new(threads - 1)?),
            threads,
            precision,
            intra_op: IntraOpPolicy::from_env(),
            kernels: conv::Kernels::from_env(),
        })
    }

    /// Overrides how one-image runs spend the threads (default: the crew where brenier's
    /// convolutions took any node, else by network size; or `BRENIER_INTRA_OP`); applies to
    /// networks loaded afterwards.
    pub fn with_intra_op(mut self, policy: IntraOpPolicy) -> CpuBackend {
        self.intra_op = policy;
        self
    }

    /// Whether f32 networks loaded afterwards take brenier's Winograd 3×3 convolution on the
    /// maps it serves (default: on, or `BRENIER_WINOGRAD=off`); see `backend::conv`.
    pub fn with_winograd(mut self, on: bool) -> CpuBackend {
        self.kernels.winograd = on;
        self
    }

    /// Whether f32 networks loaded afterwards take brenier's direct 3×3 convolution on the small
    /// maps Winograd leaves, at stride 2 and for thin ones (default: on, or
    /// `BRENIER_DIRECT=off`); see `backend::conv`.
    pub fn with_direct_conv(mut self, on: bool) -> CpuBackend {
        self.kernels.direct = on;
        self
    }

    /// Whether f32 networks loaded afterwards take brenier's 1×1 convolution (default: on, or
    /// `BRENIER_POINTWISE=off`); see `backend::conv`.
    pub fn with_pointwise_conv(mut self, on: bool) -> CpuBackend {
        self.kernels.pointwise = on;
        self
    }
}

struct CpuNet {
    plan: Plan,
    graph: Graph,
    precision: Precision,
    /// The batch the plan is built for (the graph's fixed batch, else 1); inputs run in pieces
    /// of this many images, the last padded.
    plan_batch: usize,
    label: String,
    pool: Arc<rayon::ThreadPool>,
    crew: Arc<Crew>,
    threads: usize,
    weight_bytes: usize,
    /// Scratch each thread that runs a piece, or shares one, keeps outside tract's tensors
    /// (Winograd blocks, the direct kernel's planes), from run to run.
    scratch_bytes: usize,
    intra_op: IntraOp,
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

    /// tract prepares a graph on one thread, and two graphs share nothing, so a job's networks
    /// can be prepared side by side on as many threads as it was given.
    fn concurrent_loads(&self) -> usize {
        self.threads
    }

    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn Network>> {
        let start = std::time::Instant::now();
        let mut graph = Graph::parse_for_one_plan(onnx, spec, image, label)?;
        let parsed = start.elapsed();
        // A graph with a dynamic batch is prepared for a batch of exactly 1 and a job's images
        // run through it one by one, spread over the threads: tract picks its lazy im2col (no
        // materialised patch matrix) only for a concrete batch of 1, and its eager im2col copy
        // loops were a third of the symbolic-batch plan's time (perf, demo UNet).
        let plan_batch = spec.batch.unwrap_or(1);
        // One plan per network on the CPU: nothing types the parsed model again.
        let f32_net = self.precision == Precision::F32;
        let mut pointwise = conv::Rewritten::default();
        let mut typed = graph.typed_once(plan_batch, self.precision, |typed| {
            if f32_net {
                pointwise = conv::rewrite_pointwise(typed, self.kernels)
                    .map_err(|e| Error::tract(format!("preparing the 1×1 convolutions of {label}"), e))?;
            }
            Ok(())
        })?;
        let decluttered = start.elapsed();
        let fma_per_piece = intra_op::fma_count(&typed);
        let convs = if f32_net {
            conv::rewrite(&mut typed, self.kernels)
                .map_err(|e| Error::tract(format!("preparing the convolutions of {label}"), e))?
                .and(pointwise)
        } else {
            conv::Rewritten::default()
        };
        let convs_taken = convs.winograd + convs.direct + convs.pointwise;
        let intra_op = IntraOp::decide(fma_per_piece, convs_taken, self.threads, self.intra_op);
        let weight_bytes =
            graph.params * if self.precision == Precision::F16 { 2 } else { 4 } + convs.extra_weight_bytes;
        let mut optimised = typed.into_optimized().map_err(|e| Error::tract(format!("optimising {label}"), e))?;
        let naturalised = natural_consts::naturalise(&mut optimised)
            .map_err(|e| Error::tract(format!("preparing the constants of {label}"), e))?;
        // x86_64 only: elsewhere tract-linalg has its own SIMD sum (row_sum.rs).
        let row_sums = if cfg!(target_arch = "x86_64") {
            row_sum::rewrite(&mut optimised).map_err(|e| Error::tract(format!("preparing the sums of {label}"), e))?
        } else {
            0
        };
        let plan = optimised.into_runnable().map_err(|e| Error::tract(format!("optimising {label}"), e))?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        log::debug!(
            "{label}: tract plan ready in {:.1} ms (parse {:.1}, typed and decluttered {:.1}, optimised {:.1}); \
             {:.3} G multiply-adds per run of {plan_batch} image(s) before brenier's convolutions, one piece's threads: {}, \
             {} Winograd, {} direct and {} pointwise convolutions, {} constants given natural strides ({} left), {} row sums",
            ms(start.elapsed()),
            ms(parsed),
            ms(decluttered - parsed),
            ms(start.elapsed() - decluttered),
            intra_op.fma_per_piece as f64 / 1e9,
            intra_op.one_piece.name(),
            convs.winograd,
            convs.direct,
            convs.pointwise,
            naturalised.fixed,
            naturalised.left,
            row_sums,
        );
        Ok(Box::new(CpuNet {
            plan,
            graph,
            precision: self.precision,
            plan_batch,
            label: label.into(),
            pool: self.pool.clone(),
            crew: self.crew.clone(),
            threads: self.threads,
            weight_bytes,
            scratch_bytes: convs.scratch_bytes,
            intra_op,
        }))
    }

    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>> {
        self.pool.install(|| ot::assign(queries, d, targets, heights))
    }

    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>> {
        self.pool.install(|| ot::soft_map(queries, d, targets, heights, tau))
    }

    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<NoiseStream>, c: DdimCoeffs) -> Result<()> {
        let z = noise.filter(|_| c.sigma > 0.0).map(|s| s.normal(x.len()));
        ddim_update(x, eps, z.as_deref(), c);
        Ok(())
    }
}

/// Whether this CPU runs tract's f16 kernels natively (aarch64 with the FP16 extension, as on
/// Jetson Orin/Xavier). Elsewhere tract emulates f16 one value at a time, two orders of magnitude
/// slower than f32 on x86_64 (`brenier calibrate` records the ratio).
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

impl CpuNet {
    /// One tract run on exactly `n` images.
    fn run_plan(&self, x: &[f32], n: usize, t: i64) -> Result<Vec<f32>> {
        let inputs = self.graph.inputs(x, n, t, self.precision)?;
        let out = self.plan.run(inputs).map_err(|e| Error::tract(format!("running {} at t = {t}", self.label), e))?;
        self.graph.output(&out[0], n, self.precision)
    }

    /// Runs `work` (one piece's run) on the threads the intra-op decision gives it.
    fn one_piece_run<R>(&self, work: impl FnOnce() -> R) -> R {
        match self.intra_op.one_piece {
            OnePiece::All => multithread_tract_scope(Executor::MultiThread(self.pool.clone()), work),
            OnePiece::Kernels => self.crew.shift(|| multithread_tract_scope(Executor::SingleThread, work)),
            OnePiece::Serial => multithread_tract_scope(Executor::SingleThread, work),
        }
    }

    /// Runs `x` in pieces of the plan's batch, padding the last piece.
    fn run_pieces(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>> {
        let (d, pb) = (self.graph.image.elems(), self.plan_batch);
        let mut out = Vec::with_capacity(x.len());
        for start in (0..batch).step_by(pb) {
            let n = pb.min(batch - start);
            let piece = self.padded(&x[start * d..(start + n) * d]);
            out.extend_from_slice(&self.run_plan(&piece, pb, t)?[..n * d]);
        }
        Ok(out)
    }

    /// `images` (at most the plan's batch) as one piece of the plan's batch: as it is when
    /// full, else copied and padded with zero images.
    fn padded<'a>(&self, images: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        let len = self.plan_batch * self.graph.image.elems();
        if images.len() == len {
            return images.into();
        }
        let mut piece = images.to_vec();
        piece.resize(len, 0.0);
        piece.into()
    }
}

impl Network for CpuNet {
    fn run(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>> {
        self.graph.check_input(x, batch)?;
        let d = self.graph.image.elems();
        // A run of several pieces shares them out among this thread and the pool's (data
        // parallel, each piece on one thread): where a 2-core edge CPU gets its second core's worth.
        // One piece shares its convolutions, or on a large network every operator, instead (intra_op.rs).
        // Every other path pins tract to one thread explicitly: with multithread-mm compiled,
        // tract otherwise reads its process-wide default executor behind a mutex per product.
        let parts = batch.div_ceil(self.plan_batch);
        if parts <= 1 || self.threads <= 1 {
            return self.one_piece_run(|| self.run_pieces(x, batch, t));
        }
        let per_thread = parts.div_ceil(self.threads) * self.plan_batch;
        let chunks: Vec<&[f32]> = x.chunks(per_thread * d).collect();
        let run_chunk =
            |c: &[f32]| multithread_tract_scope(Executor::SingleThread, || self.run_pieces(c, c.len() / d, t));
        // The calling thread runs the first chunk, as it runs a one-piece batch, and pool thread
        // i the chunk i + 1: the same threads for the same number of chunks, every time. Each
        // thread's allocator arena keeps what its pieces allocated, so the process holds one
        // thread's worth per chunk in flight, which is what the memory probe measures and
        // extrapolates (pipeline/memory.rs); work stealing would let any of the pool's threads
        // take a chunk and hold its worth.
        // Each chunk's ε goes straight to its place in the output (a network's output has its
        // input's size: Graph::output checks it); the first failure is the run's.
        let mut out = vec![0f32; x.len()];
        let (first_out, rest_out) = out.split_at_mut(chunks[0].len());
        let rest_out: Vec<Mutex<&mut [f32]>> = rest_out.chunks_mut(per_thread * d).map(Mutex::new).collect();
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let run_into = |c: &[f32], o: &mut [f32]| match run_chunk(c) {
            Ok(eps) => o.copy_from_slice(&eps),
            Err(e) => {
                failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            }
        };
        self.pool.in_place_scope(|s| {
            s.spawn_broadcast(|_, ctx| {
                if let (Some(c), Some(o)) = (chunks.get(ctx.index() + 1), rest_out.get(ctx.index())) {
                    run_into(c, &mut o.lock().unwrap_or_else(|p| p.into_inner()));
                }
            });
            run_into(chunks[0], first_out);
        });
        match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn one_piece(&self) -> OnePiece {
        self.intra_op.one_piece
    }

    fn op_profile(&self, x: &[f32], t: i64, runs: usize) -> Result<Option<OpProfile>> {
        let (d, pb) = (self.graph.image.elems(), self.plan_batch);
        let piece = self.padded(&x[..x.len().min(pb * d)]);
        self.graph.check_input(&piece, pb)?;
        let inputs = self.graph.inputs(&piece, pb, t, self.precision)?;
        let failed = |e| Error::tract(format!("profiling {} at t = {t}", self.label), e);
        let mut state = self.plan.spawn().map_err(failed)?;
        let mut clock = OpClock::default();
        self.one_piece_run(|| -> Result<()> {
            // One untimed run: a fresh state allocates its values and scratch on first use.
            state.run(inputs.clone()).map_err(failed)?;
            for _ in 0..runs {
                clock
                    .run(|clock| {
                        state.run_plan_with_eval(inputs.clone(), |ctx, op_state, node, input| {
                            clock
                                .time(node.id, &node.name, &node.op().name(), || plan::eval(ctx, op_state, node, input))
                        })
                    })
                    .map_err(failed)?;
            }
            Ok(())
        })?;
        Ok(Some(clock.profile(pb)))
    }

    fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    fn activation_bytes(&self, batch: usize) -> usize {
        let pieces = self.images_in_flight(batch) / self.plan_batch;
        // Pieces in flight run on a thread each; one piece that splits uses every thread.
        let threads = if pieces <= 1 && self.intra_op.one_piece != OnePiece::Serial { self.threads } else { pieces };
        pieces * activation_peak(&self.plan, self.plan_batch) + threads * self.scratch_bytes
    }

    fn images_in_flight(&self, batch: usize) -> usize {
        // run() runs pieces of the plan's batch on up to `threads` plans at once.
        let concurrent = if self.threads <= 1 { 1 } else { batch.div_ceil(self.plan_batch).min(self.threads).max(1) };
        concurrent * self.plan_batch
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
