//! The offline OT solve: source measures ([`sampler`]) and the height solver ([`solver`]) that
//! `brenier export --images-a/--images-b`, `brenier-train` and the oracle bundle all call. The
//! runtime keeps only the map kernels (`brenier::ot`): a device applies maps, it never solves them.

pub mod sampler;
pub mod solver;

pub use sampler::{Draw, FnSampler, ForwardNoise, Gaussian, Sampler, BLOCK};
pub use solver::{certify, resolving_samples, solve_heights, Certificate, Progress, Round, SolveConfig, SolveReport};
