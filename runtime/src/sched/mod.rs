//! Noise schedule, timestep grid and the DDIM step.

pub mod ddim;
pub mod forward;
pub mod grid;
pub mod schedule;

pub use ddim::{ddim_update, DdimCoeffs};
pub use forward::{forward_coefficients, noise_forward, noise_forward_into};
pub use grid::{encode_eval_t, grid};
pub use schedule::{Schedule, ScheduleSpec};

#[cfg(test)]
mod tests;
