//! Semi-discrete optimal transport: the map kernels a device runs (hard, soft, nearest target)
//! and the top-k scoring the exporter's height solver builds on (`brenier_export::ot`).

pub mod map;

pub use map::{assign, check_shapes, gather_targets, hard_map, nearest_target, soft_map, top_k, Assignment, TopK};

#[cfg(test)]
mod tests;
