//! The neural OT map (DIOTM, seed 003): transport maps between the two domains' latents at the
//! encode time, learned with the displacement-interpolation objective and the HJB regulariser,
//! checked against exact discrete OT on low-dimensional measures.

pub mod diotm;
pub mod eval;
pub mod exact_ot;
pub mod latent;
pub mod nets;
pub mod plots;
pub mod toy;

pub use diotm::{apply, train, DiotmConfig, Measures, StepLog, Trained};
pub use nets::{MapNet, MlpMap, ValueNet};
pub use toy::Toy;

impl Measures for Toy {
    fn dim(&self) -> usize {
        Toy::DIM
    }

    fn source(&self, n: usize, seed: u64, step: usize) -> Vec<f32> {
        Toy::source(self, n, seed, 2 * step as u64)
    }

    fn target(&self, n: usize, seed: u64, step: usize) -> Vec<f32> {
        Toy::target(self, n, seed, 2 * step as u64 + 1)
    }
}
