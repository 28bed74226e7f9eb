//! Semi-discrete optimal transport: the map kernel and the height solver that uses it.

pub mod map;
pub mod solve;

pub use map::{assign, check_shapes, hard_map, nearest_target, soft_map, Assignment};
pub use solve::{solve_heights, IterStats, SolveConfig, SolveReport};

#[cfg(test)]
mod tests;
