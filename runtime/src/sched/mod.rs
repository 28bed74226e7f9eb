//! Noise schedule, timestep grid and the DDIM step.

pub mod ddim;
pub mod grid;
pub mod schedule;

pub use ddim::{ddim_update, DdimCoeffs};
pub use grid::{encode_eval_t, grid};
pub use schedule::{Schedule, ScheduleSpec};

#[cfg(test)]
mod tests;
